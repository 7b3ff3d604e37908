"""Config: defaults, precedence, and one-line errors that name the key and where it was set."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector.sources import source_schemas
from traffic.config import ConfigError, load_config, mask_secrets

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "traffic.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(path=None, overrides=None, environ=None, system_path=None):
    return load_config(path, overrides, environ=environ or {}, system_path=system_path,
                       source_schemas=source_schemas())


def test_defaults() -> None:
    config = load()
    assert config.site == "home"
    assert config.collector.interval == 5 and config.collector.save_interval == 600
    assert config.quota.monthly == 0 and config.quota.billing_day == 1
    assert config.quota.thresholds == (50, 80, 100)
    assert config.web.bind == "127.0.0.1:8000"
    assert config.sources[0].type == "kernel" and config.sources[0].settings["interfaces"] == ()
    assert config.sources[0].name == "kernel" and config.sources[0].billed
    assert config.retention == {"raw": 7 * 86400, "5min": 60 * 86400, "hour": 730 * 86400,
                                "day": 0, "month": 0, "gauges": 60 * 86400,
                                "events": 730 * 86400}


def test_example_config_loads() -> None:
    config = load(ROOT / "util" / "traffic.toml.example")
    assert config.quota.monthly == 40 * 10**9


def test_sizes_in_gb_and_gib(tmp_path: Path) -> None:
    si = load(write(tmp_path, '[quota]\nmonthly = "40 GB"\n'))
    iec = load(write(tmp_path, '[quota]\nmonthly = "40 GiB"\n'))
    assert (si.quota.monthly, si.quota.unit_system) == (40_000_000_000, "si")
    assert (iec.quota.monthly, iec.quota.unit_system) == (42_949_672_960, "iec")


def test_plain_numbers(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[quota]\nmonthly = 0\ndaily = "0"\n[collector]\n'
                                  'interval = "5"\nsave_interval = 90\n[retention]\nraw = "0"\n'))
    assert (config.quota.monthly, config.quota.daily) == (0, 0)
    assert (config.collector.interval, config.collector.save_interval) == (5, 90)
    assert config.retention["raw"] == 0


def test_precedence_chain(tmp_path: Path) -> None:
    system = write(tmp_path, 'site = "system"\n[quota]\nmonthly = "10 GB"\nbilling_day = 3\n'
                             '[collector]\ninterval = "7s"\n', "system.toml")
    user = write(tmp_path, '[quota]\nmonthly = "20 GB"\nbilling_day = 4\n', "user.toml")
    environ = {"TRAFFIC_QUOTA_BILLING_DAY": "5", "TRAFFIC_COLLECTOR_SAVE_INTERVAL": "2m",
               "TRAFFIC_QUOTA_DAILY": "1 GB"}
    config = load(user, ["quota.daily=2 GB"], environ, system_path=system)
    assert config.site == "system"                  # only the system file sets it
    assert config.collector.interval == 7           # system file over the default
    assert config.quota.monthly == 20 * 10**9       # --config file over the system file
    assert config.quota.billing_day == 5            # environment over the file
    assert config.collector.save_interval == 120    # environment over the default
    assert config.quota.daily == 2 * 10**9          # --set over the environment
    assert config.files == (str(system), str(user))


def test_traffic_config_environment_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'site = "cabin"\n')
    assert load(environ={"TRAFFIC_CONFIG": str(path)}).site == "cabin"


def test_environment_lists_and_top_level_keys() -> None:
    config = load(environ={"TRAFFIC_SITE": "cabin", "TRAFFIC_WEB_ALLOW": "10.0.0.0/8,::1/128",
                           "TRAFFIC_QUOTA_THRESHOLDS": "[90, 75]"})
    assert config.site == "cabin"
    assert config.web.allow == ("10.0.0.0/8", "::1/128")
    assert config.quota.thresholds == (75, 90)


@pytest.mark.parametrize(("text", "message"), [
    ('[quota]\nmonthy = "40 GB"\n', "{file}: unknown key 'quota.monthy'"),
    ("colour = 1\n", "{file}: unknown key 'colour'"),
    ('[quota]\nmonthly = "40 GX"\n',
     "{file}: quota.monthly: bad size '40 GX' (write e.g. '40 GB' or '40 GiB')"),
    ('[quota]\nmonthly = true\n',
     "{file}: quota.monthly: expected a string such as '40 GB' or '5s', got True"),
    ("[quota]\nbilling_day = 32\n",
     "{file}: quota.billing_day: expected a whole number from 1 to 31, got 32"),
    ('[quota]\nbilling_day = "8"\n',
     "{file}: quota.billing_day: expected a whole number from 1 to 31, got '8'"),
    ('[collector]\ninterval = "5 parsecs"\n',
     "{file}: collector.interval: bad duration '5 parsecs' (write e.g. '5s', '10m', '2h' or "
     "'7d')"),
    ("[quota]\nmonthly = 40\n", "{file}: quota.monthly: 40 has no unit; write '40 GB' "
                                 "(or '40 GiB', or '0' for no limit)"),
    ('[quota]\ndaily = "2"\n', "{file}: quota.daily: 2 has no unit; write '2 GB' "
                                "(or '2 GiB', or '0' for no limit)"),
    ('[collector]\nmax_rate = 250\n',
     "{file}: collector.max_rate: 250 has no unit; write '250 MB/s'"),
    ('[collector]\ninterval = "0s"\n', "{file}: collector.interval: must be longer than 0, "
                                      "got '0s'"),
    ('timezone = "Mars/Olympus"\n',
     "{file}: timezone: unknown time zone 'Mars/Olympus' (write e.g. 'Europe/Stockholm')"),
    ('timezone = "Europe"\n',  # a folder of zones, not a zone
     "{file}: timezone: unknown time zone 'Europe' (write e.g. 'Europe/Stockholm')"),
    ('[web]\nbind = "8000"\n',
     "{file}: web.bind: expected host:port such as '127.0.0.1:8000', got '8000'"),
    ('[web]\nallow = ["192.168.8.0/33"]\n',
     "{file}: web.allow: bad network '192.168.8.0/33' (write e.g. '192.168.8.0/24')"),
    ('[store]\nurl = "postgres://x"\n',
     "{file}: store.url: expected 'sqlite:///path/to/traffic.db' or "
     "'mongodb://host:27017/traffic', got 'postgres://x'"),
    ('[[sources]]\ntype = "router"\n',
     "{file}: sources[0].type: expected one of {types}, got 'router'"),
    ('[[sources]]\ntype = "kernel"\ninterface = "ppp0"\n',
     "{file}: unknown key 'sources[0].interface'"),
    ("quota = 3\n", "{file}: 'quota' must be a [quota] table"),
    ('site = ""\n', "{file}: site: must not be empty (write e.g. 'home')"),
    ('site = "a/b"\n', "{file}: site: expected letters, digits, '.', '_' or '-', not starting "
                       "with '.' (it names files), got 'a/b'"),
    ('site = ".home"\n', "{file}: site: expected letters, digits, '.', '_' or '-', not "
                         "starting with '.' (it names files), got '.home'"),
    ('[retention]\nhour = "7d"\n', "{file}: retention.hour: keep totals at least '32d' (a "
                                     "whole billing period), or 'forever'; got '7d'"),
    ("[quota\n", "{file}: not valid TOML: Expected ']' at the end of a table declaration "
                 "(at line 1, column 7)"),
])
def test_file_errors_name_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == message.format(file=path,
                                               types=", ".join(sorted(source_schemas())))
    assert "\n" not in str(raised.value)


def test_environment_and_flag_errors_name_their_origin() -> None:
    with pytest.raises(ConfigError, match=r"^environment TRAFFIC_QUOTA_MONTHLY: quota.monthly: "
                                          r"bad size '40 GX'"):
        load(environ={"TRAFFIC_QUOTA_MONTHLY": "40 GX"})
    with pytest.raises(ConfigError, match=r"^environment TRAFFIC_QUOTA_COLOUR: unknown key "
                                          r"'quota.colour'$"):
        load(environ={"TRAFFIC_QUOTA_COLOUR": "red"})
    with pytest.raises(ConfigError, match=r"^--set: quota.billing_day: "
                                          r"expected a whole number from 1 to 31, got 0$"):
        load(overrides=["quota.billing_day=0"])
    with pytest.raises(ConfigError, match=r"^--set quota: expected section.key=value$"):
        load(overrides=["quota"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: config file not found$"):
        load(tmp_path / "nope.toml")


def test_mask_secrets() -> None:
    settings = {"store": {"url": "mongodb://traffic:hunter2@db:27017/traffic"},
                "router": {"password": "hunter2", "url": "http://192.168.8.1/"},
                "notify": {"urls": ["tgram://123:tok@chat"], "api_key": "k"}}
    masked = mask_secrets(settings)
    assert "hunter2" not in str(masked) and "tok" not in str(masked)
    assert masked["router"] == {"password": "********", "url": "http://192.168.8.1/"}
    assert masked["store"]["url"] == "mongodb://traffic:********@db:27017/traffic"
    assert masked["notify"]["api_key"] == "********"


def test_mask_secrets_inside_text() -> None:
    settings = {"keeper": {"connect": ["mmcli", "-m", "0",
                                       "--simple-connect=apn=internet,user=bob,password=hunter2"],
                           "escalation": [{"run": ["unlock", "PIN=1234;", "api_key='k3y'"]}]},
                "notify": {"urls": ["ntfy://host/topic?token=tk1&priority=high"]}}
    masked = mask_secrets(settings)
    assert masked["keeper"]["connect"][-1] == ("--simple-connect=apn=internet,user=bob,"
                                               "password=********")
    assert masked["keeper"]["escalation"][0]["run"] == ["unlock", "PIN=********;",
                                                        "api_key='********'"]
    assert masked["notify"]["urls"] == ["ntfy://host/topic?token=********&priority=high"]
    assert mask_secrets("apn=internet,user=bob,spin=2") == "apn=internet,user=bob,spin=2"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)


@pytest.mark.parametrize(("where", "origin"), [
    (["--set", "quota.monthly=40"], "--set"),
    (["--config", "{file}"], "{file}"),
])
def test_cli_a_quota_without_a_unit_is_an_error(tmp_path: Path, where: list[str],
                                                origin: str) -> None:
    path = write(tmp_path, f'[quota]\nmonthly = "40"\n[store]\nurl = "sqlite://{tmp_path}/t.db"\n')
    args = [arg.format(file=path) for arg in where]
    result = run_cli(*args, "status", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"traffic: {origin.format(file=path)}: quota.monthly: 40 has no unit; "
                             "write '40 GB' (or '40 GiB', or '0' for no limit)\n")


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[quota]\nmonthly = "forty"\n')
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"traffic: {path}: quota.monthly: bad size 'forty' "
                             "(write e.g. '40 GB' or '40 GiB')\n")
    assert result.stdout == ""


def test_check_config_prints_effective_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[quota]\nmonthly = "40 GiB"\nbilling_day = 8\n'
                           f'[store]\nurl = "sqlite://{tmp_path}/t.db"\n')
    result = run_cli("--config", str(path), "--set", "site=cabin", "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"files read: {path}" in result.stdout
    assert 'site = "cabin"' in result.stdout and 'monthly = "40 GiB"' in result.stdout
    assert "billing_day = 8" in result.stdout and 'interval = "5s"' in result.stdout
    import tomllib

    reparsed = tomllib.loads(result.stdout)
    assert reparsed["quota"]["monthly"] == "40 GiB"
    assert reparsed["sources"] == [{"type": "kernel", "name": "kernel", "billed": True,
                                    "interval": "", "max_rate": "", "interfaces": [],
                                    "counter_bits": 0}]


def default_route() -> str:
    for family in ("-4", "-6"):
        routes = json.loads(subprocess.run(["ip", "-j", family, "route", "show", "default"],
                                           capture_output=True, text=True, check=True).stdout)
        if routes:
            return routes[0]["dev"]
    return "none"


def test_check_config_shows_units_and_what_automatic_values_come_to(tmp_path: Path) -> None:
    path = write(tmp_path, '[collector]\ninterval = 5\nsave_interval = "90"\n'
                           '[retention]\nraw = 0\nhour = 2764800\n'
                           '[keeper]\nconnect = ["pon", "provider"]\n'
                           '[[sources]]\ntype = "kernel"\n')
    result = run_cli("--config", str(path), "--set", "timezone=", "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import tomllib

    shown = tomllib.loads(result.stdout)
    assert shown["collector"]["interval"] == "5s" and shown["collector"]["save_interval"] == "90s"
    assert (shown["retention"]["raw"], shown["retention"]["hour"]) == ("forever", "32d")
    assert shown["sources"] == [{"type": "kernel", "name": "kernel", "billed": True,
                                 "interval": "", "max_rate": "", "interfaces": [],
                                 "counter_bits": 0}]
    assert 'interval = ""  # automatic: 5s, as collector.interval' in result.stdout.splitlines()
    lines = result.stdout.splitlines()
    route = default_route()
    assert f"interfaces = []  # automatic: the default-route interface, now {route}" in lines
    assert f"interface = \"\"  # automatic: the default-route interface, now {route}" in lines
    assert any(re.fullmatch(r"counter_bits = 0  # automatic: the machine's, now (32|64)", line)
               for line in lines)
    assert ('disconnect = []  # automatic: the counterpart of connect, now ["poff", "provider"]'
            in lines)
    assert any(line.startswith('runtime_dir = ""  # automatic: the first on a RAM disk, now /')
               for line in lines)
    assert any(line.startswith('timezone = ""  # automatic: the system\'s time zone, now ')
               for line in lines)


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfesite = 1\n", "{file}: not UTF-8 text (byte 0); save it as UTF-8"),
    (None, "{file}: is a directory, not a config file"),
])
def test_unreadable_config_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "traffic.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == message.format(file=path)


def test_a_bad_store_url_does_not_show_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "postgres://traffic:s3cret@db/traffic"\n')
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert "s3cret" not in str(raised.value)
    assert "postgres://traffic:********@db/traffic" in str(raised.value)


def test_a_mongodb_url_is_taken_and_check_config_masks_its_password(tmp_path: Path) -> None:
    url = "mongodb://traffic:s3cret@db:27017/traffic?replicaSet=rs0"
    path = write(tmp_path, f'[store]\nurl = "{url}"\n')
    assert load(path).store.url == url
    shown = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert shown.returncode == 0 and "s3cret" not in shown.stdout + shown.stderr
    assert 'url = "mongodb://traffic:********@db:27017/traffic?replicaSet=rs0"' in shown.stdout


@pytest.mark.parametrize("site", ["a/b", "", "..", "home 2"])
def test_cli_refuses_a_site_that_is_no_file_name(tmp_path: Path, site: str) -> None:
    path = write(tmp_path, f'site = "{site}"\n[store]\nurl = "sqlite://{tmp_path}/t.db"\n'
                           f'[collector]\nruntime_dir = "{tmp_path}/run"\n')
    result = run_cli("--config", str(path), "collect", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"traffic: {path}: site: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "t.db").exists()


def test_a_site_with_dots_dashes_and_letters_names_the_realtime_file(tmp_path: Path) -> None:
    from traffic.runtime import realtime_path

    config = load(write(tmp_path, f'site = "Stuga-2.åre_x"\n[collector]\n'
                                  f'runtime_dir = "{tmp_path}"\n'))
    assert realtime_path(config) == tmp_path / "Stuga-2.åre_x.realtime"


def test_check_config_masks_passwords_inside_commands(tmp_path: Path) -> None:
    path = write(tmp_path, '[keeper]\nconnect = ["mmcli", "-m", "0", '
                           '"--simple-connect=apn=internet,user=bob,password=hunter2"]\n')
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert ('"--simple-connect=apn=internet,user=bob,password=********"]'
            in result.stdout)


def test_connect_masks_a_pin_in_the_command_and_its_output(tmp_path: Path) -> None:
    path = write(tmp_path, f'[store]\nurl = "sqlite://{tmp_path}/t.db"\n[collector]\n'
                           f'runtime_dir = "{tmp_path}/run"\n[keeper]\n'
                           'connect = ["sh", "-c", "echo dialling with pin=1234; exit 3"]\n')
    result = run_cli("--config", str(path), "connect", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ("sh -c echo dialling with pin=********; exit 3: failed (exit 3)\n"
                             "dialling with pin=********\n")


def test_alerts_settings_and_their_errors(tmp_path: Path) -> None:
    path = write(tmp_path, '[alerts]\nnotify = ["tweet://ck12/cs34/ak56/as78", '
                           '{url = "mailtos://bob:hunter2@example.org", rules = ["quota"]}]\n'
                           'daily_summary = "21:00"\nhourly_burst = "20 MB"\n')
    alerts = load(path).alerts
    assert [(target.url, target.rules) for target in alerts.notify] == [
        ("tweet://ck12/cs34/ak56/as78", ()),
        ("mailtos://bob:hunter2@example.org", ("quota",))]
    assert (alerts.daily_summary, alerts.hourly_burst, alerts.link_down_after) == (
        "21:00", 20_000_000, 600)
    for text, message in [
        ('[alerts]\nnotify = ["hunter2"]\n', "alerts.notify[0]: expected an Apprise URL such "
                                             "as 'mailtos://...' (the value is not shown)"),
        ('[alerts]\nnotify = [{url = "json://h", rules = ["family"]}]\n',
         "alerts.notify[0].rules: unknown rule 'family' (choose from threshold, daily_limit, "
         "early_warning, burst, daily_summary, period_summary, link_down, link_up, new_ip, "
         "device, session, quota, summary, link, router)"),
        ('[alerts]\ndaily_summary = "9pm"\n', "alerts.daily_summary: expected a local time "
                                              "such as '21:00', or '' for none, got '9pm'"),
    ]:
        with pytest.raises(ConfigError) as error:
            load(write(tmp_path, text))
        assert str(error.value) == f"{tmp_path}/traffic.toml: {message}"


def test_notification_urls_are_masked_whatever_the_scheme() -> None:
    from traffic.config import secret_values

    settings = {"alerts": {"notify": [
        "tweet://ck12/cs34567/ak56/as78901",
        {"url": "mailtos://bob:hunter2@example.org", "rules": ["quota"]},
        "ntfy://ntfy.example/alerts?token=tk_abcdef"]}}
    assert mask_secrets(settings) == {"alerts": {"notify": [
        "tweet://********", {"url": "mailtos://********", "rules": ["quota"]},
        "ntfy://********"]}}
    found = secret_values(settings)
    for secret in ("cs34567", "as78901", "hunter2", "tk_abcdef"):
        assert secret in found
    assert found.index("ck12/cs34567/ak56/as78901") < found.index("cs34567")  # whole first


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite://admin:hunter2@/var/lib/traffic/traffic.db",
     "{file}: store.url: a SQLite store is a file and takes no user name or password: write "
     "'sqlite:///var/lib/traffic/traffic.db' (got "
     "'sqlite://admin:********@/var/lib/traffic/traffic.db')"),
    ("sqlite://hunter2@traffic.db",
     "{file}: store.url: a SQLite store is a file and takes no user name or password: write "
     "'sqlite://traffic.db' (got 'sqlite://********@traffic.db')"),
])
def test_a_store_url_with_credentials_is_refused(tmp_path: Path, url: str, message: str) -> None:
    path = write(tmp_path, f'[store]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == message.format(file=path)


def test_a_store_path_with_an_at_sign_is_a_path(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/me@home/traffic.db"
    assert load(write(tmp_path, f'[store]\nurl = "{url}"\n')).store.url == url


@pytest.mark.parametrize(("text", "environ", "overrides", "message"), [
    ('[keeper]\nconnect = "sh -c echo password=hunter2"\n', {}, [],
     "{file}: keeper.connect: expected an argument list such as [\"pon\", \"provider\"], "
     "not a shell string: 'sh -c echo password=********'"),
    ('[keeper]\ndisconnect = ["x", "pin=hunter2", ""]\n', {}, [],
     "{file}: keeper.disconnect: expected a list of non-empty strings, got "
     "['x', 'pin=********', '']"),
    ('[[keeper.escalation]]\nrun = "reset token=hunter2"\n', {}, [],
     "{file}: keeper.escalation[0].run: expected an argument list such as [\"pon\", "
     "\"provider\"], not a shell string: 'reset token=********'"),
    ('[keeper]\ntargets = ["password=hunter2"]\n', {}, [],
     "{file}: keeper.targets: bad target 'password=********' (write 'host:port' such as "
     "'1.1.1.1:53', or 'dns:name' such as 'dns:example.com')"),
    ('[web]\nallow = [1, "password=hunter2"]\n', {}, [],
     "{file}: web.allow: expected a list of strings, got [1, 'password=********']"),
    ('[web]\ntrusted_proxies = ["key=hunter2"]\n', {}, [],
     "{file}: web.trusted_proxies: bad network 'key=********' (write e.g. '192.168.8.0/24')"),
    ('[web]\nbind = "http://bob:hunter2@host"\n', {}, [],
     "{file}: web.bind: expected host:port such as '127.0.0.1:8000', got "
     "'http://bob:********@host'"),
    ('site = "pin=hunter2"\n', {}, [],
     "{file}: site: expected letters, digits, '.', '_' or '-', not starting with '.' (it names "
     "files), got 'pin=********'"),
    ('timezone = "secret=hunter2"\n', {}, [],
     "{file}: timezone: unknown time zone 'secret=********' (write e.g. 'Europe/Stockholm')"),
    ('[alerts]\nnotify = [{url = "mailtos://a:hunter2@x", rules = ["token=hunter2"]}]\n', {}, [],
     "{file}: alerts.notify[0].rules: unknown rule 'token=********' (choose from "
     "threshold, daily_limit, early_warning, burst, daily_summary, period_summary, link_down, "
     "link_up, new_ip, device, session, quota, summary, link, router)"),
    ('[[sources]]\ntype = "password=hunter2"\n', {}, [],
     "{file}: sources[0].type: expected one of {types}, got 'password=********'"),
    ('[[sources]]\ntype = "kernel"\nname = "pin=hunter2"\n', {}, [],
     "{file}: sources[0].name: expected letters, digits, '.', '_' or '-', got 'pin=********'"),
    ("", {"TRAFFIC_KEEPER_CONNECT": "sh -c echo password=hunter2"}, [],
     "environment TRAFFIC_KEEPER_CONNECT: keeper.connect: expected an argument list such as "
     "[\"pon\", \"provider\"], not a shell string: 'sh -c echo password=********'"),
    ("", {}, ["keeper.connect=sh -c echo password=hunter2"],
     "--set: keeper.connect: expected an argument list such as [\"pon\", \"provider\"], not a "
     "shell string: 'sh -c echo password=********'"),
    ("", {}, ["store.url sqlite://bob:hunter2@/x.db"],
     "--set store.url sqlite://bob:********@/x.db: expected section.key=value"),
])
def test_config_errors_mask_the_secrets_in_the_values_they_repeat(
        tmp_path: Path, text: str, environ: dict, overrides: list, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path, overrides, environ)
    assert str(raised.value) == message.format(file=path,
                                               types=", ".join(sorted(source_schemas())))
    assert "hunter2" not in str(raised.value)


def test_a_secret_keys_value_is_never_repeated(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sources]]\ntype = "hilink"\npassword = ["hunter2"]\n')
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}: sources[0].password: ")
    assert "hunter2" not in str(raised.value)


def test_cli_refuses_a_store_url_with_credentials_and_creates_nothing(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    path = write(tmp_path, '[store]\nurl = "sqlite://admin:hunter2@/var/lib/traffic/traffic.db"\n'
                           f'[collector]\nruntime_dir = "{tmp_path}/run"\n')
    result = run_cli("--config", str(path), "status", cwd=work)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"traffic: {path}: store.url: a SQLite store is a file and takes "
                             "no user name or password: write "
                             "'sqlite:///var/lib/traffic/traffic.db' (got "
                             "'sqlite://admin:********@/var/lib/traffic/traffic.db')\n")
    assert list(work.iterdir()) == [] and not (tmp_path / "run").exists()
