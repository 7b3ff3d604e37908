"""What a text message asks for (collector/sms_commands.py), and the [sms] settings."""

import subprocess
import sys
from pathlib import Path

import pytest

from collector.sms_commands import Command, Ignored, normalized, read_command
from collector.sms_control import sms_key
from tests.conftest import make_config
from tests.stack import clean_env
from traffic.config import ConfigError, SmsConfig, shown_settings

KEY = "Hemlig-42"
ALLOWED = "+46700000001"


@pytest.fixture
def sms(tmp_path: Path) -> SmsConfig:
    return make_config(tmp_path, f'[sms]\nallow = ["{ALLOWED}"]\nkey = "{KEY}"\n'
                                 "max_minutes = 120\nsession_minutes = 20\n").sms


@pytest.mark.parametrize(("text", "found"), [
    (f"{KEY} status", Command("status")),
    (f"  {KEY}   STATUS \n", Command("status")),
    (f"{KEY} Usage", Command("usage")),
    (f"{KEY} connect", Command("connect")),
    (f"{KEY} disconnect", Command("disconnect")),
    (f"{KEY} reboot", Command("reboot")),
    (f"{KEY} up", Command("up", 20)),
    (f"{KEY} up 45", Command("up", 45)),
    (f"{KEY} Session 120", Command("up", 120)),
    (f"{KEY} up 121", Ignored("unknown command", "up 121")),
    (f"{KEY} up 0", Ignored("unknown command", "up 0")),
    (f"{KEY} up ½", Ignored("unknown command", "up ½")),
    (f"{KEY} up 5 now", Ignored("unknown command", "up 5 now")),
    (f"{KEY} status please", Ignored("unknown command", "status please")),
    (f"{KEY} dance", Ignored("unknown command", "dance")),
    (f"{KEY}", Ignored("unknown command", "")),
    (f"{KEY.lower()} status", Ignored("wrong key")),
    (f"status {KEY}", Ignored("wrong key")),
    ("", Ignored("wrong key")),
])
def test_a_message_is_the_key_a_command_and_its_minutes(sms: SmsConfig, text: str,
                                                        found: Command | Ignored) -> None:
    assert read_command(ALLOWED, text, sms, KEY) == found


@pytest.mark.parametrize("number", ["+46 70-000 00 01", "0046700000001", "+46(70)0000001"])
def test_an_allowed_number_is_known_however_it_is_written(sms: SmsConfig, number: str) -> None:
    assert normalized(number) == ALLOWED
    assert read_command(number, f"{KEY} status", sms, KEY) == Command("status")


@pytest.mark.parametrize("number", ["+46700000002", "0700000001", "46700000001", ""])
def test_any_other_number_is_ignored_whatever_it_sends(sms: SmsConfig, number: str) -> None:
    assert read_command(number, f"{KEY} status", sms, KEY) == Ignored("not an allowed number")


def test_sms_is_off_without_allowed_numbers(tmp_path: Path) -> None:
    assert not make_config(tmp_path).sms.enabled


def test_the_key_is_masked_where_settings_are_shown(tmp_path: Path) -> None:
    config = make_config(tmp_path, f'[sms]\nallow = ["{ALLOWED}"]\nkey = "{KEY}"\n')
    assert config.sms.enabled and sms_key(config) == KEY
    assert shown_settings(config.effective)["sms"]["key"] == "********"


def test_the_key_file_is_read_and_checked(tmp_path: Path) -> None:
    key_file = tmp_path / "sms-key"
    key_file.write_text(f"{KEY}\n")
    config = make_config(tmp_path, f'[sms]\nallow = ["{ALLOWED}"]\nkey_file = "{key_file}"\n')
    assert sms_key(config) == KEY
    key_file.write_text("short\n")
    with pytest.raises(ConfigError) as error:
        sms_key(config)
    assert str(error.value) == (f"sms.key_file: {key_file} does not hold a key (at least 6 "
                                "characters without spaces on its first line)")
    key_file.unlink()
    with pytest.raises(ConfigError, match=f"^sms.key_file: cannot read {key_file} "):
        sms_key(config)


@pytest.mark.parametrize(("text", "message"), [
    ('allow = ["0700000001"]\nkey = "Hemlig-42"',
     "sms.allow: expected numbers in international form such as '+46700000000' (a plus, the "
     "country code, no spaces), got '0700000001'"),
    ('allow = ["+46700000001"]',
     "sms.key_file: commands by text message need their key: name the file that holds it "
     "(or set key)"),
    ('key = "Hemlig-42"',
     "sms.allow: name the numbers that may send commands, such as [\"+46700000000\"] "
     "(sms.key is set)"),
    ('allow = ["+46700000001"]\nkey = "Hem 42"',
     "sms.key: expected at least 6 characters without spaces (the value is not shown)"),
    ('allow = ["+46700000001"]\nkey = "Hemlig-42"\nkey_file = "/etc/traffic/sms-key"',
     "sms.key_file: set key or key_file, not both"),
    ('allow = ["+46700000001"]\nkey = "Hemlig-42"\nvia = "router"',
     "sms.via: no [[sources]] table is named 'router' (there are 'kernel')"),
    ('allow = ["+46700000001"]\nkey = "Hemlig-42"\nreboot = "modem"',
     "sms.reboot: expected one of '', 'router', 'box', got 'modem'"),
    ('allow = ["+46700000001"]\nkey = "Hemlig-42"\nsession_minutes = 300',
     "sms.session_minutes: 300 is more than sms.max_minutes (240)"),
    ('allow = ["+46700000001"]\nkey = "Hemlig-42"\nsession_run = "ssh -N"',
     "sms.session_run: expected an argument list such as [\"pon\", \"provider\"], not a shell "
     "string: 'ssh -N'"),
    ('allow = ["+46700000001"]\nkey = "Hemlig-42"\ncode = 1', "unknown key 'sms.code'"),
])
def test_bad_sms_settings_are_one_line_naming_the_key_and_file(tmp_path: Path, text: str,
                                                               message: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, f"[sms]\n{text}\n")
    assert str(error.value) == f"{tmp_path / 'traffic.toml'}: {message}"
    assert "Hemlig-42" not in str(error.value) and "Hem 42" not in str(error.value)


def test_check_config_and_collect_stop_in_one_line_without_a_source_for_the_messages(
        tmp_path: Path) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n'
                      f'[collector]\nruntime_dir = "{tmp_path}/run"\n'
                      f'[sms]\nallow = ["{ALLOWED}"]\nkey_file = "{tmp_path}/sms-key"\n')
    for command in ("check-config", "collect"):
        done = subprocess.run([sys.executable, "-m", "cli", "--config", str(config), command],
                              capture_output=True, text=True, timeout=60, env=clean_env())
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == (f"traffic: {config}: sources: no modem or hilink source to send "
                               "and read SMS through; add the modem's or the router's "
                               "[[sources]] table\n")
    config.write_text(config.read_text() + '[[sources]]\ntype = "modem"\nport = "/dev/null"\n')
    done = subprocess.run([sys.executable, "-m", "cli", "--config", str(config), "check-config"],
                          capture_output=True, text=True, timeout=60, env=clean_env())
    assert (done.returncode, done.stderr) == (2, f"traffic: sms.key_file: cannot read "
                                                 f"{tmp_path}/sms-key (No such file or "
                                                 "directory)\n")
