"""The UI's views and plain functions (no browser, no model): escaping, cards, choices, source, export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot import render
from bot.feedback import Feedback, FeedbackError, FeedbackLog
from bot.render import SourceView
from tests.conftest import SEED_PATH

XSS = [
    "<script>alert('x')</script>",
    '" onmouseover="alert(1)',
    "&#x27; &amp; #1",
    "<img src=x onerror=alert(1)>",
    "![](http://x)",
    "[link](http://x)",
    "$>10x$",
]


def cite(
    n: int = 1, text: str = "Grade 2 (moderate)\tWithhold until Grade ≤ 1.", **kw: Any
) -> dict[str, Any]:
    return {
        "n": n,
        "id": kw.get("id", f"id{n}"),
        "source": "corpus/x.md",
        "start": 10,
        "end": 10 + len(text),
        "text": text,
        "context": kw.get("context", "Table 1: Ocular › Grade 2 (moderate)"),
        "score": 0.9,
    }


def answer(route: str = "answer", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "question": "q?",
        "route": route,
        "text": "From the source:\n\n> Withhold until Grade ≤ 1. [^1]",
        "abstained": route == "abstain",
        "citations": [cite()] if route == "answer" else [],
        "related": [],
        "decisions": [],
        "missing": [],
    }
    base.update(kw)
    return base


def tags_and_attrs(fragment: str) -> tuple[set[str], set[str]]:
    """The element names and attribute names a browser would build from a fragment."""
    from html.parser import HTMLParser

    tags: set[str] = set()
    attrs: set[str] = set()

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, a: list[tuple[str, str | None]]) -> None:
            tags.add(tag)
            attrs.update(name for name, _ in a)

    Collect().feed(fragment)
    return tags, attrs


def visible_text(fragment: str) -> str:
    """What a browser shows for an HTML fragment: tags dropped, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.fixture(scope="module")
def view() -> SourceView:
    root = SEED_PATH.parent.parent
    return SourceView.from_corpus(root / "corpus", root)


# ---- escaping ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", XSS)
def test_esc_leaves_no_markup_and_shows_the_text(payload: str) -> None:
    out = render.esc(payload)
    assert "<" not in out and ">" not in out
    for ch in "[]()!$":
        assert ch not in out  # nothing for markdown, KaTeX or a template engine to act on
    assert visible_text(out) == payload


@pytest.mark.parametrize("payload", XSS)
def test_payload_in_question_passage_and_answer_shows_as_text(payload: str) -> None:
    a = answer(text=f"From the source:\n\n> {payload} [^1]", citations=[cite(text=payload, context=payload)])
    for fragment in (render.question_html(payload), render.answer_html(a), render.error_html(payload)):
        tags, attrs = tags_and_attrs(fragment)
        assert not tags & {"script", "img", "iframe"} and "onerror" not in attrs
        assert attrs <= {"class", "href", "title", "role", "aria-label"}
        assert payload in visible_text(fragment)


def test_answer_markup_is_only_ours() -> None:
    html_ = render.answer_html(answer(text="x **bold** <b>not bold</b> [^1]"))
    tags, _ = tags_and_attrs(html_)
    assert tags <= {"div", "p", "br", "strong", "sup", "details", "summary", "span", "blockquote", "a"}
    assert "<strong>bold</strong>" in html_
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html_


def test_our_markers_are_links_and_the_documents_own_references_stay_text() -> None:
    text = "From the source:\n\n> as clinically indicated [1] [2]. [^2] and [^1]"
    out = render.text_html(text, marks=[1, 2])
    assert out.count('class="fb-mark"') == 2
    assert '<a class="fb-mark-link" href="#fb-cite-2" aria-label="faqbot citation 2">2</a>' in out
    assert "indicated [1] [2]." in visible_text(out)  # the source's marks: bracketed text, not links
    assert "[^" not in visible_text(out)


def test_markers_not_in_citations_stay_text() -> None:
    out = render.text_html("see the table [^7] [7]", marks=[1])
    assert "fb-mark" not in out and "[^7] [7]" in visible_text(out)


