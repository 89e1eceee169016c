"""A local S3 server for the tests and benchmarks: moto in server mode on
127.0.0.1.

    python tests/s3_server.py <port> [--threaded]

By default requests are served one at a time, so that the server's
conditional writes (``If-None-Match``) are atomic as S3's are: the tests that
race writers test oups, not the server. ``--threaded`` serves requests in
parallel, for benchmarks of one writer. ``GET /__requests__`` answers the
number of S3 requests served so far (itself not counted), so that a
benchmark can count the requests of any client.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

COUNTER = itertools.count()
SERVED = [0]


def counting(app: Any) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/__requests__":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(SERVED[0]).encode()]
        SERVED[0] = next(COUNTER) + 1
        return app(environ, start_response)

    return wrapped


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = counting(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded="--threaded" in sys.argv, use_reloader=False)
