"""The B593 source through its own client against the simulated router (tests/sim/b593.py)."""

import base64
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from Cryptodome.PublicKey import RSA

from collector.sources import LoginRefused, SourceError, make_source, poll_interval
from collector.sources.b593 import B593_MODULUS, B593Source
from collector.worker import Collector
from tests.conftest import make_config
from tests.sim.b593 import B593
from traffic.config import Config, ConfigError, secret_values
from traffic.counters import Tracker
from traffic.published import read_realtime, read_sources
from traffic.store import open_site_store

PASSWORD = "Tr0ub4dor&3"
T = 1_795_000_000_000


@pytest.fixture(scope="module")
def key() -> RSA.RsaKey:
    """A test key pair: the router keeps the private half, the source is given the modulus."""
    return RSA.generate(1024)


@pytest.fixture
def router(key: RSA.RsaKey) -> Iterator[B593]:
    with B593(key, password=PASSWORD) as running:
        yield running


class Clock:
    """Ten seconds further at every reading, as at the default interval."""

    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> int:
        self.now += 10_000
        return self.now


def b593_config(tmp_path: Path, router: B593 | None = None, **settings: object) -> Config:
    own: dict[str, object] = {"password": PASSWORD}
    if router is not None:
        own |= {"url": router.url, "public_key": router.modulus}
    own |= settings
    lines = "".join(f"{name} = {json.dumps(value)}\n" for name, value in own.items()
                    if value is not None)
    return make_config(tmp_path, f'[[sources]]\ntype = "b593"\n{lines}')


def b593(tmp_path: Path, router: B593 | None = None, **settings: object) -> B593Source:
    source = make_source(b593_config(tmp_path, router, **settings).sources[0], Clock())
    assert isinstance(source, B593Source)
    return source


def test_logs_in_with_the_rsa_encrypted_password_and_reads_the_wan(
        tmp_path: Path, router: B593) -> None:
    router.grow(down=5_000, up=700)
    router.downrate, router.uprate = 300, 40
    source = b593(tmp_path, router)
    [reading] = source.poll()
    assert reading.key == "b593:wan"
    assert reading.counters == {"rx": 5_000 * 1024, "tx": 700 * 1024}
    assert reading.life == router.url and reading.held and reading.bits == 64
    assert reading.gauges == {"rx_rate": 300 * 1024, "tx_rate": 40 * 1024,
                              "wan_ip": "100.64.12.34"}
    [login] = router.logins()
    assert login.method == "POST" and login.form["Username"] == "admin"
    sent = login.form["Password"]
    assert router.accepts(sent)
    assert PASSWORD not in sent and base64.b64encode(PASSWORD.encode()).decode() != sent
    router.grow(down=10, up=1)
    assert source.poll()[0].counters == {"rx": 5_010 * 1024, "tx": 701 * 1024}
    assert len(router.logins()) == 1, "the session is kept between polls"


def test_encrypts_under_a_fresh_padding_each_login(tmp_path: Path, router: B593) -> None:
    """PKCS#1 v1.5 pads with random bytes: the same password is never sent twice alike."""
    source = b593(tmp_path, router)
    source.poll()
    router.expire_session()
    source.poll()
    first, second = (login.form["Password"] for login in router.logins())
    assert first != second and router.accepts(first) and router.accepts(second)


def test_older_firmware_takes_the_password_in_plain_base64(tmp_path: Path,
                                                           key: RSA.RsaKey) -> None:
    with B593(key, password=PASSWORD, login_encoding="base64") as router:
        router.grow(down=3, up=2)
        source = b593(tmp_path, router, login_encoding="base64")
        assert source.poll()[0].counters == {"rx": 3 * 1024, "tx": 2 * 1024}
        assert router.logins()[0].form["Password"] == base64.b64encode(
            PASSWORD.encode()).decode()


@pytest.mark.parametrize(("unit", "factor"), [("B", 1), ("kB", 1000), ("KB", 1000),
                                              ("KiB", 1024), (None, 1024)])
def test_volumes_and_rates_are_read_in_the_volume_unit(tmp_path: Path, router: B593,
                                                       unit: str | None, factor: int) -> None:
    router.grow(down=123_456_789, up=987)
    router.downrate = 55
    reading = b593(tmp_path, router, volume_unit=unit).poll()[0]
    assert reading.counters == {"rx": 123_456_789 * factor, "tx": 987 * factor}
    assert reading.gauges["rx_rate"] == 55 * factor


def test_an_ended_session_is_one_new_login_and_the_same_poll_reads(
        tmp_path: Path, router: B593) -> None:
    source = b593(tmp_path, router)
    source.poll()
    router.expire_session()
    router.grow(down=40, up=4)
    [reading] = source.poll()
    assert reading.counters == {"rx": 40 * 1024, "tx": 4 * 1024}
    assert len(router.logins()) == 2
    assert [r.path for r in router.requests] == [
        "/index/login.cgi", "/html/status/waninfo.asp",
        "/html/status/waninfo.asp", "/index/login.cgi", "/html/status/waninfo.asp"]


