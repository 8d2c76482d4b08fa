"""The Databricks Asset Bundle, checked without a workspace.

databricks.yml and its job resource load, for every target, into the typed `Job` of the
`databricks-bundles` package (whose `from_dict` rejects unknown and missing fields); the
entry points the job names exist in the wheel `pip wheel` builds; and that wheel installs into
a clean virtualenv with the `local` extra and runs `--help` for every entry point.
"""

from __future__ import annotations

import configparser
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from databricks.bundles.jobs import ConditionTaskOp, Job, PauseStatus, RunIf

from jobs.common import load, parser

PROJECT = Path(__file__).resolve().parents[1]
BUNDLE_FILE = PROJECT / "databricks.yml"
JOB_KEY = "segmentation_nightly"
TARGETS = ["dev", "prod"]
SPARK_VERSION = "17.3.x-scala2.13"  # Databricks Runtime 17.3 LTS: Spark 4.0, like the `local` extra
ENTRY_POINTS = {  # task -> console entry point of the wheel
    "features": "segmentation-features",
    "train": "segmentation-train",
    "score": "segmentation-score",
    "audiences": "segmentation-audiences",
    "maintain": "segmentation-maintain",
}
SPARK_SUBMIT_JOBS = {"features", "train", "score", "nightly", "generate", "report", "promote", "maintain", "audiences",
                     "lift", "forget", "serve"}


def _documented_jobs() -> set[str]:
    """The jobs of the README's "Jobs" table (its first column)."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Jobs\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z]+)` \|", section, flags=re.M))


# Every job the README lists (each a job of spark-submit.sh) has a console entry point in the wheel.
DOCUMENTED_ENTRY_POINTS = {f"segmentation-{job}" for job in _documented_jobs()}

RUN_DATE = "2026-11-24"  # stands in for {{job.trigger.time.iso_date}} when the parameters are parsed

BUNDLE_REF = re.compile(r"\$\{([^}]+)\}")
JOB_PARAM_REF = re.compile(r"\{\{\s*job\.parameters\.([A-Za-z0-9_]+)\s*\}\}")


# ---------------------------------------------------------------------------------------------
# the bundle, resolved per target


def _bundle() -> dict:
    return yaml.safe_load(BUNDLE_FILE.read_text(encoding="utf-8"))


def _job_files(bundle: dict) -> dict[str, Path]:
    """Job key -> the resource file that declares it, over every `include` glob."""
    found: dict[str, Path] = {}
    for pattern in bundle["include"]:
        for path in sorted(PROJECT.glob(pattern)):
            jobs = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("resources", {}).get("jobs", {})
            for key in jobs:
                assert key not in found, f"job {key} declared twice ({found.get(key)} and {path})"
                found[key] = path
    return found


def _raw_job(bundle: dict) -> tuple[dict, Path]:
    path = _job_files(bundle)[JOB_KEY]
    return yaml.safe_load(path.read_text(encoding="utf-8"))["resources"]["jobs"][JOB_KEY], path


def _variables(bundle: dict, target: str) -> dict:
    """What the CLI gives `${var.*}` for a target: the target's values over the defaults."""
    declared = bundle["variables"]
    values = {name: spec["default"] for name, spec in declared.items() if "default" in spec}
    overrides = bundle["targets"][target].get("variables", {})
    assert set(overrides) <= set(declared), f"{target} sets undeclared variables {set(overrides) - set(declared)}"
    values.update(overrides)
    missing = set(declared) - set(values)
    assert not missing, f"target {target} leaves variables without a value: {sorted(missing)}"
    return values


def _substitute(node, refs: dict):
    """Replaces ${...} references like the CLI; a string that is one reference keeps the value's type."""
    if isinstance(node, dict):
        return {key: _substitute(value, refs) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, refs) for value in node]
    if isinstance(node, str):
        whole = BUNDLE_REF.fullmatch(node)
        if whole and whole.group(1) in refs:
            return refs[whole.group(1)]
        return BUNDLE_REF.sub(lambda m: str(refs[m.group(1)]) if m.group(1) in refs else m.group(0), node)
    return node


