"""The collector's SMS job: read the inbox every ``sms.check_every``, act on the commands
(``collector.sms_commands``), answer them, and run the on-demand sessions of ``up N``.

It runs on a thread of its own, and each session on another, so neither a slow modem nor a
minute-long connect delays the counter polls.

Each message is recorded as an event and deleted before it is acted on: a ``reboot`` acted on
first would find its message again after the reboot, and reboot again. A message whose delete
fails is not read again in the run (the delete is tried at every check).

``connect`` and ``disconnect`` are ``traffic connect`` and ``traffic disconnect``, under the same
keeper lock. ``up N`` (``session N``) connects, runs ``sms.session_run`` while the link is up
(started again after 10 s when it ends early: ``ssh -N -R`` needs no autossh), pushes "link up"
through the alerts (rule ``session``), and after N minutes stops the command, takes the link
down and only then texts "link down" to the sender: a modem whose only port carries PPP cannot
send before. The keeper's hold is then as it was before the session (a keeper that kept the
link up brings it back). A ``disconnect`` ends a running session early, as a stop of the
collector does; a session the collector did not end (it was killed) is ended at its next start.
"""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from collector.actions import ActionResult, ActionRunner
from collector.alerts import Alert, in_words, raise_alert
from collector.commands import connect_held, disconnect_held, lock_wait_s
from collector.keeper import STATE_META, KeeperState, keeper_lock
from collector.processes import ProcessTree
from collector.sms import Sms, SmsChannel, SmsError
from collector.sms_answers import status_answer, usage_answer
from collector.sms_commands import Command, Ignored, read_command
from traffic.config import (
    SMS_KEY_LENGTH,
    Config,
    ConfigError,
    mask_known,
    read_secret_file,
    secret_values,
    usable_sms_key,
)
from traffic.counters import Delta
from traffic.periods import from_ms
from traffic.store import Event, Store

log = logging.getLogger(__name__)

SESSION_META = "sms.session"
"""The running session: who asked, when it ends and the keeper's hold before it."""
RESTART_S = 10.0
"""Wait before ``sms.session_run`` is started again after it ended early."""
SEND_RETRY_S = 5.0
SEND_FOR_S = 90.0
"""How long "link down" is tried: the dialler may hold the modem's port a little longer."""


def sms_key(config: Config) -> str:
    """``sms.key``, or the first line of ``sms.key_file``; ConfigError when the file cannot be
    read or holds no usable key (the key itself is never shown)."""
    sms = config.sms
    if sms.key:
        return sms.key
    key = read_secret_file(sms.key_file, "sms.key_file")
    if not usable_sms_key(key):
        raise ConfigError(f"sms.key_file: {sms.key_file} does not hold a key (at least "
                          f"{SMS_KEY_LENGTH} characters without spaces on its first line)")
    return key


