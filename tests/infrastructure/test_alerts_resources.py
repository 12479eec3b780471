"""The AWS side of alerts and the SIEM export (issue 28): the alerts queue and its own DLQ (alarmed),
the dispatcher on the queue, the schedules, and the export bucket (KMS, private, TLS, logged,
tiered and expired)."""

from __future__ import annotations

from cdk_helpers import by_property, policy_statements, props, refers_to
from swordfish import constants


def test_the_alerts_queue_redrives_to_its_own_dlq_and_is_kms_encrypted(prod):
    pipeline = prod.templates["pipeline"]
    queue = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.ALERTS_QUEUE_NAME)
    assert refers_to(queue["RedrivePolicy"]["deadLetterTargetArn"], "AlertsDlq")
    assert queue["KmsMasterKeyId"]
    dispatcher = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.ALERTS_FUNCTION_NAME)
    assert queue["VisibilityTimeout"] >= 6 * dispatcher["Timeout"]
    dlq = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.ALERTS_DLQ_NAME)
    assert dlq["MessageRetentionPeriod"] == constants.DLQ_RETENTION_DAYS * 86400
    [mapping] = [m for m in props(pipeline, "AWS::Lambda::EventSourceMapping")
                 if refers_to(m["EventSourceArn"], "Alerts") and not refers_to(m["EventSourceArn"], "AlertsDlq")]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    env = dispatcher["Environment"]["Variables"]
    assert refers_to(env["SWORDFISH_ALERTS_QUEUE_URL"], "Alerts") and refers_to(env["SWORDFISH_ALERTS_DLQ_URL"], "AlertsDlq")


def test_the_processor_publishes_alerts(prod):
    pipeline = prod.templates["pipeline"]
    processor = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.PROCESSOR_FUNCTION_NAME)
    assert refers_to(processor["Environment"]["Variables"]["SWORDFISH_ALERTS_QUEUE_URL"], "Alerts")


def test_the_alerts_dlq_is_alarmed(prod):
    alarms = props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
    [alarm] = [a for a in alarms if "alerts DLQ" in a.get("AlarmDescription", "")]
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"]
    names = " ".join(str(a.get("Dimensions")) for a in alarms)
    for function in (constants.ALERTS_FUNCTION_NAME, constants.SIEM_EXPORT_FUNCTION_NAME,
                     constants.ALERTS_RATE_CHECK_FUNCTION_NAME):
        assert function in names or any(function in str(a) for a in alarms)


def test_the_rate_check_and_the_export_run_on_schedules(prod):
    rules = props(prod.templates["pipeline"], "AWS::Events::Rule")
    expressions = {r["ScheduleExpression"] for r in rules}
    assert f"rate({constants.ALERTS_RATE_CHECK_MINUTES} minutes)" in expressions
    assert f"rate({constants.SIEM_EXPORT_MINUTES} minutes)" in expressions


def test_the_export_bucket_is_encrypted_private_logged_and_expires(prod):
    pipeline = prod.templates["pipeline"]
    [bucket] = [b for b in props(pipeline, "AWS::S3::Bucket")
                if constants.SIEM_EXPORT_BUCKET_PREFIX in str(b.get("BucketName"))]
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"]
    assert bucket["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == f"{constants.SIEM_EXPORT_BUCKET_PREFIX}/"
    [lifecycle] = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == prod.stacks.settings.env.siem_export_retention_days
    assert lifecycle["Transitions"][0]["StorageClass"] == "STANDARD_IA"


def test_only_the_exporter_writes_the_export_bucket(prod):
    pipeline = prod.templates["pipeline"]
    writers = {lid for lid, s in policy_statements(pipeline)
               if "s3:PutObject" in s["Action"] and refers_to(s["Resource"], "AlertsResourcesSiemExport")}
    assert len(writers) == 1 and all("SiemExport" in w for w in writers)
