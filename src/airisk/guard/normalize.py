"""Unicode normalisation run before any content classification.

Attackers hide text from classifiers with invisible characters and lookalike letters. We
(1) pull out Unicode "tag" characters (U+E0000..E007F, used for ASCII smuggling) and keep the text
they spell separately so it can be classified too, (2) strip zero-width, bidi-control, soft-hyphen
and variation-selector characters, (3) NFKC-normalise (fullwidth, ligatures, circled letters ...),
(4) map common Cyrillic and Greek homoglyphs to their ASCII lookalikes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001d173-\U0001d17a\U000e0100-\U000e01ef]")
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")

# Cyrillic and Greek letters that render like Latin ones (only unambiguous lookalikes).
HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "һ": "h", "ԛ": "q", "ԝ": "w",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X",
})


@dataclass(slots=True)
class Normalized:
    text: str  # what classifiers see (visible text + any smuggled tag text)
    changed: bool
    hidden: str  # text spelled by Unicode tag characters, if any
    removed: int  # invisible characters removed


def _is_mostly_cyrillic_or_greek(text: str) -> bool:
    """Genuine Russian/Greek text must not be transliterated into nonsense."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    foreign = sum(1 for c in letters if "\u0370" <= c <= "\u04ff")
    return foreign / len(letters) > 0.5


def normalize_text(text: str) -> Normalized:
    if text.isascii():
        return Normalized(text, False, "", 0)
    hidden_parts = []

    def take_tags(m: re.Match) -> str:
        hidden_parts.append("".join(chr(ord(c) - 0xE0000) for c in m.group(0) if 0xE0020 <= ord(c) <= 0xE007E))
        return ""

    t = _TAGS.sub(take_tags, text)
    t, removed = _INVISIBLE.subn("", t)
    t = unicodedata.normalize("NFKC", t)
    latin_text = not _is_mostly_cyrillic_or_greek(t)
    # Map lookalikes inside mixed-script words always, and everywhere in mostly-Latin text;
    # genuine Cyrillic/Greek words in Cyrillic/Greek text stay as they are.
    t = _WORD.sub(lambda m: m.group(0).translate(HOMOGLYPHS)
                  if latin_text or _LATIN.search(m.group(0)) else m.group(0), t)
    hidden = " ".join(p for p in hidden_parts if p)
    out = t + ("\n" + hidden if hidden else "")
    return Normalized(out, out != text, hidden, removed + sum(len(p) for p in hidden_parts))
