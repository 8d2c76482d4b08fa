"""The segment report analysts open: one self-contained HTML page (`html`) and a Markdown twin (`markdown`).

Everything comes in as plain pandas/numpy figures (`ReportInputs`, built by training), so the
report needs no Spark and can be rebuilt for any model version from what training stored.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from segmentation.report.html import render_html
from segmentation.report.inputs import ReportInputs
from segmentation.report.markdown import render_markdown
from segmentation.report.monitor_html import render_monitor
from segmentation.report.monitor_inputs import MonitorInputs


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old report or the new one, never half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(inputs: ReportInputs, folder: Path) -> tuple[Path, Path]:
    """Writes `report.html` and `report.md` into `folder` (created if missing); returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    html_text, md_text = render_html(inputs), render_markdown(inputs)
    html_path, md_path = folder / "report.html", folder / "report.md"
    _write_atomically(html_path, html_text)
    _write_atomically(md_path, md_text)
    return html_path, md_path


def write_monitor(inputs: MonitorInputs, path: Path) -> Path:
    """Writes the monitoring page to `path` (its folder created if missing), atomically as the report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, render_monitor(inputs))
    return path
