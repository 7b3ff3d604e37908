"""Delivering alert messages through Apprise: the outbox's deliveries, one ``alerts.notify``
entry each, sent from a job of their own so that a slow service never delays counting.

What the family can rely on, and the choices behind it:

- **Kept across restarts.** A message waits in the store's outbox until it is sent or given up.
  A failure (Apprise's result says the service did not take it) is retried after 30 s, 2 min,
  10 min, 30 min and 1 h, then every hour, and given up after three days of retrying (an
  ``alert_given_up`` event). Time spent waiting for the link or with the collector stopped does
  not count towards the three days: the schedule counts failed attempts.
- **Never twice.** The start of a send is committed before the send. A delivery found with a
  send under way when the collector starts was cut short by a crash or a ``kill -9``: the
  service may or may not have taken it, and since nothing may be repeated it is dropped with an
  ``alert_unconfirmed`` event. The same goes for a send Apprise gave up waiting for (its
  ``timeout``): the service call may still finish after we stop waiting, so a retry could
  repeat it.
- **Waiting for the link.** While the keeper is enabled and its latest check found the link
  down, nothing is sent and nothing counts as a failure: the messages go out when the link is
  back. (A route that does not need the link, such as an SMS gateway on the LAN, is not told
  apart yet.)
- **Short.** A message is at most 280 characters (a tweet's limit), cut with an ellipsis. The
  body reads on its own; the title is the headline where the service has one (an e-mail's
  subject, a push notification's title) and is left out where it has none (X, SMS). X charges
  more for a post that carries a link, so links are taken out of tweets.
- **Secrets.** Events and log lines show the URL as ``mask_url`` does and every secret of the
  config masked in the errors.

Apprise is imported when a message is sent, so commands that never send (``traffic status``)
do not pay for loading it.
"""

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from traffic.config import MASK, Config, mask_text, mask_url, secret_values, url_secrets
from traffic.periods import now_ms
from traffic.store import Delivery, Event, Store

log = logging.getLogger(__name__)

DELIVER_EVERY_S = 15
"""How often the collector looks for deliveries that are due."""
SEND_TIMEOUT_S = 30.0
"""How long one send may take: a plugin's own socket timeouts (4 s by default) come first, and
a send under way at a stop ends well within supervisor's stopwaitsecs (60 s)."""
RETRY_DELAYS_S = (30, 120, 600, 1800, 3600)
"""Wait after the first, second, ... failure; the last one repeats."""
GIVE_UP_AFTER_S = 3 * 86_400
MAX_CHARS = 280
ELLIPSIS = "…"
X_SCHEMES = frozenset({"x", "twitter", "tweet"})
LINK = re.compile(r"\s*\b(?:https?://|www\.)\S+", re.IGNORECASE)
ERROR_CHARS = 300
TITLE_CHARS = 100


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
    text = " ".join(text.split())
    for secret in secrets:
        text = text.replace(secret, MASK)
    return shorten(mask_text(text), ERROR_CHARS)


