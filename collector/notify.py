"""Delivering alert messages through Apprise: the outbox's deliveries, one ``alerts.notify``
entry each, sent from a job of their own so that a slow service never delays counting.

What the family can rely on, and the choices behind it:

- **Never twice.** The start of a send is committed before the send. A delivery found with a
  send under way when the collector starts was cut short by a crash or a ``kill -9``: the
  service may or may not have taken it, and since nothing may be repeated it is dropped with an
  ``alert_unconfirmed`` event. The same goes for a send Apprise gave up waiting for (its
  ``timeout``): the service call may still finish after we stop waiting, so a retry could
  repeat it. For the same reason a notify URL has exactly one recipient: Apprise reports a URL
  with several (``mailto://...?to=a,b``, several Telegram chats or ntfy topics) as failed when
  one of them fails, and a retry would send the message again to the others. Such a URL, a
  ``retry=`` that has Apprise repeat a send itself, the same URL twice and a URL Apprise cannot
  use are config errors (``check_notify``: ``traffic check-config`` and the collector's start).
- **Kept across restarts, in order.** A message waits in the store's outbox until it is sent
  or given up. Each URL gets its messages in the order they were raised. A failure (Apprise's
  result says the service did not take it) is retried after 30 s, 2 min, 10 min, 30 min and
  1 h, then every hour, and given up after three days of retrying (an ``alert_given_up``
  event). A URL that failed is not tried again in the same run, and all its messages wait for
  its retry (only the one tried counts an attempt); when it takes one again, the others follow
  in order. URLs take turns within a run, so one URL's backlog does not hold up the others.
  Time spent waiting for the link or with the collector stopped does not count towards the
  three days: the schedule counts failed attempts.
- **The URL it was meant for.** A delivery names its URL by a fingerprint (an HMAC with the
  store's salt; never the URL itself), so reordering ``alerts.notify`` while messages wait
  still sends each to its URL; a message whose URL was removed or changed, or whose entry's
  ``rules`` no longer take its rule, is given up with an event.
- **Waiting for the link.** While the keeper is enabled and its latest check found the link
  down, nothing is sent and nothing counts as a failure. A message raised before or during an
  outage goes out when the link is back; if it waited more than 15 minutes, its text starts
  with the local time it was raised at, ``(14:02) 80% of ...`` (with the day when that was not
  today). A ``modem://`` target (an SMS through the modem or the router, collector/sms_notify.py)
  does not need the link: its messages go out while the link is down.
- **Short.** A message is at most 280 characters (a tweet's limit), cut with an ellipsis. The
  body reads on its own; the title is the headline where the service has one (an e-mail's
  subject, a push notification's title) and is left out where it has none (X, SMS). X charges
  more for a post that carries a link, so links are taken out of tweets.
- **Secrets.** Events and log lines show the URL as ``mask_url`` does and every secret of the
  config masked in the errors.

Apprise is imported when the URLs are checked or a message is sent, so commands that never
send (``traffic status``) do not pay for loading it.
"""

import hashlib
import hmac
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from traffic.config import (
    SMS_SCHEME,
    Config,
    ConfigError,
    NotifyTarget,
    mask_known,
    mask_url,
    secret_values,
    sms_target,
    url_secrets,
)
from traffic.periods import from_ms, now_ms
from traffic.store import Delivery, Event, Store

log = logging.getLogger(__name__)

