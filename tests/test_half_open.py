"""Half-sent requests cannot hold the web app up (issue 10 item 7).

Fifty connections from 127.0.0.1 each send part of a request line and stay open; an allowed
request must still be answered at once, with gunicorn started as ``make run`` starts it
(supervisor/programs.conf) and behind nginx as documented (tests/stack.py).
"""

import configparser
import shlex
import socket
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.stack import ROOT, WebStack, clean_env, free_port, wait_for_port
from traffic.store import open_store

HALF_SENT = b"GET /api/v1/usage HTTP/1.1\r\nHo"
HELD = 50


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
                      f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
                      '[web]\nallow = ["127.0.0.0/8"]\n')
    open_store(f"sqlite://{tmp_path}/traffic.db", ZoneInfo("UTC")).close()
    return config


def make_run_web_command() -> list[str]:
    """The traffic-web program's command line, as supervisord runs it under ``make run``."""
    programs = configparser.RawConfigParser()
    programs.read(ROOT / "supervisor" / "programs.conf")
    command = programs["program:traffic-web"]["command"]
    return shlex.split(command.replace("%(here)s", str(ROOT / "supervisor")))


@contextmanager
def held_open(port: int) -> Iterator[list[socket.socket]]:
    sockets = []
    try:
        for _ in range(HELD):
            held = socket.create_connection(("127.0.0.1", port), timeout=5)
            held.sendall(HALF_SENT)
            sockets.append(held)
        time.sleep(0.5)  # let the server take them all in
        yield sockets
    finally:
        for held in sockets:
            held.close()


def answer_times(url: str, count: int = 5) -> list[float]:
    times = []
    for _ in range(count):
        started = time.monotonic()
        with urllib.request.urlopen(f"{url}/api/v1/status", timeout=10) as response:
            assert response.status == 200
            response.read()
        times.append(time.monotonic() - started)
    return times


def assert_not_delayed(port: int, url: str) -> None:
    answer_times(url, 2)  # warm up: first imports, first store open
    with held_open(port) as sockets:
        times = answer_times(url)
        for held in sockets:  # each still waits: neither answered nor closed
            held.setblocking(False)
            with pytest.raises(BlockingIOError):
                held.recv(1)
    assert max(times) < 1.0, times
    assert statistics.median(times) < 0.1, times


def test_make_run_web_is_not_delayed_by_half_sent_requests(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(TRAFFIC_CONFIG=str(write_config(tmp_path)),
                    TRAFFIC_WEB_BIND=f"127.0.0.1:{port}")
    with (tmp_path / "gunicorn.log").open("ab") as log:
        web = subprocess.Popen(make_run_web_command(), cwd=ROOT, env=env, stdout=log,
                               stderr=log)
    try:
        wait_for_port(port, web)
        assert_not_delayed(port, f"http://127.0.0.1:{port}")
        with held_open(port) as sockets:  # nor are they kept for ever: 5 s for the headers
            started = time.monotonic()
            for held in sockets:
                held.settimeout(10)
                assert held.recv(1) == b""
            assert time.monotonic() - started < 8
    finally:
        web.terminate()
        web.wait(timeout=20)


def test_nginx_in_front_is_not_delayed_by_half_sent_requests(tmp_path: Path) -> None:
    stack = WebStack(write_config(tmp_path), tmp_path).start()
    try:
        assert_not_delayed(stack.port, stack.url)
    finally:
        stack.stop()
