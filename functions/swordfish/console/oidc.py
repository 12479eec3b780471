"""Sign-in with the MSP's identity provider (OpenID Connect: Microsoft Entra ID, Google, any
provider with discovery), through Authlib: the authorization-code flow with PKCE (S256), a nonce,
and the ID token's signature (the provider's JWKS), issuer, audience, expiry and nonce checked.

The console's session cookie is SameSite=Strict, so the browser does not send it on the provider's
redirect back; the flow therefore keeps its own state in Redis under the ``state`` value (one use,
ten minutes), bound to the browser by a random value in a short-lived SameSite=Lax cookie (only its
hash is stored), so a callback URL sent to someone else signs nobody in.

Who may sign in: ``group_map`` maps the provider's groups (the ``groups_claim`` of the ID token, e.g.
Entra ID's ``groups`` or ``roles``) to a console role and tenants; a user's groups give the highest
role among them and the union of their tenants, and the console user is created or updated to match
at each sign-in. With an empty map only existing console users may sign in, with their stored role.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ROLE_RANK = {"auditor": 1, "analyst": 2, "msp_admin": 3}
STATE_TTL_SECONDS = 600
BINDING_COOKIE = "__Host-swordfish-oidc"
_KEY = "swordfish:console:oidc:"


class OidcFailed(Exception):
    """The sign-in did not complete; the message is safe to show and to audit."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    provider_name: str = "your identity provider"
    groups_claim: str = "groups"
    group_map: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    scopes: str = "openid email profile"
    timeout: float = 5.0
    # The provider enforces MFA on every sign-in (Entra ID Conditional Access, Google 2-Step
    # enforcement): its sign-in is the second factor. Else only an ID token whose ``amr`` names one.
    trust_provider_mfa: bool = False


# RFC 8176 authentication methods that are more than a password.
SECOND_FACTOR_AMR = frozenset({"mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm", "pin",
                               "sms", "tel"})


def provider_second_factor(claims: Mapping[str, Any], config: OidcConfig) -> bool:
    amr = claims.get("amr") or []
    return config.trust_provider_mfa or bool(SECOND_FACTOR_AMR & {str(m) for m in amr if isinstance(amr, list)})


def map_groups(claims: Mapping[str, Any], config: OidcConfig) -> tuple[str | None, list[str]]:
    """(role, tenants) the user's groups give; (None, []) when no group of theirs is mapped."""
    groups = claims.get(config.groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    role, tenants = None, set()
    for group in groups if isinstance(groups, list) else []:
        mapped = config.group_map.get(str(group))
        if not mapped or mapped.get("role") not in ROLE_RANK:
            continue
        if role is None or ROLE_RANK[mapped["role"]] > ROLE_RANK[role]:
            role = mapped["role"]
        tenants.update(str(t) for t in mapped.get("tenants") or [])
    return role, sorted(tenants)


class OidcClient:
    def __init__(self, config: OidcConfig, redis_client, *, clock: Callable[[], float] = time.time,
                 http: requests.Session | None = None):
        self.config, self.redis, self.clock = config, redis_client, clock
        self.http = http or requests.Session()
        self._metadata: dict | None = None
        self._jwks: dict | None = None

    def metadata(self) -> dict:
        if self._metadata is None:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                response = self.http.get(url, timeout=self.config.timeout)
                response.raise_for_status()
                metadata = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise OidcFailed(f"{self.config.provider_name} cannot be reached; try again shortly") from exc
            if metadata.get("issuer", "").rstrip("/") != self.config.issuer.rstrip("/"):
                raise OidcFailed("the identity provider's discovery document names another issuer")
            self._metadata = metadata
        return self._metadata

    def _jwk_set(self, refresh: bool = False):
        if self._jwks is None or refresh:
            try:
                response = self.http.get(self.metadata()["jwks_uri"], timeout=self.config.timeout)
                response.raise_for_status()
                self._jwks = response.json()
            except (requests.RequestException, ValueError, KeyError) as exc:
                raise OidcFailed(f"{self.config.provider_name}'s signing keys cannot be read") from exc
        return KeySet.import_key_set(self._jwks)

    def _session(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.config.client_id, self.config.client_secret, scope=self.config.scopes,
                             redirect_uri=redirect_uri, code_challenge_method="S256")

    def begin(self, redirect_uri: str, next_page: str) -> tuple[str, str]:
        """(the provider's authorization URL, the binding value for the Lax cookie)."""
        state, nonce, verifier, binding = (secrets.token_urlsafe(32) for _ in range(4))
        verifier += secrets.token_urlsafe(16)  # 43+ characters (RFC 7636)
        url, _ = self._session(redirect_uri).create_authorization_url(
            self.metadata()["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier)
        self.redis.set(_KEY + state, json.dumps({
            "nonce": nonce, "verifier": verifier, "binding": hashlib.sha256(binding.encode()).hexdigest(),
            "next": next_page, "redirect_uri": redirect_uri}), ex=STATE_TTL_SECONDS)
        return url, binding

    def finish(self, args: Mapping[str, str], binding: str | None) -> tuple[dict, str]:
        """The verified ID token's claims and the page to go to next; raises ``OidcFailed``."""
        state = args.get("state") or ""
        if not state or len(state) > 200:
            raise OidcFailed("the sign-in response has no state: start again")
        stored = self.redis.getdel(_KEY + state)  # one use, whatever happens next
        if not stored:
            raise OidcFailed("this sign-in expired or was already used: start again")
        data = json.loads(stored)
        if not binding or not hmac.compare_digest(hashlib.sha256(binding.encode()).hexdigest(), data["binding"]):
            raise OidcFailed("this sign-in was started in another browser: start again")
        if args.get("error"):
            raise OidcFailed(f"{self.config.provider_name} refused: {str(args.get('error'))[:100]}")
        code = args.get("code") or ""
        if not code or len(code) > 4096:
            raise OidcFailed("the sign-in response has no code: start again")
        try:
            token = self._session(data["redirect_uri"]).fetch_token(
                self.metadata()["token_endpoint"], code=code, code_verifier=data["verifier"],
                timeout=self.config.timeout)
        except Exception as exc:  # the provider's refusal or an outage: not signed in, say so
            raise OidcFailed(f"{self.config.provider_name} did not confirm the sign-in") from exc
        id_token = token.get("id_token")
        if not id_token:
            raise OidcFailed(f"{self.config.provider_name} sent no ID token")
        return self._verify(id_token, data["nonce"], token.get("access_token")), data["next"]

    def _verify(self, id_token: str, nonce: str, access_token: str | None) -> dict:
        """The ID token's signature (the provider's keys; RS256 or ES256, never "none" or HMAC),
        issuer, audience, expiry, issue time and our nonce (joserfc, Authlib's JOSE library)."""
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()), leeway=60, iss={"essential": True, "value": self.metadata()["issuer"]},
            aud={"essential": True, "value": self.config.client_id}, sub={"essential": True},
            exp={"essential": True}, iat={"essential": True}, nonce={"essential": True, "value": nonce})
        for refresh in (False, True):  # an unknown key id: the provider rotated its keys, read them again
            try:
                token = jwt.decode(id_token, self._jwk_set(refresh), algorithms=["RS256", "ES256", "PS256"])
                registry.validate(token.claims)
                return dict(token.claims)
            except (JoseError, ValueError) as exc:
                if refresh or "key" not in str(exc).lower():
                    raise OidcFailed(f"the ID token did not verify: {type(exc).__name__}") from exc
        raise OidcFailed("the ID token did not verify")
