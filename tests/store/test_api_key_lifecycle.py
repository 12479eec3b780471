"""API keys: HMAC under the pepper, expiry, revocation, rotation with an overlap, old SHA-256 rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from swordfish.store.database import proxy_connect, set_tenant
from swordfish.store.tenants import (
    authenticate_api_key,
    create_api_key,
    create_tenant,
    list_api_keys,
    revoke_api_key,
    rotate_api_key,
)


@pytest.fixture()
def owner(database):
    database.reset()
    with proxy_connect(database.owner_url) as conn:
        with conn.transaction():
            create_tenant(conn, "tenant-a", "A", {})
        yield conn


def _auth(conn, key: str) -> str | None:
    with conn.transaction():
        return authenticate_api_key(conn, key)


def test_keys_are_stored_as_an_hmac_under_the_pepper_not_a_plain_hash(owner, settings_env):
    settings_env(api_key_pepper="pepper-one")
    with owner.transaction():
        key = create_api_key(owner, "tenant-a", "ci")
    secret = key.plaintext.split(".")[3]
    with owner.transaction():
        set_tenant(owner, "tenant-a")
        stored, sha, version = owner.execute("SELECT key_hmac, key_sha256, pepper_version FROM api_keys").fetchone()
    assert sha is None and bytes(stored) != hashlib.sha256(secret.encode()).digest() and version == "env"
    assert _auth(owner, key.plaintext) == "tenant-a"
    settings_env(api_key_pepper="another-pepper")  # a table copied to a system without the pepper is useless
    assert _auth(owner, key.plaintext) is None


def test_expired_and_revoked_keys_are_refused(owner):
    with owner.transaction():
        expired = create_api_key(owner, "tenant-a", expires_at=datetime.now(UTC) - timedelta(seconds=1))
        live = create_api_key(owner, "tenant-a", expires_at=datetime.now(UTC) + timedelta(days=1))
    assert _auth(owner, expired.plaintext) is None
    assert _auth(owner, live.plaintext) == "tenant-a"
    with owner.transaction():
        assert revoke_api_key(owner, "tenant-a", live.key_id)
        assert not revoke_api_key(owner, "tenant-a", live.key_id)
    assert _auth(owner, live.plaintext) is None
    with owner.transaction():
        states = {k["key_id"]: k["active"] for k in list_api_keys(owner, "tenant-a")}
    assert states == {expired.key_id: False, live.key_id: False}


def test_rotation_keeps_the_old_key_for_the_overlap_only(owner):
    with owner.transaction():
        old = create_api_key(owner, "tenant-a", "billing")
        new = rotate_api_key(owner, "tenant-a", old.key_id, overlap=timedelta(hours=2))
    assert new is not None and new.key_id != old.key_id
    assert _auth(owner, old.plaintext) == "tenant-a" and _auth(owner, new.plaintext) == "tenant-a"
    with owner.transaction():
        keys = {k["key_id"]: k for k in list_api_keys(owner, "tenant-a")}
    assert keys[new.key_id]["replaces_key_id"] == old.key_id and keys[new.key_id]["label"] == "billing"
    remaining = keys[old.key_id]["expires_at"] - datetime.now(UTC)
    assert timedelta(hours=1) < remaining <= timedelta(hours=2)
    with owner.transaction():  # the overlap ends (moved into the past rather than waiting two hours)
        set_tenant(owner, "tenant-a")
        owner.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = %s", (old.key_id,))
    assert _auth(owner, old.plaintext) is None and _auth(owner, new.plaintext) == "tenant-a"
    with owner.transaction():
        assert rotate_api_key(owner, "tenant-a", old.key_id) is None


def test_keys_made_before_the_pepper_still_work_until_rotated(owner):
    with owner.transaction():
        set_tenant(owner, "tenant-a")
        owner.execute("INSERT INTO api_keys (key_id, tenant_id, key_sha256) VALUES ('0123456789ab', 'tenant-a', %s)",
                      (hashlib.sha256(b"legacy-secret").digest(),))
    assert _auth(owner, "sfk.tenant-a.0123456789ab.legacy-secret") == "tenant-a"
    assert _auth(owner, "sfk.tenant-a.0123456789ab.wrong-secret") is None
