"""The SQS side of the pipeline: dead-lettering with a reason, requeueing with a delay, deferring work."""

from __future__ import annotations

import re
from typing import Any

from swordfish.pipeline.ports import SQS_MAX_DELAY_SECONDS, IncomingRecord, RemediationRequest

REASON_ATTRIBUTE = "failure_reason"
CODE_ATTRIBUTE = "failure_code"
CORRELATION_ATTRIBUTE = "correlation_id"


# SQS refuses a message whose attributes hold characters outside this set; a reason can quote mail.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _string_attr(value: str) -> dict:
    return {"DataType": "String", "StringValue": _NOT_SQS_TEXT.sub("\ufffd", value[:1024]) or "-"}


def _delay(seconds: int) -> int:
    return max(0, min(SQS_MAX_DELAY_SECONDS, int(seconds)))


class SqsRemediationQueue:
    """``RemediationQueue`` port: deferred quarantines on the remediation retry queue."""

    def __init__(self, sqs_client: Any, queue_url: str | None):
        self.sqs, self.queue_url = sqs_client, queue_url

    def defer(self, request: RemediationRequest, delay_seconds: int = 0) -> None:
        if not self.queue_url:
            raise RuntimeError("remediation is deferred but no retry queue is configured "
                               "(set SWORDFISH_REMEDIATION_RETRY_QUEUE_URL)")
        kwargs = {"DelaySeconds": _delay(delay_seconds)} if delay_seconds else {}
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=request.model_dump_json(), **kwargs)


class SqsQueuePort:
    """``QueuePort``: the emails queue, its DLQ and the remediation retry queue."""

    def __init__(self, sqs_client: Any, *, queue_url: str, dlq_url: str, remediation_queue_url: str | None):
        self.sqs, self.queue_url, self.dlq_url = sqs_client, queue_url, dlq_url
        self.remediation_queue_url = remediation_queue_url
        self.remediation = SqsRemediationQueue(sqs_client, remediation_queue_url)

    def _attributes(self, record: IncomingRecord) -> dict:
        attrs = {}
        if record.correlation_id:
            attrs[CORRELATION_ATTRIBUTE] = _string_attr(record.correlation_id)
        return attrs

    def dead_letter(self, record: IncomingRecord, reason: str, code: str) -> None:
        attrs = self._attributes(record) | {REASON_ATTRIBUTE: _string_attr(reason), CODE_ATTRIBUTE: _string_attr(code),
                                            "original_message_id": _string_attr(record.queue_message_id)}
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=record.body or "(empty body)",
                              MessageAttributes=attrs)

    def requeue(self, record: IncomingRecord, delay_seconds: int) -> None:
        # A new copy with a delay, so an outage does not use up the receive count and reach the DLQ.
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=record.body,
                              DelaySeconds=_delay(delay_seconds),
                              MessageAttributes=self._attributes(record))

    def defer_remediation(self, request: RemediationRequest) -> None:
        self.remediation.defer(request)


class DeadLetters:
    """The emails DLQ for an operator: read each message's reason, redrive it to the emails queue or
    discard it. SQS has no "get message by id": every call receives what is there (hidden from
    other readers for ``hold_seconds``), acts on the chosen ones and makes the rest visible again."""

    def __init__(self, sqs_client: Any, *, dlq_url: str, queue_url: str, hold_seconds: int = 60):
        self.sqs, self.dlq_url, self.queue_url, self.hold = sqs_client, dlq_url, queue_url, hold_seconds

    def _receive_all(self, limit: int) -> list[dict]:
        seen: dict[str, dict] = {}
        while len(seen) < limit:
            got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=min(10, limit - len(seen)),
                                           VisibilityTimeout=self.hold, WaitTimeSeconds=0,
                                           MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
            fresh = [m for m in got if m["MessageId"] not in seen]
            if not fresh:
                break
            seen.update((m["MessageId"], m) for m in fresh)
        return list(seen.values())

    def _release(self, messages: list[dict]) -> None:
        for m in messages:
            self.sqs.change_message_visibility(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"],
                                               VisibilityTimeout=0)

    @staticmethod
    def describe(message: dict) -> dict:
        import json

        attrs = {k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()}
        try:
            body = json.loads(message.get("Body") or "")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return {"id": message["MessageId"], "code": attrs.get(CODE_ATTRIBUTE) or "unknown",
                "reason": attrs.get(REASON_ATTRIBUTE) or "(no reason recorded: SQS's own redrive)",
                "tenant_id": body.get("tenant_id") if isinstance(body.get("tenant_id"), str) else None,
                "message_id": body.get("message_id") if isinstance(body.get("message_id"), str) else None,
                "correlation_id": attrs.get(CORRELATION_ATTRIBUTE)}

    def list(self, limit: int = 100) -> list[dict]:
        messages = self._receive_all(limit)
        self._release(messages)
        return [self.describe(m) for m in messages]

    def act(self, ids: set[str], action: str, *, limit: int = 1000) -> list[dict]:
        """``redrive`` (a copy to the emails queue, then deleted here) or ``discard`` the messages with
        these DLQ ids; returns what was done to each, the rest is left as it was."""
        if action not in ("redrive", "discard"):
            raise ValueError("action is redrive or discard")
        messages = self._receive_all(limit)
        chosen = [m for m in messages if m["MessageId"] in ids]
        done = []
        try:
            for m in chosen:
                if action == "redrive":
                    attrs = {k: v for k, v in (m.get("MessageAttributes") or {}).items()
                             if k == CORRELATION_ATTRIBUTE}
                    self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=m["Body"], MessageAttributes=attrs)
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])
                done.append(self.describe(m))
        finally:
            self._release([m for m in messages if m not in chosen])
        return done


def send_job(sqs_client: Any, queue_url: str, job_id: int, delay_seconds: int = 0) -> None:
    """A bulk response job onto its queue (``{"job_id": n}``): the worker takes a chunk of it."""
    import json

    kwargs = {"DelaySeconds": _delay(delay_seconds)} if delay_seconds else {}
    sqs_client.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"job_id": int(job_id)}), **kwargs)
