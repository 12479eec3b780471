"""Lambda: refresh the threat feeds into Redis, on an EventBridge schedule.

The event carries nothing we need; the feeds and Redis come from settings. Raises only when every
configured feed failed, so Lambda's Errors metric (and its alarm) reflects a refresher that loads
nothing; per-feed failures are metrics (FeedRefreshFailed, dimension feed) and error logs.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import wiring
from swordfish.integrations.feed_refresher import emit_refresh_metrics
from swordfish.monitoring.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    report = wiring.feed_refresher().refresh_all()  # Redis and HTTP pools reused across warm invocations
    emit_refresh_metrics(report)
    if report.all_failed:
        errors = "; ".join(f"{r.feed}: {r.error}" for r in report.failed)
        raise RuntimeError(f"every threat feed failed to refresh; last good snapshots kept ({errors})")
    return report.as_dict()
