"""`swordfish submit PATH... --tenant T`: send mail to the running stack's emails queue.

stdout carries one line per file (which file got which id, or its verdict with ``--wait``); what
was skipped, refused or logged goes to stderr. Exit codes: 0 all queued (and judged, with
``--wait``), 1 a refusal or a failure (unknown tenant, a send failed, no verdict in time), 2 a usage
error (invalid tenant id, no mail to submit).
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from swordfish.command_errors import CommandError, one_line_errors

# A file in a folder, or named on the command line, is mail when its first line is a header field or
# an mbox "From " line; anything else (LICENSE, a note, a policy) is skipped and said so.
_SKIPPED_NAMES = ("LICENSE", "README", "COPYING")


class SubmitError(CommandError):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message, code)


def iter_mail_files(paths: list[str]):
    """(label, raw bytes) per message; ``(label, None)`` for a file skipped as not mail."""
    from swordfish.analysis.commands import _HEADER_LINE, iter_messages

    for raw_path in paths:
        path = Path(raw_path)
        if not path.exists():
            raise SubmitError(f"{path}: no such file or folder", 2)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.name.startswith(".") or file.name.upper().startswith(_SKIPPED_NAMES):
                yield str(file), None
                continue
            with file.open("rb") as fh:
                head = fh.read(256).lstrip(b"\r\n")
            if not _HEADER_LINE.match(head):
                yield str(file), None
                continue
            for source, raw in iter_messages(file):  # an mbox gives one entry per message
                yield (f"{file}[{source['index']}]" if "index" in source else str(file)), raw


def _tenant_state(tenant_id: str) -> str | None:
    """'active', 'disabled', or None (no such tenant); read as the application role."""
    import psycopg

    from swordfish import wiring
    from swordfish.store.database import proxy_connect
    from swordfish.store.tenants import list_tenants

    url = wiring.database_url()
    if not url:
        raise SubmitError("no database to check the tenant against: set SWORDFISH_DATABASE_URL, or start "
                          "`make serve` (the swordfish command then uses its stack)", 2)
    try:
        with proxy_connect(url, connect_timeout=5) as conn, conn.transaction():
            rows = {row["tenant_id"]: row for row in list_tenants(conn)}
    except psycopg.OperationalError as exc:
        raise SubmitError(f"cannot reach the database: {str(exc).splitlines()[0]}") from None
    row = rows.get(tenant_id)
    return None if row is None else ("disabled" if row["disabled_at"] else "active")


def _existing_verdicts(tenant_id: str, message_ids: list[str]) -> dict[str, dict]:
    import psycopg
    import psycopg.rows

    from swordfish import wiring
    from swordfish.store.database import proxy_connect, set_tenant

    if not message_ids:
        return {}
    with proxy_connect(wiring.database_url(), connect_timeout=5, row_factory=psycopg.rows.dict_row) as conn, \
            conn.transaction():
        set_tenant(conn, tenant_id)
        rows = conn.execute("SELECT message_id, verdict, score, committed_at FROM verdicts WHERE tenant_id = %s "
                            "AND message_id = ANY(%s)", (tenant_id, message_ids)).fetchall()
    return {row["message_id"]: row for row in rows}


def where(tenant_id: str, message_id: str) -> str:
    return f"/console/tenants/{tenant_id}/verdicts/{message_id} (API: GET /v1/tenants/{tenant_id}/verdicts/{message_id})"


@one_line_errors
def cmd_submit(args) -> int:
    from swordfish import wiring
    from swordfish.config import get_settings
    from swordfish.pipeline.submission import MailboxSource, Submission
    from swordfish.pipeline.submitter import message_id_for
    from swordfish.store.tenants import validate_tenant_id

    try:
        validate_tenant_id(args.tenant)
    except ValueError as exc:
        raise SubmitError(str(exc), 2) from None
    settings = get_settings()
    if not settings.emails_queue_url:
        raise SubmitError("no emails queue: set SWORDFISH_EMAILS_QUEUE_URL, or start `make serve` "
                          "(the swordfish command then uses its stack)", 2)
    state = _tenant_state(args.tenant)
    if state is None:
        raise SubmitError(f"unknown tenant {args.tenant!r}: nothing submitted (`swordfish tenants list` shows them)")
    if state == "disabled":
        raise SubmitError(f"tenant {args.tenant!r} is disabled: nothing submitted")
    submitter = wiring.build_submitter(settings)
    labelled: list[tuple[str, str, bytes | None]] = []
    for label, raw in iter_mail_files(args.paths):
        if raw is None:
            print(f"skipped {label}: not a mail message (no header block)", file=sys.stderr)
            continue
        labelled.append((label, message_id_for(raw), raw))
    duplicates = _existing_verdicts(args.tenant, [message_id for _, message_id, _ in labelled])
    submissions, labels = [], {}
    for label, message_id, raw in labelled:
        if message_id in duplicates:
            v = duplicates[message_id]
            print(f"{label}: duplicate of {message_id}, already judged {v['verdict']} ({v['score']:.1f}) at "
                  f"{v['committed_at']:%Y-%m-%d %H:%M:%S} UTC: {where(args.tenant, message_id)}; not queued again")
            continue
        try:
            submissions.append(submitter.build(args.tenant, message_id, raw))
        except ValueError as exc:
            raise SubmitError(f"{label}: {exc}") from None
        labels[message_id] = label
    for reference in args.mailbox:
        connection, _, provider_message_id = reference.partition("/")
        if not connection or not provider_message_id:
            raise SubmitError(f"--mailbox takes CONNECTION/MESSAGE_ID, got {reference!r}", 2)
        message_id = f"mailbox:{reference}:{uuid.uuid4().hex[:8]}"
        submissions.append(Submission(
            tenant_id=args.tenant, message_id=message_id, submitted_at=datetime.now(UTC),
            source=MailboxSource(connection_id=connection, provider_config_key=args.provider,
                                 provider_message_id=provider_message_id)))
        labels[message_id] = f"mailbox {reference}"
    if not submissions:
        if duplicates:
            return 0
        raise SubmitError("nothing to submit: name mail files or folders, or --mailbox references", 2)
    failures, queued = 0, []
    for result in submitter.send(submissions):
        if result.error:
            failures += 1
            print(f"FAILED {labels[result.message_id]} ({result.message_id}): {result.error}", file=sys.stderr)
        else:
            queued.append(result.message_id)
            print(f"{labels[result.message_id]}: queued as {result.message_id}", flush=True)
    if args.wait and queued:
        failures += _wait(args.tenant, queued, labels, args.timeout)
    return 1 if failures else 0


def _wait(tenant_id: str, message_ids: list[str], labels: dict[str, str], timeout: float, *,
          clock=time.monotonic, sleep=time.sleep) -> int:
    """Print each verdict as the pipeline stores it; the number still missing at the timeout."""
    pending, deadline = set(message_ids), clock() + timeout
    while pending:
        for message_id, v in sorted(_existing_verdicts(tenant_id, sorted(pending)).items()):
            pending.discard(message_id)
            print(f"{labels[message_id]}: {v['verdict']} ({v['score']:.1f}): {where(tenant_id, message_id)}",
                  flush=True)
        if not pending or clock() > deadline:
            break
        sleep(0.25)
    for message_id in sorted(pending):
        print(f"no verdict for {labels[message_id]} ({message_id}) after {timeout:.0f} s: is a worker running? "
              "a dead-lettered message says why in `swordfish health` and the DLQ", file=sys.stderr)
    return len(pending)


def _dead_letters():
    from swordfish import wiring
    from swordfish.config import get_settings
    from swordfish.pipeline.queues import DeadLetters

    settings = get_settings()
    if not settings.emails_dlq_url or not settings.emails_queue_url:
        raise SubmitError("no emails queue and DLQ: set SWORDFISH_EMAILS_QUEUE_URL and SWORDFISH_EMAILS_DLQ_URL, "
                          "or start `make serve`", 2)
    return DeadLetters(wiring.aws_client("sqs", settings), dlq_url=settings.emails_dlq_url,
                       queue_url=settings.emails_queue_url)


@one_line_errors
def cmd_dlq(args) -> int:
    import json

    if args.dlq_command == "list":
        rows = _dead_letters().list(args.limit)
        if args.json:
            print(json.dumps(rows, indent=1))
        for row in [] if args.json else rows:
            print(f"{row['id']}  {row['code']:<20} {row['tenant_id'] or '-':<20} {row['message_id'] or '-'}  "
                  f"{row['reason'][:160]}")
        if not args.json:
            print(f"{len(rows)} message(s) in the DLQ" + (" (more not shown)" if len(rows) >= args.limit else ""),
                  file=sys.stderr)
        return 0
    from swordfish import wiring
    from swordfish.security.operator import UnknownOperator, operator_identity
    from swordfish.store.audit import CLI_ROLE, record
    from swordfish.store.database import proxy_connect

    try:
        actor = operator_identity(args.actor)
    except UnknownOperator as exc:
        raise SubmitError(str(exc), 2) from None
    url = wiring.database_url()
    if not url:
        raise SubmitError("no database for the audit trail: set SWORDFISH_DATABASE_URL or start `make serve`", 2)
    done = _dead_letters().act(set(args.ids), args.dlq_command)
    with proxy_connect(url, connect_timeout=5) as conn, conn.transaction():
        for row in done:
            record(conn, actor=actor, actor_role=CLI_ROLE, action=f"dlq.{args.dlq_command}", tenant_id=row["tenant_id"],
                   object_type="dlq_message", object_id=row["message_id"] or row["id"],
                   after={"dlq_id": row["id"], "code": row["code"], "reason": row["reason"][:500],
                          "why": getattr(args, "reason", "") or ""})
    for row in done:
        print(f"{args.dlq_command} {row['id']} ({row['tenant_id'] or '-'} {row['message_id'] or '-'}, {row['code']})")
    missing = set(args.ids) - {row["id"] for row in done}
    for dlq_id in sorted(missing):
        print(f"error: no message {dlq_id} in the DLQ (`swordfish dlq list` shows the ids)", file=sys.stderr)
    return 1 if missing else 0


@one_line_errors
def cmd_response_run(args) -> int:
    """Work off due bulk response items here and now (a job whose queue message was lost, or no
    worker running): the same worker as the Lambda's, its throttle and breaker included."""
    import json

    from swordfish import wiring

    result = wiring.response_worker().run(args.job, max_items=args.max_items)
    print(json.dumps({"outcomes": dict(result.counts),
                      "next_due": result.next_due.isoformat() if result.next_due else None}))
    return 0


