"""How the source's text reads on screen, and faqbot's own citation marker. Pure, no dependencies.

The source writes a few clinical values in inline TeX (``CPK $>10x$ ULN``, ``$\\geq 1.5x$ baseline``) and
carries Markdown links (``[Get Quote](#)``). :func:`readable` turns these into what a clinician should read
("CPK > 10× ULN", "≥ 1.5× baseline", "Get Quote"); anything it does not know is left exactly as written,
so nothing is ever guessed. Citations keep the verbatim span: only views and answer text use this.

faqbot marks its own citations ``[^n]`` (Markdown's footnote reference), never ``[n]``: the source has its
own bracketed reference marks ("indicated [1] [2]") and the two must not be confused. :func:`cite_mark`
is the one place that format is written; :data:`CITE_MARK_RE` reads it back.
"""

from __future__ import annotations

import re

CITE_MARK_RE = re.compile(r"\[\^(\d{1,4})\]")

# Pandoc's rule: no space just inside the dollars and no digit right after the closing one ("$5 and $10").
_MATH_RE = re.compile(r"(?<![\\$])\$(?=[^\s$])([^$\n]{1,200}?)(?<=\S)\$(?!\d)")
# One token of an inline formula: a known command, a relation, a number with an optional "x" multiplier,
# a word, or space. Anything else (braces, ^, _, an unknown command) makes the formula unknown.
_TOKEN_RE = re.compile(
    r"(?P<cmd>\\[A-Za-z]+)|(?P<rel>[<>=≤≥≠])|(?P<num>\d+(?:\.\d+)?)(?P<times>[x×])?(?![A-Za-z])"
    r"|(?P<word>[A-Za-z]+)|(?P<pct>\\?%)|(?P<sign>[+\-−±])|(?P<space>\s+)"
)
COMMANDS = {
    "\\geq": "≥",
    "\\ge": "≥",
    "\\leq": "≤",
    "\\le": "≤",
    "\\gt": ">",
    "\\lt": "<",
    "\\neq": "≠",
    "\\times": "×",
    "\\pm": "±",
    "\\approx": "≈",
}
_RELATIONS = {">", "<", "=", "≤", "≥", "≠", "≈"}
# [text](target) with non-empty text and no nested brackets; images (![..](..)) are left as written.
_LINK_RE = re.compile(r"(?<!!)\[([^\[\]\n]+)\]\(([^()\s]*)\)")
_AUTOLINK_RE = re.compile(r"<(https?://[^\s<>]+)>")


def cite_mark(n: int) -> str:
    """faqbot's marker for its citation number ``n`` in answer text: ``[^n]``."""
    return f"[^{int(n)}]"


def formula(tex: str) -> str | None:
    """One inline formula's body as readable text (``>10x`` → "> 10×"); None if any part is unknown."""
    tokens: list[str] = []
    pos = 0
    while pos < len(tex):
        m = _TOKEN_RE.match(tex, pos)
        if m is None:
            return None
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        if kind == "cmd":
            if m.group("cmd") not in COMMANDS:
                return None
            tokens.append(COMMANDS[m.group("cmd")])
        elif kind in ("num", "times"):
            tokens.append(m.group("num") + ("×" if m.group("times") else ""))
        elif kind == "pct":
            tokens.append("%")
        elif kind == "sign" and m.group("sign") == "-":
            tokens.append("−")
        else:
            tokens.append(m.group(0))
    if not tokens:
        return None
    out = ""
    for k, tok in enumerate(tokens):
        if k and tok != "%" and not (tokens[k - 1] in "+−±" and k == 1):
            out += " "
        out += tok
    return out


def _math(m: re.Match[str]) -> str:
    shown = formula(m.group(1))
    return m.group(0) if shown is None else shown


def readable(text: str) -> str:
    """Source text as it should read: inline TeX and Markdown links made plain, all else as written."""
    if "$" in text:
        text = _MATH_RE.sub(_math, text)
    if "](" in text:
        text = _LINK_RE.sub(lambda m: m.group(1), text)
    if "<http" in text:
        text = _AUTOLINK_RE.sub(lambda m: m.group(1), text)
    return text
