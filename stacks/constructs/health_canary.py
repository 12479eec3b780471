"""The health canary: a small function that runs the deep health check every minute, so that
`HealthScoreLow`, `CircuitOpen`, the feed-age alarm and the dashboard see data on AWS (nothing else
calls `/health/deep` there). It reads what the deep check reads, and nothing more."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.lambda_function import FunctionKit, SwordfishFunction

HEALTH_CANARY_RESERVED_CONCURRENCY = 1  # one check at a time; a slow run never stacks up


class HealthCanary(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, kit_props: dict, data, queue: sqs.IQueue,
                 dlq: sqs.IQueue, flags_configuration_arn: str) -> None:
        super().__init__(scope, construct_id)
        kit = FunctionKit(self, "Kit", **kit_props)
        self.function: SwordfishFunction = kit.function(
            self, "Function",
            function_name=constants.HEALTH_CANARY_FUNCTION_NAME,
            handler=constants.HEALTH_CANARY_HANDLER,
            description="Runs the deep health check every minute and emits the health metrics",
            timeout_seconds=constants.HEALTH_CANARY_TIMEOUT_SECONDS,
            memory_mb=512,
            reserved_concurrency=HEALTH_CANARY_RESERVED_CONCURRENCY,
            environment={"SWORDFISH_EMAILS_QUEUE_URL": queue.queue_url, "SWORDFISH_EMAILS_DLQ_URL": dlq.queue_url},
        )
        role = self.function.role
        permissions.read_secret(role, data.app_secret)  # PostgreSQL: a fresh connection as the app role
        permissions.read_queue_depth(role, queue)
        permissions.read_queue_depth(role, dlq)
        permissions.read_metric_statistics(role)  # the oldest message's age
        permissions.read_items(role, data.breaker_table, data.key)  # every breaker's state
        permissions.read_flags(role, flags_configuration_arn)
        self.schedule = events.Rule(
            self, "Schedule",
            description="Health canary: the deep health check every minute",
            schedule=events.Schedule.rate(Duration.minutes(constants.HEALTH_CANARY_RATE_MINUTES)),
            # A missed run is not retried: the next one is a minute away, and HealthScoreLow treats
            # the gap as breaching.
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=0,
                                            max_event_age=Duration.minutes(1))],
        )
