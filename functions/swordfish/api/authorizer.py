"""Who a request to a tenant route is, for API Gateway's Lambda authorizer (on AWS only).

The key is read and verified by exactly the code the API itself uses (``api.auth.presented_api_key``
and ``store.tenants.authenticate_api_key``, through the API's store), so the authorizer can never
accept a key the API refuses or the reverse. What it adds is a usage-plan key: API Gateway then
throttles and caps each tenant by its usage plan (the REST API's key source is AUTHORIZER), so one
tenant cannot starve the others. The API still re-verifies the key on every request and checks the
tenant in the path; the authorizer stays path-agnostic because API Gateway caches its answer per
Authorization header (constants.AUTHORIZER_CACHE_SECONDS) across every route.

A key that does not verify (unknown, tampered, revoked, expired, or no bearer key at all) is not
denied: an authorizer can only answer 401 or 500, never 429, so a flood of wrong keys would get an
endless stream of 401s and never reach the API's failed-authentication limit. Such a caller is let
through *unverified*, metered under the one usage key all unverified callers share (the
UnverifiedCallers plan: a tiny throttle and daily quota, so API Gateway answers 429 for all of them
together); what gets past that reaches the API function, which answers 401 (its own verification)
and 429 per source address (``api.ratelimit``). The context says ``verified: false``; the API never
reads the context as identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from swordfish.api.auth import presented_api_key
from swordfish.monitoring.observability import logger
from swordfish.store.tenants import parse_api_key

UNVERIFIED_PRINCIPAL = "unverified"


class UsageKeyStore(Protocol):
    """``store.pipeline_store.PostgresApiStore``: raises ``DatabaseUnavailable`` when PostgreSQL is down."""

    def usage_key_for(self, presented_key: str) -> tuple[str, str, str | None] | None: ...


@dataclass(frozen=True)
class Caller:
    """Whom API Gateway lets through, and the usage-plan key it meters them by. ``key_id`` None: a
    caller whose key did not verify, metered with every other such caller."""

    usage_key: str
    tenant_id: str | None = None
    key_id: str | None = None

    @property
    def verified(self) -> bool:
        return self.key_id is not None

    @property
    def principal(self) -> str:
        return f"api-key:{self.key_id}" if self.verified else UNVERIFIED_PRINCIPAL  # never the key's secret

    @property
    def context(self) -> dict[str, str]:
        """For access logs and the integration; API Gateway passes context values as strings."""
        if not self.verified:
            return {"verified": "false"}
        return {"verified": "true", "tenant_id": str(self.tenant_id)}


def identify(store: UsageKeyStore, headers: Mapping[str, str] | None,
             unverified_usage_key: Callable[[], str]) -> Caller | None:
    """The verified caller with its tenant's usage-plan key; a caller whose key does not verify, with
    the shared ``unverified_usage_key()`` (looked up only then); or None (deny) for a tenant without
    a usage-plan key yet (`swordfish tenants sync-usage-keys` creates the missing ones) or when no
    shared key is configured. The store and the lookup raise on an outage: nothing is cached then."""
    presented = presented_api_key(headers)
    # A key that does not even parse fails the API's own first check (authenticate_api_key parses
    # before it queries): answered without the database, so a flood of junk costs no connection.
    found = store.usage_key_for(presented) if parse_api_key(presented) else None
    if found is None:
        shared = unverified_usage_key()
        if not shared:
            logger.error("no usage key for unverified callers (SWORDFISH_UNVERIFIED_USAGE_KEY_ID): "
                         "they are denied with 401 and never reach the API's failed-authentication limit")
            return None
        return Caller(usage_key=shared)
    tenant_id, key_id, usage_key = found
    if not usage_key:
        logger.error("tenant has no API Gateway usage-plan key: its requests are refused until "
                     "`swordfish tenants sync-usage-keys` creates it", extra={"tenant_id": tenant_id})
        return None
    return Caller(usage_key=usage_key, tenant_id=tenant_id, key_id=key_id)
