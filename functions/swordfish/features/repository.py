"""The write side of the flag store: read, publish and deploy versions of the flag configuration.

On AWS a change is a new hosted configuration version plus a deployment (``AppConfig.AllAtOnce``,
so a rollback is instant). moto has neither environments nor deployments, so on the embedded stack
the deployed version is recorded as a tag on the configuration profile, which is what
``devstack.appconfig_agent`` serves.
"""

from __future__ import annotations

import abc
import json
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from swordfish import constants
from swordfish.features.store import FetchedConfiguration

DEPLOYED_VERSION_TAG = "swordfish:deployed-version"
DEPLOYMENT_STRATEGY = "AppConfig.AllAtOnce"  # predefined: a rollback takes effect at once
CONTENT_TYPE = "application/json"
BOTO_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})


class FlagStoreError(Exception):
    """The flag configuration could not be read or written; the message says which and why."""


@dataclass(frozen=True)
class AppConfigIds:
    application_id: str
    profile_id: str
    profile_arn: str
    environment_id: str | None = None


def encode(document: dict[str, Any]) -> bytes:
    # Key order matters: rules are evaluated in document order (first match wins).
    return json.dumps(document, indent=2).encode()


class ConfigurationRepository(abc.ABC):
    def __init__(
        self,
        client,
        application: str = constants.APPCONFIG_APPLICATION,
        environment: str = constants.APPCONFIG_ENVIRONMENT,
        profile: str = constants.APPCONFIG_FLAGS_PROFILE,
    ):
        self.client = client
        self.application, self.environment, self.profile = application, environment, profile
        self._ids: AppConfigIds | None = None
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        """How the audit log names this flag store."""
        return f"{self.application}/{self.environment}/{self.profile}"

    @property
    def ids(self) -> AppConfigIds:
        with self._lock:
            if self._ids is None:
                self._ids = self._resolve_ids()
            return self._ids

    @abc.abstractmethod
    def _resolve_ids(self) -> AppConfigIds: ...

    @abc.abstractmethod
    def deployed_version(self) -> str: ...

    @abc.abstractmethod
    def deploy(self, version: str, description: str = "") -> None: ...

    def get_version(self, version: str) -> dict[str, Any]:
        ids = self.ids
        try:
            response = self.client.get_hosted_configuration_version(
                ApplicationId=ids.application_id,
                ConfigurationProfileId=ids.profile_id,
                VersionNumber=int(version),
            )
        except ClientError as exc:
            raise FlagStoreError(f"flag configuration version {version} could not be read: {exc}") from exc
        try:
            return json.loads(response["Content"].read())
        except ValueError as exc:
            raise FlagStoreError(f"flag configuration version {version} is not valid JSON: {exc}") from exc

    def deployed(self) -> FetchedConfiguration:
        version = self.deployed_version()
        return FetchedConfiguration(self.get_version(version), version)

    def create_version(self, document: dict[str, Any], description: str) -> str:
        ids = self.ids
        try:
            response = self.client.create_hosted_configuration_version(
                ApplicationId=ids.application_id,
                ConfigurationProfileId=ids.profile_id,
                Content=encode(document),
                ContentType=CONTENT_TYPE,
                Description=description[:1024],
            )
        except ClientError as exc:
            raise FlagStoreError(f"could not create a flag configuration version: {exc}") from exc
        return str(response["VersionNumber"])

    def publish(self, document: dict[str, Any], description: str) -> str:
        version = self.create_version(document, description)
        self.deploy(version, description)
        return version


