"""Database, secrets, cache, breaker table and network paths: what matters for security and recovery."""

from __future__ import annotations

import json

from cdk_helpers import by_property, only, props, refers_to, resources
from swordfish import constants


def test_prod_database_is_postgres16_multi_az_encrypted_and_protected(prod):
    instances = resources(prod.templates["data"], "AWS::RDS::DBInstance")
    (db,) = instances.values()
    p = db["Properties"]
    assert p["Engine"] == "postgres" and p["EngineVersion"].startswith("16.")
    assert p["MultiAZ"] is True
    assert p["StorageEncrypted"] is True and refers_to(p["KmsKeyId"], "DataKey")
    assert p["DeletionProtection"] is True
    assert p["BackupRetentionPeriod"] == 30  # automated backups: point-in-time recovery over 30 days
    assert p["DeleteAutomatedBackups"] is False
    assert p["EnablePerformanceInsights"] is True and refers_to(p["PerformanceInsightsKMSKeyId"], "DataKey")
    assert p["EnableIAMDatabaseAuthentication"] is True
    assert p["PubliclyAccessible"] is False
    assert db["DeletionPolicy"] == "Snapshot" and db["UpdateReplacePolicy"] == "Snapshot"


def test_dev_database_is_cheaper_and_disposable(dev):
    (db,) = resources(dev.templates["data"], "AWS::RDS::DBInstance").values()
    assert db["Properties"]["MultiAZ"] is False
    assert db["Properties"]["DeletionProtection"] is False
    assert db["DeletionPolicy"] == "Delete"
    assert db["Properties"]["DBInstanceClass"] == "db.t4g.medium"


def test_database_accepts_tls_connections_only(prod):
    params = only(prod.templates["data"], "AWS::RDS::DBParameterGroup")["Parameters"]
    assert params["rds.force_ssl"] == "1"
    proxy = only(prod.templates["data"], "AWS::RDS::DBProxy")
    assert proxy["RequireTLS"] is True and proxy["EngineFamily"] == "POSTGRESQL"


def test_proxy_serves_the_admin_and_application_users(prod):
    proxy = only(prod.templates["data"], "AWS::RDS::DBProxy")
    assert sorted(a["SecretArn"]["Ref"][:9] for a in proxy["Auth"]) == ["AdminSecr", "AppSecret"]
    assert all(a["AuthScheme"] == "SECRETS" for a in proxy["Auth"])


def test_master_secret_rotates_single_user_every_30_days(prod):
    (schedule,) = [p for p in props(prod.templates["data"], "AWS::SecretsManager::RotationSchedule")
                   if refers_to(p["SecretId"], "MasterSecretAttachment")]
    assert schedule["HostedRotationLambda"]["RotationType"] == "PostgreSQLSingleUser"
    assert schedule["RotationRules"]["ScheduleExpression"] == "rate(30 days)"


def test_secrets_have_the_names_the_functions_read(prod):
    names = {p.get("Name") for p in props(prod.templates["data"], "AWS::SecretsManager::Secret")}
    assert {constants.DB_MASTER_SECRET_NAME, constants.DB_ADMIN_SECRET_NAME, constants.DB_APP_SECRET_NAME,
            constants.NANGO_SECRET_NAME, constants.API_KEY_PEPPER_SECRET_NAME} <= names


def test_cache_is_serverless_valkey_encrypted_with_the_data_key(prod):
    cache = only(prod.templates["data"], "AWS::ElastiCache::ServerlessCache")
    assert cache["Engine"] == "valkey"
    assert refers_to(cache["KmsKeyId"], "DataKey")  # serverless caches are always TLS-only
    assert cache["CacheUsageLimits"]["ECPUPerSecond"]["Maximum"] > 0


