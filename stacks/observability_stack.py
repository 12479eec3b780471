"""Observability: the alarm topic, the dashboard, the alarms, and error tracking on AWS (a metric
filter over the functions' structured error events, an alarm on it, and the Logs Insights query
"errors by fingerprint")."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnCondition, CfnParameter, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from swordfish import constants

from stacks.constructs.health_canary import HealthCanary
from stacks.constructs.lambda_function import SwordfishFunction
from stacks.settings import EnvSettings

ALARM_EMAIL_PARAMETER = "AlarmEmail"
ERRORS_BY_FINGERPRINT_QUERY_NAME = f"{constants.SERVICE_NAME}/errors-by-fingerprint"
ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
RDS_CPU_ALARM_PERCENT = 80
PROCESSOR_P95_DURATION_FRACTION = 0.8  # of the timeout
SERVICE_DIMENSION = {constants.METRIC_SERVICE_DIMENSION: constants.SERVICE_NAME}
# Metrics Insights: the highest state over every breaker, whatever its name (closed 0 .. open 2).
ANY_CIRCUIT_QUERY = (f'SELECT MAX({constants.METRIC_CIRCUIT_STATE}) FROM SCHEMA("{constants.METRICS_NAMESPACE}", '
                     f"{constants.CIRCUIT_DIMENSION}, {constants.METRIC_SERVICE_DIMENSION})")
CIRCUITS_BY_NAME_QUERY = (f'SELECT MAX({constants.METRIC_CIRCUIT_STATE}) FROM SCHEMA("{constants.METRICS_NAMESPACE}", '
                          f"{constants.CIRCUIT_DIMENSION}, {constants.METRIC_SERVICE_DIMENSION}) "
                          f"GROUP BY {constants.CIRCUIT_DIMENSION}")
# Deploy-review alarms (issue 12).
API_5XX_ALARM_COUNT = 5  # server errors per 5 minutes
API_LATENCY_P95_ALARM_MS = 2000  # API Gateway latency p95 (the integration timeout is 29 s)
FEED_AGE_QUERY = (f'SELECT MAX({constants.METRIC_FEED_SNAPSHOT_AGE}) FROM SCHEMA("{constants.METRICS_NAMESPACE}", '
                  f"{constants.FEED_DIMENSION}, {constants.METRIC_SERVICE_DIMENSION})")
FEED_AGE_BY_FEED_QUERY = f"{FEED_AGE_QUERY} GROUP BY {constants.FEED_DIMENSION}"
COMPONENTS_BY_NAME_QUERY = (f'SELECT MAX({constants.METRIC_COMPONENT_STATUS}) FROM SCHEMA("{constants.METRICS_NAMESPACE}", '
                            f"{constants.COMPONENT_DIMENSION}, {constants.METRIC_SERVICE_DIMENSION}) "
                            f"GROUP BY {constants.COMPONENT_DIMENSION}")
ERRORS_BY_FINGERPRINT_QUERY = logs.QueryString(
    # Keys of the error events written by swordfish.monitoring.error_tracker.
    fields=["@timestamp", "fingerprint", "exception_type", "error_message", "context.tenant_id", "release"],
    # Powertools writes JSON true; Logs Insights may surface it as 1 or "true".
    filter_statements=["ispresent(fingerprint)", "error_event = 1 or error_event = \"true\""],
    stats_statements=[("count(*) as events, min(@timestamp) as first_seen, max(@timestamp) as last_seen, "
                       "latest(exception_type) as type, latest(error_message) as sample, "
                       "latest(release) as last_release by fingerprint")],
    sort="events desc",
    limit=100,
)


@dataclass
class ObservedResources:
    queue: sqs.IQueue
    dlq: sqs.IQueue
    processor: SwordfishFunction
    functions: list[SwordfishFunction]
    database: rds.DatabaseInstance
    remediation_dlq: sqs.IQueue
    flags_audit_dlq: sqs.IQueue
    feed_schedule_dlq: sqs.IQueue
    api: apigw.RestApi
    alerts_dlq: sqs.IQueue | None = None  # alerts to the MSP that gave up (issue 28)
    response_jobs_dlq: sqs.IQueue | None = None  # bulk response jobs that could not run (issue 28)


def alarm_id(function_name: str) -> str:
    """swordfish-feed-refresher -> SwordfishFeedRefresher"""
    return "".join(part.capitalize() for part in function_name.split("-"))


def app_metric(name: str, statistic: str = "Sum", period: Duration = ONE_MINUTE, label: str | None = None,
               dimensions: dict[str, str] | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=constants.METRICS_NAMESPACE, metric_name=name, statistic=statistic,
                             period=period, label=label,
                             dimensions_map={**SERVICE_DIMENSION, **(dimensions or {})})


class ObservabilityStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings,
                 resources: ObservedResources, canary_props: dict, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.resources = resources
        # The canary feeds HealthScoreLow, CircuitOpen and the feed-age alarm every minute.
        self.canary = HealthCanary(self, "HealthCanary", queue=resources.queue, dlq=resources.dlq, **canary_props)
        self.functions = [*resources.functions, self.canary.function]
        self.topic = self._topic()
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._error_tracking()
        self._alarms()
        self._deploy_review_alarms()
        self._dashboard()

    # --- alarm topic ----------------------------------------------------------------------------
    def _topic(self) -> sns.Topic:
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True,
                      alias=f"alias/{constants.SERVICE_NAME}/alarms",
                      description="Swordfish alarm topic",
                      # Kept on delete (CDK's default), but removed when its own first create rolls back.
                      removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        # CloudWatch alarms publish to the encrypted topic; "*" in a key policy means this key.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": self.account}},
        ))
        topic = sns.Topic(self, "AlarmTopic", display_name="Swordfish alarms", master_key=key,
                          enforce_ssl=True)
        email = CfnParameter(
            self, ALARM_EMAIL_PARAMETER, type="String", default="",
            description="Address that receives alarm notifications (empty: no subscription)",
            allowed_pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
        )
        has_email = CfnCondition(self, "HasAlarmEmail",
                                 expression=Fn.condition_not(Fn.condition_equals(email.value_as_string, "")))
        subscription = sns.CfnSubscription(self, "AlarmEmailSubscription", protocol="email",
                                           topic_arn=topic.topic_arn, endpoint=email.value_as_string)
        subscription.cfn_options.condition = has_email
        return topic

    def _alarm(self, construct_id: str, description: str, metric: cloudwatch.IMetric, threshold: float, *,
               comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
               evaluation_periods: int = 1, datapoints: int | None = None,
               missing=cloudwatch.TreatMissingData.NOT_BREACHING) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self, construct_id, alarm_description=description, metric=metric, threshold=threshold,
            comparison_operator=comparison, evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints, treat_missing_data=missing,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[construct_id] = alarm
        return alarm

    # --- error tracking -------------------------------------------------------------------------
    def _error_tracking(self) -> None:
        log_groups = [f.log_group for f in self.functions]
        for fn in self.functions:
            logs.MetricFilter(
                self, f"ErrorEvents{fn.node.id}",
                log_group=fn.log_group,
                filter_name=f"{constants.SERVICE_NAME}-error-events",
                filter_pattern=logs.FilterPattern.boolean_value("$.error_event", True),
                metric_namespace=constants.METRICS_NAMESPACE,
                metric_name=constants.METRIC_ERROR_EVENTS,
                metric_value="1",
                unit=cloudwatch.Unit.COUNT,
            )
        self.errors_query = logs.QueryDefinition(
            self, "ErrorsByFingerprint",
            query_definition_name=ERRORS_BY_FINGERPRINT_QUERY_NAME,
            query_string=ERRORS_BY_FINGERPRINT_QUERY,
            log_groups=log_groups,
        )
        self._alarm(
            "ErrorEventsAlarm", "Application error events (see the 'errors by fingerprint' query)",
            cloudwatch.Metric(namespace=constants.METRICS_NAMESPACE, metric_name=constants.METRIC_ERROR_EVENTS,
                              statistic="Sum", period=FIVE_MINUTES),
            constants.ERROR_EVENTS_ALARM_THRESHOLD)

    # --- alarms ---------------------------------------------------------------------------------
    def _alarms(self) -> None:
        r, s = self.resources, self.settings
        fn = r.processor.function
        self._alarm("DlqNotEmpty", "Emails are in the DLQ: inspect and redrive",
                    r.dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=ONE_MINUTE),
                    1)
        self._alarm("OldestMessageAge", "The emails queue is falling behind",
                    r.queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=ONE_MINUTE),
                    s.oldest_message_alarm_seconds, evaluation_periods=3, datapoints=3)
        self._alarm("ProcessorErrors", "Processor invocations fail (whole batches)",
                    fn.metric_errors(statistic="Sum", period=FIVE_MINUTES), 1)
        self._alarm("ProcessorThrottles", "Processor throttled: reserved concurrency too low",
                    fn.metric_throttles(statistic="Sum", period=FIVE_MINUTES), 1)
        self._alarm("ProcessorDurationP95", "Processor p95 duration near its timeout",
                    fn.metric_duration(statistic="p95", period=FIVE_MINUTES),
                    constants.PROCESSOR_TIMEOUT_SECONDS * 1000 * PROCESSOR_P95_DURATION_FRACTION,
                    evaluation_periods=3, datapoints=2)
        self._alarm("EndToEndLatencyP95", "End-to-end latency p95 over 500 ms",
                    app_metric(constants.METRIC_END_TO_END_LATENCY, statistic="p95"),
                    constants.END_TO_END_LATENCY_P95_THRESHOLD_MS,
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=5, datapoints=3)
        self._alarm("CircuitOpen", "A circuit breaker is open: a dependency is failing",
                    cloudwatch.MathExpression(expression=ANY_CIRCUIT_QUERY, period=ONE_MINUTE,
                                              label="max circuit state", using_metrics={}),
                    constants.CIRCUIT_STATE_OPEN)
        # The canary emits the score every minute: no data means the canary (or its view of the
        # system) is gone, which is as bad as a low score.
        self._alarm("HealthScoreLow", "Health score low, or the health canary stopped reporting",
                    app_metric(constants.METRIC_HEALTH_SCORE, statistic="Minimum"),
                    constants.HEALTH_SCORE_ALARM_THRESHOLD,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    evaluation_periods=3, datapoints=3, missing=cloudwatch.TreatMissingData.BREACHING)
        # Deep health's backup component (issue 25): the archive behind the RPO, no usable base backup,
        # or a failed verification. Where no backup status is configured the canary emits nothing for
        # it (no data: not breaching); AWS Backup's own job alarms cover the managed backups.
        self._alarm("BackupFailing", "Backups: WAL archive behind the RPO, no usable base backup, or verify failed",
                    app_metric(constants.METRIC_COMPONENT_STATUS, statistic="Maximum",
                               dimensions={constants.COMPONENT_DIMENSION: "backup"}),
                    2, evaluation_periods=2, datapoints=2)
        db = r.database
        self._alarm("DatabaseCpu", "Database CPU high",
                    db.metric_cpu_utilization(statistic="Average", period=FIVE_MINUTES),
                    RDS_CPU_ALARM_PERCENT, evaluation_periods=3)
        self._alarm("DatabaseConnections", "Database connections near the limit",
                    db.metric_database_connections(statistic="Maximum", period=FIVE_MINUTES),
                    s.db_max_connections_alarm, evaluation_periods=2)
        self._alarm("DatabaseFreeStorage", "Database free storage low",
                    db.metric_free_storage_space(statistic="Minimum", period=FIVE_MINUTES),
                    s.db_free_storage_alarm_gb * 1024 ** 3,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD)

    def _deploy_review_alarms(self) -> None:
        """Alarms the production review found missing: the other DLQs, the API, every other
        function's errors and throttles, and the feeds falling behind."""
        r = self.resources
        self._alarm("RemediationRetryDlqNotEmpty", "Deferred quarantines gave up (remediation retry DLQ)",
                    r.remediation_dlq.metric_approximate_number_of_messages_visible(statistic="Maximum",
                                                                                    period=ONE_MINUTE), 1)
        self._alarm("FlagsAuditDlqNotEmpty", "Flag deployments the audit could not record (audit DLQ)",
                    r.flags_audit_dlq.metric_approximate_number_of_messages_visible(statistic="Maximum",
                                                                                    period=ONE_MINUTE), 1)
        self._alarm("FeedScheduleDlqNotEmpty", "Feed refreshes EventBridge could not deliver (schedule DLQ)",
                    r.feed_schedule_dlq.metric_approximate_number_of_messages_visible(statistic="Maximum",
                                                                                      period=ONE_MINUTE), 1)
        if r.alerts_dlq is not None:
            self._alarm("AlertsDlqNotEmpty", "Alerts to the MSP that could not be delivered (alerts DLQ)",
                        r.alerts_dlq.metric_approximate_number_of_messages_visible(statistic="Maximum",
                                                                                   period=ONE_MINUTE), 1)
        if r.response_jobs_dlq is not None:
            self._alarm("ResponseJobsDlqNotEmpty", "Bulk response jobs that could not run (response jobs DLQ)",
                        r.response_jobs_dlq.metric_approximate_number_of_messages_visible(statistic="Maximum",
                                                                                          period=ONE_MINUTE), 1)
        self._alarm("Api5xx", "The API answers 5xx",
                    r.api.metric_server_error(statistic="Sum", period=FIVE_MINUTES), API_5XX_ALARM_COUNT)
        self._alarm("ApiLatencyP95", "API latency p95 high",
                    r.api.metric_latency(statistic="p95", period=FIVE_MINUTES), API_LATENCY_P95_ALARM_MS,
                    evaluation_periods=3, datapoints=2)
        for fn in self.functions:
            if fn is r.processor:
                continue  # has its own, above
            name = alarm_id(fn.name)
            self._alarm(f"{name}Errors", f"{fn.name} invocations fail",
                        fn.function.metric_errors(statistic="Sum", period=FIVE_MINUTES), 1)
            self._alarm(f"{name}Throttles", f"{fn.name} throttled",
                        fn.function.metric_throttles(statistic="Sum", period=FIVE_MINUTES), 1)
        # No data here means no feed is configured (the canary's own silence is HealthScoreLow's job).
        self._alarm("FeedSnapshotStale", "A threat feed's last good snapshot is older than two refreshes",
                    cloudwatch.MathExpression(expression=FEED_AGE_QUERY, period=FIVE_MINUTES,
                                              label="oldest feed snapshot (s)", using_metrics={}),
                    constants.FEED_SNAPSHOT_AGE_ALARM_SECONDS,
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD)

    # --- dashboard ------------------------------------------------------------------------------
    def _dashboard(self) -> None:
        r = self.resources
        fn = r.processor.function
        verdicts = [app_metric(f"{constants.METRIC_VERDICT_PREFIX}{v.capitalize()}", label=v)
                    for v in constants.VERDICTS]
        latency = [app_metric(constants.METRIC_END_TO_END_LATENCY, statistic=p, label=p)
                   for p in ("p50", "p95", "p99")]
        dashboard = cloudwatch.Dashboard(self, "Dashboard",
                                         dashboard_name=f"{constants.SERVICE_NAME}-{self.settings.name}",
                                         default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Throughput (emails/min)",
                                   left=[app_metric(constants.METRIC_EMAILS_PROCESSED, label="processed")]),
            cloudwatch.GraphWidget(title="End-to-end latency (ms)", left=latency,
                                   left_annotations=[cloudwatch.HorizontalAnnotation(
                                       value=constants.END_TO_END_LATENCY_P95_THRESHOLD_MS, label="p95 SLO")]),
            cloudwatch.GraphWidget(title="Verdict mix", left=verdicts, stacked=True),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Queue depth and age", left=[
                r.queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, label="visible"),
                r.queue.metric_approximate_number_of_messages_not_visible(period=ONE_MINUTE, label="in flight"),
            ], right=[r.queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE, label="oldest (s)")]),
            cloudwatch.GraphWidget(title="DLQ depth", left=[
                r.dlq.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, label="dlq")]),
            cloudwatch.GraphWidget(title="Errors", left=[
                fn.metric_errors(period=ONE_MINUTE, label="processor errors"),
                cloudwatch.Metric(namespace=constants.METRICS_NAMESPACE, metric_name=constants.METRIC_ERROR_EVENTS,
                                  statistic="Sum", period=ONE_MINUTE, label="error events"),
                app_metric(constants.METRIC_DEAD_LETTERED, label="dead-lettered"),
            ]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Throttles and concurrency", left=[
                fn.metric_throttles(period=ONE_MINUTE, label="throttles")],
                right=[fn.metric("ConcurrentExecutions", statistic="Maximum", period=ONE_MINUTE,
                                 label="concurrency")]),
            cloudwatch.GraphWidget(title="Processor duration (ms)", left=[
                fn.metric_duration(statistic=p, period=ONE_MINUTE, label=p) for p in ("p50", "p95", "p99")]),
            cloudwatch.GraphWidget(title="Circuit breakers (0 closed, 1 half-open, 2 open)", left=[
                cloudwatch.MathExpression(expression=CIRCUITS_BY_NAME_QUERY, period=ONE_MINUTE,
                                          label="state", using_metrics={})]),
            cloudwatch.GraphWidget(title="Health score", left=[
                app_metric(constants.METRIC_HEALTH_SCORE, statistic="Minimum", label="health")],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100)),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Database", left=[
                r.database.metric_cpu_utilization(period=FIVE_MINUTES, label="CPU %")],
                right=[r.database.metric_database_connections(period=FIVE_MINUTES, label="connections")]),
            cloudwatch.LogQueryWidget(title="Errors by fingerprint", width=16,
                                      log_group_names=[f.log_group.log_group_name for f in self.functions],
                                      query_lines=[
                                          "fields @timestamp, fingerprint, exception_type",
                                          "filter ispresent(fingerprint) and (error_event = 1 or error_event = \"true\")",
                                          "stats count(*) as events, max(@timestamp) as last_seen by fingerprint",
                                          "sort events desc",
                                          "limit 20"]),
        )
        self._deploy_review_widgets(dashboard)

    def _deploy_review_widgets(self, dashboard: cloudwatch.Dashboard) -> None:
        r = self.resources
        others = [fn for fn in self.functions if fn is not r.processor]
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API requests and errors", left=[
                r.api.metric_count(period=ONE_MINUTE, label="requests"),
                r.api.metric_client_error(period=ONE_MINUTE, label="4xx"),
                r.api.metric_server_error(period=ONE_MINUTE, label="5xx")]),
            cloudwatch.GraphWidget(title="API latency (ms)", left=[
                r.api.metric_latency(statistic=p, period=ONE_MINUTE, label=p) for p in ("p50", "p95", "p99")]),
            cloudwatch.GraphWidget(title="Other functions: errors (left), throttles (right)",
                                   left=[fn.function.metric_errors(period=ONE_MINUTE, label=fn.name) for fn in others],
                                   right=[fn.function.metric_throttles(period=ONE_MINUTE, label=fn.name)
                                          for fn in others]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Remediation retry, flags audit and feed schedule DLQs", left=[
                r.feed_schedule_dlq.metric_approximate_number_of_messages_visible(period=ONE_MINUTE,
                                                                                  label="feed schedule dlq"),
                r.remediation_dlq.metric_approximate_number_of_messages_visible(period=ONE_MINUTE,
                                                                                label="remediation retry dlq"),
                r.flags_audit_dlq.metric_approximate_number_of_messages_visible(period=ONE_MINUTE,
                                                                                label="flags audit dlq")]),
            cloudwatch.GraphWidget(title="Feed snapshot age (s)", left=[
                cloudwatch.MathExpression(expression=FEED_AGE_BY_FEED_QUERY, period=ONE_MINUTE, label="age",
                                          using_metrics={})],
                left_annotations=[cloudwatch.HorizontalAnnotation(
                    value=constants.FEED_SNAPSHOT_AGE_ALARM_SECONDS, label="stale")]),
            cloudwatch.GraphWidget(title="Components (0 pass, 1 warn, 2 fail)", left=[
                cloudwatch.MathExpression(expression=COMPONENTS_BY_NAME_QUERY, period=ONE_MINUTE, label="status",
                                          using_metrics={})]),
        )
        # Every alarm, with its state, in one place.
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(
            title="Alarms", width=24, alarms=list(self.alarms.values()),
            sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP))
