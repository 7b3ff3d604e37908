"""Many sites in one store: each read as its own collector's config says.

One MongoDB (or one SQLite file) can hold several sites, each counted by a collector of its
own. A site's time zone, billing day and limits are its collector's: the collector publishes
them (the ``settings`` status document) and every reader of the site (the web app, ``traffic
status --site``, ``/metrics``) takes them from there, so a dashboard on another host, or one
showing a neighbour's site, divides days and periods as the site's own box does. Without the
document (no collector has run since this version, or the SQLite RAM disk was wiped) the
reader's own config stands in.
"""

from zoneinfo import ZoneInfo

from traffic.config import (
    Config,
    NotifyTarget,
    QuotaConfig,
    SourceConfig,
    mask_url,
)
from traffic.hints import Any
from traffic.published import SETTINGS, read_settings
from traffic.quota import Usage, usage
from traffic.record import Record
from traffic.store import Store, open_site_store
from traffic.unsaved import with_unsaved

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class UnknownSite(LookupError):
    """A site the store holds nothing of; the message lists those it holds."""


def settings_document(config: Config) -> dict[str, Any]:
    """What readers of ``config``'s site need of its settings; no secret (the notify URLs
    are masked)."""
    quota = config.quota
    return {
        "site": config.site, "timezone": config.timezone.key,
        "interval_s": config.collector.interval,
        "quota": {"monthly": quota.monthly, "daily": quota.daily,
                  "billing_day": quota.billing_day, "thresholds": list(quota.thresholds),
                  "unit_system": quota.unit_system},
        "keeper": {"enabled": config.keeper.enabled, "check_every": config.keeper.check_every},
        "sources": [{"name": source.name, "type": source.type, "billed": source.billed,
                     "interval": source.interval,
                     "password_file": bool(source.settings.get("password_file"))}
                    for source in config.sources],
        "notify": [mask_url(target.url) for target in config.alerts.notify],
    }


def publish_settings(store: Store, config: Config) -> bool:
    """Publish the site's settings unless the store has them as they are (the collector calls
    this at start and now and then: the SQLite RAM disk may have been wiped meanwhile).
    True when it wrote them."""
    document = settings_document(config)
    if store.published(SETTINGS) == document:
        return False
    store.publish(SETTINGS, document)
    return True


def site_config(config: Config, site: str, settings: dict[str, Any] | None) -> Config:
    """``config`` as a reader of ``site`` uses it: with the site's published ``settings``,
    its time zone, quota, sources, keeper and poll interval in place of the config's own;
    without them, only the site's name changes."""
    if settings is None or settings["site"] != site:
        return config if site == config.site else _with(config, site=site)
    keeper, quota = settings["keeper"], settings["quota"]
    return _with(
        config, site=site, timezone=ZoneInfo(settings["timezone"]),
        collector=_with(config.collector, interval=float(settings["interval_s"])),
        quota=QuotaConfig(quota["monthly"], quota["daily"], quota["billing_day"],
                          tuple(quota["thresholds"]), quota["unit_system"]),
        keeper=_with(config.keeper, enabled=keeper["enabled"],
                     check_every=float(keeper["check_every"])),
        sources=tuple(SourceConfig(
            source["type"], source["name"], source["billed"], float(source["interval"]),
            settings={"password_file": "set"} if source["password_file"] else {})
            for source in settings["sources"]),
        alerts=_with(config.alerts, notify=tuple(NotifyTarget(url)
                                                 for url in settings["notify"])))


def _with(record: Any, **changes: Any) -> Any:
    """``record`` with ``changes``, as ``dataclasses.replace`` (not imported: ``traffic
    status`` starts without it)."""
    return type(record)(**{**{name: getattr(record, name) for name in record._fields},
                           **changes})


class SiteReader(Record):
    """A site as its readers see it: its config and its store (with the unsaved bytes)."""

    config: Config
    store: Any


def open_site_reader(config: Config, site: str, now: int) -> SiteReader:
    """The store of ``site`` in ``config``'s store, opened with the site's own settings (its
    time zone decides which day and month totals a read adds up). ``site`` must be the
    config's own or one the store holds: else UnknownSite, naming those it holds."""
    store = open_site_store(config, site=site)
    try:
        settings = read_settings(store)
        if settings is None and site != config.site:
            known = known_sites(store, config)
            if site not in known:
                raise UnknownSite(f"no site {site!r} in the store (known: {', '.join(known)})")
        chosen = site_config(config, site, settings)
        if chosen.timezone != config.timezone:
            store.close()
            store = open_site_store(config, site=site, tz=chosen.timezone)
    except BaseException:
        store.close()
        raise
    return SiteReader(chosen, with_unsaved(store, chosen, now))


class SiteUse(Record):
    """One site's use of its billing period, for the overview of every site."""

    config: Config
    usage: Usage


def site_readers(config: Config, first: SiteReader, now: int) -> "Iterator[SiteReader]":
    """A reader of every site of the store: ``first`` (open on one of them) for its own, the
    others opened and closed in turn."""
    for site in known_sites(first.store, config):
        if site == first.config.site:
            yield first
            continue
        reader = open_site_reader(config, site, now)
        try:
            yield reader
        finally:
            reader.store.close()


def sites_use(config: Config, first: SiteReader, now: int) -> list[SiteUse]:
    """Every site of the store, each with its own period and limit (``first``: a reader of
    one of them, see ``site_readers``)."""
    return [SiteUse(reader.config, usage(reader.store, reader.config, now))
            for reader in site_readers(config, first, now)]


def known_sites(store: Store, config: Config) -> list[str]:
    """Every site the store holds, and the config's own (the default, even before its
    collector has counted anything), sorted."""
    return sorted({*store.sites(), config.site})


def check_site_name(text: str) -> str:
    """``text`` if it can name a site (as ``site`` in the config does), else ValueError
    saying why: a site's name is part of file names."""
    from traffic.config import SCHEMA

    return SCHEMA["site"][1](text)
