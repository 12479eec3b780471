"""The one Powertools Logger, Tracer and Metrics that every module shares.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
when set (the CDK sets them), else from constants.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from swordfish import constants

logger = Logger(service=constants.SERVICE_NAME)
tracer = Tracer(service=constants.SERVICE_NAME)
metrics = Metrics(namespace=constants.METRICS_NAMESPACE, service=constants.SERVICE_NAME)
