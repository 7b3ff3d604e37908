"""``make run``: both programs come up under supervisord, the API answers, Ctrl-C stops both."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def supervisor_status(state: Path) -> dict[str, tuple[str, int]]:
    out = subprocess.run(
        [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / "supervisor/supervisord.conf"),
         "status"], capture_output=True, text=True, env={**os.environ,
                                                          "SUPERVISOR_STATE_DIR": str(state)}
    ).stdout
    programs = {}
    for line in out.splitlines():
        name, state_name, *rest = line.split()
        pid = int(rest[1].rstrip(",")) if state_name == "RUNNING" else 0
        programs[name] = (state_name, pid)
    return programs


def test_make_run_starts_and_stops_both(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAFFIC_")}
    env.update(TRAFFIC_WEB_BIND=f"127.0.0.1:{port}",
               TRAFFIC_STORE_URL=f"sqlite://{tmp_path}/traffic.db",
               TRAFFIC_COLLECTOR_RUNTIME_DIR=str(tmp_path / "run"),
               SUPERVISOR_STATE_DIR=str(tmp_path / "state"))
    make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert make.stdout is not None
        banner = ""
        while "Dashboard" not in banner and make.poll() is None:
            banner = make.stdout.readline()
        assert f"Dashboard: http://127.0.0.1:{port}/" in banner, banner
        usage = None
        deadline = time.monotonic() + 60
        while usage is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/usage",
                                            timeout=5) as response:
                    usage = json.load(response)
            except OSError:
                time.sleep(0.3)
        assert usage is not None and {"rx", "tx", "period_start", "limit"} <= usage.keys()
        programs = supervisor_status(tmp_path / "state")
        while time.monotonic() < deadline and any(
                state == "STARTING" for state, _ in programs.values()):
            time.sleep(0.3)
            programs = supervisor_status(tmp_path / "state")
        assert {name: state for name, (state, _) in programs.items()} == {
            "traffic-collector": "RUNNING", "traffic-web": "RUNNING"}
        pids = [pid for _, pid in programs.values()]
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        make.wait(timeout=60)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived make run"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the web app still listens"
    assert (tmp_path / "traffic.db").exists()
