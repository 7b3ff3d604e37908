"""The ``traffic`` command on a seeded store: status, report and reset-month."""

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from traffic.counters import CounterState, Delta
from traffic.periods import to_ms
from traffic.published import unpack_points
from traffic.runtime import read_document
from traffic.store import open_store

TZ = ZoneInfo("Europe/Stockholm")
KEY = "kernel:ppp0"
GB = 10**9


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "traffic.toml"), *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture
def seeded(tmp_path: Path) -> dict:
    """A store with 1 GB down and 0.1 GB up on each of the last three local days."""
    (tmp_path / "traffic.toml").write_text(
        f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
        '[quota]\nmonthly = "40 GB"\nbilling_day = 1\ndaily = "2 GB"\n')
    now = datetime.now(TZ)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    days = []
    for back in (2, 1, 0):
        day = to_ms(today - timedelta(days=back) + timedelta(minutes=1))
        days.append(day)
        store.add([Delta(KEY, day, day + 60_000, GB, GB // 10)], {})
    store.add([], {KEY: CounterState("boot/1", time.time_ns() // 10**6 - 3000, 0, 0)})
    store.close()
    return {"days": days, "today": today}


def test_status_json(seeded: dict, tmp_path: Path) -> None:
    result = run(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    in_period = sum(1 for day in seeded["days"] if day >= status["period_start"])
    assert status["rx"] == in_period * GB and status["tx"] == in_period * GB // 10
    assert status["total"] == in_period * 11 * GB // 10
    assert status["limit"] == 40 * GB
    assert status["percent"] == round(100 * status["total"] / (40 * GB), 1)
    assert (status["today_rx"], status["today_tx"], status["daily_limit"]) == (GB, GB // 10,
                                                                               2 * GB)
    first_bucket = seeded["days"][0] - 60_000  # counting began at the first traffic stored
    assert status["counted_since"] == max(status["period_start"], first_bucket)
    pace_over = status["now"] - status["counted_since"]
    assert status["estimate"] == status["total"] + status["total"] * (
        status["period_end"] - status["now"]) // pace_over
    assert 2 <= status["sample_age_s"] < 60
    assert status["period_start_iso"].endswith(("+01:00", "+02:00"))


def test_status_text_speaks_plainly(seeded: dict, tmp_path: Path) -> None:
    result = run(tmp_path, "status")
    assert result.returncode == 0, result.stderr
    assert "download" in result.stdout and "upload" in result.stdout
    assert "of 40 GB" in result.stdout and "a day keeps you inside" in result.stdout
    assert "today       1.1 GB of 2 GB" in result.stdout


def test_report_table_json_and_csv(seeded: dict, tmp_path: Path) -> None:
    start = seeded["today"] - timedelta(days=2)
    args = ["report", "--resolution", "day", "--start", start.date().isoformat(),
            "--end", (seeded["today"] + timedelta(days=1)).date().isoformat()]
    table = run(tmp_path, *args)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert [cell.strip() for cell in lines[0].split(" | ")] == ["day", "download", "upload",
                                                               "total"]
    assert lines[2].startswith(start.date().isoformat()) and "1 GB" in lines[2]
    assert lines[-1].startswith("total") and "3 GB" in lines[-1] and "3.3 GB" in lines[-1]
    points = json.loads(run(tmp_path, *args, "--json").stdout)["points"]
    assert [(p["rx"], p["tx"]) for p in points] == [(GB, GB // 10)] * 3
    rows = list(csv.DictReader(io.StringIO(run(tmp_path, *args, "--csv").stdout)))
    assert [int(row["total"]) for row in rows] == [11 * GB // 10] * 3
    assert [int(row["start_ms"]) for row in rows] == [p["start"] for p in points]


def test_report_fills_empty_buckets_with_zeros(seeded: dict, tmp_path: Path) -> None:
    hour = seeded["today"].replace(hour=0)
    result = run(tmp_path, "report", "--resolution", "hour", "--json",
                 "--start", hour.isoformat(), "--end", (hour + timedelta(hours=3)).isoformat())
    points = json.loads(result.stdout)["points"]
    assert [(p["rx"], p["tx"]) for p in points] == [(GB, GB // 10), (0, 0), (0, 0)]


def test_default_report_runs_from_the_first_traffic_to_now(seeded: dict,
                                                           tmp_path: Path) -> None:
    days = json.loads(run(tmp_path, "report", "--json").stdout)["points"]
    assert [p["start"] for p in days] == [day - 60_000 for day in seeded["days"]]
    months = json.loads(run(tmp_path, "report", "--resolution", "month", "--json").stdout)
    this_month = seeded["today"].replace(day=1)
    first = (seeded["today"] - timedelta(days=2)).replace(day=1)
    assert [p["start"] for p in months["points"]] == sorted({to_ms(first), to_ms(this_month)})
    assert sum(p["rx"] for p in months["points"]) == 3 * GB


def test_default_report_of_an_empty_store_is_the_current_period(tmp_path: Path) -> None:
    (tmp_path / "traffic.toml").write_text(f'[store]\nurl = "sqlite://{tmp_path}/t.db"\n')
    open_store(f"sqlite://{tmp_path}/t.db", TZ).close()
    points = json.loads(run(tmp_path, "report", "--json").stdout)["points"]
    assert len(points) == 1 and (points[0]["rx"], points[0]["tx"]) == (0, 0)
    assert points[0]["start"] <= time.time() * 1000 < points[0]["start"] + 86_400_000


@pytest.mark.parametrize(("args", "message"), [
    (["report", "--start", "yesterday"], "traffic: report: 'yesterday' is neither epoch "
                                         "milliseconds nor an ISO 8601 date"),
    (["report", "--start", "2026-11-10", "--end", "2026-11-09"],
     "traffic: report: --end must be later than --start"),
])
def test_report_bad_usage(seeded: dict, tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_unknown_resolution_is_usage_error(seeded: dict, tmp_path: Path) -> None:
    result = run(tmp_path, "report", "--resolution", "week")
    assert result.returncode == 2 and "invalid choice: 'week'" in result.stderr


def test_reset_month_starts_the_period_now(seeded: dict, tmp_path: Path) -> None:
    result = run(tmp_path, "reset-month")
    assert result.returncode == 0 and "now starts at" in result.stdout
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert (status["rx"], status["tx"]) == (0, 0)
    assert status["period_start"] % 300_000 == 0  # the start of the current 5 minutes
    assert status["now"] - status["period_start"] < 300_000 + 60_000
    assert status["today_rx"] == GB  # today's use is still today's


def test_status_without_a_store_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "traffic.toml").write_text(f'[store]\nurl = "sqlite://{tmp_path}/typo/x.db"\n')
    result = run(tmp_path, "status")
    assert result.returncode == 2
    assert result.stderr == (f"traffic: store.url: no store at {tmp_path}/typo/x.db yet (the "
                             "collector creates it when it first runs: traffic collect)\n")
    assert not (tmp_path / "typo").exists()


def test_unwritable_runtime_dir_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "traffic.toml").write_text(
        f'[store]\nurl = "sqlite://{tmp_path}/t.db"\n[collector]\nruntime_dir = "/proc/nope"\n')
    result = run(tmp_path, "collect", "--once")
    assert result.returncode == 2
    assert result.stderr.endswith("traffic: collector.runtime_dir: cannot write to /proc/nope "
                                  "(No such file or directory)\n")


def test_status_on_an_empty_store(tmp_path: Path) -> None:
    (tmp_path / "traffic.toml").write_text(f'[store]\nurl = "sqlite://{tmp_path}/new.db"\n')
    open_store(f"sqlite://{tmp_path}/new.db", TZ).close()
    result = run(tmp_path, "status")
    assert result.returncode == 0, result.stderr
    assert "no monthly limit set" in result.stdout and "never" in result.stdout


def test_report_refuses_a_huge_range(seeded: dict, tmp_path: Path) -> None:
    result = run(tmp_path, "report", "--resolution", "5min", "--start", "2000-01-01")
    assert result.returncode == 2
    assert result.stderr == ("traffic: report: the range holds more than 20000 5min buckets; "
                             "choose a shorter range or a coarser resolution\n")


@pytest.mark.parametrize("args", [["report", "--resolution", "hour"], ["status"],
                                  ["status", "--json"], ["check-config"]])
def test_a_reader_that_went_away_stops_the_output_quietly(seeded: dict, tmp_path: Path,
                                                          args: list[str]) -> None:
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "cli", "--config", str(tmp_path / "traffic.toml"), *args],
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stderr) == (141, "")


def test_report_piped_into_head(seeded: dict, tmp_path: Path) -> None:
    start = (seeded["today"] - timedelta(days=60)).date().isoformat()
    result = subprocess.run(
        f"{sys.executable} -m cli --config {tmp_path}/traffic.toml report --resolution 5min "
        f"--start {start} | head -1", shell=True, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("5min ")


def write_config(tmp_path: Path, timezone: str) -> None:
    (tmp_path / "traffic.toml").write_text(
        f'timezone = "{timezone}"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n')


def table_rows(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split(" | ")] for line in stdout.splitlines()[2:-2]]


def test_report_labels_the_repeated_hour_with_its_offset(tmp_path: Path) -> None:
    write_config(tmp_path, "Europe/Stockholm")
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    first = to_ms(datetime(2026, 10, 24, 23, tzinfo=ZoneInfo("UTC")))  # 01:00+02:00
    store.add([Delta(KEY, first + hour * 3_600_000, first + hour * 3_600_000 + 60_000,
                     (hour + 1) * 10**6, 0) for hour in range(4)], {})
    store.close()
    result = run(tmp_path, "report", "--resolution", "hour", "--start", "2026-10-25T01:00",
                 "--end", "2026-10-25T04:00")
    assert result.returncode == 0, result.stderr
    assert [row[:2] for row in table_rows(result.stdout)] == [
        ["2026-10-25 01:00", "1 MB"], ["2026-10-25 02:00+02:00", "2 MB"],
        ["2026-10-25 02:00+01:00", "3 MB"], ["2026-10-25 03:00", "4 MB"]]


def test_report_after_the_time_zone_changed_keeps_the_stored_days(tmp_path: Path) -> None:
    write_config(tmp_path, "UTC")
    utc = ZoneInfo("UTC")
    store = open_store(f"sqlite://{tmp_path}/traffic.db", utc)
    for at, size in ((datetime(2026, 6, 10, 0, 30), GB), (datetime(2026, 6, 10, 23, 30), 2 * GB),
                     (datetime(2026, 6, 11, 12), 4 * GB)):
        moment = to_ms(at.replace(tzinfo=utc))
        store.add([Delta(KEY, moment, moment + 60_000, size, 0)], {})
    store.close()
    args = ["--set", "timezone=Europe/Stockholm", "report", "--start", "2026-06-09",
            "--end", "2026-06-13"]
    points = json.loads(run(tmp_path, *args, "--json").stdout)["points"]
    assert [(p["start_iso"], p["rx"]) for p in points] == [
        ("2026-06-09T00:00:00+02:00", 0), ("2026-06-10T00:00:00+02:00", 3 * GB),
        ("2026-06-11T00:00:00+02:00", 4 * GB), ("2026-06-12T00:00:00+02:00", 0)]
    table = run(tmp_path, *args)
    assert table.returncode == 0, table.stderr
    assert [row[:2] for row in table_rows(table.stdout)] == [
        ["2026-06-09", "0 B"], ["2026-06-10", "3 GB"], ["2026-06-11", "4 GB"],
        ["2026-06-12", "0 B"]]
    months = json.loads(run(tmp_path, "--set", "timezone=Europe/Stockholm", "report",
                            "--resolution", "month", "--start", "2026-06-01", "--end",
                            "2026-07-01", "--json").stdout)["points"]
    assert [(p["start_iso"], p["rx"]) for p in months] == [("2026-06-01T00:00:00+02:00", 7 * GB)]


@pytest.mark.parametrize(("interface", "read"), [("lo", True), ("nosuch0", False)])
def test_last_sample_is_the_last_counter_read_not_the_last_poll(
        tmp_path: Path, interface: str, read: bool) -> None:
    (tmp_path / "traffic.toml").write_text(
        f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
        f'[collector]\ninterval = "200ms"\nruntime_dir = "{tmp_path}/run"\n'
        f'[[sources]]\ntype = "kernel"\ninterfaces = ["{interface}"]\n')
    collector = subprocess.Popen(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "traffic.toml"), "collect"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
    realtime = tmp_path / "run" / "home.realtime"
    try:
        deadline = time.monotonic() + 30
        while not realtime.exists() or len(unpack_points(read_document(realtime)["points"])) < 3:
            assert time.monotonic() < deadline and collector.poll() is None
            time.sleep(0.05)
        status = json.loads(run(tmp_path, "status", "--json").stdout)
    finally:
        collector.terminate()
        assert collector.wait(timeout=30) == 0
    if read:
        assert 0 <= status["sample_age_s"] < 5
    else:
        assert status["last_sample_at"] is None and status["sample_age_s"] is None


def test_status_says_when_counting_began_within_the_period(seeded: dict, tmp_path: Path) -> None:
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    text = run(tmp_path, "status").stdout
    began = datetime.fromisoformat(status["counted_since_iso"])
    line = f"  counted     since {began:%-d %b %Y %H:%M} (nothing was measured before)"
    assert (line in text.splitlines()) == (status["counted_since"] > status["period_start"])


def test_the_sentence_says_when_todays_limit_is_used_up(seeded: dict, tmp_path: Path) -> None:
    within = run(tmp_path, "status").stdout.splitlines()[0]
    over = run(tmp_path, "--set", "quota.daily=1 GB", "status").stdout.splitlines()[0]
    assert "Today's limit" not in within
    assert over == within + " Today's limit is used up: 1.1 GB of 1 GB."


def test_status_names_the_periods_first_and_last_day(seeded: dict, tmp_path: Path) -> None:
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    first = datetime.fromisoformat(status["period_start_iso"])
    last = datetime.fromisoformat(status["period_end_iso"]) - timedelta(days=1)
    text = run(tmp_path, "status").stdout
    assert f"  period      {first:%-d %b %Y} to {last:%-d %b %Y} (" in text
    assert f" by {last:%-d %b}\n" in text
    run(tmp_path, "reset-month")
    reset = datetime.fromisoformat(json.loads(run(tmp_path, "status", "--json").stdout)[
        "period_start_iso"])
    shown = f"{reset:%-d %b %Y}" + ("" if reset.hour == reset.minute == 0 else f" {reset:%H:%M}")
    assert f"  period      {shown} to {last:%-d %b %Y} (" in run(tmp_path, "status").stdout


def test_default_report_keeps_quiet_periods_after_counting_began(tmp_path: Path) -> None:
    """Quiet hours were measured (nothing crossed the link): only before the store began are
    rows left out."""
    (tmp_path / "traffic.toml").write_text(
        f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n')
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    now = time.time_ns() // 10**6
    long_ago = now - 10 * 86_400_000
    store.add([Delta(KEY, long_ago, long_ago + 5000, GB, 1),
               Delta(KEY, now - 60_000, now - 55_000, GB, 1)], {})
    store.close()
    hours = json.loads(run(tmp_path, "report", "--resolution", "hour", "--json").stdout)
    assert len(hours["points"]) >= 7 * 24 and sum(p["rx"] for p in hours["points"]) == GB


def run_as_typed(*args: str) -> subprocess.CompletedProcess:
    """The command with the arguments exactly as given (no ``--config`` put first)."""
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_config_and_set_after_the_command(seeded: dict, tmp_path: Path) -> None:
    config = str(tmp_path / "traffic.toml")
    after = run_as_typed("status", "--json", "--config", config, "--set", "quota.monthly=50 GB")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["limit"] == 50 * GB
    before = run_as_typed("--config", config, "--set", "quota.monthly=50 GB", "status", "--json")
    assert json.loads(before.stdout)["limit"] == 50 * GB
    both = run_as_typed("--set", "quota.daily=3 GB", "--config", "/nonexistent.toml", "report",
                        "--json", "--config", config, "--set", "quota.monthly=50 GB")
    assert both.returncode == 0, both.stderr  # the --config after the command wins
    shown = run_as_typed("--config", config, "--set", "quota.daily=3 GB", "check-config",
                         "--set", "quota.monthly=50 GB", "--set", "quota.daily=4 GB")
    assert shown.returncode == 0, shown.stderr
    assert 'monthly = "50 GB"' in shown.stdout
    assert 'daily = "4 GB"' in shown.stdout  # the later --set wins, as when both come first


def test_every_command_takes_config_and_set_after_it(tmp_path: Path) -> None:
    commands = ["collect", "web", "status", "report", "check-config", "reset-month", "connect",
                "disconnect", "notify-test"]
    for command in commands:
        result = run_as_typed(command, "--config", str(tmp_path / "missing.toml"),
                              "--set", "quota.monthly=1 GB")
        assert (result.returncode, result.stderr) == (
            2, f"traffic: {tmp_path}/missing.toml: config file not found\n"), command
        result = run_as_typed(command, "--set", "quota.nope=1")
        assert (result.returncode, result.stderr) == (
            2, "traffic: --set: unknown key 'quota.nope'\n"), command


@pytest.mark.parametrize("argv", [
    ["status"], ["status", "--json"], ["--config", "a.toml", "status", "--json"],
    ["--set", "site=x", "--set=quota.daily=2 GB", "report", "--set", "a.b=c", "--config=f"],
    ["report", "--resolution", "hour", "--start", "2026-11-01", "--end=2026-11-02", "--csv"],
    ["report", "--resolution=month", "--json", "--config", "x", "--config", "y"],
    ["--config", "status", "status"], ["collect", "--once"], ["web", "--config", "c"],
    ["check-config"], ["reset-month"], ["connect"], ["disconnect"],
    ["notify-test", "--url", "json://localhost"], ["--config", "", "status", "--set", ""],
    ["status", "--set="], ["--config=", "status"], ["status", "--json", "--json"],
    ["report", "--start=-5"], ["--set", "a=b=c", "status"], ["notify-test", "--url=m://a:b@c"],
    ["migrate", "--from", "sqlite:///a.db", "--to=mongodb://u:p@h/traffic", "--site", "cabin"],
    ["migrate", "--to", "sqlite:///b.db"],
])
def test_the_quick_parse_gives_what_argparse_gives(argv: list[str]) -> None:
    """What people type is parsed without building the argparse parser (several ms of every
    start-up); the outcome must be the parser's own."""
    from cli.main import _full_parse, _plain_parse

    plain = _plain_parse(argv)
    assert plain is not None
    assert vars(plain) == vars(_full_parse(argv))


@pytest.mark.parametrize("argv", [
    [], ["-h"], ["--help"], ["status", "-h"], ["--version"], ["stat"], ["status", "extra"],
    ["status", "status"], ["--json", "status"], ["report", "--res", "day"],
    ["report", "--resolution", "week"], ["report", "--json", "--csv"], ["status", "--json=1"],
    ["report", "--start", "-5"], ["status", "--config"], ["--conf", "x", "status"],
    ["status", "--"], ["collect", "--once", "--url", "x"],
])
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    from cli.main import _plain_parse

    assert _plain_parse(argv) is None
