"""Question normalisation before retrieval: what clinicians type, read as the corpus words it stands for.

Pure text in, text out; used for searching and for deciding corpus support, never for what is cited.

- Shorthand from a curated list (``bot/data/abbreviations.tsv``, its source named there) is expanded:
  "tox" → "toxicity", "q3 cycles" → "every three cycles". Only tokens the corpus itself lacks.
- Joined names are split: "avutometinib/defactinib", "avuto+defac" → two words.
- British and American spellings are read as the corpus's ("tumours" → "tumors").
- Two corpus terms run together are split ("avutometinibdefactinib"); schedule shorthand is spelled
  out ("D15" → "day 15", "C2D1" → "cycle 2 day 1").
- Clipped forms are completed from the corpus vocabulary by prefix: "avuto" → "avutometinib",
  "rhabdo" → "rhabdomyolysis" (a word of at least :data:`CLIP_MIN` letters that neither the corpus nor
  common English knows, and that begins a corpus term).

Every step is one pass over the question's tokens with a bounded amount of work per token (a dictionary
lookup, a bisect over the sorted vocabulary), so the cost is linear in the question's length.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache
from importlib import resources

CLIP_MIN = 4  # shortest clipped form completed from the corpus vocabulary
CLIP_MAX = 24  # longer "words" are never completed (no corpus term is that long a prefix)
COMMON_ZIPF = 3.5  # a word at least this common in English is left as written
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'/]*")
_JOIN_RE = re.compile(r"(?<=[A-Za-z]{2})\s*[/+]\s*(?=[A-Za-z]{2})")
# "G3", "gr3", "Gr. 3", "grd 2" → "grade 3" (CTCAE grades 1-5 only; "G6PD" and "q3" are left alone).
_GRADE_RE = re.compile(r"\b(?:g|gr|grd)\.?\s?([1-5])\b", re.I)
# Schedule shorthand of oncology charts: "D15" → "day 15", "C2D1" → "cycle 2 day 1".
_DAY_RE = re.compile(r"\b(?:c(\d{1,2}))?d(\d{1,2})\b", re.I)
SPLIT_MIN = 4
# British spellings and their American forms ("tumours" → "tumors", "signalling" → "signaling"): a word the
# corpus lacks is read as its other spelling when the corpus has that one.
_SPELLINGS = (
    ("our", "or"),
    ("isation", "ization"),
    ("ise", "ize"),
    ("ised", "ized"),
    ("ising", "izing"),
    ("yse", "yze"),
    ("ae", "e"),
    ("oe", "e"),
    ("lled", "led"),
    ("lling", "ling"),
    ("tre", "ter"),
    ("ogue", "og"),
)  # each half of a word run together from two corpus terms ("avutometinibdefactinib")


@lru_cache(maxsize=1)
def abbreviations() -> dict[str, str]:
    """shorthand (lowercase) → expansion, from ``bot/data/abbreviations.tsv``."""
    text = resources.files("bot").joinpath("data/abbreviations.tsv").read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        short, _, full = line.partition("\t")
        if short.strip() and full.strip():
            table[short.strip().lower()] = full.strip()
    return table


def completion(word: str, sorted_terms: Sequence[str]) -> str | None:
    """The corpus term a clipped ``word`` stands for: the shortest term it begins, when every term it
    begins is that term or a form of it ("toxi" → toxicity / toxicities); None when none or ambiguous
    ("creat": creatine or creatinine)."""
    if not (CLIP_MIN <= len(word) <= CLIP_MAX) or not word.isalpha():
        return None
    i = bisect.bisect_left(sorted_terms, word)
    found: list[str] = []
    # At most a handful of terms share a 4+ letter prefix; the scan stops at the first that does not.
    for term in sorted_terms[i : i + 64]:
        if not term.startswith(word):
            break
        if term != word and term.isalpha():
            found.append(term)
    if not found:
        return None
    best = min(found, key=len)
    stem = best[:-1] if best.endswith("y") else best
    return best if all(t.startswith(stem) for t in found) else None


def _other_spelling(word: str, terms: Collection[str]) -> str | None:
    """The corpus's spelling of a British or American variant ("tumours" → "tumors"); None if none."""
    if not word.isalpha() or len(word) > CLIP_MAX:
        return None
    for a, b in _SPELLINGS:
        for x, y in ((a, b), (b, a)):
            k = word.find(x)
            if k > 0:
                variant = word[:k] + y + word[k + len(x) :]
                if variant in terms or (variant.endswith("s") and variant[:-1] in terms):
                    return variant
    return None


