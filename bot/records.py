"""The plain records that flow through faqbot: small frozen dataclasses, no dict soup.

``Answer.to_dict()`` is the JSON contract shared by the CLI, the HTTP API and the UI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

_LINK_RE = re.compile(r"\[([^\]]*)\]\((?:[^)]*)\)")
_URL_RE = re.compile(r"<?https?://[^\s>\])]+>?")
_TEX = (("\\geq", "≥"), ("\\leq", "≤"), ("\\times", "×"), ("$", ""), ("**", ""), ("__", ""))


def plain(text: str) -> str:
    """Markdown/TeX reduced to its words: '[drugs.com](https://…)' → 'drugs.com', '$>10x$' → '>10x'."""
    text = _LINK_RE.sub(r"\1", text)
    text = _URL_RE.sub("", text)
    for old, new in _TEX:
        text = text.replace(old, new)
    return text


Route = Literal["answer", "abstain", "decision", "no_rule", "clarify"]
ROUTES: tuple[str, ...] = ("answer", "abstain", "decision", "no_rule", "clarify")


VIEW_TEXT_MAX = 100  # characters of a chunk embedded with its question form (a field, a row, a short line)
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s)")


def _lead(text: str, limit: int) -> str:
    """The text up to its first sentence end, at most ``limit`` characters (cut at a space)."""
    m = _SENTENCE_END_RE.search(text, 0, limit)
    if m:
        return text[: m.end()]
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked, through which face: what an audit record names (issue 13). Faces build one per request
    and pass it to ``Bot.ask`` / ``Bot.decide``; the library never guesses it."""

    face: str  # "api" | "ui" | "cli" | "cds-hooks" | "mcp" | "eval"
    user: str = "anonymous"  # authenticated user or trusted proxy identity
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A corpus file: ``source`` is its path relative to the project root, ``text`` its decoded content."""

    source: str
    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A verbatim span of a source document: ``text == document.text[start:end]``.

    ``context`` locates the span (section or table and row label); ``header`` holds a table's column
    names for table rows (empty otherwise); ``cells`` the row's cells with an inherited label filled in.
    """

    id: str
    source: str
    start: int
    end: int
    text: str
    context: str
    kind: str  # title | heading | paragraph | list_item | table_row
    header: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()

    def embed_text(self) -> str:
        """What gets embedded and indexed lexically: the context, then the text (rows as labelled cells),
        with markup (emphasis, link targets, URLs, TeX dollars) reduced to plain words."""
        if self.kind == "view":  # a question form of the span's chunk (bot/views.py): the form first;
            # a long passage would drown the form it is asked by, so its form stands alone
            return plain(f"{self.context}\n{_lead(self.text, VIEW_TEXT_MAX)}")
        if self.kind == "table_row" and self.header and self.cells:
            body = " | ".join(f"{h}: {c}" for h, c in zip(self.header, self.cells, strict=False))
        else:
            body = self.text
        return plain(f"{self.context}\n{body}" if self.context else body)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "context": self.context,
            "kind": self.kind,
            "header": list(self.header),
            "cells": list(self.cells),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chunk:
        return cls(
            id=str(d["id"]),
            source=str(d["source"]),
            start=int(d["start"]),
            end=int(d["end"]),
            text=str(d["text"]),
            context=str(d["context"]),
            kind=str(d["kind"]),
            header=tuple(str(h) for h in d.get("header", ())),
            cells=tuple(str(c) for c in d.get("cells", ())),
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its fused score and the component scores (dense cosine, BM25)."""

    chunk: Chunk
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered, verbatim source span shown with an answer."""

    n: int
    id: str
    source: str
    start: int
    end: int
    text: str
    context: str
    score: float

    @classmethod
    def of(cls, n: int, chunk: Chunk, score: float) -> Citation:
        return cls(n, chunk.id, chunk.source, chunk.start, chunk.end, chunk.text, chunk.context, score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "id": self.id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "context": self.context,
            "score": round(float(self.score), 6),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """A dose decision: the table's action cell verbatim, with the whole row quoted and located."""

    reaction: str
    severity: str
    action: str
    quote: str
    source: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "reaction": self.reaction,
            "severity": self.severity,
            "action": self.action,
            "quote": self.quote,
            "source": self.source,
            "start": self.start,
            "end": self.end,
        }


class FactsLike(Protocol):
    """The facts a dose answer used (``bot.dose.Facts``): serialized with only the stated values."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``Bot.ask`` returns; ``to_dict()`` is the JSON contract.

    ``facts`` holds the facts a dose answer used, one per reaction (empty for retrieval answers). In the
    JSON it is ``"facts": {...}`` with only the stated values; ``{}`` when there are none, and
    ``{"readings": [{...}, ...]}`` when one question named several reactions.
    """

    question: str
    route: Route
    text: str
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()
    decisions: tuple[Decision, ...] = ()
    missing: tuple[str, ...] = ()
    facts: tuple[FactsLike, ...] = ()

    @property
    def abstained(self) -> bool:
        return self.route == "abstain"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "route": self.route,
            "text": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "related": [c.to_dict() for c in self.related],
            "decisions": [d.to_dict() for d in self.decisions],
            "missing": list(self.missing),
            "facts": self.facts_dict(),
        }

    def facts_dict(self) -> dict[str, Any]:
        if len(self.facts) == 1:
            return self.facts[0].to_dict()
        if not self.facts:
            return {}
        return {"readings": [f.to_dict() for f in self.facts]}
