"""Service limits that cfn-lint does not know, checked on the synthesised templates.

Each check reads the templates (``cdk.out/*.template.json`` as dicts) and returns findings; a
finding is something CloudFormation or the service would refuse at deploy time, or a configuration
that cannot do what it is for. `make deploy-check` runs them; the infrastructure tests run them on
the prod and dev synth.

    .venv/bin/python scripts/template_limits.py cdk.out [--env prod]

The figures come from the services' documentation (PutMetricAlarm, CreateFunction, CreateRole,
CreateQueue, CreateLogGroup, the SQS event-source guidance, RDS's max_connections default, WAF's
rate-based statement); each constant names its source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# --- CloudWatch (PutMetricAlarm): Period x EvaluationPeriods <= 7 days, <= 1 day when Period < 1 hour;
# Period 10, 20, 30 or a multiple of 60; DatapointsToAlarm <= EvaluationPeriods.
ALARM_MAX_RANGE_SECONDS = 7 * 86_400
ALARM_MAX_RANGE_SHORT_PERIOD_SECONDS = 86_400
ALARM_SHORT_PERIOD_SECONDS = 3_600
ALARM_HIGH_RESOLUTION_PERIODS = (10, 20, 30)

# --- Physical-name lengths (each service's Create* API): type -> (property, maximum length).
NAME_LIMITS: dict[str, tuple[str, int]] = {
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::CloudWatch::Alarm": ("AlarmName", 255),
    "AWS::CloudWatch::CompositeAlarm": ("AlarmName", 255),
    "AWS::SecretsManager::Secret": ("Name", 512),
    "AWS::S3::Bucket": ("BucketName", 63),
    "AWS::DynamoDB::GlobalTable": ("TableName", 255),
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::KMS::Alias": ("AliasName", 256),
    "AWS::RDS::DBInstance": ("DBInstanceIdentifier", 63),
    "AWS::RDS::DBProxy": ("DBProxyName", 63),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::WAFv2::WebACL": ("Name", 128),
    "AWS::ElastiCache::ServerlessCache": ("ServerlessCacheName", 40),
    "AWS::Backup::BackupVault": ("BackupVaultName", 50),
    "AWS::CloudTrail::Trail": ("TrailName", 128),
    "AWS::SSM::Parameter": ("Name", 2048),
    "AWS::AppConfig::Application": ("Name", 64),
    "AWS::AppConfig::Environment": ("Name", 64),
    "AWS::AppConfig::DeploymentStrategy": ("Name", 64),
}

# --- Lambda: the environment's keys and values together at most 4 KB (CreateFunction).
LAMBDA_ENVIRONMENT_MAX_BYTES = 4 * 1024
# A value CloudFormation fills in at deploy time (a queue URL, an endpoint, an ARN) is counted at
# this length: the longest of ours (a proxy endpoint, a queue URL) is about 100 characters.
UNRESOLVED_VALUE_BYTES = 128

# --- SQS event sources: AWS asks for a visibility timeout of at least six times the function's
# timeout (retries of throttled batches); below the timeout itself CreateEventSourceMapping fails.
SQS_VISIBILITY_FACTOR = 6

# --- RDS PostgreSQL: max_connections defaults to LEAST(DBInstanceClassMemory / 9531392, 5000);
# DBInstanceClassMemory is the class's memory less what RDS keeps for itself (about 6%).
PG_BYTES_PER_CONNECTION = 9_531_392
PG_MAX_CONNECTIONS_CAP = 5_000
RDS_MEMORY_AVAILABLE_FRACTION = 0.94
INSTANCE_MEMORY_GIB = {
    "t4g.micro": 1, "t4g.small": 2, "t4g.medium": 4, "t4g.large": 8, "t4g.xlarge": 16, "t4g.2xlarge": 32,
    "m7g.large": 8, "m7g.xlarge": 16, "m7g.2xlarge": 32, "m7g.4xlarge": 64,
    "m6g.large": 8, "m6g.xlarge": 16, "m6g.2xlarge": 32,
    "r7g.large": 16, "r7g.xlarge": 32, "r7g.2xlarge": 64, "r6g.large": 16, "r6g.xlarge": 32,
}
# A Lambda instance runs one invocation at a time and our code holds one connection at a time (the
# pool opens min_size=1); the worst case is one database connection per reserved instance.
CONNECTIONS_PER_FUNCTION_INSTANCE = 1
DB_SECRET_NAMES = ("swordfish/db/app", "swordfish/db/admin")

# --- WAF rate-based rules count requests per evaluation window (default 300 s).
WAF_DEFAULT_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Finding:
    check: str
    stack: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.stack}/{self.resource}: {self.message}"


@dataclass(frozen=True)
class Plans:
    """What the WAF and the connection budget are checked against (from the environment's settings)."""
    tenant_rate_per_second: float
    stage_rate_per_second: float
    db_instance_class: str


Templates = dict[str, dict]  # stack name -> template


def load_templates(outdir: Path) -> Templates:
    return {path.name.removesuffix(".template.json"): json.loads(path.read_text())
            for path in sorted(Path(outdir).glob("*.template.json"))}


def _resources(templates: Templates, resource_type: str | None = None) -> Iterable[tuple[str, str, dict]]:
    for stack, template in templates.items():
        for lid, resource in template.get("Resources", {}).items():
            if resource_type is None or resource.get("Type") == resource_type:
                yield stack, lid, resource


def _literal_int(value: object) -> int | None:
    try:
        return int(value)  # CDK renders some numbers as strings
    except (TypeError, ValueError):
        return None


# --- the checks ---------------------------------------------------------------------------------

def check_alarms(templates: Templates) -> list[Finding]:
    found = []
    for stack, lid, resource in _resources(templates, "AWS::CloudWatch::Alarm"):
        p = resource.get("Properties", {})
        evaluations = _literal_int(p.get("EvaluationPeriods"))
        periods = ([_literal_int(p.get("Period"))] if "Period" in p else
                   [_literal_int(m["MetricStat"].get("Period")) for m in p.get("Metrics", []) if "MetricStat" in m]
                   + [_literal_int(m["Period"]) for m in p.get("Metrics", []) if "Period" in m])
        periods = [period for period in periods if period is not None]
        if evaluations is None or not periods:
            continue
        datapoints = _literal_int(p.get("DatapointsToAlarm"))
        if datapoints is not None and not 1 <= datapoints <= evaluations:
            found.append(Finding("alarm-range", stack, lid,
                                 f"DatapointsToAlarm {datapoints} must be 1..EvaluationPeriods ({evaluations})"))
        for period in periods:
            if period not in ALARM_HIGH_RESOLUTION_PERIODS and period % 60:
                found.append(Finding("alarm-range", stack, lid, f"Period {period} s is not 10, 20, 30 or a multiple of 60"))
            limit = ALARM_MAX_RANGE_SHORT_PERIOD_SECONDS if period < ALARM_SHORT_PERIOD_SECONDS else ALARM_MAX_RANGE_SECONDS
            if period * evaluations > limit:
                found.append(Finding(
                    "alarm-range", stack, lid,
                    f"Period {period} s x {evaluations} evaluation periods = {period * evaluations} s; "
                    f"CloudWatch refuses more than {limit} s"))
    return found


def check_names(templates: Templates) -> list[Finding]:
    found = []
    for stack, lid, resource in _resources(templates):
        limit = NAME_LIMITS.get(resource.get("Type", ""))
        if limit is None:
            continue
        prop, maximum = limit
        name = resource.get("Properties", {}).get(prop)
        if isinstance(name, str) and len(name) > maximum:
            found.append(Finding("name-length", stack, lid,
                                 f"{prop} {name!r} is {len(name)} characters; {resource['Type']} allows {maximum}"))
    return found


def _estimated_length(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return sum(_estimated_length(p) for p in parts) + len(separator) * max(len(parts) - 1, 0)
    return UNRESOLVED_VALUE_BYTES


def lambda_environment_bytes(function_properties: dict) -> int:
    variables = function_properties.get("Environment", {}).get("Variables", {})
    return sum(len(key.encode()) + _estimated_length(value) for key, value in variables.items())


def check_lambda_environment(templates: Templates) -> list[Finding]:
    found = []
    for stack, lid, resource in _resources(templates, "AWS::Lambda::Function"):
        size = lambda_environment_bytes(resource.get("Properties", {}))
        if size > LAMBDA_ENVIRONMENT_MAX_BYTES:
            found.append(Finding("lambda-environment", stack, lid,
                                 f"environment about {size} bytes; Lambda allows {LAMBDA_ENVIRONMENT_MAX_BYTES}"))
    return found


def _ref_target(value: object) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def check_sqs_visibility(templates: Templates) -> list[Finding]:
    found = []
    for stack, _, resource in _resources(templates, "AWS::Lambda::EventSourceMapping"):
        resources = templates[stack]["Resources"]
        p = resource.get("Properties", {})
        queue_id, function_id = _ref_target(p.get("EventSourceArn")), _ref_target(p.get("FunctionName"))
        queue, function = resources.get(queue_id or ""), resources.get(function_id or "")
        if not queue or queue.get("Type") != "AWS::SQS::Queue" or not function:
            continue
        visibility = _literal_int(queue.get("Properties", {}).get("VisibilityTimeout", 30))
        timeout = _literal_int(function.get("Properties", {}).get("Timeout", 3))
        if visibility is not None and timeout is not None and visibility < SQS_VISIBILITY_FACTOR * timeout:
            found.append(Finding("sqs-visibility", stack, queue_id,
                                 f"visibility timeout {visibility} s < {SQS_VISIBILITY_FACTOR} x the timeout "
                                 f"of {function_id} ({timeout} s)"))
    return found


def max_connections(instance_class: str) -> int:
    gib = INSTANCE_MEMORY_GIB.get(instance_class.removeprefix("db."))
    if gib is None:
        raise KeyError(f"unknown instance class {instance_class}: add its memory to INSTANCE_MEMORY_GIB")
    return min(PG_MAX_CONNECTIONS_CAP, int(gib * 1024**3 * RDS_MEMORY_AVAILABLE_FRACTION / PG_BYTES_PER_CONNECTION))


def _mentions(value: object, needles: Iterable[str]) -> bool:
    text = json.dumps(value)
    return any(needle in text for needle in needles)


def _db_secret_ids(templates: Templates) -> set[str]:
    """Logical ids (and export names that carry them) of the database-login secrets."""
    ids = {lid for _, lid, r in _resources(templates, "AWS::SecretsManager::Secret")
           if r.get("Properties", {}).get("Name") in DB_SECRET_NAMES}
    # Attachments (the secret with host/port added) are what the functions are granted.
    ids |= {lid for _, lid, r in _resources(templates, "AWS::SecretsManager::SecretTargetAttachment")
            if _ref_target(r.get("Properties", {}).get("SecretId")) in ids}
    return ids


def database_functions(templates: Templates) -> dict[str, int | None]:
    """Functions whose role may read a database login -> their reserved concurrency (None: unreserved)."""
    secret_ids = _db_secret_ids(templates)
    users = {}
    for stack, _, resource in _resources(templates, "AWS::Lambda::Function"):
        p = resource.get("Properties", {})
        role_id = _ref_target(p.get("Role"))
        policies = [r for _, _, r in _resources({stack: templates[stack]}, "AWS::IAM::Policy")
                    if any(_ref_target(role) == role_id for role in r["Properties"].get("Roles", []))]
        reads_login = any(
            "secretsmanager:GetSecretValue" in json.dumps(s.get("Action"))
            and _mentions(s.get("Resource"), secret_ids)
            for policy in policies for s in policy["Properties"]["PolicyDocument"]["Statement"])
        if reads_login and "FunctionName" in p and not str(p["FunctionName"]).startswith("swordfish-rotate"):
            users[p["FunctionName"]] = _literal_int(p.get("ReservedConcurrentExecutions"))
    return users


def check_connection_budget(templates: Templates, plans: Plans) -> tuple[list[Finding], dict]:
    proxies = list(_resources(templates, "AWS::RDS::DBProxyTargetGroup"))
    percent = 100
    for _, _, target_group in proxies:
        info = target_group.get("Properties", {}).get("ConnectionPoolConfigurationInfo", {})
        percent = _literal_int(info.get("MaxConnectionsPercent", 100)) or 100
    budget = math.floor(max_connections(plans.db_instance_class) * percent / 100)
    users = database_functions(templates)
    reserved = {name: n for name, n in users.items() if n is not None}
    demand = sum(reserved.values()) * CONNECTIONS_PER_FUNCTION_INSTANCE
    figures = {"max_connections": max_connections(plans.db_instance_class), "proxy_percent": percent,
               "budget": budget, "demand": demand, "reserved": reserved,
               "unreserved": sorted(name for name, n in users.items() if n is None)}
    found = []
    if demand > budget:
        found.append(Finding("db-connections", "(app)", "DBProxy",
                             f"reserved concurrency of the database functions x {CONNECTIONS_PER_FUNCTION_INSTANCE} "
                             f"= {demand} connections > the proxy's budget {budget} "
                             f"({figures['max_connections']} x {percent}%): {reserved}"))
    return found, figures


def waf_rate_rules(templates: Templates) -> list[tuple[str, str, dict]]:
    rules = []
    for stack, _, resource in _resources(templates, "AWS::WAFv2::WebACL"):
        for rule in resource.get("Properties", {}).get("Rules", []):
            statement = rule.get("Statement", {}).get("RateBasedStatement")
            if statement:
                rules.append((stack, rule["Name"], statement))
    return rules


def check_waf_rates(templates: Templates, plans: Plans) -> list[Finding]:
    """No rate-based rule may cap one tenant below its plan; a rule keyed by the source address alone
    must let one address use the whole stage (an MSP submits for all its tenants from one place)."""
    found = []
    for stack, name, statement in waf_rate_rules(templates):
        window = _literal_int(statement.get("EvaluationWindowSec", WAF_DEFAULT_WINDOW_SECONDS)) or WAF_DEFAULT_WINDOW_SECONDS
        per_second = _literal_int(statement["Limit"]) / window
        ip_only = statement.get("AggregateKeyType") in ("IP", "FORWARDED_IP")
        needed = plans.stage_rate_per_second if ip_only else plans.tenant_rate_per_second
        what = "the stage's rate (one address may carry every tenant of an MSP)" if ip_only else "a tenant's plan"
        if per_second < needed:
            found.append(Finding("waf-rate", stack, name,
                                 f"limit {statement['Limit']} per {window} s = {per_second:.1f}/s < {what}, "
                                 f"{needed:g}/s"))
    return found


def check_retained_on_create(templates: Templates) -> list[Finding]:
    """A resource kept with plain Retain survives the rollback of a failed first create; if it has a
    physical name the retry fails with "already exists". RetainExceptOnCreate (CDK:
    RETAIN_ON_UPDATE_OR_DELETE) deletes it when its own creation is rolled back and keeps it otherwise."""
    found = []
    for stack, lid, resource in _resources(templates):
        if resource.get("DeletionPolicy") == "Retain":
            name_prop = NAME_LIMITS.get(resource.get("Type", ""), ("",))[0]
            name = resource.get("Properties", {}).get(name_prop) if name_prop else None
            found.append(Finding("retain-on-create", stack, lid,
                                 f"{resource['Type']}{f' {name!r}' if isinstance(name, str) else ''} has DeletionPolicy "
                                 "Retain: a rolled-back first create leaves it behind; use RetainExceptOnCreate"))
    return found


CHECKS: dict[str, Callable[[Templates, Plans], list[Finding]]] = {
    "retained resources deleted when their create rolls back": lambda t, _: check_retained_on_create(t),
    "alarm period x evaluations": lambda t, _: check_alarms(t),
    "resource name lengths": lambda t, _: check_names(t),
    "Lambda environment <= 4 KB": lambda t, _: check_lambda_environment(t),
    "SQS visibility >= 6 x function timeout": lambda t, _: check_sqs_visibility(t),
    "database connections within the proxy's budget": lambda t, p: check_connection_budget(t, p)[0],
    "WAF rate limits against the plans": check_waf_rates,
}


def run_checks(templates: Templates, plans: Plans) -> dict[str, list[Finding]]:
    return {name: check(templates, plans) for name, check in CHECKS.items()}


def plans_for(env_name: str) -> Plans:
    settings = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]["environments"][env_name]
    return Plans(tenant_rate_per_second=settings["tenant_throttle_rate"],
                 stage_rate_per_second=settings["api_throttle_rate"],
                 db_instance_class=settings["db_instance_class"])




def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, nargs="?", default=Path("cdk.out"))
    parser.add_argument("--env", default="dev", help="the environment the templates were synthesised for")
    args = parser.parse_args(argv)
    templates = load_templates(args.outdir)
    if not templates:
        print(f"no templates in {args.outdir}: run the synth first")
        return 2
    plans = plans_for(args.env)
    failed = 0
    for name, findings in run_checks(templates, plans).items():
        print(f"{'FAIL' if findings else 'PASS'}  limits: {name}")
        for finding in findings:
            print(f"      {finding}")
        failed += bool(findings)
    _, figures = check_connection_budget(templates, plans)
    print(f"      connections: demand {figures['demand']} of budget {figures['budget']} "
          f"({plans.db_instance_class}: max_connections {figures['max_connections']} x {figures['proxy_percent']}%); "
          f"unreserved database functions (bounded only by the account): {', '.join(figures['unreserved']) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
