"""Alerts in the web app: the event list, the schema that describes them, /metrics and the
dashboard's "What happened" with the keeper off. The store is written through its own calls,
as the collector's rules and deliveries write it."""

import re

import jsonschema_rs
from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import HOOK_ERROR, THRESHOLD_80, seed_alerts
from web.openapi import EVENTS


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in a Prometheus text answer."""
    return {labels: float(value) for labels, value in
            re.findall(rf"^{name}\{{(.*)\}} (\S+)$", text, re.MULTILINE)}


def test_events_list_alerts_and_how_each_delivery_went(app: Flask, client: FlaskClient) -> None:
    at = seed_alerts(app.config["TRAFFIC"])
    answer = client.get("/api/v1/events").get_json()
    assert jsonschema_rs.Draft202012Validator(EVENTS).is_valid(answer)
    alerts = [(event["kind"], event["detail"].get("rule")) for event in answer["events"]
              if event["kind"].startswith("alert")]
    assert alerts == [("alert", "burst"), *[("alert_failed", "threshold")] * 3,
                      ("alert_sent", "threshold"), ("alert", "threshold"),
                      ("alert", "threshold"), ("alert_unconfirmed", "link_down"),
                      ("alert", "link_down"), ("alert_given_up", "daily_summary"),
                      ("alert", "daily_summary")]
    by_kind = {event["kind"]: event for event in reversed(answer["events"])}
    raised = [event for event in answer["events"] if event["kind"] == "alert"]
    assert raised[1]["detail"] == {"rule": "threshold", "text": THRESHOLD_80, "site": "home",
                                   "mark": "threshold:80:1791410400000"}
    assert raised[2]["detail"]["quiet"] is True
    assert by_kind["alert_sent"]["detail"] == {
        "rule": "threshold", "mark": "threshold:80:1791410400000", "target": 0,
        "url": "mailtos://********", "attempts": 1}
    failed = by_kind["alert_failed"]
    assert (failed["detail"]["url"], failed["detail"]["error"], failed["detail"]["attempt"],
            failed["detail"]["retry_at"]) == ("json://********", HOOK_ERROR, 3,
                                              at["thresholds"] + 753_000)
    assert by_kind["alert_given_up"]["detail"]["error"] == (
        "alerts.notify[2] is not configured any more")
    assert failed["at_iso"] == "2026-11-03T11:57:33+01:00"


def test_the_schema_holds_each_alert_kind_to_its_fields(app: Flask, client: FlaskClient
                                                        ) -> None:
    seed_alerts(app.config["TRAFFIC"])
    answer = client.get("/api/v1/events").get_json()
    spec = client.get("/api/v1/openapi.json").get_json()
    event_schema = spec["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]["properties"]["events"]["items"]
    described = {rule["if"]["properties"]["kind"]["const"] for rule in event_schema["allOf"]}
    assert described == {"alert", "alert_sent", "alert_failed", "alert_given_up",
                         "alert_unconfirmed"}
    validator = jsonschema_rs.Draft202012Validator(event_schema)
    assert all(validator.is_valid(event) for event in answer["events"])
    sent = next(event for event in answer["events"] if event["kind"] == "alert_sent")
    for wrong in ({**sent["detail"], "target": "0"}, {"rule": "threshold"},
                  {**sent["detail"], "rule": "quota"}):
        assert not validator.is_valid({**sent, "detail": wrong}), wrong
    raised = next(event for event in answer["events"] if event["kind"] == "alert")
    assert not validator.is_valid({**raised, "detail": {**raised["detail"], "text": 280 * "x" +
                                                        "y"}})


def test_metrics_count_alerts_and_deliveries_per_rule(app: Flask, client: FlaskClient) -> None:
    seed_alerts(app.config["TRAFFIC"])
    text = client.get("/metrics").get_data(as_text=True)
    raised = metric_values(text, "traffic_alerts_total")
    assert raised['site="home",rule="threshold"'] == 2  # the quiet 50% is raised too
    assert (raised['site="home",rule="link_down"'], raised['site="home",rule="burst"'],
            raised['site="home",rule="daily_summary"']) == (1, 1, 1)
    assert raised['site="home",rule="new_ip"'] == 0  # every rule is listed
    assert len(raised) == 11
    deliveries = metric_values(text, "traffic_alert_deliveries_total")
    assert {labels: value for labels, value in deliveries.items() if value} == {
        'site="home",rule="threshold",outcome="sent"': 1,
        'site="home",rule="threshold",outcome="failed"': 3,
        'site="home",rule="link_down",outcome="unconfirmed"': 1,
        'site="home",rule="daily_summary",outcome="given_up"': 1}
    assert len(deliveries) == 44  # 11 rules, 4 outcomes
    # the hook's message (retried) and the heavy use (not tried yet)
    assert metric_values(text, "traffic_alert_deliveries_pending") == {'site="home"': 2}
    assert "# TYPE traffic_alert_deliveries_total counter" in text
    assert "retention.events" in text


def test_metrics_without_alerts_say_zero(client: FlaskClient) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    assert set(metric_values(text, "traffic_alerts_total").values()) == {0}
    assert metric_values(text, "traffic_alert_deliveries_pending") == {'site="home"': 0}


def test_what_happened_is_shown_with_the_keeper_off_once_there_are_alerts(
        app: Flask, client: FlaskClient) -> None:
    assert not app.config["TRAFFIC"].keeper.enabled
    assert 'id="event-list"' not in client.get("/").get_data(as_text=True)
    seed_alerts(app.config["TRAFFIC"])
    page = client.get("/").get_data(as_text=True)
    assert 'id="happened-heading">What happened<' in page and 'id="event-list"' in page
