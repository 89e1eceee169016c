"""A local S3 server for the tests and benchmarks: moto in server mode on
127.0.0.1.

    python tests/s3_server.py <port> [--threaded]

By default requests are served one at a time, so that the server's
conditional writes (``If-None-Match``) are atomic as S3's are: the tests that
race writers test oups, not the server. ``--threaded`` serves requests in
parallel, for benchmarks of one writer. ``GET /__requests__`` answers the
number of S3 requests served so far (itself not counted), so that a
benchmark can count the requests of any client; ``GET /__log__`` answers
them one per line (method and path) since the last ``/__log__``. ``GET /__faults__?before=
<p>&after=<p>&seed=<n>`` makes that share of later requests fail with a 503
before the server acts on them, or with a 500 after it has (the client then
cannot tell whether the request took effect); ``before=0&after=0`` stops it.
Requests signed with the access key ``denied`` get a 403 ``AccessDenied``,
and with ``unknown`` a 403 ``InvalidAccessKeyId`` (moto accepts any key).
"""

from __future__ import annotations

import itertools
import random
import sys
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

COUNTER = itertools.count()
SERVED = [0]
LOG: list[str] = []
FAULTS: dict[str, Any] = {"before": 0.0, "after": 0.0, "rng": random.Random(0)}


def _error(start_response: Any, status: str, code: str) -> list[bytes]:
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    start_response(status, [("Content-Type", "application/xml")])
    return [body]


def counting(app: Any) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO")
        if path == "/__requests__":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(SERVED[0]).encode()]
        if path == "/__faults__":
            q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            FAULTS["before"] = float(q.get("before", 0))
            FAULTS["after"] = float(q.get("after", 0))
            FAULTS["rng"] = random.Random(int(q.get("seed", 0)))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/__log__":
            start_response("200 OK", [("Content-Type", "text/plain")])
            lines, LOG[:] = "\n".join(LOG), []
            return [lines.encode()]
        # Credentials the tests use to stand for refused ones (moto accepts any).
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if "Credential=denied/" in auth:
            return _error(start_response, "403 Forbidden", "AccessDenied")
        if "Credential=unknown/" in auth:
            return _error(start_response, "403 Forbidden", "InvalidAccessKeyId")
        SERVED[0] = next(COUNTER) + 1
        query = environ.get("QUERY_STRING", "")
        LOG.append(f"{environ.get('REQUEST_METHOD')} {path}{'?' + query if query else ''}")
        draw = FAULTS["rng"].random()
        if draw < FAULTS["before"]:
            return _error(start_response, "503 Slow Down", "SlowDown")
        if draw < FAULTS["before"] + FAULTS["after"]:
            # Act on the request, then lose the answer.
            for _ in app(environ, lambda *a, **k: lambda data: None):
                pass
            return _error(start_response, "500 Internal Server Error", "InternalError")
        return app(environ, start_response)

    return wrapped


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = counting(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded="--threaded" in sys.argv, use_reloader=False)
