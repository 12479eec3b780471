"""Network: a VPC over two AZs, private endpoints for the AWS services the functions call, and
security groups that allow only the paths the system uses."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from stacks.constructs.lambda_function import log_retention
from stacks.settings import EnvSettings

POSTGRES_PORT = 5432
VALKEY_PORTS = (6379, 6380)  # ElastiCache Serverless: 6379 primary, 6380 read-from-replica
HTTPS = 443

INTERFACE_ENDPOINTS = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "AppConfig": ec2.InterfaceVpcEndpointAwsService.APPCONFIG,
    "AppConfigData": ec2.InterfaceVpcEndpointAwsService.APPCONFIGDATA,  # what the agent reads
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
}


@dataclass
class SecurityGroups:
    functions: ec2.SecurityGroup
    endpoints: ec2.SecurityGroup
    operator: ec2.SecurityGroup


class NetworkStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        flow_logs = logs.LogGroup(
            self, "FlowLogs",
            retention=log_retention(settings.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if settings.removal_retain else RemovalPolicy.DESTROY,
        )
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            # Named, not looked up: synth stays offline.
            availability_zones=[f"{self.region}{suffix}" for suffix in "abc"[:settings.max_azs]],
            nat_gateways=settings.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                # Functions: egress through NAT for Nango and the threat feeds.
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                        cidr_mask=20),
                # Database and cache: no route out at all.
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                        cidr_mask=24),
            ],
            restrict_default_security_group=True,
            flow_logs={"All": ec2.FlowLogOptions(
                traffic_type=ec2.FlowLogTrafficType.ALL,
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            )},
        )

        self.security_groups = self._security_groups()

        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name, service=service, private_dns_enabled=True, open=False,
                security_groups=[self.security_groups.endpoints],
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            )

        CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        CfnOutput(self, "OperatorSecurityGroupId", value=self.security_groups.operator.security_group_id,
                  description="Security group for the operators' CloudShell VPC environment")
        CfnOutput(self, "AppSubnetIds", value=",".join(
            self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids))

        NagSuppressions.add_resource_suppressions_by_path(
            self, f"/{self.stack_name}/Custom::VpcRestrictDefaultSGCustomResourceProvider", [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="CDK's provider that strips the default security group's rules uses "
                           "AWSLambdaBasicExecutionRole for its logs; it has no other permissions.",
                    applies_to=[("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                "AWSLambdaBasicExecutionRole")],
                ),
            ], apply_to_children=True)

    def _security_groups(self) -> SecurityGroups:
        def group(name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(self, name, vpc=self.vpc, description=description,
                                     allow_all_outbound=False)

        sg = SecurityGroups(
            functions=group("FunctionsSg", "Swordfish Lambda functions"),
            endpoints=group("EndpointsSg", "Interface VPC endpoints"),
            operator=group("OperatorSg", "Operator CloudShell VPC environment: migrations, tenants"),
        )
        https = ec2.Port.tcp(HTTPS)
        # HTTPS to AWS endpoints, Nango and the threat feeds: their addresses are not fixed, so
        # 0.0.0.0/0 on 443 only. The data tier's groups (DataStack) add the PostgreSQL and Valkey paths.
        sg.functions.add_egress_rule(ec2.Peer.any_ipv4(), https, "HTTPS: AWS endpoints, Nango, feeds")
        sg.functions.connections.allow_to(sg.endpoints, https, "AWS APIs through endpoints")
        sg.operator.add_egress_rule(ec2.Peer.any_ipv4(), https, "HTTPS: AWS APIs, package index")
        sg.operator.connections.allow_to(sg.endpoints, https, "AWS APIs through endpoints")
        return sg
