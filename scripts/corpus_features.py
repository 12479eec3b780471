"""Turn the development corpus (corpus/raw/, from scripts/corpus_build.py) into the committed training
data corpus/features.jsonl.gz: one line per message with its set, its label and the values of the
learnable signals the engine found in it, and
its content-model tokens. `make fit` and `make eval` read only this file, so they run
offline on a fresh clone; rerun this (`make features`) after changing a detector.

The label is the set's prefix: legit-, spam-, phishing-, malware-. Signals are computed under the
default tenant policy (no tenant domains, VIPs or lists: those signals keep their prior weights).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

from swordfish.analysis import TenantPolicy, parse_message
from swordfish.analysis.budget import AnalysisBudget
from swordfish.analysis.content import MIN_DF
from swordfish.analysis.content import SIGNALS as CONTENT_SIGNALS
from swordfish.analysis.scoring import EXPERIMENTAL_DETECTORS, collect_signals, message_tokens, signal_values
from swordfish.analysis.weights import CATALOG

REPO = Path(__file__).resolve().parent.parent
RAW = REPO / "corpus" / "raw"
FEATURES = REPO / "corpus" / "features.jsonl.gz"
LABELS = ("legit", "spam", "phishing", "malware")


def label_of(set_name: str) -> str:
    prefix = set_name.split("-", 1)[0]
    if prefix not in LABELS:
        raise ValueError(f"set {set_name!r}: the folder name must start with one of {LABELS}")
    return prefix


def message_rows(raw_root: Path) -> list[dict]:
    policy = TenantPolicy()
    rows = []
    for folder in sorted(p for p in raw_root.iterdir() if p.is_dir()):
        label = label_of(folder.name)
        for path in sorted(folder.iterdir()):
            raw = path.read_bytes()
            # A budget that never runs out: whether a 1 MB message hits the 50 ms CPU budget depends on the
            # machine and its load, so with the default one the features file changed from run to run.
            parsed = parse_message(raw, policy, budget=AnalysisBudget(seconds=float("inf")))
            hits, _ = collect_signals(parsed, policy, None, experimental=EXPERIMENTAL_DETECTORS)
            # The content band is left out: the shipped content model was fitted on these very messages. The
            # fit makes each message's band anew from its tokens, with a model that never saw it.
            values = {n: v for n, v in signal_values(hits).items() if n not in CONTENT_SIGNALS}
            rows.append({"id": hashlib.sha256(raw).hexdigest()[:16], "set": folder.name, "label": label,
                         "bytes": len(raw), "signals": dict(sorted(values.items())),
                         "tokens": sorted(message_tokens(parsed))})
    return rows


def prune_rare_tokens(rows: list[dict]) -> list[dict]:
    """Drop the tokens fewer than MIN_DF messages carry: the fit leaves them out anyway (the same rule),
    and they were most of the file."""
    df = Counter(t for r in rows for t in r["tokens"])
    for r in rows:
        r["tokens"] = [t for t in r["tokens"] if df[t] >= MIN_DF]
    return rows


def write(rows: list[dict], path: Path) -> None:
    header = {"format": "swordfish-features/1",
              "learnable_signals": sorted(n for n, s in CATALOG.items() if s.learned)}
    # mtime=0: the same rows give the same bytes, so the committed file only changes with its content
    with open(path, "wb") as raw_out, gzip.GzipFile(fileobj=raw_out, mode="wb", mtime=0) as out:
        out.write((json.dumps(header) + "\n").encode())
        for row in rows:
            out.write((json.dumps(row, sort_keys=True) + "\n").encode())


def read(path: Path = FEATURES) -> tuple[dict, list[dict]]:
    with gzip.open(path, "rt") as fh:
        header = json.loads(fh.readline())
        rows = [json.loads(line) for line in fh if line.strip()]
    return header, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=RAW)
    parser.add_argument("--out", type=Path, default=FEATURES)
    args = parser.parse_args(argv)
    if not args.raw.exists():
        print(f"{args.raw} not found: build it first with scripts/corpus_build.py (see corpus/corpus.md)",
              file=sys.stderr)
        return 2
    rows = prune_rare_tokens(message_rows(args.raw))
    write(rows, args.out)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["set"]] = counts.get(row["set"], 0) + 1
    for name, n in sorted(counts.items()):
        print(f"{name}: {n}")
    print(f"{len(rows)} messages -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
