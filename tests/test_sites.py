"""Two sites in one store, on each backend: a reader of a site takes its time zone, billing day
and limits from the settings its collector published (``traffic.sites``), and reads the day and
month totals its collector wrote in that time zone."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import STOCKHOLM, make_config
from traffic.config import Config
from traffic.counters import CounterState, Delta
from traffic.periods import to_ms
from traffic.published import SETTINGS, read_settings
from traffic.quota import usage
from traffic.sites import UnknownSite, open_site_reader, publish_settings, sites_use
from traffic.store import open_site_store

NEW_YORK = ZoneInfo("America/New_York")
NOW = to_ms(datetime(2026, 11, 3, 12, 0, tzinfo=STOCKHOLM))
"""As tests.web.conftest.NOW, whose web app reads the cabin too."""
GB = 10**9
CABIN_TOML = ('site = "cabin"\ntimezone = "America/New_York"\n[quota]\nmonthly = "10 GB"\n'
              'billing_day = 20\n[[sources]]\ntype = "kernel"\ninterfaces = ["wwan0"]\n')


def cabin_config(tmp_path: Path, url: str) -> Config:
    """The cabin's collector's config: the store at ``url``, the runtime folder
    ``tmp_path/run`` (the home config's)."""
    (tmp_path / "cabin").mkdir()
    return make_config(tmp_path / "cabin", CABIN_TOML, store__url=url,
                       collector__runtime_dir=f'"{tmp_path}/run"')


def seed_cabin(cabin: Config, publish: bool = True) -> None:
    """What the cabin's collector wrote, in its time zone: 3 GB at 23:30 on 1 Nov in New York
    (2 Nov in Stockholm) and 1 GB on 19 Oct (before its period, which began on 20 Oct); and,
    with ``publish``, its settings."""
    store = open_site_store(cabin, create=True)
    late = to_ms(datetime(2026, 11, 1, 23, 30, tzinfo=NEW_YORK))
    before = to_ms(datetime(2026, 10, 19, 12, 0, tzinfo=NEW_YORK))
    store.add([Delta("kernel:wwan0", late, late + 5000, 3 * GB, 0),
               Delta("kernel:wwan0", before, before + 5000, GB, 0)],
              {"kernel:wwan0": CounterState("boot/9", NOW - 9000, 0, 0)})
    if publish:
        assert publish_settings(store, cabin)
        assert not publish_settings(store, cabin)  # as published: nothing written
    store.close()


@pytest.fixture(params=["sqlite", "mongodb"])
def configs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Config, Config]]:
    """The home box's config and the cabin's collector's: one store, one runtime folder."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/traffic.db"
    else:
        from tests.mongo_server import database_url

        url = database_url(request.getfixturevalue("mongodb_base"))
    home = make_config(tmp_path, 'timezone = "Europe/Stockholm"\n[quota]\nmonthly = "40 GB"\n'
                                 'billing_day = 8\n', store__url=url)
    yield home, cabin_config(tmp_path, url)


def seed(home: Config, cabin: Config) -> None:
    """Each collector writes its own site, in its own time zone: the cabin's (``seed_cabin``),
    and home's 6 GB on 2 Nov."""
    seed_cabin(cabin)
    store = open_site_store(home, create=True)
    noon = to_ms(datetime(2026, 11, 2, 12, 0, tzinfo=STOCKHOLM))
    store.add([Delta("kernel:ppp0", noon, noon + 5000, 6 * GB, 0)],
              {"kernel:ppp0": CounterState("boot/1", NOW - 4000, 0, 0)})
    store.close()


def test_a_site_is_read_with_its_own_settings(configs: tuple[Config, Config]) -> None:
    home, cabin = configs
    seed(home, cabin)
    reader = open_site_reader(home, "cabin", NOW)
    try:
        assert reader.config.site == "cabin" and reader.config.timezone == NEW_YORK
        assert (reader.config.quota.billing_day, reader.config.quota.monthly) == (20, 10 * GB)
        assert [source.name for source in reader.config.sources] == ["kernel"]
        assert reader.config.store == home.store  # where to read stays the reader's own
        day = to_ms(datetime(2026, 11, 1, tzinfo=NEW_YORK))
        assert reader.store.series("day", day, day + 1) == [(day, 3 * GB, 0)]
        assert reader.store.totals(day, to_ms(datetime(2026, 11, 2, tzinfo=NEW_YORK))) == (
            3 * GB, 0)
        used = usage(reader.store, reader.config, NOW)
        assert used.period_start == to_ms(datetime(2026, 10, 20, tzinfo=NEW_YORK))
        assert (used.total, used.limit, used.last_sample_at) == (3 * GB, 10 * GB, NOW - 9000)
    finally:
        reader.store.close()
    own = open_site_reader(home, "home", NOW)
    try:
        assert own.config == home  # nothing published for home: its own config
        assert usage(own.store, own.config, NOW).total == 6 * GB
    finally:
        own.store.close()


def test_the_overview_and_an_unknown_site(configs: tuple[Config, Config]) -> None:
    home, cabin = configs
    seed(home, cabin)
    reader = open_site_reader(home, home.site, NOW)
    try:
        overview = {use.config.site: use.usage for use in sites_use(home, reader, NOW)}
    finally:
        reader.store.close()
    assert {site: (use.total, use.limit) for site, use in overview.items()} == {
        "cabin": (3 * GB, 10 * GB), "home": (6 * GB, 40 * GB)}
    with pytest.raises(UnknownSite, match=r"^no site 'nowhere' in the store \(known: cabin, "
                                          r"home\)$"):
        open_site_reader(home, "nowhere", NOW)


def test_settings_not_as_a_collector_writes_them_are_not_used(
        configs: tuple[Config, Config]) -> None:
    """A document of another version or a hand edit: the reader's config stands in, and the
    collector's next check publishes its settings again."""
    home, cabin = configs
    seed(home, cabin)
    store = open_site_store(cabin)
    try:
        store.publish(SETTINGS, {"site": "cabin", "timezone": "Mars/Olympus"})
        assert read_settings(store) is None
        reader = open_site_reader(home, "cabin", NOW)
        assert (reader.config.timezone, reader.config.quota.monthly) == (STOCKHOLM, 40 * GB)
        reader.store.close()
        assert publish_settings(store, cabin)
        assert read_settings(store)["quota"]["billing_day"] == 20
    finally:
        store.close()
