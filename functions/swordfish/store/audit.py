"""The one audit trail: ``console_audit`` (append-only), written by the console, the CLI and the API.

Here, below the console, so operator commands (``swordfish tenants ...``) record their changes in the
same table as the console's clicks. A CLI row's actor is the operator (``security.operator``), its
role ``cli``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from swordfish.store.storable import storable_json, storable_text

CLI_ROLE = "cli"


def record(conn: psycopg.Connection, *, actor: str, actor_role: str | None, action: str,
           tenant_id: str | None = None, object_type: str | None = None, object_id: str | None = None,
           outcome: str = "ok", before: Any = None, after: Any = None, source_ip: str | None = None,
           request_id: str | None = None) -> None:
    conn.execute(
        "INSERT INTO console_audit (actor, actor_role, action, tenant_id, object_type, object_id, outcome, "
        "before, after, source_ip, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (storable_text(actor, 254) or "anonymous", actor_role, action, tenant_id, object_type,
         storable_text(object_id, 512), outcome,
         Jsonb(storable_json(before)) if before is not None else None,
         Jsonb(storable_json(after)) if after is not None else None, source_ip, request_id))
