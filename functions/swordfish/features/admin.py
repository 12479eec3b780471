"""Audited changes to the flag configuration: what ``swordfish flags`` and the audit function call.

Each change runs in one PostgreSQL transaction that serialises writers (advisory lock), reads the
deployed configuration, creates the new version, records the audit row and deploys; if the
deployment fails the audit row is rolled back with it. The audit row is written by the application
role, which may only INSERT and SELECT.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from swordfish.features import audit
from swordfish.features.evaluator import (
    BUCKET_KEYS,
    BUCKETS,
    ROLLOUT_RULE,
    canonical,
    percent_to_threshold,
    validate_document,
)
from swordfish.features.registry import FLAG_NAME_PATTERN, declaration
from swordfish.features.repository import ConfigurationRepository, FlagStoreError
from swordfish.store.database import proxy_connect

Definition = dict[str, Any]


class FlagChangeError(Exception):
    """The change was refused; the message says why and what to do."""


@dataclass(frozen=True)
class ChangeResult:
    flag: str
    action: str
    changed: bool
    before: Definition | None
    after: Definition | None
    version: str  # the deployed version after the change (unchanged when changed is False)
    previous_version: str


class FlagAdmin:
    def __init__(
        self, repository: ConfigurationRepository, database_url: str, actor: str, connect_timeout: int = 5
    ):
        if not database_url:
            raise FlagChangeError(
                "no database URL for the audit log: set SWORDFISH_DATABASE_URL or --database-url"
            )
        self.repository = repository
        self.database_url = database_url
        self.actor = actor
        self.connect_timeout = connect_timeout

    def connect(self) -> psycopg.Connection:
        # Through the proxy: no startup options, no prepared statements; the role carries the
        # statement timeout, and change() bounds its lock wait inside its own transaction.
        return proxy_connect(self.database_url, connect_timeout=self.connect_timeout)

    def change(
        self,
        action: str,
        flag: str,
        mutate: Callable[[Definition | None], Definition | None],
        reason: str | None = None,
    ) -> ChangeResult:
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', '10s', true)")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('swordfish-flag-changes'))")
            deployed = self.repository.deployed()
            document = copy.deepcopy(deployed.document)
            before = document.get(flag)
            after = mutate(copy.deepcopy(before))
            if after == before:
                return ChangeResult(flag, action, False, before, after, deployed.version, deployed.version)
            if after is None:
                document.pop(flag, None)
            else:
                document[flag] = after
                check_values(flag, after)
            try:
                validate_document(document)
            except Exception as exc:
                raise FlagChangeError(
                    f"refused: the change would make an invalid configuration: {exc}"
                ) from exc
            description = f"{action} {flag} by {self.actor}" + (f": {reason}" if reason else "")
            version = self.repository.create_version(document, description)
            audit.record(
                conn,
                audit.AuditEntry(
                    store=self.repository.key,
                    actor=self.actor,
                    action=action,
                    flag_name=flag,
                    before=before,
                    after=after,
                    config_version=version,
                    previous_version=deployed.version,
                    reason=reason,
                ),
            )
            self.repository.deploy(version, description)
            return ChangeResult(flag, action, True, before, after, version, deployed.version)

    # --- operations ---------------------------------------------------------
    def set_default(
        self, flag: str, value: Any, *, create: bool = False, reason: str | None = None
    ) -> ChangeResult:
        _check_name(flag)

        def mutate(feature: Definition | None) -> Definition:
            if feature is None:
                if not create and declaration(flag) is None:
                    raise FlagChangeError(
                        f"flag {flag!r} is not defined nor declared in the registry; "
                        "declare it in swordfish/features/registry.py or pass --create"
                    )
                feature = {"default": value}
            feature["default"] = value
            if isinstance(value, bool):
                feature.pop("boolean_type", None)
            else:
                feature["boolean_type"] = False
            return feature

        return self.change("create" if self._defined(flag) is False else "set", flag, mutate, reason)

    def target(
        self,
        flag: str,
        *,
        tenants: list[str] = (),
        users: list[str] = (),
        value: Any = True,
        remove: bool = False,
        reason: str | None = None,
    ) -> ChangeResult:
        if not tenants and not users:
            raise FlagChangeError("name at least one --tenant or --user")

        def mutate(feature: Definition | None) -> Definition:
            feature = _require(flag, feature)
            rules = feature.setdefault("rules", {})
            for dimension, keys in (("tenant", list(tenants)), ("user", list(users))):
                if not keys:
                    continue
                # A key is targeted by at most one rule of its dimension, so the outcome is unambiguous.
                for rule_name in [n for n in rules if _targeting_dimension(n) == dimension]:
                    _remove_keys(rules, rule_name, keys)
                if not remove:
                    name = _targeting_rule_name(dimension, value)
                    rule = rules.get(name) or {
                        "when_match": value,
                        "conditions": [{"action": "KEY_IN_VALUE", "key": f"{dimension}_id", "value": []}],
                    }
                    listed = rule["conditions"][0]["value"]
                    rule["conditions"][0]["value"] = sorted(set(listed) | set(keys))
                    rules[name] = rule
            if rules:
                feature["rules"] = _ordered(rules)
            else:
                feature.pop("rules", None)  # Powertools warns about an empty rules object
            return feature

        return self.change("target", flag, mutate, reason)

    def rollout(
        self, flag: str, percent: float, *, by: str = "tenant", reason: str | None = None
    ) -> ChangeResult:
        if by not in ("tenant", "user"):
            raise FlagChangeError("--by must be tenant or user")
        threshold = percent_to_threshold(percent)

        def mutate(feature: Definition | None) -> Definition:
            feature = _require(flag, feature)
            if feature.get("boolean_type", True) is False:
                raise FlagChangeError(f"flag {flag!r} is not boolean: a percentage rollout turns it on")
            rules = feature.setdefault("rules", {})
            rules[ROLLOUT_RULE] = {
                "when_match": True,
                "conditions": [{"action": "KEY_LESS_THAN_VALUE", "key": f"{by}_bucket", "value": threshold}],
            }
            feature["rules"] = _ordered(rules)
            return feature

        return self.change("rollout", flag, mutate, reason)

    def rollback(
        self, flag: str, *, to_version: str | None = None, reason: str | None = None
    ) -> ChangeResult:
        if to_version is not None:
            target = self.repository.get_version(to_version).get(flag)
        else:
            with self.connect() as conn:
                rows = audit.history(conn, self.repository.key, flag, limit=1)
            if not rows:
                raise FlagChangeError(f"no recorded change of {flag!r} to roll back; use --to-version N")
            target = rows[0].before
        return self.change("rollback", flag, lambda _: copy.deepcopy(target), reason)

    def remove(self, flag: str, *, reason: str | None = None) -> ChangeResult:
        return self.change("remove", flag, lambda _: None, reason)

    def _defined(self, flag: str) -> bool:
        try:
            return flag in self.repository.deployed().document
        except FlagStoreError:
            return False


def _finite(value: Any) -> bool:
    """No NaN or Infinity anywhere: JSON has neither (json.loads accepts them; AppConfig and other
    readers would not), and a flag compared with NaN is never equal to anything."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def check_values(flag: str, feature: Definition) -> None:
    """FlagChangeError unless the default and every rule's value are finite and, for a declared flag,
    of its declared type: checked before any version is created or deployed."""
    values = [("default", feature.get("default"))] + [
        (f"rule {name!r}", rule.get("when_match")) for name, rule in (feature.get("rules") or {}).items()]
    declared = declaration(flag)
    for where, value in values:
        if not _finite(value):
            raise FlagChangeError(f"refused: {flag}'s {where} must be a finite value, not NaN or Infinity")
        if declared is not None and not declared.accepts(value):
            raise FlagChangeError(f"refused: {flag} is declared {declared.value_type}; its {where} "
                                  f"cannot be {canonical(value)[:80]}")


