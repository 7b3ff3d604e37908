"""RSS of ``traffic collect`` after 10 minutes, and bytes it writes per day, from one run.

``traffic --config <tmp> collect`` runs at the default intervals (poll 5 s, save 60 s) with the
store on the real disk (``bench/.cache``) and the realtime file on a RAM disk, as ``/run`` is on
a Raspberry Pi. Its output goes to a file on that RAM disk too: in production, logs are written
by supervisord or journald, not by the collector. It watches the default-route interface (the
config default) if it carries traffic; else ``lo``, with a trickle of loopback UDP (1000 bytes a
second, sent by this process to itself) so that every save has deltas to write.

- ``collect-rss``: ``VmRSS`` of ``/proc/PID/status`` 600 s after start (``--quick``: 60 s).
- ``collect-rss-router``: the same, from a second run beside it whose collector also reads a
  ``hilink`` router (the simulator of ``tests/sim/hilink.py`` in a process of its own) every
  10 s, as a source beside the kernel's.
- ``collect-writes``: ``write_bytes`` of ``/proc/PID/io`` (bytes the process caused to be sent
  to the block layer, counted when page-cache pages become dirty) from the end of start-up (the
  "collecting every" log line, before the first save) to just after the last save of the run,
  scaled to 24 h. The note adds the same per save on a store that already holds a year.

The run is started first and sampled by a thread, so the other benchmarks run meanwhile.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import (
    CACHE,
    ROOT,
    TRAFFIC,
    Result,
    clean_env,
    fs_type,
    remove_db,
    tmpfs_dir,
)

RSS_TARGET_MB = 35.0
WRITES_TARGET_MB = 5.0
STARTED_LINE = "collecting every"
SAVE_INTERVAL_S = 60
TRICKLE_BYTES = 1000
NAMES = ("collect-rss", "collect-writes")
ROUTER_NAMES = ("collect-rss-router",)
ROUTER_PASSWORD = "bench-router-password"


def _io(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = int(value)
    return fields


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def _mb(text: str) -> float:
    """Megabytes (10**6 bytes, the project's convention) in a ``/proc`` "123 kB" (KiB) field."""
    return int(text.split()[0]) * 1024 / 1e6


def _busy(interface: str, wait_s: float = 3.0) -> bool:
    """Whether ``interface`` carries any bytes within ``wait_s``."""
    def total() -> int:
        base = Path("/sys/class/net", interface, "statistics")
        try:
            return sum(int((base / name).read_text()) for name in ("rx_bytes", "tx_bytes"))
        except (OSError, ValueError):
            return -1
    first = total()
    time.sleep(wait_s)
    return first >= 0 and total() != first


def _trickle(stop: threading.Event) -> None:
    """Loopback traffic for an otherwise idle ``lo``: a datagram a second, sent to itself."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        address = sock.getsockname()
        payload = b"\x00" * (TRICKLE_BYTES - 28 - 14)  # less the IP+UDP and Ethernet headers
        while not stop.wait(1.0):
            sock.sendto(payload, address)
            with contextlib.suppress(OSError):
                sock.recv(65536)


def _default_interface() -> str | None:
    from collector.sources.kernel import default_route_interface

    return default_route_interface()


class CollectRun:
    """One background ``traffic collect`` run; ``results()`` waits for it and reports."""

    def __init__(self, quick: bool, router: bool = False) -> None:
        self.duration = 60.0 if quick else 600.0
        self.router = router
        self.simulator: subprocess.Popen[str] | None = None
        self.work = CACHE / f"collect-{os.getpid()}{'-router' if router else ''}"
        self.run_dir = Path(tempfile.mkdtemp(prefix="traffic-bench-collect-", dir=tmpfs_dir()))
        self.figures: dict[str, float] = {}
        self.notes: list[str] = []
        self.write_notes: list[str] = []
        self.error = ""
        self.steady = ""
        self.thread = threading.Thread(target=self._run, name="collect-run", daemon=True)
        self.stop = threading.Event()
        self.trickle = threading.Thread(target=_trickle, args=(self.stop,), name="trickle",
                                        daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _config(self) -> Path:
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "traffic.toml"
        text = (f'[store]\nurl = "sqlite://{self.work}/traffic.db"\n'
                f'[collector]\nruntime_dir = "{self.run_dir}"\n')
        interface = _default_interface()
        if interface is None or not _busy(interface):
            text += '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
            self.notes.append(f"iface lo ({interface or 'no default route'} is idle), "
                              f"{TRICKLE_BYTES} B/s of loopback UDP sent to itself")
            self.trickle.start()
        else:
            self.notes.append(f"iface {interface}")
        if self.router:
            text += (f'[[sources]]\ntype = "hilink"\nurl = "{self._start_simulator()}"\n'
                     f'password = "{ROUTER_PASSWORD}"\n')
            self.notes.append("and a hilink router (simulated) every 10 s")
        config.write_text(text)
        return config

    def _start_simulator(self) -> str:
        self.simulator = subprocess.Popen(
            [sys.executable, "-m", "tests.sim.hilink", "--port", "0", "--password",
             ROUTER_PASSWORD, "--grow", "250000"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env=clean_env())
        assert self.simulator.stdout is not None
        return self.simulator.stdout.readline().split()[-1]

    def _run(self) -> None:
        process: subprocess.Popen[bytes] | None = None
        try:
            config = self._config()
            log_path = self.run_dir / "collector.log"
            with log_path.open("wb") as log:
                began = time.monotonic()
                process = subprocess.Popen([str(TRAFFIC), "--config", str(config), "collect"],
                                           stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                           env=clean_env(), cwd=self.run_dir)
            pid = process.pid
            while STARTED_LINE not in log_path.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() - began > 60:
                    raise RuntimeError("collector did not start: "
                                       + log_path.read_text(errors="replace")[-300:])
                time.sleep(0.05)
            first_io, first_at = _io(pid), time.monotonic()
            self.figures["startup_rss_mb"] = _mb(_status(pid)["VmRSS"])
            self.figures["startup_write_kb"] = first_io["write_bytes"] / 1024
            time.sleep(max(0.0, began + self.duration - time.monotonic()))
            status = _status(pid)
            last_io, last_at = self._after_next_save(pid)
            self.figures["rss_mb"] = _mb(status["VmRSS"])
            self.figures["hwm_mb"] = _mb(status["VmHWM"])
            self.figures["threads"] = float(status["Threads"])
            span = last_at - first_at
            written = last_io["write_bytes"] - first_io["write_bytes"]
            cancelled = last_io["cancelled_write_bytes"] - first_io["cancelled_write_bytes"]
            self.figures["span_s"] = span
            self.figures["written"] = written
            self.figures["mb_per_day"] = written * 86400 / span / 1e6
            self.figures["cancelled"] = cancelled
            self.figures["syscw"] = last_io["syscw"] - first_io["syscw"]
            self.figures["wchar"] = last_io["wchar"] - first_io["wchar"]
            self.figures["db_kb"] = sum(
                p.stat().st_size for p in self.work.glob("traffic.db*") if p.exists()) / 1024
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            if code != 0:
                self.notes.append(f"exit {code} after SIGTERM")
            errors = [line for line in log_path.read_text(errors="replace").splitlines()
                      if " ERROR " in line or "Traceback" in line]
            if errors:
                self.notes.append(f"log: {errors[0][-120:]}")
            db = self.work / "traffic.db"
            self.notes.append(f"store on {fs_type(db)}, runtime dir on {fs_type(self.run_dir)}")
        except Exception as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.stop.set()
            if self.simulator is not None:
                self.simulator.kill()
                self.simulator.wait()
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            shutil.rmtree(self.run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                shutil.rmtree(self.work)

    def _after_next_save(self, pid: int) -> tuple[dict[str, int], float]:
        """``/proc/PID/io`` and the time just after the next save (the WAL file changes).

        Ending the window just after a save, as it began just before the first, makes it hold
        whole save intervals, so the scaling to a day neither misses nor doubles a save.
        """
        wal = self.work / "traffic.db-wal"

        def stamp() -> int:
            return wal.stat().st_mtime_ns if wal.exists() else 0

        first = stamp()
        deadline = time.monotonic() + SAVE_INTERVAL_S + 10
        while stamp() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        if stamp() == first:
            self.write_notes.append("no save seen at the end")
        time.sleep(0.5)
        return _io(pid), time.monotonic()

    def results(self, names: tuple[str, ...] = NAMES) -> list[Result]:
        self.thread.join()
        f = self.figures
        out = []
        for name in ("collect-rss", *ROUTER_NAMES):
            if name not in names:
                continue
            rss = Result(name, f.get("rss_mb"), "MB", RSS_TARGET_MB, error=self.error)
            if not self.error:
                rss.note = (f"after {self.duration:.0f} s; {f['startup_rss_mb']:.1f} MB after "
                            f"start-up, peak {f['hwm_mb']:.1f} MB, {f['threads']:.0f} threads; "
                            f"MB = 10**6 B, {f['rss_mb'] / 1.048576:.1f} MiB; "
                            + "; ".join(self.notes))
            out.append(rss)
        if "collect-writes" in names:
            writes = Result("collect-writes", f.get("mb_per_day"), "MB/day", WRITES_TARGET_MB,
                            error=self.error)
            if not self.error:
                saves = round(f["span_s"] / SAVE_INTERVAL_S)
                writes.note = "; ".join([
                    f"{f['written'] / 1024:.0f} KiB in {f['span_s']:.0f} s = {saves} "
                    f"save{'' if saves == 1 else 's'}, "
                    f"{f['written'] / 1024 / max(saves, 1):.0f} KiB each; MB = 10**6 B",
                    f"{f['syscw']:.0f} write calls of {f['wchar'] / 1024:.0f} KiB (incl. RAM disk)",
                    f"cancelled {f['cancelled'] / 1024:.0f} KiB",
                    f"start-up's {f['startup_write_kb']:.0f} KiB not counted",
                    f"store and WAL {f['db_kb']:.0f} KiB at the end",
                    write_floor(SAVE_INTERVAL_S),
                    *self.write_notes, *([self.steady] if self.steady else [])])
            out.append(writes)
        return out


def write_floor(save_interval_s: float) -> str:
    """The least any store can write per day at this save interval, as a note.

    The kernel counts ``write_bytes`` a whole page at a time, when a clean page becomes dirty.
    Between two saves the page cache is written back (``vm.dirty_expire_centisecs``, 30 s by
    default), so every save that writes anything dirties at least one page again.
    """
    page = os.sysconf("SC_PAGE_SIZE")
    saves = 86400 / save_interval_s
    return (f"floor at one save per {save_interval_s:.0f} s: {saves:.0f} saves/day x one "
            f"{page // 1024} KiB page = {saves * page / 1e6:.1f} MB/day")


def steady_commit_cost(commits: int = 20) -> str:
    """Bytes dirtied by one save on a store that already holds a year, as a note.

    A copy of the cached year store takes ``commits`` saves of 12 five-second deltas (one minute at
    the defaults). Before each, the store's files are flushed with ``fdatasync``, as the kernel
    would have written them back during the 60 s between saves (``vm.dirty_expire_centisecs`` is
    30 s by default), so each save dirties its pages anew, as it does in production.
    """
    from bench.cli_latency import KEY, STEP_MS, cli_config, copy_of_year_store
    from traffic.config import load_config
    from traffic.counters import CounterState, Delta
    from traffic.store.sqlite import SQLiteStore

    path = copy_of_year_store(CACHE / f"steady-{os.getpid()}.db")
    retention = load_config(None, [], environ={}, system_path=None).retention
    store = SQLiteStore(str(path), cli_config().timezone, retention)
    frame = 24 + store.db.execute("PRAGMA page_size").fetchone()[0]
    try:
        state = store.tracker_state()[KEY]
        at, rx, tx = state.at, state.rx, state.tx
        costs = []
        frames = []
        for _ in range(commits):
            deltas = [Delta(KEY, at + i * STEP_MS, at + (i + 1) * STEP_MS, 90_000 + i, 9_000 + i)
                      for i in range(12)]
            at += 12 * STEP_MS
            rx += sum(d.rx for d in deltas)
            tx += sum(d.tx for d in deltas)
            _flush(path)
            wal = Path(f"{path}-wal")
            wal_before = wal.stat().st_size if wal.exists() else 0
            before = _io(os.getpid())["write_bytes"]
            store.add(deltas, {KEY: CounterState(state.life, at, rx, tx)})
            costs.append(_io(os.getpid())["write_bytes"] - before)
            frames.append((wal.stat().st_size - wal_before) // frame)
        _flush(path)
        before = _io(os.getpid())["write_bytes"]
        cpu = time.process_time()
        removed = store.prune(at + 3_600_000)
        cpu = time.process_time() - cpu
        pruned = _io(os.getpid())["write_bytes"] - before
    finally:
        store.close()
        remove_db(path)
    costs.sort()
    typical = costs[len(costs) // 2]
    return (f"on a store holding a year: {typical / 1024:.0f} KiB dirtied per save (median of "
            f"{commits}; {min(frames)}-{max(frames)} WAL frames), "
            f"{typical * 1440 / 1e6:.1f} MB/day at one save a minute; the daily prune "
            f"there: {removed} rows, {pruned / 1024:.0f} KiB dirtied, {cpu * 1000:.0f} ms CPU")


def _flush(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        name = f"{path}{suffix}"
        if os.path.exists(name):
            descriptor = os.open(name, os.O_RDWR)
            try:
                os.fdatasync(descriptor)
            finally:
                os.close(descriptor)
