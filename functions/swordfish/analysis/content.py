"""The content model: what a message's words say, learned from the development corpus.

Rules see structure (authentication, links, attachments, phrases someone wrote down); most unwanted
mail also reads like unwanted mail in words no phrase list holds. Like SpamAssassin's BAYES_* rules
and rspamd's classifier, a token model weighs the words, and the scorer turns what they weigh into one
reason (CONTENT_UNWANTED) whose weight per unit the signal fit learns like any other. The reason's
evidence names the words that weighed most, so it stays explained.

The model is a logistic regression over the presence of word tokens (scikit-learn at fit time, a
dict lookup here), written by `make fit` to data/content_model.json. It learns the words of lures
(phishing, malware) against legitimate mail; spam is left out of its training, because marketing words
are as much a newsletter's as a spammer's (scripts/fit_weights.py says what that bought and cost). Tokens are what a message says,
not where it came from:
- letters only (no digits: dates, versions and ids are artefacts of when and where mail was collected);
- the subject (list tags like "[Kasan-dev]" removed) and the start of the body text;
- the words of the recipients' names and addresses left out (they name who the mail went to);
- mailing-list footers cut off (Mailman, Google Groups, SourceForge's 2002 sponsor lines): they name
  the list a corpus message came from, and would teach the model lists rather than language.
No tenant data is in the model: it is fitted on the public development corpus only.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

MODEL_FILE = Path(__file__).parent / "data" / "content_model.json"

MAX_RECIPIENT_CHARS = 300  # the first recipients: a lure's To is short, a list's Cc is long
MAX_BODY_CHARS = 1_500  # a lure says what it wants early: in the fit 1,500 to 6,000 caught alike (1,000: less)
# A token is a whole run of 3-24 letters, any script (longer runs, such as base64 or a CJK sentence, are
# left out). Most mail is ASCII: there, mapping every non-letter to a space and splitting (C loops) reads
# the same runs as the regex at half its cost.
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_ASCII_NON_LETTERS = {i: " " for i in range(128) if not chr(i).isalpha()}
_SUBJECT_TAGS = re.compile(r"^\s*(?:(?:re|fwd?|aw|sv)\s*:\s*|\[[^\]]{0,60}\]\s*)+", re.IGNORECASE)
# Where a list's footer starts (text is casefolded): everything after it is the list's, not the sender's.
_FOOTER = re.compile(
    r"\n_{20,}\s*\n"  # Mailman
    r"|\n-{20,}\s*\nthis sf\.net email is sponsored"  # SourceForge lists, 2002
    r"|you received this (?:message|topic) because you are subscribed to the google groups"
    r"|\n--\s*\nto unsubscribe from this group"
)
_FOOTER_MARKERS = ("____", "sf.net", "google groups", "this group")
SUBJECT_PREFIX = "s:"
MIN_DF = 5  # the fit leaves out tokens fewer corpus messages carry (names, typos); `make features` too

# The reason: CONTENT_UNWANTED, whose value is what the words weigh (the sum of the token weights, in
# log-odds, above 0 and capped), so the signal fit learns points per unit: a stacked logistic regression.
# The model's intercept is left out: a two-line "see you tomorrow" has next to no words to weigh, and the
# base rate of the corpus it was fitted on is not evidence about it.
SIGNAL = "CONTENT_UNWANTED"
SIGNALS = (SIGNAL,)
MAX_VALUE = 12.0


def signal_for(word_logodds: float) -> tuple[str, float] | None:
    """(reason name, value) for what the words weigh, or None when they do not read as unwanted."""
    value = round(min(word_logodds, MAX_VALUE), 1)
    return (SIGNAL, value) if value > 0 else None


def words_of(text: str) -> list[str]:
    runs = text.translate(_ASCII_NON_LETTERS).split() if text.isascii() else _LETTER_RUN.findall(text)
    return [w for w in runs if 2 < len(w) < 25]


def content_tokens(subject: str | None, text: str, recipients: str = "") -> set[str]:
    """The tokens of a message: its subject's (prefixed) and its body text's, less the words of its
    recipients' names and addresses. `text` must be casefolded and free of invisible characters (the
    scorer's language text); `recipients` is the To and Cc text as it came."""
    body = text[:MAX_BODY_CHARS]
    if any(marker in body for marker in _FOOTER_MARKERS):  # the regex only where a footer can be
        footer = _FOOTER.search(body)
        if footer:
            body = body[:footer.start()]
    words = words_of(body)
    subject_words = words_of(_SUBJECT_TAGS.sub("", subject[:300]).casefold()) if subject else []
    if recipients:
        # "Dear osst-users", "Invoice for jane@contoso.com": words naming the recipient say who the mail
        # went to, not what it wants; in a corpus they name the list it was collected from.
        named = set(words_of(recipients[:MAX_RECIPIENT_CHARS].casefold()))
        if named:
            words = [w for w in words if w not in named]
            subject_words = [w for w in subject_words if w not in named]
    tokens = set(words)
    tokens.update(map("_".join, zip(words, words[1:], strict=False)))  # word pairs: "click_here", "dear_customer"
    tokens.update(SUBJECT_PREFIX + w for w in subject_words)
    return tokens


@dataclass(frozen=True, slots=True)
class ContentModel:
    intercept: float
    weights: dict[str, float]
    rank: dict[str, int] = field(default_factory=dict)  # tokens weighing for unwanted, heaviest first, ties
    # by token: the evidence's order is fixed, whatever the order a set yields them in

    @classmethod
    def of(cls, intercept: float, weights: dict[str, float]) -> ContentModel:
        order = sorted((t for t, w in weights.items() if w > 0), key=lambda t: (-weights[t], t))
        return cls(intercept, weights, {t: i for i, t in enumerate(order)})

    def reason(self, tokens: set[str]) -> tuple[str, float, str] | None:
        """(signal name, value, evidence) or None when the words do not read as unwanted."""
        weights = self.weights
        if not weights:
            return None
        words = math.fsum(filter(None, map(weights.get, tokens)))  # exact: the same whatever the set's order
        found = signal_for(words)
        if found is None:
            return None
        top = sorted(self.rank.keys() & tokens, key=self.rank.__getitem__)[:6]
        z = self.intercept + words
        p = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        return found[0], found[1], f"words weigh {words:+.1f} (p={p:.4f}); most: {', '.join(top) or '-'}"


_EMPTY = ContentModel.of(0.0, {})


def parse_content_model(data: dict) -> ContentModel:
    return ContentModel.of(float(data["intercept"]), {str(t): float(w) for t, w in data["weights"].items()})


@lru_cache(maxsize=1)
def content_model() -> ContentModel:
    """The shipped model; a missing or unreadable file means no content reason (the rules still run)."""
    try:
        return parse_content_model(json.loads(MODEL_FILE.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return _EMPTY