def _check_name(flag: str) -> None:
    if not FLAG_NAME_PATTERN.match(flag):
        raise FlagChangeError(f"flag name {flag!r} must match {FLAG_NAME_PATTERN.pattern}")


def _require(flag: str, feature: Definition | None) -> Definition:
    if feature is None:
        raise FlagChangeError(
            f"flag {flag!r} is not defined: create it first with `swordfish flags set {flag} false`"
        )
    return feature


def _targeting_rule_name(dimension: str, value: Any) -> str:
    if value is True:
        return f"{dimension}s on"
    if value is False:
        return f"{dimension}s off"
    return f"{dimension}s = {canonical(value)}"


def _targeting_dimension(rule_name: str) -> str | None:
    for dimension in ("tenant", "user"):
        if rule_name.startswith((f"{dimension}s on", f"{dimension}s off", f"{dimension}s = ")):
            return dimension
    return None


def _remove_keys(rules: dict[str, Any], rule_name: str, keys: list[str]) -> None:
    condition = rules[rule_name]["conditions"][0]
    condition["value"] = [k for k in condition["value"] if k not in keys]
    if not condition["value"]:
        del rules[rule_name]


def _ordered(rules: dict[str, Any]) -> dict[str, Any]:
    """Rule order decides (first match wins): exclusions, then inclusions, then hand-written rules,
    then the percentage rollout, so a targeted tenant is never overridden by the rollout."""

    def rank(item: tuple[str, Any]) -> int:
        name, _ = item
        if _targeting_dimension(name) and name.endswith(" off"):
            return 0
        if _targeting_dimension(name):
            return 1
        if name == ROLLOUT_RULE:
            return 3
        return 2

    return dict(sorted(rules.items(), key=rank))


