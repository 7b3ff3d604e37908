"""``traffic status`` (a real ``python -m cli`` process) with alerts in the store: the latest of
the period with where each went, and the messages waiting; the same in ``--json``. The store is
written through its own calls, as the collector's rules and deliveries write it."""

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from traffic.periods import billing_period
from traffic.store import Event, open_store

TZ = ZoneInfo("Europe/Stockholm")
MINUTE = 60_000
SECRET = "hunter2-mail"
NOTIFY = f'[alerts]\nnotify = ["mailtos://family:{SECRET}@example.org", "json://127.0.0.1:9/hook"]\n'
URLS = ("mailtos://********", "json://********")
EIGHTY = ("80% of the monthly limit is used: 32 GB of 40 GB, 12 days left. 666.7 MB a day keeps "
          "you inside.")
FIFTY = "50% of the monthly limit is used: 20 GB of 40 GB, 16 days left."
BURST = "Heavy use: 1.2 GB in the hour from 14:00 (the alert is set at 1 GB an hour)."


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "traffic.toml"), *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def clock(at: int, now: int) -> str:
    """As ``traffic status`` writes a time: ``14:02`` today, ``24 Nov 14:02`` another day."""
    moment, today = datetime.fromtimestamp(at / 1000, TZ), datetime.fromtimestamp(now / 1000, TZ)
    return moment.strftime("%H:%M" if moment.date() == today.date() else "%-d %b %H:%M")


class Alerts:
    """Raises alerts and ends their deliveries as collector/alerts.py and notify.py do."""

    def __init__(self, path: Path) -> None:
        self.store = open_store(f"sqlite://{path}", TZ)

    def raise_(self, at: int, rule: str, text: str, targets: tuple[int, ...] = (0, 1),
               quiet: bool = False) -> str:
        mark = f"{rule}:{at}"
        detail = {"rule": rule, "text": text, "site": "home", "mark": mark}
        if quiet:
            detail["quiet"] = True
        assert self.store.raise_alert(mark, Event(at, "alert", detail),
                                      [(target, rule, text) for target in targets])
        return mark

    def end(self, mark: str, target: int, at: int, kind: str, **detail: object) -> None:
        [delivery] = [d for d in self.store.pending_deliveries()
                      if (d.mark, d.target) == (mark, target)]
        self.store.delivery_started(delivery.id, at - 500)
        retry_at = detail.get("retry_at") if kind == "alert_failed" else None
        self.store.delivery_ended(delivery.id, Event(at, kind, {
            "rule": mark.split(":")[0], "mark": mark, "target": target, "url": URLS[target],
            **detail}), retry_at=retry_at)


@pytest.fixture
def household(tmp_path: Path) -> dict:
    """A period that began about ten days ago. Before it: a period summary still waiting for
    the hook. In it: an early warning sent to both; the link down, sent by mail, cut short by
    a crash on the hook; 50% (quiet) and 80% at one check, 80% sent by mail and failing on the
    hook; heavy use a minute ago, not sent yet."""
    now = int(time.time() * 1000)
    billing_day = (datetime.now(TZ) - timedelta(days=10)).day
    (tmp_path / "traffic.toml").write_text(
        f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
        f'[quota]\nmonthly = "40 GB"\nbilling_day = {billing_day}\n' + NOTIFY)
    start, _ = billing_period(now, billing_day, TZ)
    alerts = Alerts(tmp_path / "traffic.db")
    summary = alerts.raise_(start - 86_400_000, "period_summary", "Billing period ...",
                            targets=(1,))
    alerts.end(summary, 1, start - 86_400_000 + 1000, "alert_failed", error="refused",
               attempt=1, retry_at=start - 86_400_000 + 31_000)
    early = alerts.raise_(now - 40 * MINUTE, "early_warning", "At this pace: ...")
    for target in (0, 1):
        alerts.end(early, target, now - 40 * MINUTE + 2000, "alert_sent", attempts=1)
    down = alerts.raise_(now - 30 * MINUTE, "link_down", "The link has been down ...")
    alerts.end(down, 0, now - 30 * MINUTE + 2000, "alert_sent", attempts=1)
    alerts.end(down, 1, now - 28 * MINUTE, "alert_unconfirmed",
               error="the collector stopped while it was being sent", since=now - 29 * MINUTE)
    alerts.raise_(now - 20 * MINUTE, "threshold", FIFTY, targets=(), quiet=True)
    eighty = alerts.raise_(now - 20 * MINUTE + 1, "threshold", EIGHTY)
    alerts.end(eighty, 0, now - 20 * MINUTE + 2000, "alert_sent", attempts=1)
    retry_at = now + 10 * MINUTE
    alerts.end(eighty, 1, now - 20 * MINUTE + 3000, "alert_failed",
               error="Failed to send JSON POST notification: error=500.", attempt=1,
               retry_at=now - 19 * MINUTE)
    alerts.end(eighty, 1, now - 19 * MINUTE + 1000, "alert_failed",
               error="Failed to send JSON POST notification: error=500.", attempt=2,
               retry_at=retry_at)
    burst = now - MINUTE
    alerts.raise_(burst, "burst", BURST)
    alerts.store.close()
    return {"now": now, "eighty": now - 20 * MINUTE + 1, "fifty": now - 20 * MINUTE,
            "burst": burst, "retry_at": retry_at, "period_start": start}


