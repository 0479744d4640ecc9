"""Structure-aware chunking: title block, sections, paragraphs, list items and one chunk per table row.

Every chunk is a verbatim span: ``chunk.text == document.text[chunk.start:chunk.end]``. A table row keeps
its table title (as ``context``), the header (``header``) and its row label; a continuation row with an
empty first cell inherits the label above. Long prose is split with langchain-text-splitters.

Pure: plain text in, :class:`~bot.records.Chunk` records out. No model, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.boilerplate import KIND as BOILERPLATE
from bot.boilerplate import is_boilerplate
from bot.records import Chunk, Document

CHUNKER_VERSION = "7"
CAPTION = "caption"  # the heading right above a table
MAX_CHUNK_CHARS = 800
HEADING_MAX_CHARS = 80
TITLE_BLOCK_LINE_MAX = 100
# A lead-in ending with ":" and the list after it, when together at most this long, are also one chunk of
# kind "list": a question the lead-in asks ("Q1: What is the monitoring schedule? A: It includes:") is
# answered by every item, not by the first one.
LIST_BLOCK = "list"
LIST_BLOCK_MAX = 600
SEP = " › "

_Emit = Callable[..., str]

_LIST_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_MD_HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# A sentence ends at . ! or ? (optionally closed by ** or a citation like [1]) followed by space and a capital.
_SENTENCE_END_RE = re.compile(r"[.!?](?:\*\*)?(?:\s*\[\d+\])*\s+(?=[A-Z*\[(\"0-9])")
_ABBREV_END_RE = re.compile(r"(?:\b(?:No|Cat|aka|Inc|Dr|vs|al|Fig|approx|e\.g|i\.e|etc)|\b[A-Z])\.$")
_BOLD_LABEL_RE = re.compile(r"(?:[-*+•]\s+)?\*\*([^*]{1,60}?)\*\*")
MIN_SENTENCE_CHARS = 20
_KEY_VALUE_RE = re.compile(r"^[A-Z][A-Za-z .&/()-]{0,30}:\s+\S")
_PIPE_SEP_RE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int  # end of content, excluding the newline
    text: str


@dataclass(frozen=True, slots=True)
class _Block:
    kind: str  # md_heading | table | pipe_table | list | para
    lines: tuple[_Line, ...]

    @property
    def start(self) -> int:
        return self.lines[0].start

    @property
    def end(self) -> int:
        return self.lines[-1].end

    @property
    def single_text(self) -> str:
        return self.lines[0].text.strip()


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    """Content-hash id: stable for the same span of the same file."""
    return hashlib.sha256(f"{source}\x00{start}\x00{end}\x00{text}".encode()).hexdigest()[:16]


def _lines(text: str) -> Iterator[_Line]:
    pos = 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n")
        yield _Line(pos, pos + len(content), content)
        pos += len(raw)


def _blocks(text: str) -> list[_Block]:
    groups: list[list[_Line]] = [[]]
    for line in _lines(text):
        if line.text.strip():
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    blocks: list[_Block] = []
    for group in groups:
        if not group:
            continue
        if len(group) == 1 and _MD_HEADING_RE.match(group[0].text):
            kind = "md_heading"
        elif len(group) >= 2 and all("\t" in ln.text for ln in group):
            kind = "table"
        elif len(group) >= 2 and group[0].text.strip().startswith("|") and _PIPE_SEP_RE.match(group[1].text):
            kind = "pipe_table"
        elif _LIST_RE.match(group[0].text):
            kind = "list"
        else:
            kind = "para"
        blocks.append(_Block(kind, tuple(group)))
    return blocks


def _is_heading_candidate(block: _Block) -> bool:
    if block.kind == "md_heading":
        return True
    if block.kind != "para" or len(block.lines) != 1:
        return False
    line = block.single_text
    return len(line) <= HEADING_MAX_CHARS and not line.endswith((".", ",", ";"))


def _is_key_value(block: _Block) -> bool:
    """'Address: Ontario, CA' style lines: a short key, a colon, a value."""
    return block.kind == "para" and _KEY_VALUE_RE.match(block.single_text) is not None


def field_key(line: str) -> str:
    """The key of a key-value line ('**Author:** X' → 'Author'), or '' when it has none."""
    m = _KEY_VALUE_RE.match(line.replace("**", ""))
    return m.group(0).split(":", 1)[0].strip() if m else ""


def _field_context(section: str, line: str) -> str:
    key = field_key(line)
    if not key:
        return section
    return f"{section}{SEP}{key}" if section else key


def _heading_text(block: _Block) -> str:
    m = _MD_HEADING_RE.match(block.lines[0].text)
    return m.group(2).strip() if m else block.single_text


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) so that it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class Chunker:
    """Turns a :class:`Document` into chunks. Cheap to construct; all work happens in :meth:`chunk`."""

    version = CHUNKER_VERSION

    def __init__(self, max_chars: int = MAX_CHUNK_CHARS) -> None:
        self.max_chars = max_chars

    def chunk(self, doc: Document) -> list[Chunk]:
        text = doc.text
        blocks = _blocks(text)
        out: list[Chunk] = []

        def emit(
            start: int,
            end: int,
            context: str,
            kind: str,
            header: tuple[str, ...] = (),
            cells: tuple[str, ...] = (),
        ) -> str:
            start, end = _trim(text, start, end)
            if start >= end:
                return kind
            span = text[start:end]
            if kind != "table_row" and is_boilerplate(span):
                kind = BOILERPLATE  # navigation / call to action: indexed, cited only when asked for
            out.append(
                Chunk(
                    chunk_id(doc.source, start, end, span),
                    doc.source,
                    start,
                    end,
                    span,
                    context,
                    kind,
                    header,
                    cells,
                )
            )
            return kind

        i = 0
        title = ""
        # Title block: a short first line, and the short lines after it up to the first body block.
        if blocks and _is_heading_candidate(blocks[0]):
            title = _heading_text(blocks[0])
            j = 1
            while (
                j < len(blocks)
                and blocks[j].kind == "para"
                and len(blocks[j].lines) == 1
                and len(blocks[j].single_text) <= TITLE_BLOCK_LINE_MAX
            ):
                j += 1
            emit(blocks[0].start, blocks[j - 1].end, title, "title")
            if j > 1:  # each metadata line of the block ("CAS No.: …") is also findable on its own
                for b in blocks[1:j]:
                    emit(b.start, b.end, _field_context(title, b.single_text), "field")
            i = j

        section = title
        while i < len(blocks):
            block = blocks[i]
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if (
                _is_heading_candidate(block)
                and not _is_key_value(block)
                and not is_boilerplate(block.single_text)  # a call to action is never a section title
                # a line ending with ":" right before a list is that list's lead-in, not a title
                and not (nxt is not None and nxt.kind == "list" and block.single_text.rstrip().endswith(":"))
                and nxt is not None
                and (block.kind == "md_heading" or not _is_heading_candidate(nxt) or _is_key_value(nxt))
            ):
                section = _heading_text(block)
                if nxt.kind in ("table", "pipe_table"):
                    # a table's caption says what the table is about ("Table 2: Management of …"):
                    # findable and citable itself, not only as its rows' context
                    emit(block.start, block.end, section, CAPTION)
                i += 1
                continue
            if block.kind in ("table", "pipe_table"):
                self._table(text, block, section, emit)
            elif block.kind == "list":
                prev = blocks[i - 1] if i > 0 else None
                context = section
                if (
                    prev is not None
                    and prev.kind == "para"
                    and text[prev.start : prev.end].rstrip().endswith(":")
                ):
                    lead = " ".join(text[prev.start : prev.end].split())
                    context = f"{section}{SEP}{lead}" if section else lead
                    if block.end - prev.start <= LIST_BLOCK_MAX:
                        # the lead-in and the list it introduces answer together ("A: The protocol
                        # includes:" + its items): one unit, besides each item on its own
                        emit(prev.start, block.end, section, LIST_BLOCK)
                for start, end in _list_items(block):
                    emit(start, end, context, "list_item")
                    self._sentences(text, start, end, context, emit)
            elif (
                _is_key_value(block)
                and len(block.lines) == 1
                and len(block.single_text) <= TITLE_BLOCK_LINE_MAX
            ):
                # "Phone: …", "CAS No.: …": indexed under its key, so a question about the key finds it
                emit(block.start, block.end, _field_context(section, block.single_text), "field")
            else:
                self._prose(text, block.start, block.end, section, emit)
            i += 1
        return out

    def _sentences(
        self, text: str, start: int, end: int, context: str, emit: _Emit, kind: str = "sentence"
    ) -> None:
        """Sentence sub-chunks of a multi-sentence unit, so answers can cite the one sentence that answers
        (``kind`` boilerplate when the unit is)."""
        spans = sentence_spans(text, start, end)
        if len(spans) < 2:
            return
        label = _BOLD_LABEL_RE.match(text, start, end)
        if label:
            context = f"{context}{SEP}{label.group(1).rstrip(':').strip()}" if context else label.group(1)
        for s_start, s_end in spans:
            emit(s_start, s_end, context, kind)

    def _prose(self, text: str, start: int, end: int, context: str, emit: _Emit) -> None:
        if end - start <= self.max_chars:
            unit = emit(start, end, context, "paragraph")
            self._sentences(
                text, start, end, context, emit, BOILERPLATE if unit == BOILERPLATE else "sentence"
            )
            return
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.max_chars,
            chunk_overlap=0,
            separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
            keep_separator="end",
        )
        para = text[start:end]
        cursor = 0
        for piece in splitter.split_text(para):
            piece = piece.strip()
            if not piece:
                continue
            at = para.find(piece, cursor)
            if at < 0:  # defensive: the splitter changed the text; fall back to the whole block
                emit(start, end, context, "paragraph")
                return
            emit(start + at, start + at + len(piece), context, "paragraph")
            self._sentences(text, start + at, start + at + len(piece), context, emit)
            cursor = at + len(piece)

    def _table(self, text: str, block: _Block, title: str, emit: _Emit) -> None:
        pipe = block.kind == "pipe_table"
        rows = [ln for k, ln in enumerate(block.lines) if not (pipe and k == 1)]
        header = tuple(_cells(rows[0].text, pipe))
        label = ""
        for line in rows[1:]:
            cells = _cells(line.text, pipe)
            if cells and cells[0]:
                label = cells[0]
            elif label:
                cells = [label, *cells[1:]]
            context = f"{title}{SEP}{label}" if title else label
            emit(line.start, line.end, context, "table_row", header, tuple(cells))


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` (list markers and bold labels stay with their sentence)."""
    spans: list[tuple[int, int]] = []
    cur = start
    for m in _SENTENCE_END_RE.finditer(text, start, end):
        before = text[cur : m.start() + 1]
        if _ABBREV_END_RE.search(before):
            continue
        s, e = _trim(text, cur, m.start() + 1)
        if e - s >= MIN_SENTENCE_CHARS:
            spans.append((s, e))
            cur = m.end()
    s, e = _trim(text, cur, end)
    if e > s:
        if e - s < MIN_SENTENCE_CHARS and spans:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans


def _cells(line: str, pipe: bool) -> list[str]:
    if pipe:
        inner = line.strip()
        inner = inner[1:] if inner.startswith("|") else inner
        inner = inner[:-1] if inner.endswith("|") else inner
        return [c.strip() for c in inner.split("|")]
    return [c.strip() for c in line.split("\t")]


def _list_items(block: _Block) -> Iterator[tuple[int, int]]:
    start = block.lines[0].start
    end = block.lines[0].end
    for line in block.lines[1:]:
        if _LIST_RE.match(line.text):
            yield start, end
            start = line.start
        end = line.end
    yield start, end


def chunk_documents(docs: list[Document], chunker: Chunker | None = None) -> list[Chunk]:
    chunker = chunker or Chunker()
    return [c for d in docs for c in chunker.chunk(d)]
