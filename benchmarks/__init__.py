"""Benchmarks: scripts that print figures, never timed unit tests."""

import json
from pathlib import Path


def emit(figures: dict, path: Path | None) -> int:
    """Prints the figures as JSON, and writes them to `path` when given; the script's exit code."""
    text = json.dumps(figures, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n", encoding="utf-8")
    return 0
