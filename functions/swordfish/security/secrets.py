"""One way to read a secret: Secrets Manager (moto locally), cached with a TTL, with its version.

Every caller (the database credentials, the Nango client secret, the API-key pepper, the Sentry DSN)
goes through ``SecretReader.get``, which returns a ``SecretVersion``: the value plus its
``VersionId`` and staging labels. Around the cache:

- rotation detection: when a refresh returns another ``VersionId`` than the cached one, the
  reader's listeners are told (the database pool drains, so new connections use the new
  credentials); ``refresh(name)`` forces a fetch of ``AWSCURRENT`` (after an authentication failure);
- versions tracked: each fetch is logged and published to a registry (Redis locally and on AWS) so
  ``swordfish secrets status`` can show which version each running process holds;
- access audited: each fetch (never the value) is appended to the audit log with who, which secret,
  which version, when and why (``cache_miss``, ``ttl``, ``rotation_detected``, ``auth_failed``...);
- the vault down: a cached version keeps being served; with nothing cached, the value may come from
  ``settings.secrets_fallback`` only where the settings allow it (warning, metric, health ``warn``).

Written here rather than with Powertools ``parameters.get_secret`` or ``aws-secretsmanager-caching``
because neither returns the ``VersionId``/stages of the cached value, neither tells us when a
refresh changed the version, and neither takes an injected clock for the TTL (tests never sleep);
the cache itself is a dict and a timestamp.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from swordfish.monitoring.observability import logger

AWSCURRENT, AWSPENDING, AWSPREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
METRIC_SECRET_FALLBACK = "SecretEnvFallbackUsed"
METRIC_SECRET_ROTATION_DETECTED = "SecretRotationDetected"
REGISTRY_KEY_PREFIX = "swordfish:secrets:holders:"
REGISTRY_TTL_SECONDS = 900  # a process that stopped publishing disappears from `secrets status`


class SecretError(Exception):
    """Base class: a secret could not be used. Messages name the secret, never its value."""


class SecretUnavailable(SecretError):
    """Secrets Manager could not be reached (timeout, network) and nothing usable was cached."""


class SecretNotFound(SecretError):
    pass


class MalformedSecret(SecretError):
    """The secret exists but its value is not what the caller needs (not JSON, a field missing)."""


@dataclass(frozen=True)
class SecretVersion:
    name: str
    value: str = field(repr=False)
    version_id: str
    stages: tuple[str, ...]
    source: str = "vault"  # "vault" | "env" (fallback)
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.value)
        except (TypeError, ValueError):
            raise MalformedSecret(f"secret {self.name!r} version {self.version_id} is not a JSON object") from None
        if not isinstance(data, dict):
            raise MalformedSecret(f"secret {self.name!r} version {self.version_id} is not a JSON object")
        return data

    def fields(self, *required: str) -> dict[str, Any]:
        """The JSON value, checked to hold every required field as a non-empty value."""
        data = self.json()
        missing = [f for f in required if data.get(f) in (None, "")]
        if missing:
            raise MalformedSecret(f"secret {self.name!r} version {self.version_id} lacks "
                                  f"{', '.join(missing)}: fix the secret value (the previous version stays in use)")
        return data


@dataclass(frozen=True)
class AccessRecord:
    at: str
    principal: str
    secret: str
    version_id: str
    stage: str
    reason: str
    source: str


class AccessAudit(Protocol):
    def record(self, entry: AccessRecord) -> None: ...


class FileAccessAudit:
    """Append-only JSON lines (locally; on AWS CloudTrail records every GetSecretValue).

    One ``write`` per line on a file opened with O_APPEND: lines from several worker processes
    never interleave (each is far below PIPE_BUF)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def record(self, entry: AccessRecord) -> None:
        line = (json.dumps(entry.__dict__, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class LogAccessAudit:
    """Every fetch as a structured log line (``secret_access: true``), wherever logs go."""

    def record(self, entry: AccessRecord) -> None:
        logger.info("secret fetched", extra={"secret_access": True, **entry.__dict__})


class VersionRegistry(Protocol):
    def publish(self, principal: str, versions: dict[str, str]) -> None: ...


class RedisVersionRegistry:
    """Which version of each secret each process holds: one Redis hash per process, expiring."""

    def __init__(self, redis_client):
        self.redis = redis_client

    def publish(self, principal: str, versions: dict[str, str]) -> None:
        key = REGISTRY_KEY_PREFIX + principal
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(key)
        if versions:
            pipe.hset(key, mapping={**versions, "_updated_at": datetime.now(UTC).isoformat()})
        pipe.expire(key, REGISTRY_TTL_SECONDS)
        pipe.execute()

    def holders(self) -> dict[str, dict[str, str]]:
        out = {}
        for key in self.redis.scan_iter(match=REGISTRY_KEY_PREFIX + "*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            raw = self.redis.hgetall(name)
            out[name[len(REGISTRY_KEY_PREFIX):]] = {
                (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()}
        return out


def default_principal() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def secretsmanager_client(region: str, endpoint_url: str | None, timeout_seconds: float):
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout_seconds, read_timeout=timeout_seconds,
                    retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url, config=config)


RotationListener = Callable[[SecretVersion | None, SecretVersion], None]


@dataclass
class _Entry:
    version: SecretVersion
    expires_at: float


class SecretReader:
    """The process's cache of secrets. Thread-safe; one fetch at a time per process."""

    def __init__(self, client, *, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 principal: str | None = None, audits: Iterable[AccessAudit] = (),
                 registry: VersionRegistry | None = None, fallback: dict[str, str] | None = None,
                 fallback_allowed: bool = False, metrics=None, unavailable_retry_seconds: float = 5.0):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.principal = principal or default_principal()
        self.audits = list(audits)
        self.registry = registry
        self.fallback = dict(fallback or {})
        self.fallback_allowed = fallback_allowed
        self.metrics = metrics
        self.unavailable_retry_seconds = unavailable_retry_seconds
        self._cache: dict[str, _Entry] = {}
        self._by_version: dict[tuple[str, str], SecretVersion] = {}  # versions are immutable
        self._listeners: dict[str, list[RotationListener]] = {}
        self._lock = threading.RLock()
        self.fallbacks_used: set[str] = set()  # read by deep health (warn)
        self.rotations_detected = 0

    # --- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> SecretVersion:
        """The AWSCURRENT version, from the cache while its TTL runs, else fetched."""
        with self._lock:
            entry = self._cache.get(name)
            now = self.clock()
            if entry is not None and now < entry.expires_at:
                return entry.version
            return self._fetch_current(name, "ttl" if entry is not None else "cache_miss")

    def refresh(self, name: str, reason: str = "rotation_detected") -> SecretVersion:
        """Fetch AWSCURRENT now, whatever the TTL (after an authentication failure, or by request)."""
        with self._lock:
            return self._fetch_current(name, reason)

    def get_stage(self, name: str, stage: str) -> SecretVersion | None:
        """Another stage (AWSPREVIOUS during a pepper overlap, AWSPENDING in a rotation), or None."""
        with self._lock:
            key = f"{name}#{stage}"
            entry = self._cache.get(key)
            if entry is not None and self.clock() < entry.expires_at:
                return entry.version
            try:
                version = self._call(name, stage, "cache_miss" if entry is None else "ttl")
            except SecretNotFound:
                version = None
            except SecretUnavailable:
                if entry is None:
                    raise
                version = entry.version
            if version is not None:
                self._cache[key] = _Entry(version, self.clock() + self.ttl_seconds)
            else:
                self._cache.pop(key, None)
            return version

    def get_version(self, name: str, version_id: str) -> SecretVersion:
        """One exact version (immutable: cached for the life of the process)."""
        with self._lock:
            cached = self._by_version.get((name, version_id))
            if cached is not None:
                return cached
            return self._call(name, None, "cache_miss", version_id=version_id)

    def on_rotation(self, name: str, listener: RotationListener) -> None:
        with self._lock:
            self._listeners.setdefault(name, []).append(listener)

    def versions_held(self) -> dict[str, str]:
        with self._lock:
            return {n: e.version.version_id for n, e in self._cache.items() if "#" not in n}

    # --- internals ------------------------------------------------------------------------------

    def _fetch_current(self, name: str, reason: str) -> SecretVersion:
        previous = self._cache.get(name)
        try:
            version = self._call(name, AWSCURRENT, reason)
        except SecretUnavailable as exc:
            if previous is not None:  # the vault is down: the version we hold keeps working
                logger.warning("secret store unreachable: keeping the cached version",
                               extra={"secret": name, "version_id": previous.version.version_id,
                                      "error": str(exc)})
                previous.expires_at = self.clock() + self.unavailable_retry_seconds
                return previous.version
            version = self._from_fallback(name, exc)
        self._cache[name] = _Entry(version, self.clock() + self.ttl_seconds)
        if previous is not None and previous.version.version_id != version.version_id:
            self.rotations_detected += 1
            logger.warning("secret rotation detected", extra={
                "secret": name, "old_version_id": previous.version.version_id,
                "new_version_id": version.version_id, "reason": reason})
            self._audit(version, AWSCURRENT, "rotation_detected")
            self._metric(METRIC_SECRET_ROTATION_DETECTED)
            for listener in list(self._listeners.get(name, ())):
                try:
                    listener(previous.version, version)
                except Exception:  # one listener's bug must not stop the others or the read
                    logger.exception("rotation listener failed", extra={"secret": name})
        if previous is None or previous.version.version_id != version.version_id:
            logger.info("secret version in use", extra={"secret": name, "version_id": version.version_id,
                                                        "source": version.source})
            self._publish()
        return version

    def _call(self, name: str, stage: str | None, reason: str, *, version_id: str | None = None) -> SecretVersion:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, str] = {"SecretId": name}
        if version_id:
            kwargs["VersionId"] = version_id
        else:
            kwargs["VersionStage"] = stage or AWSCURRENT
        try:
            response = self.client.get_secret_value(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise SecretNotFound(f"secret {name!r} ({version_id or stage}) does not exist in Secrets Manager") from None
            if code in ("AccessDeniedException", "DecryptionFailure", "InvalidRequestException"):
                raise SecretError(f"secret {name!r}: Secrets Manager refused the read ({code})") from None
            raise SecretUnavailable(f"secret {name!r}: Secrets Manager error {code}") from None
        except BotoCoreError as exc:  # timeouts, connection refused, DNS
            raise SecretUnavailable(f"secret {name!r}: Secrets Manager unreachable ({type(exc).__name__})") from None
        value = response.get("SecretString")
        if value is None:
            raise MalformedSecret(f"secret {name!r} holds binary data; Swordfish secrets are strings")
        version = SecretVersion(name=name, value=value, version_id=response["VersionId"],
                                stages=tuple(response.get("VersionStages") or ()))
        self._by_version[(name, version.version_id)] = version
        self._audit(version, version_id or stage or AWSCURRENT, reason)
        return version

    def _from_fallback(self, name: str, exc: SecretUnavailable) -> SecretVersion:
        if not self.fallback_allowed:
            raise SecretUnavailable(f"{exc}; the environment fallback is off here (prod without "
                                    "SWORDFISH_SECRETS_BREAK_GLASS)") from None
        if name not in self.fallback:
            raise SecretUnavailable(f"{exc}; no fallback value for it in SWORDFISH_SECRETS_FALLBACK") from None
        logger.warning("secret read from the environment fallback: Secrets Manager unreachable",
                       extra={"secret": name, "error": str(exc)})
        self.fallbacks_used.add(name)
        self._metric(METRIC_SECRET_FALLBACK)
        version = SecretVersion(name=name, value=self.fallback[name], version_id="env-fallback",
                                stages=(AWSCURRENT,), source="env")
        self._audit(version, AWSCURRENT, "env_fallback")
        return version

    def _audit(self, version: SecretVersion, stage: str, reason: str) -> None:
        entry = AccessRecord(at=datetime.now(UTC).isoformat(), principal=self.principal, secret=version.name,
                             version_id=version.version_id, stage=stage, reason=reason, source=version.source)
        for audit in self.audits:
            try:
                audit.record(entry)
            except Exception:  # an audit sink down must be visible, and must not stop mail
                logger.exception("secret access audit failed", extra={"secret": version.name})

    def _publish(self) -> None:
        if self.registry is None:
            return
        try:
            self.registry.publish(self.principal, self.versions_held())
        except Exception as exc:
            logger.warning("secret version registry unreachable", extra={"error": str(exc)})

    def _metric(self, name: str) -> None:
        if self.metrics is None:
            return
        try:
            from aws_lambda_powertools.metrics import MetricUnit

            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        except Exception:
            logger.debug("metric not recorded", exc_info=True)


# --- the process's reader ---------------------------------------------------------------------------

def build_secret_reader(settings, *, clock: Callable[[], float] = time.monotonic) -> SecretReader:
    """The reader for these settings (``swordfish.wiring.secret_reader`` keeps one per process)."""
    audits: list[AccessAudit] = [LogAccessAudit()]
    if settings.secrets_audit_file:
        audits.append(FileAccessAudit(settings.secrets_audit_file))
    registry = None
    if settings.redis_url:
        import redis

        registry = RedisVersionRegistry(redis.Redis.from_url(
            settings.redis_url, socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds))
    try:
        from swordfish.monitoring.observability import metrics
    except ImportError:  # pragma: no cover - observability always ships with the package
        metrics = None
    endpoint = settings.secrets_endpoint_url or settings.aws_endpoint_url
    return SecretReader(
        secretsmanager_client(settings.aws_region, endpoint, settings.secrets_timeout_seconds),
        ttl_seconds=settings.secrets_ttl_seconds, clock=clock,
        principal=settings.process_name or default_principal(), audits=audits, registry=registry,
        fallback=settings.secrets_fallback, fallback_allowed=settings.env_fallback_allowed, metrics=metrics)


from swordfish.lazy import ProcessSingleton  # noqa: E402  (kept next to its one use)

# One reader per process (``swordfish.wiring.secret_reader`` hands it out; ``security.pepper`` reads
# the pepper through it), so every secret a process uses shows in one registry entry.
_process_reader = ProcessSingleton(lambda: build_secret_reader(_settings()))
process_secret_reader = _process_reader.get
reset_process_secret_reader = _process_reader.reset


def _settings():
    from swordfish.config import get_settings

    return get_settings()


# --- what callers read ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatabaseCredentials:
    username: str
    password: str = field(repr=False)
    host: str | None
    port: int
    dbname: str
    version_id: str


def database_credentials(version: SecretVersion) -> DatabaseCredentials:
    data = version.fields("username", "password")
    try:
        port = int(data.get("port") or 5432)
    except (TypeError, ValueError):
        raise MalformedSecret(f"secret {version.name!r} version {version.version_id}: port is not a number") from None
    return DatabaseCredentials(username=str(data["username"]), password=str(data["password"]),
                               host=data.get("host"), port=port, dbname=str(data.get("dbname") or "swordfish"),
                               version_id=version.version_id)


def api_key_peppers(reader: SecretReader, name: str) -> list[tuple[str, bytes]]:
    """(version id, pepper) pairs accepted now: AWSCURRENT first, then AWSPREVIOUS (the overlap after
    a rotation, so keys hashed with the previous pepper keep authenticating)."""
    current = reader.get(name)
    peppers = [(current.version_id, pepper_bytes(current))]
    previous = reader.get_stage(name, AWSPREVIOUS)
    if previous is not None and previous.version_id != current.version_id:
        peppers.append((previous.version_id, pepper_bytes(previous)))
    return peppers


def pepper_bytes(version: SecretVersion) -> bytes:
    value = version.value.strip()
    if value.startswith("{"):
        value = str(version.fields("pepper")["pepper"])
    if len(value) < 32:
        raise MalformedSecret(f"secret {version.name!r} version {version.version_id}: the pepper must be "
                              "at least 32 characters")
    return value.encode()
