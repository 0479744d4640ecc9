"""The report files: they exist, hold the run's numbers, and the HTML is self-contained and escaped."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.evaluation.cases import EvalCase, Gate
from bot.evaluation.metrics import format_value
from bot.evaluation.report import summary_markdown, write_report
from bot.evaluation.runner import EvalRun, System, run_eval
from bot.records import Answer, Citation

SRC = "corpus/doc.md"
DOC = "Monitor <b>liver</b> tests & CPK. Eye exams every three cycles. <script>alert('x')</script> tail."
HOSTILE = "<script>alert('pwned')</script> & <img src=x onerror=alert(1)>"


def _cite(n: int, phrase: str) -> Citation:
    start = DOC.index(phrase)
    return Citation(n, f"c{n}", SRC, start, start + len(phrase), phrase, "", 0.5)


def _system(name: str, good: bool) -> System:
    def ask(q: str, h: tuple[str, ...]) -> Answer:
        if "eye" in q:
            phrase = "Eye exams every three cycles." if good else "Monitor <b>liver</b> tests & CPK."
            return Answer(q, "answer", phrase, citations=(_cite(1, phrase),), related=(_cite(2, "tail."),))
        if good:
            return Answer(q, "abstain", "no", related=(_cite(1, "<script>alert('x')</script>"),))
        return Answer(q, "answer", "yes", citations=(_cite(1, "<script>alert('x')</script>"),))

    return System(name, f"{name} <stand-in>", ask)


@pytest.fixture
def run() -> EvalRun:
    cases = (
        EvalCase("eye", "How often are eye exams?", "faq", expect_evidence=("every three cycles",)),
        EvalCase("hostile", HOSTILE, "out_of_scope", history=("earlier <i>turn</i>",), tags=("inj<ection>",)),
    )
    clock = iter(x * 0.002 for x in range(10_000))
    return run_eval(
        cases,
        [_system("good", True), _system("poor", False)],
        {SRC: DOC},
        gates=[Gate("accuracy", ">=", 1.0), Gate("accuracy", ">=", 1.0, "poor")],
        context={"model": "stand-in"},
        clock=lambda: next(clock),
    )


def test_report_files_exist_and_hold_the_numbers(run: EvalRun, tmp_path: Path) -> None:
    files = write_report(run, tmp_path / "new" / "dir")
    assert files.json.is_file() and files.markdown.is_file() and files.html.is_file()
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert data["primary"] == "good" and data["passed"] is False
    assert [g["passed"] for g in data["gates"]] == [True, False]
    for i, c in enumerate(run.configs):
        stored = data["configs"][i]
        assert stored["metrics"]["accuracy"] == c.metrics.accuracy
        assert stored["metrics"]["hit@1"] == c.metrics.hit_at_1
        assert [r["passed"] for r in stored["results"]] == [r.passed for r in c.results]
    assert data["configs"][0]["metrics"]["accuracy"] == 1.0
    assert data["configs"][1]["metrics"]["accuracy"] == 0.0
    md = files.markdown.read_text(encoding="utf-8")
    html = files.html.read_text(encoding="utf-8")
    for c in run.configs:
        for key in ("hit@1", "mrr", "ndcg@5", "abstention_f1", "grounding", "latency_p50_ms"):
            shown = format_value(key, c.metrics.value(key))
            assert shown in md and f">{shown}<" in html
    assert "| poor | 0.000 | 0.000 | 0.000 |" in md  # retrieval: the evidence was never shown


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def test_html_is_self_contained(run: EvalRun, tmp_path: Path) -> None:
    html = write_report(run, tmp_path).html.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(html)
    names = {t for t, _ in parser.tags}
    assert {"svg", "table", "style"} <= names
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "a", "base", "form"}
    attrs = {a for _, attrs in parser.tags for a, _ in attrs}
    assert not attrs & {"src", "href", "xlink:href", "action"}
    assert not any(a.startswith("on") for a in attrs)  # no event handlers
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # a CSP forbids any request even if something slipped through
    assert html.count("<svg") == 3  # per-kind accuracy, per-config comparison, latency distribution


def test_html_escapes_questions_passages_and_labels(run: EvalRun, tmp_path: Path) -> None:
    html = write_report(run, tmp_path).html.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;liver&lt;/b&gt; tests &amp; CPK" in html  # passage text
    assert "earlier &lt;i&gt;turn&lt;/i&gt;" in html and "inj&lt;ection&gt;" in html
    assert "good &lt;stand-in&gt;" in html
    assert "<b>liver</b>" not in html and "<i>turn</i>" not in html


def test_per_question_table_lists_failures_first(tmp_path: Path) -> None:
    cases = (
        EvalCase("eye", "about the eye", "faq", expect_evidence=("every three cycles",)),
        EvalCase("liver", "about the liver", "faq", expect_evidence=("CPK",)),  # "good" abstains: fails
        EvalCase("oos", "out of scope", "out_of_scope"),
        EvalCase("liver2", "liver again", "faq", expect_evidence=("CPK",)),  # fails too
    )
    clock = iter(x * 0.001 for x in range(1000))
    run = run_eval(
        cases, [_system("good", True), _system("poor", False)], {SRC: DOC}, clock=lambda: next(clock)
    )
    assert [r.passed for r in run.primary.results] == [True, False, True, False]
    html = write_report(run, tmp_path).html.read_text(encoding="utf-8")
    table = html[html.index('<table class="cases">') :]
    rows = re.findall(r'<tr class="(pass|fail)"><td><code>([^<]+)</code>', table)
    # the primary config's failures first, then its passes, each in file order
    assert rows[:4] == [("fail", "liver"), ("fail", "liver2"), ("pass", "eye"), ("pass", "oos")]
    md = summary_markdown(run)
    assert "Failures of `good` (2 of 4)" in md
    assert md.index("| liver |") < md.index("| liver2 |")
    assert "good: 2 failure(s) of 4" in html and "poor: 4 failure(s) of 4" in html
