from __future__ import annotations

import re

from bot.answer import (
    ABSTAIN_TEXT,
    ANSWER_LEAD,
    Thresholds,
    abstain_reason,
    compose,
    display,
    followup_query,
    foreign_terms,
)
from bot.chunking import Chunker
from bot.display import readable
from bot.records import Chunk, Document, Hit
from bot.retrieval import Support, Vocabulary

SRC = "corpus/avutometinib_dose_modification.md"
OK = Support((), 0.0, 0.0)


def _chunks(seed_text: str) -> list[Chunk]:
    return Chunker().chunk(Document(SRC, seed_text, "x"))


def _hit(chunk: Chunk, dense: float, score: float | None = None) -> Hit:
    return Hit(chunk, dense if score is None else score, dense, 1.0)


def test_answer_text_is_only_source_spans_and_templates(seed_text: str) -> None:
    chunks = _chunks(seed_text)
    eye = next(c for c in chunks if c.kind == "list_item" and "Ophthalmic Exams" in c.text)
    note = next(c for c in chunks if c.text.startswith("Note: A comprehensive"))
    ans = compose("eye exams?", [_hit(eye, 0.6), _hit(note, 0.58), _hit(chunks[0], 0.2)], OK, Thresholds())
    assert ans.route == "answer" and not ans.abstained
    assert [c.n for c in ans.citations] == [1, 2]
    assert [c.id for c in ans.citations] == [eye.id, note.id]
    for c in ans.citations:
        assert seed_text[c.start : c.end] == c.text
    # Remove the fixed template words and markers: what is left must be source text.
    body = ans.text.replace(ANSWER_LEAD, "")
    quotes = [line for line in body.split("\n") if line.strip()]
    assert [re.search(r" \[\^(\d+)\]$", line).group(1) for line in quotes] == ["1", "2"]  # type: ignore[union-attr]
    for line in quotes:
        assert line.startswith("> ")
        part = re.sub(r" \[\^\d+\]$", "", line[2:])
        assert " ".join(part.split()) in " ".join(readable(seed_text).split()), part
    assert [c.id for c in ans.related] == [chunks[0].id]


def test_a_far_weaker_second_passage_is_not_quoted(seed_text: str) -> None:
    chunks = _chunks(seed_text)
    ans = compose("q", [_hit(chunks[3], 0.7), _hit(chunks[4], 0.4)], OK, Thresholds())
    assert len(ans.citations) == 1 and "[^2]" not in ans.text


def test_table_rows_are_displayed_with_their_context(seed_text: str) -> None:
    row = next(c for c in _chunks(seed_text) if c.kind == "table_row" and "acute kidney" in c.text)
    assert display(row) == (
        "Table 2: Management of Other Key Adverse Reactions › Rhabdomyolysis: Any grade with acute kidney injury"
        " — Withhold and evaluate. Resume at reduced dose or permanently discontinue based on recovery."
    )


def test_abstention_lists_nearest_passages_only_as_related(seed_text: str) -> None:
    chunks = _chunks(seed_text)
    hits = [_hit(chunks[1], 0.1), _hit(chunks[2], 0.09)]
    ans = compose("what is the weather?", hits, OK, Thresholds())
    assert ans.route == "abstain" and ans.abstained and ans.text == ABSTAIN_TEXT
    assert ans.citations == () and [c.id for c in ans.related] == [chunks[1].id, chunks[2].id]
    assert ans.to_dict()["abstained"] is True


def test_abstain_reasons() -> None:
    th = Thresholds()
    chunk = Chunk("i", SRC, 0, 1, "x", "", "paragraph")
    strong = [_hit(chunk, 0.7)]
    assert abstain_reason([], OK, th) == "no passage matches"
    assert abstain_reason(strong, OK, th) is None
    assert "below" in (abstain_reason([_hit(chunk, 0.1)], OK, th) or "")
    drug = Support(("trametinib",), 0.5, 4.0)
    assert foreign_terms(drug) == ["trametinib"]
    assert "trametinib" in (abstain_reason(strong, drug, th) or "")
    topic = Support(("pregnancy",), 0.3, 2.7, ("populations",))
    assert "populations" in (abstain_reason(strong, topic, th) or "")
    rare = Support(("zorblax",), 0.3, 4.0)
    # an unknown specific word abstains only without a well-matched passage (evidence, not absence)
    assert "zorblax" in (abstain_reason([_hit(chunk, 0.4)], rare, th) or "")
    assert abstain_reason(strong, rare, th) is None
    # ...nor beside a passage that states the rest of what is asked
    assert abstain_reason([_hit(chunk, 0.4)], rare, th, stated=0.6) is None
    assert "zorblax" in (abstain_reason([_hit(chunk, 0.4)], rare, th, stated=0.3) or "")
    mostly_missing = Support(("weather", "tomorrow"), 0.9, 2.2, (), 4.2)
    assert abstain_reason([_hit(chunk, 0.45)], mostly_missing, th) is not None
    assert abstain_reason([_hit(chunk, 0.65)], mostly_missing, th) is None
    # a question whose only unknown word is a common one ("actually") is not mostly unsupported
    common_only = Support(("actually",), 1.0, 1.5, (), 1.5)
    assert abstain_reason([_hit(chunk, 0.4)], common_only, th) is None


def test_followup_query_reads_elliptical_questions_with_the_previous_one() -> None:
    v = Vocabulary(["eye", "exam", "blood", "test"])
    assert followup_query("and the blood tests?", ["How often are eye exams needed?"], v) == (
        "How often are eye exams needed? and the blood tests?"
    )
    assert followup_query("How often are blood tests and eye exams done?", ["x"], v).startswith("How often")
    assert followup_query("and the blood tests?", [], v) == "and the blood tests?"
