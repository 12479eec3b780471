"""Issue 28: the traces' purge runs on AWS, not only by hand: a daily EventBridge schedule invokes
the thin handler with the functions' login, alarmed like every function, granted exactly that."""

from __future__ import annotations

from cdk_helpers import by_property, policy_statements, props, refers_to
from swordfish import constants


def test_a_daily_schedule_invokes_the_trace_purge(prod):
    pipeline = prod.templates["pipeline"]
    function = by_property(pipeline, "AWS::Lambda::Function", "FunctionName", constants.TRACE_PURGE_FUNCTION_NAME)
    assert function["Handler"] == constants.TRACE_PURGE_HANDLER == "handlers.trace_purge.handler"
    assert function["Timeout"] == constants.TRACE_PURGE_TIMEOUT_SECONDS
    assert function["VpcConfig"]["SubnetIds"]  # it reaches the database through the proxy
    [rule] = [r for r in props(pipeline, "AWS::Events::Rule") if "trace" in r.get("Description", "")]
    assert rule["ScheduleExpression"] == "rate(1 day)" and rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert refers_to(target["Arn"], "TracePurge")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    [permission] = [p for p in props(pipeline, "AWS::Lambda::Permission")
                    if refers_to(p["FunctionName"], "TracePurge")]
    assert permission["Principal"] == "events.amazonaws.com" and refers_to(permission["SourceArn"], "TracePurgeSchedule")
    # the handler module exists where the asset puts it
    import handlers.trace_purge

    assert callable(handlers.trace_purge.handler)


def test_the_trace_purge_reads_only_its_login_and_the_sentry_dsn(prod):
    pipeline = prod.templates["pipeline"]
    statements = [s for lid, s in policy_statements(pipeline) if "TracePurge" in lid]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # No queue, bucket or table: the database through its login, the function's own network and logs.
    assert not {a for a in actions if a.split(":")[0] in ("s3", "sqs", "dynamodb", "appconfig", "ses")}, actions
    secrets = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    named = [r["Fn::GetStackOutput"]["OutputName"] for s in secrets for r in s["Resource"]]
    assert len(named) == 2 and any("AppSecret" in n for n in named) and any("SentryDsn" in n for n in named), named


def test_the_trace_purge_is_alarmed_like_every_function(prod):
    alarms = props(prod.templates["observability"], "AWS::CloudWatch::Alarm")
    assert any(constants.TRACE_PURGE_FUNCTION_NAME in str(a) for a in alarms)
