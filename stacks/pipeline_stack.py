"""Pipeline: the emails queue and its DLQ, the processor on an SQS event source, the remediation
retry queue, and the threat-feed refresher on a schedule."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs import permissions
from stacks.constructs.alerts import AlertsResources
from stacks.constructs.lambda_function import FunctionKit
from stacks.constructs.response_jobs import ResponseJobResources
from stacks.data_stack import DataStack
from stacks.settings import EnvSettings

QUEUE_RETENTION_DAYS = 4
REMEDIATION_RETRY_DLQ_NAME = f"{constants.REMEDIATION_RETRY_QUEUE_NAME}-dlq"
# Gentle on the mail providers' write limits while they recover. The event source polls with at
# most REMEDIATION_MAX_CONCURRENCY (< the reservation): a receive that Lambda throttles would still
# count towards maxReceiveCount and push deferred quarantines into the DLQ.
REMEDIATION_RESERVED_CONCURRENCY = 5
REMEDIATION_MAX_CONCURRENCY = 4
FEED_REFRESHER_RESERVED_CONCURRENCY = 1  # one refresh at a time
TRACE_PURGE_RESERVED_CONCURRENCY = 1  # one purge at a time
# A refresh that EventBridge could not deliver is retried, then parked in its own DLQ (alarmed).
FEED_SCHEDULE_RETRY_ATTEMPTS = 2


class PipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, data: DataStack,
                 flags_configuration_arn: str, kit_props: dict, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        def queue(construct_id: str, name: str, *, dlq: sqs.IQueue | None, visibility: int) -> sqs.Queue:
            return sqs.Queue(
                self, construct_id,
                queue_name=name,
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=data.key,
                data_key_reuse=Duration.minutes(15),  # fewer KMS calls at 10k emails/min
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(visibility),
                retention_period=Duration.days(constants.DLQ_RETENTION_DAYS if dlq is None
                                               else QUEUE_RETENTION_DAYS),
                dead_letter_queue=(sqs.DeadLetterQueue(queue=dlq, max_receive_count=constants.MAX_RECEIVE_COUNT)
                                   if dlq is not None else None),
            )

        self.dlq = queue("EmailsDlq", constants.EMAILS_DLQ_NAME, dlq=None,
                         visibility=constants.VISIBILITY_TIMEOUT_SECONDS)
        self.queue = queue("Emails", constants.EMAILS_QUEUE_NAME, dlq=self.dlq,
                           visibility=constants.VISIBILITY_TIMEOUT_SECONDS)
        self.remediation_dlq = queue("RemediationRetryDlq", REMEDIATION_RETRY_DLQ_NAME, dlq=None,
                                     visibility=constants.VISIBILITY_TIMEOUT_SECONDS)
        self.remediation_queue = queue("RemediationRetry", constants.REMEDIATION_RETRY_QUEUE_NAME,
                                       dlq=self.remediation_dlq,
                                       visibility=constants.VISIBILITY_TIMEOUT_SECONDS)
        for dlq in (self.dlq, self.remediation_dlq):
            NagSuppressions.add_resource_suppressions(dlq, [NagPackSuppression(
                id="AwsSolutions-SQS3", reason="This queue is itself a dead-letter queue.")])

        kit = FunctionKit(self, "Kit", **kit_props)
        # Alerts to the MSP (issue 28): the processor publishes malware and VIP alerts to their queue.
        self.alerts = AlertsResources(self, "AlertsResources", settings=settings, data=data, kit=kit,
                                      queue_factory=queue)
        # Bulk response (issue 28): the job queue, its DLQ and the worker.
        self.response_jobs = ResponseJobResources(self, "ResponseJobResources", data=data, kit=kit,
                                                  queue_factory=queue)
        self.processor = kit.function(
            self, "Processor",
            function_name=constants.PROCESSOR_FUNCTION_NAME,
            handler=constants.PROCESSOR_HANDLER,
            description="Analyses batches of submitted emails and stores their verdicts",
            timeout_seconds=constants.PROCESSOR_TIMEOUT_SECONDS,
            memory_mb=settings.processor_memory_mb,
            reserved_concurrency=settings.processor_reserved_concurrency,
            environment={
                "SWORDFISH_EMAILS_QUEUE_URL": self.queue.queue_url,
                "SWORDFISH_EMAILS_DLQ_URL": self.dlq.queue_url,
                "SWORDFISH_REMEDIATION_RETRY_QUEUE_URL": self.remediation_queue.queue_url,
                # Raw submissions archived before analysis, for replay after a restore (issue 13).
                "SWORDFISH_RAW_MAIL_ARCHIVE_BUCKET": data.backup_bucket.bucket_name,
                "SWORDFISH_ALERTS_QUEUE_URL": self.alerts.queue.queue_url,
            },
        )
        self.processor.function.add_event_source(event_sources.SqsEventSource(
            self.queue,
            batch_size=constants.PROCESSOR_BATCH_SIZE,
            max_batching_window=Duration.seconds(constants.PROCESSOR_BATCHING_WINDOW_SECONDS),
            max_concurrency=settings.processor_max_concurrency,
            report_batch_item_failures=True,
        ))
        role = self.processor.role
        # Records go back to their own queue, delayed, while Nango or S3 is down (SqsQueuePort.requeue).
        permissions.send_to_queue(role, self.queue, data.key)
        permissions.send_to_queue(role, self.dlq, data.key)  # poison records go with their reason
        permissions.send_to_queue(role, self.remediation_queue, data.key)
        self.alerts.publish_from(role, data.key)
        permissions.read_objects(role, data.large_mail_bucket, data.key)
        permissions.write_objects(role, data.backup_bucket, data.key)  # the raw-submission archive
        permissions.read_secret(role, data.app_secret)
        permissions.read_secret(role, data.nango_secret)
        permissions.read_secret(role, data.sentry_dsn_secret)
        permissions.read_write_items(role, data.breaker_table, data.key)
        permissions.read_flags(role, flags_configuration_arn)

        # Deferred quarantines (Nango down, or degraded mode) are retried from their own queue.
        self.remediation = kit.function(
            self, "Remediation",
            function_name=constants.REMEDIATION_FUNCTION_NAME,
            handler=constants.REMEDIATION_HANDLER,
            description="Retries deferred quarantines through Nango",
            timeout_seconds=constants.REMEDIATION_TIMEOUT_SECONDS,
            memory_mb=512,
            reserved_concurrency=REMEDIATION_RESERVED_CONCURRENCY,
            environment={"SWORDFISH_REMEDIATION_RETRY_QUEUE_URL": self.remediation_queue.queue_url},
        )
        self.remediation.function.add_event_source(event_sources.SqsEventSource(
            self.remediation_queue, batch_size=10, report_batch_item_failures=True,
            max_concurrency=REMEDIATION_MAX_CONCURRENCY))
        permissions.send_to_queue(self.remediation.role, self.remediation_queue, data.key)  # requeue with a delay
        permissions.read_secret(self.remediation.role, data.nango_secret)
        permissions.read_secret(self.remediation.role, data.sentry_dsn_secret)
        permissions.read_write_items(self.remediation.role, data.breaker_table, data.key)

        self.feed_refresher = kit.function(
            self, "FeedRefresher",
            function_name=constants.FEED_REFRESHER_FUNCTION_NAME,
            handler=constants.FEED_REFRESHER_HANDLER,
            description="Refreshes the threat-intelligence feeds into the cache",
            timeout_seconds=constants.FEED_REFRESHER_TIMEOUT_SECONDS,
            memory_mb=1024,
            reserved_concurrency=FEED_REFRESHER_RESERVED_CONCURRENCY,
            # Without these the refresher has nothing to download and the indicators stay empty.
            environment={f"{constants.ENV_PREFIX}{feed.upper()}_FEED_URL": url for feed in constants.THREAT_FEEDS
                         if (url := getattr(settings, f"{feed}_feed_url"))},
        )
        permissions.read_write_items(self.feed_refresher.role, data.breaker_table, data.key)
        permissions.read_flags(self.feed_refresher.role, flags_configuration_arn)
        self.feed_schedule_dlq = sqs.Queue(
            self, "FeedScheduleDlq",
            # EventBridge delivers to a DLQ under a customer-managed key only with a key policy for it;
            # a schedule event holds nothing secret, so SQS-managed encryption is enough.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(constants.DLQ_RETENTION_DAYS),
        )
        NagSuppressions.add_resource_suppressions(self.feed_schedule_dlq, [NagPackSuppression(
            id="AwsSolutions-SQS3", reason="This queue is itself the dead-letter queue of the feed schedule.")])
        self.feed_schedule = events.Rule(
            self, "FeedSchedule",
            description="Threat-feed refresh",
            schedule=events.Schedule.rate(Duration.minutes(constants.FEED_REFRESH_MINUTES)),
            targets=[targets.LambdaFunction(self.feed_refresher.function, retry_attempts=FEED_SCHEDULE_RETRY_ATTEMPTS,
                                            max_event_age=Duration.minutes(constants.FEED_REFRESH_MINUTES),
                                            dead_letter_queue=self.feed_schedule_dlq)],
        )

        # A verdict's trace (recipients, links, attachments) is kept as long as the raw archive keeps
        # the message (issue 28): deleted once a day, as `swordfish trace purge` does by hand. The
        # functions' login deletes (every tenant in scope); a run out of budget leaves the rest to the next.
        self.trace_purge = kit.function(
            self, "TracePurge",
            function_name=constants.TRACE_PURGE_FUNCTION_NAME,
            handler=constants.TRACE_PURGE_HANDLER,
            description="Deletes verdict traces past the raw archive's retention",
            timeout_seconds=constants.TRACE_PURGE_TIMEOUT_SECONDS,
            memory_mb=512,
            reserved_concurrency=TRACE_PURGE_RESERVED_CONCURRENCY,
            reads_flags=False,
        )
        permissions.read_secret(self.trace_purge.role, data.app_secret)
        permissions.read_secret(self.trace_purge.role, data.sentry_dsn_secret)
        self.trace_purge_schedule = events.Rule(
            self, "TracePurgeSchedule",
            description="Deletes verdict traces past the raw archive's retention",
            schedule=events.Schedule.rate(Duration.hours(constants.TRACE_PURGE_SCHEDULE_HOURS)),
            targets=[targets.LambdaFunction(self.trace_purge.function, retry_attempts=FEED_SCHEDULE_RETRY_ATTEMPTS,
                                            max_event_age=Duration.hours(1))],  # a missed day: the next run purges both
        )
