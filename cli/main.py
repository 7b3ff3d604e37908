"""The ``traffic`` command. Exit 0 on success; 2 on bad usage, bad config or a store that cannot
be opened (each a one-line message naming what to fix); 1 on any other failure.

The collector's and the web app's modules are imported only when their command runs, so
``traffic status`` starts fast; the schemas of the source types the config names are always
read, so every command checks the whole config.
"""

import os
import sys
from collections.abc import Callable

from traffic import __version__, log
from traffic.config import (
    Config,
    ConfigError,
    SourceSchemas,
    load_config,
    mask_secrets,
    mask_text,
    shown_settings,
)
from traffic.periods import now_ms
from traffic.store import Store, StoreError, open_site_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import NoReturn

    from traffic.sites import SiteReader

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13
"""What a shell reports for a writer killed by SIGPIPE, as for ``git log | head -1``."""
RESOLUTION_CHOICES = ("5min", "hour", "day", "month")
QUIET_COMMANDS = frozenset({"status", "report", "reset-month"})
"""Commands that normally log nothing: ``logging`` is imported (and set up) only if they do."""
READER_COMMANDS = frozenset({"status", "report"})
"""Commands that, their output flushed and their store closed, hold nothing that needs the
interpreter's clean-up: ``exit`` ends them at once (freeing every module and object one by one
would be a tenth of a ``traffic status``). They read the config as the web app does, without
the source plug-ins' own checks (importing the plug-ins is a fifteenth of a ``traffic report``):
``collect`` and ``check-config`` make those."""


class UsageError(Exception):
    """Bad usage of a command, worded as one line."""


class Arguments:
    """Parsed arguments, as ``argparse.Namespace`` holds them (``types.SimpleNamespace``
    would import ``types`` at every start-up)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def _parser() -> "argparse.ArgumentParser":
    import argparse

    parser = argparse.ArgumentParser(
        prog="traffic", description="Watch and keep alive a metered mobile-broadband link.")
    parser.add_argument("--version", action="version", version=f"traffic {__version__}")
    _config_options(parser, after_command=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, options) in COMMAND_OPTIONS.items():
        command = commands.add_parser(name, help=help_text)
        _config_options(command, after_command=True)
        for dest, words in POSITIONALS.get(name, ()):
            command.add_argument(dest, choices=words)
        exclusive = command.add_mutually_exclusive_group() if name in EXCLUSIVE_OPTIONS else None
        for option, (dest, values, default, option_help) in options.items():
            target = exclusive if exclusive and option in EXCLUSIVE_OPTIONS[name] else command
            if values is FLAG:
                target.add_argument(option, action="store_true", dest=dest, help=option_help)
            else:
                target.add_argument(option, choices=values or None, default=default, dest=dest,
                                    help=option_help)
    return parser


def _config_options(parser: "argparse.ArgumentParser", after_command: bool) -> None:
    """``--config`` and ``--set``, before the command or after it; those after it are kept
    apart (and joined in ``_parse``) so that they add to those before it instead of hiding them."""
    import argparse

    suffix, unset = ("_after", argparse.SUPPRESS) if after_command else ("", None)
    parser.add_argument("--config", metavar="FILE", dest="config" + suffix, default=unset,
                        help="config file (default: $TRAFFIC_CONFIG), read over "
                             "/etc/traffic/traffic.toml")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append",
                        default=unset if after_command else [], dest="overrides" + suffix,
                        help="override one setting; may be repeated")


OptionSpec = tuple[str, tuple[str, ...] | None, object, str | None]
SITE_HELP = "another site of the store (default: the config's site)"
FLAG = None
ANY: tuple[str, ...] = ()
COMMAND_OPTIONS: dict[str, tuple[str, dict[str, OptionSpec]]] = {
    "collect": ("run the collector",
                {"--once": ("once", FLAG, False, "poll once, commit and exit")}),
    "web": ("run the web app (gunicorn)", {}),
    "status": ("use in the current billing period",
               {"--json": ("json", FLAG, False, "print JSON"),
                "--site": ("site", ANY, None, SITE_HELP)}),
    "report": ("use per 5 minutes, hour, day or month", {
        "--site": ("site", ANY, None, SITE_HELP),
        "--resolution": ("resolution", RESOLUTION_CHOICES, "day", None),
        "--start": ("start", ANY, None, "ISO 8601 date or time (local) or epoch ms"),
        "--end": ("end", ANY, None, "ISO 8601 date or time (local) or epoch ms, exclusive"),
        "--json": ("json", FLAG, False, "print JSON"),
        "--csv": ("csv", FLAG, False, "print CSV (bytes)")}),
    "check-config": ("check the config and print it, secrets masked", {}),
    "reset-month": ("start the current billing period now", {}),
    "connect": ("clear the keeper's lock and connect now", {}),
    "disconnect": ("disconnect; the keeper leaves the link down", {}),
    "notify-test": ("send a test message to each alerts.notify URL",
                    {"--url": ("url", ANY, None, "send only to this Apprise URL")}),
    "migrate": ("copy every site (or one) from one store to another", {
        "--from": ("source", ANY, None, "the store to copy from, as store.url names it"),
        "--to": ("target", ANY, None, "the store to copy into, as store.url names it"),
        "--site": ("site", ANY, None, "copy only this site (default: every site)")}),
    "modem": ("the USB modem: pin-lock on|off (the SIM asks for its PIN at power-on)", {
        "--source": ("source", ANY, None, "the modem's [[sources]] name (default: the first "
                                          "modem table)")}),
}
"""Each command's help and its own options, read by ``_parser`` and by ``_plain_parse``:
option -> (its name in the parsed arguments, FLAG or the values it may take, its default, its
help)."""
POSITIONALS = {"modem": (("action", ("pin-lock",)), ("state", ("on", "off")))}
"""A command's words after its name: (name in the parsed arguments, the words it may be)."""
EXCLUSIVE_OPTIONS = {"report": ("--json", "--csv")}
"""Options of a command that may not be given together."""
CONFIG_OPTIONS: dict[str, OptionSpec] = {"--config": ("config", ANY, None, None),
                                         "--set": ("overrides", ANY, [], None)}


