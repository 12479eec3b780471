"""The AWS side of bulk response (issue 28): the response-jobs queue redrives to its own DLQ
(alarmed), the worker on it with the grants it needs and no more, and the API and the console may
only send to it."""

from __future__ import annotations

import json

from cdk_helpers import by_property, policy_statements, props, refers_to
from swordfish import constants


def test_the_job_queue_redrives_to_its_own_dlq_and_feeds_the_worker(prod):
    pipeline = prod.templates["pipeline"]
    queue = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.RESPONSE_JOBS_QUEUE_NAME)
    assert refers_to(queue["RedrivePolicy"]["deadLetterTargetArn"], "ResponseJobsDlq") and queue["KmsMasterKeyId"]
    worker = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.RESPONSE_JOBS_FUNCTION_NAME)
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert refers_to(worker["Environment"]["Variables"]["SWORDFISH_RESPONSE_JOBS_QUEUE_URL"], "ResponseJobs")
    [mapping] = [m for m in props(pipeline, "AWS::Lambda::EventSourceMapping")
                 if refers_to(m["EventSourceArn"], "ResponseJobs") and not refers_to(m["EventSourceArn"], "ResponseJobsDlq")]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and mapping["BatchSize"] == 1
    dlq = by_property(pipeline, "AWS::SQS::Queue", "QueueName", constants.RESPONSE_JOBS_DLQ_NAME)
    assert dlq["MessageRetentionPeriod"] == constants.DLQ_RETENTION_DAYS * 86400


def test_the_dlq_is_alarmed(prod):
    alarms = props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
    [alarm] = [a for a in alarms if "response jobs DLQ" in a.get("AlarmDescription", "")]
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"]


def test_only_the_worker_consumes_the_job_queue_and_the_api_and_console_only_send(prod):
    consumers, senders = set(), set()
    for name in ("pipeline", "api"):
        for logical_id, statement in policy_statements(prod.templates[name]):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resource = json.dumps(statement["Resource"])  # the API stack imports the queue's ARN
            if "ResponseJobs" not in resource or "ResponseJobsDlq" in resource:
                continue
            if "sqs:ReceiveMessage" in actions or "sqs:DeleteMessage" in actions:
                consumers.add(logical_id)
            if "sqs:SendMessage" in actions:
                senders.add(logical_id)
    assert consumers and all("ResponseWorker" in c for c in consumers), consumers
    assert any("ApiFunction" in s for s in senders) and any("Console" in s for s in senders)
    assert any("ResponseWorker" in s for s in senders)  # the worker sends a waiting job back
