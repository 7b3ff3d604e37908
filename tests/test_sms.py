"""SMS as a channel (collector/sms.py): through real pyserial against the AT responder on a
pty (tests/sim/modem.py), and through real huawei-lte-api against the HiLink simulator
(tests/sim/hilink.py)."""

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from collector.sms import (
    MAX_PARTS,
    SEGMENT,
    HilinkSms,
    ModemSms,
    SmsError,
    parts,
    sms_channel,
)
from tests.conftest import make_config
from tests.sim.hilink import HilinkSim
from tests.sim.modem import ModemSim, hold
from traffic.config import Config, ConfigError

NUMBER = "+46700000001"


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def modem_config(tmp_path: Path, port: str, lock_dir: str = "/nonexistent",
                 extra: str = "") -> Config:
    return make_config(tmp_path, f'timezone = "Europe/Stockholm"\n[[sources]]\ntype = '
                                 f'"kernel"\n\n[[sources]]\ntype = "modem"\nport = "{port}"\n'
                                 f'lock_dir = "{lock_dir}"\n{extra}')


def channel(tmp_path: Path, sim: ModemSim, lock_dir: str = "/nonexistent") -> ModemSms:
    found = sms_channel(modem_config(tmp_path, sim.path, lock_dir))
    assert isinstance(found, ModemSms) and found.name == "modem"
    return found


def test_messages_received_are_listed_oldest_first_with_their_sender_and_time(
        tmp_path: Path, sim: ModemSim) -> None:
    sim.receive("+46700000002", "up 30 key", stamp="26/12/03,12:30:05+04")
    sim.receive(NUMBER, "status key", stamp="26/12/03,11:29:00+04")
    before = int(time.time() * 1000)
    sim.receive("+4670000000", "Hej då: 5 € på @konto_1 [ok]")
    listed = channel(tmp_path, sim).inbox()
    assert [(sms.id, sms.number, sms.text) for sms in listed] == [
        ("1", NUMBER, "status key"), ("0", "+46700000002", "up 30 key"),
        ("2", "+4670000000", "Hej då: 5 € på @konto_1 [ok]")]
    assert listed[0].at == ms("2026-12-03T11:29:00+01:00")
    assert listed[1].at - listed[0].at == 3_665_000
    assert before - 1000 <= listed[2].at <= int(time.time() * 1000)
    assert sim.asked("AT+CMGF=1") and sim.asked('AT+CSCS="GSM"')


@pytest.mark.parametrize("lengths", [True, False])
def test_a_message_spread_over_lines_keeps_them(tmp_path: Path, sim: ModemSim,
                                                lengths: bool) -> None:
    sim.scenario.csdh = lengths
    sim.receive(NUMBER, "status\nkey")
    sim.receive(NUMBER, "usage key")
    assert [sms.text for sms in channel(tmp_path, sim).inbox()] == ["status\nkey", "usage key"]


def test_a_text_that_reads_as_the_modems_own_answer_is_read_as_text(
        tmp_path: Path, sim: ModemSim) -> None:
    """A stranger's "ERROR" must not make the inbox unreadable (nothing could delete it)."""
    texts = ["ERROR", "OK", "up 5\nERROR", '+CMGL: 7,"REC READ","+1555",,""', "5 € left"]
    for text in texts:
        sim.receive(NUMBER, text)
    sms = channel(tmp_path, sim)
    listed = sms.inbox()
    assert [message.text for message in listed] == texts
    for message in listed:
        sms.delete(message)
    assert sim.stored == []


def test_a_message_deleted_is_gone_from_the_modem(tmp_path: Path, sim: ModemSim) -> None:
    sim.receive(NUMBER, "status key")
    sim.receive(NUMBER, "usage key")
    sms = channel(tmp_path, sim)
    first, second = sms.inbox()
    sms.delete(first)
    assert [stored.text for stored in sim.stored] == ["usage key"]
    assert sms.inbox() == [second]
    sms.delete(second)
    assert sim.stored == [] and sms.inbox() == []


def test_deleting_a_message_no_longer_there_is_one_line(tmp_path: Path, sim: ModemSim) -> None:
    sim.receive(NUMBER, "status key")
    sms = channel(tmp_path, sim)
    [listed] = sms.inbox()
    sms.delete(listed)
    with pytest.raises(SmsError) as error:
        sms.delete(listed)
    assert str(error.value) == ("modem: could not delete message 0: +CMS ERROR: 321 (invalid "
                                "memory index)")


def test_a_message_is_sent_in_text_mode_after_the_prompt(tmp_path: Path, sim: ModemSim) -> None:
    channel(tmp_path, sim).send(NUMBER, "Link up: 3.2 GB of 40 GB used, 12 days left. @home_1")
    assert sim.sent == [(NUMBER, "Link up: 3.2 GB of 40 GB used, 12 days left. @home_1")]
    assert sim.asked(f'AT+CMGS="{NUMBER}"')