def test_breaker_table_expires_items_and_recovers_to_a_point_in_time(prod):
    table = only(prod.templates["data"], "AWS::DynamoDB::GlobalTable")
    assert table["TableName"] == constants.BREAKER_TABLE_NAME
    assert table["TimeToLiveSpecification"] == {"AttributeName": constants.BREAKER_TABLE_TTL_ATTRIBUTE,
                                                "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    replica = table["Replicas"][0]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert refers_to(replica["SSESpecification"]["KMSMasterKeyId"], "DataKey")


def _ingress(template, group_prefix: str) -> list[dict]:
    inline = [rule for lid, sg in resources(template, "AWS::EC2::SecurityGroup").items()
              if lid.startswith(group_prefix) for rule in sg["Properties"].get("SecurityGroupIngress", [])]
    separate = [p for p in props(template, "AWS::EC2::SecurityGroupIngress") if refers_to(p["GroupId"], group_prefix)]
    return inline + separate


def test_database_is_reachable_only_from_proxy_rotation_and_operators(prod):
    rules = _ingress(prod.templates["data"], "DatabaseSg")
    sources = sorted(json.dumps(r["SourceSecurityGroupId"]) for r in rules)
    assert len(rules) == 3 and not any("CidrIp" in r for r in rules)
    assert any("ProxySg" in s for s in sources) and any("RotationSg" in s for s in sources)
    assert any("OperatorSg" in s for s in sources)


def test_proxy_and_cache_accept_only_the_function_and_operator_groups(prod):
    for group, expected in (("ProxySg", 2), ("CacheSg", 1)):
        rules = _ingress(prod.templates["data"], group)
        assert len(rules) == expected and not any("CidrIp" in r for r in rules)
        assert all("FunctionsSg" in json.dumps(r) or "OperatorSg" in json.dumps(r) for r in rules)


def test_no_security_group_accepts_traffic_from_the_internet(prod):
    for template in prod.templates.values():
        for rule in [r for sg in props(template, "AWS::EC2::SecurityGroup")
                     for r in sg.get("SecurityGroupIngress", [])] + props(template, "AWS::EC2::SecurityGroupIngress"):
            assert rule.get("CidrIp") != "0.0.0.0/0"


def test_vpc_has_endpoints_for_every_aws_service_the_functions_call(prod):
    endpoints = props(prod.templates["network"], "AWS::EC2::VPCEndpoint")
    services = {json.dumps(e["ServiceName"]).split(".")[-1].strip('"]}') for e in endpoints}
    assert {"sqs", "secretsmanager", "appconfig", "appconfigdata", "kms", "logs", "monitoring", "xray",
            "s3", "dynamodb"} <= services
    gateways = [e for e in endpoints if e.get("VpcEndpointType") == "Gateway"]
    assert len(gateways) == 2
    assert all(e["PrivateDnsEnabled"] is True for e in endpoints if e.get("VpcEndpointType") == "Interface")


def test_vpc_spans_two_zones_with_flow_logs(prod):
    subnets = props(prod.templates["network"], "AWS::EC2::Subnet")
    assert {s["AvailabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b"}
    assert only(prod.templates["network"], "AWS::EC2::FlowLog")["TrafficType"] == "ALL"
    assert len(props(prod.templates["network"], "AWS::EC2::NatGateway")) == 2
    assert by_property(prod.templates["network"], "AWS::EC2::SecurityGroup", "GroupDescription",
                       "Swordfish Lambda functions")


def test_breaker_table_key_and_expiry_are_the_ones_the_breaker_persistence_uses(prod):
    from swordfish.resilience.circuit_breaker import KEY_ATTR, TTL_ATTR

    table = only(prod.templates["data"], "AWS::DynamoDB::GlobalTable")
    assert table["KeySchema"] == [{"AttributeName": KEY_ATTR, "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"]["AttributeName"] == TTL_ATTR


def test_proxy_may_reach_only_the_database(prod):
    (proxy_sg,) = [sg for lid, sg in resources(prod.templates["data"], "AWS::EC2::SecurityGroup").items()
                   if lid.startswith("ProxySg")]
    egress = proxy_sg["Properties"].get("SecurityGroupEgress", []) + [
        p for p in props(prod.templates["data"], "AWS::EC2::SecurityGroupEgress") if refers_to(p["GroupId"], "ProxySg")]
    assert egress and all(refers_to(rule["DestinationSecurityGroupId"], "DatabaseSg") for rule in egress)


def test_prod_database_has_enhanced_monitoring_every_60_seconds_with_its_role(prod):
    data = prod.templates["data"]
    (db,) = props(data, "AWS::RDS::DBInstance")
    assert db["MonitoringInterval"] == 60 == prod.stacks.settings.env.db_monitoring_interval_seconds
    assert refers_to(db["MonitoringRoleArn"], "DbMonitoringRole")
    (role,) = [r["Properties"] for lid, r in resources(data, "AWS::IAM::Role").items() if lid.startswith("DbMonitoringRole")]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert "AmazonRDSEnhancedMonitoringRole" in json.dumps(role["ManagedPolicyArns"])


def test_endpoints_admit_every_group_that_calls_aws_through_them(prod):
    """The restore validator reads the master secret (Secrets Manager has an interface endpoint with
    private DNS): without an ingress rule on the endpoints' group its call times out."""
    rules = [r for template in prod.templates.values()
             for r in props(template, "AWS::EC2::SecurityGroupIngress") if "EndpointsSg" in json.dumps(r["GroupId"])]
    sources = {group for group in ("FunctionsSg", "OperatorSg", "RotationSg", "RestoreValidatorSg")
               for r in rules if group in json.dumps(r.get("SourceSecurityGroupId")) and r["FromPort"] == 443}
    assert sources == {"FunctionsSg", "OperatorSg", "RotationSg", "RestoreValidatorSg"}


def test_postgres_is_the_newest_16_minor_the_installed_cdk_knows(prod):
    from aws_cdk import aws_rds as rds

    known = [getattr(rds.PostgresEngineVersion, n).postgres_full_version for n in dir(rds.PostgresEngineVersion)
             if n.startswith("VER_16_")]
    newest = max(known, key=lambda v: tuple(int(x) for x in v.split(".")))
    (db,) = resources(prod.templates["data"], "AWS::RDS::DBInstance").values()
    assert db["Properties"]["EngineVersion"] == newest