def _resolved_job(target: str) -> tuple[dict, dict]:
    """The job resource as the target deploys it (a plain dict), and the target's variables."""
    bundle = _bundle()
    variables = _variables(bundle, target)
    raw, _ = _raw_job(bundle)
    refs = {f"var.{name}": value for name, value in variables.items()}
    refs.update({"bundle.name": bundle["bundle"]["name"], "bundle.target": target})
    job = _substitute(copy.deepcopy(raw), refs)
    unresolved = sorted(set(BUNDLE_REF.findall(json.dumps(job))))
    assert not unresolved, f"target {target}: references no variable of the bundle resolves: {unresolved}"
    return job, variables


def _tasks(job: Job) -> dict:
    return {task.task_key: task for task in job.tasks}


def _task_arguments(task, target_values: dict) -> list[str]:
    """A wheel task's parameters with the job parameters a run would pass."""
    run_values = {"run_date": RUN_DATE, "retrain": "false", "model_name": target_values["model_name"]}
    return [JOB_PARAM_REF.sub(lambda m: run_values[m.group(1)], arg) for arg in task.python_wheel_task.parameters]


# ---------------------------------------------------------------------------------------------
# the typed job, per target


def test_job_resource_is_included_and_loads_unresolved():
    """The resource file is found through `include`, and loads even with its ${var.*} references."""
    bundle = _bundle()
    raw, path = _raw_job(bundle)
    assert path.parent == PROJECT / "resources"
    job = Job.from_dict(copy.deepcopy(raw))
    assert str(job.job_clusters[0].new_cluster.num_workers) == "${var.num_workers}"


@pytest.mark.parametrize("target", TARGETS)
def test_job_loads_into_typed_job_for_each_target(target):
    resolved, variables = _resolved_job(target)
    job = Job.from_dict(resolved)
    tasks = _tasks(job)

    assert list(tasks) == ["features", "retrain_requested", "train", "score", "audiences",
                           "maintain"]
    assert job.max_concurrent_runs == 1

    # features -> retrain_requested -(true)-> train; score after features and (if it ran) train.
    assert tasks["features"].depends_on == []
    assert [(d.task_key, d.outcome) for d in tasks["retrain_requested"].depends_on] == [("features", None)]
    assert [(d.task_key, d.outcome) for d in tasks["train"].depends_on] == [("retrain_requested", "true")]
    assert sorted(d.task_key for d in tasks["score"].depends_on) == ["features", "train"]
    assert tasks["score"].run_if == RunIf.NONE_FAILED
    # audiences after the published night; maintain after both succeeded (the default, ALL_SUCCESS),
    # never beside a night's writes.
    assert [(d.task_key, d.outcome) for d in tasks["audiences"].depends_on] == [("score", None)]
    assert [(d.task_key, d.outcome) for d in tasks["maintain"].depends_on] == [("audiences", None)]
    assert tasks["maintain"].run_if is None
    assert tasks["train"].run_if is None  # the default, ALL_SUCCESS: only after a "true" outcome

    condition = tasks["retrain_requested"].condition_task
    assert (condition.left, condition.op, condition.right) == ("{{job.parameters.retrain}}", ConditionTaskOp.EQUAL_TO, "true")

    params = {p.name: p.default for p in job.parameters}
    assert params == {
        "run_date": "{{job.trigger.time.iso_date}}",
        "retrain": "false",
        "model_name": variables["model_name"],
    }
    referenced = set(JOB_PARAM_REF.findall(json.dumps(resolved)))
    assert referenced <= set(params), f"tasks reference undeclared job parameters {referenced - set(params)}"

    [cluster] = job.job_clusters
    assert cluster.new_cluster.spark_version == SPARK_VERSION
    assert cluster.new_cluster.num_workers == variables["num_workers"]

    assert job.schedule.quartz_cron_expression == variables["schedule_cron"]
    assert job.schedule.pause_status == {"dev": PauseStatus.PAUSED, "prod": PauseStatus.UNPAUSED}[target]

    wheel_tasks = {key: task for key, task in tasks.items() if task.python_wheel_task is not None}
    assert {key: task.python_wheel_task.entry_point for key, task in wheel_tasks.items()} == ENTRY_POINTS
    for key, task in wheel_tasks.items():
        wheel = task.python_wheel_task
        assert wheel.package_name == "segmentation"
        # Keyword parameters would receive every job parameter too, which argparse rejects.
        assert wheel.named_parameters == {}, key
        assert wheel.parameters[:2] == ["--profile", "databricks"], key
        assert task.job_cluster_key == cluster.job_cluster_key, key
        assert [lib.whl for lib in task.libraries] == ["../dist/*.whl"], key


