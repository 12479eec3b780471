"""Secrets Manager rotation -> one of the four steps (security/rotation.py).

The event is ``{"SecretId": arn, "ClientRequestToken": version id, "Step": "createSecret" | ...}``;
Secrets Manager calls the function once per step and retries failed steps, which are idempotent.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from swordfish.config import get_settings
from swordfish.monitoring.observability import logger
from swordfish.security.rotation import Rotator
from swordfish.security.secrets import secretsmanager_client


class RotationEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    secret_id: str = Field(alias="SecretId", min_length=1)
    token: str = Field(alias="ClientRequestToken", min_length=1)
    step: str = Field(alias="Step", min_length=1)


def build_rotator() -> Rotator:
    settings = get_settings()
    client = secretsmanager_client(settings.aws_region, settings.secrets_endpoint_url or settings.aws_endpoint_url,
                                   settings.secrets_timeout_seconds)
    return Rotator(client, sslmode=settings.db_sslmode)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = RotationEvent.model_validate(event)
    build_rotator().step(request.secret_id, request.token, request.step)
    return {"secret": request.secret_id, "step": request.step, "version_id": request.token}
