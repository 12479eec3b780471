"""`swordfish submit PATH... --tenant T`: send mail to the running stack's emails queue."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path


def iter_mail_files(paths: list[str]):
    for raw_path in paths:
        path = Path(raw_path)
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file())
        elif path.is_file():
            yield path
        else:
            raise SystemExit(f"{path}: no such file or folder")


def cmd_submit(args) -> int:
    from swordfish import wiring
    from swordfish.config import get_settings
    from swordfish.pipeline.submission import MailboxSource, Submission
    from swordfish.pipeline.submitter import message_id_for

    settings = get_settings()
    if not settings.emails_queue_url:
        raise SystemExit("no emails queue: set SWORDFISH_EMAILS_QUEUE_URL, or start `make serve` "
                         "(the swordfish command then uses its stack)")
    submitter = wiring.build_submitter(settings)
    submissions = []
    for path in iter_mail_files(args.paths):
        raw = path.read_bytes()
        submissions.append(submitter.build(args.tenant, message_id_for(raw), raw))
    for reference in args.mailbox:
        connection, _, provider_message_id = reference.partition("/")
        if not connection or not provider_message_id:
            raise SystemExit(f"--mailbox takes CONNECTION/MESSAGE_ID, got {reference!r}")
        submissions.append(Submission(
            tenant_id=args.tenant, message_id=f"mailbox:{reference}:{uuid.uuid4().hex[:8]}",
            submitted_at=datetime.now(UTC),
            source=MailboxSource(connection_id=connection, provider_config_key=args.provider,
                                 provider_message_id=provider_message_id)))
    if not submissions:
        raise SystemExit("nothing to submit: name mail files or folders, or --mailbox references")
    failures = 0
    for result in submitter.send(submissions):
        if result.error:
            failures += 1
            print(f"FAILED {result.message_id}: {result.error}", file=sys.stderr)
        else:
            print(f"queued {result.message_id} ({result.queue_message_id})")
    return 1 if failures else 0


def register(subparsers) -> None:
    submit = subparsers.add_parser("submit", help="send mail files (or mailbox references) to the running stack's queue")
    submit.add_argument("paths", nargs="*", help="mail files or folders")
    submit.add_argument("--mailbox", action="append", default=[], metavar="CONNECTION/MESSAGE_ID",
                        help="a message in a connected mailbox, fetched through Nango (repeatable)")
    submit.add_argument("--provider", default="microsoft", help="Nango provider config key for --mailbox")
    submit.add_argument("--tenant", required=True)
    submit.set_defaults(func=cmd_submit)
