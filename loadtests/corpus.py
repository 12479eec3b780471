"""Mail for load: the repo's samples and the shared corpus, mixed sizes, feeds and licences left out.

Kept apart from locustfile.py so the runner can use it without importing locust (which
monkey-patches the standard library with gevent)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from swordfish.pipeline.submitter import INLINE_LIMIT_BYTES

REPO = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def load_corpus() -> tuple[bytes, ...]:
    folders = os.environ.get("SWORDFISH_LOAD_CORPUS", f"{REPO / 'samples'}:{REPO.parent / 'shared' / 'corpus'}")
    mail: list[bytes] = []
    for folder in folders.split(":"):
        root = Path(folder)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not {"feeds", "phishing", "mailboxes"} & set(path.parts) \
                    and not path.name.upper().startswith(("LICENSE", "README")) \
                    and path.suffix in ("", ".eml", ".txt"):
                raw = path.read_bytes()
                if 0 < len(raw) <= INLINE_LIMIT_BYTES:
                    mail.append(raw)
    if not mail:
        raise RuntimeError(f"no mail found in {folders}")
    return tuple(mail)
