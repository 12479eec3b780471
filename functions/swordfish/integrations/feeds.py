"""Parsers for the threat-feed formats: URLhaus CSV, OpenPhish text, PhishTank CSV.

Each parser takes the raw bytes of a download and returns a ``ParsedFeed``: the feed's entries in
lookup form, how many rows were usable and how many were not (with a few examples), so the refresher
can tell a healthy download from an error page. A bad line is counted and skipped, never fatal.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from swordfish.integrations.indicator_keys import feed_indicator_keys

MAX_BAD_EXAMPLES = 5
_ZIP_MAGIC = b"PK\x03\x04"
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024  # a zip bomb must not take the refresher down
# URLhaus dump columns, in order (the header itself is a '#' comment line in the dump).
URLHAUS_COLUMNS = ("id", "dateadded", "url", "url_status", "last_online", "threat", "tags", "urlhaus_link",
                   "reporter")
PHISHTANK_COLUMNS = ("phish_id", "url", "phish_detail_url", "submission_time", "verified",
                     "verification_time", "online", "target")


@dataclass
class ParsedFeed:
    feed: str
    indicators: set[str] = field(default_factory=set)  # lookup keys (indicator_keys.feed_indicator_keys)
    rows: int = 0  # usable entries
    bad_rows: int = 0  # lines that were neither comments, headers, blank, nor usable entries
    bad_examples: list[str] = field(default_factory=list)

    def add(self, entry: str, line: str) -> None:
        keys = feed_indicator_keys(entry)
        if keys:
            self.rows += 1
            self.indicators |= keys
        else:
            self.bad(line)

    def bad(self, line: str) -> None:
        self.bad_rows += 1
        if len(self.bad_examples) < MAX_BAD_EXAMPLES:
            self.bad_examples.append(line[:200])


def _text_lines(data: bytes) -> Iterator[str]:
    if data.startswith(_ZIP_MAGIC):  # URLhaus also publishes its dumps as a one-file zip
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if members and members[0].file_size > MAX_UNZIPPED_BYTES:
                raise ValueError(f"zipped feed member {members[0].filename!r} unpacks to "
                                 f"{members[0].file_size} bytes, over the {MAX_UNZIPPED_BYTES} limit")
            data = archive.read(members[0]) if members else b""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    for line in text.splitlines():
        yield line.strip()


def _csv_row(line: str) -> list[str] | None:
    """One CSV line as fields; None when the csv module rejects it (NUL bytes, oversize field)."""
    # Parsed line by line so one broken row (unbalanced quote, NUL) costs only itself; feed URLs
    # never contain raw newlines, so no valid row spans lines.
    try:
        return next(csv.reader((line,)), None)
    except csv.Error:
        return None


def parse_urlhaus(data: bytes) -> ParsedFeed:
    """URLhaus CSV dump: '#' comment lines, then quoted rows of URLHAUS_COLUMNS."""
    parsed = ParsedFeed("urlhaus")
    url_index = URLHAUS_COLUMNS.index("url")
    for line in _text_lines(data):
        if not line or line.startswith("#"):
            continue
        row = _csv_row(line)
        if row is None or len(row) < len(URLHAUS_COLUMNS) or not row[0].strip().isdigit():
            parsed.bad(line)
            continue
        parsed.add(row[url_index], line)
    return parsed


def parse_openphish(data: bytes) -> ParsedFeed:
    """OpenPhish feed: one URL a line; blank lines and '#' comments ignored."""
    parsed = ParsedFeed("openphish")
    for line in _text_lines(data):
        if not line or line.startswith("#"):
            continue
        if "://" not in line or " " in line:
            parsed.bad(line)  # not a URL: an HTML error page, a notice, a truncated line
            continue
        parsed.add(line, line)
    return parsed


def parse_phishtank(data: bytes) -> ParsedFeed:
    """PhishTank CSV: a header row (phish_id,url,...) then one row per phish; columns found by name."""
    parsed = ParsedFeed("phishtank")
    url_index, width = PHISHTANK_COLUMNS.index("url"), 2
    for line in _text_lines(data):
        if not line or line.startswith("#"):
            continue
        row = _csv_row(line)
        if row and row[0].strip().lower() == "phish_id":  # header: trust its column order
            names = [name.strip().lower() for name in row]
            if "url" in names:
                url_index, width = names.index("url"), len(names)
            continue
        if row is None or len(row) < max(width, url_index + 1) or not row[0].strip().isdigit():
            parsed.bad(line)
            continue
        parsed.add(row[url_index], line)
    return parsed


PARSERS: dict[str, Callable[[bytes], ParsedFeed]] = {
    "urlhaus": parse_urlhaus,
    "openphish": parse_openphish,
    "phishtank": parse_phishtank,
}


def parse_feed(feed: str, data: bytes) -> ParsedFeed:
    try:
        parser = PARSERS[feed]
    except KeyError:
        raise ValueError(f"unknown threat feed {feed!r}; known feeds: {', '.join(PARSERS)}") from None
    return parser(data)
