"""Which code ran: the package version and the git commit it came from.

In a git checkout the commit is asked of git (with `.dirty` for uncommitted changes). A wheel or
the zip `spark-submit.sh` ships has no `.git`: the commit is written into it when it is built
(`segmentation/core/_build_info.py`, by setup.py and spark-submit.sh), and read from there.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
from pathlib import Path

BUILD_INFO_MODULE = "segmentation.core._build_info"


def git_commit(folder: Path) -> str:
    """`<12-hex commit>` (+`.dirty` with uncommitted changes) of the checkout at `folder`; "" if none."""
    if not (folder / ".git").exists():  # a directory, or a file in a git worktree
        return ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + (".dirty" if commit and dirty else "")
    return ""


def build_info_source(commit: str, version: str) -> str:
    """The text of the module a build embeds."""
    return f'"""Written when this package was built; not in git."""\n\nCOMMIT = {commit!r}\nVERSION = {version!r}\n'


def _embedded() -> tuple[str, str]:
    try:
        info = importlib.import_module(BUILD_INFO_MODULE)
    except ImportError:
        return "", ""
    return str(getattr(info, "COMMIT", "") or ""), str(getattr(info, "VERSION", "") or "")


def code_version() -> str:
    """`<version>+<commit>`: git's answer in a checkout, else the commit embedded at build time."""
    from importlib.metadata import PackageNotFoundError, version

    embedded_commit, embedded_version = _embedded()
    try:
        text = version("segmentation")
    except PackageNotFoundError:
        text = embedded_version or "unknown"
    commit = git_commit(Path(__file__).resolve().parents[2]) or embedded_commit
    return f"{text}+{commit}" if commit else text
