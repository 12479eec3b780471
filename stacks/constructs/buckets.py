"""The one S3 bucket baseline every Swordfish bucket starts from."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def hardened_bucket(scope: Construct, construct_id: str, **props) -> s3.Bucket:
    """No public access, TLS 1.2+ only, versioned, owner-enforced, kept when the stack is deleted
    (mail, backups and audit trails outlive a stack). ``props`` add encryption, logging, lifecycle."""
    baseline = dict(block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, minimum_tls_version=1.2,
                    versioned=True, object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                    removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
    return s3.Bucket(scope, construct_id, **(baseline | props))
