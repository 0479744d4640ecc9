"""The display transform (source TeX/markup → readable text) and faqbot's own citation marker."""

from __future__ import annotations

import re

import pytest

from bot.display import CITE_MARK_RE, cite_mark, formula, readable
from tests.conftest import ROOT

CORPUS = sorted(p for p in (ROOT / "corpus").iterdir() if p.suffix in (".md", ".txt"))  # the documents
DOLLAR_RE = re.compile(r"\$[^$\n]*\$")


def corpus_formulas() -> list[str]:
    found = []
    for path in CORPUS:
        found += DOLLAR_RE.findall(path.read_text(encoding="utf-8"))
    return sorted(set(found))


def test_the_corpus_has_formulas_to_check() -> None:
    assert {"$>10x$", "$\\geq 1.5x$"} <= set(corpus_formulas())


@pytest.mark.parametrize("tex", corpus_formulas())
def test_every_formula_in_the_corpus_reads_without_tex(tex: str) -> None:
    shown = readable(tex)
    assert "$" not in shown and "\\" not in shown, (tex, shown)
    assert re.findall(r"\d+(?:\.\d+)?", shown) == re.findall(r"\d+(?:\.\d+)?", tex)  # no number changed


def test_the_rhabdomyolysis_row_reads_cleanly() -> None:
    row = "CPK $>10x$ ULN with concurrent serum creatinine $\\geq 1.5x$ baseline"
    assert readable(row) == "CPK > 10× ULN with concurrent serum creatinine ≥ 1.5× baseline"
    text = (ROOT / "corpus" / "avutometinib_dose_modification.md").read_text(encoding="utf-8")
    assert row in text  # the corpus still writes it this way (the citation keeps it verbatim)


@pytest.mark.parametrize(
    ("tex", "shown"),
    [
        ("$>10x$", "> 10×"),
        ("$\\geq 1.5x$", "≥ 1.5×"),
        ("$\\leq 1$", "≤ 1"),
        ("$< 3 \\times$", "< 3 ×"),
        ("$2 \\times 10$", "2 × 10"),
        ("$-5$", "−5"),
        ("$50\\%$", "50%"),
        ("$\\ge 2x$ ULN", "≥ 2× ULN"),
    ],
)
def test_known_constructs(tex: str, shown: str) -> None:
    assert readable(tex) == shown


@pytest.mark.parametrize(
    "text",
    [
        "$\\frac{1}{2}$",  # unknown command
        "$x^2$",  # superscript
        "$a_{i}$",  # braces
        "$\\alpha$",
        "costs $5 and $10 today",  # currency, not math (pandoc's rule)
        "$ >10x$",  # space inside the opening dollar
        "a lone $ sign",
        "$$>10x$$",  # display math is not inline TeX
        "![](http://x.invalid/p.png)",  # an image stays as written
        "[](#)",  # a link with no text
    ],
)
def test_unknown_constructs_are_shown_as_written(text: str) -> None:
    assert readable(text) == text


def test_formula_is_none_for_anything_unknown() -> None:
    assert formula(">10x") == "> 10×"
    assert formula("\\sqrt 2") is None and formula("") is None and formula("{") is None


def test_links_show_their_words() -> None:
    assert readable("[Get Quote](#)") == "Get Quote"
    assert readable("[[drugs.com](https://www.drugs.com)]") == "[drugs.com]"
    assert readable("at [<https://example.org/a#b>]") == "at [https://example.org/a#b]"
    assert readable("see [1] [2] and [3](x)") == "see [1] [2] and 3"


def test_readable_is_idempotent_on_the_corpus() -> None:
    for path in CORPUS:
        once = readable(path.read_text(encoding="utf-8"))
        assert readable(once) == once


def test_readable_is_linear_and_keeps_lines() -> None:
    big = "CPK $>10x$ ULN [a](b) " * 20_000
    out = readable(big)
    assert out.count("> 10×") == 20_000 and "\n" not in out


def test_cite_mark_never_collides_with_the_sources_reference_marks() -> None:
    assert cite_mark(3) == "[^3]"
    assert [int(m) for m in CITE_MARK_RE.findall("x [^1] [2] [^12]")] == [1, 12]
    for path in CORPUS:
        text = path.read_text(encoding="utf-8")
        assert "[1]" in text  # the source has its own marks...
        assert not CITE_MARK_RE.search(text)  # ...and none look like ours


def test_answer_texts_read_cleanly_with_our_markers() -> None:
    """The dose engine and the table answers: TeX made plain in the text, ``[^n]`` for every citation."""
    from bot.dose import Facts, decide, load_rules
    from bot.tables import table_answer

    rules = load_rules(ROOT / "corpus" / "dose_rules.yaml", ROOT)
    table = table_answer(
        "What criteria define rhabdomyolysis in the tables?", ("rhabdomyolysis",), False, rules
    )
    decision = decide(
        Facts(reaction="rhabdomyolysis", cpk_uln=12.0, creatinine_baseline=1.6, aki=False), rules
    )
    for answer in (table, decision):
        assert answer is not None
        assert "CPK > 10× ULN with concurrent serum creatinine ≥ 1.5× baseline" in answer.text
        assert "$" not in answer.text and "\\geq" not in answer.text
        assert sorted({int(n) for n in CITE_MARK_RE.findall(answer.text)}) == [c.n for c in answer.citations]
        assert any("$>10x$" in c.text for c in answer.citations)  # the citation keeps the source's text


def test_evaluation_reads_evidence_the_way_answers_show_it() -> None:
    from bot.evaluation.metrics import contains_loosely

    evidence = "CPK $>10x$ ULN with concurrent serum creatinine $\\geq 1.5x$ baseline"
    shown = "> Rhabdomyolysis — CPK > 10× ULN with concurrent serum creatinine ≥ 1.5× baseline — **Withhold** [^1]"
    assert contains_loosely(shown, evidence)  # the readable answer text
    assert contains_loosely(f"> {evidence} [1]", evidence)  # a text that still quotes the TeX
    assert not contains_loosely(shown.replace("1.5×", "2×"), evidence)
