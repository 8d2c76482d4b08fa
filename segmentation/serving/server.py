"""The `serve` job's library half: a registered model checked whole, then MLflow's scoring server on it.

`registry.verified_model` downloads the version and compares the digest of every file (its
`code/`, `MLmodel`, the bundle) with the one the registry recorded at registration. Only then is
the server started, as a child process in isolated mode (`gate.py`) on that same local copy, so
the code it imports is the code that was checked. A bare `mlflow models serve` does none of this.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from segmentation.core import logs
from segmentation.core.config import Config
from segmentation.model import registry

GATE = Path(__file__).with_name("gate.py")


def serve(cfg: Config, version: int | None = None, port: int | None = None) -> int:
    """Serves `version` (None: the champion) on `port` (None: `serving.port`) until stopped;
    returns the server's exit status. A model that fails its check raises `ModelIntegrityError`."""
    log = logs.get("serve")
    s = cfg.serving
    port = port or s.port
    with tempfile.TemporaryDirectory(prefix="segmentation-serve-") as tmp:
        number, folder = registry.verified_model(cfg, version, Path(tmp))
        log.info("%s version %d verified whole (%s); serving it on %s:%d (max_rows=%d, max_bytes=%d)",
                 cfg.registry.model_name, number, registry.MODEL_DIGEST_TAG, s.host, port, s.max_rows, s.max_bytes)
        command = [sys.executable, "-I", str(GATE), str(folder), s.host, str(port), str(s.max_rows), str(s.max_bytes)]
        server = subprocess.Popen(command)

        def stop(signum, frame):
            server.send_signal(signum)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = server.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)
    log.info("server on port %d stopped (exit %s)", port, code)
    return code