# ---- routes --------------------------------------------------------------------------------------------
def test_answer_has_numbered_expandable_citations_with_a_source_link() -> None:
    out = render.answer_html(answer())
    assert 'class="fb-badge">Answer from the source' in out
    assert '<details class="fb-cite fb-cite-1"><summary><span class="fb-n">' in out
    assert "faqbot citation 1" in visible_text(out) and "[1]" not in visible_text(out)
    assert 'href="#p-id1"' in out
    assert "Grade 2 (moderate)\tWithhold until Grade ≤ 1." in visible_text(out)
    assert "corpus/x.md:10–" in out


def test_abstention_is_marked_and_related_passages_are_not_an_answer() -> None:
    out = render.answer_html(
        answer("abstain", text="The source does not answer this question.", related=[cite(3)])
    )
    assert "Not answered by the source" in out and "fb-route-abstain" in out
    assert "Nearest passages (not an answer) (1)" in out
    assert "fb-cites" not in out


def test_decision_card_bold_action_quoted_row_and_inputs() -> None:
    decision = {
        "reaction": "ocular",
        "severity": "Grade 2 (moderate)",
        "action": "Withhold until Grade ≤ 1 , then resume at same or reduced dose.",
        "quote": "Grade 2 (moderate)\tWithhold until Grade ≤ 1 , then resume at same or reduced dose.",
        "source": "corpus/x.md",
        "start": 631,
        "end": 714,
    }
    a = answer("decision", text="Withhold.", decisions=[decision], facts={"reaction": "ocular", "grade": 2})
    out = render.answer_html(a)
    assert "Dose decision" in out and "fb-card" in out
    assert f"<strong>{render.esc(decision['action'])}</strong>" in out
    assert '<blockquote class="fb-row">' in out and "corpus/x.md:631–714" in out
    assert "Inputs used:" in out and "CTCAE grade: <b>2</b>" in out
    assert '<details class="fb-more"><summary>How the source decides this</summary>' in out


def test_no_rule_and_clarify_are_marked_and_name_what_is_missing() -> None:
    assert "No specific criterion in the source" in render.answer_html(answer("no_rule", text="None."))
    out = render.answer_html(answer("clarify", text="Which grade?", missing=["grade"]))
    assert "More information needed" in out and "Missing: CTCAE grade" in out
    typed = render.answer_html(answer("clarify", text="CPK?", missing=["cpk_uln"]))
    assert "CPK 12x ULN" in visible_text(typed)


def test_choices_for_missing_facts() -> None:
    assert render.choices_for(["grade"]) == ("Grade 1", "Grade 2", "Grade 3", "Grade 4")
    assert render.choices_for(["cpk_uln", "aki"]) == render.CHOICES["aki"]
    assert render.choices_for(["cpk_uln"]) == ()


def test_ui_offers_choices_only_after_a_clarify_turn() -> None:
    from bot.ui import choices

    clarify = {"question": "eye?", "answer": answer("clarify", missing=["grade"]), "error": None}
    assert choices([clarify]) == render.CHOICES["grade"]
    assert choices([clarify, {"question": "x", "answer": answer(), "error": None}]) == ()
    assert choices([{"question": "", "answer": None, "error": "question is empty"}]) == ()


def test_messages_two_per_turn_and_history_skips_errors() -> None:
    from bot.ui import history_of, messages

    turns = [
        {"question": "<b>first</b>", "answer": answer(), "error": None},
        {"question": "", "answer": None, "error": "question is empty"},
        {"question": "second", "answer": answer(), "error": None},
    ]
    msgs = messages(turns)
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 3
    assert "&lt;b&gt;first" in msgs[0]["content"]
    assert "fb-error" in msgs[3]["content"] and "question is empty" in msgs[3]["content"]
    assert history_of(turns) == ["<b>first</b>", "second"]


def test_facts_from_form() -> None:
    from bot.ui import UNSET, facts_from_form

    assert facts_from_form("ocular", "3", "yes", UNSET, " ", "1.6", "no") == {
        "reaction": "ocular",
        "grade": 3,
        "symptomatic": True,
        "suspected_scar": None,
        "cpk_uln": None,
        "creatinine_baseline": "1.6",
        "aki": False,
    }
    assert set(facts_from_form(UNSET, UNSET, UNSET, UNSET, "", None, UNSET).values()) == {None}