def _plain_parse(argv: list[str]) -> "argparse.Namespace | Arguments | None":
    """The arguments as ``_parser`` would parse them, for what people type when nothing is
    wrong: options spelt out in full, no help, nothing to complain about. Anything else is
    None, and left to ``argparse`` (which, with its help texts, costs several milliseconds
    of every start-up, so is not even imported here)."""
    parsed: dict[str, object] = {"config": None, "overrides": []}
    command_options: dict[str, OptionSpec] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if "command" not in parsed and not token.startswith("-"):
            if token not in COMMAND_OPTIONS:
                return None
            parsed["command"] = token
            command_options = COMMAND_OPTIONS[token][1]
            parsed.update({name: default for name, _, default, _ in command_options.values()})
            continue
        option, equals, value = token.partition("=") if token.startswith("--") else (
            token, "", "")
        name, values, _, _ = {**CONFIG_OPTIONS, **command_options}.get(option,
                                                                      ("", ANY, None, None))
        if not name:
            return None
        if values is FLAG:
            if equals:
                return None
            parsed[name] = True
            continue
        if not equals:
            if index == len(argv) or argv[index].startswith("-"):
                return None
            value = argv[index]
            index += 1
        if values and value not in values:
            return None
        if name == "overrides":
            parsed[name] = [*parsed[name], value]  # type: ignore[misc]
        else:
            parsed[name] = value
    command = parsed.get("command")
    if command is None or len(set(argv) & set(EXCLUSIVE_OPTIONS.get(str(command), ()))) > 1:
        return None
    return Arguments(**parsed)


def _parse(argv: list[str] | None) -> "argparse.Namespace | Arguments":
    argv = sys.argv[1:] if argv is None else argv
    plain = _plain_parse(argv)
    return plain if plain is not None else _full_parse(argv)


