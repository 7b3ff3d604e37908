"""``traffic collect`` at its defaults, in the background: RSS, bytes written, CPU per cycle.

The main run: ``traffic --config <tmp> collect`` at the default intervals (poll 5 s, save 10 min)
inside a network namespace with 4 interfaces (dummy; veth pairs where the kernel has no dummy
driver), made as ``bench.collector_cpu`` makes it and entered with ``ip netns exec`` (which execs,
so the PID is the collector's). The config lists the 4 interfaces; a sender process in the same
namespace puts a small frame on each of them every second, so that every poll has deltas. The store
is on the real disk (``bench/.cache``), the realtime file and the output on a RAM disk, as ``/run``
is on a Raspberry Pi and logs go to supervisord or journald in production.

- ``collect-rss``: ``VmRSS`` of ``/proc/PID/status`` at the end of the run.
- ``collect-writes``: ``write_bytes`` of ``/proc/PID/io`` (bytes the process caused to be sent
  to the block layer, counted when page-cache pages become dirty) from the end of start-up (the
  "collecting every" log line, before the first save) to just after the last save of the run,
  scaled to 24 h. The note adds the same per save on a store that already holds a year.
- ``collector-cpu``: the first field of ``/proc/PID/task/*/schedstat`` (ns on a CPU) summed over
  all the collector's threads from the end of a warm-up to the end of the run, divided by the
  number of 5 s cycles in between. The floor, measured the same way over the same window: a bare
  loop in a process of its own in the same namespace that reads the same 4 interfaces' byte
  counters every 5 s with ``os.pread`` on descriptors kept open.
- ``collect-rss-router``: ``VmRSS`` of a second run beside it (10 minutes, no namespace) whose
  collector also reads a ``hilink`` router (the simulator of ``tests/sim/hilink.py`` in a process
  of its own) every 10 s, as a source beside the kernel's.

The runs are started first and sampled by threads, so the other benchmarks run meanwhile.
"""

import argparse
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
from typing import TYPE_CHECKING

