"""The store, opened per request from the app's config and closed when the request ends; read
with the bytes the running collector has not saved yet (``traffic.unsaved``).

A request reads one site: ``?site=`` or the config's own, with that site's own settings
(``traffic.sites``: its time zone, billing day and limits, as its collector published them).
"""

from flask import Flask, current_app, g

from traffic.config import Config
from traffic.sites import SiteReader, UnknownSite, check_site_name, open_site_reader
from traffic.store import Store
from web import params


def traffic_config() -> Config:
    """The app's own config: who may look (``web``), where the store is."""
    return current_app.config["TRAFFIC"]


def requested_site() -> str:
    """``?site=``, or the config's own site."""
    value = params.text("site")
    if value is None:
        return traffic_config().site
    try:
        return check_site_name(value)
    except ValueError as error:
        raise params.BadParameter("site", str(error)) from None


def site_reader() -> SiteReader:
    if "reader" not in g:
        try:
            g.reader = open_site_reader(traffic_config(), requested_site(),
                                        current_app.config["CLOCK"]())
        except UnknownSite as error:
            raise params.BadParameter("site", str(error)) from None
    return g.reader


def site_config() -> Config:
    """The config as the requested site's readers use it."""
    return site_reader().config


def get_store() -> Store:
    return site_reader().store


def close_store(exception: BaseException | None = None) -> None:
    reader = g.pop("reader", None)
    if reader is not None:
        reader.store.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_store)
