"""Phrase patterns matched fast, with exactly the regex's answer.

A phrase pattern (data/language.py) is a label, trigger substrings and a regex; it is found when a
trigger occurs and the regex matches somewhere. `re.search` tries a match at every position of the
text, and a pattern that starts with `\\b(` gets none of the engine's prefix skipping: on mail whose
common words pass the triggers ("account", "details", "now"), those scans were a quarter of the
analysis. So each regex is read once (`literal_prefixes`) for the literal strings every match must
start with, and a match is tried only where one of them occurs: the same positions a search would
have succeeded at, so the same answer. A regex whose start is not literal, or a text with very many
occurrences, is searched the ordinary way.

Which triggers occur is found for all patterns at once (`TriggerSet`, one pass over the text); the
same pass can take the prefixes too, and a prefix it did not find is then not looked for: most
prefixes of a pattern whose triggers occur are absent, and each was a full scan with `str.find`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter

import ahocorasick

try:  # the standard library's regex parser: private, so any surprise means "no prefixes"
    from re import _constants as _sre
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover - Python versions before 3.11
    _sre = _sre_parser = None

MAX_PREFIXES = 64
MAX_OCCURRENCES = 400  # past this many candidate positions, one C search is cheaper than a Python loop
_VALUE = itemgetter(1)  # of the automaton's (end position, trigger) pairs


def literal_prefixes(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Non-empty literal strings one of which starts every match of `pattern`; None when that cannot
    be told (a case-insensitive pattern, or one whose first character is a class, a repeat, `.`...)."""
    if _sre_parser is None or flags & re.IGNORECASE:
        return None
    try:
        parsed = _sre_parser.parse(pattern, flags)
        if parsed.state.flags & re.IGNORECASE:  # an inline (?i)
            return None
        found = _sequence(list(parsed))
    except Exception:  # noqa: BLE001 - an internal format we do not know: fall back to plain search
        return None
    if not found or "" in found:
        return None
    return frozenset(found)


def _sequence(items: list) -> set[str] | None:
    out = {""}
    at_start = True
    for op, av in items:
        if op is _sre.AT:
            if at_start:
                continue  # \b, ^ before anything: zero width, the match still starts here
            break
        at_start = False
        if op is _sre.LITERAL:
            out = {s + chr(av) for s in out}
            continue
        if op is _sre.IN:
            chars = _literal_set(av)
            if chars is None or len(out) * len(chars) > MAX_PREFIXES:
                break
            out = {s + c for s in out for c in chars}
            continue
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            # an optional literal ("e-?mail"): the prefixes with it and without it, and on
            optional = _literal_string(list(av[2]))
            if optional is not None and len(out) * 2 <= MAX_PREFIXES:
                out = {s + t for s in out for t in ("", optional)}
                continue
            break
        if op is _sre.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if add_flags & re.IGNORECASE:
                return None
            inner = _sequence(list(sub))
        elif op is _sre.BRANCH:
            inner = _branches(av[1])
        else:
            inner = None
        if inner is not None and len(out) * len(inner) <= MAX_PREFIXES:
            out = {s + t for s in out for t in inner}
        break  # what follows a group is not read: its prefixes alone are still required
    if "" in out:
        return None
    return out


def _branches(alternatives: Iterable) -> set[str] | None:
    out: set[str] = set()
    for alternative in alternatives:
        found = _sequence(list(alternative))
        if found is None:
            return None
        out |= found
    return out


def _literal_string(items: list) -> str | None:
    """The string a sequence of literals matches; None when it is anything else."""
    if not items or any(op is not _sre.LITERAL for op, _ in items):
        return None
    return "".join(chr(av) for _, av in items)


def _literal_set(items: list) -> set[str] | None:
    chars = set()
    for op, av in items:
        if op is not _sre.LITERAL:
            return None  # a range, a category, a negation
        chars.add(chr(av))
    return chars


class PhrasePattern:
    """One phrase: `found(text, present, searched)` is exactly `any(t in text for t in triggers) and
    regex.search(text)`, given `present`, the strings of `searched` that occur in `text` (all triggers
    that occur must be among them; `searched` may hold prefixes as well, which are then not looked for
    when absent from `present`)."""

    __slots__ = ("label", "triggers", "regex", "prefixes", "short_prefixes")

    def __init__(self, label: str, triggers: tuple[str, ...], pattern: str):
        self.label = label
        self.triggers = frozenset(triggers)
        self.regex = re.compile(pattern)
        self.prefixes = literal_prefixes(pattern)
        # a prefix of one or two characters ("i", "to") occurs all over a text: counted first, in C
        self.short_prefixes = tuple(p for p in self.prefixes or () if len(p) <= 2)

    def found(self, text: str, present: frozenset[str] | set[str], searched: frozenset[str] = frozenset()) -> bool:
        if self.triggers.isdisjoint(present):
            return False
        if self.prefixes is None:
            return self.regex.search(text) is not None
        # One pass of str.find per prefix (counting the occurrences first cost a second one); past
        # MAX_OCCURRENCES tried, the rest is left to one search. Either way the regex's own answer.
        if self.short_prefixes and sum(map(text.count, self.short_prefixes)) > MAX_OCCURRENCES:
            return self.regex.search(text) is not None
        match = self.regex.match
        tried = 0
        for prefix in self.prefixes:
            if prefix in searched and prefix not in present:
                continue  # the one pass over the text did not find it
            at = text.find(prefix)
            while at >= 0:
                if match(text, at):
                    return True
                tried += 1
                if tried > MAX_OCCURRENCES:
                    return self.regex.search(text) is not None
                at = text.find(prefix, at + 1)
        return False


def triggers_present(text: str, triggers: Iterable[str]) -> frozenset[str]:
    """The triggers that occur in `text`: one substring test each, shared by every pattern."""
    return frozenset(t for t in triggers if t in text)


class TriggerSet:
    """`triggers_present` for a fixed set of triggers, in one pass over the text. A substring test per
    trigger (126 of them, each a scan of up to 8,000 characters) was a sixth of the analysis of 8-64 KiB
    mail; an Aho-Corasick automaton (pyahocorasick, in C, over code points: any string, lone surrogates
    included) reports every occurrence of every trigger, overlapping and nested ones too, in one scan."""

    __slots__ = ("triggers", "_automaton", "_empty")

    def __init__(self, triggers: Iterable[str]):
        self.triggers = frozenset(triggers)
        self._empty = "" in self.triggers  # occurs in every text; the automaton takes no empty key
        words = sorted(self.triggers - {""})
        self._automaton = None
        if words:
            self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
            for word in words:
                self._automaton.add_word(word, word)
            self._automaton.make_automaton()

    def present(self, text: str) -> frozenset[str]:
        found = frozenset(map(_VALUE, self._automaton.iter(text))) if self._automaton is not None else frozenset()
        return found | {""} if self._empty else found
