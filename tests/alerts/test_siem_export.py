"""The SIEM export: verdicts and the audit trail as OCSF JSON lines to S3 (moto) and to a signed
webhook (a local receiver); each sink resumes from its own position; shapes checked against the
OCSF 1.5.0 class definitions."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import boto3
import jsonschema
import pytest
from swordfish.alerts import signing
from swordfish.alerts.export import S3Sink, SiemExporter, WebhookSink
from swordfish.store import audit
from swordfish.store.database import proxy_connect
from swordfish.store.verdicts import VerdictRecord, save_verdicts

from tests.alerts.ocsf_schema import API_ACTIVITY_SCHEMA, EMAIL_ACTIVITY_SCHEMA
from tests.alerts.receiver import Receiver

SECRET = "export-secret-" + "s" * 30


def verdict(database, tenant, message_id, kind="phishing", sender="\"PayPal\" <service@paypa1.example>"):
    with proxy_connect(database.owner_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
        save_verdicts(conn, [VerdictRecord(
            tenant_id=tenant, message_id=message_id, verdict=kind, score=7.5,
            reasons=[{"name": "CREDENTIAL_PHISHING_LANGUAGE", "weight": 4.0, "evidence": "verify"}],
            parse_problems=[], subject="Verify your account", sender=sender,
            submitted_at=datetime.now(UTC), sqs_sent_at=None, correlation_id="corr-9")])


def audited(alert_db, action, **kw):
    with alert_db.connection() as conn, conn.transaction():
        audit.record(conn, actor="admin@msp.example", actor_role="msp_admin", action=action,
                     source_ip="198.51.100.7", **kw)


@pytest.fixture()
def s3(moto_server):
    client = boto3.client("s3", endpoint_url=moto_server.url, region_name="eu-west-1")
    bucket = f"export-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client, bucket


def objects(s3):
    client, bucket = s3
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    return {k: [json.loads(line) for line in client.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()]
            for k in keys}


def exporter(alert_db, sinks):
    # The lag is on the injected clock: 200 s ahead, everything committed so far is old enough.
    return SiemExporter(alert_db, sinks, clock=lambda: time.time() + 200, lag_seconds=120, release="test")


def test_verdicts_and_audit_reach_s3_as_ocsf_json_lines_once(database, alert_db, s3):
    verdict(database, "acme-corp", "m-1")
    verdict(database, "globex", "g-1", kind="clean", sender="newsletter@globex.example")
    audited(alert_db, "alert_rule.add", tenant_id="acme-corp", object_type="alert_rule", object_id="1",
            after={"events": ["malware"]})
    audited(alert_db, "login.failed", outcome="refused")
    run = exporter(alert_db, [S3Sink(s3[0], s3[1])])
    assert run.run() == {"s3": {"verdicts": 2, "audit": 2}}
    written = objects(s3)
    verdict_lines = [line for k, lines in written.items() if k.startswith("ocsf/verdicts/") for line in lines]
    audit_lines = [line for k, lines in written.items() if k.startswith("ocsf/audit/") for line in lines]
    for line in verdict_lines:
        jsonschema.validate(line, EMAIL_ACTIVITY_SCHEMA)
        assert line["type_uid"] == 400903  # Email Activity: Scan
    for line in audit_lines:
        jsonschema.validate(line, API_ACTIVITY_SCHEMA)
        assert line["type_uid"] == 600300 + line["activity_id"]
    by_uid = {line["metadata"]["uid"]: line for line in verdict_lines}
    phish = by_uid["acme-corp/m-1"]
    assert phish["email"]["from"] == "service@paypa1.example" and phish["metadata"]["tenant_uid"] == "acme-corp"
    assert (phish["severity_id"], phish["disposition_id"]) == (4, 15)  # High, Detected
    assert phish["unmapped"]["reasons"] == [{"name": "CREDENTIAL_PHISHING_LANGUAGE", "weight": 4.0}]
    assert (by_uid["globex/g-1"]["severity_id"], by_uid["globex/g-1"]["disposition_id"]) == (1, 1)
    assert {(a["api"]["operation"], a["activity_id"], a["status_id"]) for a in audit_lines} == {
        ("alert_rule.add", 1, 1), ("login.failed", 99, 2)}
    # Nothing new: nothing written. One new verdict: only it.
    assert run.run() == {"s3": {"verdicts": 0, "audit": 0}}
    verdict(database, "acme-corp", "m-2")
    assert run.run() == {"s3": {"verdicts": 1, "audit": 0}}
    assert sum(len(v) for v in objects(s3).values()) == 5


def test_rows_younger_than_the_lag_wait(database, alert_db, s3):
    verdict(database, "acme-corp", "m-1")
    run = SiemExporter(alert_db, [S3Sink(s3[0], s3[1])], clock=time.time, lag_seconds=120)
    assert run.run() == {"s3": {"verdicts": 0, "audit": 0}}


def test_the_webhook_sink_is_signed_and_a_failure_is_sent_again_next_run(database, alert_db, s3):
    verdict(database, "acme-corp", "m-1")
    with Receiver(statuses=[503]) as receiver:
        run = exporter(alert_db, [WebhookSink(receiver.url, SECRET, timeout=2), S3Sink(s3[0], s3[1])])
        first = run.run()
        assert first["webhook"]["verdicts"].startswith("failed") and first["s3"]["verdicts"] == 1
        assert run.run() == {"webhook": {"verdicts": 1, "audit": 0}, "s3": {"verdicts": 0, "audit": 0}}
        got = receiver.received[-1]
    assert got.headers["content-type"] == "application/x-ndjson" and got.headers["x-swordfish-stream"] == "verdicts"
    assert signing.verify(SECRET, got.body, got.headers["x-swordfish-timestamp"], got.headers["x-swordfish-signature"],
                          now=time.time() + 200)
    [line] = [json.loads(x) for x in got.body.splitlines()]
    jsonschema.validate(line, EMAIL_ACTIVITY_SCHEMA)


def test_the_schema_catches_a_wrong_shape():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"class_uid": 4009, "category_uid": 4, "activity_id": 3, "type_uid": 400903, "time": 1,
                             "severity_id": 1, "direction_id": 1, "metadata": {"version": "1.5.0",
                                                                               "product": {"vendor_name": "x"}},
                             "email": {"from": "a@b.example"}}, EMAIL_ACTIVITY_SCHEMA)  # email.to missing
