"""The standard library's MIME parser, with the bounds it does not have.

Hostile structure costs the stdlib parser far more than its size: `_parseparam` is quadratic in a
Content-Type's parameters (a 1.24 MB header of `;`-separated parameters took 29 s), every header
lookup walks every header field, and nesting recurses until a `RecursionError`. The caps below are
applied as the parser builds the message, through its documented extension points (the message
factory's `set_raw` and `attach`), so no header value, parameter list or nesting level past them
ever reaches the stdlib code that chokes on it. What a cap cuts is recorded in `ParseLimits.findings`:
mail built to defeat parsers is itself a signal. A message that is merely big is parsed to
MAX_PARSE_BYTES (a fixed count, so the same on any machine; what is left is named, not evidence);
input is fed in chunks, so the analysis budget's timer can still stop a parse as a last resort.
"""

from __future__ import annotations

import email.feedparser
import re
import sys
from email.feedparser import BytesFeedParser
from email.message import Message, _unquotevalue
from email.policy import compat32
from itertools import islice, repeat, starmap
from operator import indexOf, itemgetter, methodcaller

from .budget import AnalysisBudget

MAX_HEADER_FIELDS = 1_000  # per message or part; real mail has tens
MAX_TOP_HEADER_LINES = 4 * MAX_HEADER_FIELDS  # physical lines of the top-level header block, folding included
MAX_HEADER_FIELD_CHARS = 32_000  # one header field, folded lines included; real ones stay under a few KB
MAX_HEADER_NAME_CHARS = 200
MAX_MIME_PARAMS = 100  # parameters of Content-Type / Content-Disposition; real ones have a handful
MAX_MIME_PARAM_HEADER_CHARS = 8_000
MAX_PARSE_DEPTH = 60  # nesting at which parsing stops (the walk already stops analysing at 30)
MAX_PARSE_PARTS = 800  # parts at which parsing stops (the walk already stops analysing at 400)
FEED_CHUNK_BYTES = 64 * 1024  # the budget is checked between chunks
# Bytes of a message that are parsed (~8 ms a megabyte on a busy machine); the rest is not, and the
# verdict says so. Real mail over it is mostly big attachments (their names after this point are lost).
MAX_PARSE_BYTES = 5_000_000
# A single-part body up to this size is taken whole, not fed line by line (see _in_single_part_body);
# a bigger one is fed in chunks, so the budget can still stop it.
MAX_SINGLE_PART_BODY_BYTES = 1024 * 1024

_PARAM_HEADERS = frozenset({"content-type", "content-disposition"})
# C0 controls other than tab, CR, LF, and ESC (raw ISO-2022-JP headers legitimately carry ESC), and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
MAX_CONTROL_PRESCAN_BYTES = 1_000_000


def control_characters(text: str) -> str:
    """A short description of the control characters in `text` ("" when there are none)."""
    found = sorted(set(_CONTROL.findall(text[:MAX_HEADER_FIELD_CHARS])))
    if not found:
        return ""
    return ", ".join("NUL" if c == "\x00" else f"U+{ord(c):04X}" for c in found[:4])


class StructureLimitReached(Exception):
    """Parsing stops here (nesting or part count past the caps, or the budget spent inside a header
    flood); what was built so far is kept."""

    def __init__(self, finding: str, *, budget: bool = False):
        super().__init__(finding)
        self.budget = budget  # stopped by the budget, not by a structure cap (so not evidence in itself)


class ParseLimits:
    """State shared by the messages of one parse: findings (each recorded once), the part count, the
    budget, and the root message (kept, so a parse stopped early still has its tree)."""

    def __init__(self, budget: AnalysisBudget) -> None:
        self.budget = budget
        self.findings: list[str] = []
        self.parts = 0
        self.unparsed_bytes = 0  # left unparsed when the analysis budget ran out between input chunks
        self.cut_bytes = 0  # left unparsed past MAX_PARSE_BYTES
        self.stopped_in_headers = False  # the budget ran out inside a header flood
        self.root: BoundedMessage | None = None
        self.armed = False  # the parser builds one throw-away message when created; that one is no root
        self.check_controls = True  # False when the raw message holds no control character at all

    def note(self, finding: str) -> None:
        if finding not in self.findings and len(self.findings) < 20:
            self.findings.append(finding)

    def new_message(self, policy=compat32) -> BoundedMessage:
        """The parser's message factory."""
        msg = BoundedMessage(policy, limits=self)
        if self.armed and self.root is None:
            self.root = msg
        return msg


