"""The one Powertools Logger, Tracer and Metrics that every module shares.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
when set (the CDK sets them), else from constants.
"""

from __future__ import annotations

import contextlib
import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

from swordfish import constants

logger = Logger(service=constants.SERVICE_NAME)
tracer = Tracer(service=constants.SERVICE_NAME)
metrics = Metrics(namespace=constants.METRICS_NAMESPACE, service=constants.SERVICE_NAME)


@contextlib.contextmanager
def logs_to_stderr():
    """The command line's logs go to stderr: stdout carries only a command's results (ids, JSON).
    Restored afterwards (tests run commands in the same process as code that logs to stdout)."""
    handler = logger.registered_handler
    if not hasattr(handler, "setStream"):
        yield
        return
    previous = handler.stream
    if getattr(previous, "closed", False):
        # setStream flushes the stream it replaces: one already closed (a captured stdout of a test
        # run before, in the same process) would raise instead of being replaced
        handler.stream = sys.stderr
    else:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        if not getattr(previous, "closed", False):
            handler.setStream(previous)
