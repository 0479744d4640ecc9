"""HTML and Markdown views of answers and of the source, for the web UI and the export. Pure, no Gradio.

Everything that comes from a document or a user is escaped here (``esc``): ``<script>``, ``<img onerror>``,
markdown images/links and ``$…$`` show as the literal text they are. The only markup is the fixed tags of
this module. The views read the JSON contract (``Answer.to_dict()``), the same data the HTTP API returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.display import CITE_MARK_RE, readable
from bot.records import Chunk, Document

SEP = " › "
_BOLD_RE = re.compile(r"\*\*([^*\n]+?)\*\*")
# Characters that mean something to Markdown, KaTeX or template engines: written as numeric entities, so
# a renderer that looks at the raw string (marked, KaTeX auto-render, Handlebars) finds nothing to do.
# One table, applied once per character (so no entity is escaped twice).
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
    | {c: f"&#{ord(c)};" for c in "$`[]()!*_{}\\|~#"}
)

ROUTE_LABELS = {
    "answer": "Answer from the source",
    "abstain": "Not answered by the source",
    "decision": "Dose decision",
    "no_rule": "No specific criterion in the source",
    "clarify": "More information needed",
}
FACT_LABELS = {
    "reaction": "Adverse reaction",
    "grade": "CTCAE grade",
    "symptomatic": "Symptomatic",
    "suspected_scar": "Suspected SCAR",
    "cpk_uln": "CPK × ULN",
    "creatinine_baseline": "Serum creatinine × baseline",
    "aki": "Acute kidney injury",
}
# One-click follow-up questions offered for a missing fact (numbers are typed, not clicked).
CHOICES: dict[str, tuple[str, ...]] = {
    "reaction": ("Ocular toxicity", "Skin toxicity", "Hepatotoxicity", "Rhabdomyolysis"),
    "grade": ("Grade 1", "Grade 2", "Grade 3", "Grade 4"),
    "symptomatic": ("Symptomatic", "Asymptomatic"),
    "suspected_scar": ("Suspected SCAR",),  # "not suspected" is typed: the parser reads no negation here
    "aki": ("With acute kidney injury", "No acute kidney injury"),
}
NUMBER_HINTS = {
    "cpk_uln": "Type the CPK level, e.g. “CPK 12x ULN”.",
    "creatinine_baseline": "Type the serum creatinine, e.g. “creatinine 1.6x baseline”.",
}


def esc(text: object) -> str:
    """Text as inert HTML: tags, entities, markdown and math delimiters all show literally."""
    return str(text).translate(_ESCAPES)


def choices_for(missing: Sequence[str]) -> tuple[str, ...]:
    """One-click follow-ups for the first missing fact that has them (empty if none)."""
    for fact in missing:
        if fact in CHOICES:
            return CHOICES[fact]
    return ()


def mark_html(n: int) -> str:
    """faqbot's citation marker: a superscript link to citation ``n`` of the same answer (the source's own
    reference marks stay bracketed text)."""
    return (
        f'<sup class="fb-mark"><a class="fb-mark-link" href="#fb-cite-{int(n)}" '
        f'aria-label="faqbot citation {int(n)}">{int(n)}</a></sup>'
    )


def _inline(text: str, marks: Iterable[int] = ()) -> str:
    """Escaped text with ``**bold**`` kept, and faqbot's ``[^n]`` markers (for citations it has) as links."""
    known = set(marks)
    out = []
    pos = 0
    for m in CITE_MARK_RE.finditer(text):
        if int(m.group(1)) in known:
            out.append(_bold_only(text[pos : m.start()]))
            out.append(mark_html(int(m.group(1))))
            pos = m.end()
    out.append(_bold_only(text[pos:]))
    return "".join(out)


def _bold_only(text: str) -> str:
    out = []
    pos = 0
    for b in _BOLD_RE.finditer(text):
        out.append(esc(text[pos : b.start()]))
        out.append(f"<strong>{esc(b.group(1))}</strong>")
        pos = b.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def text_html(text: str, marks: Iterable[int] = ()) -> str:
    """The answer text as HTML: ``> `` lines as quotes, ``**bold**`` kept, blank lines between paragraphs;
    everything else literal."""
    marks = tuple(marks)
    parts: list[str] = []
    group: list[str] = []
    quoted = False

    def flush() -> None:
        if group:
            body = "<br>".join(_inline(ln, marks) for ln in group)
            parts.append(f'<blockquote class="fb-quote">{body}</blockquote>' if quoted else f"<p>{body}</p>")
            group.clear()

    for line in text.strip().split("\n"):
        if not line.strip():
            flush()
            continue
        is_quote = line.startswith(">")
        if is_quote != quoted:
            flush()
            quoted = is_quote
        group.append(line[1:].lstrip() if is_quote else line)
    flush()
    return "".join(parts)


