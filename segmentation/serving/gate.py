"""MLflow's scoring server on a verified model folder, with per-request limits.

Run by `segmentation.serving.server` as `python -I gate.py MODEL HOST PORT MAX_ROWS MAX_BYTES`,
after the folder was checked whole against the registry's digest. It imports nothing of this
package: isolated mode (`-I`) drops PYTHONPATH and the script's folder from the path, so the only
`segmentation` the server can import is the verified folder's own `code/`.

MLflow's server reads a request body whole, with no limit. Here an ASGI layer in front of it
answers 413 to a body over MAX_BYTES: at once from Content-Length, else while reading (at most
MAX_BYTES plus one chunk is held). A request of more than MAX_ROWS customers is answered 413
after MLflow has parsed it (bounded by MAX_BYTES) and before the model scores it.
"""

import json
import sys


def _reply(status: int, message: str) -> tuple[dict, dict]:
    body = json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": message}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 and is not read further."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over serving.max_bytes={self.max_bytes} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send, too_large)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(send, too_large)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send, message: str) -> None:
        start, body = _reply(413, message)
        await send(start)
        await send(body)


def limit_rows(scoring_server, model, max_rows: int) -> None:
    """Requests of more than `max_rows` rows are answered 413 before the model scores them."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import REQUEST_LIMIT_EXCEEDED

    class TooManyRows(MlflowException):
        pass

    predict = model.predict

    def limited(data, params=None):
        rows = len(data) if hasattr(data, "__len__") else 0
        if rows > max_rows:
            raise TooManyRows(f"request of {rows} rows, over serving.max_rows={max_rows}",
                              error_code=REQUEST_LIMIT_EXCEEDED)
        return predict(data, params=params)

    model.predict = limited
    invocations = scoring_server.invocations

    def answered(*args, **kwargs):
        try:
            return invocations(*args, **kwargs)
        except TooManyRows as exc:  # MLflow would echo the whole request back in the message
            rows = exc.message.rsplit("Error: ", 1)[-1]
            return scoring_server.InvocationsResponse(
                response=json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": rows}), status=413,
                mimetype="application/json")

    scoring_server.invocations = answered


def main(argv: list[str]) -> None:
    import uvicorn
    from mlflow.pyfunc import load_model, scoring_server

    path, host, port, max_rows, max_bytes = argv
    model = load_model(path)
    limit_rows(scoring_server, model, int(max_rows))
    app = BodyLimit(scoring_server.init(model), int(max_bytes))
    uvicorn.run(app, host=host, port=int(port), log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
