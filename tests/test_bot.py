"""The library call with the real bundled model: quality floors on the labelled dev questions, the JSON
contract, input checks, index lifecycle. Slow: loads the model (seconds), runs in CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot import Settings, load_bot
from bot.core import Bot
from bot.display import cite_mark
from bot.errors import FaqbotError, QuestionError, StaleIndexError
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data"


def _cases(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _evidence(case: dict) -> list[str]:
    ev = case["evidence"]
    return ev if isinstance(ev, list) else [ev]


def test_dev_questions_retrieval_quality(real_bot: Bot) -> None:
    """Paraphrased clinician questions: right passage first for most, in the top 3 for nearly all, and
    none of them abstains. (Figures are reported in the issue's closing note.)"""
    cases = _cases("retrieval_dev.jsonl")
    first = top3 = 0
    for case in cases:
        hits = real_bot.search(case["question"] if "question" in case else case["q"], k=3)
        ranks = [i for i, h in enumerate(hits) if any(e in h.chunk.text for e in _evidence(case))]
        first += bool(ranks) and ranks[0] == 0
        top3 += bool(ranks)
        assert not real_bot.ask(case["q"]).abstained, case["q"]
    assert first / len(cases) >= 0.85
    assert top3 / len(cases) >= 0.95


def test_out_of_scope_questions_abstain(real_bot: Bot) -> None:
    cases = _cases("out_of_scope_dev.jsonl")
    abstained = [c["q"] for c in cases if real_bot.ask(c["q"]).abstained]
    assert len(abstained) / len(cases) >= 0.9, set(c["q"] for c in cases) - set(abstained)


@pytest.mark.parametrize(
    "question",
    ["How often does the eyesight need checking?", "Is CK monitored?", "Are liver tests done every cycle?"],
)
def test_in_scope_paraphrases_do_not_abstain(real_bot: Bot, question: str) -> None:
    answer = real_bot.ask(question)
    assert answer.route == "answer", answer.text
    assert answer.citations


def test_answer_contract_and_verbatim_citations(real_bot: Bot) -> None:
    answer = real_bot.ask("How often are eye exams needed?")
    d = answer.to_dict()
    assert {"question", "route", "text", "abstained", "citations", "related", "decisions", "missing"} <= set(
        d
    )
    assert d["route"] == "answer" and d["abstained"] is False
    assert "every three cycles" in d["text"]
    for c in d["citations"] + d["related"]:
        assert set(c) == {"n", "id", "source", "start", "end", "text", "context", "score"}
        text = (real_bot.settings.root / c["source"]).read_text(encoding="utf-8")
        assert text[c["start"] : c["end"]] == c["text"]
        assert cite_mark(c["n"]) in d["text"] or c in d["related"]
    json.dumps(d)  # serialisable as is


@pytest.mark.parametrize(
    ("question", "message"), [("", "empty"), ("   ", "empty"), ("x" * 2001, "2001 characters")]
)
def test_bad_questions_raise_clear_errors(real_bot: Bot, question: str, message: str) -> None:
    with pytest.raises(QuestionError, match=message):
        real_bot.ask(question)


def test_non_text_inputs(real_bot: Bot) -> None:
    with pytest.raises(QuestionError, match="must be text"):
        real_bot.ask(42)  # type: ignore[arg-type]
    with pytest.raises(QuestionError, match="history"):
        real_bot.ask("eye exams?", history="not a list")  # type: ignore[arg-type]


def test_passage_lookup_and_notice(real_bot: Bot) -> None:
    answer = real_bot.ask("How often are eye exams needed?")
    cited = answer.citations[0]
    assert real_bot.passage(cited.id).text == cited.text
    with pytest.raises(FaqbotError, match="no passage with id 'nope'"):
        real_bot.passage("nope")
    notice = real_bot.notice()
    assert notice is not None and "Research Use Only (RUO)" in notice.text


def test_stale_index_is_rebuilt_or_refused(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    settings = Settings(root=tmp_path)
    first = load_bot(settings)
    assert (tmp_path / "index" / "manifest.json").exists()
    doc = tmp_path / "corpus" / "avutometinib_dose_modification.md"
    doc.write_text(doc.read_text(encoding="utf-8") + "\n\nAddendum: eye exams are also advised at week 6.\n")
    with pytest.raises(StaleIndexError, match="faqbot build"):
        Bot(settings).load(rebuild=False)
    rebuilt = load_bot(settings)
    assert rebuilt.index.manifest.count == first.index.manifest.count + 2  # the new line and its view
    assert "week 6" in rebuilt.ask("Are eye exams advised at week 6?").citations[0].text


def test_cache_never_serves_an_answer_from_before_a_rebuild(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    bot = load_bot(Settings(root=tmp_path))
    question = "What is the phone number?"
    before = bot.ask(question)
    assert bot.ask(question) is before  # served from the cache
    doc = tmp_path / "corpus" / "avutometinib_dose_modification.md"
    doc.write_text(doc.read_text(encoding="utf-8").replace("(512) 262-9938", "(512) 555-0100"))
    bot.rebuild()
    after = bot.ask(question)
    assert after is not before
    assert "555-0100" in after.text and "262-9938" not in after.text
