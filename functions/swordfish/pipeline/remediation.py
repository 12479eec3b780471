"""Retrying quarantines that were deferred (Nango down, its breaker open, or degraded mode).

Deferred requests sit on the remediation retry queue; this retries each through the same guarded
remediator. While Nango stays unavailable a request goes back with a delay, not to the DLQ, for up
to MAX_ATTEMPTS (a day at the maximum SQS delay); after that it fails and the queue's redrive policy
dead-letters it for an operator. The verdict was stored long before: only the quarantine waits.
"""

from __future__ import annotations

from pydantic import ValidationError

from swordfish.monitoring.observability import logger
from swordfish.pipeline.ports import (
    SQS_MAX_DELAY_SECONDS,
    MessageGone,
    PermanentFailure,
    RemediationQueue,
    RemediationRequest,
    RemediationUnavailable,
    Remediator,
)

__all__ = ["MAX_ATTEMPTS", "RETRY_DELAY_SECONDS", "RemediationRequest", "RemediationRetry"]

RETRY_DELAY_SECONDS = SQS_MAX_DELAY_SECONDS
MAX_ATTEMPTS = 96  # 96 × 15 minutes = one day


class RemediationRetry:
    def __init__(self, remediator: Remediator, queue: RemediationQueue):
        self.remediator, self.queue = remediator, queue

    def handle(self, body: str) -> str:
        """Quarantine once more. Returns "quarantined", "gone" (the user already deleted it) or
        "requeued"; raises when the request is unusable or has waited too long."""
        try:
            request = RemediationRequest.model_validate_json(body)
        except ValidationError as exc:
            raise PermanentFailure(f"not a remediation request: {exc}", "invalid_remediation") from exc
        try:
            outcome = self.remediator.quarantine(request)
        except MessageGone:
            logger.info("message gone before it could be quarantined", extra={"message_id": request.message_id})
            return "gone"
        except RemediationUnavailable as exc:
            if request.attempts + 1 >= MAX_ATTEMPTS:
                raise RuntimeError(f"quarantine of {request.message_id} still failing after "
                                   f"{MAX_ATTEMPTS} attempts: {exc}") from exc
            again = request.model_copy(update={"attempts": request.attempts + 1, "why": str(exc)})
            self.queue.defer(again, delay_seconds=RETRY_DELAY_SECONDS)
            return "requeued"
        return str(outcome)
