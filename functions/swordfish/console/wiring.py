"""Concrete objects for the console: the database pool, Redis, the flag store, health checks."""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta

import redis
from flask import Flask

from swordfish import constants
from swordfish.config import Settings, get_settings
from swordfish.console.app import ConsoleDependencies, create_app
from swordfish.store.database import get_database


def console_secret_key(settings: Settings) -> str:
    if settings.console_secret_key:
        return settings.console_secret_key
    if settings.environment == "local":
        return secrets.token_urlsafe(32)  # one process locally: sessions end with it, which is fine
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(constants.CONSOLE_SECRET_NAME, max_age=300))


def build_dependencies(settings: Settings | None = None) -> ConsoleDependencies:
    settings = settings or get_settings()
    if not settings.redis_url:
        raise RuntimeError("SWORDFISH_REDIS_URL must be set: console sessions and login throttling live in Redis")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)

    def flag_admin(actor: str):
        from swordfish.features.admin import FlagAdmin
        from swordfish.features.repository import repository_from_settings

        return FlagAdmin(repository_from_settings(), settings.database_url or "", actor)

    def flag_document():
        from swordfish.features.repository import repository_from_settings

        deployed = repository_from_settings().deployed()
        return deployed.version, deployed.document

    from swordfish.api.health_deep import HealthDependencies

    return ConsoleDependencies(
        database=get_database(), redis=client, secret_key=console_secret_key(settings),
        idle=timedelta(minutes=settings.console_idle_minutes), absolute=timedelta(hours=settings.console_absolute_hours),
        totp_for_all=settings.console_totp_for_all, flag_admin=flag_admin, flag_document=flag_document,
        health=functools.cache(lambda: HealthDependencies.from_settings(settings)))


def build_console_app() -> Flask:
    return create_app(build_dependencies())