def _verbatim(text: str) -> str:
    return f'<span class="fb-verbatim">{esc(text)}</span>'


def _loc(c: Mapping[str, Any]) -> str:
    return f"{esc(c['source'])}:{int(c['start'])}–{int(c['end'])}"


def citation_html(c: Mapping[str, Any], label: str | None = None) -> str:
    """A citation folded to one line (faqbot's number, readable context, location); unfolds to the
    verbatim passage, exactly as the source writes it."""
    n = int(c.get("n", 0))
    num = f'<span class="fb-n"><span class="fb-sr">faqbot citation </span>{n}</span> ' if n else ""
    ctx = esc(readable(str(c.get("context") or "")))
    return (
        f'<details class="fb-cite fb-cite-{n}"><summary>{num}{label or ""}{ctx} '
        f'<span class="fb-loc">{_loc(c)}</span></summary>'
        f'<blockquote class="fb-passage-text">{_verbatim(c["text"])}</blockquote>'
        f'<a class="fb-jump" href="#p-{esc(c["id"])}">Show in source</a></details>'
    )


FROM_HISTORY = "from an earlier message"


def facts_html(facts: Mapping[str, Any] | None) -> str:
    if not facts:
        return ""
    carried = set(facts.get("from_history") or ())  # facts taken from earlier turns are marked as such
    rows = []
    for key, value in facts.items():
        if value is None or key == "from_history":
            continue
        shown = "yes" if value is True else "no" if value is False else value
        mark = f" <i>({FROM_HISTORY})</i>" if key in carried else ""
        rows.append(f"<li>{esc(FACT_LABELS.get(key, key))}: <b>{esc(shown)}</b>{mark}</li>")
    if not rows:
        return ""
    return f'<div class="fb-facts"><span>Inputs used:</span><ul>{"".join(rows)}</ul></div>'


def decision_html(d: Mapping[str, Any]) -> str:
    return (
        '<div class="fb-decision">'
        f'<div class="fb-action"><strong>{esc(readable(d["action"]))}</strong></div>'
        f'<div class="fb-row-label">{esc(readable(d.get("reaction", "")))} — '
        f"{esc(readable(d.get('severity', '')))}</div>"
        f'<blockquote class="fb-row">{_verbatim(readable(d["quote"]))}'
        f'<div class="fb-loc">{_loc(d)}</div></blockquote></div>'
    )


