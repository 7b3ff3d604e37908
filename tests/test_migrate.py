"""``traffic migrate`` between real stores: SQLite files and the SecantusDB server, through the
real command."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import STOCKHOLM
from tests.mongo_server import database_url
from traffic.counters import CounterState, Delta
from traffic.migrate import MARKER, all_time
from traffic.store import (
    BILLED,
    DEVICE,
    TABLES,
    UNBILLED,
    Event,
    GaugeSample,
    Key,
    Store,
    open_store,
)

TRAFFIC = Path(sys.executable).with_name("traffic")
MONTH_START = 1_793_487_600_000
"""2026-11-01 00:00 in Stockholm."""
DAY = 86_400_000
ALL_TIME = all_time(STOCKHOLM)
FIVE_MIN = 300_000
SITES = {"home": 30, "cabin": 2}
"""Each site and the days it counted."""
KEYS = [Key("kernel:ppp0", "kernel", "ppp0", BILLED), Key("router:wan", "router", "wan", UNBILLED),
        Key("router:dev-aa", "router", "dev-aa", DEVICE)]
EVENING = (18 * 3_600_000, DAY)
"""When the device is on the network, from local midnight (November has no DST change)."""


def build(store: Store, days: int) -> None:
    """``days`` of 5-minute deltas of the link (billed, and the router's view of it) and of a
    device in the evenings, gauges, the link's events, an alert sent and one still to deliver,
    meta values: saved as the collector saves them."""
    store.set_notify_targets(["fp-mail", "fp-ntfy"])
    for day in range(days):
        first = MONTH_START + day * DAY
        deltas = [Delta(key.key, start, start + FIVE_MIN, 1000 * n + (start // FIVE_MIN) % 997,
                        100 * n + (start // FIVE_MIN) % 89)
                  for n, key in enumerate(KEYS, 1)
                  for start in range(first + (EVENING[0] if key.role == DEVICE else 0),
                                     first + DAY, FIVE_MIN)]
        gauges = [GaugeSample("router:wan", "rsrp", at, -80 - (at // FIVE_MIN) % 20)
                  for at in range(first, first + DAY, 3_600_000)]
        state = {key.key: CounterState("boot-1", first + DAY, day, day) for key in KEYS}
        store.add(deltas, state, gauges, KEYS if day == 0 else ())
        store.add_events([Event(first + 3_600_000, "down", {"reason": "no answer"}, 2500),
                          Event(first + 3_700_000, "up")])
    end = MONTH_START + days * DAY
    assert store.raise_alert("quota-50", Event(end - 5, "alert", {"rule": "quota"}),
                             [(0, "Half the quota", "50 %"), (1, "Half the quota", "50 %")])
    sent, _ = store.pending_deliveries()
    store.delivery_ended(sent.id, Event(end - 4, "alert_sent", {"rule": "quota"}))
    store.set_meta("alerts.ip", '["10.64.1.2"]')


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store with a month of the home site and two days of the cabin's."""
    path = tmp_path_factory.mktemp("month") / "month.db"
    for site, days in SITES.items():
        store = open_store(f"sqlite://{path}", STOCKHOLM, site=site,
                           status_dir=str(path.parent))
        build(store, days)
        store.close()
    return path


@pytest.fixture
def source(month: Path, tmp_path: Path) -> str:
    shutil.copy(month, tmp_path / "source.db")
    return f"sqlite://{tmp_path}/source.db"


def command(tmp_path: Path, *args: str) -> list[str]:
    """``traffic ARGS`` with a config of its own in ``tmp_path``."""
    config = tmp_path / "traffic.toml"
    config.write_text(f'timezone = "Europe/Stockholm"\n[collector]\n'
                      f'runtime_dir = "{tmp_path}/run"\n')
    return [str(TRAFFIC), "--config", str(config), *args]


def traffic(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(tmp_path, *args), capture_output=True, text=True,
                          timeout=300)


def opened(url: str, site: str) -> Store:
    return open_store(url, STOCKHOLM, site=site, create=False, status_dir="/nonexistent")


def content(url: str, site: str, buckets: bool = True) -> dict[str, object]:
    """All a reader can see of a site; deliveries without their numbers (a store numbers its
    own). ``buckets``: with every hour's and 5 minutes' (slow to read from SecantusDB)."""
    store = opened(url, site)
    try:
        return {
            "totals": {key: store.totals(*ALL_TIME, [key]) for key in store.known_keys()},
            "days": store.series("day", *ALL_TIME),
            **({"hours": store.series("hour", *ALL_TIME),
                "5min": store.series("5min", *ALL_TIME)} if buckets else {}),
            "keys": store.key_types(),
            "tracker": store.tracker_state(), "gauges": store.gauge_names(),
            "rsrp": store.gauge_series("router:wan", "rsrp", *ALL_TIME),
            "events": store.events(limit=10**6), "alerts": store.alert_counts(),
            "marked": store.has_alert_mark("quota-50"), "ip": store.get_meta("alerts.ip"),
            "targets": store.get_meta("alerts.notify_targets"),
            "pending": [replace(d, id=0) for d in store.pending_deliveries()],
            "rows": {table: store.count_rows(table) for table in TABLES if table != "meta"},
            "intervals": store.totals(MONTH_START + 7, MONTH_START + 2 * DAY - 7)}
    finally:
        store.close()


@pytest.fixture
def mongodb_url(mongodb_base: str) -> str:
    return database_url(mongodb_base)


def test_migrate_both_ways_keeps_identical_totals_per_key(
        source: str, mongodb_url: str, tmp_path: Path) -> None:
    """SQLite to MongoDB and back: every key's totals, every bucket, event, gauge and alert as
    they were; the alert that was sent stays sent, the one waiting stays waiting."""
    back = f"sqlite://{tmp_path}/back.db"
    began = time.monotonic()
    there = traffic(tmp_path, "migrate", "--from", source, "--to", mongodb_url)
    into_mongo = time.monotonic() - began
    assert (there.returncode, there.stderr) == (0, ""), there.stdout
    for site, days in SITES.items():
        assert f"{site}: copied; totals identical for 3 keys" in there.stdout
        rows = days * (288 + 288 + 72)
        assert f"{site} intervals: {rows}/{rows} rows (100%)" in there.stdout
    home = content(source, "home")
    assert len(home["totals"]) == 3 and home["rows"]["intervals"] == 30 * 648  # type: ignore[index]
    assert home["pending"] and all(d.target == 1 for d in home["pending"])  # type: ignore[attr-defined]
    for site in SITES:
        assert content(mongodb_url, site, buckets=False) == content(source, site, buckets=False)

    began = time.monotonic()
    again = traffic(tmp_path, "migrate", "--from", mongodb_url, "--to", back)
    out_of_mongo = time.monotonic() - began
    assert (again.returncode, again.stderr) == (0, ""), again.stdout
    for site in SITES:  # every bucket came through MongoDB as it was
        assert content(back, site) == content(source, site)
    print(f"SQLite to MongoDB: {into_mongo:.1f} s, back: {out_of_mongo:.1f} s")


def test_a_killed_migrate_run_again_continues_and_ends_identical(
        source: str, mongodb_url: str, tmp_path: Path) -> None:
    """Ctrl-C, then kill -9, in the middle of the copy; each run again continues from the
    chunk where it stopped (nothing counted twice, no event twice)."""
    arguments = ["migrate", "--from", source, "--to", mongodb_url, "--site", "home"]
    for stop, when in ((signal.SIGINT, "rollups"), (signal.SIGKILL, "intervals")):
        running = subprocess.Popen(command(tmp_path, *arguments), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        assert running.stdout is not None
        seen = ""
        for line in running.stdout:  # its progress: stopped at once, chunks still to copy
            seen += line
            if line.startswith(f"home {when}: "):
                break
        running.send_signal(stop)
        stdout, stderr = running.communicate(timeout=60)
        stdout = seen + stdout
        if stop == signal.SIGINT:
            assert running.returncode == 130, stdout + stderr
            assert stderr == ("traffic: migrate: interrupted; the same command continues "
                              "where it stopped\n")
        else:
            assert running.returncode == -signal.SIGKILL
    assert json.loads(_marker(mongodb_url) or "{}")["table"] == "intervals"
    finished = traffic(tmp_path, *arguments)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "home keys" not in finished.stdout  # continued at the intervals
    assert "home: copied; totals identical for 3 keys" in finished.stdout
    assert content(mongodb_url, "home", buckets=False) == content(source, "home", buckets=False)
    assert json.loads(_marker(mongodb_url) or "{}") == {"from": f"sqlite://{tmp_path}/source.db",
                                                        "done": True}


def _marker(url: str) -> str | None:
    store = opened(url, "home")
    try:
        return store.get_meta(MARKER)
    finally:
        store.close()


def test_what_migrate_refuses_is_said_in_one_line_and_nothing_is_written(
        source: str, tmp_path: Path) -> None:
    target = f"sqlite://{tmp_path}/target.db"
    elsewhere = open_store(target, STOCKHOLM, site="home", status_dir=str(tmp_path))
    build(elsewhere, 1)
    elsewhere.close()
    before = content(target, "home")
    refusals = {
        ("--to", target, "--site", "attic"):
            f"--from {source} has no site 'attic'; it has 'cabin', 'home'",
        ("--to", f"sqlite://{tmp_path}/./source.db"): "--to names the --from store itself",
        ("--to", target, "--site", "home"):
            f"--to {target}: site 'home' already holds counts; copy only into a store where "
            "the site is empty (nothing is merged)",
        ("--to", target, "--site", "cabin"):  # the cabin is empty there: copied
            "",
        ("--to", target): f"--to {target}: site 'home' already holds counts",
        (): "give both --from URL and --to URL",
    }
    for args, said in refusals.items():
        run = traffic(tmp_path, "migrate", "--from", source, *args)
        if not said:
            assert run.returncode == 0, run.stderr
            continue
        assert run.returncode == 2 and run.stdout == "", run.stdout
        assert run.stderr.startswith(f"traffic: migrate: {said}"), run.stderr
        assert run.stderr.count("\n") == 1
    assert content(target, "home") == before
    assert content(target, "cabin") == content(source, "cabin")


def test_a_store_a_collector_is_writing_is_refused(
        source: str, mongodb_url: str, tmp_path: Path) -> None:
    """Copying from a store being written loses what comes in meanwhile; copying into a site
    that a collector writes counts it twice."""
    from traffic.store.mongo import MongoStore

    collector = open_store(source, STOCKHOLM, site="home", status_dir=str(tmp_path))
    collector.claim_writer()
    run = traffic(tmp_path, "migrate", "--from", source, "--to", f"sqlite://{tmp_path}/new.db")
    collector.close()
    assert run.returncode == 2
    assert run.stderr == (f"traffic: migrate: --from: another collector (pid {os.getpid()}) "
                          f"is already writing to {tmp_path}/source.db; stop that collector "
                          "first\n")

    cabin = MongoStore(mongodb_url, STOCKHOLM, {}, site="cabin")
    cabin.claim_writer()
    run = traffic(tmp_path, "migrate", "--from", source, "--to", mongodb_url)
    assert run.returncode == 2
    assert run.stderr.startswith(f"traffic: migrate: --to: another collector "
                                 f"({socket.gethostname()} pid {os.getpid()}) is already "
                                 "writing site 'cabin' to mongodb://127.0.0.1:")
    assert run.stderr.endswith("; stop that collector first\n")
    assert cabin.count_rows("intervals") == 0
    cabin.close()


def test_a_password_in_a_url_is_never_shown(source: str, tmp_path: Path) -> None:
    from tests.stack import free_port

    url = (f"mongodb://family:hunter2@127.0.0.1:{free_port()}/traffic"
           "?serverSelectionTimeoutMS=300&directConnection=true")
    run = traffic(tmp_path, "migrate", "--from", source, "--to", url)
    assert run.returncode == 2 and "hunter2" not in run.stderr + run.stdout
    assert run.stderr.startswith("traffic: migrate: --to: cannot use "
                                 "mongodb://family:********@127.0.0.1:")
    assert run.stderr.count("\n") == 1


def test_progress_is_one_line_rewritten_on_a_terminal_and_few_lines_otherwise(
        source: str, tmp_path: Path) -> None:
    import pty

    plain = traffic(tmp_path, "migrate", "--from", source, "--to", f"sqlite://{tmp_path}/a.db")
    assert plain.returncode == 0 and "\r" not in plain.stdout
    lines = plain.stdout.splitlines()
    for site in SITES:
        for table in TABLES:  # a line at each quarter, at most
            said = [line for line in lines if line.startswith(f"{site} {table}: ")]
            assert 1 <= len(said) <= 4 and said[-1].endswith(" rows (100%)")
    assert [line for line in lines if line.startswith("home intervals: ")] == [
        "home intervals: 5000/19440 rows (25%)", "home intervals: 10000/19440 rows (51%)",
        "home intervals: 15000/19440 rows (77%)", "home intervals: 19440/19440 rows (100%)"]
    assert len(lines) == len([line for line in lines if " rows (" in line]) + 1 + len(SITES)

    leader, follower = pty.openpty()
    run = subprocess.Popen(command(tmp_path, "migrate", "--from", source, "--to",
                                   f"sqlite://{tmp_path}/b.db"), stdout=follower)
    os.close(follower)
    shown = b""
    while chunk := _read(leader):
        shown += chunk
    os.close(leader)
    text = shown.decode()
    assert run.wait(60) == 0
    bar, *results = text.split("\r\n")
    assert bar.count("\r") >= len(SITES) * len(TABLES)  # one line, drawn again and again
    assert bar.rsplit("\r", 1)[1].startswith("home intervals [########################] "
                                             "19440/19440 rows 100%")
    assert results[:3] == ["comparing each key's totals and each table's rows in both stores",
                           f"cabin: copied; totals identical for 3 keys (received "
                           f"{_sum(source, 'cabin', 0)} B, sent {_sum(source, 'cabin', 1)} B)",
                           f"home: copied; totals identical for 3 keys (received "
                           f"{_sum(source, 'home', 0)} B, sent {_sum(source, 'home', 1)} B)"]


def _read(descriptor: int) -> bytes:
    try:
        return os.read(descriptor, 65536)
    except OSError:  # the terminal closed
        return b""


def _sum(url: str, site: str, index: int) -> int:
    totals = content(url, site)["totals"]
    return sum(pair[index] for pair in totals.values())  # type: ignore[attr-defined]


def test_a_server_gone_in_the_middle_is_one_line_and_the_copy_continues_when_it_is_back(
        source: str, tmp_path: Path) -> None:
    from tests.mongo_server import running_server
    from tests.stack import free_port

    port = free_port()
    server = running_server(tmp_path, port=port)
    url = database_url(next(server))
    arguments = ["migrate", "--from", source, "--to", url, "--site", "home"]
    running = subprocess.Popen(command(tmp_path, *arguments), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while json.loads(_marker(url) or "{}").get("table") != "rollups":
            assert running.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.close()  # the server stops, in the middle of the rollups
    _, stderr = running.communicate(timeout=120)
    assert running.returncode == 2
    assert stderr.startswith(f"traffic: migrate: --to: {url}: "), stderr
    assert stderr.endswith("; run the same command again to continue where it stopped\n")
    assert stderr.count("\n") == 1

    server = running_server(tmp_path, port=port)
    next(server)
    try:
        finished = traffic(tmp_path, *arguments)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert "home keys" not in finished.stdout
        assert content(url, "home", buckets=False) == content(source, "home", buckets=False)
    finally:
        server.close()


def test_run_again_after_the_copy_only_compares_and_names_each_key_that_differs(
        source: str, tmp_path: Path) -> None:
    target = f"sqlite://{tmp_path}/target.db"
    first = traffic(tmp_path, "migrate", "--from", source, "--to", target)
    assert first.returncode == 0, first.stderr
    again = traffic(tmp_path, "migrate", "--from", source, "--to", target)
    assert again.returncode == 0 and " rows (" not in again.stdout  # nothing copied
    assert "home: copied before; totals identical for 3 keys" in again.stdout

    later = open_store(target, STOCKHOLM, site="home", status_dir=str(tmp_path))
    end = MONTH_START + SITES["home"] * DAY
    later.add([Delta("kernel:ppp0", end, end + FIVE_MIN, 500, 50)],
              {"kernel:ppp0": CounterState("boot-1", end + FIVE_MIN, 0, 0)})
    later.close()
    home = content(source, "home")
    ppp0 = home["totals"]["kernel:ppp0"]  # type: ignore[index]
    rollups = home["rows"]["rollups"]  # type: ignore[index]
    differs = traffic(tmp_path, "migrate", "--from", source, "--to", target)
    assert differs.returncode == 1 and differs.stderr == ""
    assert differs.stdout.splitlines()[1:] == [
        "cabin: copied before; totals identical for 3 keys (received "
        f"{_sum(source, 'cabin', 0)} B, sent {_sum(source, 'cabin', 1)} B)",
        "home: copied before; DIFFERENT from the source:",
        f"  kernel:ppp0: rx {ppp0[0]} tx {ppp0[1]} in --from, rx {ppp0[0] + 500} "
        f"tx {ppp0[1] + 50} in --to",
        f"  rollups: {rollups} rows in --from, {rollups + 4} in --to",  # a new month begins
        f"  intervals: {30 * 648} rows in --from, {30 * 648 + 1} in --to"]