def constant_value(feature: Definition) -> tuple[bool, Any]:
    """(True, value) when every evaluation of ``feature`` yields the same value (fully on or off)."""
    possible: list[Any] = []
    for rule in (feature.get("rules") or {}).values():
        conditions = rule.get("conditions") or []
        bucket_only = conditions and all(c.get("key") in BUCKET_KEYS for c in conditions)
        threshold = conditions[0].get("value") if len(conditions) == 1 else None
        if (
            bucket_only
            and isinstance(threshold, int | float)
            and conditions[0].get("action") == "KEY_LESS_THAN_VALUE"
        ):
            if threshold <= 0:
                continue  # matches nobody
            if threshold >= BUCKETS:
                possible.append(rule.get("when_match"))
                return len({canonical(v) for v in possible}) == 1, possible[0]
        possible.append(rule.get("when_match"))
    possible.append(feature.get("default"))
    return len({canonical(v) for v in possible}) == 1, possible[0]


@dataclass(frozen=True)
class Deployment:
    """An AppConfig deployment of the flag profile that completed or was rolled back."""

    event_id: str
    version: str
    rolled_back: bool = False
    actor: str = "appconfig"
    description: str | None = None


def _whole_deployment_entry(repository: ConfigurationRepository, deployment: Deployment, reason: str,
                            previous: str | None = None) -> audit.AuditEntry:
    """One row for a deployment that changed no single flag (a rollback, or identical content)."""
    return audit.AuditEntry(
        store=repository.key, actor=deployment.actor, action="deployment", flag_name=None, before=None,
        after=None, config_version=deployment.version, previous_version=previous, reason=reason,
        source=audit.DEPLOYMENT_SOURCE, event_id=f"{deployment.event_id}/*")


def record_deployment(
    conn: psycopg.Connection, repository: ConfigurationRepository, deployment: Deployment
) -> int:
    """Audit a deployment made outside ``swordfish flags`` (e.g. the AppConfig console): one row per
    flag whose definition changed. Returns the rows written (0 when already recorded)."""
    if audit.event_recorded(conn, deployment.event_id):
        return 0  # EventBridge delivers at least once
    if deployment.rolled_back:
        entries = [_whole_deployment_entry(repository, deployment,
                                           f"deployment of version {deployment.version} rolled back")]
    elif audit.version_recorded(conn, repository.key, deployment.version, audit.CLI_SOURCE):
        return 0  # made by `swordfish flags`, which already wrote the who and why
    else:
        previous = audit.latest_version(conn, repository.key, other_than=deployment.version)
        after_doc = repository.get_version(deployment.version)
        before_doc: dict[str, Any] = {}
        if previous:
            try:
                before_doc = repository.get_version(previous)
            except FlagStoreError:
                before_doc = {}  # the old version was deleted: record the new state only
        changed = sorted(n for n in set(before_doc) | set(after_doc) if before_doc.get(n) != after_doc.get(n))
        reason = deployment.description or "deployed outside swordfish flags"
        entries = [
            audit.AuditEntry(
                store=repository.key,
                actor=deployment.actor,
                action="deployment",
                flag_name=name,
                before=before_doc.get(name),
                after=after_doc.get(name),
                config_version=deployment.version,
                previous_version=previous,
                reason=reason,
                source=audit.DEPLOYMENT_SOURCE,
                event_id=f"{deployment.event_id}/{name}",
            )
            for name in changed
        ] or [_whole_deployment_entry(repository, deployment, reason, previous)]
    return sum(1 for entry in entries if audit.record(conn, entry) is not None)