def _apprise() -> Any:
    """The apprise module, its log records kept to the results it returns: its own lines
    would repeat ours, unmasked."""
    import apprise

    logger = logging.getLogger("apprise")
    if logger.propagate:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return apprise


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

    def send(self, title: str, body: str) -> Outcome:
        """Send one message; any failure is an outcome, never an exception."""
        try:
            if self._service is None:
                self._load()
            if self._service is None:
                return Outcome("failed", "Apprise cannot use this URL (an unknown service, a "
                                         "missing part or a typing mistake)")
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

    def _load(self) -> None:
        apprise = _apprise()
        asset = apprise.AppriseAsset(app_id="Traffic", app_desc="Traffic alerts")
        self._plugin = apprise.Apprise.instantiate(self.url, asset=asset)
        if self._plugin is not None:
            self._service = apprise.Apprise(asset=asset)
            self._service.add(self._plugin)

    def _outcome(self, result: Any, status: Any) -> Outcome:
        statuses = [service.status for service in result]
        if result.status == status.SUCCESS:
            return Outcome("delivered")
        problems = [entry.message for entry in result.logs()
                    if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        if status.TIMEOUT in statuses or result.status == status.TIMEOUT:
            return Outcome("unconfirmed", f"no answer within {self.timeout_s:g} s")
        error = problems[-1] if problems else f"Apprise reported {result.status.name.lower()}"
        return Outcome("failed", masked(error, self.secrets))


class Deliverer:
    """Sends the outbox's due deliveries, one at a time, and records how each ended."""

    def __init__(self, config: Config, store: Store, store_lock: threading.Lock,
                 clock: Callable[[], int] = now_ms, send_timeout_s: float = SEND_TIMEOUT_S
                 ) -> None:
        self.config = config
        self.store = store
        self.store_lock = store_lock
        self.clock = clock
        secrets = secret_values(config.effective)
        self.targets = [Target(entry.url, secrets, send_timeout_s)
                        for entry in config.alerts.notify]
        self._stopping = threading.Event()
        self._waiting = False

    def recover(self) -> int:
        """At start: drop the deliveries whose send was cut short (see the module's docstring).
        Returns how many."""
        with self.store_lock:
            interrupted = [delivery for delivery in self.store.pending_deliveries()
                           if delivery.sending_since is not None]
        for delivery in interrupted:
            self._unconfirmed(delivery, "the collector stopped while it was being sent")
        return len(interrupted)

    def stop(self) -> None:
        """Send nothing more (the send under way ends by itself)."""
        self._stopping.set()

    def run_due(self) -> int:
        """Send what is due, unless the link is down; returns how many deliveries ended or were
        rescheduled. A target that fails is not tried again in the same run."""
        if self._link_down():
            return 0
        with self.store_lock:
            due = self.store.due_deliveries(self.clock())
        failed: set[int] = set()
        handled = 0
        for delivery in due:
            if self._stopping.is_set():
                break
            if delivery.target in failed:
                continue
            if delivery.sending_since is not None:
                self._unconfirmed(delivery, "an earlier send of it did not end")
            elif not self._deliver(delivery):
                failed.add(delivery.target)
            handled += 1
        return handled

    def _deliver(self, delivery: Delivery) -> bool:
        """Send one delivery and record how it ended; False when the target failed."""
        target = self._target(delivery.target)
        if target is None:
            self._end(delivery, "alert_given_up", {
                "error": f"alerts.notify[{delivery.target}] is not configured any more",
                "attempts": delivery.attempts})
            return True
        started = self.clock()
        with self.store_lock:
            self.store.delivery_started(delivery.id, started)
        outcome = target.send(delivery.title, delivery.body)
        attempt = delivery.attempts + 1
        where = f"alerts.notify[{delivery.target}] ({target.masked_url})"
        if outcome.status == "delivered":
            self._end(delivery, "alert_sent", {"attempts": attempt})
            log.info("%s alert sent to %s", delivery.rule, where)
            return True
        if outcome.status == "unconfirmed":
            self._unconfirmed(delivery, outcome.error, started)
            return False
        if retrying_for_s(attempt) > GIVE_UP_AFTER_S:
            self._end(delivery, "alert_given_up", {"error": outcome.error, "attempts": attempt})
            log.error("%s alert to %s given up after %d attempts: %s", delivery.rule, where,
                      attempt, outcome.error)
            return False
        delay_s = retry_delay_s(attempt)
        retry_at = self.clock() + delay_s * 1000
        self._end(delivery, "alert_failed", {"error": outcome.error, "attempt": attempt,
                                             "retry_at": retry_at}, retry_at=retry_at)
        log.warning("%s alert to %s failed (attempt %d, next in %ds): %s", delivery.rule,
                    where, attempt, delay_s, outcome.error)
        return False

    def _unconfirmed(self, delivery: Delivery, why: str, since: int | None = None) -> None:
        self._end(delivery, "alert_unconfirmed",
                  {"error": why, "since": since or delivery.sending_since})
        log.warning("%s alert to alerts.notify[%d] may or may not have gone (%s); it is not "
                    "sent again", delivery.rule, delivery.target, why)

    def _end(self, delivery: Delivery, kind: str, detail: dict[str, Any],
             retry_at: int | None = None) -> None:
        target = self._target(delivery.target)
        event = Event(self.clock(), kind, {
            "rule": delivery.rule, "mark": delivery.mark, "target": delivery.target,
            "url": target.masked_url if target else "", **detail})
        with self.store_lock:
            self.store.delivery_ended(delivery.id, event, retry_at=retry_at)

    def _target(self, index: int) -> Target | None:
        return self.targets[index] if 0 <= index < len(self.targets) else None

    def _link_down(self) -> bool:
        if not self.config.keeper.enabled:
            return False
        from collector.keeper import STATE_META, KeeperState

        with self.store_lock:
            state = KeeperState.from_json(self.store.get_meta(STATE_META))
        down = state.link == "down"
        if down != self._waiting:
            self._waiting = down
            if down:
                log.info("alerts wait for the link to come back")
        return down


def send_test(config: Config, urls: list[str]) -> Iterator[tuple[str, Outcome]]:
    """``traffic notify-test``: the test message to each URL in turn, with the URL masked and
    how the send ended."""
    secrets = secret_values(config.effective)
    title = f"Traffic at {config.site}"
    for url in urls:
        target = Target(url, secrets)
        yield target.masked_url, target.send(title, f"{title}: this is a test message.")