from bench.collector_cpu import (
    FRAME,
    FRAME_PAYLOAD,
    INTERFACES,
    counter_descriptors,
    make_namespace,
    sender,
)
from bench.common import (
    CACHE,
    ROOT,
    TRAFFIC,
    Result,
    clean_env,
    fs_type,
    have_root_netns,
    median,
    remove_db,
    tmpfs_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from zoneinfo import ZoneInfo

    from traffic.counters import Delta
    from traffic.store.sqlite import SQLiteStore

RSS_TARGET_MB = 35.0
WRITES_TARGET_MB = 5.0
CPU_TARGET_MS = 1.0
STARTED_LINE = "collecting every"
POLL_S = 5.0
FULL_S = 1260.0
"""Two save intervals at the default of 10 minutes, and a minute of start-up and margin."""
ROUTER_S = 600.0
QUICK_S = 60.0
WARMUP_S = 30.0
QUICK_WARMUP_S = 10.0
SAMPLE_S = 1.0
TRICKLE_BYTES = 1000
SEND_EVERY_S = 1.0
NAMES = ("collector-cpu", "collect-rss", "collect-writes")
ROUTER_NAMES = ("collect-rss-router",)
ROUTER_PASSWORD = "bench-router-password"


def default_save_interval() -> float:
    from traffic.config import load_config

    return load_config(None, [], environ={}, system_path=None).collector.save_interval


SAVE_INTERVAL_S = default_save_interval()


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


class Tasks:
    """CPU time of every thread of a process, from ``/proc/PID/task/*/schedstat``.

    Sampled often, so a thread that ends between two samples loses at most one interval of its
    time; a thread that starts after the first sample counts from zero.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.comm: dict[int, str] = {}
        self.first_ticks = self._ticks()
        self.ticks = self.first_ticks
        for tid, ns in self._read().items():
            self.first[tid] = self.last[tid] = ns

    def _read(self) -> dict[int, int]:
        found = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found[int(task.name)] = int((task / "schedstat").read_text().split()[0])
                self.comm.setdefault(int(task.name), (task / "comm").read_text().strip())
        return found

    def _ticks(self) -> int:
        """utime + stime of the whole process (ended threads included), in clock ticks."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])

    def sample(self) -> None:
        for tid, ns in self._read().items():
            self.first.setdefault(tid, 0)
            self.last[tid] = ns
        self.ticks = self._ticks()

    def spent_ns(self) -> dict[int, int]:
        return {tid: self.last[tid] - self.first[tid] for tid in self.last}

    def ticks_ms(self) -> float:
        return (self.ticks - self.first_ticks) * 1000 / os.sysconf("SC_CLK_TCK")

    def split(self, cycles: float) -> str:
        """Each thread's ms per cycle, busiest first, named by its ``comm``."""
        spent = sorted(self.spent_ns().items(), key=lambda item: -item[1])
        parts = [f"{'main' if tid == self.pid else self.comm.get(tid, '?')} {tid}: "
                 f"{ns / 1e6 / cycles:.3f}" for tid, ns in spent if ns > 0]
        idle = len(spent) - len(parts)
        return ", ".join(parts) + (f"; {idle} more threads took none" if idle else "")


class CollectRun:
    """One background ``traffic collect`` run; ``results()`` waits for it and reports."""

    def __init__(self, quick: bool, router: bool = False) -> None:
        self.quick = quick
        self.duration = QUICK_S if quick else ROUTER_S if router else FULL_S
        self.warmup = QUICK_WARMUP_S if quick else WARMUP_S
        self.router = router
        self.namespace = "" if router else f"traffic-bench-collect-{os.getpid()}"
        self.helpers: list[subprocess.Popen[bytes]] = []
        self.simulator: subprocess.Popen[str] | None = None
        self.work = CACHE / f"collect-{os.getpid()}{'-router' if router else ''}"
        self.run_dir = Path(tempfile.mkdtemp(prefix="traffic-bench-collect-", dir=tmpfs_dir()))
        self.figures: dict[str, float] = {}
        self.notes: list[str] = []
        self.write_notes: list[str] = []
        self.cpu_note = ""
        self.error = ""
        self.skip = ""
        self.steady = ""
        self.thread = threading.Thread(target=self._run, name="collect-run", daemon=True)
        self.stop = threading.Event()
        self.trickle = threading.Thread(target=_trickle, args=(self.stop,), name="trickle",
                                        daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace] if self.namespace else []

    def _config(self) -> Path:
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "traffic.toml"
        text = (f'[store]\nurl = "sqlite://{self.work}/traffic.db"\n'
                f'[collector]\nruntime_dir = "{self.run_dir}"\n')
        if self.namespace:
            kind = make_namespace(self.namespace)
            names = ", ".join(f'"{name}"' for name in INTERFACES)
            text += f'[[sources]]\ntype = "kernel"\ninterfaces = [{names}]\n'
            self.notes.append(f"{len(INTERFACES)} {kind} ifaces in a namespace, a "
                              f"{14 + FRAME_PAYLOAD}-byte frame on each every {SEND_EVERY_S:g} s")
            for role in ("--sender", "--floor"):
                self.helpers.append(subprocess.Popen(
                    [*self._prefix(), sys.executable, "-m", "bench.collect_run", role],
                    cwd=ROOT, env=clean_env(), stdin=subprocess.DEVNULL))
            return self._write(config, text)
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
        return self._write(config, text)

    @staticmethod
    def _write(config: Path, text: str) -> Path:
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
            if self.namespace:
                self.skip = have_root_netns()
                if self.skip:
                    return
            config = self._config()
            if self.namespace:
                self._first_save(config)
            log_path = self.run_dir / "collector.log"
            with log_path.open("wb") as log:
                began = time.monotonic()
                process = subprocess.Popen(
                    [*self._prefix(), str(TRAFFIC), "--config", str(config), "collect"],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=clean_env(),
                    cwd=self.run_dir)
            pid = process.pid
            while STARTED_LINE not in log_path.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() - began > 60:
                    raise RuntimeError("collector did not start: "
                                       + log_path.read_text(errors="replace")[-300:])
                time.sleep(0.05)
            first_io, first_at = _io(pid), time.monotonic()
            self.figures["startup_rss_mb"] = _mb(_status(pid)["VmRSS"])
            self.figures["startup_write_kb"] = first_io["write_bytes"] / 1024
            end = began + self.duration
            last_io, last_at, saves = self._watch(pid, first_at, end)
            status = _status(pid)
            self.figures["rss_mb"] = _mb(status["VmRSS"])
            self.figures["hwm_mb"] = _mb(status["VmHWM"])
            self.figures["threads"] = float(status["Threads"])
            span = last_at - first_at
            written = last_io["write_bytes"] - first_io["write_bytes"]
            cancelled = last_io["cancelled_write_bytes"] - first_io["cancelled_write_bytes"]
            self.figures["saves"] = saves
            self.figures["span_s"] = span
            self.figures["written"] = written
            if saves:
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
            for helper in (*self.helpers, self.simulator):
                if helper is not None:
                    helper.kill()
                    helper.wait()
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            if self.namespace:
                subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                shutil.rmtree(self.work)

    def _first_save(self, config: Path) -> None:
        """Two ``traffic collect --once`` runs a few seconds apart, traffic flowing between
        them, before the measured run: the store then has had its first save, as on any box
        after its first ten minutes. That save creates the first rows of every table, once in
        the store's life, so it is not part of a day at the defaults; the note gives its cost.
        """
        written = []
        for _ in range(2):
            once = subprocess.Popen(
                [*self._prefix(), str(TRAFFIC), "--config", str(config), "collect", "--once"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                env=clean_env(), cwd=self.run_dir)
            _, status, usage = os.wait4(once.pid, 0)
            once.returncode = os.waitstatus_to_exitcode(status)
            if once.returncode != 0:
                assert once.stderr is not None
                raise RuntimeError(f"collect --once: exit {once.returncode}: "
                                   f"{once.stderr.read().decode(errors='replace')[-200:]}")
            written.append(usage.ru_oublock * 512 / 1024)  # Linux: write_bytes / 512
            time.sleep(2 * SEND_EVERY_S)
        self.write_notes.append(
            f"the store's first save made beforehand by two collect --once runs "
            f"({written[0]:.0f} and {written[1]:.0f} KiB written, start-up included)")

    def _watch(self, pid: int, first_at: float,
               end: float) -> tuple[dict[str, int], float, int]:
        """Sample until ``end``; ``/proc/PID/io``, its time and the saves seen, at the last save.

        A save is seen as a change of the WAL file; the window for the writes ends just after the
        last one, as it began just before the first, so that it holds whole save intervals and
        the scaling to a day neither misses nor doubles a save. Without a save in the run it
        ends at ``end``. The CPU window runs from the end of the warm-up to ``end``.
        """
        wal = self.work / "traffic.db-wal"

        def stamp() -> int:
            return wal.stat().st_mtime_ns if wal.exists() else 0

        time.sleep(max(0.0, first_at + self.warmup - time.monotonic()))
        floor_pid = self.helpers[-1].pid if self.helpers else 0
        tasks = Tasks(pid) if not self.router else None
        floor = Tasks(floor_pid) if floor_pid else None
        cpu_began = time.monotonic()
        seen = stamp()
        saves = 0
        at_save: tuple[dict[str, int], float] | None = None
        while time.monotonic() < end:
            time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
            for each in (tasks, floor):
                if each is not None:
                    each.sample()
            if stamp() != seen:
                time.sleep(0.5)
                seen = stamp()
                saves += 1
                at_save = _io(pid), time.monotonic()
        for each in (tasks, floor):
            if each is not None:
                each.sample()
        if tasks is not None and floor is not None:
            self._cpu(tasks, floor, time.monotonic() - cpu_began)
        if at_save is None:
            self.write_notes.append(f"no figure: no save in the run, {self.duration:.0f} s "
                                    f"being below two save intervals of {SAVE_INTERVAL_S:.0f} s")
            return _io(pid), time.monotonic(), 0
        return at_save[0], at_save[1], saves

    def _cpu(self, tasks: Tasks, floor: Tasks, window_s: float) -> None:
        cycles = window_s / POLL_S
        collector_ms = sum(tasks.spent_ns().values()) / 1e6 / cycles
        floor_ms = sum(floor.spent_ns().values()) / 1e6 / cycles
        self.figures["cpu_ms"] = collector_ms
        self.cpu_note = "; ".join([
            f"{collector_ms / floor_ms:.0f}x floor ({floor_ms * 1000:.1f} us/cycle: a bare "
            f"loop reading the {2 * len(INTERFACES)} byte counters with os.pread every "
            f"{POLL_S:g} s, in the namespace)" if floor_ms > 0 else "floor took no CPU",
            f"{cycles:.0f} cycles in {window_s:.0f} s after {self.warmup:.0f} s warm-up",
            f"utime+stime {tasks.ticks_ms() / cycles:.2f} ms/cycle",
            f"{collector_ms / POLL_S / 10:.3f}% of a core",
            f"per thread (comm TID: ms/cycle) {tasks.split(cycles)}",
            *([f"below two save intervals of {SAVE_INTERVAL_S:.0f} s, so fewer saves than at "
               "the defaults"] if window_s < 2 * SAVE_INTERVAL_S else [])])

    def results(self, names: tuple[str, ...] = NAMES) -> list[Result]:
        self.thread.join()
        f = self.figures
        out = []
        if "collector-cpu" in names:
            cpu = Result("collector-cpu", f.get("cpu_ms"), "ms/cycle", CPU_TARGET_MS,
                         error=self.error, note=self.skip or self.cpu_note)
            out.append(cpu)
        for name in ("collect-rss", *ROUTER_NAMES):
            if name not in names:
                continue
            rss = Result(name, f.get("rss_mb"), "MB", RSS_TARGET_MB, error=self.error,
                         note=self.skip)
            if not self.error and not self.skip:
                rss.note = (f"after {self.duration:.0f} s; {f['startup_rss_mb']:.1f} MB after "
                            f"start-up, peak {f['hwm_mb']:.1f} MB, {f['threads']:.0f} threads; "
                            f"MB = 10**6 B, {f['rss_mb'] / 1.048576:.1f} MiB; "
                            + "; ".join(self.notes))
            out.append(rss)
        if "collect-writes" in names:
            writes = Result("collect-writes", f.get("mb_per_day"), "MB/day", WRITES_TARGET_MB,
                            error=self.error, note=self.skip)
            if not self.error and not self.skip:
                saves = int(f["saves"])
                writes.note = "; ".join([
                    f"{f['written'] / 1024:.0f} KiB in {f['span_s']:.0f} s = {saves} "
                    f"save{'' if saves == 1 else 's'} at the default {SAVE_INTERVAL_S:.0f} s, "
                    f"{f['written'] / 1024 / max(saves, 1):.0f} KiB each; MB = 10**6 B",
                    *self.write_notes,
                    f"{f['syscw']:.0f} write calls of {f['wchar'] / 1024:.0f} KiB (incl. RAM disk)",
                    f"cancelled {f['cancelled'] / 1024:.0f} KiB",
                    f"start-up's {f['startup_write_kb']:.0f} KiB not counted",
                    f"store and WAL {f['db_kb']:.0f} KiB at the end",
                    write_floor(SAVE_INTERVAL_S),
                    *([self.steady] if self.steady else [])])
            out.append(writes)
        return out


def _sender() -> None:
    """In the namespace: a broadcast frame on each interface every second, until killed."""
    socks = [sender(name) for name in INTERFACES]
    while True:
        for sock in socks:
            sock.send(FRAME)
        time.sleep(SEND_EVERY_S)


def _floor() -> None:
    """In the namespace: the cheapest read of the 4 interfaces' byte counters every 5 s."""
    descriptors = counter_descriptors()
    due = time.monotonic()
    while True:
        counters = [int(os.pread(descriptor, 32, 0)) for descriptor in descriptors]
        if min(counters) < 0:
            raise RuntimeError("negative counter")
        due += POLL_S
        time.sleep(max(0.0, due - time.monotonic()))


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


STEADY_DAYS = 7
WRITES_STORE_VERSION = 1
ROUTER_GAUGES = ("rx_rate", "tx_rate", "rsrp", "rsrq", "sinr", "rssi", "network_type",
                 "operator", "band", "cell_id", "sim", "roaming", "wan_ip")
ROUTER_KEY = "hilink:router"


def steady_commit_cost(days: int = STEADY_DAYS) -> str:
    """What a store that already holds a year writes a day, as a note.

    The store is what a year at the defaults leaves: as many interfaces as the live run, each
    save's five-second deltas merged per 5-minute bucket as the collector merges them, pruned
    every day with the default retention (``_writes_year_store``, cached). A copy of it is
    claimed as the collector claims its store (with its checkpoint setting) and takes ``days``
    days of saves, 144 a day, each day ending with the daily prune; before each save the files
    are flushed with ``fdatasync``, as the kernel would have written them back between saves
    (``vm.dirty_expire_centisecs`` is 30 s by default), so each save dirties its pages anew.
    Then the WAL is checkpointed into the file: the collector does that about every ten days,
    so charging one to a week errs high. A second copy, given 60 days (``retention.gauges``) of
    a HiLink router's 13 gauges first, takes the same with those gauges read every 10 s.
    """
    from traffic.store.sqlite import SQLiteStore

    source = _writes_year_store()
    results = []
    for router in (False, True):
        path = CACHE / f"steady-{os.getpid()}.db"
        remove_db(path)
        shutil.copyfile(source, path)
        store = SQLiteStore(str(path), _bench_tz(), _retention())
        try:
            if router:
                _router_gauges_kept(store)
            store.claim_writer()  # which also copies what came before into the file
            results.append(_week(store, path, days, router))
        finally:
            store.close()
            remove_db(path)
    (costs, held, prunes, checkpoint), (router_costs, _, router_prunes, router_checkpoint) = results
    held_costs = [cost for cost, was_held in zip(costs, held, strict=True) if was_held]
    folding = [cost for cost, was_held in zip(costs, held, strict=True) if not was_held]
    per_day = (sum(costs) + sum(prunes) + checkpoint) / days
    router_per_day = (sum(router_costs) + sum(router_prunes) + router_checkpoint) / days
    return (f"on a store holding a year of {len(INTERFACES)} interfaces, {days} days of saves "
            f"and daily prunes: {per_day / 1e6:.1f} MB/day (held saves "
            f"{median(held_costs) / 1024:.0f} KiB, folding {median(folding) / 1024:.0f} KiB "
            "(medians); the prune "
            f"{median(prunes) / 1024:.0f} KiB; the WAL's checkpoint into the file "
            f"{checkpoint / 1024:.0f} KiB, charged to the week); with a router's 13 gauges "
            f"beside them (60 days kept): {router_per_day / 1e6:.1f} MB/day (its checkpoint "
            f"{router_checkpoint / 1024:.0f} KiB)")


def _bench_tz() -> "ZoneInfo":
    from bench.cli_latency import cli_config

    return cli_config().timezone


def _retention() -> dict[str, float]:
    from traffic.config import load_config

    return load_config(None, [], environ={}, system_path=None).retention


def _keys() -> list[str]:
    return [f"kernel:{name}" for name in INTERFACES]


def _save_deltas(keys: list[str], at: int) -> "list[Delta]":
    """One save interval's five-second deltas of ``keys`` from ``at``, merged as the collector
    merges them before a save."""
    from collector.worker import BucketMerger
    from traffic.counters import Delta

    per_save = round(SAVE_INTERVAL_S / POLL_S)
    step = round(POLL_S * 1000)
    return BucketMerger([Delta(key, at + i * step, at + (i + 1) * step, 90_000 + i, 9_000 + i)
                         for key in keys for i in range(per_save)]).deltas


def _writes_year_store() -> Path:
    """A year at the defaults, cached: a day's saves in one call, then the daily prune."""
    from traffic.counters import CounterState
    from traffic.periods import DAY_MS
    from traffic.store.sqlite import SQLiteStore

    path = CACHE / f"writes-year-v{WRITES_STORE_VERSION}-{len(INTERFACES)}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f"{path.name}.building-{os.getpid()}")
    remove_db(building)
    store = SQLiteStore(str(building), _bench_tz(), _retention())
    keys, interval = _keys(), round(SAVE_INTERVAL_S * 1000)
    at = time.time_ns() // 1_000_000 - 365 * DAY_MS
    at -= at % interval
    total = 0
    try:
        for _ in range(365):
            day = [delta for n in range(DAY_MS // interval)
                   for delta in _save_deltas(keys, at + n * interval)]
            at += DAY_MS
            total += sum(delta.rx for delta in day) // len(keys)
            store.add(day, {key: CounterState("bench/1", at, total, total // 10) for key in keys})
            store.prune(at)
    finally:
        store.close()
    building.rename(path)
    return path


def _router_gauges_kept(store: "SQLiteStore") -> None:
    """60 days of the router's gauges, 5-minute buckets, as its saves would have left them."""
    from traffic.periods import DAY_MS
    from traffic.store import GaugeSample

    end = max(state.at for state in store.tracker_state().values())
    for day_end in range(end - 60 * DAY_MS, end, DAY_MS):
        store.add([], {}, [GaugeSample(ROUTER_KEY, name, at, _gauge_value(name))
                           for at in range(day_end, min(day_end + DAY_MS, end), 300_000)
                           for name in ROUTER_GAUGES])


def _gauge_value(name: str) -> float | str:
    return -95.0 if name in ("rsrp", "rsrq", "sinr", "rssi", "rx_rate", "tx_rate") else "LTE"


def _week(store: "SQLiteStore", path: Path, days: int, router: bool
          ) -> tuple[list[int], list[bool], list[int], int]:
    """Bytes dirtied by each save and whether it was held, by each daily prune, and by the
    checkpoint at the end."""
    from traffic.counters import CounterState
    from traffic.periods import DAY_MS
    from traffic.store import GaugeSample

    keys, interval = _keys(), round(SAVE_INTERVAL_S * 1000)
    states = store.tracker_state()
    at, life = max(state.at for state in states.values()), states[keys[0]].life
    totals = {key: [states[key].rx, states[key].tx] for key in keys}
    costs, held, prunes = [], [], []

    def dirtied(work: "Callable[[], object]") -> int:
        _flush(path)
        before = _io(os.getpid())["write_bytes"]
        work()
        _flush(path)
        return _io(os.getpid())["write_bytes"] - before

    for _ in range(days):
        for _ in range(DAY_MS // interval):
            deltas = _save_deltas(keys, at)
            gauges = [GaugeSample(ROUTER_KEY, name, at + i, _gauge_value(name))
                      for i in range(0, interval, 10_000) for name in ROUTER_GAUGES
                      ] if router else []
            at += interval
            for delta in deltas:
                totals[delta.key][0] += delta.rx
                totals[delta.key][1] += delta.tx
            state = {key: CounterState(life, at, *totals[key]) for key in keys}
            costs.append(dirtied(lambda: store.add(deltas, state, gauges)))  # noqa: B023
            held.append(bool(store.db.execute(
                "SELECT COUNT(*) FROM unfolded WHERE record != zeroblob(length(record))"
            ).fetchone()[0]))
        prunes.append(dirtied(lambda: store.prune(at)))  # noqa: B023
    checkpoint = dirtied(lambda: store.db.execute("PRAGMA wal_checkpoint(PASSIVE)"))
    return costs, held, prunes, checkpoint


def _flush(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        name = f"{path}{suffix}"
        if os.path.exists(name):
            descriptor = os.open(name, os.O_RDWR)
            try:
                os.fdatasync(descriptor)
            finally:
                os.close(descriptor)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--sender", action="store_true")
    role.add_argument("--floor", action="store_true")
    if parser.parse_args().sender:
        _sender()
    else:
        _floor()
