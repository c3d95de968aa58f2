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


# --- decoding candidates -------------------------------------------------------------------------
#
# Red-team mutators (airisk.attacks.mutators) carry a request past a classifier by encoding it:
# leetspeak, spaced-out letters, base64, ROT13, reversed text (plus the zero-width and homoglyph
# tricks normalize_text already undoes). ``candidates`` returns the text as a classifier should see
# it, plus one decoded variant per encoding it finds; the content guard classifies every candidate
# and takes the worst score. Nothing here depends on the classifier, so the classifier can be
# swapped. Decoders only fire when the decoded text reads more like English than the original
# (a share of common function words), so ordinary text yields just itself: that is what keeps the
# false-positive rate where it was.

_FUNCTION_WORDS = frozenset(
    "a about after all an and any are as at be because been but by can could did do does for from get give "
    "has have help how i if in into is it its just make me my need no not of on or our out please should so "
    "some tell than that the their them then there these they this to up use want was way we what when where "
    "which who why will with would write you your".split())
_TOKEN = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_LEET_MAP = str.maketrans({"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "5": "s", "$": "s",
                           "7": "t", "+": "t", "8": "b", "9": "g"})
_LEET_WORD = re.compile(r"[A-Za-z0-9@$!+]+")
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")

MAX_DECODED_CHARS = 100_000  # per text; decoding never grows work past a fixed bound
MAX_LINES = 2_000


@dataclass(slots=True)
class Candidate:
    """One way of reading a text: ``how`` names the decoding ("plain" for the text itself)."""

    text: str
    how: str


def english_score(text: str) -> float:
    """Share of word tokens that are common English function words (0 for none or no words)."""
    toks = [t.lower() for t in _TOKEN.findall(text)]
    return sum(t in _FUNCTION_WORDS for t in toks) / len(toks) if toks else 0.0


def _reads_better(decoded: str, original: str, margin: float = 0.15, floor: float = 0.2) -> bool:
    d = english_score(decoded)
    return d >= floor and d >= english_score(original) + margin


def _per_line(text: str, decode, english: bool = True) -> tuple[str, str] | None:
    """Apply ``decode`` line by line (mutators wrap an English instruction around the payload),
    keeping a line's decoding only where it reads more like English (``english=False``: wherever
    the decoder changed it, for decoders whose trigger is itself specific). Returns (the whole text
    with those lines decoded, the decoded lines alone), or None if nothing changed."""
    out, payload = [], []
    for line in text.split("\n")[:MAX_LINES]:
        dec = decode(line) if line.strip() else None
        if dec and dec != line and (not english or _reads_better(dec, line)):
            out.append(dec)
            payload.append(dec)
        else:
            out.append(line)
    return ("\n".join(out), "\n".join(payload)) if payload else None


def _leet(line: str) -> str:
    toks = _LEET_WORD.findall(line)
    mixed = [w for w in toks if any(c.isalpha() for c in w) and not w.isalpha()]
    heavy = bool(toks) and len(mixed) >= 0.3 * len(toks)  # mostly leet: "47" is "at" here, not a number

    def fix(m: re.Match) -> str:
        w = m.group(0)
        return w.translate(_LEET_MAP) if heavy or (any(c.isalpha() for c in w) and not w.isalpha()) else w
    return _LEET_WORD.sub(fix, line)


def _despace(line: str) -> str:
    # "h o w   t o" (the spacing mutator puts one space inside words and three between them)
    toks = line.split()
    if len(toks) < 4 or sum(len(t) == 1 for t in toks) < 0.6 * len(toks):
        return line
    words = re.split(r"\s{2,}", line.strip())
    if len(words) == 1:  # single spaces only: the word breaks are lost, join everything
        return line.replace(" ", "")
    return " ".join(w.replace(" ", "") for w in words)


def _rot13(line: str) -> str:
    import codecs
    return codecs.encode(line, "rot13")


def _reverse(line: str) -> str:
    return line[::-1]


def _b64_decode(run: str) -> str | None:
    import base64
    import binascii

    s = run.replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        raw = base64.b64decode(s, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(c.isprintable() or c.isspace() for c in text)
    return text if text and printable / len(text) > 0.95 else None


def _base64(text: str) -> tuple[str, str] | None:
    budget = [MAX_DECODED_CHARS]
    payload: list[str] = []

    def sub(m: re.Match) -> str:
        if budget[0] <= 0:
            return m.group(0)
        dec = _b64_decode(m.group(0))
        if dec is None or not any(c.isalpha() for c in dec):
            return m.group(0)
        budget[0] -= len(dec)
        payload.append(dec)
        return dec
    out = _B64_RUN.sub(sub, text)
    return (out, "\n".join(payload)) if payload else None


DECODERS = (  # (name, whole-text decoder); the line-wise ones only keep lines that read better
    ("base64", _base64),
    ("leetspeak", lambda t: _per_line(t, _leet)),
    ("spacing", lambda t: _per_line(t, _despace, english=False)),  # fires only on mostly one-letter tokens
    ("rot13", lambda t: _per_line(t, _rot13)),
    ("reversed", lambda t: _per_line(t, _reverse)),
)


def candidates(text: str, *, max_chars: int = MAX_DECODED_CHARS) -> tuple[Normalized, list[Candidate]]:
    """The Unicode-normalised text and every decoded reading of it worth classifying.

    The first candidate is always the normalised text itself ("plain"). Each decoder that fires
    adds two readings: the whole text with the encoded part decoded, and the decoded part alone
    (a classifier can score a request lower when it sits under an instruction such as "decode
    this and answer"). Each reading is decoded once more by the other decoders (base64 of
    leetspeak, ROT13 inside base64 ...), so two stacked encodings are undone. At most
    1 + 2*D + 4*D*(D-1) readings for D decoders, each cut to ``max_chars``.
    """
    n = normalize_text(text)
    out = [Candidate(n.text, "plain")]
    seen = {n.text}

    def add(t: str, how: str) -> bool:
        if t and t.strip() and t not in seen:
            seen.add(t)
            out.append(Candidate(t, how))
            return True
        return False

    for name, dec in DECODERS:
        got = dec(n.text[:max_chars])
        if got is None:
            continue
        for reading in got:
            if not add(reading, name):
                continue
            for name2, dec2 in DECODERS:  # one more layer
                if name2 != name and (got2 := dec2(reading[:max_chars])) is not None:
                    for r2 in got2:
                        add(r2, f"{name}+{name2}")
    return n, out
