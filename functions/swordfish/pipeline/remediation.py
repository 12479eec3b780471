"""Retrying quarantines that were deferred (Nango down, its breaker open, or degraded mode).

Deferred requests sit on the remediation retry queue; this retries each through the same guarded
remediator. While Nango stays unavailable a request goes back with a delay, not to the DLQ, for up
to MAX_ATTEMPTS (a day at the maximum SQS delay); after that it fails and the queue's redrive policy
dead-letters it for an operator. The verdict was stored long before: only the quarantine waits.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from swordfish.monitoring.observability import logger
from swordfish.pipeline.processor import PermanentFailure
from swordfish.pipeline.submission import MailboxSource

RETRY_DELAY_SECONDS = 900  # SQS's longest delay
MAX_ATTEMPTS = 96  # 96 × 15 minutes = one day


class RemediationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant_id: str
    message_id: str
    source: MailboxSource
    why: str = ""
    attempts: int = 0


class RemediationRetry:
    def __init__(self, remediator: Any, sqs: Any, queue_url: str):
        self.remediator, self.sqs, self.queue_url = remediator, sqs, queue_url

    def handle(self, body: str) -> str:
        """Quarantine once more. Returns "quarantined", "gone" (the user already deleted it) or
        "requeued"; raises when the request is unusable or has waited too long."""
        from swordfish.integrations.nango import NangoNotFound
        from swordfish.resilience.fallbacks import RemediationDeferred

        try:
            request = RemediationRequest.model_validate_json(body)
        except ValidationError as exc:
            raise PermanentFailure(f"not a remediation request: {exc}", "invalid_remediation") from exc
        try:
            outcome = self.remediator.quarantine(request)
        except NangoNotFound:
            logger.info("message gone before it could be quarantined", extra={"message_id": request.message_id})
            return "gone"
        except RemediationDeferred as exc:
            if request.attempts + 1 >= MAX_ATTEMPTS:
                raise RuntimeError(f"quarantine of {request.message_id} still failing after "
                                   f"{MAX_ATTEMPTS} attempts: {exc}") from exc
            again = request.model_copy(update={"attempts": request.attempts + 1, "why": str(exc)})
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(again.model_dump(mode="json")),
                                  DelaySeconds=RETRY_DELAY_SECONDS)
            return "requeued"
        return str(outcome)
