"""The console's DLQ page (MSP admins): each message with its reason, redriven or discarded, audited."""

from __future__ import annotations

import re
import uuid

import boto3
import psycopg
from swordfish.pipeline.queues import DeadLetters

from tests.console.helpers import get, post_form

ADMIN = "admin@msp.example"


def test_an_admin_redrives_and_discards_dead_letters(console, fauxqs_server):
    sqs = boto3.client("sqs", endpoint_url=fauxqs_server.url, region_name="eu-west-1")
    suffix = uuid.uuid4().hex[:8]
    queue = sqs.create_queue(QueueName=f"emails-{suffix}")["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"emails-dlq-{suffix}")["QueueUrl"]
    for message_id, code in (("m-1", "unknown_tenant"), ("m-2", "invalid_submission")):
        sqs.send_message(QueueUrl=dlq, MessageBody=f'{{"tenant_id": "acme-corp", "message_id": "{message_id}"}}',
                         MessageAttributes={"failure_code": {"DataType": "String", "StringValue": code},
                                            "failure_reason": {"DataType": "String", "StringValue": f"because {code}"}})
    console.deps.dead_letters = lambda: DeadLetters(sqs, dlq_url=dlq, queue_url=queue, hold_seconds=5)
    console.add_user(ADMIN, "msp_admin", [])
    admin = console.client()
    console.login(admin, ADMIN)
    page = get(admin, "/console/operations/dlq").get_data(as_text=True)
    assert "because unknown_tenant" in page and "because invalid_submission" in page
    ids = dict(re.findall(r'name="ids" value="([^"]+)"[^>]*aria-label="select (m-\d)"', page))
    by_message = {m: i for i, m in ids.items()}
    assert post_form(admin, "/console/operations/dlq", "/console/operations/dlq/redrive",
                     {"ids": by_message["m-1"]}).status_code == 302
    assert post_form(admin, "/console/operations/dlq", "/console/operations/dlq/discard",
                     {"ids": by_message["m-2"], "reason": "forged\r\nline"}).status_code == 400  # nothing discarded
    assert post_form(admin, "/console/operations/dlq", "/console/operations/dlq/discard",
                     {"ids": by_message["m-2"], "reason": "broken submitter"}).status_code == 302
    [moved] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert '"m-1"' in moved["Body"]
    assert "The DLQ is empty" in get(admin, "/console/operations/dlq").get_data(as_text=True)
    with psycopg.connect(console.superuser_url) as conn:
        rows = conn.execute("SELECT actor, action, object_id, after->>'why' FROM console_audit "
                            "WHERE action LIKE 'dlq.%%' ORDER BY audit_id").fetchall()
    assert rows == [(ADMIN, "dlq.redrive", "m-1", ""), (ADMIN, "dlq.discard", "m-2", "broken submitter")]
    analyst = console.client()
    console.add_user("analyst@acme.example", "analyst", ["acme-corp"])
    console.login(analyst, "analyst@acme.example")
    assert get(analyst, "/console/operations/dlq").status_code == 403
