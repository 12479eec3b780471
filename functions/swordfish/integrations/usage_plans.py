"""Each tenant's API Gateway API key in the stack's usage plan (AWS only; boto3 ``apigateway``).

The key is a usage identifier, not a credential: tenants authenticate with their own ``sfk.`` keys,
and our authorizer hands API Gateway this key (``usageIdentifierKey``) once it verified theirs, so
the usage plan's throttle and daily quota apply per tenant. ``ensure_usage_key`` creates the key, or
finds it by name when an earlier run got that far, and adds it to the plan: running it twice is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from swordfish import constants


@dataclass(frozen=True)
class UsageKey:
    key_id: str
    value: str = field(repr=False)
    created: bool  # False: it existed already


def usage_key_name(tenant_id: str) -> str:
    return constants.USAGE_KEY_NAME_PREFIX + tenant_id


def find_usage_key(client, tenant_id: str) -> UsageKey | None:
    name = usage_key_name(tenant_id)
    # nameQuery is a prefix match ("…-acme" also finds "…-acme-corp"): keep the exact name only.
    items = client.get_api_keys(nameQuery=name, includeValues=True, limit=500).get("items", [])
    exact = [item for item in items if item.get("name") == name]
    return UsageKey(exact[0]["id"], exact[0]["value"], created=False) if exact else None


def ensure_usage_key(client, usage_plan_id: str, tenant_id: str) -> UsageKey:
    """The tenant's key (created when missing), a member of the usage plan."""
    key = find_usage_key(client, tenant_id)
    if key is None:
        created = client.create_api_key(
            name=usage_key_name(tenant_id), enabled=True,
            description=f"Swordfish usage plan key of tenant {tenant_id} (returned by the authorizer, "
                        "never given to the tenant)",
            tags={"swordfish:tenant": tenant_id})  # API Gateway generates the value
        key = UsageKey(created["id"], created["value"], created=True)
    try:
        client.get_usage_plan_key(usagePlanId=usage_plan_id, keyId=key.key_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotFoundException":
            raise
        try:
            client.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key.key_id, keyType="API_KEY")
        except ClientError as conflict:  # added by a concurrent run since we looked
            if conflict.response.get("Error", {}).get("Code") != "ConflictException":
                raise
    return key


def usage_key_value(client, key_id: str) -> str:
    """The value of one API Gateway key, by id: the key every unverified caller shares (the stack
    creates it and lets the authorizer read exactly that key, ``apigateway:GET`` on its ARN)."""
    return client.get_api_key(apiKey=key_id, includeValue=True)["value"]
