"""Alarms, their thresholds and topic, error tracking, dashboard."""

from __future__ import annotations

import json

import pytest
from cdk_helpers import only, props, resources
from swordfish import constants

from stacks.observability_stack import ALARM_EMAIL_PARAMETER, ERRORS_BY_FINGERPRINT_QUERY_NAME


def _alarm(synth, metric_name: str) -> dict:
    (alarm,) = [a for a in props(synth.templates["observability"], "AWS::CloudWatch::Alarm")
                if a.get("MetricName") == metric_name]
    return alarm


@pytest.mark.parametrize(("metric", "operator", "threshold"), [
    ("ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1),  # DLQ not empty
    ("ApproximateAgeOfOldestMessage", "GreaterThanOrEqualToThreshold", 300),
    ("Errors", "GreaterThanOrEqualToThreshold", 1),
    ("Throttles", "GreaterThanOrEqualToThreshold", 1),
    ("Duration", "GreaterThanOrEqualToThreshold", constants.PROCESSOR_TIMEOUT_SECONDS * 1000 * 0.8),
    (constants.METRIC_END_TO_END_LATENCY, "GreaterThanThreshold", 500),
    (constants.METRIC_HEALTH_SCORE, "LessThanThreshold", constants.HEALTH_SCORE_ALARM_THRESHOLD),
    ("CPUUtilization", "GreaterThanOrEqualToThreshold", 80),
    ("DatabaseConnections", "GreaterThanOrEqualToThreshold", 600),
    ("FreeStorageSpace", "LessThanThreshold", 20 * 1024 ** 3),
    (constants.METRIC_ERROR_EVENTS, "GreaterThanOrEqualToThreshold", constants.ERROR_EVENTS_ALARM_THRESHOLD),
])
def test_alarm_fires_at_its_documented_threshold(prod, metric, operator, threshold):
    alarm = _alarm(prod, metric)
    assert alarm["ComparisonOperator"] == operator
    assert alarm["Threshold"] == threshold


def test_end_to_end_latency_alarm_watches_p95(prod):
    alarm = _alarm(prod, constants.METRIC_END_TO_END_LATENCY)
    assert alarm["ExtendedStatistic"] == "p95" and alarm["Namespace"] == constants.METRICS_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": constants.SERVICE_NAME}]


def test_dlq_alarm_watches_the_dead_letter_queue(prod):
    alarm = _alarm(prod, "ApproximateNumberOfMessagesVisible")
    assert "EmailsDlq" in json.dumps(alarm["Dimensions"])


def test_any_open_circuit_raises_an_alarm(prod):
    (alarm,) = [a for a in props(prod.templates["observability"], "AWS::CloudWatch::Alarm") if "Metrics" in a]
    (query,) = alarm["Metrics"]
    assert query["Expression"].startswith(f"SELECT MAX({constants.METRIC_CIRCUIT_STATE})")
    assert constants.CIRCUIT_DIMENSION in query["Expression"]
    assert alarm["Threshold"] == constants.CIRCUIT_STATE_OPEN
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_alarm_notifies_the_alarm_topic(prod):
    alarms = props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
    assert len(alarms) == 12
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": next(iter(resources(prod.templates["observability"],
                                                                      "AWS::SNS::Topic")))}]


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
    assert len(filters) == 5  # one per function
    for metric_filter in filters:
        assert metric_filter["FilterPattern"] == "{ $.error_event IS TRUE }"
        (transformation,) = metric_filter["MetricTransformations"]
        assert transformation["MetricName"] == constants.METRIC_ERROR_EVENTS
        assert transformation["MetricNamespace"] == constants.METRICS_NAMESPACE


def test_errors_by_fingerprint_query_groups_error_events_of_every_function(prod):
    query = only(prod.templates["observability"], "AWS::Logs::QueryDefinition")
    assert query["Name"] == ERRORS_BY_FINGERPRINT_QUERY_NAME
    assert len(query["LogGroupNames"]) == 5
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
