"""The report's inputs saved beside the model, so any version's report can be rebuilt later.

Frames go to Parquet and scalars to JSON (no pickle: rebuilding a report runs no stored code).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from segmentation.core.errors import ModelError
from segmentation.report.render import ReportInputs

FOLDER = "report_data"
META = "meta.json"


def save(inputs: ReportInputs, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {}
    for f in dataclasses.fields(inputs):
        value = getattr(inputs, f.name)
        if isinstance(value, pd.DataFrame):
            frame = value.copy()
            frame.columns = [str(c) for c in frame.columns]
            keep_index = f.name == "correlation"
            frame.to_parquet(folder / f"{f.name}.parquet", index=keep_index)
        else:
            meta[f.name] = value
    (folder / META).write_text(json.dumps(meta, indent=2, default=float))


def load(folder: Path) -> ReportInputs:
    """The inputs saved with a model; a named error for a model trained before reports existed."""
    if not (folder / META).is_file():
        raise ModelError(f"{folder.parent.name} has no saved report inputs (trained before reports existed): retrain it")
    values = json.loads((folder / META).read_text())
    for path in folder.glob("*.parquet"):
        values[path.stem] = pd.read_parquet(path)
    names = {f.name for f in dataclasses.fields(ReportInputs)}
    missing = sorted(names - set(values))
    if missing:
        raise ModelError(f"report inputs in {folder} lack {', '.join(missing)}")
    return ReportInputs(**{k: v for k, v in values.items() if k in names})