class SmsControl:
    """Reads and acts on the commands; ``check`` is the job, ``stop`` ends a session."""

    def __init__(self, config: Config, store: Store, channel: SmsChannel,
                 clock: Callable[[], int], sources: Sequence[Any] = (),
                 unsaved: Callable[[], Iterable[Delta]] = tuple,
                 before_action: Callable[[], object] = lambda: None,
                 alert_raised: Callable[[], object] = lambda: None) -> None:
        """``sources``: the collector's running ones (a router's reboot); ``unsaved``: its
        deltas not saved yet, which the answers count; ``before_action``: saves them before
        the box reboots; ``alert_raised``: delivers the "link up" alert at once."""
        self.config = config
        self.store = store
        self.channel = channel
        self.clock = clock
        self.sources = sources
        self.unsaved = unsaved
        self.before_action = before_action
        self.alert_raised = alert_raised
        self.key = sms_key(config)
        self.secrets = [*secret_values(config.effective), self.key]
        self.stopping = threading.Event()
        self.session: Session | None = None
        self._lock = threading.Lock()
        self._inbox_error = ""
        self._undeleted: set[tuple[str, str, str]] = set()

    def start(self) -> None:
        """End the session a killed collector left running."""
        remembered = self.store.get_meta(SESSION_META)
        if remembered:
            log.warning("sms: a session was still running when the collector last stopped; "
                        "ending it now")
            self._start_session(Session.remembered(self, remembered))

    def check(self) -> None:
        try:
            messages = self.channel.inbox()
        except SmsError as error:
            said = mask_known(str(error), self.secrets)
            if said != self._inbox_error:
                log.warning("sms: cannot read the messages: %s; trying again every %gs", said,
                            self.config.sms.check_every)
                self._inbox_error = said
            return
        if self._inbox_error:
            log.info("sms: reading the messages again")
            self._inbox_error = ""
        for sms in messages:  # oldest first, as a channel lists them
            if self.stopping.is_set():
                return
            self.handle(sms)

    def handle(self, sms: Sms) -> None:
        seen = (sms.id, sms.number, sms.text)
        if seen in self._undeleted:
            if self._delete(sms):
                self._undeleted.discard(seen)
            return
        found = read_command(sms.number, sms.text, self.config.sms, self.key)
        if isinstance(found, Ignored):
            detail = {"from": sms.number, "reason": found.reason}
            if found.command:
                detail["command"] = mask_known(found.command, self.secrets)
            log.info("sms: a message from %s ignored: %s", sms.number, found.reason)
            self.record(Event(self.clock(), "sms_ignored", detail))
        else:
            log.info("sms: %s from %s", found.words(), sms.number)
            self.record(Event(self.clock(), "sms_command",
                              {"from": sms.number, "command": found.words()}))
        if not self._delete(sms):
            self._undeleted.add(seen)
        if isinstance(found, Command):
            self.act(found, sms.number)

    def _delete(self, sms: Sms) -> bool:
        try:
            self.channel.delete(sms)
        except SmsError as error:
            log.warning("sms: cannot delete a message from %s: %s; it is not acted on again",
                        sms.number, mask_known(str(error), self.secrets))
            return False
        return True

    def act(self, command: Command, number: str) -> None:
        now = self.clock()
        if command.name == "status":
            self.answer(number, status_answer(self.config, self.store, now, self.unsaved(),
                                              self.channel.name))
        elif command.name == "usage":
            self.answer(number, usage_answer(self.config, self.store, now, self.unsaved()))
        elif command.name == "connect":
            self.answer(number, self._connect())
        elif command.name == "disconnect":
            self._disconnect(number)
        elif command.name == "reboot":
            self._reboot(number)
        elif command.name == "up":
            self._up(number, command.minutes)

    def _connect(self) -> str:
        with self.link_lock() as locked:
            if not locked:
                return BUSY
            result = connect_held(self.config, self.store, self.runner(), "sms connect",
                                  self.unsaved())
        return "The link is up." if result.ok else f"Connecting failed: {result.outcome}."

    def _disconnect(self, number: str) -> None:
        with self._lock:
            session = self.session if self.session and self.session.is_alive() else None
        if session is not None:
            session.end("ended by disconnect")  # the session texts "link down" itself
            return
        with self.link_lock() as locked:
            if not locked:
                self.answer(number, BUSY)
                return
            event = disconnect_held(self.config, self.store, self.runner(), "sms disconnect")
        self.answer(number, "Link down; it stays down until connect." if event.detail.get("ok")
                    else "The disconnect command failed; the link is left alone until connect.")

    def _reboot(self, number: str) -> None:
        target = self.config.sms.reboot or ("router" if self._router() else "box")
        if target == "router":
            router = self._router()
            command: tuple[str, ...] = ("router-reboot", *([router] if router else []))
        else:
            command = self.config.sms.reboot_command
        self.answer(number, f"Rebooting the {target} now.")
        if target == "box":
            self.before_action()
        result = self.runner().run(command, self.config.keeper.action_timeout, self.secrets)
        self.record(Event(self.clock(), "reboot", {"by": "sms", "target": target,
                                                   **result.detail()}, result.duration_ms))
        if not result.ok:
            self.answer(number, f"The {target} did not reboot: {result.outcome}.")

    def _router(self) -> str:
        """The name of the source the messages come through when it can reboot (a router)."""
        return next((source.config.name for source in self.sources
                     if source.config.name == self.channel.name and hasattr(source, "reboot")),
                    "")

    def _up(self, number: str, minutes: int) -> None:
        with self._lock:
            running = self.session if self.session and self.session.is_alive() else None
        if running is not None:
            self.answer(number, f"The link is already up on request until "
                                f"{self.clock_time(running.ends_at)}.")
            return
        self._start_session(Session(self, number, minutes))

    def _start_session(self, session: "Session") -> None:
        with self._lock:
            self.session = session
        session.start()

    def stop(self, wait_s: float) -> None:
        """Stop reading; end a running session (the link taken down), waiting ``wait_s``."""
        self.stopping.set()
        with self._lock:
            session = self.session
        if session is not None and session.is_alive():
            session.end("the collector was stopping")
            session.join(wait_s)

    def answer(self, number: str, text: str, tries_for_s: float = 0.0) -> bool:
        """Send ``text`` to ``number``, tried again every few seconds for ``tries_for_s``;
        the answer (sent or not) is an event."""
        text = mask_known(text, self.secrets)
        deadline = time.monotonic() + tries_for_s
        while True:
            try:
                self.channel.send(number, text)
                error = ""
            except SmsError as failed:
                error = mask_known(str(failed), self.secrets)
            if not error or time.monotonic() >= deadline or self.stopping.wait(SEND_RETRY_S):
                break
        detail = {"to": number, "text": text, "ok": not error, **({"error": error} if error
                                                                     else {})}
        if error:
            log.warning("sms: could not answer %s: %s", number, error)
        self.record(Event(self.clock(), "sms_answer", detail))
        return not error

    def runner(self) -> ActionRunner:
        return ActionRunner(self.sources, self.config, self.store)

    def link_lock(self) -> AbstractContextManager[bool]:
        return keeper_lock(self.config, wait_s=lock_wait_s(self.config))

    def record(self, event: Event) -> None:
        self.store.add_events([event])

    def clock_time(self, at: int) -> str:
        return f"{from_ms(at, self.config.timezone):%H:%M}"