def test_a_session_that_ends_at_once_is_one_login_per_poll(tmp_path: Path,
                                                           router: B593) -> None:
    """A router that takes the login but ends the session at once (someone else on its web
    page) is tried again at the next poll, never in a loop within one."""
    router.keeps_sessions = False
    source = b593(tmp_path, router)
    for polls in (1, 2):
        with pytest.raises(SourceError, match="ended the session at once") as raised:
            source.poll()
        assert not isinstance(raised.value, LoginRefused)
        assert len(router.logins()) == polls
    router.keeps_sessions = True
    assert source.poll()[0].key == "b593:wan"


def test_a_wrong_password_is_exactly_one_attempt(tmp_path: Path, router: B593) -> None:
    source = b593(tmp_path, router, password="hunter2")
    for _ in range(3):
        with pytest.raises(LoginRefused) as raised:
            source.poll()
        message = str(raised.value)
        assert "refused the login of user 'admin'" in message and "\n" not in message
        assert "hunter2" not in message and PASSWORD not in message
    assert len(router.logins()) == 1


def test_a_wrong_public_key_is_a_refused_login(tmp_path: Path, router: B593) -> None:
    source = b593(tmp_path, router, public_key=B593_MODULUS)
    with pytest.raises(LoginRefused, match="public_key"):
        source.poll()
    assert len(router.logins()) == 1


def test_the_collector_stops_at_a_refused_login_and_masks_the_password(
        tmp_path: Path, router: B593) -> None:
    config = b593_config(tmp_path, router, password="hunter2")
    store = open_site_store(config, create=True)
    try:
        collector = Collector(config, store, Clock())
        for _ in range(3):
            assert collector.poll() == []
        published = read_sources(config, read_realtime(store))["b593"]
        assert published["refused"] and "refused the login" in published["error"]
        assert "hunter2" not in json.dumps(published)
        assert len(router.logins()) == 1
        collector.close()
    finally:
        store.close()


def test_a_dip_that_comes_back_is_counted_once(tmp_path: Path, router: B593) -> None:
    router.grow(down=1_000, up=100)
    source = b593(tmp_path, router, volume_unit="B")
    tracker = Tracker(max_rate=10**9)
    counted = []
    for down, up in ((0, 0), (500, 50), (-100, -10), (300, 30), (20, 2)):
        router.grow(down=down, up=up)
        delta = tracker.update(source.poll()[0])
        counted.append((0, 0) if delta is None else (delta.rx, delta.tx))
    assert counted == [(0, 0), (500, 50), (0, 0), (200, 20), (20, 2)]
    assert sum(rx for rx, _ in counted) == router.downvolume - 1_000, \
        "the growth the router served, byte for byte"


def test_refuse_logs_out_and_no_login_is_made_again(tmp_path: Path, router: B593) -> None:
    """``refuse`` is how the collector passes on the store's word that these settings' login
    was refused."""
    source = b593(tmp_path, router)
    source.poll()
    source.refuse("refused before")
    assert router.requests[-1].path == "/index/logout.cgi" and router.session is None
    for _ in range(2):
        with pytest.raises(LoginRefused, match=r"^refused before$"):
            source.poll()
    source.close()
    assert len(router.logins()) == 1 and len(router.requests) == 3
    fresh = b593(tmp_path, router)
    fresh.refuse("refused before")
    with pytest.raises(LoginRefused, match=r"^refused before$"):
        fresh.poll()
    assert len(router.requests) == 3


def test_close_logs_out(tmp_path: Path, router: B593) -> None:
    source = b593(tmp_path, router)
    source.close()
    assert router.requests == [], "nothing to end before a login"
    source.poll()
    source.close()
    assert router.requests[-1].path == "/index/logout.cgi" and router.session is None
    source.poll()
    assert len(router.logins()) == 2, "a poll after close logs in again"


