"""Assemble the labelled development corpus into corpus/raw/ (git-ignored) from public sources.

The raw messages are not committed (they are other people's mail, fetched from public archives);
what is committed is `corpus/features.jsonl.gz` (made from them by scripts/corpus_features.py) and
`corpus/corpus.md` (sources, licences, counts, dates). `make fit` and `make eval` need only those.

Sources (see corpus/corpus.md for licences):
  --list NAME=GITDIR   a public-inbox v2 mailing-list mirror (one message per commit, file `m`), legitimate
  --spam-tarball PATH  a SpamAssassin public-corpus tarball (spam_2), spam (a truncated file is read as far
                       as it goes)
  ../shared/corpus and samples/ are always read (legitimate, spam, phishing, malware by folder).

Sampling is deterministic: every k-th commit of a list, so the same mirrors give the same corpus.
Usage: python scripts/corpus_build.py --list usrp=/path/repo --list kasan=/path/repo --per-list 2000 \
           --spam-tarball 20050311_spam_2.tar.bz2
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from email.utils import parsedate_to_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "corpus" / "raw"
SHARED = REPO.parent / "shared" / "corpus"

# Files of samples/ and the shared corpus by the set they belong to (the folder says what they are).
_SAMPLE_SETS = {
    "legit-samples": ["samples/spamassassin/nice", "shared:spamassassin-t-data/nice",
                      "samples/swordfish/clean-*", "samples/mailboxes/demo-m365/*clean*"],
    "spam-samples": ["samples/spamassassin/spam", "shared:spamassassin-t-data/spam"],
    "phishing-samples": ["samples/sublime", "shared:sublime-emls", "samples/mailboxes/demo-m365/*phish*",
                         "samples/swordfish/m365-*", "samples/swordfish/qr-*", "samples/swordfish/bec-*",
                         "samples/swordfish/vendor-*"],
    "malware-samples": ["samples/swordfish/html-smuggling-*", "samples/swordfish/invoice-double-*"],
}
_SKIP = (".md", ".json", ".csv", ".txt")
# Messages of the shared SpamAssassin spam folder that are malware rather than spam (Office macros).
_MALWARE_HINTS = ("olevbmacro", "macro")


def _is_mail(path: Path) -> bool:
    return path.is_file() and not path.name.upper().startswith(("LICENSE", "README")) and \
        path.suffix.lower() not in _SKIP


def _sample_files(pattern: str) -> list[Path]:
    base = SHARED if pattern.startswith("shared:") else REPO
    pattern = pattern.removeprefix("shared:")
    if "*" in pattern:
        folder, glob = pattern.rsplit("/", 1)
        return sorted(p for p in (base / folder).glob(glob) if _is_mail(p))
    root = base / pattern
    return sorted(p for p in root.rglob("*") if _is_mail(p)) if root.exists() else []


def _date(raw: bytes) -> str | None:
    head = raw[:20000].split(b"\n\n", 1)[0].decode("latin-1", "replace")
    for line in head.splitlines():
        if line.lower().startswith("date:"):
            try:
                return parsedate_to_datetime(line[5:].strip()).date().isoformat()
            except (TypeError, ValueError, IndexError):
                return None
    return None


def _list_messages(gitdir: Path, count: int) -> list[bytes]:
    """Every k-th message of a public-inbox v2 epoch, oldest first."""
    commits = subprocess.run(["git", "--git-dir", str(gitdir), "rev-list", "--reverse", "HEAD"],
                             check=True, capture_output=True, text=True).stdout.split()
    step = max(1, len(commits) // count)
    chosen = commits[::step][:count]
    batch = "".join(f"{c}:m\n" for c in chosen).encode()
    out = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "--batch"], input=batch,
                         check=True, capture_output=True).stdout
    messages = []
    pos = 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue  # a commit that deleted a message has no `m`
        size = int(header[2])
        messages.append(out[pos:pos + size])
        pos += size + 1
    return messages


def _tarball_messages(path: Path) -> list[bytes]:
    data = path.read_bytes()
    # Decompress as far as the stream goes: a truncated copy still yields its complete members.
    decomp = bz2.BZ2Decompressor()
    plain = bytearray()
    try:
        for i in range(0, len(data), 65536):
            plain += decomp.decompress(data[i:i + 65536])
    except (OSError, EOFError):
        pass
    messages = []
    try:
        with tarfile.open(fileobj=io.BytesIO(bytes(plain)), mode="r:") as tar:
            for member in tar:
                if not member.isfile() or member.name.endswith("cmds"):
                    continue
                fh = tar.extractfile(member)
                body = fh.read() if fh else b""
                if len(body) == member.size:
                    messages.append(body)
    except (tarfile.ReadError, EOFError, OSError):
        pass
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="append", default=[], metavar="NAME=GITDIR")
    parser.add_argument("--per-list", type=int, default=2000)
    parser.add_argument("--spam-tarball", type=Path)
    args = parser.parse_args(argv)

    sets: dict[str, list[bytes]] = {}
    for name, patterns in _SAMPLE_SETS.items():
        for pattern in patterns:
            for path in _sample_files(pattern):
                raw = path.read_bytes()
                target = name
                if name == "spam-samples" and any(h in path.name for h in _MALWARE_HINTS):
                    target = "malware-samples"
                sets.setdefault(target, []).append(raw)
    for spec in args.list:
        name, _, gitdir = spec.partition("=")
        sets[f"legit-list-{name}"] = _list_messages(Path(gitdir), args.per_list)
    if args.spam_tarball:
        sets["spam-sa-2003"] = _tarball_messages(args.spam_tarball)

    manifest: dict[str, dict] = {}
    seen: set[str] = set()
    for name in sorted(sets):
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        dates = []
        kept = 0
        for raw in sets[name]:
            digest = hashlib.sha256(raw).hexdigest()
            if digest in seen:
                continue  # samples/ copies files of the shared corpus
            seen.add(digest)
            (folder / f"{digest[:16]}.eml").write_bytes(raw)
            kept += 1
            d = _date(raw)
            if d:
                dates.append(d)
        dates.sort()
        manifest[name] = {"messages": kept, "first_date": dates[0] if dates else None,
                          "last_date": dates[-1] if dates else None}
        print(f"{name}: {kept} messages, {manifest[name]['first_date']} .. {manifest[name]['last_date']}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