DELIVER_EVERY_S = 60
"""How often the collector looks again while a delivery is due but waits (the link is down,
its URL failed) or the store fails; an alert just raised is delivered at once, a retry at its
time."""
DELIVER_IDLE_S = 300
"""The longest sleep of the deliverer with nothing to send (each look costs the scheduler's
hand-over, a tenth of a poll's CPU when it came every minute)."""
SEND_TIMEOUT_S = 30.0
"""How long one send may take: a plugin's own socket timeouts (4 s by default) come first, and
a send under way at a stop ends well within supervisor's stopwaitsecs (60 s)."""
RETRY_DELAYS_S = (30, 120, 600, 1800, 3600)
"""Wait after the first, second, ... failure; the last one repeats."""
GIVE_UP_AFTER_S = 3 * 86_400
DELAYED_AFTER_S = 15 * 60
"""A message sent this long after it was raised starts with the time it was raised at."""
MAX_CHARS = 280
ELLIPSIS = "…"
X_SCHEMES = frozenset({"x", "twitter", "tweet"})
LINK = re.compile(r"\s*\b(?:https?://|www\.)\S+", re.IGNORECASE)
ERROR_CHARS = 300
TITLE_CHARS = 100
CLOSING_LINE = re.compile(r"(Failed to send|An exception occured sending a) [^:]+ notification\.")
"""Apprise's own last line after a custom plugin's failure: the plugin's line before it says
more."""


@dataclass(frozen=True)
class Outcome:
    """How one send ended: ``delivered``, ``failed`` or ``unconfirmed`` (it may have gone)."""

    status: str
    error: str = ""


def retry_delay_s(failures: int) -> int:
    """Seconds to wait after the ``failures``-th failure in a row (1 for the first)."""
    return RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1]


def retrying_for_s(failures: int) -> int:
    """Seconds from the first failure to the retry after the ``failures``-th one."""
    return sum(retry_delay_s(failure) for failure in range(1, failures + 1))


