"""Bulk response jobs on AWS (issue 28): the response-jobs queue and its own DLQ, the worker on the
queue (an SQS event source), and what the API and the console need to start a job (send to the
queue, nothing else).

The worker moves mail through Nango (its secret), guarded by the breaker table, and sends a job back
to its own queue with a delay while items wait (throttle, open breaker). Its concurrency is small on
purpose: the per-tenant token bucket is the real throttle, and a receive Lambda throttled would
count towards maxReceiveCount. The DLQ is alarmed in the observability stack.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.lambda_function import FunctionKit

RESPONSE_RESERVED_CONCURRENCY = 3
RESPONSE_MAX_CONCURRENCY = 2


class ResponseJobResources(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, data, kit: FunctionKit, queue_factory) -> None:
        super().__init__(scope, construct_id)
        visibility = constants.RESPONSE_JOBS_TIMEOUT_SECONDS * 6
        self.dlq = queue_factory("ResponseJobsDlq", constants.RESPONSE_JOBS_DLQ_NAME, dlq=None, visibility=visibility)
        self.queue = queue_factory("ResponseJobs", constants.RESPONSE_JOBS_QUEUE_NAME, dlq=self.dlq,
                                   visibility=visibility)
        NagSuppressions.add_resource_suppressions(self.dlq, [NagPackSuppression(
            id="AwsSolutions-SQS3", reason="This queue is itself the response jobs' dead-letter queue.")])
        self.worker = kit.function(
            scope, "ResponseWorker",
            function_name=constants.RESPONSE_JOBS_FUNCTION_NAME, handler=constants.RESPONSE_JOBS_HANDLER,
            description="Quarantines, releases or deletes a campaign's or a search's mail in every mailbox",
            timeout_seconds=constants.RESPONSE_JOBS_TIMEOUT_SECONDS, memory_mb=512,
            reserved_concurrency=RESPONSE_RESERVED_CONCURRENCY, reads_flags=False,
            environment={"SWORDFISH_RESPONSE_JOBS_QUEUE_URL": self.queue.queue_url},
        )
        self.worker.function.add_event_source(event_sources.SqsEventSource(
            self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=RESPONSE_MAX_CONCURRENCY))
        role = self.worker.role
        permissions.send_to_queue(role, self.queue, data.key)  # the job back, delayed, while items wait
        permissions.read_secret(role, data.app_secret)
        permissions.read_secret(role, data.nango_secret)
        permissions.read_secret(role, data.sentry_dsn_secret)
        permissions.read_write_items(role, data.breaker_table, data.key)

    def start_from(self, role: iam.IRole, key) -> None:
        """Let a function (the API, the console) put a stored job on the queue."""
        permissions.send_to_queue(role, self.queue, key)