class AwsRepository(ConfigurationRepository):
    def _resolve_ids(self) -> AppConfigIds:
        app_id = self._find(
            self.client.get_paginator("list_applications").paginate(), self.application, "application"
        )
        env_id = self._find(
            self.client.get_paginator("list_environments").paginate(ApplicationId=app_id),
            self.environment,
            "environment",
        )
        profile = next(
            (
                p
                for page in self.client.get_paginator("list_configuration_profiles").paginate(
                    ApplicationId=app_id
                )
                for p in page["Items"]
                if p["Name"] == self.profile
            ),
            None,
        )
        if profile is None:
            raise FlagStoreError(
                f"AppConfig profile {self.profile!r} not found in {self.application!r}: deploy the stack"
            )
        arn = self.client.get_configuration_profile(
            ApplicationId=app_id, ConfigurationProfileId=profile["Id"]
        )
        return AppConfigIds(app_id, profile["Id"], arn.get("ConfigurationProfileArn", ""), env_id)

    def _find(self, pages, name: str, what: str) -> str:
        for page in pages:
            for item in page["Items"]:
                if item["Name"] == name:
                    return item["Id"]
        raise FlagStoreError(f"AppConfig {what} {name!r} not found: deploy the stack first")

    def deployed_version(self) -> str:
        ids = self.ids
        for page in self.client.get_paginator("list_deployments").paginate(
            ApplicationId=ids.application_id, EnvironmentId=ids.environment_id
        ):
            for item in page["Items"]:  # newest first
                if item.get("ConfigurationName") == self.profile and item["State"] in (
                    "COMPLETE",
                    "DEPLOYING",
                    "BAKING",
                ):
                    return str(item["ConfigurationVersion"])
        raise FlagStoreError(f"no deployment of {self.profile!r} to {self.environment!r} yet")

    def deploy(self, version: str, description: str = "") -> None:
        ids = self.ids
        try:
            self.client.start_deployment(
                ApplicationId=ids.application_id,
                EnvironmentId=ids.environment_id,
                DeploymentStrategyId=DEPLOYMENT_STRATEGY,
                ConfigurationProfileId=ids.profile_id,
                ConfigurationVersion=version,
                Description=description[:1024],
            )
        except ClientError as exc:
            raise FlagStoreError(f"could not deploy flag configuration version {version}: {exc}") from exc


class MotoRepository(ConfigurationRepository):
    """Embedded stack only: moto lacks list_applications, environments and deployments."""

    def __init__(self, endpoint_url: str, **kwargs):
        self.endpoint_url = endpoint_url.rstrip("/")
        client = boto3.client(
            "appconfig",
            endpoint_url=self.endpoint_url,
            config=BOTO_CONFIG,
            region_name=kwargs.pop("region_name", None) or _region(),
        )
        super().__init__(client, **kwargs)

    def _resolve_ids(self) -> AppConfigIds:
        ids = self.find_ids()
        if ids is None:
            raise FlagStoreError(
                f"AppConfig application {self.application!r} / profile {self.profile!r} not found "
                f"in moto at {self.endpoint_url}: start the embedded stack (it seeds flags.json)"
            )
        return ids

    def find_ids(self) -> AppConfigIds | None:
        # moto's model dump is the only way to look an application up by name (no list_applications).
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=10) as response:
            models = json.load(response).get("appconfig", {})
        app_ids = [a["id"] for a in models.get("Application", []) if a.get("name") == self.application]
        for profile in models.get("ConfigurationProfile", []):
            if profile.get("application_id") in app_ids and profile.get("name") == self.profile:
                try:
                    self.client.get_configuration_profile(
                        ApplicationId=profile["application_id"], ConfigurationProfileId=profile["id"]
                    )
                except ClientError:
                    continue  # deleted since; moto's dump keeps it
                return AppConfigIds(profile["application_id"], profile["id"], profile["arn"])
        return None

    def forget_ids(self) -> None:
        with self._lock:
            self._ids = None

    def deployed_version(self) -> str:
        ids = self.ids
        tags = self.client.list_tags_for_resource(ResourceArn=ids.profile_arn).get("Tags", {})
        if DEPLOYED_VERSION_TAG in tags:
            return tags[DEPLOYED_VERSION_TAG]
        raise FlagStoreError(
            f"no flag configuration deployed yet (no {DEPLOYED_VERSION_TAG} tag on the profile)"
        )

    def deploy(self, version: str, description: str = "") -> None:
        self.get_version(version)  # refuse to deploy a version that does not exist
        self.client.tag_resource(ResourceArn=self.ids.profile_arn, Tags={DEPLOYED_VERSION_TAG: str(version)})


def _region() -> str:
    from swordfish.config import get_settings

    return get_settings().aws_region


def repository_from_settings() -> ConfigurationRepository:
    from swordfish.config import get_settings

    settings = get_settings()
    if settings.aws_endpoint_url:
        return MotoRepository(settings.aws_endpoint_url, region_name=settings.aws_region)
    return AwsRepository(boto3.client("appconfig", config=BOTO_CONFIG, region_name=settings.aws_region))
