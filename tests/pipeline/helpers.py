"""Shared steps for pipeline tests: put messages on the real queue, receive them as Lambda would."""

from __future__ import annotations

import json
import time

import psycopg
import psycopg.rows
from swordfish import constants

from devstack.poller import FakeLambdaContext, to_lambda_record


def send_bodies(stack, bodies: list[str]) -> None:
    sqs = stack.client("sqs")
    for i in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=stack.info.queue_url, Entries=[
            {"Id": str(j), "MessageBody": body} for j, body in enumerate(bodies[i:i + 10])])


def receive_event(stack, expected: int, timeout: float = 10) -> dict:
    """Receive up to `expected` messages (one batch) and shape them as the SQS event Lambda delivers."""
    sqs = stack.client("sqs")
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=stack.info.queue_url, MaxNumberOfMessages=min(10, expected - len(messages)),
                                  WaitTimeSeconds=1, AttributeNames=["All"], MessageAttributeNames=["All"],
                                  VisibilityTimeout=2).get("Messages", [])
        messages.extend(got)
    queue_arn = f"arn:aws:sqs:eu-west-1:000000000000:{constants.EMAILS_QUEUE_NAME}"
    return {"Records": [to_lambda_record(m, queue_arn, "eu-west-1") for m in messages]}


def invoke(event: dict) -> dict:
    from handlers.processor import handler

    return handler(event, FakeLambdaContext())


def failed_ids(response: dict) -> set[str]:
    return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}


def verdict_rows(stack) -> list[dict]:
    with psycopg.connect(stack.info.superuser_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM verdicts ORDER BY message_id").fetchall()


def drain(stack, queue_url: str, timeout: float = 3) -> list[dict]:
    sqs = stack.client("sqs")
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
        if not got and out:
            break
        out.extend(got)
    return out


def body_of(message: dict) -> dict:
    return json.loads(message["Body"])
