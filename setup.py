import importlib.util
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

VERSION = "0.1.0"
HERE = Path(__file__).resolve().parent


def _build_module():
    """segmentation/core/build.py, loaded by path: setup.py must not import the package itself."""
    spec = importlib.util.spec_from_file_location("_segmentation_build", HERE / "segmentation" / "core" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithCommit(build_py):
    """Writes the checkout's git commit into the built package (segmentation/core/_build_info.py),
    so `code_version` names it where there is no .git: in the wheel a cluster installs."""

    def run(self):
        super().run()
        build = _build_module()
        target = Path(self.build_lib, *build.BUILD_INFO_MODULE.split(".")).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(build.build_info_source(build.git_commit(HERE), VERSION), encoding="utf-8")


# Pinned to the versions the tests ran on, so a night's model is reproducible; PyYAML reads
# conf/*.yaml; matplotlib and seaborn draw the segment report's charts. pyarrow is 25.x, not 26:
# MLflow 3.17.2 (the `local` extra) requires pyarrow<26, and nothing here needs 26. pydantic
# declares and checks the config (segmentation/core/config.py); it is pinned here, at the version
# MLflow 3.17.2 pulled in, because the wheel and the real-time path load the config without MLflow.
INSTALL_REQUIRES = [
    "pandas==2.3.3",
    "numpy==2.4.6",
    "scikit-learn==1.9.1",
    "pyarrow==25.0.1",
    "PyYAML==6.0.4",
    "matplotlib==3.11.2",
    "seaborn==0.13.2",
    "pydantic==2.14.4",
]

# Spark itself, for running anywhere but Databricks (`pip install ".[local]"`; `make install`
# does). A released pair: Delta 4.0.x is built for Spark 4.0.x, the Spark of Databricks Runtime
# 17.3 LTS. They are not required by the wheel: on Databricks the runtime provides both, and
# installing the wheel must not replace them. MLflow likewise: the tracking store and model
# registry (local: SQLite under the lakehouse); Databricks runtimes ship their own MLflow client.
LOCAL_REQUIRES = ["pyspark==4.0.1", "delta-spark==4.0.1", "mlflow==3.17.2"]

# Playwright drives the system Chromium (`apt-get install chromium`) in the report's browser
# test; it downloads no browser of its own. databricks-bundles loads the Databricks job
# resource into its typed `Job`, which rejects unknown and missing fields. import-linter checks
# the package's layers (.importlinter): an import in the wrong direction fails the tests.
# deltalake (delta-rs) and polars are the readers other than Spark that our users point at
# the tables; the tests read segments_current and its change feed with both. pytest-xdist runs
# the test files on two workers, each with its own Spark session: most of a test's time is the
# latency of small Delta commits, which leaves a core idle in a single process.
TEST_REQUIRES = ["pytest==9.2.0", "playwright==1.65.2", "databricks-bundles==1.22.1", "import-linter==2.17",
                 "deltalake==1.6.6", "polars==2.1.0", "pytest-xdist==3.8.0"]

setup(
    name="segmentation",
    version=VERSION,
    cmdclass={"build_py": BuildPyWithCommit},
    description="Nightly behavioural segmentation of credit-card customers into a Delta table",
    python_requires=">=3.11",  # numpy 2.4 needs 3.11
    packages=[*find_packages(include=["segmentation", "segmentation.*"]), "segmentation.conf", "jobs"],
    package_dir={"segmentation.conf": "conf"},
    package_data={"segmentation.conf": ["*.yaml", "*.properties"], "segmentation.synthetic": ["*.json"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"local": LOCAL_REQUIRES, "test": TEST_REQUIRES},
    entry_points={
        "console_scripts": [
            "segmentation-features=jobs.features:main",
            "segmentation-train=jobs.train:main",
            "segmentation-score=jobs.score:main",
            "segmentation-nightly=jobs.nightly:main",
            "segmentation-generate=jobs.generate:main",
            "segmentation-report=jobs.report:main",
            "segmentation-promote=jobs.promote:main",
            "segmentation-maintain=jobs.maintain:main",
            "segmentation-audiences=jobs.audiences:main",
            "segmentation-lift=jobs.lift:main",
            "segmentation-forget=jobs.forget:main",
            "segmentation-serve=jobs.serve:main",
        ]
    },
)
