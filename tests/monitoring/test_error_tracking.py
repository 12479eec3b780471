"""Error tracking: capture, context, scrubbing, rate limiting, breadcrumbs, grouping, sinks."""

from __future__ import annotations

import base64
import gzip
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swordfish import cli
from swordfish.monitoring import error_tracker, scrubber
from swordfish.monitoring.breadcrumbs import (
    MAX_BREADCRUMBS,
    add_breadcrumb,
    current_breadcrumbs,
    record_scope,
)
from swordfish.monitoring.context_provider import (
    CORRELATION_ATTRIBUTE,
    bind_context,
    correlation_id_from_attributes,
    correlation_message_attributes,
    current_context,
    new_correlation_id,
)
from swordfish.monitoring.error_tracker import (
    FingerprintedError,
    capture_exception,
    capture_message,
    track_errors,
)
from swordfish.monitoring.observability import logger, metrics

from devstack.services import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO_ROOT).as_posix()


# --- small functions that fail, so frames are real -------------------------------------------
def lookup_tenant(tenant_id: str) -> None:
    raise LookupError(f"tenant {tenant_id} not found")


def parse_header(raw: str) -> None:
    raise ValueError(f"bad header {raw}")


def store_verdict(tenant_id: str) -> None:
    try:
        lookup_tenant(tenant_id)
    except LookupError as exc:
        raise RuntimeError("could not store the verdict") from exc


def caught(func, *args) -> BaseException:
    try:
        func(*args)
    except Exception as exc:  # noqa: BLE001 - whatever it raised is what the test inspects
        return exc
    raise AssertionError(f"{func.__name__} did not raise")


# --- capture -----------------------------------------------------------------------------------
def test_unhandled_exception_in_a_handler_is_captured_with_its_chain_and_reraised(
        tracker, logs, make_context, read_error_file):
    @track_errors
    def handler(event, context):
        store_verdict(event["tenant_id"])

    context = make_context()
    with pytest.raises(RuntimeError, match="could not store the verdict"):
        handler({"tenant_id": "tenant-1"}, context)

    [event] = logs.error_events()
    assert event["exception_type"] == "RuntimeError"
    assert event["level"] == "CRITICAL"  # Powertools' level for our "fatal"
    assert event["release"] == "test-release"
    assert event["extra"]["mechanism"] == "unhandled"
    outer, cause = event["exceptions"]
    assert (outer["type"], cause["type"], cause["relation"]) == ("RuntimeError", "LookupError", "cause")
    assert cause["message"] == "tenant tenant-1 not found"
    raise_frame = cause["frames"][-1]
    assert raise_frame == {
        "path": THIS_FILE, "module": raise_frame["module"], "function": "lookup_tenant",
        "lineno": raise_frame["lineno"], "source": 'raise LookupError(f"tenant {tenant_id} not found")', "in_app": True,
    }
    assert raise_frame["module"].endswith("test_error_tracking")
    assert "The above exception was the direct cause of the following exception" in event["stack"]
    assert f'File "{THIS_FILE}"' in event["stack"]
    library_frames = [f for f in outer["frames"] if not f["in_app"]]
    assert any(f["module"] == "swordfish.monitoring.error_tracker" for f in library_frames)  # the wrapper itself
    [stored] = read_error_file()
    assert stored["event_id"] == event["event_id"] and stored["stack"] == event["stack"]


def test_handled_error_is_captured_with_its_extra_data_and_returns_an_event_id(tracker, logs):
    event_id = capture_exception(caught(parse_header, "X-Bad"), level="warning", record_index=3)

    [event] = logs.error_events()
    assert event["event_id"] == event_id
    assert event["level"] == "WARNING"
    assert event["extra"] == {"record_index": 3}
    assert event["error_message"] == "bad header X-Bad"


def test_an_error_reported_where_handled_and_reraised_is_one_event(tracker, logs, make_context):
    @track_errors
    def handler(event, context):
        try:
            parse_header("X-Bad")
        except ValueError as exc:
            capture_exception(exc, stage="parse")
            raise

    with pytest.raises(ValueError):
        handler({}, make_context())

    [event] = logs.error_events()
    assert event["extra"] == {"stage": "parse"}


def test_capture_message_reports_where_it_was_called_from(tracker, logs):
    capture_message("fallback taken: indicator lookup skipped", fallback="indicators")

    [event] = logs.error_events()
    assert event["exception_type"] == "Message"
    assert event["error_message"] == "fallback taken: indicator lookup skipped"
    in_app = [f for f in event["exceptions"][0]["frames"] if f["in_app"]]
    assert in_app[-1]["function"] == "test_capture_message_reports_where_it_was_called_from"


