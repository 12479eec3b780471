"""Secrets Manager rotation -> one of the four steps (security/rotation.py).

The event is ``{"SecretId": arn, "ClientRequestToken": version id, "Step": "createSecret" | ...}``;
Secrets Manager calls the function once per step and retries failed steps, which are idempotent.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from swordfish import wiring
from swordfish.monitoring.observability import logger


class RotationEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    secret_id: str = Field(alias="SecretId", min_length=1)
    token: str = Field(alias="ClientRequestToken", min_length=1)
    step: str = Field(alias="Step", min_length=1)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = RotationEvent.model_validate(event)
    wiring.rotator().step(request.secret_id, request.token, request.step)
    return {"secret": request.secret_id, "step": request.step, "version_id": request.token}
