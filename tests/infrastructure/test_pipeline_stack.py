"""Queue, DLQ, processor and its event source, feed refresher."""

from __future__ import annotations

import json

from cdk_helpers import by_property, props, refers_to, resources
from swordfish import constants


def test_emails_queue_redrives_to_the_dlq_after_five_receives(prod):
    pipeline = prod.templates["pipeline"]
    queue = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.EMAILS_QUEUE_NAME)
    policy = queue["RedrivePolicy"]
    assert policy["maxReceiveCount"] == constants.MAX_RECEIVE_COUNT == 5
    assert refers_to(policy["deadLetterTargetArn"], "EmailsDlq")
    dlq = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.EMAILS_DLQ_NAME)
    assert dlq["MessageRetentionPeriod"] == constants.DLQ_RETENTION_DAYS * 86400


def test_visibility_timeout_is_at_least_six_times_the_processor_timeout(prod):
    pipeline = prod.templates["pipeline"]
    queue = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.EMAILS_QUEUE_NAME)
    processor = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.PROCESSOR_FUNCTION_NAME)
    assert queue["VisibilityTimeout"] >= 6 * processor["Timeout"]


def test_processor_runs_python312_on_arm64_traced_in_the_vpc_with_reserved_concurrency(prod):
    fn = by_property(prod.templates["pipeline"], "AWS::Lambda::Function", "FunctionName",
                     constants.PROCESSOR_FUNCTION_NAME)
    assert fn["Runtime"] == "python3.12" and fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == constants.PROCESSOR_HANDLER
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["VpcConfig"]["SubnetIds"] and fn["VpcConfig"]["SecurityGroupIds"]
    assert fn["ReservedConcurrentExecutions"] == prod.stacks.settings.env.processor_reserved_concurrency
    env = fn["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == constants.SERVICE_NAME
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == constants.METRICS_NAMESPACE
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert refers_to(env["SWORDFISH_EMAILS_QUEUE_URL"], "Emails")
    assert env["SWORDFISH_DB_APP_SECRET_NAME"] == constants.DB_APP_SECRET_NAME


def test_processor_consumes_batches_and_reports_item_failures(prod):
    [mapping] = [m for m in props(prod.templates["pipeline"], "AWS::Lambda::EventSourceMapping")
                 if refers_to(m["EventSourceArn"], "Emails")]
    assert mapping["BatchSize"] == constants.PROCESSOR_BATCH_SIZE
    assert mapping["MaximumBatchingWindowInSeconds"] == constants.PROCESSOR_BATCHING_WINDOW_SECONDS
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    max_concurrency = mapping["ScalingConfig"]["MaximumConcurrency"]
    assert max_concurrency == prod.stacks.settings.env.processor_max_concurrency
    assert max_concurrency < prod.stacks.settings.env.processor_reserved_concurrency  # no throttled polls
    assert refers_to(mapping["EventSourceArn"], "Emails")


def test_deferred_quarantines_are_retried_by_their_own_function(prod):
    [mapping] = [m for m in props(prod.templates["pipeline"], "AWS::Lambda::EventSourceMapping")
                 if refers_to(m["EventSourceArn"], "RemediationRetry")]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert refers_to(mapping["FunctionName"], "Remediation")


def test_remediation_polls_below_its_reserved_concurrency(prod):
    """A receive Lambda throttles still counts towards maxReceiveCount: polling must stay under the reservation."""
    pipeline = prod.templates["pipeline"]
    [mapping] = [m for m in props(pipeline, "AWS::Lambda::EventSourceMapping")
                 if refers_to(m["EventSourceArn"], "RemediationRetry")]
    fn = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.REMEDIATION_FUNCTION_NAME)
    assert 2 <= mapping["ScalingConfig"]["MaximumConcurrency"] < fn["ReservedConcurrentExecutions"]


def test_feed_refresher_runs_on_its_schedule(prod):
    pipeline = prod.templates["pipeline"]
    [rule] = [r for r in props(pipeline, "AWS::Events::Rule") if refers_to(r["Targets"][0]["Arn"], "FeedRefresher")]
    assert rule["ScheduleExpression"] == f"rate({constants.FEED_REFRESH_MINUTES} minutes)"
    assert refers_to(rule["Targets"][0]["Arn"], "FeedRefresher")
    fn = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.FEED_REFRESHER_FUNCTION_NAME)
    assert fn["Handler"] == constants.FEED_REFRESHER_HANDLER