def test_errors_emit_an_emf_metric_per_exception_class_and_warnings_do_not(tracker, logs, capsys):
    capture_exception(caught(parse_header, "x"))
    capture_message("only a warning")

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    error_blobs = [b for b in blobs if "Errors" in b]
    assert len(error_blobs) == 1
    [blob] = error_blobs
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == metrics.namespace
    assert directive["Metrics"][0]["Name"] == "Errors"
    assert "exception_type" in directive["Dimensions"][0]
    assert blob["exception_type"] == "ValueError"


def test_composes_with_powertools_decorators_without_mixing_metrics(tracker, logs, make_context, capsys):
    @logger.inject_lambda_context
    @metrics.log_metrics
    @track_errors
    def handler(event, context):
        metrics.add_metric(name="RecordsProcessed", unit="Count", value=1)
        raise ConnectionError("database unreachable")

    context = make_context()
    with pytest.raises(ConnectionError):
        handler({}, context)

    [event] = logs.error_events()
    assert event["function_name"] == context.function_name  # Powertools' keys on our line
    assert event["context"]["request_id"] == context.aws_request_id
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    errors_blob = next(b for b in blobs if "Errors" in b)
    handler_blob = next(b for b in blobs if "RecordsProcessed" in b)
    assert errors_blob is not handler_blob and "Errors" not in handler_blob


_CRASHING_PROCESS = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from swordfish.monitoring import error_tracker
    error_tracker.configure(redis_url="", local_file=sys.argv[1], sentry_dsn="", release="p", repo_root=Path.cwd())
    error_tracker.install_process_hooks()
    worker = threading.Thread(target=lambda: 1 / 0, name="poller-1")
    worker.start()
    worker.join()
    raise SystemError("devstack process crashed")
