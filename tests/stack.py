"""The web stack as it runs on a box: gunicorn with util/gunicorn.conf.py behind nginx with
util/nginx/traffic.conf, both on loopback, started for a test (or a benchmark) and stopped after.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
NGINX_MAIN = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAFFIC_")}
    env.update(extra)
    return env


class WebStack:
    """gunicorn on ``app_port`` and nginx on ``port`` in front of it, for one config file."""

    def __init__(self, config_path: Path, workdir: Path) -> None:
        self.config_path = config_path
        self.workdir = workdir / "nginx"
        self.app_port = free_port()
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def start(self) -> "WebStack":
        env = clean_env(TRAFFIC_CONFIG=str(self.config_path),
                        TRAFFIC_WEB_BIND=f"127.0.0.1:{self.app_port}")
        log = (self.workdir.parent / "gunicorn.log").open("ab")
        gunicorn = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "util" / "gunicorn.conf.py"),
             "web:create_app()"], env=env, cwd=ROOT, stdout=log, stderr=log)
        self.processes.append(gunicorn)
        wait_for_port(self.app_port, gunicorn)
        self._start_nginx()
        return self

    def _start_nginx(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        site = (ROOT / "util" / "nginx" / "traffic.conf").read_text()
        for placeholder, value in (("@TRAFFIC_ROOT@", str(ROOT)),
                                   ("@LISTEN@", f"127.0.0.1:{self.port}"),
                                   ("@UPSTREAM@", f"127.0.0.1:{self.app_port}")):
            site = site.replace(placeholder, value)
        (self.workdir / "site.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""
        (self.workdir / "nginx.conf").write_text(NGINX_MAIN.format(tmp=self.workdir, user=user))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        process = subprocess.Popen([nginx, "-e", str(self.workdir / "nginx-error.log"), "-c",
                                    str(self.workdir / "nginx.conf")])
        self.processes.append(process)
        wait_for_port(self.port, process)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