# ---- source view --------------------------------------------------------------------------------------
def test_source_view_anchors_every_chunk_and_shows_all_words(view: SourceView, seed_text: str) -> None:
    out = render.source_html(view.docs, view.chunks)
    for c in view.chunks:
        assert out.count(f'id="p-{c.id}"') == 1
    shown = visible_text(out)
    words = set(re.findall(r"[A-Za-z]{4,}", seed_text))
    missing = {w for w in words if w not in shown}
    assert not missing
    assert "$>10x$" in shown and "[Get Quote](#)" in shown  # the Source tab shows the document as written
    assert "<script" not in out and "<img" not in out


def test_tables_in_full_with_header_and_every_row(view: SourceView) -> None:
    tables = render.tables(view.chunks)
    assert [t.title for t in tables] == [
        "Table 1: Ocular Toxicity Management",
        "Table 2: Management of Other Key Adverse Reactions",
    ]
    assert [len(t.rows) for t in tables] == [4, 5]
    out = render.tables_html(view.chunks)
    assert out.count('<tr class="fb-passage">') == 9
    assert '<th scope="col">Recommended Action</th>' in out
    assert "CPK > 10× ULN with concurrent serum creatinine ≥ 1.5× baseline" in visible_text(out)
    assert "$" not in visible_text(out)  # the dose tab's tables read cleanly
    assert "Any grade with acute kidney injury" in visible_text(out)
    continuation = re.search(
        r'<tr[^>]*><td data-label="Adverse Reaction"></td><td data-label="Severity">Grade 4 / Suspected SCARs</td>',
        out,
    )
    assert continuation, "a continuation row keeps its empty first cell"


def test_notice_is_the_sources_disclaimer_verbatim(view: SourceView, seed_text: str) -> None:
    assert view.notice is not None
    n = view.notice
    assert seed_text[n["start"] : n["end"]] == n["text"] and "Research Use Only" in n["text"]
    banner = render.notice_html(n)
    assert "Research use only." in banner and "not medical advice" in banner
    assert "not medical advice" in render.notice_html(None)


# ---- export and feedback ------------------------------------------------------------------------------
def test_export_markdown_has_questions_answers_and_located_citations() -> None:
    a = answer(question="How often?")
    md = render.export_markdown([a, answer("abstain", question="Grapefruit?", text="No answer.")])
    assert md.startswith("# faqbot conversation")
    assert "## 1. How often?" in md and "## 2. Grapefruit?" in md
    assert "> Withhold until Grade ≤ 1. [^1.1]" in md  # answer 1's marker: a footnote, not "[1]"
    assert "[^1.1]: Table 1: Ocular › Grade 2 (moderate) — corpus/x.md:10-" in md
    assert "    > Grade 2 (moderate)\tWithhold until Grade ≤ 1." in md
    assert "*Not answered by the source*" in md


def test_export_file_written_only_when_something_was_answered(tmp_path: Path) -> None:
    from bot.ui import export_file

    assert export_file([{"question": "", "answer": None, "error": "empty"}], None, tmp_path) is None
    path = export_file([{"question": "q?", "answer": answer(), "error": None}], None, tmp_path)
    assert path is not None and path.name == "faqbot-conversation.md"
    assert "## 1. q?" in path.read_text(encoding="utf-8")
    import os

    os.utime(path, (0, 0))  # an export from long ago is cleaned up by the next one
    newer = export_file([{"question": "q?", "answer": answer(), "error": None}], None, tmp_path)
    assert newer is not None and newer.exists() and not path.exists()


def test_feedback_log_appends_jsonl(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "sub" / "feedback.jsonl")
    log.append(Feedback.of(answer(), "up", ["earlier"], user="alice"))
    log.append(Feedback("q2", "down", comment="wrong row"))
    lines = (tmp_path / "sub" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["rating"] == "up" and first["citations"] == ["id1"] and first["user"] == "alice"
    assert first["history"] == ["earlier"] and first["time"]
    assert log.read()[1]["comment"] == "wrong row"


@pytest.mark.parametrize("kw", [{"rating": "meh"}, {"rating": "up", "comment": "x" * 2001}])
def test_feedback_rejects_bad_entries(kw: dict[str, Any]) -> None:
    with pytest.raises(FeedbackError):
        Feedback("q", **kw)


def test_facts_carried_from_history_are_marked_in_the_card_and_export() -> None:
    from bot.render import facts_html

    html = facts_html({"reaction": "ocular", "grade": 3, "from_history": ["reaction"]})
    assert "ocular</b> <i>(from an earlier message)</i>" in html
    assert "3</b></li>" in html and "from_history" not in html
