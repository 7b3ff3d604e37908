"""The keeper while its store's server cannot be reached (issue 12, item 5): a site whose link
is down may not reach a central MongoDB over it, so the keeper must bring the link back all
the same; what it recorded meanwhile is stored once the server answers."""

from pathlib import Path

from collector.keeper import STATE_META, Keeper, KeeperState
from tests.conftest import make_config
from tests.mongo_server import running_server
from tests.stack import free_port
from tests.test_keeper_uptime import DAY, Evidence
from traffic.store import open_site_store


def test_the_keeper_reconnects_a_link_while_the_store_is_away_and_stores_it_after(
        tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "db").mkdir()
    server = running_server(tmp_path / "db", port=port)
    url = f"{next(server)}/traffic?directConnection=true"
    connected = tmp_path / "connected"
    config = make_config(tmp_path, f'[keeper]\nenabled = true\ntargets = ["127.0.0.1:9"]\n'
                                   f'connect = ["touch", "{connected}"]\n', store__url=url)
    store = open_site_store(config, create=True)
    wall, prober = [DAY], Evidence()
    keeper = Keeper(config, store, lambda: wall[0], prober)
    try:
        keeper.check()
        server.close()  # the server goes away with the link
        prober.up = False
        for _ in range(4):
            wall[0] += 30_000
            keeper.check()
        assert connected.exists(), "no connect while the store was away"

        server = running_server(tmp_path / "db", port=port)
        next(server)
        prober.up = True
        wall[0] += 30_000
        keeper.check()
        kinds = [event.kind for event in reversed(store.events())]
        assert kinds[0] == "up" and kinds[-1] == "up" and "attempt" in kinds
        assert kinds.index("down") < kinds.index("attempt")
        assert KeeperState.from_json(store.get_meta(STATE_META)).link == "up"
    finally:
        store.close()
        server.close()