def test_an_unreachable_router_is_a_one_line_source_error(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    source = b593(tmp_path, url=url)
    with pytest.raises(SourceError) as raised:
        source.poll()
    assert not isinstance(raised.value, LoginRefused)
    assert str(raised.value) == f"the router at {url} is not answering (connection refused)"


def test_a_router_that_does_not_answer_in_time(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        source = b593(tmp_path, url=url, timeout="200ms")
        with pytest.raises(SourceError) as raised:
            source.poll()
    assert str(raised.value) == f"the router at {url} is not answering (no answer within 0.2 s)"
    assert PASSWORD not in str(raised.value)


def test_a_page_without_the_totals_is_a_source_error(tmp_path: Path, router: B593) -> None:
    router.waninfo_page = "<html><head><title>Status</title></head><body></body></html>"
    with pytest.raises(SourceError, match=r"has no 'downvolume'; is it a B593"):
        b593(tmp_path, router).poll()


def test_the_password_may_be_kept_in_a_file(tmp_path: Path, router: B593) -> None:
    secret = tmp_path / "router-password"
    secret.write_text(PASSWORD + "\n")
    assert b593(tmp_path, router, password="", password_file=str(secret)).poll()
    missing = tmp_path / "nope"
    with pytest.raises(SourceError, match=f"^password_file: cannot read {missing} "):
        b593(tmp_path, router, password="", password_file=str(missing)).poll()
    secret.write_text("")
    with pytest.raises(LoginRefused, match="is empty"):
        b593(tmp_path, router, password="", password_file=str(secret)).poll()
    assert len(router.logins()) == 1, "no login without a password"


def test_no_password_is_refused_without_asking_the_router(tmp_path: Path,
                                                          router: B593) -> None:
    with pytest.raises(LoginRefused, match="set password or password_file"):
        b593(tmp_path, router, password="").poll()
    assert router.requests == []


def test_a_password_given_twice_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as wrong:
        make_config(tmp_path, '[[sources]]\ntype = "b593"\npassword = "a"\n'
                              f'password_file = "{tmp_path}/x"\n')
    assert str(wrong.value) == (f"{tmp_path}/traffic.toml: sources[0].password_file: set "
                                "password or password_file, not both")


def test_defaults(tmp_path: Path) -> None:
    config = make_config(tmp_path, '[[sources]]\ntype = "b593"\n')
    [source] = config.sources
    assert dict(source.settings) == {
        "url": "http://192.168.1.1/", "username": "admin", "password": "",
        "password_file": "", "public_key": B593_MODULUS, "login_encoding": "rsa",
        "volume_unit": "KiB", "timeout": 5.0}
    assert source.name == "b593" and source.billed
    assert poll_interval(source, config) == 10.0


@pytest.mark.parametrize(("line", "message"), [
    ('public_key = "not hex"',
     "sources[0].public_key: expected the RSA modulus in hex (as in the router's rsa.js), "
     "got 'not hex'"),
    ('public_key = "ABCDEF"',
     "sources[0].public_key: expected an RSA modulus of 512 to 8192 bits in hex (as in the "
     "router's rsa.js), got one of 24 bits"),
    ('login_encoding = "md5"',
     "sources[0].login_encoding: expected one of 'rsa', 'base64', got 'md5'"),
    ('volume_unit = "MB"',
     "sources[0].volume_unit: expected one of 'B', 'kB', 'KB', 'KiB', got 'MB'"),
    ('url = "192.168.1.1"',
     "sources[0].url: expected the router's address such as 'http://192.168.1.1/', "
     "got '192.168.1.1'"),
    ('timeout = "0s"', "sources[0].timeout: must be longer than 0, got '0s'"),
    ("password = 123456", "sources[0].password: expected a string in quotes (the value is "
                          "not shown)"),
    ('url = "http://admin:hunter2@192.168.1.1/"',
     "sources[0].url: put the user name in 'username' and the password in 'password' or "
     "'password_file', not in the url"),
    ('url = "admin:hunter2@192.168.1.1"',
     "sources[0].url: put the user name in 'username' and the password in 'password' or "
     "'password_file', not in the url"),
    ('password_file = "router-password"',
     "sources[0].password_file: expected an absolute path such as "
     "'/etc/traffic/router-password', got 'router-password'"),
    ('pasword = "x"', "unknown key 'sources[0].pasword'"),
])
def test_config_errors_are_one_line_naming_the_key(tmp_path: Path, line: str,
                                                    message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        make_config(tmp_path, f'[[sources]]\ntype = "b593"\n{line}\n')
    assert str(raised.value) == f"{tmp_path / 'traffic.toml'}: {message}"


def test_a_public_key_is_taken_with_spaces_and_0x(tmp_path: Path, key: RSA.RsaKey) -> None:
    written = "0x" + " ".join(f"{key.n:x}"[i:i + 32] for i in range(0, 256, 32))
    config = make_config(tmp_path, f'[[sources]]\ntype = "b593"\npublic_key = "{written}"\n')
    assert config.sources[0].settings["public_key"] == f"{key.n:X}"


def test_only_the_password_is_a_secret(tmp_path: Path) -> None:
    """Every secret value is masked in all output: a setting that is not one must not be
    taken for one (``rsa`` would be starred out of every message)."""
    config = b593_config(tmp_path, url="http://192.168.1.1/", login_encoding="rsa")
    assert secret_values(config.effective) == [PASSWORD]


def test_the_example_section_loads_as_written(tmp_path: Path) -> None:
    """Its settings, uncommented, are the defaults (with the password in a file)."""
    example = (Path(__file__).resolve().parents[2] / "util" / "traffic.toml.example").read_text()
    start = example.index('# [[sources]]\n# type = "b593"')
    block = example[start:example.index("\n\n", start)]
    setting = re.compile(r"# (\[\[sources\]\]|\w+ = .*|    [0-9A-F]+.*)")
    text = "\n".join(match.group(1) for line in block.splitlines()
                     if (match := setting.fullmatch(line)))
    [source] = make_config(tmp_path, text).sources
    defaults = make_config(tmp_path, '[[sources]]\ntype = "b593"\n').sources[0]
    assert dict(source.settings) == {**defaults.settings,
                                     "password_file": "/etc/traffic/router-password"}
    assert not source.billed
