"""`code_version` names the commit wherever the code runs: a checkout, a wheel, the launch zip."""

import os
import re
import shutil
import subprocess
import sys
import zipfile

from conftest import PROJECT, checkout_lock

from segmentation.core import build

HEAD = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short=12", "HEAD"],
                      capture_output=True, text=True, check=True).stdout.strip()
PROBE = ("import sys; sys.path.insert(0, sys.argv[1]); from segmentation.core import build; "
         "print(build.__file__); print(build.code_version())")


def _build_leftovers() -> list:
    return [PROJECT / "segmentation.egg-info", PROJECT / "build" / "lib", *(PROJECT / "build").glob("bdist.*")]


def test_a_wheel_names_the_commit_it_was_built_from(tmp_path):
    # Built in the checkout, where git is (pip builds in the tree). What the build leaves there
    # is removed again: a segmentation.egg-info on PYTHONPATH makes a later `pip install` of a
    # wheel think the package is installed already.
    # Under the checkout's build lock: another pytest-xdist worker may be building in the tree too.
    dist = tmp_path / "dist"
    with checkout_lock("build"):
        existed = {path for path in _build_leftovers() if path.exists()}
        try:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "--disable-pip-version-check", "-w", str(dist), str(PROJECT)],
                           check=True, cwd=tmp_path, timeout=300)
        finally:
            for path in _build_leftovers():
                if path not in existed:
                    shutil.rmtree(path, ignore_errors=True)
    [wheel] = dist.glob("segmentation-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert (site / "segmentation" / "core" / "_build_info.py").is_file()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(site)], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    module, version = done.stdout.strip().splitlines()
    assert module.startswith(str(site))  # the unpacked wheel answered, far from any .git
    assert re.fullmatch(rf"0\.1\.0\+{HEAD}(\.dirty)?", version), version


def test_without_git_or_embedded_commit_only_the_version_is_named(tmp_path):
    assert build.git_commit(tmp_path) == ""  # no .git here
    package = tmp_path / "segmentation" / "core"
    package.mkdir(parents=True)
    for name in ("__init__.py",):
        (tmp_path / "segmentation" / name).write_text("")
        (package / name).write_text("")
    (package / "build.py").write_text((PROJECT / "segmentation" / "core" / "build.py").read_text())
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0.1.0"  # no commit to name, and no made-up one


def test_a_checkout_asks_git():
    assert re.fullmatch(rf"0\.1\.0\+{HEAD}(\.dirty)?", build.code_version())