_UNSET = object()
# What makes the stdlib's parameter parsing more than a split at ";": escapes, RFC 2231 names ("name*0*"),
# values in angle brackets (which email.utils.unquote strips), and quotes anywhere but around a whole value.
_PARAM_SPECIALS = re.compile(r"[\\*<]")


def _plain_params(text: str) -> list[tuple[str, str]] | None:
    """Message._get_params_preserve for a header value without `_PARAM_SPECIALS`, where its steps
    (email.message._parseparam, the split at "=", email.utils.decode_params) come down to this: the
    parts between semicolons, a name lower-cased before a "=", every value after the first quoted.
    None when a quote is anywhere but around a whole value after the first part (`charset="utf-8"`: such
    a part has an even number of quotes, so _parseparam splits at every ";" too, and decode_params
    unquotes the value and quotes it again, unchanged)."""
    params = []
    for part in text.split(";"):
        if "=" in part:
            name, _, value = part.partition("=")
            value = value.strip()
            if '"' in part:
                if not params or '"' in name or value.count('"') != 2 or value[0] != '"' or value[-1] != '"':
                    return None
                value = value[1:-1]
            params.append((name.strip().lower().strip(), value))
        elif '"' in part:
            return None
        else:
            params.append((part.strip(), ""))
    return params[:1] + [(name, f'"{value}"') for name, value in params[1:]]