""")


def test_process_hooks_capture_crashes_of_a_process_and_its_threads(tmp_path):
    error_file = tmp_path / "process-errors.jsonl"
    result = subprocess.run([sys.executable, "-c", _CRASHING_PROCESS, str(error_file)], check=False, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 1 and "devstack process crashed" in result.stderr  # default hooks still ran
    events = [json.loads(line) for line in error_file.read_text().splitlines()]
    assert sorted((e["exception_type"], e["extra"]["mechanism"]) for e in events) == [
        ("SystemError", "excepthook"), ("ZeroDivisionError", "threading.excepthook")]
    assert next(e for e in events if e["exception_type"] == "ZeroDivisionError")["extra"]["thread"] == "poller-1"


# --- context -----------------------------------------------------------------------------------
def test_error_event_includes_tenant_user_request_and_correlation_context(tracker, logs, make_context):
    @track_errors
    def handler(event, context):
        with (bind_context(api_request_id=event["requestContext"]["requestId"], user_id="user-7",
                           tenant_id=event["tenant_id"]),
              record_scope(sqs_message_id="msg-42", correlation_id="corr-9")):
            raise PermissionError("tenant suspended")

    context = make_context()
    with pytest.raises(PermissionError):
        handler({"tenant_id": "tenant-a", "requestContext": {"requestId": "api-req-1"}}, context)

    [event] = logs.error_events()
    assert event["context"] == {
        "request_id": context.aws_request_id, "api_request_id": "api-req-1", "user_id": "user-7",
        "tenant_id": "tenant-a", "sqs_message_id": "msg-42", "correlation_id": "corr-9",
    }
    assert event["tenant_id"] == "tenant-a" and event["correlation_id"] == "corr-9"  # logger keys too
    assert current_context() == {}
    logger.info("after the invocation")
    assert "tenant_id" not in logs.records()[-1]


def test_nested_bind_restores_the_outer_values(logs):
    with bind_context(tenant_id="outer", request_id="r-1"):
        with bind_context(tenant_id="inner"):
            assert current_context() == {"tenant_id": "inner", "request_id": "r-1"}
            logger.info("inner")
        logger.info("outer")
    logger.info("none")
    inner, outer, none = logs.records()[-3:]
    assert (inner["tenant_id"], outer["tenant_id"], none.get("tenant_id")) == ("inner", "outer", None)


def test_context_is_separate_per_thread(logs):
    seen: dict[str, dict] = {}
    barrier = threading.Barrier(2, timeout=10)

    def worker(tenant: str) -> None:
        with bind_context(tenant_id=tenant):
            barrier.wait()
            seen[tenant] = current_context()

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("tenant-a", "tenant-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {"tenant-a": {"tenant_id": "tenant-a"}, "tenant-b": {"tenant_id": "tenant-b"}}


def test_correlation_id_travels_through_sqs_as_a_message_attribute(fauxqs_server):
    sqs = boto3.client("sqs", endpoint_url=fauxqs_server.url, region_name="eu-west-1",
                       config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}))
    queue_url = sqs.create_queue(QueueName=f"correlation-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    correlation_id = new_correlation_id()
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}",
                     MessageAttributes=correlation_message_attributes(correlation_id))

    [message] = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"],
                                    WaitTimeSeconds=1)["Messages"]
    assert correlation_id_from_attributes(message["MessageAttributes"]) == correlation_id
    # The shape the Lambda SQS event source delivers the same attribute in.
    lambda_attributes = {CORRELATION_ATTRIBUTE: {"stringValue": correlation_id, "dataType": "String"}}
    assert correlation_id_from_attributes(lambda_attributes) == correlation_id
    assert correlation_id_from_attributes({}) is None


# --- scrubbing ----------------------------------------------------------------------------------
def test_scrubs_secrets_from_message_extra_breadcrumbs_context_and_urls(
        tracker, logs, capsys, error_file):
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTcifQ.c2lnbmF0dXJlLXZhbHVl"
    secrets = ["hunter2-pw", "AKIAIOSFODNN7EXAMPLE", jwt, "url-pass-9", "query-token-9", "cookie-value-9",
               "4111 1111 1111 1111", "raw-mime-body-9", "bearer-token-9", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]
    add_breadcrumb("received", "fetched https://bob:url-pass-9@mail.example.com/m?token=query-token-9&page=2",
                   headers={"Cookie": "cookie-value-9", "X-Trace": jwt})
    with bind_context(tenant_id="tenant-s", session_token="bearer-token-9"):
        exc = caught(parse_header, "password=hunter2-pw key AKIAIOSFODNN7EXAMPLE")
        capture_exception(exc, submission={"source": {"raw_mime": "raw-mime-body-9"}},
                          note="paid with 4111 1111 1111 1111",
                          env="aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                          auth_header="Bearer bearer-token-9")

    outputs = {"log": logs.text, "file": error_file.read_text(), "stdout": capsys.readouterr().out}
    for name, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into the {name} output"
    [event] = logs.error_events()
    assert event["context"]["tenant_id"] == "tenant-s"  # not a secret: kept
    assert event["error_message"].startswith("bad header password=[Filtered:")
    assert "mail.example.com/m?token=[Filtered:" in event["breadcrumbs"][0]["message"]


def test_same_secret_gives_the_same_marker_and_different_secrets_differ():
    first = scrubber.scrub({"password": "same-secret", "nested": [{"api_key": "same-secret"}]})
    other = scrubber.scrub({"password": "another-secret"})
    assert first["password"] == first["nested"][0]["api_key"]
    assert first["password"].startswith(scrubber.FILTERED_PREFIX)
    assert other["password"] != first["password"]


@pytest.mark.parametrize(("text", "filtered"), [
    ("card 4111 1111 1111 1111 used", True),
    ("card 4111-1111-1111-1111 used", True),
    ("order 12 4111111111111111", True),
    ("card 4111 1111 1111 1112 used", False),  # fails Luhn
    ("epoch ms 1712345678901", False),  # no card prefix
])
def test_card_numbers_are_filtered_only_when_they_pass_luhn(text, filtered):
    assert (scrubber.FILTERED_PREFIX in scrubber.scrub_text(text)) is filtered


def test_ordinary_text_and_identifiers_are_left_alone():
    payload = {"tenant_id": "tenant-1", "message_id": "<abc@mail.example.com>", "verdict": "phishing",
               "score": 87, "reasons": ["basic check failed", "url https://example.com/a?page=2"]}
    assert scrubber.scrub(payload) == payload


# Hypothesis: nested payloads with secrets in keys and values at any depth.
_FILLER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,:", max_size=12)
_BARE_SECRET = st.from_regex(r"ZQ[A-Za-z0-9]{10,20}", fullmatch=True)
_B64URL = st.from_regex(r"[A-Za-z0-9_-]{10,30}", fullmatch=True)
_SENSITIVE_WORDS = ["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie",
                    "session", "credential", "private_key", "client_secret", "raw_mime"]


def _luhn_complete(partial: str) -> str:
    for check in "0123456789":
        if scrubber._luhn_ok(partial + check):
            return partial + check
    raise AssertionError("unreachable: one check digit always fits")


@st.composite
def sensitive_keys(draw) -> str:
    case = draw(st.sampled_from([str.lower, str.upper, str.title]))
    if draw(st.booleans()):  # substring words: anything may surround them
        word = case(draw(st.sampled_from(_SENSITIVE_WORDS)))
        return draw(st.sampled_from(["", "x", "db_", "X-"])) + word + draw(st.sampled_from(["", "_value", "Id", "s"]))
    word = case(draw(st.sampled_from(["raw", "body"])))  # whole-word matches: separated
    return draw(st.sampled_from(["", "email_", "msg-"])) + word + draw(st.sampled_from(["", "_b64", "-text"]))


@st.composite
def pattern_secrets(draw) -> tuple[str, str]:
    """(text carrying a secret, the part of it that must not survive)."""
    kind = draw(st.sampled_from(["jwt", "aws_id", "aws_secret", "bearer", "basic", "userinfo", "query", "card",
                                 "key_value"]))
    if kind == "jwt":
        jwt = "eyJ" + draw(_B64URL) + "." + draw(_B64URL) + "." + draw(_B64URL)
        return jwt, jwt
    if kind == "aws_id":
        key = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(st.from_regex(r"[A-Z0-9]{16}", fullmatch=True))
        return key, key
    if kind == "aws_secret":
        value = draw(st.from_regex(r"[A-Za-z0-9/+]{40}", fullmatch=True))
        return f"{draw(st.sampled_from(['aws_secret_access_key=', 'AWS_SECRET_ACCESS_KEY: ']))}{value}", value
    if kind == "bearer":
        token = draw(_BARE_SECRET)
        return f"Bearer {token}", token
    if kind == "basic":
        token = base64.b64encode(f"user:{draw(_BARE_SECRET)}".encode()).decode()
        return f"Basic {token}", token
    if kind == "userinfo":
        password = draw(_BARE_SECRET)
        return f"https://user:{password}@mail.example.com/inbox", password
    if kind == "query":
        param = draw(st.sampled_from(scrubber.SECRET_QUERY_PARAMS))
        value = draw(_BARE_SECRET)
        return f"https://cb.example.com/p?page=2&{param}={value}&x=1", value
    if kind == "card":
        digits = _luhn_complete(draw(st.sampled_from(["4", "51", "37", "6011"])) +
                                draw(st.from_regex(r"[0-9]{11}", fullmatch=True)))
        text = draw(st.sampled_from([digits, " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))]))
        return text, text
    name = draw(st.sampled_from(["password", "api_key", "client_secret", "token"]))
    value = draw(_BARE_SECRET)
    return f"{name}={value}", value


@st.composite
def payloads_with_secrets(draw) -> tuple[object, list[str]]:
    must_vanish: list[str] = []

    def embedded() -> str:
        text, secret = draw(pattern_secrets())
        must_vanish.append(secret)
        return f"{draw(_FILLER)} {text} {draw(_FILLER)}"

    def leaf() -> object:
        kind = draw(st.sampled_from(["filler", "int", "pattern", "card_int", "bytes", "none"]))
        if kind == "filler":
            return draw(_FILLER)
        if kind == "int":
            return draw(st.integers(-1000, 10**6))
        if kind == "card_int":
            card = _luhn_complete("4" + draw(st.from_regex(r"[0-9]{14}", fullmatch=True)))
            must_vanish.append(card)
            return int(card)
        if kind == "bytes":
            return embedded().encode()
        if kind == "none":
            return None
        return embedded()

    def bare_secret_tree(depth: int) -> object:
        secret = draw(_BARE_SECRET)
        must_vanish.append(secret)
        shape = draw(st.sampled_from(["bare", "list", "dict"]))
        if shape == "bare" or depth > 4:
            return secret
        if shape == "list":
            return [node(depth + 1), secret]
        return {"inner": secret, "more": node(depth + 1)}

    def node(depth: int) -> object:
        kind = draw(st.sampled_from(["leaf", "dict", "list", "tuple"] if depth < 5 else ["leaf"]))
        if kind == "leaf":
            return leaf()
        if kind in ("list", "tuple"):
            items = [node(depth + 1) for _ in range(draw(st.integers(0, 3)))]
            return items if kind == "list" else tuple(items)
        result: dict[str, object] = {}
        for _ in range(draw(st.integers(0, 4))):
            key_kind = draw(st.sampled_from(["plain", "sensitive", "pattern"]))
            if key_kind == "sensitive":
                result[draw(sensitive_keys())] = bare_secret_tree(depth + 1)
            elif key_kind == "pattern":
                result[embedded()] = node(depth + 1)
            else:
                result[draw(_FILLER)] = node(depth + 1)
        return result

    return node(0), must_vanish


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(payloads_with_secrets())
def test_no_secret_survives_scrubbing_at_any_depth(generated):
    payload, must_vanish = generated
    scrubbed = json.dumps(scrubber.scrub(payload), default=str)
    for secret in must_vanish:
        assert secret not in scrubbed


# --- rate limiting ------------------------------------------------------------------------------
def test_repeated_errors_are_rate_limited_and_the_next_event_reports_how_many_were_suppressed(tracker, logs):
    window, now = 60.0, [6000.0]  # an injected clock at the start of a window
    tracker(rate_limit=3, rate_window_seconds=window, clock=lambda: now[0])
    sent = [capture_exception(caught(lookup_tenant, f"t-{i}")) for i in range(8)]
    other = capture_exception(caught(parse_header, "x"))  # another group is not affected
    now[0] += window - 0.001
    assert capture_exception(caught(lookup_tenant, "t-8")) is None  # still the same window
    now[0] += 0.002
    next_id = capture_exception(caught(lookup_tenant, "t-9"))

    assert [event_id is not None for event_id in sent] == [True] * 3 + [False] * 5
    assert other is not None and next_id is not None
    events = logs.error_events()
    assert len(events) == 5
    assert [e["suppressed_count"] for e in events] == [0, 0, 0, 0, 6]


_WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from swordfish.monitoring import error_tracker
    error_tracker.configure(redis_url=sys.argv[1], local_file="", sentry_dsn="", release="w",
                            repo_root=Path(sys.argv[2]), rate_limit=int(sys.argv[3]), rate_window_seconds=86400)
    sent, suppressed = 0, []
    for _ in range(int(sys.argv[4])):
        try:
            raise ConnectionError("indicator feed unreachable")
        except ConnectionError as exc:
            sent += error_tracker.capture_exception(exc) is not None
    print("RESULT " + json.dumps({"sent": sent}), flush=True)
""")


