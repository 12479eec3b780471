"""Alarms, their thresholds and topic, error tracking, dashboard."""

from __future__ import annotations

import json

import pytest
from cdk_helpers import as_list, by_property, only, policy_statements, props, refers_to, resources
from swordfish import constants

from stacks.observability_stack import (
    ALARM_EMAIL_PARAMETER,
    API_5XX_ALARM_COUNT,
    API_LATENCY_P95_ALARM_MS,
    ERRORS_BY_FINGERPRINT_QUERY_NAME,
    alarm_id,
)


def _alarm(synth, metric_name: str, logical_id_prefix: str = "") -> dict:
    (alarm,) = [r["Properties"] for lid, r in resources(synth.templates["observability"], "AWS::CloudWatch::Alarm").items()
                if r["Properties"].get("MetricName") == metric_name and lid.startswith(logical_id_prefix)]
    return alarm


@pytest.mark.parametrize(("metric", "operator", "threshold", "alarm_id"), [
    ("ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1, "DlqNotEmpty"),
    ("ApproximateAgeOfOldestMessage", "GreaterThanOrEqualToThreshold", 300, ""),
    ("Errors", "GreaterThanOrEqualToThreshold", 1, "ProcessorErrors"),
    ("Throttles", "GreaterThanOrEqualToThreshold", 1, "ProcessorThrottles"),
    ("Duration", "GreaterThanOrEqualToThreshold", constants.PROCESSOR_TIMEOUT_SECONDS * 1000 * 0.8, ""),
    (constants.METRIC_END_TO_END_LATENCY, "GreaterThanThreshold", 500, ""),
    (constants.METRIC_HEALTH_SCORE, "LessThanThreshold", constants.HEALTH_SCORE_ALARM_THRESHOLD, ""),
    ("CPUUtilization", "GreaterThanOrEqualToThreshold", 80, ""),
    ("DatabaseConnections", "GreaterThanOrEqualToThreshold", 600, ""),
    ("FreeStorageSpace", "LessThanThreshold", 20 * 1024 ** 3, ""),
    (constants.METRIC_ERROR_EVENTS, "GreaterThanOrEqualToThreshold", constants.ERROR_EVENTS_ALARM_THRESHOLD, ""),
    ("ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1, "RemediationRetryDlqNotEmpty"),
    ("ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1, "FlagsAuditDlqNotEmpty"),
    ("5XXError", "GreaterThanOrEqualToThreshold", API_5XX_ALARM_COUNT, "Api5xx"),
    ("Latency", "GreaterThanOrEqualToThreshold", API_LATENCY_P95_ALARM_MS, "ApiLatencyP95"),
])
def test_alarm_fires_at_its_documented_threshold(prod, metric, operator, threshold, alarm_id):
    alarm = _alarm(prod, metric, alarm_id)
    assert alarm["ComparisonOperator"] == operator
    assert alarm["Threshold"] == threshold


def test_end_to_end_latency_alarm_watches_p95(prod):
    alarm = _alarm(prod, constants.METRIC_END_TO_END_LATENCY)
    assert alarm["ExtendedStatistic"] == "p95" and alarm["Namespace"] == constants.METRICS_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": constants.SERVICE_NAME}]


@pytest.mark.parametrize(("alarm_id", "queue"), [
    ("DlqNotEmpty", "EmailsDlq"), ("RemediationRetryDlqNotEmpty", "RemediationRetryDlq"),
    ("FlagsAuditDlqNotEmpty", "AuditDlq"), ("FeedScheduleDlqNotEmpty", "FeedScheduleDlq")])
def test_each_dlq_alarm_watches_its_dead_letter_queue(prod, alarm_id, queue):
    alarm = _alarm(prod, "ApproximateNumberOfMessagesVisible", alarm_id)
    assert queue in json.dumps(alarm["Dimensions"])


def test_any_open_circuit_raises_an_alarm(prod):
    (alarm,) = [a for a in props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
                if constants.METRIC_CIRCUIT_STATE in json.dumps(a.get("Metrics"))]
    (query,) = alarm["Metrics"]
    assert query["Expression"].startswith(f"SELECT MAX({constants.METRIC_CIRCUIT_STATE})")
    assert constants.CIRCUIT_DIMENSION in query["Expression"]
    assert alarm["Threshold"] == constants.CIRCUIT_STATE_OPEN
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_alarm_notifies_the_alarm_topic(prod):
    alarms = props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
    # 2 each for the authorizer, the console, the three alert functions, the trace purge and the response
    # worker, and the alerts and response-jobs DLQs
    assert len(alarms) == len(prod.stacks.observability.alarms) == 45
    topic = [{"Ref": next(iter(resources(prod.templates["observability"], "AWS::SNS::Topic")))}]
    for alarm in alarms:
        assert alarm["AlarmActions"] == topic and alarm["OKActions"] == topic


def test_alarm_topic_is_encrypted_and_the_email_is_a_parameter(prod):
    template = prod.templates["observability"].to_json()
    topic = only(prod.templates["observability"], "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic
    assert ALARM_EMAIL_PARAMETER in template["Parameters"]
    (subscription,) = resources(prod.templates["observability"], "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == {"Ref": ALARM_EMAIL_PARAMETER}
    assert subscription["Condition"] in template["Conditions"]


def test_error_events_metric_filter_covers_every_function_log_group(prod):
    filters = props(prod.templates["observability"], "AWS::Logs::MetricFilter")
    assert len(filters) == 13  # one per function, the health canary, the authorizer, the console, the alert functions,
    #                            the trace purge and the response worker included
    for metric_filter in filters:
        assert metric_filter["FilterPattern"] == "{ $.error_event IS TRUE }"
        (transformation,) = metric_filter["MetricTransformations"]
        assert transformation["MetricName"] == constants.METRIC_ERROR_EVENTS
        assert transformation["MetricNamespace"] == constants.METRICS_NAMESPACE


def test_errors_by_fingerprint_query_groups_error_events_of_every_function(prod):
    query = only(prod.templates["observability"], "AWS::Logs::QueryDefinition")
    assert query["Name"] == ERRORS_BY_FINGERPRINT_QUERY_NAME
    assert len(query["LogGroupNames"]) == 13
    assert "error_event" in query["QueryString"] and "by fingerprint" in query["QueryString"]
    assert "exception_type" in query["QueryString"]


def test_dashboard_shows_the_pipeline_health_at_a_glance(prod):
    body = json.dumps(only(prod.templates["observability"], "AWS::CloudWatch::Dashboard")["DashboardBody"])
    for title in ("Throughput", "End-to-end latency", "Verdict mix", "Queue depth and age", "DLQ depth",
                  "Errors", "Throttles", "duration", "Circuit breakers", "Health score"):
        assert title in body
    for percentile in ("p50", "p95", "p99"):
        assert percentile in body
    for verdict in constants.VERDICTS:
        assert f"{constants.METRIC_VERDICT_PREFIX}{verdict.capitalize()}" in body


def test_health_score_low_treats_a_silent_canary_as_breaching(prod):
    alarm = _alarm(prod, constants.METRIC_HEALTH_SCORE)
    assert alarm["TreatMissingData"] == "breaching"


def test_health_canary_runs_the_deep_check_every_minute(prod):
    template = prod.templates["observability"]
    fn = by_property(template, "AWS::Lambda::Function", "FunctionName", constants.HEALTH_CANARY_FUNCTION_NAME)
    assert fn["Handler"] == constants.HEALTH_CANARY_HANDLER == "handlers.health_canary.handler"
    assert fn["ReservedConcurrentExecutions"] == 1
    assert "OutputRefEmails" in json.dumps(fn["Environment"]["Variables"]["SWORDFISH_EMAILS_QUEUE_URL"])
    (rule,) = props(template, "AWS::Events::Rule")
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert refers_to(rule["Targets"][0]["Arn"], "HealthCanaryFunction")
    actions = {a for _, st in policy_statements(template) for a in as_list(st["Action"])}
    # What the deep check reads: the app secret, queue depths, the queue age metric, breaker items, flags.
    assert {"secretsmanager:GetSecretValue", "sqs:GetQueueAttributes", "cloudwatch:GetMetricStatistics",
            "dynamodb:GetItem", "appconfig:GetLatestConfiguration"} <= actions
    assert not actions & {"dynamodb:PutItem", "sqs:SendMessage", "sqs:DeleteMessage"}


@pytest.mark.parametrize("function_name", [
    constants.API_FUNCTION_NAME, constants.REMEDIATION_FUNCTION_NAME, constants.FEED_REFRESHER_FUNCTION_NAME,
    constants.FLAGS_AUDIT_FUNCTION_NAME, constants.HEALTH_CANARY_FUNCTION_NAME])
def test_every_function_has_error_and_throttle_alarms(prod, function_name):
    alarms = resources(prod.templates["observability"], "AWS::CloudWatch::Alarm")
    for metric in ("Errors", "Throttles"):
        (alarm,) = [a["Properties"] for lid, a in alarms.items()
                    if lid.startswith(f"{alarm_id(function_name)}{metric}")]
        assert alarm["MetricName"] == metric and alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_a_feed_snapshot_older_than_two_refreshes_raises_an_alarm(prod):
    (alarm,) = [a for a in props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
                if constants.METRIC_FEED_SNAPSHOT_AGE in json.dumps(a.get("Metrics"))]
    (query,) = alarm["Metrics"]
    assert query["Expression"].startswith(f"SELECT MAX({constants.METRIC_FEED_SNAPSHOT_AGE})")
    assert alarm["Threshold"] == constants.FEED_SNAPSHOT_AGE_ALARM_SECONDS == 2 * constants.FEED_REFRESH_MINUTES * 60
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_every_alarm_is_on_the_dashboard(prod):
    template = prod.templates["observability"]
    body = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["DashboardBody"])
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id in alarms:
        assert f'"{logical_id}", "Arn"' in body, f"{logical_id} is not on the dashboard"
    for title in ("API requests and errors", "API latency", "Other functions", "feed schedule DLQs",
                  "Feed snapshot age", "Components"):
        assert title in body


def test_the_backup_component_failing_raises_an_alarm(prod):
    """Issue 25: deep health's backup component, emitted by the canary as ComponentStatus."""
    (alarm,) = [a for a in props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
                if a.get("MetricName") == constants.METRIC_COMPONENT_STATUS]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions[constants.COMPONENT_DIMENSION] == "backup"
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Statistic"]) == (
        2, "GreaterThanOrEqualToThreshold", "Maximum")


@pytest.mark.parametrize("env_name", ["prod", "dev"])
def test_every_function_of_ours_has_an_errors_alarm_in_some_stack(synthesised, env_name):
    """Wherever the alarm lives (the rotation function's is in the Secrets stack, the validator's in
    Backup), a function that fails pages someone. AWS's hosted master rotation is covered by the
    RotationFailed alarm instead."""
    templates = synthesised[env_name].templates.values()
    functions = {p["FunctionName"] for t in templates for p in props(t, "AWS::Lambda::Function")
                 if str(p.get("FunctionName", "")).startswith(f"{constants.SERVICE_NAME}-")
                 and p["FunctionName"] != f"{constants.SERVICE_NAME}-rotate-master"}
    alarmed = {json.dumps(d) for t in templates for a in props(t, "AWS::CloudWatch::Alarm")
               if a.get("MetricName") == "Errors" and a.get("Namespace") == "AWS/Lambda" for d in a["Dimensions"]}
    function_ids = {p["FunctionName"]: lid for t in templates
                    for lid, r in t.to_json()["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
                    for p in [r["Properties"]] if "FunctionName" in p}
    missing = sorted(f for f in functions if not any(function_ids[f] in d or f'"{f}"' in d for d in alarmed))
    assert not missing, f"functions without an Errors alarm: {missing}"
