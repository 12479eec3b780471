"""Characters that render like ASCII letters in a domain name, mapped to the letter they imitate.

A hand-picked subset of Unicode's confusables.txt (UTS #39) limited to what can appear in an IDN label:
the full table has thousands of entries and a per-character library lookup costs more than this
engine's whole per-message budget, while a look-alike domain only needs its a-z skeleton.
"""

from __future__ import annotations

CONFUSABLE_CHARS: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "п": "n", "о": "o", "р": "p", "ԛ": "q", "г": "r", "ѕ": "s", "т": "t",
    "у": "y", "ԝ": "w", "х": "x", "ү": "y", "ь": "b", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ϲ": "c",
    # Latin look-alikes and symbols
    "ı": "i", "ł": "l", "ƚ": "l", "ɩ": "i", "ɑ": "a", "ȷ": "j", "ø": "o", "đ": "d", "ħ": "h",
    "ß": "ss", "æ": "ae", "œ": "oe",
    # digits people read as letters in a domain
    "0": "o", "1": "l", "3": "e", "5": "s", "@": "a",
}

# Letter pairs that render like one letter in most fonts ("rn" reads as "m").
CONFUSABLE_SEQUENCES: tuple[tuple[str, str], ...] = (("rn", "m"), ("vv", "w"), ("cl", "d"))