def test_characters_outside_the_gsm_alphabet_are_written_plainly(
        tmp_path: Path, sim: ModemSim) -> None:
    channel(tmp_path, sim).send(NUMBER, "Łódź \u2013 “80%” used… 5 € [ok] åäö ✓")
    assert sim.sent == [(NUMBER, 'Lodz - "80%" used... 5 EUR (ok) åäö ?')]


def test_a_long_text_goes_as_numbered_messages_cut_between_words(
        tmp_path: Path, sim: ModemSim) -> None:
    text = " ".join(f"word{index}" for index in range(60))  # 409 characters
    channel(tmp_path, sim).send(NUMBER, text)
    sent = [message for number, message in sim.sent if number == NUMBER]
    assert len(sent) == 3 and [message[:4] for message in sent] == ["1/3 ", "2/3 ", "3/3 "]
    assert all(len(message) <= SEGMENT for message in sent)
    assert " ".join(message[4:] for message in sent) == text


def test_a_text_longer_than_the_parts_allowed_is_refused_and_nothing_sent(
        tmp_path: Path, sim: ModemSim) -> None:
    with pytest.raises(SmsError, match=f"more than {MAX_PARTS} messages; shorten it"):
        channel(tmp_path, sim).send(NUMBER, "x " * 300)
    assert sim.sent == [] and not sim.asked("AT+CMGS")


def test_a_word_longer_than_a_message_is_cut_inside() -> None:
    assert parts("x" * 160) == ["x" * 160]
    assert parts("x" * 161) == ["1/2 " + "x" * 156, "2/2 " + "x" * 5]
    assert parts(" Link down\r\nsince 14:02\r") == ["Link down\nsince 14:02"]


def test_a_bad_number_is_refused_before_the_modem_is_asked(
        tmp_path: Path, sim: ModemSim) -> None:
    with pytest.raises(SmsError) as error:
        channel(tmp_path, sim).send("0700000001", "hello")
    assert str(error.value) == ("modem: expected a phone number as + and the country code and "
                                "number, such as +46700000000, got '0700000001'")
    assert sim.commands == []


def test_a_cms_error_is_one_line_and_nothing_counts_as_sent(
        tmp_path: Path, sim: ModemSim) -> None:
    sim.scenario.send_error = 330
    with pytest.raises(SmsError) as error:
        channel(tmp_path, sim).send(NUMBER, "Link down")
    assert str(error.value) == (f"modem: could not send to {NUMBER}: +CMS ERROR: 330 (SMSC "
                                "address unknown)")
    assert sim.sent == []


@pytest.mark.parametrize("how", ["uucp", "flock"])
def test_a_port_held_by_another_process_sends_nothing_and_leaves_the_holder_alone(
        tmp_path: Path, sim: ModemSim, lock_dir: str, how: str) -> None:
    sms = channel(tmp_path, sim, lock_dir)
    sms.held_wait_s = 0.5
    with hold(sim.path, lock_dir, how) as holder:
        for act in (lambda: sms.send(NUMBER, "Link down"), sms.inbox):
            with pytest.raises(SmsError) as error:
                act()
            assert "\n" not in str(error.value)
            assert str(error.value).startswith(f"modem: {sim.path} is held by ")
            if how == "uucp":
                assert f"(pid {holder.pid}); not used while it is" in str(error.value)
        assert sim.commands == [] and sim.sent == []
        assert holder.poll() is None
        if how == "uucp":
            assert os.path.exists(os.path.join(lock_dir, "LCK.." + os.path.basename(sim.path)))
    sms.send(NUMBER, "Link down")
    assert sim.sent == [(NUMBER, "Link down")]


def test_the_channel_is_the_only_sms_source_or_the_one_named(
        tmp_path: Path, sim: ModemSim) -> None:
    one = modem_config(tmp_path, sim.path)
    assert isinstance(sms_channel(one), ModemSms)
    assert sms_channel(one) is sms_channel(one, "modem")
    two = modem_config(tmp_path, sim.path, extra='\n[[sources]]\ntype = "hilink"\n'
                                                 'name = "router"\n')
    assert isinstance(sms_channel(two, "router"), HilinkSms)
    assert sms_channel(two, "modem").name == "modem"
    file = tmp_path / "traffic.toml"
    for config, name, message in [
            (two, None, "sources: 2 sources can send and read SMS (modem 'modem', hilink "
                        "'router'); name the one to use"),
            (two, "kernel", "sources: 'kernel' is a kernel source; SMS go through a modem or "
                            "hilink source"),
            (two, "mdoem", "sources: no [[sources]] table is named 'mdoem' (to send and read "
                           "SMS through)"),
            (make_config(tmp_path, '[[sources]]\ntype = "kernel"\n'), None,
             "sources: no modem or hilink source to send and read SMS through; add the "
             "modem's or the router's [[sources]] table")]:
        with pytest.raises(ConfigError) as error:
            sms_channel(config, name)
        assert str(error.value) == f"{file}: {message}"


