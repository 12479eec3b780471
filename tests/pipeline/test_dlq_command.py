"""`swordfish dlq list | redrive | discard`: each dead-lettered message with its reason, redriven or
discarded by its id, every action audited with the operator, the other messages left in place."""

from __future__ import annotations

import json

import psycopg
from swordfish.cli import main
from swordfish.pipeline.submission import inline_submission
from swordfish.store.database import proxy_connect

from tests.pipeline.helpers import invoke, receive_event, send_bodies, verdict_rows

CLEAN = b"From: a@partner.example\r\nTo: b@globex.example\r\nSubject: hi\r\n\r\nhello\r\n"


def body(tenant: str, message_id: str) -> str:
    from datetime import UTC, datetime

    return inline_submission(tenant, message_id, CLEAN, datetime.now(UTC)).model_dump_json()


def test_list_redrive_and_discard_are_audited_and_leave_the_rest(stack_env, settings_env, capsys):
    settings_env(operator="olivia@msp.example")
    send_bodies(stack_env, [body("no-such-tenant", "lost-1"), body("no-such-tenant", "lost-2"), "{not json"])
    invoke(receive_event(stack_env, 3))
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    listed = {d["message_id"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed["lost-1"]["code"] == "unknown_tenant" and "no-such-tenant" in listed["lost-1"]["reason"]
    assert listed[None]["code"] == "invalid_submission"

    with proxy_connect(stack_env.info.owner_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', 'no-such-tenant', true)")
        conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ('no-such-tenant', 'late')")
        conn.execute("INSERT INTO tenant_policies (tenant_id, policy) VALUES ('no-such-tenant', '{}')")
    try:
        assert main(["dlq", "redrive", listed["lost-1"]["id"]]) == 0
        assert main(["dlq", "discard", listed[None]["id"], "--reason", "a broken submitter, fixed"]) == 0
        assert main(["dlq", "discard", "no-such-id"]) == 1
        invoke(receive_event(stack_env, 1))
        assert [r["message_id"] for r in verdict_rows(stack_env)] == ["lost-1"]
        capsys.readouterr()
        assert main(["dlq", "list", "--json"]) == 0
        assert [d["message_id"] for d in json.loads(capsys.readouterr().out)] == ["lost-2"]
        with psycopg.connect(stack_env.info.superuser_url) as conn:
            rows = conn.execute("SELECT actor, actor_role, action, tenant_id, object_id, after->>'code' "
                                "FROM console_audit WHERE action LIKE 'dlq.%%' ORDER BY audit_id").fetchall()
        assert rows == [("olivia@msp.example", "cli", "dlq.redrive", "no-such-tenant", "lost-1", "unknown_tenant"),
                        ("olivia@msp.example", "cli", "dlq.discard", None, listed[None]["id"], "invalid_submission")]
    finally:
        with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
            conn.execute("DELETE FROM verdicts WHERE tenant_id = 'no-such-tenant'")
            conn.execute("DELETE FROM tenants WHERE tenant_id = 'no-such-tenant'")