BUSY = "The link is busy (a keeper check or another command); try again later."


class Session(threading.Thread):
    """One on-demand link: up, ``sms.session_run`` while it lasts, down, "link down"."""

    def __init__(self, control: SmsControl, number: str, minutes: int,
                 left_over: dict[str, Any] | None = None) -> None:
        super().__init__(name="sms-session", daemon=True)
        self.control = control
        self.number = number
        self.minutes = minutes
        self.started = control.clock()
        self.ends_at = self.started + minutes * 60_000
        self.left_over = left_over
        """A session a killed collector left: only its end is left to do."""
        self.before = KeeperState()
        self._end = threading.Event()
        self._why = f"after {in_words(minutes * 60)}"
        self._runner = ActionRunner()

    @classmethod
    def remembered(cls, control: SmsControl, remembered: str) -> "Session":
        try:
            found = json.loads(remembered)
            session = cls(control, str(found["from"]), int(found["minutes"]), found)
            session.started = int(found["started"])
        except (ValueError, KeyError, TypeError):
            session = cls(control, "", 0, {})
        session.before = KeeperState.from_json(json.dumps(
            (session.left_over or {}).get("before") or {}))
        session._why = "the collector was restarted"
        return session

    def end(self, why: str) -> None:
        """End the session now (``why`` says why, in the "link down" text and the event)."""
        if not self._end.is_set():
            self._why = why
            self._end.set()
        self._runner.interrupt(why)

    def run(self) -> None:
        """Up, kept, down; down whatever failed before (a store that did not answer): a link
        left up on its own would use the allowance until someone notices."""
        try:
            self._kill_left_over_run()
            if self.left_over is None and not self._session():
                return
        except Exception as error:
            log.error("sms: the session failed: %s; taking the link down",
                      mask_known(str(error), self.control.secrets))
            self._why = "the session failed"
        try:
            self._down()
        except Exception as error:
            log.error("sms: ending the session failed: %s",
                      mask_known(str(error), self.control.secrets))

    def _session(self) -> bool:
        """Bring the link up and keep it for the minutes; False when the link was busy (the
        asker is told so, and nothing is to be taken down)."""
        result = self._up()
        if result is None:
            self.control.answer(self.number, BUSY)
            return False
        if result.ok:
            self._alert()
            self._keep_up()
        else:
            self._why = f"the link did not come up ({result.outcome})"
        return True

    def _up(self) -> ActionResult | None:
        control = self.control
        with control.link_lock() as locked:
            if not locked:
                return None
            self.before = KeeperState.from_json(control.store.get_meta(STATE_META))
            self._remember()
            return connect_held(control.config, control.store, control.runner(), "sms up",
                                control.unsaved())

    def _remember(self, run: ProcessTree | None = None) -> None:
        """Keep the session in the store, with the processes of ``sms.session_run`` when it
        runs: a collector killed meanwhile ends the session, and kills them, at its start."""
        self.control.store.set_meta(SESSION_META, json.dumps({
            "from": self.number, "minutes": self.minutes, "started": self.started,
            "before": json.loads(self.before.to_json()),
            **({"run": {"token": run.token, "root": run.root, "root_start": run.root_start}}
               if run else {})}))

    def _kill_left_over_run(self) -> None:
        run = (self.left_over or {}).get("run")
        if not isinstance(run, dict):
            return
        try:
            tree = ProcessTree(token=str(run["token"]), root=int(run["root"]),
                               root_start=int(run["root_start"]))
        except (KeyError, TypeError, ValueError):
            return
        if tree.remaining():
            log.info("sms: stopping the session command the collector left running")
            tree.kill()

    def _alert(self) -> None:
        control = self.control
        until = control.clock_time(self.ends_at)
        alert = Alert("session", f"session:{self.started}", "Link up",
                      f"Link up for {in_words(self.minutes * 60)} (until {until}), as asked "
                      "by text message.")
        if raise_alert(control.config, control.store, alert, control.clock(), control.secrets):
            control.alert_raised()

    def _keep_up(self) -> None:
        """``sms.session_run`` until the end, started again when it ends early; without one,
        only the wait."""
        command = self.control.config.sms.session_run
        while (left_s := (self.ends_at - self.control.clock()) / 1000) > 0:
            if not command:
                self._end.wait(left_s)
                return
            result = self._runner.run(command, left_s, self.control.secrets,
                                      on_start=self._remember)
            if result.timed_out or result.interrupted or self._end.is_set():
                return
            self.control.record(Event(self.control.clock(), "session_run", {
                **result.detail(), "again_in_s": RESTART_S}, result.duration_ms))
            if self._end.wait(min(RESTART_S, max(left_s, 0))):
                return

    def _down(self) -> None:
        control = self.control
        with control.link_lock() as locked:
            event = disconnect_held(control.config, control.store, control.runner(),
                                    "sms session end") if locked else None
        ok = bool(event and event.detail.get("ok"))
        log.info("sms: the session for %s ended (%s); the link is %s", self.number or "?",
                 self._why, "down" if ok else "perhaps still up: the disconnect failed")
        control.record(Event(control.clock(), "session_end", {
            "from": self.number, "minutes": self.minutes, "reason": self._why, "ok": ok},
            control.clock() - self.started))
        if self.number:
            text = f"Link down ({self._why})." if ok else (
                f"The link may still be up: the disconnect failed ({self._why}).")
            control.answer(self.number, text,
                           0.0 if control.stopping.is_set() else SEND_FOR_S)
        with control.link_lock() as locked:
            if locked:
                state = KeeperState.from_json(control.store.get_meta(STATE_META))
                control.store.set_meta(STATE_META, replace(
                    state, held=self.before.held, lock_until=self.before.lock_until,
                    quota_limit=self.before.quota_limit).to_json())
            control.store.set_meta(SESSION_META, "")
