"""Alerts reach a real local receiver signed; failures retry with backoff on the injected clock and
end in the alerts' own dead-letter queue; rules are scoped per tenant or MSP-wide."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest
from swordfish.alerts import signing
from swordfish.alerts.channels import SmtpEmailChannel, WebhookChannel
from swordfish.alerts.dispatcher import AlertDispatcher, SqsAlertPublisher, SqsAlertQueue
from swordfish.alerts.events import campaign_reached, events_for_verdict
from swordfish.alerts.rules import AlertRuleStore, RuleRefused, add_rule, check_target, disable_rule, list_rules

from tests.alerts.receiver import Receiver

MALWARE_REASONS = [{"name": "MALWARE_ATTACHMENT", "weight": 9.0, "evidence": "invoice.exe"}]


def malware(tenant="acme-corp", message_id="m-1"):
    [event] = events_for_verdict(tenant_id=tenant, message_id=message_id, verdict="malware", score=12.0,
                                 reasons=MALWARE_REASONS, subject="Invoice", sender="billing@evil.example",
                                 at=datetime(2027, 1, 15, 9, 30, tzinfo=UTC))
    return event


def make_rule(db, box, target, *, tenant="acme-corp", events=("malware",), channel="webhook", **kw):
    with db.connection() as conn, conn.transaction():
        row, secret = add_rule(conn, tenant_id=tenant, events=events, channel=channel, target=target,
                               created_by="admin@msp.example", box=box, allow_http=True, **kw)
    return row, secret


def dispatcher(db, box, queues, clock, **kw):
    return AlertDispatcher(AlertRuleStore(db, box),
                           SqsAlertQueue(queues.sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url,
                                         max_delay_seconds=0),
                           {"webhook": WebhookChannel(clock=clock, timeout=2, allow_private=True)}, clock=clock, **kw)


def publish(queues, *events):
    SqsAlertPublisher(queues.sqs, queues.queue_url).publish(list(events))
    [message] = queues.drain(queues.queue_url)
    return message["Body"]


def test_a_malware_alert_reaches_the_receiver_signed(alert_db, box, queues, clock):
    with Receiver() as receiver:
        row, secret = make_rule(alert_db, box, receiver.url)
        outcomes = dispatcher(alert_db, box, queues, clock).handle(publish(queues, malware()))
        assert outcomes == ["delivered"]
        [got] = receiver.received
    assert signing.verify(secret, got.body, got.headers["x-swordfish-timestamp"],
                          got.headers["x-swordfish-signature"], now=clock.now)
    assert got.headers["x-swordfish-timestamp"] == str(int(clock.now))
    body = json.loads(got.body)
    assert body["kind"] == "malware" and body["tenant_ids"] == ["acme-corp"]
    assert body["details"]["message_id"] == "m-1" and body["details"]["reasons"] == ["MALWARE_ATTACHMENT"]
    assert got.headers["x-swordfish-event-id"] == body["event_id"]
    assert got.headers["x-swordfish-delivery-attempt"] == "1"
    # A tampered body, another secret or an old timestamp do not verify.
    assert not signing.verify(secret, got.body + b" ", got.headers["x-swordfish-timestamp"],
                              got.headers["x-swordfish-signature"], now=clock.now)
    assert not signing.verify("other", got.body, got.headers["x-swordfish-timestamp"],
                              got.headers["x-swordfish-signature"], now=clock.now)
    assert not signing.verify(secret, got.body, got.headers["x-swordfish-timestamp"],
                              got.headers["x-swordfish-signature"], now=clock.now + 301)
    # The secret is stored sealed, never in clear, and never listed.
    with alert_db.tenant_transaction("acme-corp") as conn:
        stored = conn.execute("SELECT secret_sealed FROM alert_rules").fetchone()[0]
        listed = list_rules(conn, "acme-corp")
    assert secret not in stored and stored.startswith("fernet:")
    assert "secret_sealed" not in listed[0]


def test_failures_back_off_on_the_clock_then_deliver(alert_db, box, queues, clock):
    with Receiver(statuses=[503, 502]) as receiver:
        make_rule(alert_db, box, receiver.url)
        d = dispatcher(alert_db, box, queues, clock)
        assert d.handle(publish(queues, malware())) == ["retrying"]
        [retry] = queues.drain(queues.queue_url)
        assert json.loads(retry["Body"])["not_before"] == clock.now + 30
        # Back before its time (SQS may hand it over early): put back, nothing sent.
        assert d.handle(retry["Body"]) == ["waiting"]
        assert len(receiver.received) == 1
        [retry] = queues.drain(queues.queue_url)
        clock.advance(30)
        assert d.handle(retry["Body"]) == ["retrying"]  # 502: the second failure waits twice as long
        [retry] = queues.drain(queues.queue_url)
        assert json.loads(retry["Body"])["not_before"] == clock.now + 60
        clock.advance(60)
        assert d.handle(retry["Body"]) == ["delivered"]
        attempts = [r.headers["x-swordfish-delivery-attempt"] for r in receiver.received]
    assert attempts == ["1", "2", "3"]
    assert queues.drain(queues.queue_url) == [] and queues.drain(queues.dlq_url) == []


def test_retries_end_in_the_alerts_own_dead_letter_queue(alert_db, box, queues, clock):
    with Receiver(statuses=[500] * 3) as receiver:
        make_rule(alert_db, box, receiver.url)
        d = dispatcher(alert_db, box, queues, clock, max_attempts=3)
        body, outcomes = publish(queues, malware()), []
        while body:
            outcomes += d.handle(body)
            clock.advance(3600)
            pending = queues.drain(queues.queue_url)
            body = pending[0]["Body"] if pending else None
        assert len(receiver.received) == 3
        assert outcomes == ["retrying", "retrying", "dead_lettered"]
        [dead] = queues.drain(queues.dlq_url)
        attrs = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
        assert attrs["failure_code"] == "alert_retries_exhausted"
        assert "failed 3 times" in attrs["failure_reason"] and "HTTP 500" in attrs["failure_reason"]
        redriven = json.loads(dead["Body"])
        assert redriven["attempt"] == 1 and redriven["attempts_made"] == 3  # a redrive starts over
        # Redriven once the receiver answers again: delivered, as attempt 1.
        assert d.handle(dead["Body"]) == ["delivered"]
        assert receiver.received[-1].headers["x-swordfish-delivery-attempt"] == "1"


def test_a_refusal_is_dead_lettered_at_once(alert_db, box, queues, clock):
    with Receiver(statuses=[410]) as receiver:
        make_rule(alert_db, box, receiver.url)
        assert dispatcher(alert_db, box, queues, clock).handle(publish(queues, malware())) == ["dead_lettered"]
        assert len(receiver.received) == 1
    [dead] = queues.drain(queues.dlq_url)
    assert dead["MessageAttributes"]["failure_code"]["StringValue"] == "alert_refused"


def test_an_unreachable_receiver_is_retried(alert_db, box, queues, clock):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_rule(alert_db, box, f"http://127.0.0.1:{port}/x")
    assert dispatcher(alert_db, box, queues, clock).handle(publish(queues, malware())) == ["retrying"]


def test_rules_are_scoped_per_tenant_and_msp_wide(alert_db, box, queues, clock):
    with Receiver() as acme, Receiver() as msp, Receiver() as globex_vip:
        make_rule(alert_db, box, acme.url, tenant="acme-corp")
        make_rule(alert_db, box, msp.url, tenant=None, events=("malware", "campaign"), min_tenants=2)
        make_rule(alert_db, box, globex_vip.url, tenant="globex", events=("vip_impersonation",))
        d = dispatcher(alert_db, box, queues, clock)
        assert d.handle(publish(queues, malware("globex", "g-1"))) == ["delivered"]  # the MSP's rule only
        assert sorted(d.handle(publish(queues, malware("acme-corp", "a-1")))) == ["delivered", "delivered"]
        one = campaign_reached(campaign_id="c-7", tenant_ids=["acme-corp"], first_seen="2027-01-15T09:00:00+00:00",
                               last_seen="2027-01-15T09:05:00+00:00")
        two = campaign_reached(campaign_id="c-7", tenant_ids=["acme-corp", "globex"],
                               first_seen="2027-01-15T09:00:00+00:00", last_seen="2027-01-15T09:06:00+00:00",
                               indicators={"link_domain": ["evil.example"]}, verdict_mix={"phishing": 2})
        assert d.handle(publish(queues, one)) == []  # below the rule's min_tenants
        assert d.handle(publish(queues, two)) == ["delivered"]
        assert [json.loads(r.body)["details"]["message_id"] for r in acme.received] == ["a-1"]
        kinds = [json.loads(r.body)["kind"] for r in msp.received]
        assert kinds == ["malware", "malware", "campaign"]
        assert json.loads(msp.received[-1].body)["details"]["indicators"] == {"link_domain": ["evil.example"]}
        assert globex_vip.received == []
    assert one.event_id != two.event_id  # the campaign alerts again when it grows


def test_a_disabled_rule_stops_its_retries(alert_db, box, queues, clock):
    with Receiver(statuses=[503]) as receiver:
        row, _ = make_rule(alert_db, box, receiver.url)
        d = dispatcher(alert_db, box, queues, clock)
        d.handle(publish(queues, malware()))
        with alert_db.connection() as conn, conn.transaction():
            # A tenant scope cannot disable the MSP's rules, nor another scope's.
            assert disable_rule(conn, row["rule_id"], "x@msp.example", None) is None
            assert disable_rule(conn, row["rule_id"], "admin@msp.example", "acme-corp")["disabled_by"] == \
                "admin@msp.example"
        [retry] = queues.drain(queues.queue_url)
        clock.advance(30)
        assert d.handle(retry["Body"]) == ["dropped"]
        assert len(receiver.received) == 1


@pytest.mark.parametrize("target, allow_http, problem", [
    ("http://hooks.example/x", False, "https"),
    ("https://user:pw@hooks.example/x", False, "no user name"),
    ("https://10.0.0.7/x", False, "private"),
    ("https://127.0.0.1/x", False, "private"),
    ("https://hooks.example/x y", False, "spaces"),
    ("https://hooks.example:99999/x", False, "does not parse"),
    ("javascript:alert(1)", True, "https"),
])
def test_hostile_webhook_targets_are_refused(target, allow_http, problem):
    with pytest.raises(RuleRefused, match=problem):
        check_target("webhook", target, allow_http=allow_http)


def test_hostile_rules_are_refused(alert_db, box):
    with alert_db.connection() as conn, conn.transaction():
        for kwargs in ({"events": ["nope"]}, {"events": []}, {"channel": "sms"}, {"channel": "email",
                                                                               "target": "a@b\nBcc: x@y.example"}):
            args = {"tenant_id": "acme-corp", "events": ["malware"], "channel": "webhook",
                    "target": "https://hooks.example/x", "created_by": "a@msp.example", "box": box} | kwargs
            with pytest.raises(RuleRefused):
                add_rule(conn, **args)


def test_an_email_alert_goes_through_the_smtp_relay(alert_db, box, queues, clock):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    got = []

    class Keep(Message):
        def handle_message(self, message):
            got.append(message)

    with socket.socket() as s:  # a free port (aiosmtpd's own readiness check needs a real one)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        make_rule(alert_db, box, "soc@msp.example", channel="email", events=("malware",))
        d = AlertDispatcher(AlertRuleStore(alert_db, box),
                            SqsAlertQueue(queues.sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url),
                            {"email": SmtpEmailChannel(f"smtp://127.0.0.1:{port}", "alerts@swordfish.example")},
                            clock=clock)
        assert d.handle(publish(queues, malware())) == ["delivered"]
    finally:
        controller.stop()
    [message] = got
    assert message["To"] == "soc@msp.example" and message["From"] == "alerts@swordfish.example"
    assert message["Subject"].startswith("[Swordfish] malware for acme-corp")
    assert "message_id: m-1" in message.get_payload()


def test_an_email_alert_goes_through_ses_where_the_stack_has_no_relay(moto_server, box):
    import boto3
    from swordfish.alerts.channels import DeliveryFailed, SesEmailChannel
    from swordfish.alerts.rules import AlertRule

    ses = boto3.client("sesv2", endpoint_url=moto_server.url, region_name="eu-west-1")
    rule = AlertRule(rule_id=7, tenant_id=None, events=("malware",), channel="email", target="soc@msp.example",
                     min_tenants=3, label="SOC")
    with pytest.raises(DeliveryFailed) as refused:  # not a verified identity: refused for good, not retried
        SesEmailChannel(ses, "alerts@unverified.example").send(rule, malware(), 1)
    assert refused.value.permanent
    ses.create_email_identity(EmailIdentity="swordfish.example")
    before = boto3.client("ses", endpoint_url=moto_server.url, region_name="eu-west-1").get_send_quota()
    SesEmailChannel(ses, "alerts@swordfish.example").send(rule, malware(), 1)
    after = boto3.client("ses", endpoint_url=moto_server.url, region_name="eu-west-1").get_send_quota()
    assert after["SentLast24Hours"] > before["SentLast24Hours"]  # accepted (moto counts the refusal as well)


def test_a_webhook_whose_host_resolves_inside_the_network_is_refused(alert_db, box, queues, clock):
    with Receiver() as receiver:
        make_rule(alert_db, box, receiver.url.replace("127.0.0.1", "localhost"))
        d = AlertDispatcher(AlertRuleStore(alert_db, box),
                            SqsAlertQueue(queues.sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url),
                            {"webhook": WebhookChannel(clock=clock, timeout=2)}, clock=clock)
        assert d.handle(publish(queues, malware())) == ["dead_lettered"]
        assert receiver.received == []
    [dead] = queues.drain(queues.dlq_url)
    assert "private address" in dead["MessageAttributes"]["failure_reason"]["StringValue"]
