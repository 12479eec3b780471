"""Alert rules through the API: a tenant manages its own with its key, the MSP its own with the
operator token; every change is in the audit trail; hostile bodies get clear 400s."""

from __future__ import annotations

import threading

import psycopg
import pytest

from devstack.gateway import make_server
from tests.api.test_api_routes import call


@pytest.fixture()
def gateway(stack_env):
    from handlers import api
    from swordfish import wiring

    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute("TRUNCATE alert_rules")
    wiring.reset()
    server = make_server(api.handler, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", stack_env
    server.shutdown()
    server.server_close()
    wiring.reset()


RULE = {"events": ["malware", "vip_impersonation"], "channel": "webhook", "target": "https://hooks.globex.example/sf",
        "label": "SOC"}


def audit_rows(stack, action):
    with psycopg.connect(stack.info.superuser_url) as conn:
        return conn.execute("SELECT actor, actor_role, tenant_id, object_id, after, before FROM console_audit "
                            "WHERE action = %s ORDER BY audit_id", (action,)).fetchall()


def test_a_tenant_manages_its_own_rules_with_its_key(gateway):
    url, stack = gateway
    key = stack.info.api_keys["globex"]
    status, created = call(f"{url}/v1/tenants/globex/alert-rules", "POST", key, RULE)
    assert status == 201 and created["tenant_id"] == "globex" and len(created["signing_secret"]) >= 40
    status, listing = call(f"{url}/v1/tenants/globex/alert-rules", key=key)
    assert status == 200 and [r["rule_id"] for r in listing["rules"]] == [created["rule_id"]]
    assert "signing_secret" not in listing["rules"][0]
    # Another tenant's key: 403, and it cannot see or disable globex's rule through its own path.
    other = stack.info.api_keys["acme-corp"]
    assert call(f"{url}/v1/tenants/globex/alert-rules", key=other)[0] == 403
    assert call(f"{url}/v1/tenants/acme-corp/alert-rules/{created['rule_id']}", "DELETE", other)[0] == 404
    assert call(f"{url}/v1/tenants/globex/alert-rules/{created['rule_id']}", "DELETE", key)[0] == 200
    assert call(f"{url}/v1/tenants/globex/alert-rules", key=key)[1]["rules"] == []
    added = audit_rows(stack, "alert_rule.add")[-1]
    assert added[0].startswith("api-key:") and added[1:4] == ("api", "globex", str(created["rule_id"]))
    assert added[4]["target"] == RULE["target"] and "secret" not in str(added[4])
    assert audit_rows(stack, "alert_rule.disable")[-1][2:4] == ("globex", str(created["rule_id"]))


def test_msp_wide_rules_need_the_operator_token(gateway):
    url, stack = gateway
    body = {"events": ["campaign"], "channel": "email", "target": "soc@msp.example", "min_tenants": 5}
    assert call(f"{url}/v1/alert-rules", "POST", None, body)[0] == 401
    assert call(f"{url}/v1/alert-rules", "POST", stack.info.api_keys["globex"], body)[0] == 401  # a tenant key
    status, created = call(f"{url}/v1/alert-rules", "POST", stack.operator_token, body)
    assert status == 201 and created["tenant_id"] is None and created["signing_secret"] is None
    # The tenant sees the MSP's rule that covers it, but its key cannot disable it.
    key = stack.info.api_keys["globex"]
    assert [r["rule_id"] for r in call(f"{url}/v1/tenants/globex/alert-rules", key=key)[1]["rules"]] == \
        [created["rule_id"]]
    assert call(f"{url}/v1/tenants/globex/alert-rules/{created['rule_id']}", "DELETE", key)[0] == 404
    assert call(f"{url}/v1/alert-rules/{created['rule_id']}", "DELETE", stack.operator_token)[0] == 200
    assert audit_rows(stack, "alert_rule.add")[-1][:4] == ("operator-token", "operator", None, str(created["rule_id"]))


@pytest.mark.parametrize("body, words", [
    ({**RULE, "target": "http://hooks.globex.example/x"}, "https"),
    ({**RULE, "target": "https://169.254.169.254/latest"}, "private"),
    ({**RULE, "events": ["everything"]}, "events"),
    ({**RULE, "channel": "email", "target": "a@b.example\r\nBcc: x@y.example"}, "target"),
    ({**RULE, "extra": 1}, "extra"),
    ({**RULE, "events": []}, "events"),
])
def test_hostile_rules_get_clear_400s(gateway, settings_env, body, words):
    url, stack = gateway
    settings_env(alert_webhooks_allow_http="false")
    from swordfish import wiring

    wiring.reset()
    status, answer = call(f"{url}/v1/tenants/globex/alert-rules", "POST", stack.info.api_keys["globex"], body)
    assert status == 400 and words in answer["message"], answer
