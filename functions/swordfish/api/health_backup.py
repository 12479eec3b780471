"""Deep health's ``backup`` component: the recovery point promised, measured.

WAL archiving can stop (the archive not writable, the receiver dead) while mail flows and every
other check passes; a base backup can be missing or old; nobody may have verified the archive in
weeks. Three measurements, from ``HealthDependencies.backup_status`` (locally the repository's own
files, ``backup/status.py``):

- ``archiveLag``: now minus until when the archive holds the WAL: fail past the RPO target
  (``backup_rpo_seconds``), warn past half of it; fail when nothing was ever archived or the WAL
  receiver is not running;
- ``baseBackupAge``: the newest usable base backup: fail when there is none or it is older than
  three schedule periods, warn past one and a half (a missed backup);
- ``lastVerify``: the last ``swordfish backup verify``: fail when it found problems, warn when it
  never ran or is older than ``backup_verify_max_age_seconds``.

The component is not critical (mail still gets verdicts) but fails on its own, so the canary's
``ComponentStatus{component=backup}`` reaches 2 and the ``BackupFailing`` alarm fires.
"""

from __future__ import annotations

from datetime import UTC, datetime

from swordfish.api.health_model import FAIL, PASS, WARN, ComponentResult, HealthDependencies, Measurement


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 1)


def evaluate_backup(status: dict, now: datetime, *, rpo_seconds: float, schedule_seconds: float,
                    verify_max_age_seconds: float) -> ComponentResult:
    lag = _age(now, status.get("archived_until"))
    if lag is None:
        lag_status, lag_output = FAIL, "no WAL archived yet: nothing to restore to"
    elif status.get("receiver_alive") is False:  # syncs still run, but nothing new reaches them
        lag_status, lag_output = FAIL, "the WAL receiver is not running: nothing new is archived"
    else:
        lag_status = FAIL if lag > rpo_seconds else WARN if lag > rpo_seconds / 2 else PASS
        lag_output = None if lag_status == PASS else (
            f"the WAL archive is {lag:.0f} s behind (RPO target {rpo_seconds:g} s)")
    backup_age = _age(now, status.get("last_base_backup_at"))
    if backup_age is None:
        backup_status, backup_output = FAIL, "no usable base backup"
    else:
        backup_status = (FAIL if backup_age > 3 * schedule_seconds else
                         WARN if backup_age > 1.5 * schedule_seconds else PASS)
        backup_output = None if backup_status == PASS else (
            f"the newest usable base backup is {backup_age / 3600:.1f} h old (one every {schedule_seconds / 3600:g} h)")
    verify_age = _age(now, status.get("last_verify_at"))
    if status.get("last_verify_ok") is False:
        verify_status = FAIL
        verify_output = f"the last verification found {status.get('last_verify_problems', '?')} problem(s)"
    elif verify_age is None:
        verify_status, verify_output = WARN, "never verified: run `swordfish backup verify`"
    elif verify_age > verify_max_age_seconds:
        verify_status, verify_output = WARN, f"last verified {verify_age / 86400:.1f} days ago"
    else:
        verify_status, verify_output = PASS, None
    return ComponentResult("backup", [
        Measurement("archiveLag", lag, "s", lag_status, lag_output),
        Measurement("baseBackupAge", backup_age, "s", backup_status, backup_output),
        Measurement("lastVerify", verify_age, "s", verify_status, verify_output),
    ])


def check_backup(deps: HealthDependencies) -> ComponentResult:
    now = deps.wall_clock() if deps.wall_clock is not None else datetime.now(UTC)
    return evaluate_backup(deps.backup_status(), now, rpo_seconds=deps.backup_rpo_seconds,
                           schedule_seconds=deps.backup_schedule_seconds,
                           verify_max_age_seconds=deps.backup_verify_max_age_seconds)