class BoundedMessage(Message):
    """A compat32 message whose header fields and children are capped as the parser adds them."""

    def __init__(self, policy=compat32, *, limits: ParseLimits):
        super().__init__(policy)
        self._limits = limits
        self._depth = 0
        self._index: dict[str, list[int]] = {}  # lower-cased name -> positions in _headers
        self._index_of: list | None = None  # the _headers list the index was built from ...
        self._index_len = 0  # ... and its length then
        self._index_policy = None  # ... and the policy then
        # Content type and parameter lists, derived from the fields the index was built from. The
        # parser and the analysis ask each part for its type several times, and for its charset, name
        # and boundary, and the stdlib parses the parameters anew (in pure Python) on every call.
        self._derived: dict = {}

    # Message.get, get_all and `in` walk and lower-case every header field on each call; the parser and
    # the analysis ask a message for its content type, charset, parameters and file name dozens of
    # times, and a list message has fifty fields. The same answers from an index of positions, rebuilt
    # whenever the field list is replaced or grows; the one in-place change (replace_header) drops it.

    def _header_positions(self) -> dict[str, list[int]]:
        headers = self._headers
        if self._index_of is not headers or self._index_len != len(headers) or self._index_policy is not self.policy:
            index: dict[str, list[int]] = {}
            for position, (name, _) in enumerate(headers):
                index.setdefault(name.lower(), []).append(position)
            self._index, self._index_of, self._index_len = index, headers, len(headers)
            self._index_policy = self.policy
            self._derived = {}
        return self._index

    def get_content_type(self):
        self._header_positions()  # drops what was derived from fields since changed
        ctype = self._derived.get(None)
        if ctype is None:
            ctype = self._derived[None] = super().get_content_type()
        return ctype

    def set_default_type(self, ctype) -> None:
        self._derived.pop(None, None)
        super().set_default_type(ctype)

    def _params(self, header):
        """The parameter list of `header` as Message._get_params_preserve reads it (_UNSET when there is
        no such field), derived once; callers must not change it."""
        self._header_positions()
        key = header.lower()
        params = self._derived.get(key, _UNSET)
        if params is _UNSET:
            value = self.get(header, _UNSET)
            if value is not _UNSET and not _PARAM_SPECIALS.search(text := str(value)):
                params = _plain_params(text)
                if params is None:
                    params = super()._get_params_preserve(_UNSET, header)
            else:
                params = super()._get_params_preserve(_UNSET, header)
            self._derived[key] = params
        return params

    def _get_params_preserve(self, failobj, header):
        # Message.get_params reads the parameters through this method.
        params = self._params(header)
        return failobj if params is _UNSET else list(params)

    def get_param(self, param, failobj=None, header="content-type", unquote=True):
        # get_filename, get_boundary and get_content_charset read one parameter each through here: each
        # a different one, so the answer is mostly derived, by Message.get_param's own steps (on the
        # derived parameter list, without the copy and the calls that cost more than the loop).
        index = self._header_positions()
        key = (param.lower(), header.lower(), bool(unquote))
        value = self._derived.get(key, _UNSET)
        if value is _UNSET:
            params = self._params(header) if key[1] in index else _UNSET  # Message.get_param: `header not in self`
            if params is not _UNSET:
                name = key[0]
                for k, v in params:
                    if k.lower() == name:
                        value = _unquotevalue(v) if unquote else v
                        break
            self._derived[key] = value
        return failobj if value is _UNSET else value

    def get(self, name, failobj=None):
        positions = self._header_positions().get(name.lower())
        if not positions:
            return failobj
        field, value = self._headers[positions[0]]
        return self.policy.header_fetch_parse(field, value)

    def get_all(self, name, failobj=None):
        positions = self._header_positions().get(name.lower())
        if not positions:
            return failobj
        headers = self._headers
        return [self.policy.header_fetch_parse(*headers[p]) for p in positions]

    def __contains__(self, name) -> bool:
        return name.lower() in self._header_positions()

    def replace_header(self, _name, _value) -> None:
        self._index_of = None
        super().replace_header(_name, _value)

    def set_raw(self, name: str, value: str) -> None:
        # Called for every header of every part: the common case (a short, clean value) costs three C calls.
        # (_set_header_fields makes the same test for the fields it stores itself.)
        if len(self._headers) < MAX_HEADER_FIELDS and len(value) <= MAX_MIME_PARAM_HEADER_CHARS \
                and value.count(";") <= MAX_MIME_PARAMS and len(name) <= MAX_HEADER_NAME_CHARS \
                and not (self._limits.check_controls and _CONTROL.search(value)):
            super().set_raw(name, value)
            return
        limits = self._limits
        if len(self) >= MAX_HEADER_FIELDS:
            limits.note(f"header flood: more than {MAX_HEADER_FIELDS:,} header fields in one part; "
                        "the rest were ignored")
            if limits.budget.exceeded("MIME headers"):  # even skipping them costs the parser ~1 µs each
                raise StructureLimitReached("analysis budget spent in a header flood", budget=True)
            return
        if len(name) > MAX_HEADER_NAME_CHARS:
            limits.note(f"header name of {len(name):,} characters cut to {MAX_HEADER_NAME_CHARS}")
            name = name[:MAX_HEADER_NAME_CHARS]
        if len(value) > MAX_HEADER_FIELD_CHARS:
            limits.note(f"header {name[:40]!r} of {len(value):,} characters cut to {MAX_HEADER_FIELD_CHARS:,}")
            value = value[:MAX_HEADER_FIELD_CHARS]
        if name.lower() in _PARAM_HEADERS and (len(value) > MAX_MIME_PARAM_HEADER_CHARS
                                               or value.count(";") > MAX_MIME_PARAMS):
            limits.note(f"{name[:40]} with {value.count(';'):,} parameters in {len(value):,} characters cut to "
                        f"{MAX_MIME_PARAMS} parameters")
            value = ";".join(value[:MAX_MIME_PARAM_HEADER_CHARS].split(";", MAX_MIME_PARAMS + 1)[:MAX_MIME_PARAMS + 1])
        controls = control_characters(value)  # names cannot hold any: the parser only takes printable ones
        if controls:
            limits.note(f"control characters ({controls}) in header {name[:40]!r}")
        super().set_raw(name, value)

    def attach(self, payload) -> None:
        if isinstance(payload, BoundedMessage):
            limits = self._limits
            limits.parts += 1
            if self._depth + 1 > MAX_PARSE_DEPTH:
                raise StructureLimitReached(f"MIME nesting deeper than {MAX_PARSE_DEPTH} levels; parsing stopped")
            if limits.parts > MAX_PARSE_PARTS:
                raise StructureLimitReached(f"more than {MAX_PARSE_PARTS} MIME parts; parsing stopped")
            payload._depth = self._depth + 1
        super().attach(payload)


_BLANK_LINE = re.compile(rb"\n\r?\n")

# The multipart boundary pattern of Python 3.11 and 3.12's feed parser, compiled once per multipart:
# every boundary is new, so the regex cache never helps and each costs ~90 µs of pure-Python regex
# parsing (a tenth of parsing a multipart message). Python 3.13 replaced it with `startswith` and one
# precompiled tail (feedparser.boundaryendRE); `_FeedParserRe` gives 3.11/3.12 that same matcher.
_BOUNDARY_HEAD = "(?P<sep>"
_BOUNDARY_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_BOUNDARY_END = re.compile(_BOUNDARY_TAIL[1:])
_ESCAPED_CHAR = re.compile(r"\\(.)", re.DOTALL)


