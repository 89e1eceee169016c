"""A real dask cluster for the oups.dask tests: two worker processes on
127.0.0.1, one per test module (starting one takes seconds; a client left
open would become the default scheduler of later tests)."""

from __future__ import annotations

from collections.abc import Iterator

import dask
import pytest
from dask.distributed import Client, LocalCluster


@pytest.fixture(scope="module")
def client(s3_server) -> Iterator[Client]:
    # The local S3 server runs first: the workers then inherit the AWS_*
    # variables that point clients at it.
    # The client's log of recent messages would keep each small graph (and
    # the version lease it holds) alive for a thousand more messages.
    with (
        dask.config.set({"distributed.admin.low-level-log-length": 0}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
