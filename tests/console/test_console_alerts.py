"""The console's alert rules page: MSP admins add and disable rules (audited, the webhook secret
shown once and stored sealed); other roles cannot; hostile input is a 400 with the reason."""

from __future__ import annotations

import re

import psycopg

from tests.console.helpers import get, post_form


def admin(console):
    console.add_user("admin@msp.example", "msp_admin", [])
    client = console.client()
    console.login(client, "admin@msp.example")
    return client


def test_an_admin_adds_and_disables_a_rule_and_both_are_audited(console):
    client = admin(console)
    assert get(client, "/console/alerts").status_code == 200
    response = post_form(client, "/console/alerts", "/console/alerts",
                         {"scope": "globex", "events": ["malware", "vip_impersonation"], "channel": "webhook",
                          "target": "https://hooks.globex.example/sf", "label": "Globex SOC", "min_tenants": "3"})
    html = response.get_data(as_text=True)
    assert response.status_code == 201, html
    secret = re.search(r'id="signing-secret">([^<]+)<', html).group(1)
    assert len(secret) >= 40 and "hooks.globex.example" in html
    assert secret not in get(client, "/console/alerts").get_data(as_text=True)  # shown once
    rule_id = int(re.search(r'id="rule-(\d+)"', html).group(1))
    response = post_form(client, "/console/alerts", f"/console/alerts/{rule_id}/disable", {"scope": "globex"})
    assert response.status_code == 200 and f'id="rule-{rule_id}"' not in response.get_data(as_text=True)
    with psycopg.connect(console.superuser_url) as conn:
        rows = conn.execute("SELECT action, actor, tenant_id, object_id, after, before FROM console_audit "
                            "WHERE action LIKE 'alert_rule.%%' ORDER BY audit_id").fetchall()
        sealed = conn.execute("SELECT secret_sealed FROM alert_rules").fetchone()[0]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("alert_rule.add", "admin@msp.example", "globex", str(rule_id)),
        ("alert_rule.disable", "admin@msp.example", "globex", str(rule_id))]
    assert rows[0][4]["events"] == ["malware", "vip_impersonation"] and secret not in str(rows[0][4])
    assert secret not in sealed


def test_an_msp_wide_campaign_rule_by_email(console):
    client = admin(console)
    response = post_form(client, "/console/alerts", "/console/alerts",
                         {"scope": "*", "events": "campaign", "channel": "email", "target": "SOC@msp.example",
                          "min_tenants": "10"})
    html = response.get_data(as_text=True)
    assert response.status_code == 201 and "signing-secret" not in html
    assert "soc@msp.example" in html and "every tenant" in html and "≥ 10 tenants" in html


def test_hostile_rules_are_refused_with_the_reason(console):
    client = admin(console)
    for form, words in (({"target": "http://hooks.example/x"}, "https"),
                        ({"target": "https://10.1.2.3/x"}, "private"),
                        ({"events": "everything"}, "events"),
                        ({"target": "https://hooks.example/\u0000"}, "control"),
                        ({"scope": "no-such-tenant"}, "tenant")):
        data = {"scope": "*", "events": "malware", "channel": "webhook", "target": "https://hooks.example/x"} | form
        response = post_form(client, "/console/alerts", "/console/alerts", data)
        assert response.status_code == 400 and words in response.get_data(as_text=True), (form, response.status_code)


def test_other_roles_cannot_manage_alerts(console):
    console.add_user("analyst@msp.example", "analyst", ["globex"])
    client = console.client()
    console.login(client, "analyst@msp.example")
    assert get(client, "/console/alerts").status_code == 403
    assert post_form(client, "/console/overview", "/console/alerts/1/disable", {}).status_code == 403


def test_undelivered_alerts_are_listed_and_redriven_from_the_console(console, fauxqs_server):
    import json
    import uuid

    import boto3
    from swordfish.alerts.dispatcher import SqsAlertQueue
    from swordfish.pipeline.queues import DeadLetters

    sqs = boto3.client("sqs", endpoint_url=fauxqs_server.url, region_name="eu-west-1")
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    SqsAlertQueue(sqs, queue_url=queue_url, dlq_url=dlq_url).dead_letter(
        {"type": "delivery", "rule_id": 3, "rule_tenant": None, "attempt": 1, "not_before": 0,
         "event": {"event_id": "e1", "kind": "malware", "tenant_ids": ["globex"], "occurred_at": "x"}},
        "webhook failed 8 times: the receiver answered HTTP 503", "alert_retries_exhausted")
    console.deps.alert_dead_letters = lambda: DeadLetters(sqs, dlq_url=dlq_url, queue_url=queue_url, hold_seconds=1)
    client = admin(console)
    assert 'id="alerts-dlq-link"' in get(client, "/console/alerts").get_data(as_text=True)
    page = get(client, "/console/alerts/dlq").get_data(as_text=True)
    assert "alert_retries_exhausted" in page and "HTTP 503" in page
    dlq_id = re.search(r'name="ids" value="([^"]+)"', page).group(1)
    response = post_form(client, "/console/alerts/dlq", "/console/alerts/dlq/redrive",
                         {"ids": dlq_id, "reason": "receiver fixed"})
    assert response.status_code == 302 and "redrive:+1+done" in response.headers["Location"].replace(" ", "+")
    [back] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(back["Body"])["rule_id"] == 3
    with psycopg.connect(console.superuser_url) as conn:
        [(after,)] = conn.execute("SELECT after FROM console_audit WHERE action = 'alert_dlq.redrive'").fetchall()
    assert after["why"] == "receiver fixed" and after["code"] == "alert_retries_exhausted"
