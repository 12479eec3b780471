"""One-time recovery codes for the second factor: ten per user, shown once, each usable once.

A code is four groups of four characters (``k7qm-x2pd-9fh3-wn4c``, about 80 bits). The first group
names the code and is stored in clear, so a sign-in verifies one argon2id hash (about 0.1-0.2 s)
rather than ten; the other three (about 60 bits) are hashed with the password hasher.
"""

from __future__ import annotations

import re
import secrets

from swordfish.console import passwords

COUNT = 10
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read off paper and typed back
_CODE = re.compile(rf"^[{ALPHABET}]{{16}}$")


def generate(count: int = COUNT) -> list[str]:
    codes: list[str] = []
    while len(codes) < count:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
        if raw[:4] not in {c[:4] for c in codes}:  # the code id is unique per user
            codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def split(code: str) -> tuple[str, str] | None:
    """(code id, secret) of what was typed (case, spaces and dashes ignored), or None if it cannot
    be a code (nothing is hashed for that)."""
    raw = re.sub(r"[\s\-]", "", (code or "")[:64]).lower()
    if not _CODE.match(raw):
        return None
    return raw[:4], raw[4:]


def hashed(codes: list[str]) -> list[tuple[str, str]]:
    """(code id, argon2id hash of its secret) for storing."""
    return [(code_id, passwords.hash_password(secret)) for code_id, secret in map(split, codes)]
