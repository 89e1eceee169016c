"""Shared fixtures and helpers for the oups test suite."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest


def dir_digest(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file below ``root`` (to prove nothing changed).

    Read leases are left out: like lock files, they only say who is reading
    (an open dataset object holds one for its version) and hold no data."""
    out: dict[str, str] = {}
    for dirpath, _, files in os.walk(root):
        if Path(dirpath).name == "leases" and Path(dirpath).parent.name.endswith(".oups"):
            continue
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def rg_values(ds, column: str = "a") -> list[list]:
    """The values of ``column`` in each row group, in order."""
    out = []
    for i in range(len(ds)):
        out.append(ds[i].to_pandas()[column].tolist())
    return out


@pytest.fixture
def tmp_ds(tmp_path: Path) -> Path:
    return tmp_path / "parent" / "ds"


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


class S3Server:
    """A running local S3 server (see ``tests/s3_server.py``) and its bucket."""

    bucket = "oups-test"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.count = 0

    def url(self, name: str) -> str:
        """A fresh prefix in the bucket, so that tests never share objects."""
        self.count += 1
        return f"s3://{self.bucket}/{name}-{self.count}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )


@pytest.fixture(scope="session")
def s3_server():
    """Starts the local S3 server once per session; the usual ``AWS_*``
    variables point every client (oups, boto3) at it."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).with_name("s3_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the local S3 server (moto) did not start") from None
            time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server = S3Server(endpoint)
    server.client().create_bucket(Bucket=server.bucket)
    try:
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path: Path):
    """Where a test's dataset lives: a local directory, or a prefix on the
    local S3 server. Tests of behaviour both backends share take this one."""
    if request.param == "local":
        return tmp_path / "parent" / "ds"
    server = request.getfixturevalue("s3_server")
    return server.url(request.node.name.replace("[", "-").replace("]", "")) + "/parent/ds"


def s3_faults(server: S3Server, before: float = 0.0, after: float = 0.0, seed: int = 0) -> None:
    """Makes the local S3 server fail that share of requests (see tests/s3_server.py)."""
    import urllib.request

    query = f"before={before}&after={after}&seed={seed}"
    urllib.request.urlopen(f"{server.endpoint}/__faults__?{query}", timeout=5).close()


@pytest.fixture(params=["local", "s3"])
def store_base(request, tmp_path: Path):
    """Where a test's store lives: a local directory or a prefix on the local
    S3 server."""
    if request.param == "local":
        return tmp_path / "st"
    server = request.getfixturevalue("s3_server")
    return server.url(request.node.name.replace("[", "-").replace("]", "")) + "/st"


def under(base, *parts: str):
    """``base / parts`` for a directory or a URL."""
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base, *parts])


class StateURL(str):
    """A state file's URL on the local S3 server, with the few ``Path``
    methods the StatefulLoop tests use on a local state file."""

    server: S3Server

    def _split(self) -> tuple[str, str]:
        bucket, _, key = self.removeprefix("s3://").partition("/")
        return bucket, key

    def exists(self) -> bool:
        bucket, key = self._split()
        listed = self.server.client().list_objects_v2(Bucket=bucket, Prefix=key)
        return any(o["Key"] == key for o in listed.get("Contents", []))

    def read_bytes(self) -> bytes:
        bucket, key = self._split()
        return self.server.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, data: bytes) -> None:
        bucket, key = self._split()
        self.server.client().put_object(Bucket=bucket, Key=key, Body=data)


@pytest.fixture(params=["local", "s3"])
def state_at(request, tmp_path: Path):
    """``state_at(name)``: where a StatefulLoop state file lives, a path in a
    temporary directory or a URL on the local S3 server."""
    if request.param == "local":
        return lambda name: tmp_path / name
    server = request.getfixturevalue("s3_server")
    base = server.url(request.node.name.replace("[", "-").replace("]", ""))

    def at(name: str) -> StateURL:
        url = StateURL(f"{base}/{name}")
        url.server = server
        return url

    return at
