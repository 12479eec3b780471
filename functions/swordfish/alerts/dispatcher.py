"""Delivering alerts: each event fans out to the rules that want it; each delivery is tried at once
and, when it fails, again after a growing wait (30 s, 1 min, 2 min, ... capped at an hour), up to
``max_attempts``; then it goes to the alerts' own dead-letter queue with the reason (never the
emails DLQ). A receiver that answers a 4xx other than 408/425/429 is dead-lettered at once:
trying again would not help.

The queue carries two kinds of message (JSON): ``{"type": "event", "event": {...}}`` from
``SqsAlertPublisher`` (the processor, the rate monitor, the campaign hook), and ``{"type":
"delivery", "rule_id", "rule_tenant", "event", "attempt", "not_before"}`` for a retry. SQS delays
a message 15 minutes at most, so ``not_before`` is the truth: a message that comes back early is
put back with the time that is left. The clock is injected (tests move it; nothing sleeps).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from swordfish.alerts.channels import Channel, DeliveryFailed
from swordfish.alerts.events import AlertEvent
from swordfish.alerts.rules import AlertRule, AlertRuleStore
from swordfish.monitoring.observability import logger
from swordfish.pipeline.ports import SQS_MAX_DELAY_SECONDS

REASON_ATTRIBUTE, CODE_ATTRIBUTE = "failure_reason", "failure_code"  # as the emails DLQ (pipeline.queues)


class AlertQueue(Protocol):
    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None: ...
    def dead_letter(self, body: Mapping[str, Any], reason: str, code: str) -> None: ...


def _attr(value: str) -> dict:
    text = "".join(c if c in "\t\n\r" or " " <= c <= "\ufffd" else "\ufffd" for c in value[:1024])
    return {"DataType": "String", "StringValue": text or "-"}


class SqsAlertQueue:
    """``AlertQueue`` on SQS: the alerts queue and its dead-letter queue."""

    def __init__(self, sqs_client: Any, *, queue_url: str, dlq_url: str,
                 max_delay_seconds: int = SQS_MAX_DELAY_SECONDS):
        # max_delay_seconds 0: every retry visible at once and held back by its not_before alone
        # (tests that move the clock instead of waiting).
        self.sqs, self.queue_url, self.dlq_url = sqs_client, queue_url, dlq_url
        self.max_delay_seconds = max_delay_seconds

    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None:
        delay = max(0, min(self.max_delay_seconds, int(delay_seconds)))
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body, default=str),
                              **({"DelaySeconds": delay} if delay else {}))

    def dead_letter(self, body: Mapping[str, Any], reason: str, code: str) -> None:
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(body, default=str),
                              MessageAttributes={REASON_ATTRIBUTE: _attr(reason), CODE_ATTRIBUTE: _attr(code)})


class SqsAlertPublisher:
    """``AlertPublisher``: events onto the alerts queue (ten per call)."""

    def __init__(self, sqs_client: Any, queue_url: str):
        self.sqs, self.queue_url = sqs_client, queue_url

    def publish(self, events: Iterable[AlertEvent]) -> None:
        events = list(events)
        for start in range(0, len(events), 10):
            chunk = events[start:start + 10]
            result = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"type": "event", "event": e.to_dict()})}
                for i, e in enumerate(chunk)])
            if result.get("Failed"):
                raise RuntimeError(f"the alerts queue refused {len(result['Failed'])} event(s): "
                                   f"{result['Failed'][0].get('Message', '')[:200]}")


@dataclass
class AlertDispatcher:
    rules: AlertRuleStore
    queue: AlertQueue
    channels: Mapping[str, Channel]
    clock: Callable[[], float] = time.time
    max_attempts: int = 8
    backoff_seconds: float = 30.0
    max_backoff_seconds: float = 3600.0
    outcomes: list[tuple[str, int, str]] = field(default_factory=list, repr=False)  # (event id, rule, outcome)

    def backoff(self, failed_attempt: int) -> float:
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, failed_attempt - 1))

    def handle(self, body: str) -> list[str]:
        """One queue message; returns the outcome per delivery. Raises only for a message that is not ours."""
        message = json.loads(body)
        if not isinstance(message, dict) or message.get("type") not in ("event", "delivery"):
            raise ValueError("not an alert message")
        event = AlertEvent.from_dict(message["event"])
        if message["type"] == "event":
            return [self._attempt(rule, event, 1) for rule in self.rules.matching(event)]
        wait = float(message.get("not_before") or 0) - self.clock()
        if wait > 0:  # back early (SQS's 15-minute ceiling): wait out the rest
            self.queue.send(message, int(wait + 0.999))
            return ["waiting"]
        rule = self.rules.get(int(message["rule_id"]), message.get("rule_tenant"))
        if rule is None:
            self._record(event, int(message["rule_id"]), "dropped: the rule was disabled")
            return ["dropped"]
        return [self._attempt(rule, event, int(message.get("attempt") or 1))]

    def _record(self, event: AlertEvent, rule_id: int, outcome: str) -> None:
        self.outcomes.append((event.event_id, rule_id, outcome))
        del self.outcomes[:-1000]
        logger.info("alert delivery", extra={"event_id": event.event_id, "kind": event.kind, "rule_id": rule_id,
                                             "outcome": outcome})

    def _attempt(self, rule: AlertRule, event: AlertEvent, attempt: int) -> str:
        channel = self.channels.get(rule.channel)
        try:
            if channel is None:
                raise DeliveryFailed(f"no {rule.channel} channel is configured here", permanent=False)
            channel.send(rule, event, attempt)
        except DeliveryFailed as failed:
            return self._failed(rule, event, attempt, failed)
        self._record(event, rule.rule_id, "delivered")
        return "delivered"

    def _failed(self, rule: AlertRule, event: AlertEvent, attempt: int, failed: DeliveryFailed) -> str:
        body = {"type": "delivery", "rule_id": rule.rule_id, "rule_tenant": rule.tenant_id,
                "event": event.to_dict(), "attempt": attempt + 1, "last_error": failed.reason}
        if failed.permanent or attempt >= self.max_attempts:
            why = "refused for good" if failed.permanent else f"failed {attempt} times"
            # Redriven from the DLQ it starts over: attempt 1, due at once.
            self.queue.dead_letter(body | {"attempt": 1, "not_before": 0, "attempts_made": attempt},
                                   f"{rule.channel} {why}: {failed.reason}",
                                   "alert_refused" if failed.permanent else "alert_retries_exhausted")
            self._record(event, rule.rule_id, "dead_lettered")
            logger.warning("alert dead-lettered", extra={"event_id": event.event_id, "rule_id": rule.rule_id,
                                                         "attempts": attempt, "reason": failed.reason})
            return "dead_lettered"
        wait = self.backoff(attempt)
        self.queue.send(body | {"not_before": self.clock() + wait}, int(min(wait, SQS_MAX_DELAY_SECONDS)))
        self._record(event, rule.rule_id, f"retry in {wait:.0f}s: {failed.reason}")
        return "retrying"
