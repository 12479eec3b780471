"""The API-key pepper: the server-side secret every stored key digest is an HMAC under.

Two small functions the key code calls; they read through ``swordfish.security.secrets`` (cached,
with versions, audited). New keys use the current pepper; a key is verified under the version
recorded with it: AWSCURRENT or AWSPREVIOUS, or an older version a rotation kept because live keys
still hold it (``rotation.py`` labels it ``KEPT-...``), and is re-hashed under the current pepper on
that successful use, so a kept pepper empties and is retired by the next rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from swordfish.config import get_settings

# Only for the embedded stack and tests when no pepper is configured; never accepted elsewhere.
LOCAL_DEV_PEPPER = "swordfish-local-development-pepper-not-a-secret"


@dataclass(frozen=True)
class Pepper:
    version: str
    value: bytes


class PepperUnavailable(RuntimeError):
    pass


def api_key_peppers() -> list[Pepper]:
    """The current pepper first, then the previous one while a rotation overlaps. Each carries its
    Secrets Manager ``VersionId``, recorded with every key hashed under it, so a key keeps verifying
    after a rotation moves the stages (as long as its version is AWSCURRENT or AWSPREVIOUS)."""
    settings = get_settings()
    if settings.api_key_pepper:
        return [Pepper("env", settings.api_key_pepper.encode())]
    if settings.environment == "local" and not settings.aws_endpoint_url:
        return [Pepper("local", LOCAL_DEV_PEPPER.encode())]
    from swordfish.security.secrets import SecretError, process_secret_reader
    from swordfish.security.secrets import api_key_peppers as read_peppers

    try:
        return [Pepper(version, value)
                for version, value in read_peppers(process_secret_reader(), settings.api_key_pepper_secret_name)]
    except SecretError as exc:
        if settings.environment == "local":  # the embedded stack or a test without the pepper secret
            return [Pepper("local", LOCAL_DEV_PEPPER.encode())]
        raise PepperUnavailable(f"cannot read {settings.api_key_pepper_secret_name}: {exc}") from None


def api_key_pepper_version(version_id: str) -> Pepper | None:
    """One exact pepper version (a kept one), or None when it cannot be read (deleted, no secret)."""
    settings = get_settings()
    if settings.api_key_pepper or (settings.environment == "local" and not settings.aws_endpoint_url):
        return None
    from swordfish.security.secrets import SecretError, pepper_bytes, process_secret_reader

    try:
        version = process_secret_reader().get_version(settings.api_key_pepper_secret_name, version_id)
        return Pepper(version.version_id, pepper_bytes(version))
    except SecretError:
        return None