ROUTER_PASSWORD = "router-sms-secret-9"


@pytest.fixture
def router() -> Iterator[HilinkSim]:
    with HilinkSim(password=ROUTER_PASSWORD) as running:
        yield running


def router_channel(tmp_path: Path, router: HilinkSim, password: str = ROUTER_PASSWORD
                   ) -> HilinkSms:
    config = make_config(tmp_path, f'timezone = "Europe/Stockholm"\n[[sources]]\ntype = '
                                   f'"hilink"\nname = "router"\nurl = "{router.url}"\n'
                                   f'password = "{password}"\ntimeout = "3s"\n')
    found = sms_channel(config)
    assert isinstance(found, HilinkSms) and found.name == "router"
    return found


def test_the_routers_messages_are_listed_oldest_first_across_pages(
        tmp_path: Path, router: HilinkSim) -> None:
    router.receive(NUMBER, "usage key", at=datetime.fromisoformat("2026-12-03T12:00:00+01:00"))
    router.receive("+46700000002", "status key",
                   at=datetime.fromisoformat("2026-12-03T11:00:00+01:00"))
    for index in range(HilinkSms.PAGE):
        router.receive("+46700000003", f"later {index} åäö €")
    listed = router_channel(tmp_path, router).inbox()
    assert [(sms.number, sms.text) for sms in listed[:3]] == [
        ("+46700000002", "status key"), (NUMBER, "usage key"),
        ("+46700000003", "later 0 åäö €")]
    assert len(listed) == HilinkSms.PAGE + 2
    assert listed[0].at == ms("2026-12-03T11:00:00+01:00")
    assert listed[1].at == ms("2026-12-03T12:00:00+01:00")
    assert router.calls["sms/sms-list"] == 2 and len(router.login_attempts) == 1


def test_an_empty_inbox_is_not_listed(tmp_path: Path, router: HilinkSim) -> None:
    assert router_channel(tmp_path, router).inbox() == []
    assert "sms/sms-list" not in router.calls


def test_a_message_the_router_received_is_deleted(tmp_path: Path, router: HilinkSim) -> None:
    router.receive(NUMBER, "status key")
    router.receive(NUMBER, "usage key")
    sms = router_channel(tmp_path, router)
    first, second = sms.inbox()
    sms.delete(first)
    assert [message["Content"] for message in router.inbox] == ["usage key"]
    assert sms.inbox() == [second]
    with pytest.raises(SmsError) as error:
        sms.delete(first)
    assert str(error.value) == (f"router: could not delete message {first.id}: {router.url} "
                                "answered error 100006")


def test_the_router_sends_the_text_as_it_is(tmp_path: Path, router: HilinkSim) -> None:
    sms = router_channel(tmp_path, router)
    sms.send(NUMBER, "Link down since 14:02 \u2013 5 € left ✓")
    assert router.sent == [(NUMBER, "Link down since 14:02 \u2013 5 € left ✓")]
    with pytest.raises(SmsError, match="shorten it"):
        sms.send(NUMBER, "x " * 300)
    with pytest.raises(SmsError, match="got '112'"):
        sms.send("112", "hello")
    assert len(router.sent) == 1


def test_a_session_that_ended_is_logged_in_again_once(tmp_path: Path, router: HilinkSim) -> None:
    sms = router_channel(tmp_path, router)
    sms.send(NUMBER, "one")
    router.expire_session()
    sms.send(NUMBER, "two")
    assert [text for _, text in router.sent] == ["one", "two"]
    assert [attempt.code for attempt in router.login_attempts] == [0, 0]


def test_a_refused_send_or_login_is_one_line_without_the_password(
        tmp_path: Path, router: HilinkSim) -> None:
    router.send_error = 113004
    with pytest.raises(SmsError) as error:
        router_channel(tmp_path, router).send(NUMBER, "Link down")
    assert str(error.value) == f"router: could not send to {NUMBER}: {router.url} answered " \
                               "error 113004"
    router.send_error = 0
    wrong = router_channel(tmp_path, router, password="wrong-password-1")
    for _ in range(2):
        with pytest.raises(SmsError) as error:
            wrong.send(NUMBER, "Link down")
        assert "refused the login of user 'admin'" in str(error.value)
        assert "wrong-password-1" not in str(error.value) and "\n" not in str(error.value)
    assert router.sent == [] and [attempt.code for attempt in router.login_attempts] == [
        0, 108006]
