"""What deep health reads about the backups of the embedded stack: from the repository's own files,
so any process (the API, the canary, the console) can read it without the archiver's memory.

- ``wal/archive_state.json`` (written by every successful WAL sync): until when the archive holds
  the server's WAL, and whether pg_receivewal was running;
- the newest usable base backup's finish time (``base/<id>/backup.json``);
- ``verify_state.json`` (written by ``swordfish backup verify``): when the last verification ran
  and whether it passed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from swordfish.backup.repository import ARCHIVE_STATE, Repository

VERIFY_STATE = "verify_state.json"


def _time(value) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def repository_status(root: Path) -> dict:
    """The status of the newest cluster repository under ``root`` (the one being archived into)."""
    root = Path(root)
    clusters = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime) \
        if root.exists() else []
    if not clusters:
        return {"repository": str(root), "archived_until": None, "receiver_alive": None,
                "last_base_backup_at": None, "last_verify_at": None, "last_verify_ok": None}
    repository = Repository(clusters[-1])
    archive = _json(repository.wal_dir / ARCHIVE_STATE)
    usable = repository.usable_backups()
    verify = _json(repository.root / VERIFY_STATE)
    return {
        "repository": str(repository.root),
        "archived_until": _time(archive.get("archived_until")),
        "receiver_alive": archive.get("receiver_alive"),
        "last_base_backup_at": usable[-1].finished if usable else None,
        "last_verify_at": _time(verify.get("verified_at")),
        "last_verify_ok": verify.get("ok"),
        "last_verify_problems": len(verify.get("problems") or []),
    }


def record_verification(repository: Repository, result: dict, at: datetime) -> None:
    repository.write_json(repository.root / VERIFY_STATE, {"verified_at": at.isoformat(), "ok": bool(result["ok"]),
                                                           "problems": list(result.get("problems") or [])[:20]})
