"""Per-environment deployment settings, read from the CDK context (cdk.json, overridable with -c).

`-c env=prod` picks the `environments.prod` block; `dev` is the default. Top-level `account` and
`region` pin the target so that `cdk synth` never has to look anything up (offline); an environment
block may override them. Context values given on the command line arrive as strings, so booleans and
numbers are coerced here.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from constructs import Node

DEFAULT_ENV = "dev"


def as_bool(value: Any) -> bool:
    """`-c bundle_dependencies=false` arrives as the string "false"."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class EnvSettings:
    name: str
    account: str
    region: str
    # network
    max_azs: int
    nat_gateways: int
    # database
    db_instance_class: str  # e.g. "m7g.large" (rendered as db.m7g.large)
    db_allocated_storage_gb: int
    db_max_allocated_storage_gb: int
    db_multi_az: bool
    db_deletion_protection: bool
    db_backup_retention_days: int
    db_max_connections_alarm: int
    db_free_storage_alarm_gb: int
    db_monitoring_interval_seconds: int  # RDS Enhanced Monitoring; 0 = off
    # cache (ElastiCache Serverless usage caps keep the bill bounded)
    cache_max_data_storage_gb: int
    cache_max_ecpu_per_second: int
    # functions
    processor_memory_mb: int
    processor_reserved_concurrency: int
    processor_max_concurrency: int  # SQS event source scaling cap (< reserved concurrency)
    api_reserved_concurrency: int
    log_retention_days: int
    # API
    api_throttle_rate: int
    api_throttle_burst: int
    waf_rate_limit_per_5min: int  # per source address; >= the stage rate x 300 (an MSP sends for all its tenants)
    # per tenant (API Gateway usage plan, one usage key per tenant): requests/s, burst, requests/day
    tenant_throttle_rate: int
    tenant_throttle_burst: int
    tenant_quota_per_day: int
    # callers without a valid key (unknown, revoked or expired), all together in one usage plan: the
    # authorizer lets them through to the API's own 401 and failed-auth limit, but past this API
    # Gateway answers 429 for all of them
    unverified_throttle_rate: int
    unverified_throttle_burst: int
    unverified_quota_per_day: int
    # backup
    backup_retention_days: int
    backup_vault_lock: bool
    backup_copy_region: str | None
    # flags
    flags_deployment_minutes: int
    flags_bake_minutes: int
    flags_growth_percent: int
    # alarms
    oldest_message_alarm_seconds: int
    # threat feeds the refresher downloads (null: that feed is off; PhishTank needs an app key in its URL)
    urlhaus_feed_url: str | None
    openphish_feed_url: str | None
    phishtank_feed_url: str | None
    # First deploy: false until the database users exist (docs/deploy.md, first-deploy steps). Creating
    # a rotation schedule runs the rotation's testSecret at once, which fails while the logins it
    # tests do not exist; with true, the app and admin logins get their rotation schedules.
    db_users_created: bool
    # shared
    removal_retain: bool  # keep stateful resources (snapshot/retain) when the stack is deleted
    # Alerts by e-mail go through SES from this address (its domain a verified identity); None: none.
    alert_email_from: str | None = None
    siem_export_webhook_url: str | None = None  # the SIEM's HTTPS endpoint; None: S3 only
    siem_export_retention_days: int = 400

    @property
    def cdk_env(self) -> dict[str, str]:
        return {"account": self.account, "region": self.region}


@dataclass(frozen=True)
class AppSettings:
    env: EnvSettings
    bundle_dependencies: bool  # pip-install the Lambda dependencies layer (needs the package index)
    appconfig_agent_layer_arn: str | None  # None: the ARN CDK knows for the region
    nag: bool  # run cdk-nag AwsSolutionsChecks during synth


def load_settings(node: Node) -> AppSettings:
    env_name = str(node.try_get_context("env") or DEFAULT_ENV)
    environments = node.try_get_context("environments") or {}
    if env_name not in environments:
        raise ValueError(
            f"unknown environment {env_name!r}: cdk.json context 'environments' defines "
            f"{sorted(environments)}; pass -c env=<one of them>"
        )
    block = dict(environments[env_name])
    block.setdefault("account", node.try_get_context("account"))
    block.setdefault("region", node.try_get_context("region"))
    if not block["account"] or not block["region"]:
        raise ValueError("cdk.json context must pin 'account' and 'region' so synth runs offline")
    known = {f.name for f in fields(EnvSettings)}
    unknown = set(block) - known
    if unknown:
        raise ValueError(f"unknown settings in environments.{env_name}: {sorted(unknown)}")
    for f in fields(EnvSettings):  # null in cdk.json arrives as a missing key
        if "None" in str(f.type):
            block.setdefault(f.name, None)
    missing = {f.name for f in fields(EnvSettings) if f.default is MISSING} - set(block) - {"name"}
    if missing:
        raise ValueError(f"environments.{env_name} lacks settings: {sorted(missing)}")
    block["name"] = env_name
    block["account"] = str(block["account"])
    for f in fields(EnvSettings):
        if f.name not in block:
            continue  # a setting with a default
        if f.type == "bool":
            block[f.name] = as_bool(block[f.name])
        elif f.type == "int":
            block[f.name] = int(block[f.name])
    return AppSettings(
        env=EnvSettings(**block),
        bundle_dependencies=as_bool(node.try_get_context("bundle_dependencies") if
                                    node.try_get_context("bundle_dependencies") is not None else True),
        appconfig_agent_layer_arn=node.try_get_context("appconfig_agent_layer_arn") or None,
        nag=as_bool(node.try_get_context("nag") if node.try_get_context("nag") is not None else True),
    )