class _BoundaryMatcher:
    """Python 3.13's `boundarymatch`: what the compiled boundary regex matches, and the same groups."""

    __slots__ = ("separator",)

    def __init__(self, separator: str):
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _BOUNDARY_END.match(line, len(self.separator))


class _FeedParserRe:
    """The `re` module as email.feedparser sees it: everything passes through, except that its boundary
    pattern (and only that exact pattern) becomes a `_BoundaryMatcher`. The feed parser uses that object
    only through `.match(line)` and the groups `end` and `linesep`, which the tail regex keeps."""

    def __getattr__(self, name: str):
        return getattr(re, name)

    def compile(self, pattern, flags=0):
        if not flags and isinstance(pattern, str) and pattern.startswith(_BOUNDARY_HEAD) \
                and pattern.endswith(_BOUNDARY_TAIL):
            escaped = pattern[len(_BOUNDARY_HEAD):-len(_BOUNDARY_TAIL)]
            separator = _ESCAPED_CHAR.sub(r"\1", escaped)
            if re.escape(separator) == escaped:  # it was re.escape's output: a literal separator
                return _BoundaryMatcher(separator)
        return re.compile(pattern, flags)


if sys.version_info < (3, 13) and getattr(email.feedparser, "re", None) is re:
    email.feedparser.re = _FeedParserRe()


