"""Web-page boilerplate detection (navigation, calls to action, download prompts), from
``bot/data/boilerplate.txt``. Pure; used at chunk time to give such chunks their own kind, and at
search time to keep them out of answers unless the question is about ordering or contact."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

KIND = "boilerplate"
_MARKUP_RE = re.compile(r"\*\*|__|(?<!\w)[*_](?!\s)|^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


@lru_cache(maxsize=1)
def _rules() -> tuple[tuple[re.Pattern[str], ...], frozenset[str]]:
    text = resources.files("bot").joinpath("data/boilerplate.txt").read_text(encoding="utf-8")
    patterns: list[re.Pattern[str]] = []
    intent: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("intent:"):
            intent.update(t.strip().lower() for t in line[len("intent:") :].split(",") if t.strip())
        else:
            patterns.append(re.compile(line, re.I))
    return tuple(patterns), frozenset(intent)


def is_boilerplate(text: str) -> bool:
    """True for a navigation line, a link-only line or a call to action (one chunk's text)."""
    plain = " ".join(_MARKUP_RE.sub("", text).split())
    if not plain or len(plain) > 300:  # a long passage is content, whatever it starts with
        return False
    return any(p.search(plain) for p in _rules()[0])


def intent_terms() -> frozenset[str]:
    """Question words that make boilerplate citable (ordering, contact, downloads)."""
    return _rules()[1]
