"""End to end on the embedded stack, as `make serve` runs it: malware submitted through the queue
becomes a verdict, its alert goes through the alerts queue to the alerts handler and reaches a
local receiver signed; the SIEM export writes the verdict to the stack's export bucket."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
from swordfish import constants
from swordfish.alerts import signing
from swordfish.pipeline.submission import inline_submission

from devstack.poller import FakeLambdaContext, to_lambda_record
from tests.alerts.receiver import Receiver
from tests.pipeline.helpers import drain, failed_ids, invoke, receive_event, send_bodies
from tests.unit.fakes import SAMPLES

MALWARE_MAIL = (SAMPLES / "invoice-double-extension-zip.eml").read_bytes()


def test_malware_on_the_stack_alerts_the_msp_and_reaches_the_siem_export(stack_env, settings_env):
    from handlers.alerts import handler as alerts_handler
    from swordfish import wiring

    stack = stack_env
    settings_env(siem_export_lag_seconds=0, alert_webhooks_allow_http="true")
    wiring.reset()
    with psycopg.connect(stack.info.superuser_url, autocommit=True) as conn:
        conn.execute("TRUNCATE alert_rules, export_cursors")
    drain(stack, stack.info.alerts_queue_url, timeout=1)
    with Receiver() as receiver:
        _, secret = wiring.alert_rules_admin().add(tenant_id=None, actor="ops@msp.example", actor_role="cli",
                                                   events=["malware"], channel="webhook", target=receiver.url)
        send_bodies(stack, [inline_submission("globex", "e2e-malware-1", MALWARE_MAIL,
                                              datetime.now(UTC)).model_dump_json()])
        assert failed_ids(invoke(receive_event(stack, 1))) == set()
        messages = drain(stack, stack.info.alerts_queue_url)
        assert [json.loads(m["Body"])["event"]["kind"] for m in messages] == ["malware"]
        arn = f"arn:aws:sqs:eu-west-1:000000000000:{constants.ALERTS_QUEUE_NAME}"
        response = alerts_handler({"Records": [to_lambda_record(m, arn, "eu-west-1") for m in messages]},
                                  FakeLambdaContext())
        assert failed_ids(response) == set()
        [got] = receiver.received
    assert signing.verify(secret, got.body, got.headers["x-swordfish-timestamp"], got.headers["x-swordfish-signature"],
                          now=int(got.headers["x-swordfish-timestamp"]))
    assert json.loads(got.body)["details"]["message_id"] == "e2e-malware-1"

    report = wiring.siem_exporter().run()
    assert report["s3"]["verdicts"] >= 1
    s3 = stack.client("s3")
    bucket = f"{constants.SIEM_EXPORT_BUCKET_PREFIX}-000000000000-eu-west-1"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="ocsf/verdicts/").get("Contents", [])]
    lines = [json.loads(line) for k in keys for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()]
    [line] = [x for x in lines if x["metadata"]["uid"] == "globex/e2e-malware-1"]
    assert line["class_uid"] == 4009 and line["severity_id"] == 5