def register(subparsers) -> None:
    dlq = subparsers.add_parser("dlq", help="the emails DLQ: list with reasons, redrive or discard (audited)")
    dlq.add_argument("--actor", help="who acts, for the audit trail (default: SWORDFISH_OPERATOR, the login "
                                     "behind sudo, the login name; never root)")
    sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = sub.add_parser("list", help="each message: its DLQ id, failure code, tenant, message id, reason")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    redrive = sub.add_parser("redrive", help="send messages back to the emails queue (verdicts are idempotent)")
    redrive.add_argument("ids", nargs="+", metavar="DLQ_ID")
    discard = sub.add_parser("discard", help="delete messages that cannot succeed, once understood")
    discard.add_argument("ids", nargs="+", metavar="DLQ_ID")
    discard.add_argument("--reason", default="", help="why (recorded in the audit trail)")
    dlq.set_defaults(func=cmd_dlq)

    response = subparsers.add_parser("response", help="bulk response jobs (issue 28)").add_subparsers(
        dest="response_command", required=True)
    run = response.add_parser("run", help="work off the due items now (of one job with --job)")
    run.add_argument("--job", type=int, help="only this job")
    run.add_argument("--max-items", type=int, help="stop after this many items")
    run.set_defaults(func=cmd_response_run)

    submit = subparsers.add_parser("submit", help="send mail files (or mailbox references) to the running stack's queue")
    submit.add_argument("paths", nargs="*", help="mail files or folders (files that are not mail are skipped)")
    submit.add_argument("--mailbox", action="append", default=[], metavar="CONNECTION/MESSAGE_ID",
                        help="a message in a connected mailbox, fetched through Nango (repeatable)")
    submit.add_argument("--provider", default="microsoft", help="Nango provider config key for --mailbox")
    submit.add_argument("--tenant", required=True)
    submit.add_argument("--wait", action="store_true", help="wait for the verdicts and print them")
    submit.add_argument("--timeout", type=float, default=120, help="seconds --wait waits (default 120)")
    submit.set_defaults(func=cmd_submit)
