"""Builds every Swordfish stack into a CDK app; `app.py` and the infrastructure tests both call it.

Order of the stacks (each depends only on earlier ones):
(BackupCopy in the second region ->) Network -> Data -> Flags -> Pipeline -> Api -> Observability -> Backup -> Secrets
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Aspects, Environment, Stack
from cdk_nag import AwsSolutionsChecks
from swordfish import constants

from stacks.api_stack import ApiStack
from stacks.backup_stack import BackupCopyStack, BackupStack
from stacks.constructs.lambda_function import release_id
from stacks.data_stack import DataStack
from stacks.flags_stack import FlagsStack
from stacks.network_stack import NetworkStack
from stacks.observability_stack import ObservabilityStack, ObservedResources
from stacks.pipeline_stack import PipelineStack
from stacks.secrets_stack import SecretsStack
from stacks.settings import AppSettings, load_settings


@dataclass
class SwordfishStacks:
    settings: AppSettings
    network: NetworkStack
    data: DataStack
    backup: BackupStack
    backup_copy: BackupCopyStack | None
    flags: FlagsStack
    pipeline: PipelineStack
    api: ApiStack
    observability: ObservabilityStack
    secrets: SecretsStack

    def all(self) -> list[Stack]:
        return [s for s in vars(self).values() if isinstance(s, Stack)]


def stack_name(env_name: str, concern: str) -> str:
    return f"Swordfish-{env_name}-{concern}"


def function_environment(app: App, settings: AppSettings, data: DataStack) -> dict[str, str]:
    """SWORDFISH_* settings every function reads through swordfish.config (queue URLs are added per
    function)."""
    return {
        "SWORDFISH_ENVIRONMENT": settings.env.name,
        "SWORDFISH_AWS_REGION": settings.env.region,
        "SWORDFISH_DB_APP_SECRET_NAME": constants.DB_APP_SECRET_NAME,
        "SWORDFISH_DB_HOST": data.proxy.endpoint,  # RDS Proxy; the secret's host is the instance
        "SWORDFISH_REDIS_URL": data.redis_url,
        "SWORDFISH_BREAKER_TABLE_NAME": constants.BREAKER_TABLE_NAME,
        "SWORDFISH_LARGE_MAIL_BUCKET": data.large_mail_bucket.bucket_name,
        "SWORDFISH_NANGO_SECRET_NAME": constants.NANGO_SECRET_NAME,
        "SWORDFISH_SENTRY_DSN_SECRET_NAME": constants.SENTRY_DSN_SECRET_NAME,
        "SWORDFISH_RELEASE": release_id(app.node.try_get_context("release")),
    }


def build_app(app: App) -> SwordfishStacks:
    settings = load_settings(app.node)
    env = settings.env
    cdk_env = Environment(account=env.account, region=env.region)
    tags = {"project": constants.SERVICE_NAME, "environment": env.name}

    def common(concern: str, description: str) -> dict:
        return {"construct_id": stack_name(env.name, concern), "env": cdk_env, "tags": tags,
                "description": f"Swordfish {env.name}: {description}"}

    network = NetworkStack(app, **common("Network", "VPC, endpoints, security groups"), settings=env)
    backup_copy = None
    if env.backup_copy_region:
        backup_copy = BackupCopyStack(
            app, stack_name(env.name, "BackupCopy"), settings=env, tags=tags,
            env=Environment(account=env.account, region=env.backup_copy_region),
            description=f"Swordfish {env.name}: backup copy vault and RDS replica key in {env.backup_copy_region}")
    data = DataStack(app, **common("Data", "PostgreSQL, proxy, secrets, cache, breaker table, buckets"),
                     settings=env, vpc=network.vpc, security_groups=network.security_groups)
    if backup_copy is not None:
        data.add_stack_dependency(backup_copy, "automated backups replicate under the copy region's key")

    kit_props = {
        "vpc": network.vpc,
        "security_group": network.security_groups.functions,
        "log_key": data.key,
        "log_retention_days": env.log_retention_days,
        "retain_logs": env.removal_retain,
        "install_dependencies": settings.bundle_dependencies,
        "appconfig_agent_layer_arn": settings.appconfig_agent_layer_arn,
        "environment": function_environment(app, settings, data),
    }
    flags = FlagsStack(app, **common("Flags", "AppConfig feature flags and their audit"),
                       settings=env, kit_props=kit_props, app_secret=data.app_secret)
    pipeline = PipelineStack(app, **common("Pipeline", "emails queue, processor, feed refresher"),
                             settings=env, data=data, flags_configuration_arn=flags.configuration_arn,
                             kit_props=kit_props)
    api = ApiStack(app, **common("Api", "REST API, API function, WAF"), settings=env, data=data,
                   pipeline=pipeline, flags_configuration_arn=flags.configuration_arn, kit_props=kit_props)
    observability = ObservabilityStack(
        app, **common("Observability", "alarm topic, dashboard, alarms, error tracking"), settings=env,
        resources=ObservedResources(
            queue=pipeline.queue, dlq=pipeline.dlq, processor=pipeline.processor,
            functions=[pipeline.processor, pipeline.remediation, pipeline.feed_refresher, api.api_function,
                       api.authorizer_function, api.console.function, flags.audit_function,
                       pipeline.alerts.dispatcher, pipeline.alerts.rate_check, pipeline.alerts.exporter,
                       pipeline.response_jobs.worker,
                       pipeline.trace_purge],
            database=data.database,
            remediation_dlq=pipeline.remediation_dlq, flags_audit_dlq=flags.audit_dlq,
            feed_schedule_dlq=pipeline.feed_schedule_dlq, api=api.api, alerts_dlq=pipeline.alerts.dlq,
            response_jobs_dlq=pipeline.response_jobs.dlq,
        ),
        canary_props={"kit_props": kit_props, "data": data, "flags_configuration_arn": flags.configuration_arn})

    # After Observability: the backup alarms go to its alarm topic.
    backup = BackupStack(app, **common("Backup", "backup vault, daily plan, restore testing and its validator"),
                         settings=env, database=data.database, db_subnet_group=data.subnet_group,
                         restore_test_security_group=data.security_groups.restore_test,
                         validator_security_group=data.security_groups.restore_validator,
                         master_secret=data.master_secret, alarm_topic=observability.topic, kit_props=kit_props)
    if backup_copy is not None:
        backup.add_stack_dependency(backup_copy, "copies go to the second region's vault")

    # Last: its alarms use the observability topic; nothing depends on it.
    secrets = SecretsStack(app, **common("Secrets", "secret rotation, secrets audit trail and alarms"),
                           settings=env, data=data, kit_props=kit_props, alarm_topic=observability.topic,
                           role_prefix=f"{stack_name(env.name, '')}")

    stacks = SwordfishStacks(settings=settings, network=network, data=data, backup=backup,
                             backup_copy=backup_copy, flags=flags, pipeline=pipeline, api=api,
                             observability=observability, secrets=secrets)
    if settings.nag:
        Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stacks