def test_status_lists_the_periods_latest_alerts_and_what_waits(household: dict,
                                                                tmp_path: Path) -> None:
    result = run(tmp_path, "status")
    assert result.returncode == 0, result.stderr
    now = household["now"]
    lines = result.stdout.splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith("  alerts"))
    assert lines[first:] == [
        f"  alerts      {clock(household['burst'], now)} {BURST} — 2 waiting",
        f"              {clock(household['eighty'], now)} {EIGHTY} — sent to 1, 1 failed "
        f"(retrying at {clock(household['retry_at'], now)})",
        f"              {clock(household['fifty'], now)} {FIFTY} — not sent: a higher "
        "threshold reached at the same time says more",
        "              and 2 earlier alerts this period",
        "              4 messages waiting to be sent"]
    assert SECRET not in result.stdout


def test_status_json_gives_each_alert_with_its_deliveries(household: dict,
                                                          tmp_path: Path) -> None:
    result = run(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    alerts = json.loads(result.stdout)["alerts"]
    assert (alerts["raised"], alerts["pending"]) == (5, 4)  # the last period's is not raised
    latest = alerts["latest"]
    assert [alert["rule"] for alert in latest] == ["burst", "threshold", "threshold",
                                                   "link_down", "early_warning"]
    outcomes = [[(d["target"], d["url"], d["outcome"]) for d in alert["deliveries"]]
                for alert in latest]
    assert outcomes == [
        [(0, URLS[0], "waiting"), (1, URLS[1], "waiting")],
        [(0, URLS[0], "sent"), (1, URLS[1], "failed")],
        [],
        [(0, URLS[0], "sent"), (1, URLS[1], "unconfirmed")],
        [(0, URLS[0], "sent"), (1, URLS[1], "sent")]]
    eighty, fifty = latest[1], latest[2]
    assert (eighty["text"], eighty["at"], eighty["quiet"], fifty["quiet"]) == (
        EIGHTY, household["eighty"], False, True)
    failed = eighty["deliveries"][1]
    assert (failed["attempts"], failed["retry_at"], failed["error"]) == (
        2, household["retry_at"], "Failed to send JSON POST notification: error=500.")
    assert failed["retry_at_iso"].startswith(
        datetime.fromtimestamp(household["retry_at"] / 1000, TZ).strftime("%Y-%m-%dT%H:%M"))
    assert latest[3]["deliveries"][1]["error"] == "the collector stopped while it was being sent"
    assert SECRET not in result.stdout


def test_status_says_none_this_period_once_alerts_are_set_up(tmp_path: Path) -> None:
    config = (f'timezone = "Europe/Stockholm"\n[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
              '[quota]\nmonthly = "40 GB"\n')
    open_store(f"sqlite://{tmp_path}/traffic.db", TZ).close()
    (tmp_path / "traffic.toml").write_text(config)
    assert "alerts" not in run(tmp_path, "status").stdout  # nothing to tell, nowhere to send
    (tmp_path / "traffic.toml").write_text(config + NOTIFY)
    result = run(tmp_path, "status")
    assert result.stdout.splitlines()[-1] == "  alerts      none this period"
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["alerts"] == {"raised": 0, "pending": 0, "latest": []}
