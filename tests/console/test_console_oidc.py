"""Sign-in with the MSP's identity provider against a real OpenID provider on 127.0.0.1
(oidc-provider-mock, started and stopped here): the code flow with PKCE and a nonce, the ID token
verified, users created and updated from their groups, refusals audited. Password sign-in stays."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from oidc_provider_mock import User, run_server_in_thread
from swordfish.console.oidc import BINDING_COOKIE, OidcClient, OidcConfig

from tests.console.helpers import get

GROUPS = {"sf-admins": {"role": "msp_admin"},
          "sf-globex": {"role": "analyst", "tenants": ["globex"]},
          "sf-acme": {"role": "auditor", "tenants": ["acme-corp", "no-such-tenant"]}}
USERS = [User(sub="ann", claims={"email": "Ann@MSP.example", "email_verified": True, "name": "Ann",
                                 "groups": ["sf-globex", "sf-acme", "other"], "amr": ["pwd", "mfa"]}),
         User(sub="cat", claims={"email": "cat@msp.example", "groups": ["sf-admins"], "amr": ["pwd"]}),
         User(sub="bob", claims={"email": "bob@msp.example", "groups": ["marketing"]}),
         User(sub="eve", claims={"email": "eve@msp.example", "email_verified": False, "groups": ["sf-admins"]})]


@pytest.fixture()
def provider(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the local provider speaks plain http
    with run_server_in_thread(port=0, user_claims=USERS, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture()
def sso(console, provider):
    console.deps.oidc = OidcClient(OidcConfig(issuer=provider, client_id="swordfish-console",
                                              client_secret="console-client-secret", provider_name="Entra ID",
                                              group_map=GROUPS), console.deps.redis, clock=time.time)
    return console


def sign_in(client, sub: str, next_page: str = "/console/verdicts"):
    """The browser's trip: our redirect out, the provider's form, its redirect back to us."""
    out = get(client, f"/console/login/oidc?next={next_page}")
    assert out.status_code == 302, out.get_data(as_text=True)
    at_provider = requests.post(out.headers["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/console/login/oidc/callback"
    return get(client, f"{back.path}?{back.query}"), back


def audit(console, action):
    with psycopg.connect(console.superuser_url) as conn:
        return conn.execute("SELECT actor, outcome, after, before FROM console_audit WHERE action = %s "
                            "ORDER BY audit_id", (action,)).fetchall()


def test_a_provider_user_in_a_mapped_group_is_created_and_signed_in(sso):
    client = sso.client()
    out = get(client, "/console/login")
    assert "Sign in with Entra ID" in out.get_data(as_text=True)
    response, _ = sign_in(client, "ann", "/console/tenants/globex/verdicts")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert 'url=/console/tenants/globex/verdicts' in response.get_data(as_text=True)
    assert get(client, "/console/tenants/globex/verdicts").status_code == 200
    assert get(client, "/console/users").status_code == 403  # an analyst, not an admin
    [(actor, outcome, after, _)] = audit(sso, "user.sso_provisioned")
    # The highest role of the mapped groups, the union of their tenants (unknown ones dropped).
    assert actor == "ann@msp.example" and after["role"] == "analyst" and after["tenants"] == ["acme-corp", "globex"]
    assert audit(sso, "login.ok")[-1][2]["method"] == "oidc"


def test_groups_at_the_provider_update_the_console_user_at_sign_in(sso):
    sso.add_user("ann@msp.example", "auditor", [], totp=False)
    response, _ = sign_in(sso.client(), "ann")
    assert response.status_code == 200
    [(_, _, after, before)] = audit(sso, "user.sso_updated")
    assert before == {"role": "auditor", "tenants": []} and after["role"] == "analyst"


def test_a_user_without_a_mapped_group_is_refused_and_audited(sso):
    response, _ = sign_in(sso.client(), "bob")
    assert response.status_code == 403 and "none of your groups" in response.get_data(as_text=True)
    assert audit(sso, "login.failed")[-1][:2] == ("bob@msp.example", "refused")
    assert audit(sso, "user.sso_provisioned") == []


def test_an_unverified_email_is_refused(sso):
    response, _ = sign_in(sso.client(), "eve")
    assert response.status_code == 403 and "not verified" in response.get_data(as_text=True)


def test_a_callback_used_twice_or_in_another_browser_signs_nobody_in(sso):
    client = sso.client()
    response, back = sign_in(client, "ann")
    assert response.status_code == 200
    again = get(sso.client(), f"{back.path}?{back.query}")  # another browser, the same URL
    assert again.status_code == 400 and "expired or was already used" in again.get_data(as_text=True)
    # A fresh flow whose callback arrives without the browser's binding cookie.
    other = sso.client()
    out = get(other, "/console/login/oidc")
    stolen = urlsplit(requests.post(out.headers["Location"], data={"sub": "ann"}, allow_redirects=False,
                                    timeout=10).headers["Location"])
    victim = sso.client()
    refused = get(victim, f"{stolen.path}?{stolen.query}")
    assert refused.status_code == 400 and "another browser" in refused.get_data(as_text=True)
    assert get(victim, "/console/").status_code == 302  # not signed in


def test_a_forged_or_missing_state_is_refused(sso):
    client = sso.client()
    client.set_cookie(BINDING_COOKIE, "x", domain="localhost")
    for query in ("state=nope&code=abc", "code=abc", "state=" + "x" * 300):
        response = get(client, f"/console/login/oidc/callback?{query}")
        assert response.status_code == 400


def test_the_authorization_request_uses_pkce_and_a_nonce(sso):
    out = get(sso.client(), "/console/login/oidc")
    query = parse_qs(urlsplit(out.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["nonce"] and query["state"] and query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == ["https://localhost/console/login/oidc/callback"]
    cookie = out.headers.get_all("Set-Cookie")
    assert any(c.startswith(f"{BINDING_COOKIE}=") and "SameSite=Lax" in c and "Secure" in c and "HttpOnly" in c
               for c in cookie)


def test_without_the_providers_second_factor_an_admin_goes_on_to_ours(sso):
    client = sso.client()
    response, _ = sign_in(client, "cat")
    assert response.status_code == 200 and "url=/console/login/totp/enrol" in response.get_data(as_text=True)
    assert get(client, "/console/").status_code == 302  # half signed in: no page yet
    assert get(client, "/console/login/totp/enrol").status_code == 200  # our TOTP step accepts the session
    assert audit(sso, "login.oidc_needs_second_factor")[-1][0] == "cat@msp.example"
    assert audit(sso, "login.ok") == []


def test_a_provider_trusted_for_mfa_is_the_second_factor(sso):
    from dataclasses import replace

    sso.deps.oidc.config = replace(sso.deps.oidc.config, trust_provider_mfa=True)
    client = sso.client()
    response, _ = sign_in(client, "cat", "/console/users")
    assert "url=/console/users" in response.get_data(as_text=True)
    assert get(client, "/console/users").status_code == 200  # an MSP admin, fully signed in
    assert audit(sso, "login.ok")[-1][2]["second_factor"] is True


def test_without_a_provider_the_route_is_absent_and_passwords_still_work(console):
    assert get(console.client(), "/console/login/oidc").status_code == 404
    console.add_user("pat@msp.example", "auditor", ["globex"], totp=False)
    client = console.client()
    assert console.login(client, "pat@msp.example").status_code == 302
    assert get(client, "/console/").status_code == 200


def test_id_tokens_that_do_not_verify_are_refused():
    """Signed by another key, for another audience, with another nonce, expired, or unsigned."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet, RSAKey
    from swordfish.console.oidc import OidcFailed

    ours, theirs = RSAKey.generate_key(2048, parameters={"kid": "k1"}), RSAKey.generate_key(2048, parameters={"kid": "k1"})
    class NoNetwork:  # the keys are given; a re-read (rotated keys) finds the provider unreachable
        def get(self, *args, **kwargs):
            raise requests.ConnectionError("no network in this test")

    client = OidcClient(OidcConfig(issuer="https://idp.example", client_id="console", client_secret="x"), None,
                        clock=lambda: 1_900_000_000, http=NoNetwork())
    client._metadata = {"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks"}
    client._jwks = KeySet([ours]).as_dict()
    good = {"iss": "https://idp.example", "aud": "console", "sub": "ann", "nonce": "n-1",
            "iat": 1_900_000_000, "exp": 1_900_000_600, "email": "ann@msp.example"}

    def token(claims, key=ours, alg="RS256"):
        return jose_jwt.encode({"alg": alg, "kid": "k1"}, claims, key)

    assert client._verify(token(good), "n-1", None)["email"] == "ann@msp.example"
    for bad, nonce in ((token(good, theirs), "n-1"), (token(good | {"aud": "other"}), "n-1"),
                       (token(good), "n-2"), (token(good | {"exp": 1_899_999_000}), "n-1"),
                       (token(good | {"iss": "https://evil.example"}), "n-1")):
        client._jwks = KeySet([ours]).as_dict()
        with pytest.raises(OidcFailed):
            client._verify(bad, nonce, None)
    unsigned = "eyJhbGciOiJub25lIn0." + token(good).split(".")[1] + "."
    with pytest.raises(OidcFailed):
        client._verify(unsigned, "n-1", None)
