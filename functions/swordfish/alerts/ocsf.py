"""Verdicts and the audit trail as OCSF events (Open Cybersecurity Schema Framework 1.5.0), for SIEMs.

A verdict is an **Email Activity** event (class_uid 4009, category 4 Network Activity), activity
*Scan* (3): Swordfish scanned the message and decided; the verdict maps to ``severity_id`` and to
the security-control profile's ``disposition_id`` (clean: Allowed; spam and suspicious: Tagged;
phishing and malware: Detected). The ``email`` object carries what the verdict stores (the sender,
the subject, our message id; the recipients and the header Message-ID once the verdict has them).
What OCSF has no attribute for (the score, each reason) goes to ``unmapped``.

An audit row is not mail: it is an **API Activity** event (class_uid 6003, category 6 Application
Activity): who (``actor``), what (``api.operation``: our action name), from where
(``src_endpoint``), on which tenant (``metadata.tenant_uid``), with the outcome as ``status_id``.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from typing import Any

OCSF_VERSION = "1.5.0"
PRODUCT = {"name": "Swordfish", "vendor_name": "Swordfish"}

EMAIL_ACTIVITY, NETWORK_ACTIVITY, SCAN = 4009, 4, 3
API_ACTIVITY, APPLICATION_ACTIVITY = 6003, 6
# severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical
SEVERITY = {"clean": (1, "Informational"), "spam": (2, "Low"), "suspicious": (3, "Medium"),
            "phishing": (4, "High"), "malware": (5, "Critical")}
# disposition_id (security_control profile): 1 Allowed, 15 Detected, 18 Tagged
DISPOSITION = {"clean": (1, "Allowed"), "spam": (18, "Tagged"), "suspicious": (18, "Tagged"),
               "phishing": (15, "Detected"), "malware": (15, "Detected")}
API_ACTIVITIES = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
STATUS = {"ok": (1, "Success"), "refused": (2, "Failure"), "failed": (2, "Failure")}


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _address(value: str | None) -> str:
    address = parseaddr(value or "")[1]
    return address or (value or "").strip()[:320] or "unknown"


def verdict_event(row: dict[str, Any], *, release: str = "unknown") -> dict:
    """One stored verdict (a ``verdicts`` row) as an OCSF Email Activity: Scan event."""
    verdict = row["verdict"]
    severity_id, severity = SEVERITY.get(verdict, (0, "Unknown"))
    disposition_id, disposition = DISPOSITION.get(verdict, (0, "Unknown"))
    recipients = [str(r) for r in (row.get("recipients") or row.get("envelope_recipients") or [])]
    email = {"uid": row["message_id"], "from": _address(row.get("sender")), "to": recipients,
             "subject": row.get("subject") or ""}
    if row.get("header_message_id"):
        email["message_uid"] = row["header_message_id"]
    if row.get("reply_to"):
        email["reply_to"] = _address(row["reply_to"])
    return {
        "class_uid": EMAIL_ACTIVITY, "class_name": "Email Activity",
        "category_uid": NETWORK_ACTIVITY, "category_name": "Network Activity",
        "activity_id": SCAN, "activity_name": "Scan",
        "type_uid": EMAIL_ACTIVITY * 100 + SCAN, "type_name": "Email Activity: Scan",
        "time": _ms(row["committed_at"]),
        "severity_id": severity_id, "severity": severity,
        "status_id": 1, "status": "Success",
        "direction_id": 1, "direction": "Inbound",
        "disposition_id": disposition_id, "disposition": disposition,
        "message": f"{verdict} (score {float(row['score']):.2f})",
        "email": email,
        "metadata": {"version": OCSF_VERSION, "product": PRODUCT | {"version": release},
                     "uid": f"{row['tenant_id']}/{row['message_id']}", "tenant_uid": row["tenant_id"],
                     "correlation_uid": row.get("correlation_id"), "logged_time": _ms(row["committed_at"]),
                     "profiles": ["security_control"]},
        "unmapped": {"verdict": verdict, "score": float(row["score"]),
                     "reasons": [{"name": r.get("name"), "weight": r.get("weight")} for r in row.get("reasons") or []],
                     "degraded": bool(row.get("degraded")),
                     "submitted_at": row["submitted_at"].isoformat() if row.get("submitted_at") else None},
    }


def _api_activity(action: str) -> int:
    verb = action.rsplit(".", 1)[-1]
    if verb in ("add", "create", "invite", "enrolled", "set"):
        return 1
    if verb in ("remove", "disable", "delete", "revoke", "discard"):
        return 4
    if verb in ("view", "read", "list", "export"):
        return 2
    if action.startswith(("login", "logout", "csrf", "access", "tenant.refused")):
        return 99
    return 3


def audit_event(row: dict[str, Any], *, release: str = "unknown") -> dict:
    """One ``console_audit`` row as an OCSF API Activity event."""
    activity_id = _api_activity(row["action"])
    status_id, status = STATUS.get(row.get("outcome") or "ok", (0, "Unknown"))
    user = {"name": row["actor"]}
    if "@" in row["actor"]:
        user["email_addr"] = row["actor"]
    actor = {"user": user}
    if row.get("actor_role"):
        actor["user"]["type"] = row["actor_role"]
    event = {
        "class_uid": API_ACTIVITY, "class_name": "API Activity",
        "category_uid": APPLICATION_ACTIVITY, "category_name": "Application Activity",
        "activity_id": activity_id, "activity_name": API_ACTIVITIES[activity_id],
        "type_uid": API_ACTIVITY * 100 + activity_id, "type_name": f"API Activity: {API_ACTIVITIES[activity_id]}",
        "time": _ms(row["at"]), "severity_id": 1 if status_id == 1 else 3,
        "severity": "Informational" if status_id == 1 else "Medium",
        "status_id": status_id, "status": status,
        "actor": actor,
        "api": {"operation": row["action"], "service": {"name": "swordfish-console"},
                **({"request": {"uid": row["request_id"]}} if row.get("request_id") else {})},
        "src_endpoint": {"ip": row["source_ip"]} if _is_ip(row.get("source_ip")) else
        {"hostname": row.get("source_ip") or "unknown"},
        "metadata": {"version": OCSF_VERSION, "product": PRODUCT | {"version": release},
                     "uid": f"audit/{row['audit_id']}", "logged_time": _ms(row["at"])},
        "unmapped": {"object_type": row.get("object_type"), "object_id": row.get("object_id"),
                     "before": row.get("before"), "after": row.get("after")},
    }
    if row.get("tenant_id"):
        event["metadata"]["tenant_uid"] = row["tenant_id"]
    if row.get("object_type"):
        event["resources"] = [{"type": row["object_type"], "uid": row.get("object_id") or ""}]
    return event


def _is_ip(value: str | None) -> bool:
    from ipaddress import ip_address

    try:
        ip_address(value or "")
    except ValueError:
        return False
    return True
