"""Delivering alerts through Apprise's own plugins to local stand-ins (tests/sim/receivers.py):
an SMTP server, a ``json://`` receiver and the X API's ``POST /2/tweets``; retries on an
injected clock, each URL's messages in order after an outage, a reordered ``alerts.notify``,
URLs refused because they could send a message twice, a ``kill -9`` of a real collector, and
``traffic notify-test``."""

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from collector.keeper import STATE_META, KeeperState
from collector.notify import DELIVER_EVERY_S, GIVE_UP_AFTER_S, Deliverer, raised_at
from tests.conftest import make_config
from tests.sim.receivers import JsonReceiver, SmtpReceiver, XApiStandIn
from tests.stack import clean_env
from traffic.config import Config, ConfigError
from traffic.store import Event, Store, open_site_store

START = 1_796_000_000_000
HOOK_SECRET = "hook-secret-7Qx"
"""The password of the json:// URLs: it must never be shown."""


class Clock:
    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    with JsonReceiver() as running:
        yield running


def notify_entry(entry: str | tuple[str, list[str]]) -> str:
    """An ``alerts.notify`` entry in TOML: a URL, or ``(url, rules)``."""
    if isinstance(entry, str):
        return json.dumps(entry)
    url, rules = entry
    return f"{{url = {json.dumps(url)}, rules = {json.dumps(rules)}}}"


def alerts_config(tmp_path: Path, *entries: str | tuple[str, list[str]],
                  extra: str = "") -> Config:
    notify = ", ".join(notify_entry(entry) for entry in entries)
    return make_config(tmp_path, f'timezone = "Europe/Stockholm"\n{extra}'
                                 f'[alerts]\nnotify = [{notify}]\n')


def opened(config: Config) -> Store:
    return open_site_store(config, create=True)


def raise_alert(store: Store, targets: int | list[int], body: str,
                title: str = "Traffic at home", at: int = START,
                mark: str = "threshold:80:2026-11-08", rule: str = "threshold") -> None:
    """As the alert checker does: the mark, the event and a delivery to each target (the first
    ``targets`` entries, or those listed)."""
    indexes = range(targets) if isinstance(targets, int) else targets
    assert store.raise_alert(mark, Event(at, "alert", {"rule": rule, "text": body}),
                             [(target, title, body) for target in indexes])


def messages(receiver: JsonReceiver, path: str | None = None) -> list[str]:
    return [post["message"] for where, post in receiver.posts if path in (None, where)]


def link_state(store: Store, link: str, since: int) -> None:
    store.set_meta(STATE_META, KeeperState(link=link, since=since).to_json())


KEEPER_ON = '[keeper]\nenabled = true\nconnect = ["true"]\n'


def kinds(store: Store) -> list[str]:
    return [event.kind for event in reversed(store.events())]


def wait_until(done: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.05)


def test_an_email_reaches_a_local_smtp_server(tmp_path: Path) -> None:
    with SmtpReceiver("mailer", "smtp-secret-4Kp") as smtp:
        config = alerts_config(tmp_path, smtp.url("traffic@example.org", "family@example.org"))
        store = opened(config)
        raise_alert(store, 1, "80 % of the 40 GB used, 12 GB left for 9 days.")
        assert Deliverer(config, store, Clock()).run_due() == 1
    [mail] = smtp.messages
    assert (mail["Subject"], mail["From"], mail["To"]) == (
        "Traffic at home", "traffic@example.org", "family@example.org")
    assert mail.get_body().get_content().strip() == (
        "80 % of the 40 GB used, 12 GB left for 9 days.")
    assert smtp.logins == ["mailer"]
    sent = store.events()[0]
    assert sent == Event(START, "alert_sent", {"rule": "threshold",
                                               "mark": "threshold:80:2026-11-08", "target": 0,
                                               "url": "mailto://********", "attempts": 1})
    assert store.pending_deliveries() == []
    assert "smtp-secret-4Kp" not in json.dumps([event.detail for event in store.events()])
    store.close()


