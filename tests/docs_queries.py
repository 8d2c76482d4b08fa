"""The example SQL queries of docs/tables.md, run as written against a test's lake.

    from docs_queries import run_documented_queries  # tests/ is on sys.path under pytest
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import PROJECT


def documented_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", (PROJECT / "docs" / "tables.md").read_text(), flags=re.S)


def run_documented_queries(spark, root: Path, since_version: int, segment_id: int, today: str,
                           since_date: str) -> list[tuple[str, list]]:
    """Each query with its parameters filled in (`today` for `current_date()`, dates as `YYYY-MM-DD`,
    `:last_synced` as `since_date`), and its rows. A query over an audience table runs only on a
    lake that has audiences; every other query runs."""
    queries = documented_queries()
    assert len(queries) >= 4
    out = []
    for query in queries:
        names = set(re.findall(r"lakehouse/(\w+)", query))
        if any(n.startswith("audience_") and not (root / n / "_delta_log").is_dir() for n in names):
            continue
        sql = query.replace("lakehouse/", f"{root}/").replace(":since_version", str(since_version))
        sql = sql.replace(":segment_id", str(segment_id)).replace("current_date()", f"DATE'{today}'")
        sql = sql.replace(":since_date", f"DATE'{since_date}'").replace(":last_synced", f"DATE'{since_date}'")
        assert ":" not in re.sub(r"'[^']*'|`[^`]*`", "", sql), f"a parameter left unfilled: {sql}"
        out.append((sql, spark.sql(sql).collect()))
    assert len(out) >= 4
    return out
