"""Evaluate flags from one immutable configuration snapshot, with the reason for every value.

Powertools' FeatureFlags matches rules and conditions (tenant lists, time windows, modulo, ...).
What it lacks we add here, without changing the rule schema:

- percentage rollouts: the context carries ``tenant_bucket`` / ``user_bucket`` (0..9999, a stable
  sha256 of flag name + key), so a rollout is an ordinary condition
  ``{"action": "KEY_LESS_THAN_VALUE", "key": "tenant_bucket", "value": 2000}`` (= 20.00 %);
- resolution details in the spirit of OpenFeature (value, reason, variant = matched rule, error code);
- evaluation that never raises: any failure returns the caller's default with reason ERROR.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags, schema
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

from swordfish.monitoring.observability import logger

BUCKETS = 10_000  # 0.01 % granularity
TENANT_BUCKET_KEY = "tenant_bucket"
USER_BUCKET_KEY = "user_bucket"
BUCKET_KEYS = frozenset({TENANT_BUCKET_KEY, USER_BUCKET_KEY})
ROLLOUT_RULE = "percentage rollout"


def bucket(flag: str, key: str) -> int:
    """Stable bucket in 0..BUCKETS-1 for (flag, key).

    Salting with the flag name makes flags independent (two flags at 20 % pick different 20 %);
    comparing the bucket with a threshold makes rollouts monotonic (raising 10 % to 20 % keeps the
    first 10 % in). 64 bits of sha256 modulo 10 000 has negligible bias.
    """
    digest = hashlib.sha256(f"{flag}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def percent_to_threshold(percent: float) -> int:
    if not 0 <= percent <= 100:
        raise ValueError(f"a rollout percentage must be between 0 and 100, got {percent}")
    return round(percent * BUCKETS / 100)


class Reason(StrEnum):
    TARGETING_MATCH = "TARGETING_MATCH"  # a targeting rule matched (variant = rule name)
    SPLIT = "SPLIT"  # a percentage-rollout rule matched
    STATIC = "STATIC"  # the flag has no rules: its default applies to everyone
    DEFAULT = "DEFAULT"  # the flag has rules, none matched: the flag's default
    OVERRIDE = "OVERRIDE"  # a test / environment / file override won over the store
    STALE = "STALE"  # resolved from the last known good configuration: the store is unreachable
    CACHED = "CACHED"  # resolved from the snapshot bundled with the code: no configuration ever loaded
    ERROR = "ERROR"  # the caller's default: see error_code


class ErrorCode(StrEnum):
    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
    GENERAL = "GENERAL"


class Source(StrEnum):
    LIVE = "live"
    LAST_KNOWN_GOOD = "last-known-good"
    BUNDLED = "bundled"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Resolution:
    flag: str
    value: Any
    reason: Reason
    variant: str | None  # the matched rule, "default", or "override"
    version: str
    stale: bool
    error_code: ErrorCode | None = None
    error_message: str | None = None


class _StaticStore(StoreProvider):
    """A StoreProvider over a document already in memory (the snapshot never re-fetches)."""

    def __init__(self, document: dict[str, Any]):
        self._document = document

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self._document

    def get_configuration(self) -> dict[str, Any]:
        return self._document


def validate_document(document: Any) -> dict[str, Any]:
    """Raise SchemaValidationError unless ``document`` is a valid Powertools feature-flags schema."""
    schema.SchemaValidator(schema=document).validate()
    return document


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Configuration:
    """One validated flag document and where it came from; shared by the snapshots taken from it."""

    document: Mapping[str, Any]
    version: str
    source: Source
    fetched_at: float  # epoch seconds of the fetch that produced it (0 for bundled / none)
    _probe: FeatureFlags = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @classmethod
    def build(
        cls, document: dict[str, Any], version: str, source: Source, fetched_at: float = 0.0
    ) -> Configuration:
        document = copy.deepcopy(validate_document(document)) if document else {}
        # One single-rule probe feature per (flag, rule): Powertools tells us *whether* a rule
        # matches, we need *which* rule matched for the resolution's variant.
        probes = {
            _probe_key(name, rule_name): {
                "default": False,
                "rules": {rule_name: {"when_match": True, "conditions": rule.get("conditions", [])}},
            }
            for name, feature in document.items()
            for rule_name, rule in (feature.get("rules") or {}).items()
        }
        probe = FeatureFlags(store=_StaticStore(probes), logger=logger)
        return cls(MappingProxyType(document), version, source, fetched_at, probe)

    def names(self) -> frozenset[str]:
        return frozenset(self.document)

    def definition(self, name: str) -> dict[str, Any] | None:
        feature = self.document.get(name)
        return copy.deepcopy(feature) if feature is not None else None

    def full_document(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.document))


def _probe_key(name: str, rule_name: str) -> str:
    return f"{name}\x1f{rule_name}"


Recorder = Callable[[str, Any], None]


class FlagSnapshot:
    """The flag configuration for one email or batch: one version, immutable, never raises."""

    __slots__ = ("_config", "_overrides", "_recorder", "version")

    def __init__(
        self,
        config: Configuration,
        overrides: Mapping[str, Any] | None = None,
        recorder: Recorder | None = None,
    ):
        self._config = config
        self._overrides = MappingProxyType(dict(overrides or {}))
        self._recorder = recorder
        self.version = config.version + ("+overrides" if self._overrides else "")

    def __setattr__(self, key: str, value: Any) -> None:
        if hasattr(self, "version"):
            raise AttributeError("FlagSnapshot is immutable")
        object.__setattr__(self, key, value)

    @property
    def source(self) -> Source:
        return self._config.source

    @property
    def stale(self) -> bool:
        return self._config.source is not Source.LIVE

    @property
    def configuration(self) -> Configuration:
        return self._config

    def names(self) -> frozenset[str]:
        return self._config.names() | frozenset(self._overrides)

    def evaluate(
        self,
        name: str,
        *,
        tenant_id: str | None = None,
        user_id: str | None = None,
        default: Any,
        context: Mapping[str, Any] | None = None,
    ) -> Resolution:
        try:
            resolution = self._resolve(name, tenant_id, user_id, default, context)
        except Exception as exc:  # noqa: BLE001 - never raises: the mail flow must not depend on flags
            logger.warning(
                "flag evaluation failed; using the caller's default", extra={"flag": name, "error": repr(exc)}
            )
            resolution = Resolution(
                name, default, Reason.ERROR, None, self.version, self.stale, ErrorCode.GENERAL, repr(exc)
            )
        if self._recorder is not None:
            try:
                self._recorder(name, resolution.value)
            except Exception as exc:  # noqa: BLE001 - counting is best effort
                logger.debug("flag evaluation counter failed", extra={"error": repr(exc)})
        return resolution

    def is_on(
        self, name: str, *, tenant_id: str | None = None, user_id: str | None = None, default: bool = False
    ) -> bool:
        return bool(self.evaluate(name, tenant_id=tenant_id, user_id=user_id, default=default).value)

    def _resolve(
        self,
        name: str,
        tenant_id: str | None,
        user_id: str | None,
        default: Any,
        extra: Mapping[str, Any] | None,
    ) -> Resolution:
        stale = self.stale
        if name in self._overrides:
            return Resolution(name, self._overrides[name], Reason.OVERRIDE, "override", self.version, stale)
        config = self._config
        if config.source is Source.NONE:
            return Resolution(
                name,
                default,
                Reason.ERROR,
                None,
                self.version,
                stale,
                ErrorCode.PROVIDER_NOT_READY,
                "no flag configuration could be loaded",
            )
        feature = config.document.get(name)
        if feature is None:
            return Resolution(
                name,
                default,
                Reason.ERROR,
                None,
                self.version,
                stale,
                ErrorCode.FLAG_NOT_FOUND,
                f"flag {name!r} is not defined in version {self.version}",
            )

        context: dict[str, Any] = dict(extra or {})
        if tenant_id is not None:
            context["tenant_id"] = tenant_id
            context[TENANT_BUCKET_KEY] = bucket(name, tenant_id)
        if user_id is not None:
            context["user_id"] = user_id
            context[USER_BUCKET_KEY] = bucket(name, user_id)

        boolean = feature.get(schema.FEATURE_DEFAULT_VAL_TYPE_KEY, True)
        rules = feature.get(schema.RULES_KEY) or {}
        value, reason, variant = (
            feature[schema.FEATURE_DEFAULT_VAL_KEY],
            (Reason.DEFAULT if rules else Reason.STATIC),
            "default",
        )
        for rule_name, rule in rules.items():
            if config._probe.evaluate(name=_probe_key(name, rule_name), context=context, default=False):
                value = rule[schema.RULE_MATCH_VALUE]
                keys = {c.get(schema.CONDITION_KEY) for c in rule.get(schema.CONDITIONS_KEY, [])}
                reason = Reason.SPLIT if keys & BUCKET_KEYS else Reason.TARGETING_MATCH
                variant = rule_name
                break
        if boolean:
            value = bool(value)
        if default is not None and isinstance(default, bool) != isinstance(value, bool):
            return Resolution(
                name,
                default,
                Reason.ERROR,
                variant,
                self.version,
                stale,
                ErrorCode.TYPE_MISMATCH,
                f"flag {name!r} is {type(value).__name__}, the caller expects {type(default).__name__}",
            )
        if config.source is Source.LAST_KNOWN_GOOD:
            reason = Reason.STALE
        elif config.source is Source.BUNDLED:
            reason = Reason.CACHED
        return Resolution(name, copy.deepcopy(value), reason, variant, self.version, stale)


def empty_configuration() -> Configuration:
    return Configuration.build({}, "none", Source.NONE, 0.0)
