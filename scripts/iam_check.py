"""Every AWS call each function's code makes, evaluated against the statements the synthesised
templates give that function's role: a call the role does not allow is a finding.

CALLS below is the one list of those calls, read from the code (the boto3 clients in
swordfish/wiring.py, pipeline/queues.py, pipeline/submitter.py, integrations/, security/, features/,
resilience/, backup/, api/health_*.py) and from what AWS does with the function's own role on its
behalf (Lambda polling an SQS event source; SQS, S3 and DynamoDB using the KMS key; the AppConfig
agent extension). Actions are IAM actions: SendMessageBatch is authorised as sqs:SendMessage, a
DynamoDB transaction as the writes it holds. A new boto3 call in a handler's path goes here too.

The templates' intrinsics are resolved to concrete ARNs (names from the resources' properties,
cross-stack references through the producing stack's outputs), so the same resolver gives the declared
resources and the policies' resources, and IAM's wildcard matching decides. Allow statements only:
our roles have no Deny and no permission boundary.

    .venv/bin/python scripts/iam_check.py cdk.out
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from swordfish import constants as c

Templates = dict[str, dict]

# --- resource specs: kind:name, resolved against the templates ----------------------------------
EMAILS, DLQ, REMEDIATION = (f"queue:{c.EMAILS_QUEUE_NAME}", f"queue:{c.EMAILS_DLQ_NAME}",
                            f"queue:{c.REMEDIATION_RETRY_QUEUE_NAME}")
ALERTS, ALERTS_DLQ = f"queue:{c.ALERTS_QUEUE_NAME}", f"queue:{c.ALERTS_DLQ_NAME}"
RESPONSE_JOBS = f"queue:{c.RESPONSE_JOBS_QUEUE_NAME}"
SIEM_EXPORT = f"object:{c.SIEM_EXPORT_BUCKET_PREFIX}:ocsf/verdicts/2026/12/07/10/1796637600000-0a1b2c3d4e5f.jsonl"
DATA_KEY = "key:alias/swordfish/data"
BREAKERS = f"table:{c.BREAKER_TABLE_NAME}"
LARGE_MAIL = f"object:{c.LARGE_MAIL_BUCKET_PREFIX}:tenant-a/2026/12/07/message.eml"
RAW_ARCHIVE = f"object:{c.BACKUP_BUCKET_PREFIX}:{c.RAW_MAIL_ARCHIVE_PREFIX}2026/12/07/batch.jsonl.gz"
FLAGS_PROFILE = "appconfig:configuration"
ANY = "*"


def secret(name: str) -> str:
    return f"secret:{name}"


def sends_to(queue: str) -> list[tuple[str, str]]:
    # SQS asks KMS for a data key of the queue's key with the sender's credentials.
    return [("sqs:SendMessage", queue), ("kms:GenerateDataKey", DATA_KEY), ("kms:Decrypt", DATA_KEY)]


def polls(queue: str) -> list[tuple[str, str]]:
    """Lambda's SQS event source receives and deletes with the function's role."""
    return [("sqs:ReceiveMessage", queue), ("sqs:DeleteMessage", queue), ("sqs:GetQueueAttributes", queue),
            ("kms:Decrypt", DATA_KEY)]


BREAKER_CALLS = [("dynamodb:GetItem", BREAKERS), ("dynamodb:PutItem", BREAKERS), ("dynamodb:UpdateItem", BREAKERS),
                 ("dynamodb:ConditionCheckItem", BREAKERS), ("kms:Decrypt", DATA_KEY), ("kms:GenerateDataKey", DATA_KEY)]
AGENT_CALLS = [("appconfig:StartConfigurationSession", FLAGS_PROFILE),
               ("appconfig:GetLatestConfiguration", FLAGS_PROFILE)]
# features/repository.py resolves the flag store's ids by name, then reads versions (audit and admin).
FLAG_READ_CALLS = [("appconfig:ListApplications", ANY), ("appconfig:ListEnvironments", "appconfig:application"),
                   ("appconfig:ListConfigurationProfiles", "appconfig:application"),
                   ("appconfig:GetConfigurationProfile", "appconfig:profile"),
                   ("appconfig:GetHostedConfigurationVersion", "appconfig:version"),
                   ("appconfig:GetDeployment", "appconfig:deployment")]
FLAG_ADMIN_CALLS = [*FLAG_READ_CALLS, ("appconfig:ListDeployments", "appconfig:environment"),
                    ("appconfig:CreateHostedConfigurationVersion", "appconfig:profile"),
                    ("appconfig:StartDeployment", "appconfig:environment"),
                    ("appconfig:StartDeployment", "appconfig:profile"),
                    ("appconfig:StartDeployment", "appconfig:strategy"),
                    ("appconfig:ListTagsForResource", "appconfig:profile"), ("appconfig:TagResource", "appconfig:profile")]
LOGS = [("logs:CreateLogStream", "loggroup:self"), ("logs:PutLogEvents", "loggroup:self")]

CALLS: dict[str, list[tuple[str, str]]] = {
    c.PROCESSOR_FUNCTION_NAME: [
        *LOGS, *polls(EMAILS),
        *sends_to(EMAILS),  # requeue while Nango or S3 is down (pipeline/queues.py SqsQueuePort.requeue)
        *sends_to(DLQ), *sends_to(REMEDIATION),
        *sends_to(ALERTS),  # malware and VIP alerts (alerts/dispatcher.py SqsAlertPublisher: SendMessageBatch)
        ("s3:GetObject", LARGE_MAIL), ("kms:Decrypt", DATA_KEY),
        ("s3:PutObject", RAW_ARCHIVE), ("kms:GenerateDataKey", DATA_KEY),
        ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.NANGO_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.SENTRY_DSN_SECRET_NAME)),
        *BREAKER_CALLS, *AGENT_CALLS,
    ],
    c.REMEDIATION_FUNCTION_NAME: [
        *LOGS, *polls(REMEDIATION), *sends_to(REMEDIATION),
        ("secretsmanager:GetSecretValue", secret(c.NANGO_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.SENTRY_DSN_SECRET_NAME)),
        *BREAKER_CALLS,
    ],
    c.FEED_REFRESHER_FUNCTION_NAME: [*LOGS, *BREAKER_CALLS, *AGENT_CALLS],
    c.API_FUNCTION_NAME: [
        *LOGS, *sends_to(EMAILS),  # submitter.py: SendMessageBatch
        ("s3:PutObject", LARGE_MAIL),
        ("sqs:GetQueueAttributes", EMAILS), ("sqs:GetQueueAttributes", DLQ),  # health_progress, health_deep
        ("cloudwatch:GetMetricStatistics", ANY),
        *[("secretsmanager:GetSecretValue", secret(n)) for n in (
            c.DB_APP_SECRET_NAME, c.API_KEY_PEPPER_SECRET_NAME, c.OPERATOR_TOKEN_SECRET_NAME,
            c.NANGO_SECRET_NAME, c.SENTRY_DSN_SECRET_NAME,
            c.CONSOLE_TOTP_KEYS_SECRET_NAME)],  # seals webhook alert rules' signing secrets
        *BREAKER_CALLS, *AGENT_CALLS,
        *sends_to(RESPONSE_JOBS),  # a bulk response job onto its queue (pipeline/queues.py send_job)
    ],
    c.RESPONSE_JOBS_FUNCTION_NAME: [
        *LOGS, *polls(RESPONSE_JOBS), *sends_to(RESPONSE_JOBS),  # the job back, delayed, while items wait
        *[("secretsmanager:GetSecretValue", secret(n)) for n in (
            c.DB_APP_SECRET_NAME, c.NANGO_SECRET_NAME, c.SENTRY_DSN_SECRET_NAME)],
        *BREAKER_CALLS,
    ],
    c.ALERTS_FUNCTION_NAME: [
        *LOGS, *polls(ALERTS), *sends_to(ALERTS), *sends_to(ALERTS_DLQ),  # retries, then its own DLQ
        *[("secretsmanager:GetSecretValue", secret(n)) for n in (
            c.DB_APP_SECRET_NAME, c.CONSOLE_TOTP_KEYS_SECRET_NAME, c.SENTRY_DSN_SECRET_NAME)],
    ],
    c.ALERTS_RATE_CHECK_FUNCTION_NAME: [
        *LOGS, *sends_to(ALERTS),
        ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.SENTRY_DSN_SECRET_NAME)),
    ],
    c.SIEM_EXPORT_FUNCTION_NAME: [
        *LOGS, ("s3:PutObject", SIEM_EXPORT), ("kms:GenerateDataKey", DATA_KEY), ("kms:Decrypt", DATA_KEY),
        ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.SENTRY_DSN_SECRET_NAME)),
    ],
    c.TRACE_PURGE_FUNCTION_NAME: [
        *LOGS,
        ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.SENTRY_DSN_SECRET_NAME)),
    ],
    c.AUTHORIZER_FUNCTION_NAME: [
        *LOGS,
        ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)),
        ("secretsmanager:GetSecretValue", secret(c.API_KEY_PEPPER_SECRET_NAME)),
        ("apigateway:GET", "apikey:unverified"),  # integrations/usage_plans.py usage_key_value
    ],
    c.CONSOLE_FUNCTION_NAME: [
        *LOGS,
        *[("secretsmanager:GetSecretValue", secret(n)) for n in (
            c.DB_APP_SECRET_NAME, c.API_KEY_PEPPER_SECRET_NAME, c.CONSOLE_SECRET_NAME,
            c.CONSOLE_TOTP_KEYS_SECRET_NAME, c.NANGO_SECRET_NAME)],
        ("s3:GetObject", RAW_ARCHIVE), ("s3:GetObject", LARGE_MAIL), ("kms:Decrypt", DATA_KEY),
        ("cloudwatch:GetMetricStatistics", ANY),
        *BREAKER_CALLS, *AGENT_CALLS, *FLAG_ADMIN_CALLS,
        # the DLQ page (pipeline/queues.py DeadLetters): list, redrive to the emails queue, discard
        ("sqs:ReceiveMessage", DLQ), ("sqs:ChangeMessageVisibility", DLQ), ("sqs:DeleteMessage", DLQ),
        *sends_to(EMAILS),
        *sends_to(RESPONSE_JOBS),  # bulk response jobs started from the console
    ],
    c.FLAGS_AUDIT_FUNCTION_NAME: [
        *LOGS, ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)), *FLAG_READ_CALLS,
    ],
    c.HEALTH_CANARY_FUNCTION_NAME: [
        *LOGS, ("secretsmanager:GetSecretValue", secret(c.DB_APP_SECRET_NAME)),
        ("sqs:GetQueueAttributes", EMAILS), ("sqs:GetQueueAttributes", DLQ),
        ("cloudwatch:GetMetricStatistics", ANY), ("dynamodb:GetItem", BREAKERS), ("kms:Decrypt", DATA_KEY),
        *AGENT_CALLS,
    ],
    c.RESTORE_VALIDATOR_FUNCTION_NAME: [
        *LOGS, ("backup:DescribeRestoreJob", ANY), ("backup:PutRestoreValidationResult", ANY),
        ("rds:DescribeDBInstances", "rdsdb:awsbackup-restore-test-1"),
        ("secretsmanager:GetSecretValue", secret(c.DB_MASTER_SECRET_NAME)),
    ],
    c.ROTATE_SECRET_FUNCTION_NAME: [
        *LOGS,
        *[(action, secret(n)) for n in (c.DB_APP_SECRET_NAME, c.DB_ADMIN_SECRET_NAME, c.API_KEY_PEPPER_SECRET_NAME)
          for action in ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                         "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage")],
        ("secretsmanager:GetSecretValue", secret(c.DB_MASTER_SECRET_NAME)),  # sets the other logins' passwords
        ("secretsmanager:GetRandomPassword", ANY),
    ],
}


# --- resolving the templates ---------------------------------------------------------------------

@dataclass
class App:
    templates: Templates
    region: str
    account: str

    def __post_init__(self) -> None:
        self.exports: dict[str, tuple[str, object]] = {}
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if isinstance(name, str):
                    self.exports[name] = (stack, output["Value"])

    def resource(self, stack: str, lid: str) -> dict:
        return self.templates[stack]["Resources"].get(lid, {})

    def find(self, resource_type: str, **properties: str) -> list[tuple[str, str]]:
        return [(stack, lid) for stack, template in self.templates.items()
                for lid, r in template.get("Resources", {}).items()
                if r.get("Type") == resource_type
                and all(r.get("Properties", {}).get(k) == v for k, v in properties.items())]

    # Ref and GetAtt of the resource types our policies name; anything else stays a placeholder,
    # which a statement can then match only with a wildcard.
    def ref(self, stack: str, lid: str) -> str:
        pseudo = {"AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": stack}
        if lid in pseudo:
            return pseudo[lid]
        r = self.resource(stack, lid)
        t, p = r.get("Type"), r.get("Properties", {})
        if t == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{p.get('QueueName', lid)}"
        if t == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{p.get('Name', lid)}-AbCdEf"
        if t == "AWS::SecretsManager::SecretTargetAttachment":
            return self.value(stack, p["SecretId"])
        if t == "AWS::S3::Bucket":
            return self.value(stack, p["BucketName"]) if "BucketName" in p else lid.lower()
        if t == "AWS::Logs::LogGroup":
            return self.value(stack, p["LogGroupName"]) if "LogGroupName" in p else lid
        if t == "AWS::KMS::Key":
            return f"key-{lid}"
        return f"{lid}-id"

    def get_att(self, stack: str, lid: str, attribute: str) -> str:
        r = self.resource(stack, lid)
        t, p = r.get("Type"), r.get("Properties", {})
        if attribute == "Arn":
            if t == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{self.region}:{self.account}:{p.get('QueueName', lid)}"
            if t == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(stack, lid)}"
            if t in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
                return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{p.get('TableName', lid)}"
            if t == "AWS::KMS::Key":
                return f"arn:aws:kms:{self.region}:{self.account}:key/{self.ref(stack, lid)}"
            if t == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.ref(stack, lid)}:*"
            if t == "AWS::SNS::Topic":
                return f"arn:aws:sns:{self.region}:{self.account}:{lid}"
        if attribute == "QueueName" and t == "AWS::SQS::Queue":
            return p.get("QueueName", lid)
        return f"{lid}.{attribute}"

    def value(self, stack: str, v: object) -> object:
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        if isinstance(v, list):
            return [self.value(stack, x) for x in v]
        if isinstance(v, dict) and len(v) == 1:
            (fn, arg), = v.items()
            if fn == "Ref":
                return self.ref(stack, arg)
            if fn == "Fn::GetAtt":
                lid, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(stack, lid, attribute)
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.value(stack, p)) for p in parts)
            if fn == "Fn::Select":
                index, items = arg
                return self.value(stack, items)[int(self.value(stack, index))]
            if fn == "Fn::Split":
                separator, text = arg
                return str(self.value(stack, text)).split(separator)
            if fn == "Fn::ImportValue":
                name = self.value(stack, arg)
                exporter, exported = self.exports[name]
                return self.value(exporter, exported)
            if fn == "Fn::GetStackOutput":  # a weak cross-stack reference
                producer = arg["StackName"]
                return self.value(producer, self.templates[producer]["Outputs"][arg["OutputName"]]["Value"])
            if fn == "Fn::Sub" and isinstance(arg, str):
                return arg
        return json.dumps(v)

    # --- the declared side: kind:name -> the ARN the call names
    def declared(self, spec: str, function_stack: str, function_lid: str) -> str:
        if spec == ANY:
            return "*"
        kind, _, name = spec.partition(":")
        region, account = self.region, self.account
        if kind == "queue":
            return f"arn:aws:sqs:{region}:{account}:{name}"
        if kind == "secret":
            return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
        if kind == "table":
            return f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        if kind == "object":
            prefix, _, key = name.partition(":")
            return f"arn:aws:s3:::{prefix}-{account}-{region}/{key}"
        if kind == "key":
            ((stack, lid),) = self.find("AWS::KMS::Alias", AliasName=name)
            target = str(self.value(stack, self.resource(stack, lid)["Properties"]["TargetKeyId"]))
            return target if target.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{target}"
        if kind == "loggroup":
            log_group = self.resource(function_stack, function_lid)["Properties"]["LoggingConfig"]["LogGroup"]
            return (f"arn:aws:logs:{region}:{account}:log-group:{self.value(function_stack, log_group)}"
                    ":log-stream:2026/12/07/[$LATEST]0123456789abcdef")
        if kind == "rdsdb":
            return f"arn:aws:rds:{region}:{account}:db:{name}"
        if kind == "apikey":
            ((stack, lid),) = [(s, lid) for s, lid in self.find("AWS::ApiGateway::ApiKey") if name in
                               str(self.resource(s, lid)["Properties"].get("Name"))]
            return f"arn:aws:apigateway:{region}::/apikeys/{self.ref(stack, lid)}"
        if kind == "appconfig":
            return self._appconfig(name)
        raise ValueError(f"unknown resource spec {spec!r}")

    def _appconfig(self, what: str) -> str:
        ((s, app),) = self.find("AWS::AppConfig::Application", Name=c.APPCONFIG_APPLICATION)
        ((_, env),) = self.find("AWS::AppConfig::Environment", Name=c.APPCONFIG_ENVIRONMENT)
        ((_, profile),) = self.find("AWS::AppConfig::ConfigurationProfile", Name=c.APPCONFIG_FLAGS_PROFILE)
        strategies = self.find("AWS::AppConfig::DeploymentStrategy")
        base = f"arn:aws:appconfig:{self.region}:{self.account}:application/{self.ref(s, app)}"
        return {
            "application": base,
            "environment": f"{base}/environment/{self.ref(s, env)}",
            "configuration": f"{base}/environment/{self.ref(s, env)}/configuration/{self.ref(s, profile)}",
            "profile": f"{base}/configurationprofile/{self.ref(s, profile)}",
            "version": f"{base}/configurationprofile/{self.ref(s, profile)}/hostedconfigurationversion/7",
            "deployment": f"{base}/environment/{self.ref(s, env)}/deployment/7",
            "strategy": (f"arn:aws:appconfig:{self.region}:{self.account}:deploymentstrategy/"
                         f"{self.ref(*strategies[0])}" if strategies else "none"),
        }[what]

    # --- the policies
    def statements(self, stack: str, role_lid: str) -> list[dict]:
        found = []
        role = self.resource(stack, role_lid).get("Properties", {})
        for policy in role.get("Policies", []):
            found.extend(policy["PolicyDocument"]["Statement"])
        for _, r in self.templates[stack]["Resources"].items():
            if r.get("Type") == "AWS::IAM::Policy" and any(
                    isinstance(x, dict) and x.get("Ref") == role_lid for x in r["Properties"].get("Roles", [])):
                found.extend(r["Properties"]["PolicyDocument"]["Statement"])
        if role.get("ManagedPolicyArns"):
            found.append({"Effect": "Allow", "Action": "managed-policy-not-evaluated", "Resource": "none"})
        return found


def _as_list(v: object) -> list:
    return v if isinstance(v, list) else [v]


def allowed(app: App, stack: str, statements: list[dict], action: str, arn: str) -> bool:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _as_list(statement.get("Action", []))]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        for resource in _as_list(statement.get("Resource", [])):
            pattern = str(app.value(stack, resource))
            # IAM: * and ? match within any characters, including "/" and ":".
            if fnmatch.fnmatchcase(arn, pattern):
                return True
    return False


@dataclass(frozen=True)
class Denied:
    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource} is not allowed by its role"


def functions(app: App) -> dict[str, tuple[str, str, str]]:
    """Function name -> (stack, function logical id, role logical id)."""
    found = {}
    for stack, template in app.templates.items():
        for lid, r in template.get("Resources", {}).items():
            p = r.get("Properties", {})
            if r.get("Type") == "AWS::Lambda::Function" and isinstance(p.get("FunctionName"), str):
                role = p["Role"]["Fn::GetAtt"][0] if isinstance(p.get("Role"), dict) and "Fn::GetAtt" in p["Role"] else None
                found[p["FunctionName"]] = (stack, lid, role)
    return found


def check(templates: Templates, calls: dict[str, list[tuple[str, str]]] = CALLS) -> tuple[list[Denied], dict]:
    """The calls each function's role does not allow, and figures (functions and calls checked)."""
    region, account = _target()
    app = App(templates, region, account)
    deployed = functions(app)
    denied, checked = [], 0
    missing = sorted(set(calls) - set(deployed))
    for name, function_calls in calls.items():
        if name not in deployed:
            continue
        stack, function_lid, role_lid = deployed[name]
        statements = app.statements(stack, role_lid)
        for action, spec in function_calls:
            arn = app.declared(spec, stack, function_lid)
            checked += 1
            if not allowed(app, stack, statements, action, arn):
                denied.append(Denied(name, action, arn))
    ours = {n for n in deployed if n.startswith(f"{c.SERVICE_NAME}-") and n != f"{c.SERVICE_NAME}-rotate-master"}
    figures = {"functions": len(set(calls) & set(deployed)), "calls": checked, "not_deployed": missing,
               "undeclared_functions": sorted(ours - set(calls))}
    return denied, figures


def _target() -> tuple[str, str]:
    """The region and account every template was synthesised for (cdk.json pins them)."""
    context = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]
    return context["region"], str(context["account"])


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
    from scripts.template_limits import load_templates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, nargs="?", default=Path("cdk.out"))
    args = parser.parse_args(argv)
    denied, figures = check(load_templates(args.outdir))
    status = "FAIL" if denied or figures["undeclared_functions"] else "PASS"
    print(f"{status}  iam: every AWS call of every function allowed by its role "
          f"({figures['calls']} calls of {figures['functions']} functions)")
    for d in denied:
        print(f"      {d}")
    if figures["undeclared_functions"]:
        print(f"      functions with no declared calls (add them to scripts/iam_check.py CALLS): "
              f"{', '.join(figures['undeclared_functions'])}")
    return 1 if status == "FAIL" else 0


if __name__ == "__main__":
    raise SystemExit(main())