class _LineEndAtEnd:
    """The feed parser's `NLCRE_eol` (a line end at the very end of a string), searched only where such
    a match can start. The parser strips the line end before each boundary from the part it closes with
    `NLCRE_eol.search(payload)`, and `re` tries that pattern at every line of the payload: on mail with
    attachments, a tenth of the parse. A match is at most two characters and must reach the end, so
    starting the search two characters from the end finds the same match."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: re.Pattern[str]):
        self.pattern = pattern

    def search(self, string: str) -> re.Match[str] | None:
        return self.pattern.search(string, max(0, len(string) - 2))

    def __getattr__(self, name: str):
        return getattr(self.pattern, name)


_NLCRE_EOL = getattr(email.feedparser, "NLCRE_eol", None)
if isinstance(_NLCRE_EOL, re.Pattern) and _NLCRE_EOL.pattern == r"(\r\n|\r|\n)\Z" and not _NLCRE_EOL.flags & ~re.UNICODE:
    email.feedparser.NLCRE_eol = _LineEndAtEnd(_NLCRE_EOL)


# The feed parser's test for a header line (its header loop ends at the first line that fails it).
_HEADER_LINE = getattr(email.feedparser, "headerRE", None)
_FIRST_CHARACTER = itemgetter(0)
_UNIX_FROM_OR_NO_NAME = methodcaller("startswith", ("From ", ":"))  # lines _parse_headers records defects for


def _index(items, value, default: int) -> int:
    """Position of the first item equal to `value` (`default` when there is none), found in C."""
    try:
        return indexOf(items, value)
    except ValueError:
        return default


class _HeaderLines(str):
    """Header lines handed to the parser's header loop as one item: the loop only tests the first (as
    a str, this is it) and collects the item for `_parse_headers`, which takes the lines out again."""

    lines: list[str]


class _LineBuffer(email.feedparser.BufferedSubFile):
    """The feed parser's line buffer, which tests every line of a part against the boundaries of all the
    multiparts around it (a Python call per line and level). A boundary line starts with "--", so a line
    that does not is handed over untested while only boundary tests are stacked; any other end test (the
    blank line of message/delivery-status) still sees every line.

    The parser's loops cost a Python call and more per line, so `_BoundedFeedParser` says what it is
    reading: in a header block, the run of header lines (up to the first line that is not one, or that
    could be a boundary) is handed over as one `_HeaderLines`; in a leaf part's body, which is only ever
    collected and joined, the lines up to the next one that could be a boundary as one string."""

    def __init__(self) -> None:
        super().__init__()
        self._other_tests = 0
        self.in_headers = False  # set by _BoundedFeedParser: the lines that follow are a header block
        self.in_body = False  # set by _BoundedFeedParser: the lines that follow are a leaf part's body

    def push_eof_matcher(self, pred) -> None:
        if not isinstance(getattr(pred, "__self__", None), _BoundaryMatcher):
            self._other_tests += 1
        super().push_eof_matcher(pred)

    def pop_eof_matcher(self):
        pred = super().pop_eof_matcher()
        if not isinstance(getattr(pred, "__self__", None), _BoundaryMatcher):
            self._other_tests -= 1
        return pred

    def readline(self):
        lines = self._lines
        if lines and not self._other_tests and not lines[0].startswith("--"):
            line = lines.popleft()
            if not line or not lines or lines[0].startswith("--"):
                return line
            if self.in_body:
                # The lines before the next one that starts with "-", found and taken in C (a Python
                # loop over them cost twice as much).
                try:
                    count = _index(map(_FIRST_CHARACTER, lines), "-", len(lines))
                except IndexError:  # an empty string pushed back (the end of the input): line by line
                    return line
                chunk = [line]
                chunk.extend(starmap(lines.popleft, repeat((), count)))
                return "".join(chunk)
            if self.in_headers and _HEADER_LINE.match(line):
                # the header lines before the first line that is none or starts with "-", found in C
                count = _index(map(_HEADER_LINE.match, lines), None, len(lines))
                count = _index(map(_FIRST_CHARACTER, islice(lines, count)), "-", count)
                if count:
                    run = [line]
                    run.extend(starmap(lines.popleft, repeat((), count)))
                    line = _HeaderLines(line)
                    line.lines = run
            return line
        line = super().readline()
        if line == "":
            self.in_body = False  # the body loop ends here
        return line


class _BoundedFeedParser(BytesFeedParser):
    """The feed parser, telling its line buffer what it reads. A message or part starts (`_new_message`)
    with the loop that collects its header lines and ends by handing them to `_parse_headers`. After
    them, the parser reads a body line by line only for a part that is neither multipart nor message/*
    (nor a headers-only parse), until the buffer answers "" (a boundary or the end). Reads the feed
    parser's private methods, as they are in Python 3.11 to 3.13; tests/analysis/test_fast_paths.py
    compares the result with the plain parser's."""

    def _new_message(self):
        super()._new_message()
        if isinstance(self._input, _LineBuffer) and _HEADER_LINE is not None:
            self._input.in_headers = True

    def _parse_headers(self, lines):
        buffer = self._input
        if isinstance(buffer, _LineBuffer):
            buffer.in_headers = False
            if any(type(item) is _HeaderLines for item in lines):
                expanded: list[str] = []
                for item in lines:
                    if type(item) is _HeaderLines:
                        expanded.extend(item.lines)
                    else:
                        expanded.append(item)
                lines = expanded
        if self.policy is compat32 and lines and lines[0][0] not in " \t" \
                and _index(map(_UNIX_FROM_OR_NO_NAME, lines), True, -1) < 0:
            _set_header_fields(self._cur, lines)
        else:
            super()._parse_headers(lines)
        if isinstance(buffer, _LineBuffer) and not self._headersonly \
                and self._cur.get_content_maintype() not in ("multipart", "message"):
            buffer.in_body = True


def _set_header_fields(msg: Message, lines: list[str]) -> None:
    """FeedParser._parse_headers under the compat32 policy, for the header block it takes apart without
    a defect: a first line that is no continuation, no Unix "From " line and no empty field name. Each
    field is its first line and the continuation lines (starting with a space or tab) after it; name and
    value as compat32's header_source_parse splits them (the stdlib's loop costs two more Python calls
    a line and one a field). A field BoundedMessage.set_raw would store as it is (the same test) is
    stored here; any other goes through set_raw, which caps it and says so."""
    fields: list[tuple[str, str]] = []
    field: list[str] = []
    for line in lines:
        if line[0] in " \t":
            field.append(line)
            continue
        if field:
            name, value = field[0].split(":", 1)
            value = value.lstrip(" \t") + "".join(field[1:]) if len(field) > 1 else value.lstrip(" \t")
            fields.append((name, value.rstrip("\r\n")))
        field = [line]
    if field:
        name, value = field[0].split(":", 1)
        value = value.lstrip(" \t") + "".join(field[1:]) if len(field) > 1 else value.lstrip(" \t")
        fields.append((name, value.rstrip("\r\n")))
    headers = msg._headers
    plain = type(msg) is BoundedMessage and not msg._limits.check_controls
    for name, value in fields:
        if plain and len(headers) < MAX_HEADER_FIELDS and len(value) <= MAX_MIME_PARAM_HEADER_CHARS \
                and value.count(";") <= MAX_MIME_PARAMS and len(name) <= MAX_HEADER_NAME_CHARS:
            headers.append((name, value))  # what Message.set_raw does
        else:
            msg.set_raw(name, value)


def _cap_top_header_lines(raw: bytes, limits: ParseLimits) -> bytes:
    """A flood of top-level header lines is cut before parsing (the stdlib parser reads a header block
    whole), so that the body after it is still analysed."""
    blank = _BLANK_LINE.search(raw)
    end = blank.start() + 1 if blank else len(raw)
    lines = raw.count(b"\n", 0, end)
    if lines <= MAX_TOP_HEADER_LINES:
        return raw
    cut = -1
    for _ in range(MAX_TOP_HEADER_LINES):
        cut = raw.find(b"\n", cut + 1, end)
    limits.note(f"header flood: {lines:,} header lines; only the first {MAX_TOP_HEADER_LINES:,} were read")
    return raw[:cut + 1] + (b"\r\n" + raw[blank.end():] if blank else b"")


def _header_block_end(raw: bytes) -> int:
    """Offset just past the first empty line (the end of the top-level header block at the latest), or -1."""
    blank = _BLANK_LINE.search(raw, 0, FEED_CHUNK_BYTES + 2)
    return blank.end() if blank else -1


def _in_single_part_body(parser: BytesFeedParser) -> bool:
    """True when the parser has read the top-level headers of a message that is neither multipart nor
    message/*, and is collecting its body, line by line, with nothing else left to decide: the body is
    then the rest of the input as it stands, and is set in one step instead (the line loop was a third
    of the analysis of single-part mail). Reads the feed parser's private state, so any surprise in
    it (another Python version) answers False and the message is parsed the ordinary way;
    tests/analysis/test_fast_paths.py compares the two on every sample."""
    try:
        stack, pending = parser._msgstack, parser._input
        if parser._headersonly or len(stack) != 1 or pending._lines or pending._partial.tell() \
                or pending._eofstack:
            return False
        root = stack[0]
        return root.get_content_maintype() not in ("multipart", "message")
    except AttributeError:
        return False


def parse_bounded(raw: bytes, budget: AnalysisBudget) -> tuple[Message, ParseLimits]:
    """Parse raw MIME within the caps and the budget. Raises only what the stdlib parser itself may
    raise on input the caps do not cover; the caller salvages the headers then."""
    limits = ParseLimits(budget)
    raw = _cap_top_header_lines(raw, limits)
    if len(raw) <= MAX_CONTROL_PRESCAN_BYTES:  # one C pass here saves a regex per header value
        limits.check_controls = len(raw.translate(None, _CONTROL_BYTES)) != len(raw)
    parser = _BoundedFeedParser(_factory=limits.new_message, policy=compat32)
    if type(getattr(parser, "_input", None)) is email.feedparser.BufferedSubFile:
        parser._input = _LineBuffer()  # before the first feed: the parse generator has not read it yet
    limits.armed = True
    try:
        fed = 0
        header_end = _header_block_end(raw)
        if 0 < header_end <= FEED_CHUNK_BYTES and len(raw) - header_end <= MAX_SINGLE_PART_BODY_BYTES:
            parser.feed(raw[:header_end])
            fed = header_end
            # a body bigger than a chunk would have met a budget check between chunks: it still does
            if _in_single_part_body(parser) and not (len(raw) > FEED_CHUNK_BYTES
                                                     and budget.exceeded("MIME parsing", share=0.5)):
                root = parser.close()
                root.set_payload(root.get_payload() + raw[header_end:].decode("ascii", "surrogateescape"))
                return root, limits
        end = min(len(raw), MAX_PARSE_BYTES)
        limits.cut_bytes = len(raw) - end
        for start in range(fed, end, FEED_CHUNK_BYTES):
            parser.feed(raw[start:min(start + FEED_CHUNK_BYTES, end)])
            # Half the budget: closing the parser rescans the part in progress, about the cost of feeding it.
            if start + FEED_CHUNK_BYTES < end and budget.exceeded("MIME parsing", share=0.5):
                limits.unparsed_bytes = len(raw) - start - FEED_CHUNK_BYTES
                limits.cut_bytes = 0
                break
        return parser.close(), limits
    except StructureLimitReached as stop:
        if limits.root is None:
            raise
        if stop.budget:
            limits.stopped_in_headers = True
        else:
            limits.note(str(stop))
        return limits.root, limits
