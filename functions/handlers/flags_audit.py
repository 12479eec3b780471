"""EventBridge (source aws.appconfig, "On Deployment Complete" / "On Deployment Rollback") -> flag audit.

Changes made in the AppConfig console reach the same append-only table as `swordfish flags`.
Only deployments of the flags profile are recorded; others are ignored.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from swordfish import constants, wiring
from swordfish.features.admin import Deployment, record_deployment
from swordfish.monitoring.observability import logger

RECORDED_TYPES = {"On Deployment Complete": False, "On Deployment Rollback": True}


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Id: str | None = None
    Name: str | None = None


class AppConfigDeploymentDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    application: _Named = Field(alias="Application")
    configuration_profile: _Named = Field(alias="ConfigurationProfile")
    configuration_version: str = Field(alias="ConfigurationVersion")
    deployment_number: int | str | None = Field(None, alias="DeploymentNumber")
    description: str | None = Field(None, alias="Description")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = parse(event=event, model=EventBridgeModel)
    rolled_back = RECORDED_TYPES.get(envelope.detail_type)
    if rolled_back is None:
        return {"recorded": 0, "ignored": f"detail-type {envelope.detail_type!r}"}
    detail = AppConfigDeploymentDetail.model_validate(envelope.detail)
    profile = detail.configuration_profile.Name
    if profile is not None and profile != constants.APPCONFIG_FLAGS_PROFILE:
        return {"recorded": 0, "ignored": f"profile {profile!r}"}
    audit = wiring.flag_audit()
    deployment = Deployment(
        event_id=envelope.id,
        version=detail.configuration_version,
        rolled_back=rolled_back,
        description=detail.description,
    )
    with audit.connection() as conn:
        recorded = record_deployment(conn, audit.repository, deployment)
    logger.info(
        "flag deployment audited",
        extra={"version": deployment.version, "rows": recorded, "rolled_back": rolled_back},
    )
    return {"recorded": recorded}


handler = lambda_handler  # the name the CDK stacks deploy (constants.FLAGS_AUDIT_HANDLER)