def test_an_undeliverable_feed_refresh_is_retried_then_parked_in_a_dlq(prod):
    [(target,)] = [r["Targets"] for r in props(prod.templates["pipeline"], "AWS::Events::Rule")
                   if refers_to(r["Targets"][0]["Arn"], "FeedRefresher")]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= constants.FEED_REFRESH_MINUTES * 60
    assert refers_to(target["DeadLetterConfig"]["Arn"], "FeedScheduleDlq")


def test_every_function_gets_the_dependencies_layer_and_the_appconfig_agent(prod):
    functions = [f for t in prod.templates.values() for f in props(t, "AWS::Lambda::Function")
                 if str(f.get("FunctionName", "")).startswith(constants.SERVICE_NAME)]
    assert {f["FunctionName"] for f in functions} == {
        constants.PROCESSOR_FUNCTION_NAME, constants.API_FUNCTION_NAME, constants.FEED_REFRESHER_FUNCTION_NAME,
        constants.FLAGS_AUDIT_FUNCTION_NAME, constants.REMEDIATION_FUNCTION_NAME, constants.HEALTH_CANARY_FUNCTION_NAME,
        constants.RESTORE_VALIDATOR_FUNCTION_NAME, constants.CONSOLE_FUNCTION_NAME,
        constants.ROTATE_SECRET_FUNCTION_NAME, constants.AUTHORIZER_FUNCTION_NAME,
        constants.ALERTS_FUNCTION_NAME, constants.ALERTS_RATE_CHECK_FUNCTION_NAME, constants.SIEM_EXPORT_FUNCTION_NAME,
        constants.TRACE_PURGE_FUNCTION_NAME, constants.RESPONSE_JOBS_FUNCTION_NAME}
    for fn in functions:
        layers = json.dumps(fn["Layers"])
        assert "Dependencies" in layers
        reads_flags = fn["FunctionName"] not in (constants.FLAGS_AUDIT_FUNCTION_NAME,
                                                 constants.RESTORE_VALIDATOR_FUNCTION_NAME,
                                                 constants.ROTATE_SECRET_FUNCTION_NAME,
                                                 constants.AUTHORIZER_FUNCTION_NAME,
                                                 constants.ALERTS_FUNCTION_NAME,
                                                 constants.ALERTS_RATE_CHECK_FUNCTION_NAME,
                                                 constants.SIEM_EXPORT_FUNCTION_NAME,
                                                 constants.TRACE_PURGE_FUNCTION_NAME,
                                                 constants.RESPONSE_JOBS_FUNCTION_NAME)
        assert ("AWS-AppConfig-Extension-Arm64" in layers) is reads_flags
        assert fn["LoggingConfig"]["LogFormat"] == "JSON"


def test_processor_reads_only_its_flag_profile(prod):
    statements = [st for p in props(prod.templates["pipeline"], "AWS::IAM::Policy")
                  for st in p["PolicyDocument"]["Statement"]
                  if "appconfig:GetLatestConfiguration" in st["Action"]]
    assert statements
    for st in statements:
        arn = json.dumps(st["Resource"])
        assert "/environment/" in arn and "/configuration/" in arn and "*" not in arn


def test_dependency_layer_is_the_same_asset_in_every_stack(prod):
    layers = [json.dumps(r["Properties"]["Content"]["S3Key"]) for t in prod.templates.values()
              for r in resources(t, "AWS::Lambda::LayerVersion").values()]
    assert len(layers) == 6 and len(set(layers)) == 1  # flags, pipeline, api, observability (canary), backup, secrets


def test_the_feed_refresher_is_told_which_feeds_to_download(prod):
    from cdk_helpers import by_property
    from swordfish import constants

    refresher = by_property(prod.templates["pipeline"], "AWS::Lambda::Function", "FunctionName",
                            constants.FEED_REFRESHER_FUNCTION_NAME)
    env = refresher["Environment"]["Variables"]
    assert env["SWORDFISH_URLHAUS_FEED_URL"] == prod.stacks.settings.env.urlhaus_feed_url
    assert env["SWORDFISH_OPENPHISH_FEED_URL"].startswith("https://")
    assert "SWORDFISH_PHISHTANK_FEED_URL" not in env  # null in cdk.json: off until an app key is configured
