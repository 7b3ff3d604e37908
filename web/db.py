"""The store, opened per request from the app's config and closed when the request ends; read
with the bytes the running collector has not saved yet (``traffic.unsaved``)."""

from flask import Flask, current_app, g

from traffic.config import Config
from traffic.store import Store, open_site_store
from traffic.unsaved import with_unsaved


def traffic_config() -> Config:
    return current_app.config["TRAFFIC"]


def get_store() -> Store:
    if "store" not in g:
        config = traffic_config()
        g.store = with_unsaved(open_site_store(config), config, current_app.config["CLOCK"]())
    return g.store


def close_store(exception: BaseException | None = None) -> None:
    store = g.pop("store", None)
    if store is not None:
        store.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_store)
