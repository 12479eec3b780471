"""Read the flag configuration through the AppConfig Agent's HTTP interface.

On AWS that is the AppConfig Agent Lambda extension on localhost:2772; on the embedded stack it is
``devstack.appconfig_agent`` over moto. Powertools ships ``AppConfigExtensionProvider``, but it pins
the host to ``localhost`` and drops the ``Configuration-Version`` header we stamp on every verdict,
so this small StoreProvider reads the same path itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from swordfish import constants

VERSION_HEADER = "Configuration-Version"


@dataclass(frozen=True)
class FetchedConfiguration:
    document: dict[str, Any]
    version: str


def agent_path(
    application: str = constants.APPCONFIG_APPLICATION,
    environment: str = constants.APPCONFIG_ENVIRONMENT,
    profile: str = constants.APPCONFIG_FLAGS_PROFILE,
) -> str:
    return (
        f"/applications/{quote(application, safe='')}/environments/{quote(environment, safe='')}"
        f"/configurations/{quote(profile, safe='')}"
    )


class AgentStoreProvider(StoreProvider):
    def __init__(
        self,
        agent_url: str,
        *,
        timeout_seconds: float = 1.0,
        application: str = constants.APPCONFIG_APPLICATION,
        environment: str = constants.APPCONFIG_ENVIRONMENT,
        profile: str = constants.APPCONFIG_FLAGS_PROFILE,
    ):
        self.url = agent_url.rstrip("/") + agent_path(application, environment, profile)
        self.timeout_seconds = timeout_seconds

    def fetch(self) -> FetchedConfiguration:
        """One GET to the agent; raises ConfigurationStoreError saying what went wrong."""
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_seconds) as response:
                body = response.read()
                version = response.headers.get(VERSION_HEADER)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise ConfigurationStoreError(
                f"AppConfig agent returned HTTP {exc.code} for {self.url}: {detail}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise ConfigurationStoreError(f"AppConfig agent unreachable at {self.url}: {exc}") from exc
        if not version:
            raise ConfigurationStoreError(
                f"AppConfig agent response from {self.url} has no {VERSION_HEADER} header"
            )
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ConfigurationStoreError(
                f"flag configuration version {version} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(document, dict):
            raise ConfigurationStoreError(f"flag configuration version {version} is not a JSON object")
        return FetchedConfiguration(document, version)

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.fetch().document

    def get_configuration(self) -> dict[str, Any]:
        return self.fetch().document
