"""The one way a Swordfish Lambda function is built: Python 3.12 on arm64, X-Ray active, in the VPC,
Powertools settings, its own log group and its own least-privilege role.

The code asset is `functions/` as it is. Every run-time dependency, Powertools and boto3 included,
goes into our own layer, installed from `requirements.lock` (exact versions with hashes, the same
file `make install` installs for the tests), so Lambda runs exactly what the tests ran. No public
Powertools layer: its version numbers lag the PyPI releases and the code needs the circuit-breaker
utility of the release we lock. The layer is built without Docker: pip installs manylinux aarch64
wheels for Python 3.12.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from swordfish import constants

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
LOCK_FILE = REPO_ROOT / "requirements.lock"  # `make lock` writes it from requirements.txt

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
# The python3.12 runtime is Amazon Linux 2023 (glibc 2.34): manylinux2014 (glibc 2.17) wheels and the
# newer manylinux_2_28 / _2_34 ones all load there (psycopg-binary 3.3 ships only manylinux_2_28).
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
PIP_PYTHON_VERSION = "3.12"
PIP_TIMEOUT_SECONDS = 900
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024  # function code plus all its layers
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked_pins(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """Normalised distribution name -> exact version, from the lock file (hash lines skipped)."""
    pins = {}
    for line in lock_file.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    if not pins:
        raise ValueError(f"{lock_file} pins nothing: run `make lock`")
    return pins


def pip_install_command(target: Path, lock_file: Path = LOCK_FILE) -> list[str]:
    """Exactly the locked wheels (`--no-deps`: the lock is complete; `--require-hashes`: the bytes
    we tested with), for Lambda's platform rather than this machine's."""
    platforms = [arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--no-deps", "--require-hashes", *platforms, "--implementation", "cp",
            "--only-binary=:all:", "--python-version", PIP_PYTHON_VERSION,
            "--target", str(target), "-r", str(lock_file)]


@jsii.implements(ILocalBundling)
class PipWheelsBundling:
    """Local bundling (no Docker): pip installs the locked manylinux aarch64 wheels for Python 3.12.

    With `install=False` (context `bundle_dependencies=false`, used by the tests) it writes only a
    marker file listing the pins, so synth needs no package index; such an assembly must not be deployed.
    """

    def __init__(self, lock_file: Path, install: bool) -> None:
        self.lock_file = lock_file
        self.install = install

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        if not self.install:
            pins = locked_pins(self.lock_file)
            (target / "DEPENDENCIES_NOT_BUNDLED.txt").write_text(
                "Synthesised with -c bundle_dependencies=false: do not deploy this layer.\n"
                + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
            return True
        try:
            subprocess.run(pip_install_command(target, self.lock_file), check=True, timeout=PIP_TIMEOUT_SECONDS,
                           capture_output=True, text=True)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"pip could not install {self.lock_file.name} as {'/'.join(PIP_PLATFORMS)} wheels for Python "
                f"{PIP_PYTHON_VERSION}:\n{exc.stderr}\nFix requirements.txt and run `make lock`, or synthesise "
                "with -c bundle_dependencies=false (not deployable).") from exc
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"pip install of the Lambda dependencies took over {PIP_TIMEOUT_SECONDS} s; "
                               "is the package index reachable?") from exc
        # Byte-code caches are rebuilt on the target; dropping them keeps the layer small.
        for cache in target.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        return True


def dependencies_layer(scope: Construct, construct_id: str, *, install: bool,
                       lock_file: Path = LOCK_FILE) -> lambda_.LayerVersion:
    # The hash is known before bundling, so an unchanged lock file reuses the bundle already in
    # cdk.out instead of installing again; the marker-only variant gets a different hash.
    digest = hashlib.sha256("\n".join(
        [lock_file.read_text(), *PIP_PLATFORMS, PIP_PYTHON_VERSION, "installed" if install else "marker"]).encode()
    ).hexdigest()
    code = lambda_.Code.from_asset(
        str(lock_file.parent),
        asset_hash=digest,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            # Never pulled: the local bundling always succeeds or raises.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            local=PipWheelsBundling(lock_file, install),
        ),
    )
    pins = locked_pins(lock_file)
    return lambda_.LayerVersion(
        scope, construct_id,
        code=code,
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=(f"Swordfish run-time dependencies from requirements.lock (Powertools "
                     f"{pins.get('aws-lambda-powertools', '?')}, boto3 {pins.get('boto3', '?')}; aarch64 wheels)"),
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,  # old versions stay usable during rollbacks
    )


def appconfig_agent_layer(scope: Construct, construct_id: str, arn: str | None) -> lambda_.ILayerVersion:
    if arn is None:
        arn = appconfig.Application.get_lambda_layer_version_arn(
            Stack.of(scope).region, appconfig.Platform.ARM_64)
    return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, arn)


def functions_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/*.egg-info"],
    )


class SwordfishFunction(Construct):
    """A Lambda function with its own role, log group and the shared runtime settings."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        handler: str,
        description: str,
        timeout_seconds: int,
        memory_mb: int,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        layers: list[lambda_.ILayerVersion],
        environment: dict[str, str],
        log_retention_days: int,
        log_key: kms.IKey,
        reserved_concurrency: int | None = None,
        retain_logs: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = function_name  # the physical name, known at synth (alarm ids, dashboard labels)
        self.log_group = logs.LogGroup(
            self, "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=log_retention(log_retention_days),
            encryption_key=log_key,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain_logs else RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {function_name} (least privilege, no managed policies)",
        )
        self.role.add_to_policy(iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[self.log_group.log_group_arn],
        ))
        # Lambda creates and deletes the function's network interfaces itself; EC2 has no resource
        # ARNs for interfaces that do not exist yet and Describe* takes no resource, so "*" is required.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="ManageVpcInterfaces",
            actions=["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                     "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
                     "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
            resources=["*"],
        ))
        env = {
            "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",  # events carry mail: never log them whole
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",  # responses can carry tenant data
            **environment,
        }
        self.function = lambda_.Function(
            self, "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=functions_code(),
            layers=layers,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[security_group],
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            reserved_concurrent_executions=reserved_concurrency,
            environment=env,
        )
        NagSuppressions.add_resource_suppressions(self.role, [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Only actions that take no resource ARN get '*': the EC2 interface actions Lambda "
                       "uses for VPC access, xray:PutTraceSegments/PutTelemetryRecords, and (API health) "
                       "cloudwatch:GetMetricStatistics.",
                applies_to=["Resource::*"],
            ),
        ], apply_to_children=True)
        NagSuppressions.add_resource_suppressions(self.function, [
            NagPackSuppression(
                id="AwsSolutions-L1",
                reason="The design pins Python 3.12 (the locked wheels in the dependencies layer are "
                       "built for it); upgrading is a deliberate change.",
            ),
        ])


