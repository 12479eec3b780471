"""Passwords per NIST SP 800-63B: at least 12 characters, no composition rules, checked against a
list of common and breached passwords shipped with the code and by a strength estimate (zxcvbn,
Dropbox's estimator: dictionaries, l33t, keyboard walks, dates, repeats) that is also given the
context words 800-63B asks for (the product, the MSP, the tenants, the user's e-mail), hashed with
argon2id.

A password must need at least 10^10 guesses by zxcvbn's estimate (its score 4): length alone does
not get there (``Summer2024!!`` is 10^8.4, ``P@ssw0rd1234`` 10^4.2), a few random words do.

The list is Django's ``common-passwords.txt.gz`` (20,000 passwords from breach corpora, BSD
licence, copied from django/contrib/auth). Hashing is argon2-cffi's PasswordHasher (argon2id with
its RFC 9106 low-memory profile), never our own.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from swordfish import constants

MIN_LENGTH = 12
MAX_LENGTH = 256  # long enough for any passphrase; bounds the hashing work an attacker can ask for
CONTEXT_WORDS = (constants.SERVICE_NAME, "swordfish", "password", "console", "msp", "admin")
MIN_GUESSES_LOG10 = 10.0  # zxcvbn's score 4
ESTIMATE_CHARS = 72  # zxcvbn refuses longer input (its matching grows faster than linearly); the first 72 decide

# argon2-cffi's RFC 9106 "low memory" profile, above OWASP's argon2id minimum (19 MiB, t=2).
HASH_PARAMETERS = {"time_cost": 3, "memory_cost": 64 * 1024, "parallelism": 4}
_hasher = PasswordHasher(**HASH_PARAMETERS)
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


def context_words(email: str, context: Iterable[str] = ()) -> list[str]:
    """What an attacker who knows the user would try first: the product, the e-mail's parts (its
    domain is the MSP's or the tenant's), and the given names (tenants, the MSP) whole and in parts."""
    words = set(CONTEXT_WORDS)
    for text in (email, *context):
        text = (text or "").lower()
        words.add(text)
        words.update(part for part in re.split(r"[^a-z0-9]+", text) if len(part) >= 3)
        words.add(re.sub(r"[^a-z0-9]+", "", text))  # "Acme Corp" -> "acmecorp"
    return sorted(w for w in words if w)


def check_password(password: str, *, email: str = "", context: Iterable[str] = ()) -> str:
    """The normalised password, or PasswordRejected. ``context``: names the user's password should
    not be built on (tenants, the MSP)."""
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
    words = context_words(email, context)
    # zxcvbn prices the separators between known words as brute force ("swordfish-console-2025"
    # reaches 10^12), so what is left once the context words are taken out must be strong by itself.
    remainder = lowered
    for word in sorted((w for w in words if len(w) >= 3), key=len, reverse=True):
        remainder = remainder.replace(word, " ")
    estimate = min((zxcvbn(candidate[:ESTIMATE_CHARS], user_inputs=words) for candidate in {password, remainder}
                    if candidate.strip()), key=lambda e: e["guesses_log10"], default=None)
    if estimate is None or estimate["guesses_log10"] < MIN_GUESSES_LOG10:
        estimate = estimate or {}
        warning = (estimate.get("feedback") or {}).get("warning") or ""
        raise PasswordRejected("this password would be too easy to guess" + (f" ({warning.rstrip('.')})" if warning
                                                                               else "")
                               + ": a few unrelated words make a strong one")
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
