"""Lambda: validate AWS Backup's restore test (EventBridge "Restore Job State Change", COMPLETED).

Thin: the checks and the PutRestoreValidationResult call are in swordfish.backup.aws_restore_test.
A failed validation is also a metric (RestoreValidationFailed), which the backup stack alarms on.
"""

from __future__ import annotations

import boto3
import psycopg
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from swordfish import constants
from swordfish.backup.aws_restore_test import restore_job_id, summary, validate
from swordfish.monitoring.observability import logger, metrics, tracer


def _read_master_secret() -> dict:
    from aws_lambda_powertools.utilities import parameters

    return parameters.get_secret(constants.DB_MASTER_SECRET_NAME, transform="json", max_age=60)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    result = validate(restore_job_id(event), backup=boto3.client("backup"), rds=boto3.client("rds"),
                      read_secret=_read_master_secret, connect=psycopg.connect)
    logger.info("restore test validated", extra={"validation": summary(result)})
    if result.status == "FAILED":
        metrics.add_metric(name=constants.METRIC_RESTORE_VALIDATION_FAILED, unit=MetricUnit.Count, value=1)
    return {"restore_job_id": result.restore_job_id, "status": result.status, "message": result.message()}