def _full_parse(argv: list[str]) -> "argparse.Namespace":
    args = _parser().parse_args(argv)
    args.config = vars(args).pop("config_after", args.config)
    args.overrides = [*args.overrides, *vars(args).pop("overrides_after", [])]
    return args


def run_and_exit(argv: list[str] | None = None) -> "NoReturn":
    """Run the command and end the process with its exit status: what ``traffic`` and
    ``python -m cli`` do."""
    args = _parse(argv)
    status = _run(args)
    if args.command in READER_COMMANDS:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            status = _reader_went_away()
        os._exit(status)
    sys.exit(status)


def main(argv: list[str] | None = None) -> int:
    return _run(_parse(argv))


def _run(args: "argparse.Namespace | Arguments") -> int:
    if args.command in QUIET_COMMANDS:
        log.before_first.append(_configure_logging)
    else:
        _configure_logging()
    try:
        config = load_config(args.config, args.overrides, source_schemas=(
            None if args.command in READER_COMMANDS else _source_schemas()))
        status = COMMANDS[args.command](config, args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _reader_went_away()
    except (ConfigError, UsageError, StoreError) as error:
        print(f"traffic: {mask_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"traffic: {mask_text(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _configure_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _source_schemas() -> SourceSchemas:
    from collector.sources import source_schemas

    return source_schemas()


def _reader_went_away() -> int:
    """Stop quietly when the reader of our output has gone, as ``traffic report | head -1``
    does; standard output now goes nowhere, so the flush at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _store(config: Config, create: bool = False) -> Store:
    """The store; only the collector and the keeper commands may create it."""
    return open_site_store(config, create)


def _store_when_reachable(config: Config) -> Store:
    """The collector's store, waited for while its server does not answer (a MongoDB server
    still starting, or away): the kernel's counters keep counting meanwhile, and the collector
    counts on from the readings it saved last. When its spool has entries (it was stopped
    during an outage), it does not wait: it counts on from the spool's newest readings, and
    the store is opened when the server answers."""
    import time

    from collector.late_store import RETRY_S
    from traffic.store import StoreUnreachable

    said = ""
    while True:
        try:
            store = _store(config, create=True)
        except StoreUnreachable as error:
            if not said and (late := _late_store(config, error)) is not None:
                return late
            if str(error) != said:
                said = str(error)
                print(f"traffic: {mask_text(said)}; trying again every {RETRY_S}s",
                      file=sys.stderr, flush=True)
            time.sleep(RETRY_S)
            continue
        if said:
            print("traffic: the store answers again", file=sys.stderr, flush=True)
        return store


def _late_store(config: Config, error: StoreError) -> Store | None:
    """The store as a ``LateStore`` when the collector has a spool to count on from."""
    from collector.late_store import LateStore
    from collector.spool import scan, spool_path, uses_spool

    if not uses_spool(config):
        return None
    spooled = scan(spool_path(config))
    if not spooled.entries:
        return None
    print(f"traffic: {mask_text(str(error))}; counting on from the spool "
          f"{spool_path(config)} ({spooled.entries} entries) until it answers",
          file=sys.stderr, flush=True)
    return LateStore(lambda: _store(config, create=True), config.site,  # type: ignore[return-value]
                     error)


def _site_reader(config: Config, site: str | None) -> "SiteReader":
    """The site's store as readers show it (with the bytes its collector has not saved yet)
    and the config as its readers use it (its time zone, billing day and limits, as its
    collector published them)."""
    from traffic.sites import UnknownSite, check_site_name, open_site_reader

    try:
        return open_site_reader(config, check_site_name(site) if site else config.site,
                                now_ms())
    except (ValueError, UnknownSite) as error:
        raise UsageError(f"--site: {error}") from None


def cmd_collect(config: Config, args: "argparse.Namespace") -> int:
    from collector import worker

    store = _store_when_reachable(config)
    try:
        return worker.run(config, store, once=args.once)
    finally:
        store.close()


def cmd_web(config: Config, args: "argparse.Namespace") -> int:
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "util" / "gunicorn.conf.py"
    if args.config:
        os.environ["TRAFFIC_CONFIG"] = str(Path(args.config).resolve())
    for item in args.overrides:
        dotted, _, value = item.partition("=")
        os.environ["TRAFFIC_" + dotted.strip().replace(".", "_").upper()] = value.strip()
    command = [sys.executable, "-m", "gunicorn", "web:create_app()"]
    if conf.exists():
        command[3:3] = ["--config", str(conf)]
    else:
        command[3:3] = ["--bind", config.web.bind]
    os.execv(sys.executable, command)
    return 1  # not reached


def cmd_status(config: Config, args: "argparse.Namespace") -> int:
    from traffic.config import mask_url
    from traffic.published import read_keeper, read_save
    from traffic.quota import usage
    from traffic.report import (
        alert_lines,
        alert_summary,
        alerts_json,
        beside_lines,
        keeper_text,
        save_problem,
        source_lines,
        sources_json,
        usage_json,
        usage_text,
    )
    from traffic.source_state import source_states

    reader = _status_reader(config, args.site)
    config, store = reader.config, reader.store
    tz = config.timezone
    try:
        result = usage(store, config, now_ms())
        alerts = alert_summary(store, result.period_start, result.now,
                               [mask_url(target.url) for target in config.alerts.notify])
        keeper = read_keeper(store, config)
        save = read_save(store)
        states = source_states(config, store, result.now)
    finally:
        store.close()
    if args.json:
        import json

        print(json.dumps({**usage_json(result, tz), "keeper": keeper, "save": save,
                          "sources": sources_json(states, tz),
                          "alerts": alerts_json(alerts, tz)}, indent=2))
    else:
        system = config.quota.unit_system
        print(usage_text(result, tz, system, config.site))
        if problem := save_problem(save, tz, config.quota.unit_system):
            print(f"  saving      {problem}")
        for line in [*beside_lines(result, states, system),
                     *source_lines(states, result.now, tz)]:
            print(line)
        if config.keeper.enabled:
            print(keeper_text(keeper, result.now, tz))
        link_down = config.keeper.enabled and keeper is not None and keeper["link"] == "down"
        lines = alert_lines(alerts, result.now, tz, link_down)
        if lines or config.alerts.notify:
            print("\n".join(lines) or "  alerts      none this period")
    return 0


def _status_reader(config: Config, site: str | None) -> "SiteReader":
    """The site's reader; when its server does not answer, the one-line error says what this
    box's collector keeps in its spool meanwhile."""
    from traffic.store import StoreUnreachable

    try:
        return _site_reader(config, site)
    except StoreUnreachable as error:
        if site not in (None, config.site):
            raise
        from collector.spool import scan, spool_path, uses_spool
        from traffic.report import iso, spool_note

        try:
            spooled = scan(spool_path(config)) if uses_spool(config) else None
        except OSError:  # not this user's to read: the store's error is what matters
            spooled = None
        if spooled is None or not spooled.entries:
            raise
        note = spool_note(spooled.size, spooled.entries, str(spool_path(config)),
                          str(iso(spooled.first_at or now_ms(), config.timezone)),
                          config.quota.unit_system)
        raise StoreUnreachable(f"{error}; {note}") from None


def cmd_report(config: Config, args: "argparse.Namespace") -> int:
    from traffic.history import filled_series, measured_part
    from traffic.periods import default_range, parse_instant
    from traffic.report import series_csv, series_json, series_table
    from traffic.roles import billed_keys

    reader = _site_reader(config, args.site)
    config, store = reader.config, reader.store
    tz = config.timezone
    now = now_ms()
    start, end = default_range(args.resolution, now, tz, config.quota.billing_day)
    try:
        start = parse_instant(args.start, tz) if args.start else start
        end = parse_instant(args.end, tz) if args.end else end
        if end <= start:
            raise ValueError("--end must be later than --start")
        keys = billed_keys(store, config)
        points = filled_series(store, args.resolution, start, end, tz, keys)
        if not args.start and not args.end:
            points = measured_part(points, now, store.first_bucket(args.resolution))
    except ValueError as error:
        raise UsageError(f"report: {error}") from None
    finally:
        store.close()
    if args.json:
        print(series_json(points, args.resolution, tz))
    elif args.csv:
        print(series_csv(points, tz))
    else:
        print(series_table(points, args.resolution, tz, config.quota.unit_system))
    return 0


def cmd_check_config(config: Config, args: "argparse.Namespace") -> int:
    from traffic.report import toml_text

    if config.alerts.notify:
        from collector.notify import check_notify

        check_notify(config)  # as the collector will: Apprise reads each URL
    if config.sms.enabled:
        from collector.sms import sms_channel
        from collector.sms_control import sms_key

        sms_channel(config, config.sms.via or None)  # the source it goes through can
        sms_key(config)
    files = ", ".join(config.files) or "none, defaults only"
    print(f"# config OK; files read: {files}; time zone {config.timezone.key}")
    print(toml_text(shown_settings(config.effective, _source_schemas()), _automatic(config)))
    return 0


def _automatic(config: Config) -> dict[str, str]:
    """What each setting left to its automatic default comes to now, by dotted key."""
    from collector.sources import SOURCE_TYPES, poll_interval
    from collector.sources.kernel import default_route_interface
    from traffic.runtime import runtime_dir

    notes = {}
    if not config.effective.get("timezone"):
        notes["timezone"] = f"the system's time zone, now {config.timezone.key}"
    if not config.collector.runtime_dir:
        notes["collector.runtime_dir"] = f"the first on a RAM disk, now {runtime_dir(config)}"
    for index, source in enumerate(config.sources):
        source_type = SOURCE_TYPES[source.type]
        where = f"sources[{index}]."
        if not source.interval:
            interval = poll_interval(source, config)
            notes[where + "interval"] = f"{interval:g}s" + (
                "" if source_type.default_interval else ", as collector.interval")
        if not source.max_rate:
            notes[where + "max_rate"] = "collector.max_rate"
        for key, note in source_type.automatic(source).items():
            notes[where + key] = note
    if not config.keeper.interface:
        first = next((name for source in config.sources
                      for name in source.settings.get("interfaces", ())), None)
        notes["keeper.interface"] = (f"the first of [[sources]], now {first}" if first else
                                     f"the default-route interface, now "
                                     f"{default_route_interface() or 'none'}")
    if not config.keeper.disconnect:
        notes["keeper.disconnect"] = _automatic_disconnect(config)
    return {key: f"automatic: {note}" for key, note in notes.items()}


def _automatic_disconnect(config: Config) -> str:
    import json

    from collector.actions import disconnect_command

    try:
        command = disconnect_command(config.keeper)
    except ValueError:
        return "none known for this connect; set it"
    return f"the counterpart of connect, now {json.dumps(mask_secrets(list(command)))}"


def cmd_reset_month(config: Config, args: "argparse.Namespace") -> int:
    from traffic.quota import PERIOD_RESET_META, current_period
    from traffic.report import iso

    now = now_ms()
    store = _store(config)
    try:
        store.set_meta(PERIOD_RESET_META, str(now))
        start, end = current_period(store, config, now)
    finally:
        store.close()
    print(f"The billing period now starts at {iso(start, config.timezone)} and ends at "
          f"{iso(end, config.timezone)}.")
    return 0


def _keeper_command(name: str) -> "Callable[[Config, argparse.Namespace], int]":
    def command(config: Config, args: "argparse.Namespace") -> int:
        from collector import commands

        store = _store(config, create=True)
        try:
            return getattr(commands, name)(config, store, args)
        finally:
            store.close()
    return command


def cmd_notify_test(config: Config, args: "argparse.Namespace") -> int:
    """Each URL on one line, its secrets masked, with how the send ended; the outbox is not
    used (nothing is kept or retried)."""
    from collector.notify import send_test

    if args.url:
        urls, names = [args.url], [""]
    else:
        urls = [target.url for target in config.alerts.notify]
        names = [f"alerts.notify[{index}] " for index in range(len(urls))]
    if not urls:
        raise UsageError("notify-test: no alerts.notify URL is configured; add one to [alerts] "
                         "or give --url URL")
    failed = False
    for name, (shown, outcome) in zip(names, send_test(config, urls), strict=True):
        failed |= outcome.status != "delivered"
        result = "delivered" if outcome.status == "delivered" else f"failed: {outcome.error}"
        if outcome.status == "unconfirmed":
            result += "; it may still arrive"
        print(f"{name}{shown}: {result}", flush=True)
    return 1 if failed else 0


def cmd_migrate(config: Config, args: "argparse.Namespace") -> int:
    """Copy, then compare: exit 1 when a key's totals or a table's rows differ."""
    from traffic.migrate import migrate
    from traffic.progress import Progress
    from traffic.runtime import runtime_dir_name
    from traffic.store import open_store

    if not args.source or not args.target:
        raise UsageError("migrate: give both --from URL and --to URL (each as store.url "
                         "names a store)")

    def opener(url: str, site: str, create: bool) -> Store:
        return open_store(url, config.timezone, {}, create, site, runtime_dir_name(config))

    progress = Progress(sys.stdout)
    try:
        checks = migrate(args.source, args.target, opener, args.site, config.site,
                         config.timezone, progress)
    except KeyboardInterrupt:
        progress.end()
        print("traffic: migrate: interrupted; the same command continues where it stopped",
              file=sys.stderr)
        return 130
    except StoreError:
        progress.end()
        raise
    for check in checks:
        done = "copied" if check.copied else "copied before"
        rx, tx = check.totals
        if check.identical:
            keys = f"{check.keys} key" + ("" if check.keys == 1 else "s")
            print(f"{check.site}: {done}; totals identical for {keys} (received {rx} B, "
                  f"sent {tx} B)")
            continue
        print(f"{check.site}: {done}; DIFFERENT from the source:")
        for key, (source, target) in check.differing_keys.items():
            print(f"  {key}: rx {source[0]} tx {source[1]} in --from, "
                  f"rx {target[0]} tx {target[1]} in --to")
        for table, (source_rows, target_rows) in check.differing_rows.items():
            print(f"  {table}: {source_rows} rows in --from, {target_rows} in --to")
    return 0 if all(check.identical for check in checks) else 1


def cmd_modem(config: Config, args: "argparse.Namespace") -> int:
    """``modem pin-lock on|off`` with the modem's own settings; exit 1 with one line when the
    modem or its SIM says no."""
    from collector.sources import SourceError
    from collector.sources.modem import is_pin, switch_pin_lock

    modems = [(index, source) for index, source in enumerate(config.sources)
              if source.type == "modem" and args.source in (None, source.name)]
    if not modems:
        named = f" named {args.source!r}" if args.source else ""
        raise UsageError(f"modem: no [[sources]] table of type \"modem\"{named} in the config")
    index, source = modems[0]
    where = f"sources[{index}]"
    typed = ""
    if not source.settings.get("pin") and not source.settings.get("pin_file"):
        if not sys.stdin.isatty():
            raise UsageError(f"modem: {where} has no pin_file (or pin): set it, or run this in "
                             "a terminal to type the PIN")
        import getpass

        typed = getpass.getpass("The SIM's PIN: ").strip()
        if not is_pin(typed):
            raise UsageError("modem: a PIN is 4 to 8 digits")
    store = _store(config, create=True)
    try:
        print(switch_pin_lock(source, where, store, args.state == "on", typed, now_ms))
    except SourceError as error:
        print(f"traffic: modem: {mask_text(str(error))}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


COMMANDS: "dict[str, Callable[[Config, argparse.Namespace], int]]" = {
    "connect": _keeper_command("connect"),
    "disconnect": _keeper_command("disconnect"),
    "collect": cmd_collect,
    "web": cmd_web,
    "status": cmd_status,
    "report": cmd_report,
    "check-config": cmd_check_config,
    "reset-month": cmd_reset_month,
    "notify-test": cmd_notify_test,
    "migrate": cmd_migrate,
    "modem": cmd_modem,
}
