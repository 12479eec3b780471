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
