"""A local S3 server for the tests: moto in server mode on 127.0.0.1.

Run as ``python tests/s3_server.py <port>``. Requests are served one at a
time, so that the server's conditional writes (``If-None-Match``) are atomic
as S3's are: the tests that race writers test oups, not the server.
"""

from __future__ import annotations

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False, use_reloader=False)
