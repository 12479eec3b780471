"""Deferred quarantines: Nango failing at quarantine time defers it, the verdict is stored anyway,
and the remediation function quarantines it once Nango answers again."""

from __future__ import annotations

import json

from swordfish import constants
from swordfish.pipeline.submission import MailboxSource, Submission

from devstack.poller import FakeLambdaContext, to_lambda_record
from tests.pipeline.helpers import drain, failed_ids, invoke, receive_event, send_bodies, verdict_rows

MOVE_PATH = "/proxy/v1.0/me/messages/AAMkAGI2-phish-2/move"


def mailbox_body(message_id: str) -> str:
    from datetime import UTC, datetime

    return Submission(tenant_id="acme-corp", message_id=message_id, submitted_at=datetime.now(UTC),
                      source=MailboxSource(connection_id="demo-m365", provider_config_key="microsoft",
                                           provider_message_id="AAMkAGI2-phish-2")).model_dump_json()


def test_a_quarantine_that_fails_is_deferred_then_retried_to_completion(stack_env):
    nango = stack_env.nango
    nango.quarantined.clear()
    nango.set_fault("error", paths=[MOVE_PATH])  # fetching works, quarantining answers 500
    try:
        send_bodies(stack_env, [mailbox_body("mbx-1")])
        assert failed_ids(invoke(receive_event(stack_env, 1))) == set()
    finally:
        nango.set_fault("ok")
    [row] = verdict_rows(stack_env)
    assert row["message_id"] == "mbx-1" and row["verdict"] in ("phishing", "malware")  # stored regardless
    assert nango.quarantined == []
    deferred = drain(stack_env, stack_env.info.remediation_queue_url)
    assert len(deferred) == 1 and json.loads(deferred[0]["Body"])["message_id"] == "mbx-1"

    from handlers import remediation
    from swordfish import wiring

    wiring.reset()
    arn = f"arn:aws:sqs:eu-west-1:000000000000:{constants.REMEDIATION_RETRY_QUEUE_NAME}"
    response = remediation.handler({"Records": [to_lambda_record(deferred[0], arn, "eu-west-1")]},
                                   FakeLambdaContext(function_name="swordfish-remediation"))
    assert response == {"batchItemFailures": []}
    assert [q.message_id for q in nango.quarantined] == ["AAMkAGI2-phish-2"]
    # ...and remembered, so an analyst can release it from the console.
    import psycopg

    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        assert conn.execute("SELECT state, connection_id, provider_message_id FROM mailbox_quarantines "
                            "WHERE tenant_id = 'acme-corp' AND message_id = 'mbx-1'").fetchall() == [
            ("quarantined", "demo-m365", "AAMkAGI2-phish-2")]