_RETENTIONS = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """CloudWatch accepts only certain retention periods: the smallest allowed one >= days."""
    for allowed in sorted(_RETENTIONS):
        if allowed >= days:
            return _RETENTIONS[allowed]
    return logs.RetentionDays.TEN_YEARS


def release_id(explicit: str | None) -> str:
    """The git commit baked into the functions' environment, so an error maps to the code that ran."""
    if explicit:
        return explicit
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class FunctionKit(Construct):
    """What every function of one stack shares: layers, network placement, log key, base environment.

    Each stack that builds functions makes its own kit (layers are stack-local); the dependencies
    layer's asset hash is the same in every stack, so it is bundled and uploaded once.
    """

    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc,
                 security_group: ec2.ISecurityGroup, log_key: kms.IKey, log_retention_days: int,
                 retain_logs: bool, install_dependencies: bool,
                 appconfig_agent_layer_arn: str | None, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.vpc = vpc
        self.security_group = security_group
        self.log_key = log_key
        self.log_retention_days = log_retention_days
        self.retain_logs = retain_logs
        self.environment = environment
        # One layer with every dependency (Powertools and boto3 included): /opt/python comes before
        # the runtime's own boto3 on sys.path, so the locked versions are the ones imported.
        self.base_layers = [dependencies_layer(self, "Dependencies", install=install_dependencies)]
        self.agent_layer = appconfig_agent_layer(self, "AppConfigAgent", appconfig_agent_layer_arn)

    def function(self, scope: Construct, construct_id: str, *, function_name: str, handler: str,
                 description: str, timeout_seconds: int, memory_mb: int = 512,
                 reserved_concurrency: int | None = None, reads_flags: bool = True,
                 environment: dict[str, str] | None = None) -> SwordfishFunction:
        env = dict(self.environment)
        if reads_flags:
            env["AWS_APPCONFIG_EXTENSION_PREFETCH_LIST"] = (
                f"/applications/{constants.APPCONFIG_APPLICATION}/environments/"
                f"{constants.APPCONFIG_ENVIRONMENT}/configurations/{constants.APPCONFIG_FLAGS_PROFILE}")
            env["AWS_APPCONFIG_EXTENSION_HTTP_PORT"] = str(constants.APPCONFIG_AGENT_PORT)
        env.update(environment or {})
        return SwordfishFunction(
            scope, construct_id,
            function_name=function_name, handler=handler, description=description,
            timeout_seconds=timeout_seconds, memory_mb=memory_mb, vpc=self.vpc,
            security_group=self.security_group,
            layers=[*self.base_layers, *([self.agent_layer] if reads_flags else [])],
            environment=env, log_retention_days=self.log_retention_days, log_key=self.log_key,
            reserved_concurrency=reserved_concurrency, retain_logs=self.retain_logs,
        )