def _run_workers(redis_url: str, rate_limit: int, repeats: int, count: int) -> list[str]:
    # A generous Redis timeout: on a loaded machine a 0.5 s timeout would drop a worker to its
    # in-process count, which is the fallback, not the behaviour under test.
    env = {**os.environ, "SWORDFISH_REDIS_TIMEOUT_SECONDS": "10"}
    processes = [subprocess.Popen([sys.executable, "-c", _WORKER, redis_url, str(REPO_ROOT), str(rate_limit),
                                   str(repeats)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(count)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        outputs.append(out)
    return outputs


def test_rate_limit_is_shared_by_processes_through_redis(redis_url):
    outputs = _run_workers(redis_url, rate_limit=3, repeats=5, count=2)

    sent = [json.loads(line.removeprefix("RESULT "))["sent"]
            for out in outputs for line in out.splitlines() if line.startswith("RESULT ")]
    assert sum(sent) == 3  # not 3 per process
    # Every suppressed repeat is reported exactly once, by the next event that goes out: a worker allowed
    # to send later (a higher limit) carries what is left. Which event carries which repeat depends on how
    # the two workers interleave (an event of one may go out after the other's repeats were counted), so
    # the test adds them up rather than expecting all seven on the last one.
    [after] = _run_workers(redis_url, rate_limit=100, repeats=1, count=1)
    events = [json.loads(line) for out in [*outputs, after] for line in out.splitlines() if '"error_event"' in line]
    assert len(events) == 4 and sum(e["suppressed_count"] for e in events) == 7
    [last] = [json.loads(line) for line in after.splitlines() if '"error_event"' in line]
    assert last["suppressed_count"] >= 1  # the two workers' last repeats come after every event they sent


def test_redis_failure_does_not_stop_capture_and_limits_in_process(tracker, logs):
    tracker(redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit=2)
    sent = [capture_exception(caught(lookup_tenant, "t")) for _ in range(4)]

    assert [event_id is not None for event_id in sent] == [True, True, False, False]
    assert len(logs.error_events()) == 2
    assert any("Redis unavailable" in r.get("message", "") for r in logs.records())


# --- breadcrumbs --------------------------------------------------------------------------------
def test_breadcrumbs_are_bounded_to_the_most_recent(tracker, logs, make_context):
    @track_errors
    def handler(event, context):
        for i in range(MAX_BREADCRUMBS + 10):
            add_breadcrumb("parsed", f"step {i}")
        raise ValueError("after many steps")

    with pytest.raises(ValueError):
        handler({}, make_context())

    [event] = logs.error_events()
    messages = [c["message"] for c in event["breadcrumbs"]]
    assert len(messages) == MAX_BREADCRUMBS
    assert messages[0] == "step 10" and messages[-1] == f"step {MAX_BREADCRUMBS + 9}"
    assert event["breadcrumbs_dropped"] == 10


def test_each_record_gets_its_own_trail_nested_in_the_invocation(tracker, logs, make_context):
    @track_errors
    def handler(event, context):
        add_breadcrumb("received", "batch of 2")
        for message_id in event["records"]:
            with record_scope(sqs_message_id=message_id, tenant_id="tenant-r"):
                add_breadcrumb("parsed", f"parsed {message_id}")
                add_breadcrumb("indicator_lookup", "urlhaus", breaker="closed", hit=False)
                if message_id == "m-2":
                    capture_exception(caught(parse_header, message_id))
                add_breadcrumb("stored", f"stored {message_id}")

    handler({"records": ["m-1", "m-2"]}, make_context())

    [event] = logs.error_events()
    assert [(c["scope"], c["kind"], c["message"]) for c in event["breadcrumbs"]] == [
        ("invocation", "received", "batch of 2"),
        ("record", "parsed", "parsed m-2"),
        ("record", "indicator_lookup", "urlhaus"),
    ]
    assert event["breadcrumbs"][2]["data"] == {"breaker": "closed", "hit": False}
    assert event["context"]["sqs_message_id"] == "m-2"


def test_breadcrumbs_are_cleared_between_invocations(tracker, logs, make_context):
    @track_errors
    def handler(event, context):
        add_breadcrumb("received", f"invocation {event['n']}")
        if event["n"] == 2:
            raise RuntimeError("second invocation fails")

    handler({"n": 1}, make_context())
    with pytest.raises(RuntimeError):
        handler({"n": 2}, make_context())

    [event] = logs.error_events()
    assert [c["message"] for c in event["breadcrumbs"]] == ["invocation 2"]
    assert current_breadcrumbs() == []


def test_unknown_breadcrumb_kind_is_refused_with_the_valid_kinds():
    with pytest.raises(ValueError, match="unknown breadcrumb kind 'parsing'.*parsed"):
        add_breadcrumb("parsing", "typo")


# --- grouping -----------------------------------------------------------------------------------
def test_same_site_groups_together_whatever_the_message_and_different_sites_stay_apart(tracker):
    lookup_a, _ = error_tracker.compute_fingerprint(caught(lookup_tenant, "tenant-a"))
    lookup_b, _ = error_tracker.compute_fingerprint(caught(lookup_tenant, "tenant-b"))
    parse, _ = error_tracker.compute_fingerprint(caught(parse_header, "tenant-a"))
    chained, _ = error_tracker.compute_fingerprint(caught(store_verdict, "tenant-a"))

    assert lookup_a == lookup_b
    assert len({lookup_a, parse, chained}) == 3


def test_errors_without_app_frames_group_by_normalised_message(tracker):
    def message_error(n: int) -> ValueError:
        return ValueError(f"tenant {uuid.uuid4()} from 10.0.{n}.7 failed after {n} tries "
                          f"(id 0xdeadbeef{n}, mail user{n}@example.com, batch 9f8e7d6c5b{n})")

    first, parts = error_tracker.compute_fingerprint(message_error(1))
    second, _ = error_tracker.compute_fingerprint(message_error(2))
    different, _ = error_tracker.compute_fingerprint(ValueError("disk full"))

    assert first == second
    assert first != different
    assert parts[-1] == "tenant <uuid> from <ip> failed after <n> tries (id <hex>, mail <email>, batch <hex>)"


def test_raise_site_can_choose_its_fingerprint(tracker):
    class BreakerOpen(FingerprintedError):
        fingerprint = ("breaker-open", "nango")

    def here():
        raise BreakerOpen("nango breaker open")

    def there():
        raise BreakerOpen("nango breaker open again")

    def explicit():
        raise FingerprintedError("x", fingerprint=["breaker-open", "nango"])

    from_class = {error_tracker.compute_fingerprint(caught(f))[0] for f in (here, there, explicit)}
    overridden, _ = error_tracker.compute_fingerprint(caught(here), ["something-else"])
    _, parts = error_tracker.compute_fingerprint(caught(here), ["tenant-x", error_tracker.DEFAULT_FINGERPRINT])

    assert len(from_class) == 1
    assert overridden not in from_class
    assert parts[:2] == ["custom", "tenant-x"] and any("<locals>.here:raise BreakerOpen" in p for p in parts)


_MODULE_V1 = '''
def load(tenant):
    return _lookup(tenant)


def _lookup(tenant):
    raise LookupError(f"tenant {tenant} not found")
'''

_MODULE_V2 = '''
"""Same code, edited above the raise site: new imports, a new function, comments, moved lines."""
import os

CACHE = {}


def unrelated():  # added later
    return os.getcwd()


def load(tenant):
    # look the tenant up
    CACHE.setdefault(tenant, 0)
    return _lookup(tenant)


def _lookup(tenant):
    if tenant is not None:
        raise   LookupError(f"tenant {tenant} not found")
'''

_MODULE_V3 = _MODULE_V1.replace('raise LookupError(f"tenant {tenant} not found")',
                                'raise LookupError(f"tenant {tenant} is unknown")')


def _load_module(path: Path, source: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fp_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_code_change_above_the_raise_site_keeps_the_fingerprint(tracker, tmp_path):
    tracker(repo_root=tmp_path)
    v1 = _load_module(tmp_path / "v1" / "fp_sample.py", _MODULE_V1)
    v2 = _load_module(tmp_path / "v2" / "fp_sample.py", _MODULE_V2)
    v3 = _load_module(tmp_path / "v3" / "fp_sample.py", _MODULE_V3)

    error_v1, error_v2, error_v3 = caught(v1.load, "t-1"), caught(v2.load, "t-2"), caught(v3.load, "t-1")
    assert error_v1.__traceback__.tb_next.tb_next.tb_lineno != error_v2.__traceback__.tb_next.tb_next.tb_lineno
    fingerprint_v1, parts = error_tracker.compute_fingerprint(error_v1)
    fingerprint_v2, _ = error_tracker.compute_fingerprint(error_v2)
    fingerprint_v3, _ = error_tracker.compute_fingerprint(error_v3)

    assert fingerprint_v1 == fingerprint_v2
    assert fingerprint_v3 != fingerprint_v1  # changing the raise line itself does split the group
    assert parts == ["LookupError", "fp_sample:load:return _lookup(tenant)",
                     'fp_sample:_lookup:raise LookupError(f"tenant {tenant} not found")']


# --- Lambda deadline -------------------------------------------------------------------------------
class ManualTimer:
    """threading.Timer's interface, fired by the test instead of by the wall clock."""

    made: list[ManualTimer] = []

    def __init__(self, interval: float, function, args=()):
        self.interval, self.function, self.args = interval, function, args
        self.started = self.cancelled = False
        self.daemon = False
        ManualTimer.made.append(self)

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        """What threading.Timer does when its interval passes: run unless cancelled."""
        if self.started and not self.cancelled:
            self.function(*self.args)


@pytest.fixture()
def manual_timers():
    ManualTimer.made = []
    return ManualTimer.made


def test_warns_shortly_before_the_deadline_with_the_breadcrumbs_so_far(tracker, logs, make_context, manual_timers):
    tracker(deadline_margin_ms=150, deadline_timer=ManualTimer)

    @track_errors
    def slow_handler(event, context):
        add_breadcrumb("received", "batch of 1")
        with record_scope(sqs_message_id="m-slow", tenant_id="tenant-d"):
            add_breadcrumb("external_call", "nango remediation", breaker="half_open")
            [watch] = manual_timers
            watch.fire()  # the handler is still inside its call when the watch's interval passes
        return "done"

    context = make_context(budget_ms=400)
    assert slow_handler({}, context) == "done"

    [watch] = manual_timers
    assert watch.daemon and 0 < watch.interval <= 0.25  # at most the 400 ms budget minus the 150 ms margin
    [warning] = [e for e in logs.error_events() if e["exception_type"] == "LambdaDeadlineWarning"]
    assert warning["context"]["request_id"] == context.aws_request_id
    assert [(c["kind"], c["scope"]) for c in warning["breadcrumbs"]] == [("received", "invocation"),
                                                                        ("external_call", "record")]
    assert warning["breadcrumbs"][1]["record"] == {"sqs_message_id": "m-slow", "tenant_id": "tenant-d"}
    assert warning["extra"]["budget_ms"] <= 400


def test_no_deadline_warning_when_the_handler_finishes_in_time(tracker, logs, make_context, manual_timers):
    tracker(deadline_margin_ms=150, deadline_timer=ManualTimer)

    @track_errors
    def quick_handler(event, context):
        return "done"

    assert quick_handler({}, make_context(budget_ms=400)) == "done"
    [watch] = manual_timers
    assert watch.started and watch.cancelled  # the handler returned before the watch's interval passed
    watch.fire()  # a timer thread waking after the cancel finds it cancelled
    assert logs.error_events() == []


def test_the_deadline_watch_is_a_real_timer_by_default(tracker):
    assert tracker(deadline_margin_ms=150).deadline_timer is threading.Timer


# --- Sentry -------------------------------------------------------------------------------------
class _EnvelopeRecorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":  # the SDK compresses with brotli only when brotli is importable
            import brotli

            body = brotli.decompress(body)
        self.server.envelopes.append(body.decode("utf-8"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def sentry_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EnvelopeRecorder)
    server.envelopes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sentry_events(envelopes: list[str]) -> list[dict]:
    events = []
    for envelope in envelopes:
        lines = envelope.split("\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_sentry_receives_scrubbed_events_with_our_fingerprint(tracker, logs, sentry_endpoint):
    port = sentry_endpoint.server_address[1]
    tracker(sentry_dsn=f"http://publickey@127.0.0.1:{port}/42")
    add_breadcrumb("received", "from https://bob:sentry-url-pass@mail.example.com/", cookie="sentry-cookie")
    with bind_context(tenant_id="tenant-sentry"):
        exc = caught(parse_header, "password=sentry-password Bearer sentry-bearer-token")
        event_id = capture_exception(exc, api_key="sentry-api-key", note="AKIAIOSFODNN7EXAMPLE")
    error_tracker.flush(timeout=5)
    deadline = time.monotonic() + 10
    while not _sentry_events(sentry_endpoint.envelopes) and time.monotonic() < deadline:
        time.sleep(0.05)

    arrived = "\n".join(sentry_endpoint.envelopes)
    for secret in ("sentry-url-pass", "sentry-cookie", "sentry-password", "sentry-bearer-token", "sentry-api-key",
                   "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in arrived, f"{secret!r} reached Sentry"
    [event] = _sentry_events(sentry_endpoint.envelopes)
    [ours] = logs.error_events()
    assert event["fingerprint"] == [ours["fingerprint"]]
    assert event["tags"]["swordfish_event_id"] == event_id
    assert event["tags"]["tenant_id"] == "tenant-sentry"
    assert event["release"] == "test-release"
    assert event["breadcrumbs"]["values"][0]["category"] == "received"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ValueError"
    assert any(frame.get("in_app") and frame["function"] == "parse_header"
               for frame in exception["stacktrace"]["frames"])


# --- swordfish errors ------------------------------------------------------------------------------
def test_errors_command_lists_groups_with_counts_and_a_sample(tracker, logs, error_file, capsys):
    for tenant in ("tenant-1", "tenant-2", "tenant-3"):
        with bind_context(tenant_id=tenant, correlation_id=f"corr-{tenant}"):
            add_breadcrumb("parsed", f"parsed for {tenant}")
            capture_exception(caught(lookup_tenant, tenant))
    capture_exception(caught(parse_header, "X-Bad"))
    lookup_fp = logs.error_events()[0]["fingerprint"]
    parse_fp = logs.error_events()[-1]["fingerprint"]
    capsys.readouterr()

    assert cli.main(["errors", "--file", str(error_file)]) == 0
    out = capsys.readouterr().out

    assert "2 error group(s), 4 event(s)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith((lookup_fp, parse_fp))}
    assert rows[lookup_fp][1] == "3" and rows[parse_fp][1] == "1"
    assert "LookupError: tenant tenant-3 not found" in out  # the latest sample of the group
    assert "tenant_id=tenant-3" in out and "correlation_id=corr-tenant-3" in out
    assert "parsed for tenant-3" in out
    assert f'File "{THIS_FILE}"' in out and 'raise LookupError(f"tenant {tenant_id} not found")' in out


def test_errors_command_says_what_to_do_without_a_file(monkeypatch, capsys):
    monkeypatch.delenv("SWORDFISH_ERROR_LOG_FILE", raising=False)
    assert cli.main(["errors"]) == 2
    assert "pass --file PATH or set SWORDFISH_ERROR_LOG_FILE" in capsys.readouterr().err
