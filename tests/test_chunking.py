from __future__ import annotations

from collections import Counter

from bot.chunking import CHUNKER_VERSION, Chunker, chunk_documents, chunk_id, sentence_spans
from bot.records import Chunk, Document

SOURCE = "corpus/avutometinib_dose_modification.md"


def _chunks(text: str, source: str = SOURCE, **kw: int) -> list[Chunk]:
    return Chunker(**kw).chunk(Document(source, text, "x"))


def test_every_chunk_is_a_verbatim_span(seed_text: str) -> None:
    chunks = _chunks(seed_text)
    assert chunks
    for c in chunks:
        assert c.text == seed_text[c.start : c.end]
        assert c.text == c.text.strip()
        assert c.id == chunk_id(c.source, c.start, c.end, c.text)


def test_ids_are_unique_and_stable(seed_text: str) -> None:
    a, b = _chunks(seed_text), _chunks(seed_text)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)


def test_each_of_the_nine_table_rows_is_its_own_chunk_with_its_label(seed_text: str) -> None:
    rows = [c for c in _chunks(seed_text) if c.kind == "table_row"]
    assert len(rows) == 9
    expected = [
        ("Table 1: Ocular Toxicity Management", "Grade 1 (mild)", "Continue at same dose; monitor."),
        ("Table 1: Ocular Toxicity Management", "Grade 2 (moderate)", "Withhold until Grade ≤ 1"),
        (
            "Table 1: Ocular Toxicity Management",
            "Grade 3 (severe)",
            "resume at a reduced dose or permanently",
        ),
        ("Table 1: Ocular Toxicity Management", "Grade 4 (life-threatening)", "Permanently discontinue."),
        ("Table 2: Management of Other Key Adverse Reactions", "Serious Skin Toxicity", "Grade 3"),
        ("Table 2: Management of Other Key Adverse Reactions", "Serious Skin Toxicity", "Suspected SCARs"),
        ("Table 2: Management of Other Key Adverse Reactions", "Hepatotoxicity", "Grade 3 (symptomatic)"),
        ("Table 2: Management of Other Key Adverse Reactions", "Rhabdomyolysis", "CPK $>10x$ ULN"),
        ("Table 2: Management of Other Key Adverse Reactions", "Rhabdomyolysis", "acute kidney injury"),
    ]
    for row, (title, label, snippet) in zip(rows, expected, strict=True):
        assert row.context == f"{title} › {label}"
        assert row.cells[0] == label
        assert snippet in row.text
        assert "\n" not in row.text
    assert rows[0].header == ("Event Severity", "Management Action")
    assert rows[4].header == ("Adverse Reaction", "Severity", "Recommended Action")
    # Continuation rows (empty first cell in the source) inherit the label above.
    assert rows[5].text.startswith("Grade 4 / Suspected SCARs")
    assert rows[8].text.startswith("Any grade with acute kidney injury")
    assert rows[5].cells == ("Serious Skin Toxicity", "Grade 4 / Suspected SCARs", "Permanently discontinue.")


def test_sections_title_and_list_context(seed_text: str) -> None:
    chunks = _chunks(seed_text)
    title = chunks[0]
    assert title.kind == "title"
    assert title.text.startswith("Official Discontinuation & Dose Modification Criteria")
    assert "CAS No.: 946128-88-7" in title.text
    fields = {c.text for c in chunks if c.kind == "field"}
    assert "CAS No.: 946128-88-7" in fields
    contexts = Counter(c.context.split(" › ")[0] for c in chunks)
    for heading in (
        "Underlying Mechanism and Rationale",
        "Clinical Trial Discontinuation Data",
        "Frequently Asked Questions (FAQs)",
        "References",
        "Disclaimer & Data Validity:",
    ):
        assert contexts[heading] > 0, heading
    eye = next(c for c in chunks if c.kind == "list_item" and "Ophthalmic Exams" in c.text)
    # A list introduced by "…:" carries its lead-in (the FAQ question) in its context.
    assert eye.context.startswith(
        "Frequently Asked Questions (FAQs) › Q1: What is the recommended monitoring"
    )
    note = next(c for c in chunks if c.text.startswith("Note: A comprehensive ophthalmic"))
    assert note.context == "Table 1: Ocular Toxicity Management"


def test_sentences_are_subspans_of_their_unit(seed_text: str) -> None:
    chunks = _chunks(seed_text)
    sentences = [c for c in chunks if c.kind == "sentence"]
    assert any(c.text == "Defactinib is a focal adhesion kinase (FAK) inhibitor." for c in sentences)
    units = [c for c in chunks if c.kind in ("paragraph", "list_item", "boilerplate")]
    for s in sentences:
        assert any(u.start <= s.start and s.end <= u.end for u in units), s.text
    dual = next(c for c in sentences if c.text.startswith("Defactinib is"))
    assert dual.context == "Underlying Mechanism and Rationale › Dual Pathway Inhibition"


def test_sentence_spans_skip_abbreviations() -> None:
    text = "Cat. No.: S548797 is listed here. Dr. Smith wrote it, e.g. for trials. Done now, really done."
    spans = [text[s:e] for s, e in sentence_spans(text, 0, len(text))]
    assert spans == [
        "Cat. No.: S548797 is listed here.",
        "Dr. Smith wrote it, e.g. for trials.",
        "Done now, really done.",
    ]


def test_markdown_headings_and_pipe_tables() -> None:
    text = (
        "# Guide\n\nIntro paragraph that is long enough to be a paragraph.\n\n## Dosing table\n\n"
        "| Drug | Dose |\n|---|---|\n| A | 10 mg |\n|  | 20 mg if tolerated |\n"
    )
    chunks = _chunks(text, "corpus/g.md")
    rows = [c for c in chunks if c.kind == "table_row"]
    assert [r.cells for r in rows] == [("A", "10 mg"), ("A", "20 mg if tolerated")]
    assert rows[1].context == "Dosing table › A"
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert not any("---" in c.text for c in chunks)


def test_long_prose_is_split_with_offsets_kept() -> None:
    sentence = "This sentence is about monitoring liver tests in detail and nothing else. "
    text = "Title\n\n" + sentence * 30 + "\n"
    chunks = [c for c in _chunks(text, "corpus/long.md", max_chars=300) if c.kind == "paragraph"]
    assert len(chunks) > 5
    for c in chunks:
        assert len(c.text) <= 300
        assert text[c.start : c.end] == c.text
    covered = sum(c.end - c.start for c in chunks)
    assert covered >= len(sentence.strip()) * 29


def test_chunk_documents_spans_all_documents() -> None:
    docs = [
        Document("corpus/a.md", "Alpha\n\nFirst paragraph here.\n", "1"),
        Document("corpus/b.txt", "Beta text.", "2"),
    ]
    chunks = chunk_documents(docs)
    assert {c.source for c in chunks} == {"corpus/a.md", "corpus/b.txt"}
    assert CHUNKER_VERSION


def test_embed_text_strips_markup_but_text_stays_verbatim(seed_text: str) -> None:
    rhabdo = next(c for c in _chunks(seed_text) if c.kind == "table_row" and "CPK" in c.text)
    assert "$" in rhabdo.text
    embedded = rhabdo.embed_text()
    assert "$" not in embedded and "\\geq" not in embedded
    assert "Adverse Reaction: Rhabdomyolysis" in embedded
    assert "CPK >10x ULN" in embedded and "≥ 1.5x baseline" in embedded
