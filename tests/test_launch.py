"""spark-submit.sh's own work before Spark starts: the package zip, built once per launch."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import PROJECT

HEAD = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short=12", "HEAD"],
                      capture_output=True, text=True, check=True).stdout.strip()

# A stand-in venv: its python logs what the zip builder was given, its spark-submit checks the
# zip it is handed and stops there. No Spark starts; the launch's own steps run for real.
PYTHON_WRAPPER = """#!/usr/bin/env bash
if [ "${1:-}" = "-" ]; then echo "$3" >> "$LAUNCH_LOG"; [ -z "${FAIL_ZIP:-}" ] || exit 1; sleep 0.3; fi
exec "%s" "$@"
"""
SUBMIT_STUB = """#!/usr/bin/env bash
zip=""
while [ $# -gt 0 ]; do [ "$1" = "--py-files" ] && zip="$2"; shift; done
exec "%s" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
assert "segmentation/io/tables.py" in z.namelist(); print("ZIP OK")' "$zip"
"""


def _fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name, text in (("python", PYTHON_WRAPPER), ("spark-submit", SUBMIT_STUB)):
        path = venv / "bin" / name
        path.write_text(text % sys.executable)
        path.chmod(0o755)
    return venv


def test_concurrent_launches_build_their_own_zip(tmp_path):
    env = {**os.environ, "SEGMENTATION_VENV": str(_fake_venv(tmp_path)), "LAUNCH_LOG": str(tmp_path / "log")}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    launches = [subprocess.Popen([str(PROJECT / "spark-submit.sh"), "score", "--master", "spark://nowhere:7077"],
                                 cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(3)]
    outputs = [(p.wait(timeout=120), p.stdout.read()) for p in launches]
    for code, output in outputs:
        assert code == 0 and "ZIP OK" in output, output
    built = (tmp_path / "log").read_text().split()
    assert len(built) == 3 and len(set(built)) == 3, built  # three launches, three temporary files
    assert all(Path(b).parent.parent == PROJECT / "build" and not Path(b).exists() for b in built)
    shipped = zipfile.ZipFile(PROJECT / "build" / "segmentation-pyfiles.zip")
    assert shipped.testzip() is None
    assert HEAD in shipped.read("segmentation/core/_build_info.py").decode()  # code_version on a cluster
    # Each launch cleaned up after itself (its own scratch folder: with `make test`'s two workers,
    # another file's real launch may have one of its own under build/ at this moment).
    assert not any(Path(b).parent.exists() for b in built)


def test_a_launch_that_fails_building_the_zip_leaves_no_temporary_files(tmp_path):
    env = {**os.environ, "SEGMENTATION_VENV": str(_fake_venv(tmp_path)), "LAUNCH_LOG": str(tmp_path / "log"),
           "FAIL_ZIP": "1"}
    result = subprocess.run([str(PROJECT / "spark-submit.sh"), "score", "--master", "spark://nowhere:7077"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "ZIP OK" not in result.stdout
    built = Path((tmp_path / "log").read_text().strip())
    assert built.parent.parent == PROJECT / "build" and not built.parent.exists()
