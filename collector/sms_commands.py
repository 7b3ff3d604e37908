"""Commands by text message: what a message asks for, and whether it may.

A command is ``<key> <command> [N]``: the key first (as Teltonika routers take their SMS
rules' password), then one of ``COMMANDS`` in any case, then for ``up`` and its other name
``session`` the minutes the link stays up. Words are separated by any white space; the key
is compared exactly (it is a password), the command word without regard to case.

A message is a command only when it comes from a number in ``sms.allow``, starts with the key
and names a known command with valid minutes. Anything else is ``Ignored``: the collector records
one event and does nothing, and answers nothing, so that a stranger learns nothing, not even
that a box reads its messages. The reason never repeats the message's words before the
command: a wrong key may be the real one mistyped.
"""

import hmac
from dataclasses import dataclass

from traffic.config import SmsConfig

COMMANDS = ("status", "usage", "connect", "disconnect", "reboot", "up", "session")
SESSION_WORDS = ("up", "session")
NUMBER_PUNCTUATION = " -()./"
"""What people and phones write inside a number: ``+46 70-000 00 00``."""


@dataclass(frozen=True)
class Command:
    name: str
    """One of ``COMMANDS``, ``session`` read as ``up``."""
    minutes: int = 0
    """How long ``up`` keeps the link up."""

    def words(self) -> str:
        return f"{self.name} {self.minutes}" if self.name == "up" else self.name


@dataclass(frozen=True)
class Ignored:
    reason: str
    """``not an allowed number``, ``wrong key`` or ``unknown command``."""
    command: str = ""
    """The words after a right key (an unknown command), for the event; "" otherwise."""


def normalized(number: str) -> str:
    """A sender's number as ``sms.allow`` writes it: without spaces and dashes, a leading
    ``00`` as ``+``."""
    bare = "".join(char for char in number.strip() if char not in NUMBER_PUNCTUATION)
    return "+" + bare[2:] if bare.startswith("00") else bare


def read_command(number: str, text: str, sms: SmsConfig, key: str) -> Command | Ignored:
    """What the message ``text`` from ``number`` asks for, with ``key`` the key in force
    (``sms.key``, or the first line of ``sms.key_file``)."""
    if normalized(number) not in sms.allow:
        return Ignored("not an allowed number")
    words = text.split()
    if not words or not key or not hmac.compare_digest(words[0].encode(), key.encode()):
        return Ignored("wrong key")
    asked = " ".join(words[1:])[:40]
    name = words[1].lower() if len(words) > 1 else ""
    if name not in COMMANDS:
        return Ignored("unknown command", asked)
    if name not in SESSION_WORDS:
        return Command(name) if len(words) == 2 else Ignored("unknown command", asked)
    if len(words) == 2:
        return Command("up", sms.session_minutes)
    minutes = words[2]
    if (len(words) > 3 or not minutes.isascii() or not minutes.isdigit()
            or not 1 <= int(minutes) <= sms.max_minutes):
        return Ignored("unknown command", asked)
    return Command("up", int(minutes))