def test_json_posts_carry_the_title_and_body_at_most_280_characters(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    config = alerts_config(tmp_path, receiver.url("/family"), receiver.url("/admin"))
    store = opened(config)
    raise_alert(store, 2, "Burst: 25 MB in the last hour.", mark="burst:1")
    long = "At this pace: 46 GB by 7 Dec, over the 40 GB limit. " * 8
    raise_alert(store, 1, long, mark="early_warning:1")
    assert Deliverer(config, store, Clock()).run_due() == 3
    assert [(path, post["title"], post["message"]) for path, post in receiver.posts[:2]] == [
        ("/family", "Traffic at home", "Burst: 25 MB in the last hour."),
        ("/admin", "Traffic at home", "Burst: 25 MB in the last hour.")]
    cut = receiver.posts[2][1]["message"]
    assert len(cut) == 280 and cut.endswith("…") and long.startswith(cut[:-1])
    assert kinds(store)[-3:] == ["alert_sent"] * 3 and store.pending_deliveries() == []
    store.close()


X_KEYS = ("xconsumerkey1", "xconsumersecret2", "xaccesstoken3", "xaccesssecret4")


@pytest.fixture
def x_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[XApiStandIn]:
    """The stand-in, with Apprise's X plugin pointed at it: every X API address the plugin
    knows is redirected, so nothing can leave the box."""
    from apprise.plugins.twitter import NotifyTwitter

    with XApiStandIn(*X_KEYS) as stand_in:
        for name in ("twitter_tweet", "twitter_whoami", "twitter_lookup", "twitter_dm",
                     "twitter_media"):
            path = getattr(NotifyTwitter, name).split("://", 1)[1].split("/", 1)[1]
            monkeypatch.setattr(NotifyTwitter, name, f"{stand_in.base}/{path}")
        yield stand_in


def test_a_tweet_is_a_signed_oauth_post_with_the_text_and_no_link(
        tmp_path: Path, x_api: XApiStandIn) -> None:
    config = alerts_config(tmp_path, "tweet://" + "/".join(X_KEYS),
                           "tweet://" + "/".join(X_KEYS[:3]) + "/not-the-secret")
    store = opened(config)
    body = ("At this pace: 46 GB by 7 Dec, over the 40 GB limit. 1.1 GB a day keeps you "
            "inside. Details: https://traffic.example.org/usage")
    raise_alert(store, 2, body)
    Deliverer(config, store, Clock()).run_due()
    assert x_api.tweets == ["At this pace: 46 GB by 7 Dec, over the 40 GB limit. 1.1 GB a day "
                            "keeps you inside. Details:"]
    assert "http" not in x_api.tweets[0] and "example.org" not in x_api.tweets[0]
    oauth = x_api.oauth[0]
    assert (oauth["oauth_consumer_key"], oauth["oauth_token"],
            oauth["oauth_signature_method"]) == (X_KEYS[0], X_KEYS[2], "HMAC-SHA1")
    # the second target signs with a wrong secret: the stand-in refuses it as X would
    assert x_api.rejected == ["bad oauth_signature"]
    failed = store.events()[0]
    assert (failed.kind, failed.detail["target"], failed.detail["url"]) == (
        "alert_failed", 1, "tweet://********")
    assert "error=401" in failed.detail["error"]
    shown = json.dumps([event.detail for event in store.events()])
    assert not any(key in shown for key in X_KEYS)
    store.close()


def test_a_delivery_that_fails_twice_arrives_once_with_the_failures_in_the_events(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    config = alerts_config(tmp_path, receiver.url(auth=f"traffic:{HOOK_SECRET}"))
    store = opened(config)
    clock = Clock()
    deliverer = Deliverer(config, store, clock)
    assert deliverer.next_run_at() is None  # nothing to send: it sleeps until woken
    raise_alert(store, 1, "80 % of the 40 GB used.")
    receiver.fail(2)
    deliverer.run_due()
    assert deliverer.next_run_at() == START + 30_000  # the retry's own time
    clock.advance(29)
    assert deliverer.run_due() == 0  # the retry is not due yet
    clock.advance(1)
    deliverer.run_due()
    clock.advance(119)
    assert deliverer.run_due() == 0
    clock.advance(1)
    deliverer.run_due()
    assert [post["message"] for _, post in receiver.posts] == ["80 % of the 40 GB used."]
    assert receiver.refused == 2
    events = list(reversed(store.events()))
    assert [event.kind for event in events] == ["alert", "alert_failed", "alert_failed",
                                                "alert_sent"]
    first, second = events[1].detail, events[2].detail
    assert (first["attempt"], first["retry_at"], second["attempt"], second["retry_at"]) == (
        1, START + 30_000, 2, START + 30_000 + 120_000)
    assert first["error"] == ("Failed to send JSON POST notification: Internal server error., "
                              "error=500.")
    assert events[3].detail == {"rule": "threshold", "mark": "threshold:80:2026-11-08",
                                "target": 0, "url": "json://********",
                                "attempts": 3}
    assert HOOK_SECRET not in json.dumps([event.detail for event in events])
    assert store.pending_deliveries() == []
    assert deliverer.next_run_at() is None
    store.close()


def test_retries_back_off_to_hourly_and_give_up_after_three_days(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    config = alerts_config(tmp_path, receiver.url())
    store = opened(config)
    clock = Clock()
    deliverer = Deliverer(config, store, clock)
    raise_alert(store, 1, "100 % of the 40 GB used.")
    receiver.fail(1_000)
    attempts = []
    while store.pending_deliveries():
        [delivery] = store.pending_deliveries()
        clock.now = delivery.next_at
        attempts.append(clock.now)
        deliverer.run_due()
    waits = [(later - earlier) // 1000 for earlier, later in itertools.pairwise(attempts)]
    assert waits[:7] == [30, 120, 600, 1800, 3600, 3600, 3600]
    assert set(waits[4:]) == {3600}
    assert attempts[-1] - attempts[0] <= GIVE_UP_AFTER_S * 1000 < (attempts[-1] - attempts[0]
                                                                    + 3_600_000)
    last = store.events()[0]
    assert (last.kind, last.detail["attempts"]) == ("alert_given_up", len(attempts))
    assert kinds(store).count("alert_failed") == len(attempts) - 1
    assert receiver.posts == []
    store.close()


def test_a_send_cut_short_is_not_sent_again(tmp_path: Path, receiver: JsonReceiver) -> None:
    """The collector was killed between the start of a send and its end: the message may have
    gone, so it is dropped with an event rather than perhaps sent twice."""
    config = alerts_config(tmp_path, receiver.url())
    store = opened(config)
    raise_alert(store, 1, "50 % of the 40 GB used.")
    [delivery] = store.due_deliveries(START)
    store.delivery_started(delivery.id, START + 5)
    store.close()  # the process ends here

    store = opened(config)
    clock = Clock(START + 60_000)
    deliverer = Deliverer(config, store, clock)
    assert deliverer.recover() == 1
    clock.advance(3600)
    assert deliverer.run_due() == 0
    assert receiver.posts == [] and store.pending_deliveries() == []
    unconfirmed = store.events()[0]
    assert (unconfirmed.kind, unconfirmed.detail["since"], unconfirmed.detail["url"]) == (
        "alert_unconfirmed", START + 5, "json://********")
    store.close()


class SlowReceiver(JsonReceiver):
    """Answers each post after two seconds."""

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        time.sleep(2)
        super().handle(request)


def test_a_send_apprise_stopped_waiting_for_is_not_repeated(tmp_path: Path) -> None:
    """Apprise's timeout ends the wait, not the service call: the message still arrives, once."""
    with SlowReceiver() as slow:
        config = alerts_config(tmp_path, slow.url() + "?rto=10")
        store = opened(config)
        clock = Clock()
        deliverer = Deliverer(config, store, clock, send_timeout_s=0.5)
        raise_alert(store, 1, "Traffic at home: the link is back after 2 hours.")
        deliverer.run_due()
        assert store.events()[0].kind == "alert_unconfirmed"
        wait_until(lambda: len(slow.posts) == 1, "the late post")
        clock.advance(3600)
        assert deliverer.run_due() == 0
        time.sleep(0.5)
        assert len(slow.posts) == 1 and store.pending_deliveries() == []
        store.close()


def test_deliveries_wait_while_the_link_is_down_and_say_when_they_were_raised(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    """START is 01:53 in Stockholm: a message that waited more than 15 minutes starts with
    the time it was raised at; one that waited less does not."""
    config = alerts_config(tmp_path, receiver.url(), extra=KEEPER_ON)
    store = opened(config)
    clock = Clock()
    deliverer = Deliverer(config, store, clock)
    raise_alert(store, 1, "80% of the monthly limit is used.")
    link_state(store, "down", START)
    for _ in range(3):
        clock.advance(600)
        assert deliverer.run_due() == 0
    [waiting] = store.pending_deliveries()
    assert (waiting.attempts, receiver.posts, kinds(store)) == (0, [], ["alert"])
    assert deliverer.next_run_at() == clock.now + DELIVER_EVERY_S * 1000  # looks again
    raise_alert(store, 1, "The link is down since 01:53.", at=clock.now - 60_000,
                mark="link_down:1", rule="link_down")
    link_state(store, "up", clock.now)
    assert deliverer.run_due() == 2
    assert messages(receiver) == ["(01:53) 80% of the monthly limit is used.",
                                  "The link is down since 01:53."]
    store.close()


def test_the_time_raised_fits_in_280_characters_and_names_another_day() -> None:
    from zoneinfo import ZoneInfo

    from collector.notify import Target

    tz = ZoneInfo("Europe/Stockholm")
    evening = START + 21 * 3_600_000  # 22:53 on 30 Nov 2026
    assert raised_at(evening, evening + 15 * 60_000, tz) == ""
    assert raised_at(evening, evening + 15 * 60_000 + 1, tz) == "(22:53) "
    assert raised_at(evening, evening + 2 * 3_600_000, tz) == "(30 Nov 22:53) "
    body = raised_at(START, START + 7_200_000, tz) + "x" * 280
    _, sent = Target("json://127.0.0.1:9/alerts").message("Traffic at home", body)
    assert len(sent) == 280 and sent.startswith("(01:53) xxx") and sent.endswith("…")


def test_queued_messages_follow_their_url_when_alerts_notify_is_reordered(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    """Messages wait while the link is down; meanwhile the entries are reordered, one is
    limited to the router's messages and one is removed: each message goes to the URL it was
    raised for, or is given up, never to whichever URL now has its position."""
    family, admin, phone, old = (receiver.url(path) for path in ("/family", "/admin",
                                                                   "/phone", "/old"))
    before = alerts_config(tmp_path, family, (admin, ["router"]), phone, old, extra=KEEPER_ON)
    store = opened(before)
    Deliverer(before, store, Clock())  # the collector's start
    link_state(store, "down", START)
    raise_alert(store, [0, 2, 3], "80% of the monthly limit is used.")
    raise_alert(store, [0, 1, 2, 3], "The router's SIM card asks for its PIN.",
                mark="device:sim", rule="device")

    after = alerts_config(tmp_path, (admin, ["router"]), (phone, ["router"]), family,
                          extra=KEEPER_ON)
    deliverer = Deliverer(after, store, Clock(START + 60_000))
    link_state(store, "up", START + 60_000)
    assert deliverer.run_due() == 7
    assert messages(receiver, "/family") == ["80% of the monthly limit is used.",
                                             "The router's SIM card asks for its PIN."]
    assert messages(receiver, "/admin") == messages(receiver, "/phone") == [
        "The router's SIM card asks for its PIN."]
    assert messages(receiver, "/old") == []
    outcomes = {(event.detail["mark"], event.detail["target"]): (
        event.kind, event.detail["url"], event.detail.get("error"))
        for event in store.events(kinds=["alert_sent", "alert_given_up"])}
    assert outcomes == {
        ("threshold:80:2026-11-08", 0): ("alert_sent", "json://********", None),
        ("threshold:80:2026-11-08", 2): (
            "alert_given_up", "json://********",
            "alerts.notify[1] does not take threshold messages any more"),
        ("threshold:80:2026-11-08", 3): (
            "alert_given_up", "", "alerts.notify has no entry with the URL it was for any more"),
        ("device:sim", 0): ("alert_sent", "json://********", None),
        ("device:sim", 1): ("alert_sent", "json://********", None),
        ("device:sim", 2): ("alert_sent", "json://********", None),
        ("device:sim", 3): (
            "alert_given_up", "", "alerts.notify has no entry with the URL it was for any more")}
    assert store.pending_deliveries() == []
    stored = [row[0] for row in store.db.execute("SELECT value FROM meta")]
    assert not any("127.0.0.1" in value for value in stored)  # fingerprints, not URLs
    store.close()


def test_after_an_outage_each_url_gets_its_messages_in_order_and_a_failing_one_waits(
        tmp_path: Path) -> None:
    """Three messages wait for the link; when it is back, the working URL gets them in order,
    the failing one is tried once per retry, its other messages wait with it (no attempt, no
    event each), a message raised meanwhile waits behind them, and all go out in order when
    the URL takes messages again."""
    with JsonReceiver() as good, JsonReceiver() as bad:
        config = alerts_config(tmp_path, good.url(), bad.url(), extra=KEEPER_ON)
        store = opened(config)
        clock = Clock()
        deliverer = Deliverer(config, store, clock)
        link_state(store, "down", START)
        for number in range(3):  # raised at 01:53, 02:03, 02:13
            raise_alert(store, 2, f"message {number + 1}", at=START + number * 600_000,
                        mark=f"m{number + 1}")
        clock.advance(40 * 60)
        assert deliverer.run_due() == 0
        link_state(store, "up", clock.now)
        bad.fail(2)
        back = clock.now
        assert deliverer.run_due() == 4
        assert messages(good) == ["(01:53) message 1", "(02:03) message 2", "(02:13) message 3"]
        assert (bad.refused, bad.posts) == (1, [])
        waiting = store.pending_deliveries()
        assert [(d.body, d.attempts, d.next_at) for d in waiting] == [
            (f"message {number}", int(number == 1), back + 30_000) for number in (1, 2, 3)]
        assert kinds(store).count("alert_failed") == 1

        clock.advance(15)
        assert deliverer.run_due() == 0
        clock.advance(15)
        assert deliverer.run_due() == 1
        assert bad.refused == 2
        assert {d.next_at for d in store.pending_deliveries()} == {clock.now + 120_000}
        raise_alert(store, 2, "message 4", at=clock.now, mark="m4")
        clock.advance(60)
        assert deliverer.run_due() == 1  # the working URL only: message 4 waits at the other
        assert messages(good)[-1] == "message 4" and bad.refused == 2
        clock.advance(60)
        assert deliverer.run_due() == 4
        assert messages(bad) == ["(01:53) message 1", "(02:03) message 2", "(02:13) message 3",
                                 "message 4"]
        assert kinds(store).count("alert_failed") == 2 and store.pending_deliveries() == []
        sent = [event.detail["attempts"] for event in store.events(kinds=["alert_sent"])
                if event.detail["target"] == 1]
        assert sorted(sent) == [1, 1, 1, 3]
        store.close()


def test_a_dead_urls_backlog_is_tried_once_per_run_and_holds_up_no_other(
        tmp_path: Path) -> None:
    with JsonReceiver() as good, JsonReceiver() as dead:
        config = alerts_config(tmp_path, dead.url(), good.url())
        store = opened(config)
        clock = Clock()
        deliverer = Deliverer(config, store, clock)
        dead.fail(1_000)
        for number in range(25):
            raise_alert(store, [0], f"backlog {number}", mark=f"b{number}")
        raise_alert(store, [1], "the newest, elsewhere", at=START + 1, mark="new")
        clock.advance(1)
        assert deliverer.run_due() == 2
        assert (messages(good), dead.refused) == (["the newest, elsewhere"], 1)
        assert {(d.target, d.next_at) for d in store.pending_deliveries()} == {
            (0, clock.now + 30_000)}
        assert len(store.pending_deliveries()) == 25 and kinds(store).count("alert_failed") == 1
        store.close()


class CollectProcess:
    """``python -m cli collect`` with a kernel source on ``lo``, started and killed by a test."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.config = tmp_path / "traffic.toml"
        self.config.write_text(
            f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
            f'[collector]\ninterval = "250ms"\nsave_interval = "1s"\n'
            f'runtime_dir = "{tmp_path}/run"\n'
            f'[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
            f'[alerts]\nnotify = [{json.dumps(url)}]\n')
        self.log_path = tmp_path / "collector.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "--config", str(self.config), "collect"],
                stdout=log, stderr=log, env=clean_env())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=90) == 0


def test_a_delivery_pending_when_the_collector_is_killed_arrives_after_the_restart(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    url = receiver.url(auth=f"traffic:{HOOK_SECRET}")
    collector = CollectProcess(tmp_path, url)
    config = make_config(tmp_path, collector.config.read_text())
    store = opened(config)
    now = int(time.time() * 1000)
    raise_alert(store, 1, "80 % of the 40 GB used, 8 GB left for 9 days.", at=now)
    store.close()
    receiver.fail(1)
    try:
        collector.start()
        wait_until(lambda: receiver.refused == 1, "the first attempt")
        store = open_site_store(config, create=False)
        wait_until(lambda: "alert_failed" in kinds(store), "the failure to be recorded")
        collector.kill()  # kill -9 while the delivery waits for its retry
        [pending] = store.pending_deliveries()
        assert (pending.attempts, pending.sending_since) == (1, None)
        assert receiver.posts == []

        collector.start()
        wait_until(lambda: len(receiver.posts) == 1, "the retry after the restart", timeout=90)
        collector.stop()
    finally:
        collector.kill()
    assert [post["message"] for _, post in receiver.posts] == [
        "80 % of the 40 GB used, 8 GB left for 9 days."]
    assert kinds(store)[-3:] == ["alert", "alert_failed", "alert_sent"]
    assert store.events()[0].detail["attempts"] == 2 and store.pending_deliveries() == []
    store.close()
    log = collector.log_path.read_text()
    assert "alert to alerts.notify[0] (json://********) failed (attempt 1" in log
    assert HOOK_SECRET not in log


def notify_test(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), "notify-test",
                           *args], capture_output=True, text=True, env=clean_env(), timeout=120)


def test_notify_test_says_per_url_whether_it_was_delivered(tmp_path: Path) -> None:
    with JsonReceiver() as good, JsonReceiver() as failing:
        failing.fail(1)
        config = tmp_path / "traffic.toml"
        config.write_text(
            f'site = "cabin"\n[store]\nurl = "sqlite://{tmp_path}/none.db"\n'
            f'[alerts]\nnotify = ["{good.url(auth=f"traffic:{HOOK_SECRET}")}", '
            f'{{url = "{failing.url("/down")}", rules = ["router"]}}]\n')
        done = notify_test(config)
        assert (done.returncode, done.stdout.splitlines()) == (1, [
            "alerts.notify[0] json://********: delivered",
            "alerts.notify[1] json://********: failed: Failed to send JSON POST notification: "
            "Internal server error., error=500."])
        assert [(post["title"], post["message"]) for _, post in good.posts] == [
            ("Traffic at cabin", "Traffic at cabin: this is a test message.")]
        assert good.authorization[0].startswith("Basic ")  # the secret went to the service

        only = notify_test(config, "--url", failing.url("/down", auth=f"x:{HOOK_SECRET}"))
        assert (only.returncode, only.stdout) == (0, "json://********: delivered\n")
        assert len(failing.posts) == 1 and len(good.posts) == 1
        for result in (done, only):
            assert HOOK_SECRET not in result.stdout + result.stderr
    assert not (tmp_path / "none.db").exists()  # nothing kept: no store, no outbox


def test_notify_test_without_any_url_says_so(tmp_path: Path) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/none.db"\n')
    done = notify_test(config)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("traffic: notify-test: no alerts.notify URL is configured; add one "
                           "to [alerts] or give --url URL\n")


def traffic(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=120)


TWO_RECIPIENTS = ("sends to 2 recipients; write one entry per recipient (Apprise counts a URL "
                  "as failed when one of its recipients fails, and a retry would send the "
                  "message again to the others)")


@pytest.mark.parametrize(("url", "error"), [
    (f"mailtos://mailer:{HOOK_SECRET}@example.org?to=mum@example.org,dad@example.org",
     f"mailtos://******** {TWO_RECIPIENTS}"),
    (f"tgram://123456789:{HOOK_SECRET}abcdefghijklmnopqrs/111111/-222222",
     f"tgram://******** {TWO_RECIPIENTS}"),
    (f"ntfys://traffic:{HOOK_SECRET}@ntfy.example.org/family/admin",
     f"ntfys://******** {TWO_RECIPIENTS}"),
    (f"twiter://ckey/{HOOK_SECRET}/akey/asecret",
     "Apprise cannot use twiter://********: no service is called 'twiter' (a typing "
     "mistake?)"),
    (f"json://traffic:{HOOK_SECRET}@127.0.0.1:9/alerts?retry=2",
     "json://******** asks Apprise to repeat a failed send (retry=2); take it out: Traffic "
     "retries by itself, and only where a message cannot have gone"),
    ("ntfy://traffic-home-7f3k2",
     "ntfy://******** is the same URL as alerts.notify[0]; keep one entry (with the rules of "
     "both), or each message goes out twice"),
])
def test_check_config_refuses_a_url_that_could_send_a_message_twice_or_not_at_all(
        tmp_path: Path, url: str, error: str) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/none.db"\n'
                      f'[alerts]\nnotify = ["ntfy://traffic-home-7f3k2", '
                      f'{{url = {json.dumps(url)}, rules = ["quota"]}}]\n')
    done = traffic(config, "check-config")
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"traffic: alerts.notify[1]: {error}\n")
    assert HOOK_SECRET not in done.stderr


def test_check_config_takes_one_recipient_per_url(tmp_path: Path) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/none.db"\n[alerts]\nnotify = [\n'
                      '  "mailtos://mailer:pw@example.org?to=mum@example.org",\n'
                      '  "mailtos://mailer:pw@example.org?to=dad@example.org",\n'
                      '  "tgram://123456789:abcdefghijklmnopqrstuvwxyz12345678/111111",\n'
                      '  "ntfys://ntfy.example.org/family",\n'
                      '  "tweet://ckey/csecret/akey/asecret",\n]\n')
    done = traffic(config, "check-config")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("# config OK")


def test_the_collector_refuses_a_url_with_several_recipients_at_its_start(
        tmp_path: Path) -> None:
    collector = CollectProcess(
        tmp_path, f"mailto://mailer:{HOOK_SECRET}@127.0.0.1:9?mode=insecure&"
                  "from=traffic@example.org&to=mum@example.org,dad@example.org")
    done = traffic(collector.config, "collect")
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if "alerts.notify" in line] == [
        f"traffic: alerts.notify[0]: mailto://******** {TWO_RECIPIENTS}"]
    assert done.stderr.endswith(f"{TWO_RECIPIENTS}\n") and HOOK_SECRET not in done.stderr
    assert "collecting every" not in done.stderr  # it stopped before counting began
    with pytest.raises(ConfigError, match=r"^alerts\.notify\[0\]: mailto://\*{8} sends to 2 "):
        Deliverer(make_config(tmp_path, collector.config.read_text()),
                  opened(make_config(tmp_path)))
