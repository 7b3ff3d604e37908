"""Text messages as a channel: the messages a modem or a HiLink router received, deleting
them, and sending one, through the ``modem`` or ``hilink`` source of the config.

The modem is spoken to in text mode (``AT+CMGF=1``) with the GSM character set
(``AT+CSCS="GSM"``): ``AT+CMGL="ALL"`` lists, ``AT+CMGD=<index>`` deletes, ``AT+CMGS="+num"``
sends the text after the modem's ``> `` prompt, ended with Ctrl-Z. A listed message's text is
read by the length the modem gives (``AT+CSDH=1``), so that a text reading ``ERROR`` or ``OK``
is not taken for the modem's own answer (a stranger could otherwise make the inbox unreadable);
a modem that gives no length has its texts read line by line. These few exchanges are
written here rather than taken from python-gsmmodem-new: that library has had no release since
2021, and its ``GsmModem`` keeps the port open with a reader thread for as long as it runs,
which defeats sharing the port politely with pppd and with the ``modem`` source; Traffic opens
the port for each exchange (``AtPort``, with the source's locks) and lets go of it at once. A
port held by another program is waited for a few seconds (the collector's own short
exchanges), then given up with ``SmsError`` naming the holder: nothing is sent and the holder
is not disturbed.

Text sent is written in the GSM 7-bit alphabet's basic table (the modem's default, 160
characters a message): a character outside it is written as its plain letter where it has one
(``ł`` as ``l``, ``…`` as ``...``), else as ``?``. The extension table (``€``, ``[``, ``|``) is
left out too, ``€`` written ``EUR``: it starts with Esc, which in text mode cancels the message
being typed. UCS-2 is not used: it holds 70 characters a message, and modems differ
in how they take it in text mode. A text longer than one message goes as up to ``MAX_PARTS``
messages, each starting ``1/2``, cut between words; a longer one is refused. Received text is
read as the modem writes it in the GSM character set (a message that came in UCS-2 is shown as
the modem shows it).

The router's SMS go through ``huawei-lte-api``'s ``sms`` calls on the ``hilink`` source's own
session code (its login, its refusals and its lock-outs), with the same length rule (the router
joins the parts itself).

A channel is made once per source and process (``sms_channel``): a router's session is shared
by everything that sends or reads its SMS in the process. In the collector, the channel uses
the collector's own source object (``use_devices``): one session with the router, whose refused
login is not tried again, and one user of the modem's port at a time.
"""

import contextlib
import datetime
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from collector.sources import SourceError
from traffic.config import Config, ConfigError, SourceConfig, phone_number
from traffic.periods import now_ms

log = logging.getLogger(__name__)

SMS_TYPES = ("modem", "hilink")
SEGMENT = 160
"""GSM 7-bit characters in one message."""
MAX_PARTS = 3
HELD_WAIT_S = 3.0
"""How long a port another program holds is waited for before giving up."""
SEND_TIMEOUT_S = 20.0
"""How long the modem may take to hand a message to the network (``+CMGS:``)."""
LIST_TIMEOUT_S = 10.0

GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
             "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