def answer_html(answer: Mapping[str, Any]) -> str:
    """An Answer (JSON contract) as one self-contained HTML block, marked by its route."""
    route = str(answer.get("route", "answer"))
    cites = list(answer.get("citations") or [])
    marks = [int(c["n"]) for c in cites]
    parts = [
        f'<div class="fb-answer fb-route-{esc(route)}">'
        f'<div class="fb-badge">{esc(ROUTE_LABELS.get(route, route))}</div>'
    ]
    if route in ("decision", "no_rule", "clarify"):
        parts.append('<div class="fb-card">')
        parts.extend(decision_html(d) for d in answer.get("decisions") or [])
        text = f'<div class="fb-text">{text_html(str(answer.get("text", "")), marks)}</div>'
        if route == "decision":  # the card already shows the row: the engine's wording folds away
            text = f'<details class="fb-more"><summary>How the source decides this</summary>{text}</details>'
        parts.append(text)
        missing = list(answer.get("missing") or [])
        if missing:
            names = ", ".join(FACT_LABELS.get(m, m) for m in missing)
            parts.append(f'<div class="fb-missing">Missing: {esc(names)}</div>')
            hints = [NUMBER_HINTS[m] for m in missing if m in NUMBER_HINTS and not choices_for(missing)]
            parts.extend(f'<div class="fb-hint">{esc(h)}</div>' for h in hints)
        parts.append(facts_html(answer.get("facts")))
        parts.append("</div>")
    else:
        parts.append(f'<div class="fb-text">{text_html(str(answer.get("text", "")), marks)}</div>')
    if cites:
        parts.append('<div class="fb-cites">' + "".join(citation_html(c) for c in cites) + "</div>")
    related = list(answer.get("related") or [])
    if related:
        title = "Nearest passages (not an answer)" if route == "abstain" else "Related passages"
        parts.append(
            f'<details class="fb-related"><summary>{title} ({len(related)})</summary>'
            + "".join(citation_html(c) for c in related)
            + "</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def question_html(question: str) -> str:
    return f'<div class="fb-question">{esc(question)}</div>'


def error_html(message: str) -> str:
    return f'<div class="fb-error" role="alert"><strong>Not asked:</strong> {esc(message)}</div>'


def notice_html(notice: Mapping[str, Any] | None) -> str:
    """The always-visible research-use banner: the source's own disclaimer, verbatim and located.

    It folds to its first line ("Research use only. Not medical advice.") and unfolds to the source's
    words; the page script folds it on narrow screens, where the full text would take a third of the view.
    """
    own = "faqbot only repeats what the source says; it is not medical advice."
    head = (
        '<summary class="fb-notice-head"><strong>Research use only.</strong> '
        '<span class="fb-notice-short">Not medical advice.</span></summary>'
    )
    if notice is None:
        body = f'<p class="fb-notice-body">{esc(own)}</p>'
    else:
        body = (
            f'<p class="fb-notice-body">“{esc(notice["text"])}” <span class="fb-loc">({_loc(notice)})</span> '
            f"{esc(own)}</p>"
        )
    return (
        '<aside class="fb-notice" aria-label="Research-use notice">'
        f'<details class="fb-notice-fold" open>{head}{body}</details></aside>'
    )


# ---- the source document ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[Chunk, ...]


def tables(chunks: Sequence[Chunk]) -> list[Table]:
    """Consecutive table-row chunks grouped into their tables, in document order."""
    out: list[Table] = []
    rows: list[Chunk] = []

    def flush() -> None:
        if rows:
            title = rows[0].context.split(SEP)[0] if SEP in rows[0].context else ""
            out.append(Table(title, rows[0].header, tuple(rows)))
            rows.clear()

    for c in sorted(chunks, key=lambda c: (c.source, c.start)):
        if c.kind == "table_row" and rows and (c.source, c.header) == (rows[-1].source, rows[-1].header):
            rows.append(c)
            continue
        flush()
        if c.kind == "table_row":
            rows.append(c)
    flush()
    return out


def table_html(table: Table, anchors: bool = False) -> str:
    """A table. In the Source tab (``anchors``) its text is as written; elsewhere it reads cleanly. Wide
    tables scroll inside a focusable, labelled region (keyboard users can scroll it too)."""
    show = _bold if anchors else (lambda t: _bold(readable(t)))
    head = "".join(f'<th scope="col">{show(h)}</th>' for h in table.header)
    body = []
    for row in table.rows:
        rid = f' id="p-{esc(row.id)}"' if anchors else ""
        cells_text = row.text.split("\t")  # a continuation row's empty first cell was trimmed off the span
        cells_text = [""] * (len(table.header) - len(cells_text)) + cells_text
        cells = "".join(
            f"<td>{show(cell)}</td>" if anchors else f'<td data-label="{esc(readable(h))}">{show(cell)}</td>'
            for h, cell in zip(table.header, cells_text, strict=False)
        )
        body.append(f'<tr class="fb-passage"{rid}>{cells}</tr>')
    caption = f"<caption>{esc(readable(table.title))}</caption>" if table.title and not anchors else ""
    name = esc(readable(table.title) or "Table")
    return (
        f'<div class="fb-table-wrap" role="region" aria-label="{name}" tabindex="0">'
        f'<table class="fb-table">{caption}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
        "</table></div>"
    )


def tables_html(chunks: Sequence[Chunk]) -> str:
    """Every table of the corpus in full (the dose-decision tab shows them beside the form)."""
    return (
        '<div class="fb-tables"><h2 class="fb-sr">The source&#39;s tables</h2>'
        + "".join(table_html(t) for t in tables(chunks))
        + "</div>"
    )


def _bold(text: str) -> str:
    return _inline(text)


def _block_html(text: str) -> str:
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + "<br>".join(_bold(ln) for ln in p.split("\n")) + "</p>" for p in paras)


def _outermost(chunks: Sequence[Chunk]) -> list[tuple[Chunk, list[Chunk]]]:
    """Chunks not inside another one, each with the chunks nested in it (document order)."""
    out: list[tuple[Chunk, list[Chunk]]] = []
    for c in sorted(chunks, key=lambda c: (c.start, -c.end)):
        if out and c.start >= out[-1][0].start and c.end <= out[-1][0].end:
            out[-1][1].append(c)
        else:
            out.append((c, []))
    return out


def _span_html(text: str, start: int, end: int, chunks: Sequence[Chunk], tables_of: dict[str, Table]) -> str:
    """``text[start:end]`` with its chunks as anchored elements and the text between them shown."""
    out: list[str] = []
    pos = start
    done: set[int] = set()
    for c, inner in _outermost(chunks):
        table = tables_of.get(c.id)
        for para in re.split(r"\n\s*\n", text[pos : c.start]):
            line = para.strip()
            if line and not (table is not None and "\t" in line):  # a header row becomes the <thead>
                out.append(f'<h3 class="fb-heading">{_bold(line)}</h3>')
        pos = max(pos, c.end)
        if table is not None:
            if id(table) not in done:
                done.add(id(table))
                out.append(table_html(table, anchors=True))
            continue
        if inner:
            body = _span_html(text, c.start, c.end, inner, tables_of)
        elif c.kind == "title":
            first, _, rest = c.text.partition("\n")
            body = f'<h2 class="fb-title">{_bold(first)}</h2>{_block_html(rest)}'
        else:
            body = _block_html(c.text)
        out.append(f'<div class="fb-passage fb-{esc(c.kind)}" id="p-{esc(c.id)}">{body}</div>')
    rest = text[pos:end]
    if rest.strip():
        out.append(_block_html(rest))
    return "".join(out)


