"""Who a request to a tenant route is, for API Gateway's Lambda authorizer (on AWS only).

The key is read and verified by exactly the code the API itself uses (``api.auth.presented_api_key``
and ``store.tenants.authenticate_api_key``, through the API's store), so the authorizer can never
accept a key the API refuses or the reverse. What it adds is the tenant's usage-plan key: API
Gateway then throttles and caps each tenant by its usage plan (the REST API's key source is
AUTHORIZER), so one tenant cannot starve the others. The API still re-verifies the key on every
request and checks the tenant in the path; the authorizer stays path-agnostic because API Gateway
caches its answer per Authorization header (constants.AUTHORIZER_CACHE_SECONDS) across every route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from swordfish.api.auth import presented_api_key
from swordfish.monitoring.observability import logger


class UsageKeyStore(Protocol):
    """``store.pipeline_store.PostgresApiStore``: raises ``DatabaseUnavailable`` when PostgreSQL is down."""

    def usage_key_for(self, presented_key: str) -> tuple[str, str, str | None] | None: ...


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    key_id: str
    usage_key: str

    @property
    def principal(self) -> str:
        return f"api-key:{self.key_id}"  # the key's id, never its secret


def identify(store: UsageKeyStore, headers: Mapping[str, str] | None) -> Caller | None:
    """The verified caller and its tenant's usage-plan key, or None (deny): no key, an unknown,
    revoked or expired key, or a tenant without a usage-plan key yet (`swordfish tenants
    sync-usage-keys` creates the missing ones)."""
    presented = presented_api_key(headers)
    if not presented:
        return None
    found = store.usage_key_for(presented)
    if found is None:
        return None
    tenant_id, key_id, usage_key = found
    if not usage_key:
        logger.error("tenant has no API Gateway usage-plan key: its requests are refused until "
                     "`swordfish tenants sync-usage-keys` creates it", extra={"tenant_id": tenant_id})
        return None
    return Caller(tenant_id=tenant_id, key_id=key_id, usage_key=usage_key)