@pytest.mark.parametrize("target", TARGETS)
def test_task_parameters_configure_the_targets_catalog_and_schema(target):
    """Each task's arguments go through the job's own parser and config loader, as on the cluster."""
    resolved, variables = _resolved_job(target)
    schema = f"{variables['catalog']}.{variables['schema']}"
    for key, task in _tasks(Job.from_dict(resolved)).items():
        if task.python_wheel_task is None:
            continue
        job_name = task.python_wheel_task.entry_point.removeprefix("segmentation-")
        args = parser(job_name).parse_args(_task_arguments(task, variables))
        cfg, run_date = load(args)
        assert run_date.isoformat() == RUN_DATE, key
        assert cfg.tables.schema == schema, key
        assert cfg.tables.models_dir == f"/Volumes/{variables['catalog']}/{variables['schema']}/models", key
        assert (cfg.input.source, cfg.input.format) == (variables["source_table"], "table"), key
        assert cfg.input.source.startswith(f"{variables['catalog']}."), key
        assert cfg.registry.model_name == variables["model_name"], key
        assert (cfg.registry.tracking_uri, cfg.registry.registry_uri) == ("databricks", "databricks-uc"), key


def test_targets_keep_dev_and_prod_apart():
    bundle = _bundle()
    dev, prod = (_variables(bundle, target) for target in TARGETS)
    assert bundle["targets"]["dev"]["mode"] == "development" and bundle["targets"]["dev"].get("default") is True
    assert bundle["targets"]["prod"]["mode"] == "production"
    assert "root_path" in bundle["targets"]["prod"]["workspace"]  # what `mode: production` requires
    for name in ("catalog", "source_table", "model_name"):
        assert dev[name] != prod[name], name
    assert dev["model_name"].count(".") == 2 and prod["model_name"].count(".") == 2  # Unity Catalog names


def test_wheel_artifact_lands_where_the_tasks_attach_it():
    bundle = _bundle()
    [artifact] = bundle["artifacts"].values()
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert "-w dist" in artifact["build"]
    _, path = _raw_job(bundle)
    # Library paths in a resource file are relative to that file.
    assert (path.parent / "../dist").resolve() == PROJECT / "dist"


def test_typed_job_rejects_an_unknown_or_a_missing_field():
    """Why the typed Job is the check: a misspelt or a missing field fails here, not on deploy."""
    resolved, _ = _resolved_job("dev")
    misspelt = copy.deepcopy(resolved)
    misspelt["tasks"][0]["python_wheel_task"]["entrypoint"] = misspelt["tasks"][0]["python_wheel_task"].pop("entry_point")
    with pytest.raises(ValueError, match="Unexpected field 'entrypoint'"):
        Job.from_dict(misspelt)
    missing = copy.deepcopy(resolved)
    del missing["tasks"][0]["python_wheel_task"]["package_name"]
    with pytest.raises(TypeError, match="package_name"):
        Job.from_dict(missing)


