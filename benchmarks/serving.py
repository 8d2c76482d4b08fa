"""One customer at a time through `mlflow models serve`: latency of the real-time path.

    python -m benchmarks.serving [--lake DIR] [--requests 1000] [--json figures.json]

Serves the registry's champion with `mlflow models serve -m models:/<name>@champion
--env-manager local` on loopback, warms it up, then sends single-customer requests one after
another over one kept-alive connection and prints p50, p99 and max latency as the client sees
it (HTTP, JSON, the contract check, features and the forest). Without `--lake`, it first runs
the nightly job on the bundled data into a fresh lakehouse, so the served model is the default.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from segmentation.core.columns import ID_COLUMN, RAW_NUMERIC_COLUMNS

PROJECT = Path(__file__).resolve().parents[1]
BUNDLED = PROJECT / "data" / "CC_GENERAL.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_env(lake: Path) -> dict[str, str]:
    """The environment that points MLflow at a lakehouse's embedded registry."""
    uri = f"sqlite:///{Path(lake).resolve() / 'mlflow' / 'mlflow.db'}"
    # The server starts `uvicorn` by name: this interpreter's bin/ (the venv's) comes first on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}


@contextmanager
def served(lake: Path, model: str = "segmentation", alias: str = "champion", timeout: float = 180.0) -> Iterator[int]:
    """`mlflow models serve` of `models:/model@alias` on a free loopback port, until the block ends."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model}@{alias}",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, env=registry_env(lake), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited {server.returncode}:\n{Path(log.name).read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve not up after {timeout:.0f}s:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.25)
        yield port
    finally:
        try:
            os.killpg(server.pid, 15)
        except ProcessLookupError:
            pass
        server.wait(timeout=30)
        os.unlink(log.name)


def request_body(rows: pd.DataFrame) -> bytes:
    """The `dataframe_split` JSON of raw customer rows; a missing value is sent as null."""
    columns = [ID_COLUMN, *RAW_NUMERIC_COLUMNS]
    data = [[None if isinstance(v, float) and np.isnan(v) else v for v in row]
            for row in rows[columns].itertuples(index=False, name=None)]
    return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()


def ask(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, Any]:
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def measure(port: int, customers: pd.DataFrame, requests: int, warmup: int) -> dict[str, float]:
    """Sequential single-customer requests; latency percentiles in milliseconds after warm-up."""
    bodies = [request_body(customers.iloc[[i % len(customers)]]) for i in range(requests + warmup)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    for i, body in enumerate(bodies):
        start = time.perf_counter()
        status, answer = ask(conn, body)
        elapsed = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"request {i} answered {status}: {answer}")
        if i >= warmup:
            latencies.append(elapsed * 1000.0)
    conn.close()
    ms = np.array(latencies)
    return {"requests": len(ms), "warmup": warmup, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "mean_ms": float(ms.mean())}


def _train(lake: Path) -> None:
    from jobs import nightly

    code = nightly.main(["--set", f"tables.root={lake}", "--set", f"tables.models_dir={lake / 'models'}",
                         "--run-date", "2026-01-01"])
    if code:
        raise SystemExit(f"nightly job failed with exit {code}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", type=Path, default=None, help="a lakehouse whose registry has a champion")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    lake = args.lake
    if lake is None:
        lake = Path(tempfile.mkdtemp(prefix="segmentation-serving-")) / "lake"
        _train(lake)
    customers = pd.read_csv(BUNDLED).dropna(subset=[c for c in RAW_NUMERIC_COLUMNS if c != "MINIMUM_PAYMENTS"])
    with served(lake) as port:
        figures = measure(port, customers, args.requests, args.warmup)
    print(f"real-time: {figures['requests']} sequential single-customer requests after {figures['warmup']} warm-up: "
          f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms "
          f"(target p99 < 10 ms: {'met' if figures['p99_ms'] < 10 else 'MISSED'})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