def _hyphenated(word: str, terms: Collection[str]) -> str | None:
    """A name the corpus writes with a hyphen, typed without one ("ramp201" → "ramp-201")."""
    m = _LETTERS_DIGITS_RE.fullmatch(word)
    if m and f"{m.group(1)}-{m.group(2)}" in terms:
        return f"{m.group(1)}-{m.group(2)}"
    return None


# An amount written against its unit ("200mg", "0.8mg/kg", "5ml"): the unit is a word of its own.
_NUMBER_UNIT_RE = re.compile(
    r"(?<![\w.])(\d{1,6}(?:\.\d{1,3})?)(mg|mcg|µg|ug|g|kg|ml|mL|l|mmol|umol|µmol|iu)(?![a-z])", re.I
)
# "stop the rash from happening", "keep it from coming back": prevention said in everyday words
_KEEP_FROM_RE = re.compile(
    r"(?<![\w])(?:stop|keep|stops|keeps|stopping|keeping)\s+((?:(?:the|a|an|it|this|that|her|his|their)\s+)?"
    r"(?:[a-z-]+\s+){0,2}?)from\s+(?:happening|occurring|developing|starting|appearing|coming(?:\s+back)?|"
    r"getting\s+worse)(?![\w])",
    re.I,
)
_UP_FRONT_RE = re.compile(r"(?<![\w])up[\s-]+front(?![\w])", re.I)  # "give something up front": upfront
# "her 2nd cycle", "the third cycle": the source numbers cycles ("Cycle 2")
_ORDINAL_CYCLE_RE = re.compile(r"(?<![\w])(\d{1,2})(?:st|nd|rd|th)\s+cycles?\b", re.I)
_LETTERS_DIGITS_RE = re.compile(r"([a-z]{2,12})(\d{1,6})")


def _split_joined(word: str, terms: Collection[str]) -> str | None:
    """Two corpus terms run together ("avutometinibdefactinib" → "avutometinib defactinib"); None when no
    single split point gives two terms of at least :data:`SPLIT_MIN` letters. At most ``len(word)`` set
    lookups (words longer than twice :data:`CLIP_MAX` are left alone)."""
    if not word.isalpha() or len(word) < 2 * SPLIT_MIN or len(word) > 2 * CLIP_MAX:
        return None
    for k in range(SPLIT_MIN, len(word) - SPLIT_MIN + 1):
        if word[:k] in terms and word[k:] in terms:
            return f"{word[:k]} {word[k:]}"
    return None


def normalize_query(
    question: str,
    terms: Collection[str],
    sorted_terms: Sequence[str],
    common: Callable[[str], float],
) -> str:
    """``question`` with shorthand expanded, joined names split and clipped forms completed.

    ``terms``/``sorted_terms``: the corpus vocabulary (lowercase tokens); ``common``: a word's Zipf
    frequency in English (0 when unknown)."""
    text = _JOIN_RE.sub(" / ", question) if ("/" in question or "+" in question) else question
    text = _GRADE_RE.sub(r"grade \1", text)
    text = _NUMBER_UNIT_RE.sub(r"\1 \2", text)
    text = _KEEP_FROM_RE.sub(r"prevent \1", text)
    text = _UP_FRONT_RE.sub("upfront", text)
    text = _ORDINAL_CYCLE_RE.sub(r"cycle \1", text)
    text = _DAY_RE.sub(lambda m: (f"cycle {m.group(1)} " if m.group(1) else "") + f"day {m.group(2)}", text)
    table = abbreviations()

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if low in terms:
            return word
        full = table.get(low)
        if full is not None:
            return full
        if "/" in low or "'" in low or common(low) >= COMMON_ZIPF:
            return word
        done = _other_spelling(low, terms) or _hyphenated(low, terms) or completion(low, sorted_terms)
        if done is None:
            done = _split_joined(low, terms)
        return done if done is not None else word

    return _WORD_RE.sub(fix, text)