def shorten(text: str, limit: int = MAX_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + ELLIPSIS


def masked(text: str, secrets: Iterable[str]) -> str:
    """``text`` on one line, each secret replaced (longest first, as ``secret_values`` gives
    them), cut to a readable length."""
    return shorten(mask_known(" ".join(text.split()), secrets), ERROR_CHARS)


def _apprise() -> Any:
    """The apprise module, its log records kept to the results it returns: its own lines
    would repeat ours, unmasked."""
    import apprise

    logger = logging.getLogger("apprise")
    if logger.propagate:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return apprise


def raised_at(created: int, now: int, tz: ZoneInfo) -> str:
    """``(14:02) `` before a message sent more than ``DELAYED_AFTER_S`` after it was raised
    (``(7 Nov 14:02) `` when that was another day), else nothing."""
    if now - created <= DELAYED_AFTER_S * 1000:
        return ""
    raised = from_ms(created, tz)
    same_day = raised.date() == from_ms(now, tz).date()
    return f"({raised:%H:%M}) " if same_day else f"({raised:%-d %b %H:%M}) "


def url_fingerprint(url: str, salt: str) -> str:
    """What a delivery keeps to name its URL: not the URL, which holds secrets."""
    return hmac.new(salt.encode(), url.encode(), hashlib.sha256).hexdigest()[:32]


class Target:
    """One Apprise URL and the Apprise object that sends to it, made once."""

    def __init__(self, url: str, secrets: Iterable[str] = (),
                 timeout_s: float = SEND_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.masked_url = mask_url(url)
        self.secrets = sorted({*secrets, *url_secrets(url)}, key=len, reverse=True)
        self.scheme = url.split("://", 1)[0].lower()
        self._service: Any = None
        self._plugin: Any = None
        self._unusable = ""

    @property
    def needs_link(self) -> bool:
        """Whether sending needs the data link (an SMS does not)."""
        return not self.url.lower().startswith(SMS_SCHEME)

    def problem(self) -> str:
        """Why this URL cannot be an ``alerts.notify`` entry, in words that show no secret;
        empty when it can."""
        if not self.needs_link:
            try:
                sms_target(self.url)
            except ValueError as error:
                return str(error)
        plugin = self._load()
        if plugin is None:
            return f"Apprise cannot use {self.masked_url}: {self._unusable}"
        retry = int(getattr(plugin, "retry", 0) or 0)
        recipients = len(plugin) // (retry + 1)  # Apprise 2.x multiplies len() by retry + 1
        if recipients > 1:
            return (f"{self.masked_url} sends to {recipients} recipients; write one entry per "
                    "recipient (Apprise counts a URL as failed when one of its recipients "
                    "fails, and a retry would send the message again to the others)")
        if retry:
            return (f"{self.masked_url} asks Apprise to repeat a failed send (retry={retry}); "
                    "take it out: Traffic retries by itself, and only where a message cannot "
                    "have gone")
        return ""

    def send(self, title: str, body: str) -> Outcome:
        """Send one message; any failure is an outcome, never an exception."""
        try:
            if self._load() is None:
                return Outcome("failed", f"Apprise cannot use this URL: {self._unusable}")
            title, body = self.message(title, body)
            apprise = _apprise()
            result = self._service.notify(body=body, title=title,
                                          body_format=apprise.NotifyFormat.TEXT,
                                          timeout=self.timeout_s)
        except Exception as error:  # a plugin's bug must not stop the other deliveries
            return Outcome("failed", masked(f"{type(error).__name__}: {error}", self.secrets))
        with result:
            return self._outcome(result, apprise.AppriseResultStatus)

    def message(self, title: str, body: str) -> tuple[str, str]:
        """What this service is sent: no title where it has none, no link in a tweet, and
        nothing longer than ``MAX_CHARS``."""
        if self._plugin is not None and self._plugin.title_maxlen <= 0:
            title = ""
        if self.scheme in X_SCHEMES:
            body = LINK.sub("", body)
        return shorten(title, TITLE_CHARS), shorten(body)

    def _load(self) -> Any:
        """The Apprise plugin for the URL, made at the first call; None when Apprise cannot
        make one (``_unusable`` says why)."""
        if self._plugin is not None or self._unusable:
            return self._plugin
        apprise = _apprise()
        asset = apprise.AppriseAsset(app_id="Traffic", app_desc="Traffic alerts")
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as said:
            self._plugin = apprise.Apprise.instantiate(self.url, asset=asset)
        if self._plugin is None:
            from apprise.manager_plugins import NotificationManager

            lines = [line for line in said.getvalue().splitlines() if line.strip()]
            self._unusable = (
                f"no service is called {self.scheme!r} (a typing mistake?)"
                if self.scheme not in NotificationManager() else
                masked(lines[0], self.secrets) if lines else "a part is missing or mistyped")
            return None
        self._service = apprise.Apprise(asset=asset)
        self._service.add(self._plugin)
        return self._plugin

    def _outcome(self, result: Any, status: Any) -> Outcome:
        statuses = [service.status for service in result]
        if result.status == status.SUCCESS:
            return Outcome("delivered")
        problems = [entry.message for entry in result.logs()
                    if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        if status.TIMEOUT in statuses or result.status == status.TIMEOUT:
            return Outcome("unconfirmed", f"no answer within {self.timeout_s:g} s")
        problems = [problem for problem in problems
                    if not CLOSING_LINE.fullmatch(problem)] or problems
        error = problems[-1] if problems else f"Apprise reported {result.status.name.lower()}"
        return Outcome("failed", masked(error, self.secrets))


def check_targets(targets: Sequence[Target]) -> None:
    """Raise ``ConfigError``, in one line naming the entry, unless every URL is one Apprise can
    use, with one recipient, once (see the module's docstring)."""
    seen: dict[str, int] = {}
    for index, target in enumerate(targets):
        problem = target.problem()
        if problem:
            raise ConfigError(f"alerts.notify[{index}]: {problem}")
        if target.url in seen:
            raise ConfigError(f"alerts.notify[{index}]: {target.masked_url} is the same URL as "
                              f"alerts.notify[{seen[target.url]}]; keep one entry (with the "
                              "rules of both), or each message goes out twice")
        seen[target.url] = index


def register_own(config: Config, urls: Iterable[str]) -> None:
    """The targets of our own (``modem://``) known to Apprise when ``urls`` use them, sending
    through ``config``'s sources."""
    if any(url.lower().startswith(SMS_SCHEME) for url in urls):
        from collector.sms_notify import register

        register(config)


def check_notify(config: Config) -> None:
    """``traffic check-config``: the ``alerts.notify`` URLs as the collector checks them."""
    register_own(config, [entry.url for entry in config.alerts.notify])
    secrets = secret_values(config.effective)
    check_targets([Target(entry.url, secrets) for entry in config.alerts.notify])


class Deliverer:
    """Sends the outbox's due deliveries, each URL's in order, and records how each ended.

    Made at the collector's start: it refuses ``alerts.notify`` URLs that could send a message
    twice (``ConfigError``), and gives the store the URLs' fingerprints."""

    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], int] = now_ms, send_timeout_s: float = SEND_TIMEOUT_S
                 ) -> None:
        from collector.sources import store_salt

        self.config = config
        self.store = store
        self.clock = clock
        secrets = secret_values(config.effective)
        self.entries: Sequence[NotifyTarget] = config.alerts.notify
        register_own(config, [entry.url for entry in self.entries])
        self.targets = [Target(entry.url, secrets, send_timeout_s) for entry in self.entries]
        check_targets(self.targets)
        with store.consistent():
            salt = store_salt(store)
            fingerprints = [url_fingerprint(entry.url, salt) for entry in self.entries]
            store.set_notify_targets(fingerprints)
        self._entry = {fingerprint: index for index, fingerprint in enumerate(fingerprints)}
        self._stopping = threading.Event()
        self._waiting = False

    def recover(self) -> int:
        """At start: drop the deliveries whose send was cut short (see the module's docstring).
        Returns how many."""
        interrupted = [delivery for delivery in self.store.pending_deliveries()
                       if delivery.sending_since is not None]
        for delivery in interrupted:
            self._unconfirmed(delivery, "the collector stopped while it was being sent")
        return len(interrupted)

    def stop(self) -> None:
        """Send nothing more (the send under way ends by itself)."""
        self._stopping.set()

    def run_due(self) -> int:
        """Send what is due (while the link is down, only to the URLs that do not need it);
        returns how many deliveries were tried, dropped or given up. Each URL's messages go in
        the order they were raised, the URLs taking turns; a URL stops at its first message
        not due yet, and at a failure (see the module's docstring)."""
        down = self._link_down()
        if down and all(target.needs_link for target in self.targets):
            return 0
        now = self.clock()
        with self.store.consistent():
            if not self.store.due_deliveries(now, limit=1):
                return 0
            pending = self.store.pending_deliveries()
        queues = [queue for queue in _queues(pending) if queue[0].next_at <= now
                  and not (down and self._needs_link(queue[0]))]
        handled = 0
        while queues and not self._stopping.is_set():
            for queue in list(queues):
                if self._stopping.is_set():
                    break
                handled += 1
                if not self._deliver(queue.popleft()) or not queue or queue[0].next_at > now:
                    queues.remove(queue)
        return handled

    def next_run_at(self) -> int | None:
        """When ``run_due`` may have something to do next: the soonest retry; in
        ``DELIVER_EVERY_S`` while a delivery is due but waits (for the link, behind its URL's
        failure); None while the outbox is empty (an alert raised wakes the deliverer)."""
        pending = self.store.pending_deliveries()
        if not pending:
            return None
        now = self.clock()
        soonest = min(delivery.next_at for delivery in pending)
        return soonest if soonest > now else now + DELIVER_EVERY_S * 1000

    def _deliver(self, delivery: Delivery) -> bool:
        """Send one delivery and record how it ended; False when its URL gets nothing more
        in this run."""
        index = self._entry.get(delivery.fingerprint or "")
        if delivery.sending_since is not None:
            self._unconfirmed(delivery, "an earlier send of it did not end")
            return False
        if index is None:
            return self._not_for(delivery, "alerts.notify has no entry with the URL it was "
                                           "for any more")
        if not self._takes(index, delivery.rule):
            return self._not_for(delivery, f"alerts.notify[{index}] does not take "
                                           f"{delivery.rule} messages any more")
        target = self.targets[index]
        started = self.clock()
        self.store.delivery_started(delivery.id, started)
        body = raised_at(delivery.created, started, self.config.timezone) + delivery.body
        outcome = target.send(delivery.title, body)
        attempt = delivery.attempts + 1
        where = f"alerts.notify[{index}] ({target.masked_url})"
        if outcome.status == "delivered":
            self._end(delivery, "alert_sent", {"attempts": attempt})
            log.info("%s alert sent to %s", delivery.rule, where)
            return True
        if outcome.status == "unconfirmed":
            self._unconfirmed(delivery, outcome.error, started)
            return False
        delay_s = retry_delay_s(attempt)
        retry_at = self.clock() + delay_s * 1000
        if retrying_for_s(attempt) > GIVE_UP_AFTER_S:
            self._end(delivery, "alert_given_up", {"error": outcome.error, "attempts": attempt},
                      hold_until=retry_at)
            log.error("%s alert to %s given up after %d attempts: %s", delivery.rule, where,
                      attempt, outcome.error)
            return False
        self._end(delivery, "alert_failed", {"error": outcome.error, "attempt": attempt,
                                             "retry_at": retry_at},
                  retry_at=retry_at, hold_until=retry_at)
        log.warning("%s alert to %s failed (attempt %d, next in %ds): %s", delivery.rule,
                    where, attempt, delay_s, outcome.error)
        return False

    def _needs_link(self, delivery: Delivery) -> bool:
        index = self._entry.get(delivery.fingerprint or "")
        return index is None or self.targets[index].needs_link

    def _not_for(self, delivery: Delivery, why: str) -> bool:
        """Give up a message its URL is not configured to get now; nothing was sent."""
        self._end(delivery, "alert_given_up", {"error": why, "attempts": delivery.attempts})
        log.warning("%s alert given up: %s", delivery.rule, why)
        return True

    def _takes(self, index: int, rule: str) -> bool:
        from collector.alerts import targets_for

        return targets_for(rule, [self.entries[index]]) == [0]

    def _unconfirmed(self, delivery: Delivery, why: str, since: int | None = None) -> None:
        self._end(delivery, "alert_unconfirmed",
                  {"error": why, "since": since or delivery.sending_since})
        index = self._entry.get(delivery.fingerprint or "")
        log.warning("%s alert to alerts.notify[%s] may or may not have gone (%s); it is not "
                    "sent again", delivery.rule, "?" if index is None else index, why)

    def _end(self, delivery: Delivery, kind: str, detail: dict[str, Any],
             retry_at: int | None = None, hold_until: int | None = None) -> None:
        index = self._entry.get(delivery.fingerprint or "")
        event = Event(self.clock(), kind, {
            "rule": delivery.rule, "mark": delivery.mark, "target": delivery.target,
            "url": "" if index is None else self.targets[index].masked_url, **detail})
        self.store.delivery_ended(delivery.id, event, retry_at=retry_at,
                                  hold_until=hold_until)

    def _link_down(self) -> bool:
        if not self.config.keeper.enabled:
            return False
        from collector.keeper import STATE_META, KeeperState

        state = KeeperState.from_json(self.store.get_meta(STATE_META))
        down = state.link == "down"
        if down != self._waiting:
            self._waiting = down
            if down:
                log.info("alerts wait for the link to come back")
        return down


def _queues(pending: Iterable[Delivery]) -> list[deque[Delivery]]:
    """The deliveries per URL (fingerprint), each in the order they were raised, the URL with
    the oldest message first. A delivery without a fingerprint is a queue of its own."""
    queues: dict[Any, deque[Delivery]] = {}
    for delivery in sorted(pending, key=lambda delivery: (delivery.created, delivery.id)):
        key = delivery.fingerprint or ("alone", delivery.id)
        queues.setdefault(key, deque()).append(delivery)
    return list(queues.values())


def send_test(config: Config, urls: list[str]) -> Iterator[tuple[str, Outcome]]:
    """``traffic notify-test``: the test message to each URL in turn, with the URL masked and
    how the send ended."""
    register_own(config, urls)
    secrets = secret_values(config.effective)
    title = f"Traffic at {config.site}"
    for url in urls:
        target = Target(url, secrets)
        yield target.masked_url, target.send(title, f"{title}: this is a test message.")
