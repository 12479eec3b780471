"""Passwords per NIST SP 800-63B: at least 12 characters, no composition rules, checked against a
list of common and breached passwords shipped with the code, hashed with argon2id.

The list is Django's ``common-passwords.txt.gz`` (20,000 passwords from breach corpora, BSD
licence, copied from django/contrib/auth). Hashing is argon2-cffi's PasswordHasher (argon2id with
its RFC 9106 low-memory profile), never our own.
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256  # long enough for any passphrase; bounds the hashing work an attacker can ask for
CONTEXT_WORDS = ("swordfish", "password", "console")

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
# A valid hash of a random password: verifying against it costs the same as a real user's hash,
# so an unknown e-mail answers no faster than a wrong password.
_DUMMY_HASH = _hasher.hash("no user has this password: only its timing matters")


class PasswordRejected(ValueError):
    """The password breaks a rule; the message says which, for the person choosing it."""


@cache
def common_passwords() -> frozenset[str]:
    data = resources.files("swordfish.console").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)  # 800-63B: normalise before hashing and checks


def check_password(password: str, *, email: str = "") -> str:
    """The normalised password, or PasswordRejected."""
    password = normalise(password or "")
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"use at least {MIN_LENGTH} characters (a few words make a good password)")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in common_passwords():
        raise PasswordRejected("this password is on the list of common or breached passwords; choose another")
    if len(set(lowered)) < 4:
        raise PasswordRejected("this password repeats too few characters; choose another")
    local_part = email.split("@")[0].lower()
    if (len(local_part) >= 4 and local_part in lowered) or any(w in lowered and len(lowered) - len(w) < 6
                                                              for w in CONTEXT_WORDS):
        raise PasswordRejected("this password is built on your e-mail or the service's name; choose another")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(normalise(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, normalise(password or "")) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
