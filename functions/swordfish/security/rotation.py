"""Rotation of our secrets: the four Secrets Manager steps, each idempotent.

Secrets Manager calls the rotation function four times per rotation with the same
``ClientRequestToken`` (the new version's id): ``createSecret`` (store a new value as AWSPENDING),
``setSecret`` (make the outside world accept it), ``testSecret`` (prove it works), ``finishSecret``
(move AWSCURRENT to it; the old version becomes AWSPREVIOUS). Any step may be retried, so each one
first checks whether its work is already done.

Two kinds of secret:

- database logins (``swordfish/db/app``, ``swordfish/db/admin``): alternating users, as AWS's
  ``PostgreSQLMultiUser`` rotation does it. The pending version names the *other* role of the pair
  (``swordfish_app`` <-> ``swordfish_app_clone``) with a new password, set as the master user; the
  role in AWSCURRENT keeps its password, so every worker still logging in with it keeps working until
  the next rotation, long after it has moved. The clone is a member of the base role (same grants,
  never BYPASSRLS); ``testSecret`` checks that too.
- the API-key pepper: a new random value; nothing to set outside; after ``finishSecret`` both the
  new (AWSCURRENT) and the old (AWSPREVIOUS) pepper are accepted (``secrets.api_key_peppers``).

On AWS, Secrets Manager drives the steps (``handlers/rotate_secret.py``); locally, where moto would
need Docker to invoke a Lambda, ``rotate_now`` drives the same steps in-process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from swordfish import constants
from swordfish.monitoring.observability import logger
from swordfish.security.secrets import AWSCURRENT, AWSPENDING, MalformedSecret, SecretError
from swordfish.store.migrate import set_role_timeouts

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Characters that break DSNs or shell quoting (the same set the CDK uses for generated passwords).
PASSWORD_EXCLUDE = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"
CLONE_SUFFIX = "_clone"
# An AWSPENDING version younger than this belongs to a rotation still running: refuse to start another.
PENDING_IN_PROGRESS = timedelta(minutes=15)
DATABASE_SECRETS = (constants.DB_APP_SECRET_NAME, constants.DB_ADMIN_SECRET_NAME)
PEPPER_SECRETS = (constants.API_KEY_PEPPER_SECRET_NAME,)


class RotationError(SecretError):
    """A rotation step failed; AWSCURRENT is untouched and keeps working."""


class RotationInProgress(RotationError):
    pass


class RotationSuperseded(RotationError):
    """Another rotation took the AWSPENDING label from this one."""


class RotationTestFailed(RotationError):
    pass


def kind_of(name: str) -> str:
    if name in DATABASE_SECRETS:
        return "database"
    if name in PEPPER_SECRETS:
        return "pepper"
    raise RotationError(f"secret {name!r} is not rotated by Swordfish (Nango and Sentry secrets are issued "
                        "by those services: paste the new value with `aws secretsmanager put-secret-value`)")


class Rotator:
    """The steps for one Secrets Manager client. ``connect`` opens a PostgreSQL connection from a
    conninfo string (tests inject timeouts); ``master_secret`` names the superuser's secret when the
    database secret has no ``masterarn`` (locally)."""

    def __init__(self, client, *, master_secret: str = constants.DB_MASTER_SECRET_NAME,
                 sslmode: str | None = "require", connect: Callable[..., psycopg.Connection] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.client = client
        self.master_secret = master_secret
        self.sslmode = sslmode
        self.connect = connect or (lambda conninfo: psycopg.connect(conninfo, connect_timeout=5, autocommit=True))
        self.now = now

    # --- the entry point the Lambda handler calls ------------------------------------------------

    def step(self, secret_id: str, token: str, step: str) -> None:
        if step not in STEPS:
            raise RotationError(f"unknown rotation step {step!r}: expected one of {', '.join(STEPS)}")
        metadata = self.client.describe_secret(SecretId=secret_id)
        name = metadata["Name"]
        versions = metadata.get("VersionIdsToStages", {})
        if token in versions:
            if AWSCURRENT in versions[token]:
                logger.info("rotation step: version already current", extra={"secret": name, "step": step})
                return
            if AWSPENDING not in versions[token]:
                raise RotationSuperseded(f"secret {name!r}: version {token} is no longer AWSPENDING: another "
                                         "rotation took over; AWSCURRENT is unchanged")
        elif step != "createSecret":
            raise RotationError(f"secret {name!r}: version {token} does not exist; start at createSecret")
        kind = kind_of(name)
        logger.info("rotation step", extra={"secret": name, "step": step, "version_id": token, "kind": kind})
        getattr(self, f"_{step}")(name, token, kind)

    # --- createSecret ----------------------------------------------------------------------------

    def _createSecret(self, name: str, token: str, kind: str) -> None:  # noqa: N802 (AWS's step names)
        if self._pending(name, token) is not None:
            return  # this step already ran
        self._refuse_if_other_rotation_running(name, token)
        current = self._value(name, AWSCURRENT)
        if kind == "database":
            data = _json(name, current, "username", "password")
            data["username"] = _other_user(data["username"])
            data["password"] = self._random_password()
            value = json.dumps(data)
        else:
            value = self.client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
        self.client.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString=value,
                                     VersionStages=[AWSPENDING])

    def _refuse_if_other_rotation_running(self, name: str, token: str) -> None:
        for version in self.client.list_secret_version_ids(SecretId=name).get("Versions", []):
            if AWSPENDING in version.get("VersionStages", []) and version["VersionId"] != token:
                created = version.get("CreatedDate")
                if created is not None and self.now() - created < PENDING_IN_PROGRESS:
                    raise RotationInProgress(
                        f"secret {name!r}: a rotation is already in progress (pending version "
                        f"{version['VersionId']}, started {created.isoformat()}); wait for it to finish")

    # --- setSecret -------------------------------------------------------------------------------

    def _setSecret(self, name: str, token: str, kind: str) -> None:  # noqa: N802
        if kind != "database":
            return  # a pepper lives only in the secret
        pending = _json(name, self._pending_required(name, token), "username", "password")
        current = _json(name, self._value(name, AWSCURRENT), "username", "password")
        base = _base_user(current["username"])
        if _base_user(pending["username"]) != base:
            raise RotationError(f"secret {name!r}: pending user {pending['username']!r} is not {base!r} or its clone")
        if pending.get("host") != current.get("host"):
            raise RotationError(f"secret {name!r}: the pending version changes the host; refusing")
        if self._can_log_in(pending):
            return  # this step already ran
        master = _json(self.master_secret, self._master_value(current), "username")
        with self.connect(self._conninfo(master, current)) as conn:
            role = pending["username"]
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                # The clone: a member of the base role (its grants), never superuser or BYPASSRLS.
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS INHERIT IN ROLE {}").format(
                    sql.Identifier(role), sql.Identifier(base)))
                set_role_timeouts(conn, role)  # role settings are not inherited: the proxy refuses options
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(pending["password"])))

    # --- testSecret ------------------------------------------------------------------------------

    def _testSecret(self, name: str, token: str, kind: str) -> None:  # noqa: N802
        pending = self._pending_required(name, token)
        if kind == "pepper":
            if len(pending.strip()) < 32:
                raise RotationTestFailed(f"secret {name!r}: the pending pepper is shorter than 32 characters")
            return
        data = _json(name, pending, "username", "password")
        try:
            with self.connect(self._conninfo(data, data)) as conn:
                row = conn.execute("SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_roles r "
                                   "WHERE r.rolname = current_user").fetchone()
        except psycopg.Error as exc:
            raise RotationTestFailed(f"secret {name!r}: the pending version cannot log in as "
                                     f"{data['username']!r} ({_first_line(exc)}); AWSCURRENT is unchanged") from None
        if row is None or row[0] != data["username"]:
            raise RotationTestFailed(f"secret {name!r}: logged in as {row and row[0]!r}, not {data['username']!r}")
        if name == constants.DB_APP_SECRET_NAME and (row[1] or row[2]):
            raise RotationTestFailed(f"secret {name!r}: role {row[0]!r} is superuser or bypasses row-level "
                                     "security; the application role must do neither")

    # --- finishSecret ----------------------------------------------------------------------------

    def _finishSecret(self, name: str, token: str, kind: str) -> None:  # noqa: N802
        versions = self.client.describe_secret(SecretId=name).get("VersionIdsToStages", {})
        current = next((v for v, stages in versions.items() if AWSCURRENT in stages), None)
        if current == token:
            return
        self.client.update_secret_version_stage(SecretId=name, VersionStage=AWSCURRENT,
                                                MoveToVersionId=token, RemoveFromVersionId=current)
        # Secrets Manager moves AWSPREVIOUS to the old version itself; AWSPENDING is cleared here so
        # the next rotation does not mistake it for one in progress.
        self.client.update_secret_version_stage(SecretId=name, VersionStage=AWSPENDING, RemoveFromVersionId=token)
        logger.info("rotation finished", extra={"secret": name, "new_version_id": token, "old_version_id": current})

    # --- helpers ---------------------------------------------------------------------------------

    def _value(self, name: str, stage: str) -> str:
        return self.client.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]

    def _pending(self, name: str, token: str) -> str | None:
        try:
            return self.client.get_secret_value(SecretId=name, VersionId=token,
                                                VersionStage=AWSPENDING)["SecretString"]
        except self.client.exceptions.ResourceNotFoundException:
            return None
        except self.client.exceptions.InvalidRequestException:  # the version exists, no longer AWSPENDING
            raise RotationSuperseded(f"secret {name!r}: version {token} is no longer AWSPENDING: another "
                                     "rotation took over; AWSCURRENT is unchanged") from None

    def _pending_required(self, name: str, token: str) -> str:
        value = self._pending(name, token)
        if value is None:
            raise RotationError(f"secret {name!r}: version {token} has no AWSPENDING value; run createSecret")
        return value

    def _master_value(self, current: dict) -> str:
        return self._value(current.get("masterarn") or self.master_secret, AWSCURRENT)

    def _random_password(self) -> str:
        return self.client.get_random_password(PasswordLength=32, ExcludeCharacters=PASSWORD_EXCLUDE)["RandomPassword"]

    def _conninfo(self, login: dict, where: dict) -> str:
        params = {"host": where.get("host"), "port": where.get("port") or 5432,
                  "dbname": where.get("dbname") or constants.DATABASE_NAME,
                  "user": login["username"], "password": login.get("password") or None}
        if self.sslmode:
            params["sslmode"] = self.sslmode
        return make_conninfo("", **{k: v for k, v in params.items() if v not in (None, "")})

    def _can_log_in(self, data: dict) -> bool:
        try:
            with self.connect(self._conninfo(data, data)):
                return True
        except psycopg.Error:
            return False


def rotate_now(rotator: Rotator, name: str, token: str | None = None) -> str:
    """Run the four steps in-process (locally; on AWS ``aws secretsmanager rotate-secret`` does this).
    Returns the new version id. A failed step removes its AWSPENDING label and re-raises."""
    kind_of(name)
    token = token or str(uuid.uuid4())
    try:
        for step in STEPS:
            rotator.step(name, token, step)
    except RotationInProgress:
        raise
    except Exception:
        try:
            versions = rotator.client.describe_secret(SecretId=name).get("VersionIdsToStages", {})
            if AWSPENDING in versions.get(token, []):
                rotator.client.update_secret_version_stage(SecretId=name, VersionStage=AWSPENDING,
                                                           RemoveFromVersionId=token)
        except Exception:
            logger.exception("could not clear the failed rotation's AWSPENDING label", extra={"secret": name})
        raise
    return token


def _json(name: str, value: str, *required: str) -> dict:
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        raise MalformedSecret(f"secret {name!r} is not a JSON object") from None
    if not isinstance(data, dict):
        raise MalformedSecret(f"secret {name!r} is not a JSON object")
    missing = [f for f in required if not data.get(f)]
    if missing:
        raise MalformedSecret(f"secret {name!r} lacks {', '.join(missing)}")
    return data


def _base_user(username: str) -> str:
    return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username


def _other_user(username: str) -> str:
    return _base_user(username) if username.endswith(CLONE_SUFFIX) else username + CLONE_SUFFIX


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
