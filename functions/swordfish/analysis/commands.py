"""`swordfish analyze PATH...`: run the analysis engine over files, folders and mbox files."""

from __future__ import annotations

import argparse
import json
import mailbox
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from . import analyze
from .models import TenantPolicy

# Files in a folder that are documentation, policies or feed samples rather than mail; a file named
# explicitly on the command line is always analysed.
_NOT_MAIL_SUFFIXES = frozenset({".md", ".json", ".csv", ".py", ".yaml", ".yml"})
_HEADER_LINE = re.compile(rb"(From |[A-Za-z0-9-]{1,76}:(?!//))")


def _looks_like_mail(path: Path) -> bool:
    """.txt files in a folder are mail only when they start with a header line (feed dumps do not)."""
    try:
        with path.open("rb") as fh:
            return bool(_HEADER_LINE.match(fh.read(80)))
    except OSError:
        return False


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyse mail files, folders (recursively) or mbox files; one JSON object per message",
        description="Analyse mail without the pipeline: prints one JSON object per message with its "
        "source, verdict, score, reasons and parse problems.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", type=Path, help="a mail file, folder or mbox")
    parser.add_argument("--policy", type=Path, metavar="FILE", help="tenant policy as JSON (TenantPolicy)")
    parser.add_argument("--experimental", action="append", default=[], metavar="DETECTOR",
                        help="also run an experimental detector (repeatable)")
    parser.set_defaults(func=run)


def _is_mbox(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def iter_messages(path: Path) -> Iterator[tuple[dict, bytes]]:
    """(source, raw bytes) for every message under `path`, in a stable order."""
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if child.name.startswith(".") or child.name.upper().startswith(("LICENSE", "README")) or \
                    child.suffix.lower() in _NOT_MAIL_SUFFIXES or \
                    (child.suffix.lower() == ".txt" and not _looks_like_mail(child)):
                continue
            yield from iter_messages(child)
        return
    if _is_mbox(path):
        box = mailbox.mbox(str(path), create=False)
        try:
            for index, key in enumerate(box.iterkeys()):
                yield {"path": str(path), "index": index}, box.get_bytes(key)
        finally:
            box.close()
        return
    yield {"path": str(path)}, path.read_bytes()


def _load_policy(path: Path | None) -> TenantPolicy:
    if path is None:
        return TenantPolicy()
    try:
        return TenantPolicy.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise SystemExit(f"swordfish analyze: cannot read policy file {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise SystemExit(f"swordfish analyze: {path} is not a valid tenant policy:\n{exc}") from exc


def run(args: argparse.Namespace) -> int:
    policy = _load_policy(args.policy)
    experimental = frozenset(args.experimental)
    status = 0
    for path in args.paths:
        if not path.exists():
            print(f"swordfish analyze: {path}: no such file or folder", file=sys.stderr)
            status = 2
            continue
        try:
            for source, raw in iter_messages(path):
                verdict = analyze(raw, policy, experimental=experimental)
                out = {"source": source, **verdict.model_dump(mode="json")}
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        except OSError as exc:
            print(f"swordfish analyze: {path}: {exc.strerror or exc}", file=sys.stderr)
            status = 2
    sys.stdout.flush()
    return status
