"""Data: PostgreSQL 16 behind RDS Proxy, its secrets with rotation, the Valkey cache, the breaker
table and the buckets for large mail and backups, all under one customer-managed KMS key."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

from stacks.constructs.buckets import hardened_bucket
from stacks.constructs.lambda_function import log_retention
from stacks.network_stack import HTTPS, POSTGRES_PORT, VALKEY_PORTS, SecurityGroups
from stacks.settings import EnvSettings


@dataclass
class DataSecurityGroups:
    proxy: ec2.SecurityGroup
    database: ec2.SecurityGroup
    cache: ec2.SecurityGroup
    rotation: ec2.SecurityGroup
    # AWS Backup's weekly restore test: the restored instance, and the function that validates it.
    restore_test: ec2.SecurityGroup
    restore_validator: ec2.SecurityGroup


DB_INSTANCE_IDENTIFIER = f"{constants.SERVICE_NAME}-db"
DB_PROXY_NAME = f"{constants.SERVICE_NAME}-proxy"
CACHE_NAME = f"{constants.SERVICE_NAME}-cache"
# The newest 16.x the installed aws-cdk-lib knows (a test checks it is still the newest). RDS applies
# newer minors itself (auto_minor_version_upgrade); bump this to the minor the instance runs, never
# below it (docs/deploy.md, "PostgreSQL version").
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_16_13
LARGE_MAIL_EXPIRY_DAYS = constants.LARGE_MAIL_EXPIRY_DAYS  # as long as a submission can be retried or reviewed
BACKUP_OBJECT_EXPIRY_DAYS = constants.BACKUP_OBJECT_EXPIRY_DAYS  # the raw archive's; traces expire with it
# Characters that break DSNs or shell quoting in the generated passwords.
PASSWORD_EXCLUDE = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, vpc: ec2.IVpc,
                 security_groups: SecurityGroups, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = settings.removal_retain
        stateful_removal = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.key = kms.Key(
            self, "DataKey",
            alias=f"alias/{constants.SERVICE_NAME}/data",
            description="Swordfish data at rest: database, queues, buckets, cache, logs",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=stateful_removal,
        )
        # CloudWatch Logs encrypts the functions' log groups with this key. In a key policy "*" means
        # this key; the condition limits it to log groups of this account and region.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsEncryptLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:aws:logs:{self.region}:{self.account}:log-group:*"}},
        ))

        self.security_groups = self._security_groups(vpc, security_groups)
        self._database(settings, vpc, isolated, retain)
        self._secrets(vpc)
        self._cache(settings, vpc)
        self._breaker_table()
        self._buckets(settings)

        # What operators need after the first deploy (docs/deploy.md).
        CfnOutput(self, "ProxyEndpoint", value=self.proxy.endpoint,
                  description="PostgreSQL through RDS Proxy (migrations, tenants)")
        CfnOutput(self, "DatabaseEndpoint", value=self.database.db_instance_endpoint_address,
                  description="The instance itself: only for bootstrapping roles as the master user")

    def _security_groups(self, vpc: ec2.IVpc, net: SecurityGroups) -> DataSecurityGroups:
        def group(name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(self, name, vpc=vpc, description=description, allow_all_outbound=False)

        sg = DataSecurityGroups(
            proxy=group("ProxySg", "RDS Proxy in front of the database"),
            database=group("DatabaseSg", "RDS PostgreSQL instance"),
            cache=group("CacheSg", "ElastiCache Serverless (Valkey)"),
            rotation=group("RotationSg", "Secrets Manager rotation functions"),
            restore_test=group("RestoreTestDbSg", "Database instances restored by AWS Backup restore tests"),
            restore_validator=group("RestoreValidatorSg", "Function validating restore tests"),
        )
        pg = ec2.Port.tcp(POSTGRES_PORT)
        # Functions and operators -> proxy; functions -> cache. (The proxy opens proxy -> database itself.)
        sg.proxy.connections.allow_from(net.functions, pg, "Functions to RDS Proxy")
        sg.proxy.connections.allow_from(net.operator, pg, "Operators to RDS Proxy")
        sg.cache.connections.allow_from(net.functions, ec2.Port.tcp_range(*VALKEY_PORTS), "Functions to Valkey")
        # Rotation functions set passwords directly on the database and call Secrets Manager.
        sg.rotation.connections.allow_to(sg.database, pg, "Rotation sets passwords")
        sg.rotation.connections.allow_to(net.endpoints, ec2.Port.tcp(HTTPS), "Rotation calls Secrets Manager")
        # Operators bootstrap the roles as the master user, which the proxy does not serve.
        sg.database.connections.allow_from(net.operator, pg, "Operators bootstrap roles")
        # The restore-test validator reaches only the restored test instances (never the live one) and
        # AWS APIs (Backup and RDS have no endpoint in this VPC: HTTPS through the NAT gateway).
        sg.restore_test.connections.allow_from(sg.restore_validator, pg, "Validator checks the restored instance")
        sg.restore_validator.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS),
                                             "HTTPS: AWS Backup, RDS, Secrets Manager APIs")
        # Secrets Manager resolves to its interface endpoint (private DNS): the endpoints' group must
        # admit the validator, or reading the master secret times out.
        sg.restore_validator.connections.allow_to(net.endpoints, ec2.Port.tcp(HTTPS),
                                                  "Validator reads the master secret through the endpoint")
        return sg

    # --- PostgreSQL ---------------------------------------------------------------------------
    def _database(self, settings: EnvSettings, vpc: ec2.IVpc,
                  isolated: ec2.SubnetSelection, retain: bool) -> None:
        sgs = self.security_groups
        engine = rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION)
        parameters = rds.ParameterGroup(
            self, "DbParameters", engine=engine,
            description="Swordfish PostgreSQL 16: TLS only, slow-statement logging",
            parameters={
                "rds.force_ssl": "1",
                "log_min_duration_statement": "1000",
                "shared_preload_libraries": "pg_stat_statements",
            },
        )
        # RDS sends the exported logs to these groups; creating them here sets their retention and key
        # without CDK's log-retention custom resource.
        for log_type in ("postgresql", "upgrade"):
            logs.LogGroup(
                self, f"DbLogs{log_type.capitalize()}",
                log_group_name=f"/aws/rds/instance/{DB_INSTANCE_IDENTIFIER}/{log_type}",
                retention=log_retention(settings.log_retention_days),
                encryption_key=self.key,
                removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY,
            )
        self.master_secret = rds.DatabaseSecret(
            self, "MasterSecret",
            username=constants.DB_MASTER_USER,
            secret_name=constants.DB_MASTER_SECRET_NAME,
            exclude_characters=PASSWORD_EXCLUDE,
        )
        self.subnet_group = rds.SubnetGroup(
            self, "DbSubnets", vpc=vpc, vpc_subnets=isolated,
            description="Isolated data subnets (also used by restore tests)",
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY,
        )
        self.database = rds.DatabaseInstance(
            self, "Database",
            instance_identifier=DB_INSTANCE_IDENTIFIER,
            engine=engine,
            instance_type=ec2.InstanceType(settings.db_instance_class),
            vpc=vpc,
            subnet_group=self.subnet_group,
            security_groups=[sgs.database],
            credentials=rds.Credentials.from_secret(self.master_secret),
            database_name=constants.DATABASE_NAME,
            parameter_group=parameters,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings.db_allocated_storage_gb,
            max_allocated_storage=settings.db_max_allocated_storage_gb,
            storage_encrypted=True,
            storage_encryption_key=self.key,
            multi_az=settings.db_multi_az,
            deletion_protection=settings.db_deletion_protection,
            # Automated backups give point-in-time recovery over this whole window.
            backup_retention=Duration.days(settings.db_backup_retention_days),
            preferred_backup_window="02:00-03:00",
            preferred_maintenance_window="sun:03:30-sun:04:30",
            delete_automated_backups=not retain,
            copy_tags_to_snapshot=True,
            removal_policy=RemovalPolicy.SNAPSHOT if retain else RemovalPolicy.DESTROY,
            enable_performance_insights=True,
            performance_insight_encryption_key=self.key,
            iam_authentication=True,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
            # Enhanced Monitoring: OS metrics (per-process CPU, memory, I/O) the hypervisor view lacks.
            monitoring_interval=(Duration.seconds(settings.db_monitoring_interval_seconds)
                                 if settings.db_monitoring_interval_seconds else None),
            monitoring_role=self._monitoring_role() if settings.db_monitoring_interval_seconds else None,
        )
        self.database.node.add_dependency(*[c for c in self.node.children
                                            if isinstance(c, logs.LogGroup)])
        self._backup_replication(settings)
        # The master user is the superuser the alternating-users rotations use to clone users; it
        # cannot alternate with itself, so it rotates single-user.
        self.database.secret.add_rotation_schedule(
            "MasterRotation",
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                function_name=f"{constants.SERVICE_NAME}-rotate-master",
                vpc=vpc, vpc_subnets=isolated, security_groups=[sgs.rotation],
            ),
            automatically_after=Duration.days(constants.SECRET_ROTATION_DAYS),
        )
        suppressions = [
            NagPackSuppression(
                id="AwsSolutions-RDS11",
                reason="The port is not a control: only the proxy, rotation and operator security "
                       "groups reach 5432, and clients expect the standard port.",
            ),
        ]
        if not settings.db_multi_az:
            suppressions.append(NagPackSuppression(
                id="AwsSolutions-RDS3",
                reason=f"{settings.name} is a single-AZ environment to save cost; prod is Multi-AZ."))
        if not settings.db_deletion_protection:
            suppressions.append(NagPackSuppression(
                id="AwsSolutions-RDS10",
                reason=f"{settings.name} is disposable; prod has deletion protection."))
        NagSuppressions.add_resource_suppressions(self.database, suppressions)

    def _backup_replication(self, settings: EnvSettings) -> None:
        """Cross-Region automated backup replication: point-in-time recovery in the copy region too.

        Replicated backups of an encrypted instance need a key in the destination region; the
        BackupCopy stack (deployed first) creates it under a fixed alias, so no cross-region reference.
        """
        if not settings.backup_copy_region:
            return
        cfn = self.database.node.default_child
        cfn.automatic_backup_replication_region = settings.backup_copy_region
        cfn.automatic_backup_replication_kms_key_id = (
            f"arn:{self.partition}:kms:{settings.backup_copy_region}:{self.account}:"
            f"{constants.RDS_REPLICA_KEY_ALIAS}")
        cfn.automatic_backup_replication_retention_period = settings.db_backup_retention_days

    def _monitoring_role(self) -> iam.Role:
        role = iam.Role(
            self, "DbMonitoringRole",
            assumed_by=iam.ServicePrincipal("monitoring.rds.amazonaws.com"),
            description="RDS Enhanced Monitoring publishes OS metrics of the Swordfish database",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AmazonRDSEnhancedMonitoringRole")],
        )
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM4",
            reason="The AWS-maintained policy RDS Enhanced Monitoring requires (log group RDSOSMetrics only).",
            applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"],
        )])
        return role

    def _secrets(self, vpc: ec2.IVpc) -> None:
        sgs = self.security_groups
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        def user_secret(construct_id: str, username: str, name: str) -> secretsmanager.ISecret:
            database_secret = rds.DatabaseSecret(
                self, construct_id, username=username, secret_name=name,
                master_secret=self.database.secret, exclude_characters=PASSWORD_EXCLUDE,
            )
            NagSuppressions.add_resource_suppressions(database_secret, [NagPackSuppression(
                id="AwsSolutions-SMG4",
                reason=f"Rotated every {constants.SECRET_ROTATION_DAYS} days by the RotationSchedule in "
                       "SecretsStack (our rotate-secret function); cdk-nag only sees schedules in this stack.")],
                apply_to_children=True)
            secret = database_secret.attach(self.database)
            # Alternating users, rotated by our own function (SecretsStack): the secret flips between
            # <name> and <name>_clone, so connections opened with the previous password keep working
            # until the next rotation.
            return secret

        self.admin_secret = user_secret("AdminSecret", constants.ADMIN_DB_ROLE, constants.DB_ADMIN_SECRET_NAME)
        self.app_secret = user_secret("AppSecret", constants.APP_DB_ROLE, constants.DB_APP_SECRET_NAME)

        self.proxy = rds.DatabaseProxy(
            self, "Proxy",
            db_proxy_name=DB_PROXY_NAME,
            proxy_target=rds.ProxyTarget.from_instance(self.database),
            secrets=[self.admin_secret, self.app_secret],
            vpc=vpc,
            vpc_subnets=isolated,
            security_groups=[sgs.proxy],
            require_tls=True,
            idle_client_timeout=Duration.minutes(30),
            max_connections_percent=90,
            # The functions neither pin sessions nor set session state (no startup options, no
            # prepared statements, transaction-local settings), so every transaction borrows a
            # connection: when none is free, fail within seconds (DatabaseUnavailable, retried)
            # rather than after AWS's default 120 s, past every function's timeout.
            borrow_timeout=Duration.seconds(constants.DB_PROXY_BORROW_TIMEOUT_SECONDS),
        )

        self.nango_secret = secretsmanager.Secret(
            self, "NangoSecret",
            secret_name=constants.NANGO_SECRET_NAME,
            description="Nango secret key: replace the generated placeholder after the first deploy",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"base_url": "https://api.nango.dev"}',
                generate_string_key="secret_key",
            ),
        )
        NagSuppressions.add_resource_suppressions(self.nango_secret, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="The Nango secret key is issued by Nango; it is rotated there and pasted here, "
                   "Secrets Manager cannot rotate it.")])
        self.sentry_dsn_secret = secretsmanager.Secret(
            self, "SentryDsn",
            secret_name=constants.SENTRY_DSN_SECRET_NAME,
            description="Sentry DSN for error tracking: replace the placeholder with the project's DSN",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"dsn": ""}', generate_string_key="placeholder"),
        )
        NagSuppressions.add_resource_suppressions(self.sentry_dsn_secret, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="The Sentry DSN is issued by Sentry; it is rotated there and pasted here.")])
        self.operator_token = secretsmanager.Secret(
            self, "OperatorToken",
            secret_name=constants.OPERATOR_TOKEN_SECRET_NAME,
            description="Bearer token operators (and nothing else) present for /health/deep",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=48, exclude_punctuation=True),
        )
        NagSuppressions.add_resource_suppressions(self.operator_token, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="Operators hold the token in their own tooling; it is replaced on demand "
                   "(`aws secretsmanager put-secret-value`), and the API re-reads it within its cache TTL.")])
        self.api_key_pepper = secretsmanager.Secret(
            self, "ApiKeyPepper",
            secret_name=constants.API_KEY_PEPPER_SECRET_NAME,
            description="Pepper for hashing tenant API keys",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
        )
        NagSuppressions.add_resource_suppressions(self.api_key_pepper, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="The pepper rotates on demand only (SecretsStack's function, `aws secretsmanager "
                   "rotate-secret`): keys hashed with the previous pepper are accepted during the overlap, "
                   "but a timer would retire the oldest keys' pepper without their re-issue.")])

        # Encrypts the console's TOTP secrets at rest (security/totp_keys.py): key strings, newest first.
        self.console_totp_keys = secretsmanager.Secret(
            self, "ConsoleTotpKeys",
            secret_name=constants.CONSOLE_TOTP_KEYS_SECRET_NAME,
            description="Keys encrypting the console's TOTP secrets: 32+ character strings, comma-separated, "
                        "newest first",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
        )
        NagSuppressions.add_resource_suppressions(self.console_totp_keys, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="Rotated on demand: an operator puts the new key first and keeps the old one, then "
                   "`swordfish console reencrypt-totp` re-encrypts the rows; a scheduled rotation would "
                   "replace the value and strand every TOTP secret sealed under the old key.")])

    # --- Valkey -------------------------------------------------------------------------------
    def _cache(self, settings: EnvSettings, vpc: ec2.IVpc) -> None:
        sgs = self.security_groups
        # Serverless caches always encrypt in transit (TLS only) and at rest; the key is ours.
        self.cache = elasticache.CfnServerlessCache(
            self, "Cache",
            serverless_cache_name=CACHE_NAME,
            engine="valkey",
            major_engine_version="8",
            description="Swordfish indicators, rate limits and shared counters",
            kms_key_id=self.key.key_arn,
            security_group_ids=[sgs.cache.security_group_id],
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                    unit="GB", maximum=settings.cache_max_data_storage_gb),
                ecpu_per_second=elasticache.CfnServerlessCache.ECPUPerSecondProperty(
                    maximum=settings.cache_max_ecpu_per_second),
            ),
            snapshot_retention_limit=1,
        )
        self.redis_url = (f"rediss://{self.cache.attr_endpoint_address}:{self.cache.attr_endpoint_port}/0")

    # --- circuit-breaker state ------------------------------------------------------------------
    def _breaker_table(self) -> None:
        self.breaker_table = dynamodb.TableV2(
            self, "BreakerTable",
            table_name=constants.BREAKER_TABLE_NAME,
            partition_key=dynamodb.Attribute(name=constants.BREAKER_TABLE_PARTITION_KEY,
                                             type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=constants.BREAKER_TABLE_TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            # Breaker state is rebuilt from live traffic within seconds; nothing to keep.
            removal_policy=RemovalPolicy.DESTROY,
        )

    # --- buckets ------------------------------------------------------------------------------
    def _buckets(self, settings: EnvSettings) -> None:
        # Buckets are always retained: deleting a stack never deletes mail or backups (see teardown).
        self.access_logs_bucket = hardened_bucket(
            self, "AccessLogs",
            # Server access logging delivers only to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-access-logs", expiration=Duration.days(90),
                noncurrent_version_expiration=Duration.days(7))],
        )
        NagSuppressions.add_resource_suppressions(self.access_logs_bucket, [NagPackSuppression(
            id="AwsSolutions-S1",
            reason="This is the access-log bucket; logging it into itself would loop.")])

        def bucket(construct_id: str, prefix: str, rules: list[s3.LifecycleRule]) -> s3.Bucket:
            return hardened_bucket(
                self, construct_id,
                bucket_name=f"{prefix}-{self.account}-{self.region}",
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                server_access_logs_bucket=self.access_logs_bucket,
                server_access_logs_prefix=f"{prefix}/",
                lifecycle_rules=rules,
            )

        self.large_mail_bucket = bucket("LargeMail", constants.LARGE_MAIL_BUCKET_PREFIX, [
            s3.LifecycleRule(id="expire-large-mail", expiration=Duration.days(LARGE_MAIL_EXPIRY_DAYS),
                             noncurrent_version_expiration=Duration.days(7),
                             abort_incomplete_multipart_upload_after=Duration.days(1)),
        ])
        self.backup_bucket = bucket("Backups", constants.BACKUP_BUCKET_PREFIX, [
            s3.LifecycleRule(
                id="tier-and-expire-backups",
                transitions=[s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                           transition_after=Duration.days(30))],
                expiration=Duration.days(BACKUP_OBJECT_EXPIRY_DAYS),
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(1)),
        ])
