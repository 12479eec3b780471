"""The API-key pepper: the server-side secret every stored key digest is an HMAC under.

One small function the key code calls, so it can be re-pointed at ``swordfish.security.secrets``
when that lands. A rotation keeps both versions for an overlap: keys are verified under the
version recorded with them and new keys use the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

from swordfish import constants
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
    """The current pepper first, then the previous one while a rotation overlaps."""
    settings = get_settings()
    if settings.api_key_pepper:
        return [Pepper("env", settings.api_key_pepper.encode())]
    if settings.environment == "local":
        return [Pepper("local", LOCAL_DEV_PEPPER.encode())]
    from aws_lambda_powertools.utilities import parameters

    peppers = []
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        try:
            value = parameters.get_secret(constants.API_KEY_PEPPER_SECRET_NAME, max_age=300,
                                          VersionStage=stage)
        except parameters.exceptions.GetParameterError:
            if stage == "AWSCURRENT":
                raise PepperUnavailable(f"cannot read {constants.API_KEY_PEPPER_SECRET_NAME}") from None
            continue
        peppers.append(Pepper(stage.lower(), str(value).encode()))
    return peppers
