"""Breakers against moto DynamoDB: a fresh table per test, short timeouts through settings."""

from __future__ import annotations

import uuid

import pytest
from swordfish.resilience.circuit_breaker import (
    BreakerRegistry,
    create_breaker_table,
    dynamodb_client_from_settings,
)


@pytest.fixture()
def breaker_settings(moto_server, settings_env):
    """Apply breaker settings (recovery 1 s unless overridden) with this test's own table."""
    table = f"breakers-{uuid.uuid4().hex[:10]}"

    def apply(**overrides):
        values = {
            "aws_endpoint_url": moto_server.url,
            "breaker_table_name": table,
            "breaker_failure_threshold": 5,
            "breaker_recovery_timeout_seconds": 1,
            "breaker_success_threshold": 3,
            **overrides,
        }
        settings = settings_env(**values)
        create_breaker_table(dynamodb_client_from_settings(settings), table)
        return settings

    return apply


@pytest.fixture()
def registry(breaker_settings):
    return BreakerRegistry(settings=breaker_settings())
