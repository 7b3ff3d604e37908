"""The store's file deleted, renamed over or on a full disk while a real collector runs
(issue 10, items 2 and 3): nothing counted is lost or doubled, and the failure is said."""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.collector_process import CollectorProcess, wait_until
from tests.sim.link import Link
from tests.stack import clean_env

pytestmark = pytest.mark.netns

MB = 1_000_000


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "collector.log").read_text()


def settle(collector: CollectorProcess) -> tuple[int, int]:
    """Wait for a few polls and saves on a quiet link; the kernel's counters then."""
    collector.wait_polls(8)
    return collector.link.counters()


def grown(after: tuple[int, int], before: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


@pytest.mark.parametrize("fault", ["deleted", "renamed over"])
def test_store_gone_while_collecting_is_recreated_with_every_byte_since(
        link: Link, tmp_path: Path, fault: str,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector()
    collector.start()
    assert link.transfer(2 * MB) == 2 * MB
    at_fault = settle(collector)
    store = tmp_path / "traffic.db"
    if fault == "deleted":
        store.unlink()
    else:
        other = tmp_path / "restored.db"
        other.write_bytes(b"")
        other.rename(store)
    assert link.transfer(3 * MB) == 3 * MB
    said = "was deleted" if fault == "deleted" else "was replaced by another file"
    wait_until(lambda: said in log_text(tmp_path), "the error line")
    collector.wait_polls(8)
    collector.stop()
    after = link.counters()

    errors = [line for line in log_text(tmp_path).splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert f"store {store} {said}" in errors[0] and "a new empty store" in errors[0]
    assert store.is_file()
    assert collector.stored() == grown(after, at_fault)
    assert grown(after, at_fault)[1] > 3 * MB
    assert "stopped; everything counted is saved" in log_text(tmp_path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs; filled by the test with ``fill``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> None:
    descriptor = os.open(disk / "fill", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)
    assert os.statvfs(disk).f_bavail == 0


def on_disk(collector: CollectorProcess, disk: Path) -> None:
    text = collector.config.read_text()
    collector.config.write_text(text.replace(f"{collector.tmp_path}/traffic.db",
                                             f"{disk}/traffic.db"))


def save_state(collector: CollectorProcess) -> dict:
    return json.loads(collector.cli("status", "--json"))["save"]


def counting_on_a_full_disk(link: Link, tmp_path: Path, small_disk: Path,
                            spawn_collector: Callable[..., CollectorProcess]
                            ) -> tuple[CollectorProcess, tuple[int, int]]:
    """A collector whose store is on ``small_disk``: 2 MB counted and saved, then the disk
    filled, and 4 MB more counted while saves fail. Returns it with the counters before."""
    collector = spawn_collector()
    on_disk(collector, small_disk)
    before = link.counters()
    collector.start()
    assert link.transfer(2 * MB) == 2 * MB
    settle(collector)
    fill(small_disk)
    assert link.transfer(MB) == MB
    wait_until(lambda: "database or disk is full" in log_text(tmp_path), "the full disk")
    assert link.transfer(3 * MB) == 3 * MB
    collector.wait_polls(6)
    return collector, before


def test_full_disk_is_said_and_nothing_is_lost_when_space_comes_back(
        link: Link, tmp_path: Path, small_disk: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, before = counting_on_a_full_disk(link, tmp_path, small_disk, spawn_collector)
    state = save_state(collector)
    assert state["failing_since"] is not None and "database or disk is full" in state["error"]
    assert f"free space on {small_disk}" in state["error"]
    text = collector.cli("status")
    assert "cannot save since" in text and "database or disk is full" in text
    assert "cannot rollback" not in log_text(tmp_path)

    (small_disk / "fill").unlink()
    wait_until(lambda: "saving again" in log_text(tmp_path), "saves to resume")
    assert save_state(collector)["failing_since"] is None
    collector.stop()
    assert collector.stored() == grown(link.counters(), before)
    assert "Traceback" not in log_text(tmp_path)


def test_stop_on_a_full_disk_says_what_was_not_saved_and_a_restart_counts_it(
        link: Link, tmp_path: Path, small_disk: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector, before = counting_on_a_full_disk(link, tmp_path, small_disk, spawn_collector)
    assert collector.process is not None
    collector.process.send_signal(signal.SIGTERM)
    assert collector.process.wait(timeout=30) == 1
    log = log_text(tmp_path)
    assert "Traceback" not in log and "everything counted is saved" not in log
    last = log.splitlines()[-1]
    assert " ERROR " in last and "stopped: could not save" in last
    assert "database or disk is full" in last
    unsaved = re.search(r"could not save (\d+) bytes counted since", last)
    assert unsaved is not None and int(unsaved[1]) > 3 * MB

    os.unlink(small_disk / "fill")
    collector.start()
    collector.stop()
    assert collector.stored() == grown(link.counters(), before)


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A small ext4 filesystem on a loop device mounted ``errors=remount-ro``, as a Pi's SD
    card is: the kernel turns it read-only under a running collector when it meets an error
    (a tmpfs cannot be remounted read-only while the store's files are open for writing)."""
    image, disk = tmp_path / "disk.img", tmp_path / "disk"
    disk.mkdir()
    with image.open("wb") as file:
        file.truncate(16 * MB)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(disk)], check=True)
    device = subprocess.run(["findmnt", "-no", "SOURCE", str(disk)], check=True,
                            capture_output=True, text=True).stdout.strip()
    yield disk, Path(device).name
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_read_only_mount_under_a_running_collector_is_said_and_a_restart_counts_it(
        link: Link, tmp_path: Path, ext4_disk: tuple[Path, str],
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    disk, device = ext4_disk
    collector = spawn_collector()
    on_disk(collector, disk)
    before = link.counters()
    collector.start()
    assert link.transfer(2 * MB) == 2 * MB
    settle(collector)
    os.sync()  # the store as a disk holds it after a while; a newer save may be lost with the WAL
    Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("test\n")
    assert link.transfer(3 * MB) == 3 * MB
    wait_until(lambda: "mounted read-write" in log_text(tmp_path), "the read-only mount")
    collector.wait_polls(6)
    errors = [line for line in log_text(tmp_path).splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert f"cannot save to {disk}/traffic.db" in errors[0]
    assert "readonly" in errors[0] or "I/O" in errors[0]
    assert f"{disk} is mounted read-write" in errors[0]
    state = save_state(collector)
    assert state["failing_since"] is not None and f"{disk} is mounted read-write" in state["error"]
    assert "cannot save since" in collector.cli("status")

    assert collector.process is not None
    collector.process.send_signal(signal.SIGTERM)
    assert collector.process.wait(timeout=30) == 1
    last = log_text(tmp_path).splitlines()[-1]
    assert "stopped: could not save" in last and "Traceback" not in log_text(tmp_path)
    subprocess.run(["umount", str(disk)], check=True)
    subprocess.run(["e2fsck", "-fy", str(tmp_path / "disk.img")], capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(tmp_path / "disk.img"), str(disk)], check=True)
    collector.start()
    collector.stop()
    assert collector.stored() == grown(link.counters(), before)


def test_store_on_a_read_only_mount_at_start_is_one_line(
        link: Link, tmp_path: Path, small_disk: Path,
        spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector()
    on_disk(collector, small_disk)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = subprocess.run(collector.cli_command("collect"), capture_output=True, text=True,
                          timeout=30, env=clean_env())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].count("store.url") == 1 and f"{small_disk}/traffic.db" in lines[0]
    assert f"{small_disk} is mounted read-only" in lines[0]
    assert "unable to open database file" in lines[0]


def test_a_hard_link_to_a_running_collectors_store_is_refused(
        link: Link, tmp_path: Path, spawn_collector: Callable[..., CollectorProcess]) -> None:
    collector = spawn_collector()
    before = link.counters()
    collector.start()
    assert link.transfer(2 * MB) == 2 * MB
    settle(collector)
    os.link(tmp_path / "traffic.db", tmp_path / "linked.db")
    second = tmp_path / "second.toml"
    second.write_text(collector.config.read_text().replace(
        f"{tmp_path}/traffic.db", f"{tmp_path}/linked.db").replace(
        f"{tmp_path}/run", f"{tmp_path}/run2"))
    done = subprocess.run(link.in_near(*collector.cli_command()[:3], "--config", str(second),
                                       "collect"), capture_output=True, text=True, timeout=30,
                          env=clean_env())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0] == (f"traffic: store.url: another collector (pid {collector.process.pid}) is "
                        f"already writing to {tmp_path}/linked.db"), lines[0]
    assert not (tmp_path / "run2" / "home.realtime").exists()
    assert link.transfer(MB) == MB
    collector.wait_polls(8)
    collector.stop()
    assert collector.stored() == grown(link.counters(), before)


def test_shm_file_cut_short_under_a_running_collector_is_grown_back_and_nothing_is_lost(
        link: Link, tmp_path: Path, spawn_collector: Callable[..., CollectorProcess]) -> None:
    """Emptying ``traffic.db-shm`` (SQLite maps it) made the collector die of SIGBUS."""
    collector = spawn_collector()
    before = link.counters()
    collector.start()
    assert link.transfer(2 * MB) == 2 * MB
    settle(collector)
    shm = tmp_path / "traffic.db-shm"
    os.truncate(shm, 0)
    assert link.transfer(3 * MB) == 3 * MB
    wait_until(lambda: "was cut from" in log_text(tmp_path), "the -shm file to be mended")
    collector.wait_polls(8)
    collector.stop()
    assert f"{shm} was cut from" in log_text(tmp_path)
    assert collector.stored() == grown(link.counters(), before)


def test_shm_file_cut_short_before_a_read_is_grown_back_first(tmp_path: Path) -> None:
    """Any call on the connection may be the first to touch the cut pages (the outbox's or the
    alerts' thread between two saves), not only a save."""
    script = f"""
import os
from zoneinfo import ZoneInfo
from traffic.store import open_store
store = open_store("sqlite://{tmp_path}/traffic.db", ZoneInfo("UTC"))
store.set_meta("probe", "before")
os.truncate("{tmp_path}/traffic.db-shm", 0)
print(store.get_meta("probe"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, env=clean_env(), cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout == "before\n"
    assert f"{tmp_path}/traffic.db-shm was cut from 32768 to 0 bytes" in done.stderr
