"""The console's TOTP secrets, encrypted at rest with ``cryptography``'s MultiFernet (AES-128-CBC +
HMAC-SHA256, authenticated: a tampered value fails to decrypt instead of yielding a wrong secret).

Key material comes from Secrets Manager through the one secret reader (``security.secrets``): the
secret ``swordfish/console-totp-keys`` holds one or more key strings of at least 32 characters,
separated by commas or whitespace, the newest first. Each string becomes a Fernet key through
HKDF-SHA256, so the CDK's generated password (and any long random string) is a valid key. Rotation:
put the new string first and keep the old ones (old ciphertexts still decrypt), then run
``swordfish console reencrypt-totp`` (every row moves to the newest key), then drop the old strings.

Stored values read ``fernet:<token>``; anything else is a secret from before encryption, accepted at
sign-in (and encrypted then) until ``reencrypt-totp`` has encrypted every such row.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from swordfish.config import get_settings

SEALED_PREFIX = "fernet:"
MIN_KEY_CHARS = 32
# Only for the embedded stack and tests without the secret; never accepted outside "local".
LOCAL_DEV_TOTP_KEY = "swordfish-local-development-totp-key-not-a-secret"
_HKDF_INFO = b"swordfish console totp secrets v1"


class TotpKeysMalformed(ValueError):
    """The key secret holds no usable key (messages never include key material)."""


class TotpSecretUnreadable(Exception):
    """A stored TOTP secret does not decrypt under any current key: tampered, or its key was dropped."""


def fernet_key(material: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material.encode())
    return base64.urlsafe_b64encode(derived)


def parse_key_materials(value: str) -> list[str]:
    materials = [part for part in re.split(r"[\s,]+", value.strip()) if part]
    if not materials:
        raise TotpKeysMalformed("the TOTP key secret is empty: it needs at least one key of 32+ characters")
    short = [i for i, m in enumerate(materials) if len(m) < MIN_KEY_CHARS]
    if short:
        raise TotpKeysMalformed(f"TOTP key(s) at position {short} are shorter than {MIN_KEY_CHARS} characters")
    return materials


def totp_key_materials(*, refresh: bool = False) -> list[str]:
    """The key strings, newest first, from Secrets Manager (cached by the reader; ``refresh`` asks again)."""
    settings = get_settings()
    if settings.environment == "local" and not settings.aws_endpoint_url:
        return [LOCAL_DEV_TOTP_KEY]
    from swordfish.security.secrets import SecretError, process_secret_reader

    reader = process_secret_reader()
    name = settings.console_totp_keys_secret_name
    try:
        version = reader.refresh(name, "decrypt_failed") if refresh else reader.get(name)
    except SecretError:
        if settings.environment == "local":  # a test or stack without the secret
            return [LOCAL_DEV_TOTP_KEY]
        raise
    return parse_key_materials(version.value)


KeySource = Callable[..., list[str]]  # (refresh: bool = False) -> key strings, newest first


class TotpSecretBox:
    """Seal and open TOTP secrets under the current keys (read on every call: the reader caches)."""

    def __init__(self, keys: KeySource = totp_key_materials):
        self.keys = keys

    def _fernet(self, refresh: bool = False) -> MultiFernet:
        materials = self.keys(refresh=True) if refresh else self.keys()
        return MultiFernet([Fernet(fernet_key(m)) for m in materials])

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(SEALED_PREFIX)

    def seal(self, secret: str) -> str:
        return SEALED_PREFIX + self._fernet().encrypt(secret.encode()).decode()

    def _with_keys(self, stored: str, action: Callable[[MultiFernet, bytes], bytes]) -> bytes:
        token = stored[len(SEALED_PREFIX):].encode()
        try:
            return action(self._fernet(), token)
        except InvalidToken:
            pass
        try:  # a key added since our cached read (another process re-encrypted already)
            return action(self._fernet(refresh=True), token)
        except InvalidToken:
            raise TotpSecretUnreadable("the stored TOTP secret does not decrypt under any current key") from None

    def open(self, stored: str) -> str:
        """The secret of a sealed value; a value stored before encryption is returned as it is."""
        if not self.is_sealed(stored):
            return stored
        return self._with_keys(stored, lambda fernet, token: fernet.decrypt(token)).decode()

    def reseal(self, stored: str) -> str:
        """The value under the newest key (a value in clear is encrypted). Raises TotpSecretUnreadable."""
        if not self.is_sealed(stored):
            return self.seal(stored)
        return SEALED_PREFIX + self._with_keys(stored, lambda fernet, token: fernet.rotate(token)).decode()
