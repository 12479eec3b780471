"""Issue 25: the archive's lag comes from what was archived, not from a live receiver.

A SIGSTOPped pg_receivewal is alive (its process exists) but receives nothing; the archiver went on
writing ``archived_until = now`` at every sync, so deep health's archive lag stayed at 1 s while
nothing reached the archive. Stopped here with SIGSTOP (and always continued in a finally).
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

from backup_helpers import archive_now, insert_verdicts
from swordfish.api.health_backup import evaluate_backup


def _archived_until(repository) -> datetime:
    return datetime.fromisoformat(repository.archive_state()["archived_until"])


def test_archive_lag_grows_while_a_stopped_receiver_lives(live_db, repository, archiver):
    insert_verdicts(live_db, "lag-before", 1)
    archive_now(live_db, archiver)
    os.kill(archiver._proc.pid, signal.SIGSTOP)
    try:
        stopped_at = datetime.now(UTC)
        insert_verdicts(live_db, "lag-during", 3)  # WAL the stopped receiver never gets
        archiver.sync()
        archiver.sync()
        assert archiver.receiver_alive  # the process lives: liveness cannot tell
        archived_until = _archived_until(repository)
        assert archived_until <= stopped_at, (
            f"archived_until {archived_until.isoformat()} moved past the receiver's stop at {stopped_at.isoformat()}")
        later = stopped_at + timedelta(seconds=75)
        result = evaluate_backup({"archived_until": archived_until, "receiver_alive": True}, later,
                                 rpo_seconds=60, schedule_seconds=86_400, verify_max_age_seconds=86_400)
        lag = next(m for m in result.measurements if m.name == "archiveLag")
        assert lag.status == "fail" and lag.value >= 75
    finally:
        os.kill(archiver._proc.pid, signal.SIGCONT)
    # Received again: archived to now, the rows written while it was stopped included.
    archive_now(live_db, archiver)
    assert _archived_until(repository) > stopped_at


def test_an_idle_server_that_is_fully_archived_has_no_lag(live_db, repository, archiver):
    """Nothing written and everything received: the archive holds the server's WAL up to now."""
    archive_now(live_db, archiver)
    before = datetime.now(UTC)
    archiver.sync()
    assert _archived_until(repository) >= before
