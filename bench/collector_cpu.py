"""CPU time of one in-process ``Collector.poll()`` with 4 interfaces (``collector-poll``).

The whole process, all its threads, at its defaults, is ``collector-cpu`` (``bench.collect_run``);
this one times the poll alone, against a floor read in the same loop.

The parent makes a network namespace with 4 interfaces (dummy; veth pairs where the kernel has no
dummy driver), then re-runs this module inside it with ``ip netns exec``, so the kernel source
reads the namespace's own ``/sys/class/net``. The child builds a real ``Collector`` (kernel source,
SQLite store in a temporary directory, realtime file on a RAM disk) with a clock that advances 5 s
per cycle, as at the default interval, and measures ``time.process_time()`` around each
``poll()``. Between polls it puts a frame on each interface (an AF_PACKET broadcast inside the
namespace, outside the timed part), so every cycle yields non-zero deltas, and calls ``save()``
every 120th cycle as the default 10 minute save interval would; saves are timed apart. The floor,
timed in the same loop after each poll: reading the same 4 interfaces' byte counters with
``os.pread`` on descriptors kept open.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Result, clean_env, have_root_netns, tmpfs_dir

INTERFACES = ("bench0", "bench1", "bench2", "bench3")
TARGET_MS = 1.0
POLL_MS = 5000
SAVE_EVERY = 120
WARMUP = 50
ETHERTYPE = 0x88B5  # IEEE local experimental: nothing in the namespace answers it
FRAME_PAYLOAD = 200
FRAME = (b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETHERTYPE.to_bytes(2, "big")
         + b"\x00" * FRAME_PAYLOAD)


def run(quick: bool) -> list[Result]:
    cycles = 500 if quick else 2000
    why = have_root_netns()
    if why:
        return [Result("collector-poll", None, "ms/poll", TARGET_MS, note=why)]
    namespace = f"traffic-bench-{os.getpid()}"
    try:
        kind = make_namespace(namespace)
        out = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "bench.collector_cpu",
             "--child", "--cycles", str(cycles)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env=clean_env())
        if out.returncode != 0:
            raise RuntimeError(f"child failed: {out.stderr.strip().splitlines()[-1:]}")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as error:
        return [Result("collector-poll", None, "ms/poll", TARGET_MS, error=str(error))]
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    note = (f"{cycles} polls, {len(INTERFACES)} {kind} ifaces; p50 {figures['p50_ms']:.3f}, "
            f"p99 {figures['p99_ms']:.3f} ms; wall {figures['wall_ms']:.3f} ms/poll; "
            f"save every {SAVE_EVERY}: {figures['save_ms']:.2f} ms CPU each; "
            f"{figures['cpu_ms'] / figures['floor_ms']:.0f}x floor "
            f"({figures['floor_ms'] * 1000:.1f} us: the 8 byte counters read with os.pread)")
    return [Result("collector-poll", figures["cpu_ms"], "ms/poll", TARGET_MS, note=note)]


def make_namespace(namespace: str) -> str:
    """Create the namespace and its interfaces; returns the kind of interface made."""
    def ip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", *args], capture_output=True, text=True)

    made = ip("netns", "add", namespace)
    if made.returncode != 0:
        raise RuntimeError(f"ip netns add: {made.stderr.strip()}")
    ip("-n", namespace, "link", "set", "lo", "up")
    kind = "dummy"
    for index, name in enumerate(INTERFACES):
        added = ip("-n", namespace, "link", "add", name, "type", "dummy")
        if added.returncode != 0 and index == 0 and "Unknown device type" in added.stderr:
            kind = "veth"
        if kind == "veth":
            added = ip("-n", namespace, "link", "add", name, "type", "veth", "peer", "name",
                       f"{name}p")
            ip("-n", namespace, "link", "set", f"{name}p", "up")
        if added.returncode != 0:
            raise RuntimeError(f"ip link add {name}: {added.stderr.strip()}")
        ip("-n", namespace, "link", "set", name, "up")
    return kind


def _child(cycles: int) -> None:
    """Inside the namespace: time ``poll()`` of a real collector over ``cycles`` cycles."""
    from collector.worker import Collector
    from traffic.config import load_config
    from traffic.store import open_site_store

    with tempfile.TemporaryDirectory(prefix="traffic-bench-") as work, \
            tempfile.TemporaryDirectory(prefix="traffic-bench-run-", dir=tmpfs_dir()) as run_dir:
        config_file = Path(work) / "traffic.toml"
        names = ", ".join(f'"{name}"' for name in INTERFACES)
        config_file.write_text(
            f'[store]\nurl = "sqlite://{work}/traffic.db"\n'
            f'[collector]\nruntime_dir = "{run_dir}"\n'
            f'[[sources]]\ntype = "kernel"\ninterfaces = [{names}]\n')
        config = load_config(config_file, environ={}, system_path=None)
        store = open_site_store(config, create=True)
        now = [time.time_ns() // 1_000_000]
        collector = Collector(config, store, clock=lambda: now[0])
        senders = [sender(name) for name in INTERFACES]
        descriptors = counter_descriptors()
        floor_times: list[float] = []
        poll_times: list[float] = []
        save_times: list[float] = []
        walls: list[float] = []
        for cycle in range(WARMUP + cycles):
            for sock in senders:
                sock.send(FRAME)
            now[0] += POLL_MS
            wall = time.perf_counter()
            began = time.process_time()
            deltas = collector.poll()
            spent = time.process_time() - began
            wall = time.perf_counter() - wall
            if len(deltas) != len(INTERFACES) and cycle > 0:
                raise RuntimeError(f"poll returned {len(deltas)} deltas, expected 4")
            began = time.process_time()
            counters = [int(os.pread(descriptor, 32, 0)) for descriptor in descriptors]
            floor = time.process_time() - began
            if min(counters) <= 0:
                raise RuntimeError("the floor read no bytes")
            if cycle >= WARMUP:
                poll_times.append(spent)
                floor_times.append(floor)
                walls.append(wall)
            if cycle % SAVE_EVERY == SAVE_EVERY - 1:
                began = time.process_time()
                collector.save()
                if cycle >= WARMUP:
                    save_times.append(time.process_time() - began)
        for sock in senders:
            sock.close()
        for descriptor in descriptors:
            os.close(descriptor)
        store.close()
    ordered = sorted(poll_times)
    print(json.dumps({
        "cpu_ms": 1000 * sum(poll_times) / len(poll_times),
        "floor_ms": 1000 * sum(floor_times) / len(floor_times),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "wall_ms": 1000 * sum(walls) / len(walls),
        "save_ms": 1000 * sum(save_times) / max(len(save_times), 1),
    }))


def sender(name: str) -> socket.socket:
    """A raw socket that puts frames (``FRAME``) on interface ``name``."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((name, 0))
    return sock


def counter_descriptors() -> list[int]:
    """The floor's reads: the 4 interfaces' rx and tx byte counters, open for ``os.pread``."""
    return [os.open(f"/sys/class/net/{name}/statistics/{way}_bytes", os.O_RDONLY)
            for name in INTERFACES for way in ("rx", "tx")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--cycles", type=int, default=2000)
    arguments = parser.parse_args()
    if arguments.child:
        _child(arguments.cycles)
    else:
        for result in run(quick=False):
            print(result.line())
