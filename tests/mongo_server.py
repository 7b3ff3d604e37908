"""A MongoDB-wire server for the tests: SecantusDB (PyPI ``secantusdb``, a MongoDB-compatible
server on the WiredTiger engine), started on a free loopback port as a single-node replica set,
or the real MongoDB named by ``TRAFFIC_TEST_MONGODB_URI``. Each test gets its own database."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.stack import free_port

SERVER = Path(sys.executable).with_name("secantusd-py")


def running_server(workdir: Path, standalone: bool = False,
                   prefix: tuple[str, ...] = (), port: int = 0) -> Iterator[str]:
    """The base URI of a server that runs while the generator is open; ``standalone``: one
    that is not a replica set (always SecantusDB); ``prefix``: a command to run it through,
    such as ``ip netns exec NAME`` (always SecantusDB, and not waited for here)."""
    if os.environ.get("TRAFFIC_TEST_MONGODB_URI") and not standalone and not prefix:
        yield os.environ["TRAFFIC_TEST_MONGODB_URI"].rstrip("/")
        return
    port = port or free_port()
    log = (workdir / "secantusd.log").open("w")
    server = subprocess.Popen(
        [*prefix, str(SERVER), "--host", "127.0.0.1", "--port", str(port), "--storage-path",
         str(workdir / "data"), *(["--standalone"] if standalone else [])],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    try:
        if not prefix:
            wait_for(port, server, workdir)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def wait_in_namespace(url: str, prefix: tuple[str, ...], timeout: float = 30) -> None:
    """Wait until the server at ``url`` answers a ping made through ``prefix`` (such as
    ``ip netns exec NAME``)."""
    ping = ("import sys; from pymongo import MongoClient; "
            "MongoClient(sys.argv[1], serverSelectionTimeoutMS=500).admin.command('ping')")
    deadline = time.monotonic() + timeout
    while subprocess.run([*prefix, sys.executable, "-c", ping, url],
                         capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no MongoDB server answers at {url} after {timeout}s")
        time.sleep(0.2)


def wait_for(port: int, server: subprocess.Popen, workdir: Path) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + 30
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"secantusd-py exited: {(workdir / 'secantusd.log').read_text()}")
        try:
            with MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                             serverSelectionTimeoutMS=300) as client:
                client.admin.command("ping")
                return
        except PyMongoError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def database_url(base: str) -> str:
    """A fresh database on the server, as a ``store.url``."""
    return f"{base}/traffic_{uuid.uuid4().hex[:12]}?directConnection=true"