def document_html(doc: Document, chunks: Sequence[Chunk]) -> str:
    """The whole document, in order: every chunk is an element ``#p-<chunk id>`` (nested chunks inside
    their parent); tables as tables. Text between chunks (headings, table headers) is shown too."""
    own = [c for c in chunks if c.source == doc.source]
    tables_of = {r.id: t for t in tables(own) for r in t.rows}
    body = _span_html(doc.text, 0, len(doc.text), own, tables_of)
    return f'<article class="fb-doc"><h2 class="fb-doc-name">{esc(doc.source)}</h2>{body}</article>'


def source_html(docs: Sequence[Document], chunks: Sequence[Chunk]) -> str:
    return '<div class="fb-source">' + "".join(document_html(d, chunks) for d in docs) + "</div>"


# ---- export -----------------------------------------------------------------------------------------
def _footnotes(text: str, turn: int) -> str:
    """faqbot's ``[^n]`` markers of one answer as ``[^turn.n]``: footnote labels unique in the file."""
    return CITE_MARK_RE.sub(lambda m: f"[^{turn}.{m.group(1)}]", text)


def export_markdown(turns: Sequence[Mapping[str, Any]], notice: Mapping[str, Any] | None = None) -> str:
    """A conversation (Answer JSON objects, in order) as Markdown with every citation located and quoted.

    This is a file for people to read, not HTML. faqbot's citations are Markdown footnotes (``[^1.2]``:
    answer 1, citation 2), so they never look like the source's own "[1]" reference marks; each footnote
    gives the location and quotes the passage exactly as the source writes it (``>``).
    """
    lines = ["# faqbot conversation", ""]
    if notice is not None:
        lines += [
            f"> Research use only: {notice['text']} ({notice['source']}:{notice['start']}-{notice['end']})",
            "",
        ]
    for k, a in enumerate(turns, 1):
        lines += [
            f"## {k}. {a.get('question', '')}",
            "",
            f"*{ROUTE_LABELS.get(str(a.get('route')), a.get('route'))}*",
            "",
        ]
        lines += [_footnotes(str(a.get("text", "")).strip(), k), ""]
        for d in a.get("decisions") or []:
            lines += [
                f"- **{readable(d['action'])}** — {d.get('reaction', '')}, {readable(d.get('severity', ''))}"
            ]
            lines += [f"  > {readable(d['quote'])}", f"  ({d['source']}:{d['start']}-{d['end']})"]
        raw = a.get("facts") or {}
        carried = set(raw.get("from_history") or ())
        facts = {key: v for key, v in raw.items() if v is not None and key != "from_history"}
        if facts:
            lines += [
                "",
                "Inputs used: "
                + ", ".join(
                    f"{FACT_LABELS.get(key, key)} = {v}" + (f" ({FROM_HISTORY})" if key in carried else "")
                    for key, v in facts.items()
                ),
            ]
        if a.get("missing"):
            lines += ["", "Missing: " + ", ".join(str(m) for m in a["missing"])]
        cites = a.get("citations") or []
        if cites:
            lines += ["", "Citations:", ""]
            for c in cites:
                quoted = "\n".join(f"    > {ln}" for ln in str(c["text"]).splitlines())
                lines += [
                    f"[^{k}.{c['n']}]: {c['context']} — {c['source']}:{c['start']}-{c['end']}",
                    quoted,
                    "",
                ]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ---- what the UI shows of the corpus ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SourceView:
    """The corpus as the UI shows it: documents, their chunks (ids match the index) and the notice.

    Built from the corpus alone (no model, no index), so the page can be served while the bot loads.
    """

    docs: tuple[Document, ...]
    chunks: tuple[Chunk, ...]
    notice: dict[str, Any] | None

    @classmethod
    def from_corpus(cls, corpus_dir: Any, root: Any) -> SourceView:
        from bot.chunking import chunk_documents
        from bot.core import NOTICE_MARKER
        from bot.corpus import load_corpus
        from bot.records import Citation

        docs = load_corpus(corpus_dir, root)
        chunks = chunk_documents(docs)
        notice = next((Citation.of(0, c, 1.0).to_dict() for c in chunks if NOTICE_MARKER in c.text), None)
        return cls(tuple(docs), tuple(chunks), notice)
