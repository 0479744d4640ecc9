"""Question-form views of chunks: besides its text, a chunk is embedded as the question its structure
says it answers, and scored by its best view.

Generic templates over the document's structure only (no per-question wording):

- a key-value line ("Phone: …")  → "What is the {key}?", and for common keys (also a key-value
  sentence inside a paragraph, "Available at: <url>") (author, date, address,
  phone, e-mail, web) the forms in ``bot/data/field_questions.txt`` ("Who wrote this document?")
- the title block                → "What is the title of this document and who wrote it?"
- a table row                    → "What should be done for {row label} in {table title}?"
- the opening paragraph, and the first paragraph of a section whose heading names its kind (a
  disclaimer)                    → the forms in ``bot/data/section_questions.txt``

A view is a :class:`~bot.records.Chunk` of kind ``view`` over the *same verbatim span* as its chunk, its
``context`` holding the question form; search maps it back to the chunk it stands for, so a citation is
always the chunk's own span. Views carry no lexical weight (BM25 indexes chunks only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from bot.boilerplate import KIND as BOILERPLATE
from bot.chunking import SEP, chunk_id
from bot.datafiles import data_lines, forms
from bot.records import Chunk

KIND = "view"
_KEY_RE = re.compile(r"^\s*([A-Za-z][A-Za-z .-]{0,24}):\s*\S")
_INNER_KEY_RE = re.compile(r"(?<=\S)\s+\*\*([A-Za-z][A-Za-z .-]{0,24}):\*\*\s*\S")  # "… **Date:** …"


@lru_cache(maxsize=1)
def field_questions() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """(key pattern, question forms) from ``bot/data/field_questions.txt``."""
    out = []
    for line in data_lines("field_questions.txt"):
        pattern, _, text = line.partition(" : ")
        out.append((re.compile(pattern.strip(), re.I), forms(text)))
    return tuple(out)


def question_forms(chunk: Chunk) -> list[str]:
    """The question forms of one chunk (none for most kinds)."""
    if chunk.kind == "field" and SEP in chunk.context:
        key = chunk.context.rsplit(SEP, 1)[1].rstrip(".").strip()
        if not key:
            return []
        # a line holding further pairs ("Author: … **Date:** February 2026") answers their keys too
        keys = [key, *(k.strip() for k in _INNER_KEY_RE.findall(chunk.text))]
        extra = [f for k in keys for pattern, fs in field_questions() if pattern.fullmatch(k) for f in fs]
        return [f"What is the {key}?", *dict.fromkeys(extra)]
    if chunk.kind in ("sentence", BOILERPLATE):  # "Available at: <https://…>" inside a paragraph
        m = _KEY_RE.match(chunk.text)
        key = m.group(1).strip() if m else ""
        return [f for pattern, fs in field_questions() if key and pattern.fullmatch(key) for f in fs]
    if chunk.kind == "title":
        return ["What is the title of this document and who wrote it?"]
    if chunk.kind == "table_row" and chunk.cells:
        table = chunk.context.split(SEP, 1)[0]
        label = " ".join(c for c in chunk.cells[:-1] if c)
        return [f"What should be done for {label} in {table}?"] if label else []
    return []


@lru_cache(maxsize=1)
def section_questions() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(heading pattern or "(opening)", question forms) from ``bot/data/section_questions.txt``."""
    out = []
    for line in data_lines("section_questions.txt"):
        pattern, _, text = line.partition(" : ")
        out.append((pattern.strip(), forms(text)))
    return tuple(out)


def section_forms(chunks: Sequence[Chunk]) -> dict[int, list[str]]:
    """Question forms of the first paragraph of each section whose heading names a kind of section
    (a disclaimer), and of the document's opening paragraph, by chunk position."""
    rules = section_questions()
    out: dict[int, list[str]] = {}
    seen_sources: set[str] = set()
    seen_sections: set[tuple[str, str]] = set()
    for k, c in enumerate(chunks):
        if c.kind != "paragraph":
            continue
        section = c.context.split(SEP)[0]
        forms: list[str] = []
        if c.source not in seen_sources:
            seen_sources.add(c.source)
            forms += [f for pattern, fs in rules if pattern == "(opening)" for f in fs]
        if (c.source, section) not in seen_sections:
            seen_sections.add((c.source, section))
            forms += [
                f
                for pattern, fs in rules
                if pattern != "(opening)" and re.search(pattern, section, re.I)
                for f in fs
            ]
        if forms:
            out[k] = forms
    return out


def derive_views(chunks: Sequence[Chunk]) -> list[Chunk]:
    """One view chunk per question form of each chunk, in chunk order."""
    out: list[Chunk] = []
    by_section = section_forms(chunks)
    for k, c in enumerate(chunks):
        for form in [*question_forms(c), *by_section.get(k, ())]:
            vid = chunk_id(c.source, c.start, c.end, f"{c.text}\x00{KIND}\x00{form}")
            out.append(Chunk(vid, c.source, c.start, c.end, c.text, form, KIND))
    return out