# ---------------------------------------------------------------------------------------------
# the wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel --no-deps` builds (the bundle's artifact command), from a copy of the
    sources, so no stale build/ folder of the checkout leaks into it."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "lakehouse", "build", "dist", "*.egg-info", "spark-warehouse", "metastore_db",
        "__pycache__", ".pytest_cache", "data",
    )
    shutil.copytree(PROJECT, source, ignore=ignore, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", str(out), "."],
        cwd=source, check=True,
    )
    [built] = out.glob("segmentation-*.whl")
    return built


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as whl:
        [member] = [n for n in whl.namelist() if n.endswith(f".dist-info/{name}")]
        return whl.read(member).decode("utf-8")


def _console_scripts(wheel: Path) -> dict[str, str]:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    return dict(entry_points["console_scripts"])


def test_the_readme_lists_every_job_of_spark_submit():
    assert _documented_jobs() == SPARK_SUBMIT_JOBS
    script = (PROJECT / "spark-submit.sh").read_text(encoding="utf-8")
    accepted = re.search(r'case "\$JOB" in\s*\n\s*([a-z|]+)\)', script)
    assert accepted and set(accepted.group(1).split("|")) == SPARK_SUBMIT_JOBS


def test_every_entry_point_the_job_names_is_in_the_wheel(wheel):
    scripts = _console_scripts(wheel)
    named = {task.python_wheel_task.entry_point
             for target in TARGETS
             for task in Job.from_dict(_resolved_job(target)[0]).tasks if task.python_wheel_task}
    assert named == set(ENTRY_POINTS.values())
    assert named <= set(scripts), f"the job names entry points the wheel lacks: {named - set(scripts)}"
    assert DOCUMENTED_ENTRY_POINTS <= set(scripts)
    with zipfile.ZipFile(wheel) as whl:
        modules = set(whl.namelist())
    for name, target in scripts.items():
        module = target.split(":")[0]
        assert module.replace(".", "/") + ".py" in modules, f"{name} -> {target}: module not in the wheel"
    assert {"segmentation/conf/base.yaml", "segmentation/conf/databricks.yaml"} <= modules


def test_wheel_leaves_spark_to_the_runtime(wheel):
    """pyspark and delta-spark are required only with the `local` extra: a Databricks cluster keeps its own."""
    metadata = _dist_info(wheel, "METADATA")
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    spark = [r for r in requires if re.match(r"(pyspark|delta[-_]spark)\b", r, re.IGNORECASE)]
    assert sorted(re.split(r"[ ;]", r)[0] for r in spark) == ["delta-spark==4.0.1", "pyspark==4.0.1"]
    for requirement in spark:
        assert re.search(r"""extra\s*==\s*["']local["']""", requirement), requirement
    assert "Requires-Python: >=3.11" in metadata


def test_wheel_installs_into_a_clean_venv_and_every_entry_point_runs(wheel, tmp_path):
    """What a cluster does with the wheel, plus the `local` extra a plain machine needs for Spark."""
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    # This venv's pip installs into the new one (`--python`); the pip cache makes it quick.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check",
         f"{wheel}[local]"],
        check=True, cwd=tmp_path,
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    scripts = sorted(_console_scripts(wheel))
    assert DOCUMENTED_ENTRY_POINTS <= set(scripts)
    for name in scripts:
        done = subprocess.run([str(env_dir / "bin" / name), "--help"], cwd=tmp_path, env=clean,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name} --help: {done.stderr[-2000:]}"
        assert done.stdout.startswith(f"usage: {name}"), done.stdout[:300]

    # The installed package, not the checkout, answers; its packaged conf/ has the databricks profile.
    resolved, variables = _resolved_job("dev")
    arguments = _task_arguments(_tasks(Job.from_dict(resolved))["features"], variables)
    probe = (
        "import json, sys, segmentation\n"
        "from jobs.common import find_conf_dir, load, parser\n"
        "cfg, _ = load(parser('features').parse_args(sys.argv[1:]))\n"
        "print(json.dumps([segmentation.__file__, str(find_conf_dir(None)), cfg.tables.schema]))\n"
    )
    done = subprocess.run([str(python), "-c", probe, *arguments], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    module, conf_dir, schema = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(module).is_relative_to(env_dir) and Path(conf_dir).is_relative_to(env_dir)
    assert schema == "dev.segmentation"
