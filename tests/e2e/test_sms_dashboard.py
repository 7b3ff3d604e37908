"""Commands by text message on the dashboard: "What happened" shows with ``[sms]`` on (the
keeper off), each command, answer and session in plain words. The events are those a real
collector wrote in tests/test_sms_commands_netns.py."""

import time

from playwright.sync_api import Browser

from tests.e2e.conftest import TZ, Site, open_page, screenshot
from tests.stack import WebStack
from traffic.store import Event, open_store

NUMBER = "+46700000001"


def test_history_tells_the_text_message_commands(browser: Browser, site: Site, tmp_path,
                                                 page_errors: list[str]) -> None:
    site.config.write_text(site.config.read_text() + f'[sms]\nallow = ["{NUMBER}"]\n'
                                                     'key = "Hemlig-42"\n')
    store = open_store(f"sqlite://{tmp_path}/traffic.db", TZ)
    now = int(time.time() * 1000)
    up = "Link up for 1 minute (until 11:48), as asked by text message."
    command = ["ip", "link", "set", "wan0"]
    store.add_events([
        Event(now - 90_000, "sms_command", {"from": NUMBER, "command": "status"}),
        Event(now - 89_000, "sms_answer", {"to": NUMBER, "ok": True, "text": "0 B of 10 GB "
                                           "used, 29 days left."}),
        Event(now - 88_000, "sms_ignored", {"from": "+46700000999",
                                            "reason": "not an allowed number"}),
        Event(now - 87_000, "sms_ignored", {"from": NUMBER, "reason": "unknown command",
                                            "command": "dance 5"}),
        Event(now - 86_000, "sms_command", {"from": NUMBER, "command": "up 1"}),
        Event(now - 85_000, "attempt", {"step": 0, "command": [*command, "up"], "ok": True,
                                        "exit_code": 0, "timed_out": False, "output": ""}, 10),
        Event(now - 84_000, "session_run", {
            "command": ["ssh", "-N", "-R", "2222:localhost:22", "tunnel@example.org"],
            "ok": False, "exit_code": 255, "timed_out": False,
            "output": "ssh: connect to host example.org port 22: Connection refused",
            "again_in_s": 10}, 400),
        Event(now - 25_000, "disconnect", {"by": "sms session end", "command": [*command, "down"],
                                           "ok": True, "exit_code": 0, "timed_out": False,
                                           "output": ""}, 10),
        Event(now - 24_000, "session_end", {"from": NUMBER, "minutes": 1,
                                            "reason": "after 1 minute", "ok": True}, 60_000),
        Event(now - 23_000, "sms_answer", {"to": NUMBER, "ok": False,
                                           "text": "Link down (after 1 minute).",
                                           "error": "modem: /dev/ttyUSB2 is held by pppd "
                                                    "(pid 812); not used while it is"}),
    ])
    store.raise_alert("session:1", Event(now - 84_500, "alert", {
        "rule": "session", "text": up, "site": "home", "mark": "session:1"}), [])
    store.close()
    stack = WebStack(site.config, tmp_path).start()
    try:
        page = open_page(browser, stack.url + "/", page_errors, width=375, height=812)
        assert page.locator("#happened-heading").text_content() == "What happened"
        page.wait_for_selector("#event-list li")
        items = page.locator("#event-list li")
        assert [items.nth(i).locator(".event-text").text_content()
                for i in range(items.count())] == [
            "Could not answer by text message: modem: /dev/ttyUSB2 is held by pppd (pid 812); "
            "not used while it is.",
            "The link asked for by text message is down again (after 1 minute).",
            "The link was switched off as asked by text message.",
            "The session command ended early; it starts again.",
            up,
            "Tried to reconnect.",
            "A text message asked for up 1.",
            "A text message was ignored: unknown command.",
            "A text message was ignored: not an allowed number.",
            "Answered by text message: 0 B of 10 GB used, 29 days left.",
            "A text message asked for status."]
        assert [items.nth(i).locator(".event-detail").all_text_contents()
                for i in range(items.count())] == [
            [f"to {NUMBER}: Link down (after 1 minute)."], [f"asked by {NUMBER} for 1 min"],
            ["sms session end; ip link set wan0 down: done"],
            ["ssh -N -R 2222:localhost:22 tunnel@example.org: failed (exit code 255)"], [],
            ["ip link set wan0 up: done"], [f"from {NUMBER}"],
            [f"from {NUMBER}; it asked for dance 5"], ["from +46700000999"], [f"to {NUMBER}"],
            [f"from {NUMBER}"]]
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(page, "history-sms-375")
    finally:
        stack.stop()
    assert page_errors == []