"""GSM 03.38's default alphabet, by code (0x1B is the escape to the extension table)."""
GSM_EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[",
                 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€"}
"""The extension table: the character after an Esc, as received."""
GSM_CODE = {char: code for code, char in enumerate(GSM_BASIC) if char != "\x1b"}
PLAIN = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "“": '"', "”": '"',
         "„": '"', "«": '"', "»": '"', "\t": " ", "\u00d7": "x", "€": "EUR", "[": "(",
         "]": ")", "{": "(", "}": ")", "\\": "/", "|": "/", "~": "-", "^": "?", "\f": "\n",
         "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "œ": "oe", "Œ": "OE"}
"""Characters outside the basic table with a plain equivalent (NFKD finds the letters')."""
CMS_ERRORS = {300: "modem failure", 301: "SMS service reserved", 302: "operation not allowed",
              303: "operation not supported", 304: "invalid PDU mode parameter",
              305: "invalid text mode parameter", 310: "no SIM", 311: "SIM PIN required",
              312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy",
              315: "SIM wrong", 316: "SIM PUK required", 320: "memory failure",
              321: "invalid memory index", 322: "memory full",
              330: "SMSC address unknown", 331: "no network service", 332: "network timeout",
              340: "no +CNMA acknowledgement expected", 500: "unknown error"}
"""``+CMS ERROR`` codes (3GPP TS 27.005) as the one-line errors word them."""
SCTS = re.compile(r"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)(?:([+-])(\d\d))?")
"""The service centre's time stamp of ``+CMGL``: ``yy/MM/dd,hh:mm:ss±zz`` (quarter hours)."""


class SmsError(Exception):
    """A message could not be read, deleted or sent: the message is one line."""


@dataclass(frozen=True)
class Sms:
    id: str
    """The device's index or id, for ``delete``."""
    number: str
    """The sender, as the network gives it (``+46700000001``)."""
    text: str
    at: int
    """Milliseconds since the epoch: the device's time stamp (read in the site's time zone
    when it has no offset), or the time it was read when there is none."""


class SmsChannel(Protocol):
    name: str
    """The source's name, for events and messages."""

    def inbox(self) -> list[Sms]:
        """The messages received, oldest first."""

    def delete(self, sms: Sms) -> None: ...

    def send(self, number: str, text: str) -> None:
        """Send ``text`` to ``number``; ``SmsError`` with one line when it cannot be sent."""


def to_gsm(text: str) -> str:
    """``text`` in the characters of the GSM alphabet's basic table (see the module's
    text)."""
    import unicodedata  # a megabyte and a half of tables: only when a text is sent

    out = []
    for char in text:
        if char in GSM_CODE:
            out.append(char)
            continue
        plain = PLAIN.get(char) or "".join(
            part for part in unicodedata.normalize("NFKD", char)
            if not unicodedata.combining(part))
        out.append(plain if plain and all(part in GSM_CODE for part in plain) else "?")
    return "".join(out)


def gsm_bytes(text: str) -> bytes:
    """``text`` (in the basic table) as the modem takes it with ``AT+CSCS="GSM"``."""
    return bytes(GSM_CODE[char] for char in text)


def from_gsm(raw: bytes) -> str:
    """Bytes in the GSM alphabet as text; a byte above 0x7F (a modem that answers in
    Latin-1) is read as Latin-1."""
    out = []
    escaped = False
    for byte in raw:
        if escaped:
            out.append(GSM_EXTENSION.get(byte, " "))
            escaped = False
        elif byte == 0x1B:
            escaped = True
        else:
            out.append(GSM_BASIC[byte] if byte < 0x80 else chr(byte))
    return "".join(out)


def parts(text: str) -> list[str]:
    """``text`` as the messages that carry it: one when it fits, else up to ``MAX_PARTS``,
    each starting ``1/2 ``, cut between words; ``SmsError`` when it needs more. Line ends are
    line feeds (a carriage return typed after the prompt is a new prompt on some modems)."""
    text = to_gsm(text.strip().replace("\r\n", "\n").replace("\r", "\n"))
    if len(text) <= SEGMENT:
        return [text]
    room = SEGMENT - len("1/3 ")
    pieces: list[str] = []
    rest = text
    while rest:
        if len(rest) <= room:
            pieces.append(rest)
            break
        cut = _cut(rest, room)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if len(pieces) > MAX_PARTS:
        raise SmsError(f"the text is {len(text)} characters long: more than {MAX_PARTS} "
                       "messages; shorten it")
    return [f"{index}/{len(pieces)} {piece}" for index, piece in enumerate(pieces, 1)]


def _cut(text: str, room: int) -> int:
    """Where to cut ``text`` so that its start fits ``room`` characters: at the last space
    that fits, or at ``room`` within a word longer than that."""
    space = text.rfind(" ", 0, room + 1)
    return space if space > 0 else room


class ModemSms:
    """SMS through a modem's AT port, opened for each exchange as the ``modem`` source opens
    it (its port setting or the port found, its locks)."""

    def __init__(self, source: SourceConfig, timezone: ZoneInfo, device: Any = None,
                 held_wait_s: float = HELD_WAIT_S) -> None:
        from collector.sources.modem import ModemSource

        self.name = source.name
        self.timezone = timezone
        self.held_wait_s = held_wait_s
        self._modem = device or ModemSource(source, now_ms)

    def inbox(self) -> list[Sms]:
        from collector.sources.modem import AtError

        with self._port("read the messages", wait_s=0) as at:  # the next check reads them
            with contextlib.suppress(AtError):
                at.command("AT+CSDH=1")  # each message's length: its text is read as a whole
            lines = at.command('AT+CMGL="ALL"', LIST_TIMEOUT_S, _text_length)
        received = now_ms()
        found = self._listed(lines, received)
        return sorted(found, key=lambda sms: (sms.at, int(sms.id)))

    def delete(self, sms: Sms) -> None:
        with self._port(f"delete message {sms.id}") as at:
            at.command(f"AT+CMGD={int(sms.id)}")

    def send(self, number: str, text: str) -> None:
        _check_number(self.name, number)
        messages = parts(text)
        with self._port(f"send to {number}") as at:
            for message in messages:
                lines = at.command_with_text(f'AT+CMGS="{number}"', gsm_bytes(message),
                                             SEND_TIMEOUT_S)
                if not any(line.startswith("+CMGS:") for line in lines):
                    raise SmsError(f"{self.name}: the modem did not confirm the message to "
                                   f"{number}")

    def _listed(self, lines: list[str], received: int) -> list[Sms]:
        """``+CMGL: <index>,<stat>,<number>,[<name>],[<time stamp>][,<type>,<length>]``
        lines, each followed by the message's text: one line read by its length when the
        modem gives it (any text, even ``+CMGL:``), else the lines up to the next message."""
        from collector.sources.modem import fields

        found: list[Sms] = []
        at = 0
        while at < len(lines):
            header = fields(lines[at]) if lines[at].startswith("+CMGL:") else []
            at += 1
            end = at + 1 if _text_length(lines[at - 1]) else next(
                (index for index in range(at, len(lines)) if lines[index].startswith("+CMGL:")),
                len(lines))
            text, at = lines[at:end], end
            if len(header) >= 3 and header[0].isdigit():
                found.append(Sms(
                    id=header[0], number=header[2],
                    text=from_gsm("\n".join(text).encode("latin-1")),
                    at=self._time(header[4] if len(header) > 4 else "", received)))
        return found

    def _time(self, stamp: str, received: int) -> int:
        found = SCTS.fullmatch(stamp.strip())
        if not found:
            return received
        year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
        zone: datetime.tzinfo = self.timezone
        if found.group(7):
            quarters = int(found.group(8)) * (-1 if found.group(7) == "-" else 1)
            zone = datetime.timezone(datetime.timedelta(minutes=15 * quarters))
        try:
            when = datetime.datetime(2000 + year, month, day, hour, minute, second,
                                     tzinfo=zone)
        except ValueError:
            return received
        return int(when.timestamp() * 1000)

    @contextlib.contextmanager
    def _port(self, what: str, wait_s: float | None = None) -> Iterator[Any]:
        """The modem's port in text mode with the GSM character set, for one job; its
        problems as ``SmsError``. A port held by another program is tried again for
        ``wait_s`` (``held_wait_s`` by default), the modem's own polls not held up meanwhile."""
        from collector.sources.modem import AtError, Held

        deadline = time.monotonic() + (self.held_wait_s if wait_s is None else wait_s)
        with self._failures(what):
            while True:
                with self._modem.port_lock, contextlib.ExitStack() as stack:
                    try:
                        at = self._modem.open(stack)
                    except Held as error:
                        held = error
                    else:
                        try:
                            at.command("AT+CMGF=1")
                            at.command('AT+CSCS="GSM"')
                        except AtError as error:
                            raise SmsError(f"{self.name}: the modem does not take text mode "
                                           f"SMS ({error})") from None
                        yield at
                        return
                if time.monotonic() >= deadline:
                    raise SmsError(f"{self.name}: {held}; not used while it is")
                time.sleep(0.2)

    @contextlib.contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        from collector.sources.modem import AtError

        try:
            yield
        except AtError as error:
            raise SmsError(f"{self.name}: could not {what}: {cms_words(str(error))}") from None
        except SourceError as error:
            raise SmsError(f"{self.name}: could not {what}: {error}") from None


def _text_length(line: str) -> int:
    """The length of the text after a ``+CMGL:`` line (with ``AT+CSDH=1``), else 0."""
    from collector.sources.modem import fields

    if not line.startswith("+CMGL:"):
        return 0
    values = fields(line)
    return int(values[6]) if len(values) >= 7 and values[6].isdigit() else 0


def _check_number(name: str, number: str) -> None:
    try:
        phone_number(number)
    except ValueError as error:
        raise SmsError(f"{name}: {error}") from None


def cms_words(answer: str) -> str:
    """``+CMS ERROR: 330`` with its words: ``+CMS ERROR: 330 (SMSC address unknown)``."""
    code = answer.partition(":")[2].strip()
    words = CMS_ERRORS.get(int(code)) if answer.startswith("+CMS") and code.isdigit() else None
    return f"{answer} ({words})" if words else answer


_channels: dict[str, SmsChannel] = {}
_channels_lock = threading.Lock()
_devices: dict[str, Any] = {}
"""The running collector's source objects by source name (``use_devices``)."""


def use_devices(devices: Mapping[str, Any]) -> None:
    """The channels of these sources are made on these objects (the collector's own
    ``ModemSource`` and ``HilinkSource``), not on objects of their own."""
    with _channels_lock:
        _devices.clear()
        _devices.update(devices)
        _channels.clear()


def sms_channel(config: Config, source_name: str | None = None) -> SmsChannel:
    """The SMS channel of the source named ``source_name``, or of the only ``modem`` or
    ``hilink`` source; ``ConfigError`` when none or several fit. Made once per source and
    settings in a process."""
    source = _source(config, source_name)
    key = json.dumps([source.type, source.name, dict(source.settings), config.timezone.key],
                     sort_keys=True, default=str)
    with _channels_lock:
        if key not in _channels:
            make: Callable[..., SmsChannel] = ModemSms if source.type == "modem" else HilinkSms
            _channels[key] = make(source, config.timezone, _devices.get(source.name))
        return _channels[key]


def _source(config: Config, name: str | None) -> SourceConfig:
    where = ", ".join(config.files) or "the config (defaults only)"
    fitting = [source for source in config.sources if source.type in SMS_TYPES]
    if name:
        found = next((source for source in config.sources if source.name == name), None)
        if found is None:
            raise ConfigError(f"{where}: sources: no [[sources]] table is named {name!r} "
                              "(to send and read SMS through)")
        if found.type not in SMS_TYPES:
            raise ConfigError(f"{where}: sources: {name!r} is a {found.type} source; SMS go "
                              "through a modem or hilink source")
        return found
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise ConfigError(f"{where}: sources: no modem or hilink source to send and read SMS "
                          "through; add the modem's or the router's [[sources]] table")
    names = ", ".join(f"{source.type} {source.name!r}" for source in fitting)
    raise ConfigError(f"{where}: sources: {len(fitting)} sources can send and read SMS "
                      f"({names}); name the one to use")


class HilinkSms:
    """SMS through a HiLink router's API, on the ``hilink`` source's session code (its login,
    refusals and lock-outs)."""

    PAGE = 20

    def __init__(self, source: SourceConfig, timezone: ZoneInfo, device: Any = None) -> None:
        from collector.sources.hilink import HilinkSource

        self.name = source.name
        self.timezone = timezone
        self._router = device or HilinkSource(source, now_ms)

    def inbox(self) -> list[Sms]:
        waiting = int(self._call("read the messages",
                                 lambda client: client.sms.sms_count()).get("LocalInbox") or 0)
        found: list[Sms] = []
        page = 1
        while len(found) < waiting:
            listed = self._call("read the messages", lambda client, page=page:
                                client.sms.get_sms_list(page, read_count=self.PAGE,
                                                        ascending=True))
            messages = listed["Messages"]["Message"]
            found += [self._sms(message) for message in messages]
            if len(messages) < self.PAGE:
                break
            page += 1
        return sorted(found, key=lambda sms: (sms.at, int(sms.id)))

    def delete(self, sms: Sms) -> None:
        self._call(f"delete message {sms.id}",
                   lambda client: client.sms.delete_sms(int(sms.id)))

    def send(self, number: str, text: str) -> None:
        _check_number(self.name, number)
        parts(text)  # the same length rule as a modem's; the router cuts and joins the parts
        self._call(f"send to {number}",
                   lambda client: client.sms.send_sms([number], text.strip()))

    def _call(self, what: str, call: Callable[[Any], Any]) -> Any:
        try:
            return self._router.call(call)
        except SourceError as error:
            raise SmsError(f"{self.name}: could not {what}: {error}") from None

    def _sms(self, message: dict) -> Sms:
        received = now_ms()
        try:
            when = datetime.datetime.strptime(message.get("Date") or "", "%Y-%m-%d %H:%M:%S")
            at = int(when.replace(tzinfo=self.timezone).timestamp() * 1000)
        except ValueError:
            at = received
        return Sms(id=str(message["Index"]), number=message.get("Phone") or "",
                   text=message.get("Content") or "", at=at)
