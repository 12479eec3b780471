"""The processor end to end on the embedded stack: real SQS (fauxqs), real PostgreSQL, the real handler."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from swordfish.pipeline.submission import inline_submission
from swordfish.pipeline.submitter import Submitter

from devstack.poller import WorkerPool
from tests.pipeline.helpers import drain, failed_ids, invoke, receive_event, send_bodies, verdict_rows

CORPUS = Path(__file__).resolve().parents[2] / "samples"
CLEAN_MAIL = (b"From: Alice <alice@globex.example>\r\nTo: bob@globex.example\r\nSubject: minutes\r\n"
              b"Message-ID: <m1@globex.example>\r\n\r\nHere are the minutes from today's meeting.\r\n")


def body(tenant: str, message_id: str, raw: bytes = CLEAN_MAIL) -> str:
    return inline_submission(tenant, message_id, raw).model_dump_json()


def test_a_batch_of_mail_becomes_verdicts_with_end_to_end_latency(stack_env):
    send_bodies(stack_env, [body("globex", f"m{i}") for i in range(5)])
    response = invoke(receive_event(stack_env, 5))
    assert failed_ids(response) == set()
    rows = verdict_rows(stack_env)
    assert [r["message_id"] for r in rows] == [f"m{i}" for i in range(5)]
    assert all(r["verdict"] == "clean" and r["e2e_latency_ms"] is not None and r["e2e_latency_ms"] >= 0 for r in rows)
    assert all(r["sqs_sent_at"] is not None for r in rows)


def test_invalid_json_goes_to_the_dlq_with_its_reason_and_batch_mates_are_stored(stack_env):
    send_bodies(stack_env, [body("globex", "good-1"), "{not json", '{"tenant_id": "globex"}', body("globex", "good-2")])
    response = invoke(receive_event(stack_env, 4))
    assert failed_ids(response) == set()  # handled: dead-lettered now, not retried
    assert {r["message_id"] for r in verdict_rows(stack_env)} == {"good-1", "good-2"}
    dead = drain(stack_env, stack_env.info.dlq_url)
    reasons = sorted(m["MessageAttributes"]["failure_code"]["StringValue"] for m in dead)
    assert reasons == ["invalid_submission", "invalid_submission"]
    assert any("not valid JSON" in m["MessageAttributes"]["failure_reason"]["StringValue"] for m in dead)
    assert {m["Body"] for m in dead} == {"{not json", '{"tenant_id": "globex"}'}  # kept whole for replay


def test_an_unknown_tenant_is_dead_lettered(stack_env):
    send_bodies(stack_env, [body("no-such-tenant", "x1"), body("acme-corp", "a1")])
    invoke(receive_event(stack_env, 2))
    assert [r["message_id"] for r in verdict_rows(stack_env)] == ["a1"]
    dead = drain(stack_env, stack_env.info.dlq_url)
    assert [m["MessageAttributes"]["failure_code"]["StringValue"] for m in dead] == ["unknown_tenant"]


def test_a_message_over_the_size_limit_is_dead_lettered(stack_env, monkeypatch):
    monkeypatch.setenv("SWORDFISH_MAX_MESSAGE_BYTES", "2000")
    from swordfish import wiring
    from swordfish.config import get_settings

    get_settings.cache_clear()
    wiring.reset()
    big = CLEAN_MAIL + b"x" * 5000
    send_bodies(stack_env, [body("globex", "big", big), body("globex", "small")])
    invoke(receive_event(stack_env, 2))
    assert [r["message_id"] for r in verdict_rows(stack_env)] == ["small"]
    dead = drain(stack_env, stack_env.info.dlq_url)
    assert [m["MessageAttributes"]["failure_code"]["StringValue"] for m in dead] == ["message_too_large"]


def test_a_duplicate_submission_keeps_one_verdict(stack_env):
    send_bodies(stack_env, [body("globex", "dup"), body("globex", "dup")])
    assert failed_ids(invoke(receive_event(stack_env, 2))) == set()
    send_bodies(stack_env, [body("globex", "dup")])  # a redelivery in a later batch
    assert failed_ids(invoke(receive_event(stack_env, 1))) == set()
    assert [r["message_id"] for r in verdict_rows(stack_env)] == ["dup"]


def test_a_message_id_reused_for_different_content_is_dead_lettered_with_its_reason(stack_env):
    """Issue 25: a different message under a message_id that already has a verdict was counted as a
    duplicate and lost without a trace. It is dead-lettered as message_id_reused, kept whole."""
    other = CLEAN_MAIL.replace(b"minutes from today's meeting", b"invoice you asked for")
    send_bodies(stack_env, [body("globex", "reused"), body("globex", "reused", other)])  # in one batch
    assert failed_ids(invoke(receive_event(stack_env, 2))) == set()
    send_bodies(stack_env, [body("globex", "reused", other)])  # and in a later one
    assert failed_ids(invoke(receive_event(stack_env, 1))) == set()
    send_bodies(stack_env, [body("globex", "reused")])  # the same content again: a plain duplicate
    assert failed_ids(invoke(receive_event(stack_env, 1))) == set()
    assert [r["message_id"] for r in verdict_rows(stack_env)] == ["reused"]
    dead = drain(stack_env, stack_env.info.dlq_url)
    assert [m["MessageAttributes"]["failure_code"]["StringValue"] for m in dead] == ["message_id_reused"] * 2
    assert all(b"invoice" in __import__("base64").b64decode(json.loads(m["Body"])["source"]["raw_mime_b64"])
               for m in dead)


def test_mail_too_large_for_sqs_travels_through_s3(stack_env):
    raw = CLEAN_MAIL + b"A" * 300_000
    submitter = Submitter(stack_env.client("sqs"), stack_env.info.queue_url, s3=stack_env.client("s3"),
                          bucket=stack_env.info.bucket)
    submission = submitter.build("globex", "large", raw)
    assert submission.source.kind == "s3"
    submitter.send([submission])
    assert failed_ids(invoke(receive_event(stack_env, 1))) == set()
    assert [r["message_id"] for r in verdict_rows(stack_env)] == ["large"]


NUL_ATTACHMENT_MAIL = (
    b"From: Billing <billing@vendor.example>\r\nTo: ap@globex.example\r\nSubject: invoice\r\n"
    b"Message-ID: <nul@vendor.example>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice attached.\r\n"
    b"--b1\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Disposition: attachment; filename=\"=?utf-8?q?invoice=00.exe?=\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=\r\n--b1--\r\n")


def test_a_nul_byte_in_an_attachment_name_gets_a_verdict_and_costs_no_one_else(stack_env):
    bodies = [body("globex" if i % 2 else "acme-corp", f"good-{i}") for i in range(9)]
    bodies.insert(4, body("globex", "nul-attachment", NUL_ATTACHMENT_MAIL))
    send_bodies(stack_env, bodies)
    assert failed_ids(invoke(receive_event(stack_env, 10))) == set()
    rows = {r["message_id"]: r for r in verdict_rows(stack_env)}
    assert set(rows) == {"nul-attachment"} | {f"good-{i}" for i in range(9)}
    assert {r["tenant_id"] for r in rows.values()} == {"globex", "acme-corp"}
    poison = rows["nul-attachment"]
    assert poison["verdict"] != "clean", "an executable attachment is not clean"
    assert "\ufffd" in json.dumps(poison["reasons"], ensure_ascii=False), "the NUL is kept visible as U+FFFD"
    assert drain(stack_env, stack_env.info.dlq_url, timeout=1) == []


def _refuse_rows_with_message_id(stack_env, message_id: str, error: str) -> None:
    """A real PostgreSQL error for one row: a trigger that refuses it, as a bad value would."""
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute(f"""CREATE OR REPLACE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN IF NEW.message_id = '{message_id}' THEN RAISE EXCEPTION '{error}'; END IF;
                        RETURN NEW; END $$""")
        conn.execute("CREATE TRIGGER refuse_row BEFORE INSERT ON verdicts FOR EACH ROW EXECUTE FUNCTION refuse_row()")


def _accept_rows_again(stack_env) -> None:
    with psycopg.connect(stack_env.info.superuser_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS refuse_row ON verdicts")


def test_a_row_the_database_refuses_fails_alone_and_its_batch_mates_are_stored(stack_env):
    _refuse_rows_with_message_id(stack_env, "boom", "value out of this world")
    try:
        bodies = [body("globex" if i % 2 else "acme-corp", f"ok-{i}") for i in range(9)]
        bodies.insert(3, body("globex", "boom"))
        send_bodies(stack_env, bodies)
        event = receive_event(stack_env, 10)
        response = invoke(event)
        boom = {r["messageId"] for r in event["Records"] if '"boom"' in r["body"]}
        assert failed_ids(response) == boom  # only the refused record is retried
        assert {r["message_id"] for r in verdict_rows(stack_env)} == {f"ok-{i}" for i in range(9)}
        assert drain(stack_env, stack_env.info.dlq_url, timeout=1) == []  # not its last receive yet
    finally:
        _accept_rows_again(stack_env)
    # Redelivered (made visible now rather than waiting out the timeout), it is stored once the row is accepted.
    sqs = stack_env.client("sqs")
    for record in event["Records"]:
        if record["messageId"] in boom:
            sqs.change_message_visibility(QueueUrl=stack_env.info.queue_url, ReceiptHandle=record["receiptHandle"],
                                          VisibilityTimeout=0)
    assert failed_ids(invoke(receive_event(stack_env, 1))) == set()
    assert "boom" in {r["message_id"] for r in verdict_rows(stack_env)}


def test_an_unreachable_database_fails_the_whole_batch_and_dead_letters_last_receives_with_the_reason(
        stack_env, monkeypatch):
    from swordfish.store.database import Database
    from swordfish.wiring import pipeline as get_pipeline

    send_bodies(stack_env, [body("globex", f"down-{i}") for i in range(3)] + ["{not json"])
    event = receive_event(stack_env, 4)
    last = next(r for r in event["Records"] if '"down-0"' in r["body"])
    last["attributes"]["ApproximateReceiveCount"] = "5"  # this record is on its last receive
    pipeline = get_pipeline()
    pipeline.policies.get("globex")  # cached, so only the commit needs the database
    # A closed local port: the connection itself fails, which no row-by-row retry can help.
    unreachable = Database("postgresql://swordfish@127.0.0.1:9/swordfish", connect_timeout=1)
    monkeypatch.setattr(pipeline, "database", unreachable)
    try:
        response = invoke(event)
    finally:
        unreachable.close()
    poison = {r["messageId"] for r in event["Records"] if r["body"] == "{not json"}
    # Every analysed record is retried, but those already dead-lettered are not sent there twice.
    assert failed_ids(response) == {r["messageId"] for r in event["Records"]} - poison - {last["messageId"]}
    assert verdict_rows(stack_env) == []
    dead = {m["MessageAttributes"]["failure_code"]["StringValue"]: m for m in drain(stack_env, stack_env.info.dlq_url)}
    assert set(dead) == {"invalid_submission", "commit_failed"}
    assert '"down-0"' in dead["commit_failed"]["Body"]
    assert "unavailable" in dead["commit_failed"]["MessageAttributes"]["failure_reason"]["StringValue"]


def test_a_record_that_keeps_failing_reaches_the_dlq_after_max_receives(stack_env):
    _refuse_rows_with_message_id(stack_env, "poison", "always fails")
    try:
        send_bodies(stack_env, [body("globex", "poison"), body("acme-corp", "fine")])
        with WorkerPool(stack_env.info.env, workers=1):
            deadline = time.monotonic() + 60
            dead: list[dict] = []
            while not dead and time.monotonic() < deadline:
                dead = drain(stack_env, stack_env.info.dlq_url, timeout=1)
        assert len(dead) == 1 and '"poison"' in dead[0]["Body"]
        # Dead-lettered by the processor on its last receive, with the reason, not by a silent redrive.
        attributes = dead[0]["MessageAttributes"]
        assert attributes["failure_code"]["StringValue"] == "store_rejected"
        assert "always fails" in attributes["failure_reason"]["StringValue"]
        assert [r["message_id"] for r in verdict_rows(stack_env)] == ["fine"]
    finally:
        _accept_rows_again(stack_env)


def test_workers_process_real_sample_mail_for_two_tenants(stack_env):
    files = [p for p in sorted(CORPUS.rglob("*.eml"))][:12]
    assert files, "samples/ should hold .eml files"
    submitter = Submitter(stack_env.client("sqs"), stack_env.info.queue_url, s3=stack_env.client("s3"),
                          bucket=stack_env.info.bucket)
    tenants = ["acme-corp", "globex"]
    submitter.send([submitter.build(tenants[i % 2], p.name, p.read_bytes()) for i, p in enumerate(files)])
    with WorkerPool(stack_env.info.env, workers=2):
        deadline = time.monotonic() + 60
        while len(verdict_rows(stack_env)) < len(files) and time.monotonic() < deadline:
            time.sleep(0.2)
    rows = verdict_rows(stack_env)
    assert len(rows) == len(files)
    assert {r["tenant_id"] for r in rows} == set(tenants)


def test_a_dead_lettered_record_is_reported_with_its_tenant_and_record_context(stack_env, tmp_path, monkeypatch):
    import json as _json

    import handlers.processor  # noqa: F401  (its import configures the tracker from the environment)
    from swordfish.monitoring import error_tracker

    errors = tmp_path / "errors.jsonl"
    error_tracker.configure(local_file=errors, redis_url="", sentry_dsn="")
    try:
        send_bodies(stack_env, [body("no-such-tenant", "lost-1")])
        event = receive_event(stack_env, 1)
        invoke(event)
    finally:
        error_tracker.configure(local_file="", redis_url="", sentry_dsn="")
    events = [_json.loads(line) for line in errors.read_text().splitlines()]
    dead = [e for e in events if "unknown tenant" in e["error_message"]]
    assert len(dead) == 1
    assert dead[0]["context"]["tenant_id"] == "no-such-tenant"
    assert dead[0]["context"]["sqs_message_id"] == event["Records"][0]["messageId"]
    assert [b["kind"] for b in dead[0]["breadcrumbs"]][:1] == ["received"]


def test_malformed_mime_gets_a_verdict_with_its_parse_problem(stack_env):
    broken = (b"From: =?utf-8?B?broken\r\nContent-Type: multipart/mixed; boundary=\"unterminated\r\n"
              b"Subject: \xff\xfe bad bytes\r\n\r\n--unterminated\r\nContent-Type: text/html; charset=x-unknown\r\n\r\n"
              b"<a href=\"http://198.51.100.7/login\">bank</a>")
    send_bodies(stack_env, [body("globex", "broken", broken), body("globex", "fine")])
    assert failed_ids(invoke(receive_event(stack_env, 2))) == set()
    rows = {r["message_id"]: r for r in verdict_rows(stack_env)}
    assert set(rows) == {"broken", "fine"}
    assert rows["broken"]["parse_problems"], "the parse problems are stored with the verdict"
    assert "MIME_PARSE_PROBLEM" in {r["name"] for r in rows["broken"]["reasons"]}
