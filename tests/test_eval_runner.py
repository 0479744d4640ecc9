"""The runner, the LangChain baseline and the ``faqbot eval`` command, with stand-ins for the model.

A lexical stand-in bot (word overlap over the real chunker's chunks of the seed) replaces the loaded bot,
and a bag-of-hashed-words encoder replaces the embedding model, so none of this loads torch.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot import cli
from bot.chunking import chunk_documents
from bot.corpus import load_corpus
from bot.errors import FaqbotError, QuestionError
from bot.evaluation import runner
from bot.evaluation.baseline import LangChainBaseline
from bot.evaluation.cases import EvalCase, Gate, parse_lines
from bot.evaluation.runner import System, parse_configs, run_eval
from bot.records import Answer, Citation
from bot.retrieval import tokenize
from bot.settings import Settings
from tests.conftest import hash_encoder

CASES: list[dict[str, Any]] = [
    {
        "id": "eye",
        "kind": "faq",
        "question": "ophthalmic evaluation baseline cycle",
        "expect_evidence": ["prior to Cycle 2"],
    },
    {
        "id": "labs",
        "kind": "faq",
        "question": "liver function tests day 15",
        "expect_evidence": ["Day 15 of the first four cycles"],
    },
    {"id": "oos", "kind": "out_of_scope", "question": "zzzz qqqq"},
]


class LexicalBot:
    """Stand-in for a loaded Bot: cites the chunk sharing most words with the question; abstains on none."""

    def __init__(self, root: Path) -> None:
        self.settings = Settings(root=root)
        self.docs = load_corpus(root / "corpus", root)
        self.chunks = chunk_documents(self.docs)
        self.asked: list[tuple[str, str]] = []
        self.embedder = SimpleNamespace(model_id="lexical stand-in (no model)")

    def ask(self, question: str, history: Sequence[str] | None = None, mode: str = "hybrid") -> Answer:
        self.asked.append((mode, question))
        words = set(tokenize(question))
        ranked = sorted(self.chunks, key=lambda c: -len(words & set(tokenize(c.text))))
        best = len(words & set(tokenize(ranked[0].text)))
        top = tuple(Citation.of(n, c, 1.0) for n, c in enumerate(ranked[:3], 1))
        if best == 0:
            return Answer(question, "abstain", "no", related=top)
        return Answer(question, "answer", top[0].text, citations=top[:1], related=top[1:])


class HashEmbeddings:
    """A LangChain-compatible Embeddings stand-in over the conftest hash encoder."""

    def __init__(self) -> None:
        self.encode = hash_encoder(256)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self.encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def ticking_clock(step: float = 0.005) -> Any:
    t = iter(range(10**9))
    return lambda: next(t) * step


def cases_of(rows: list[dict[str, Any]]) -> tuple[EvalCase, ...]:
    return parse_lines([json.dumps(r) for r in rows]).cases


@pytest.fixture
def lexical(project: Path) -> LexicalBot:
    return LexicalBot(project)


def sources_of(bot: LexicalBot) -> dict[str, str]:
    return {d.source: d.text for d in bot.docs}


# ---- run_eval --------------------------------------------------------------------------------------------
def test_run_eval_scores_every_case_of_every_config(lexical: LexicalBot) -> None:
    systems = runner.make_systems(lexical, ["hybrid", "bm25"])
    run = run_eval(cases_of(CASES), systems, sources_of(lexical), clock=ticking_clock())
    assert [c.name for c in run.configs] == ["hybrid", "bm25"]
    assert {m for m, _ in lexical.asked} == {"hybrid", "bm25"}  # each config asked in its own mode
    hybrid = run.config("hybrid")
    assert [r.passed for r in hybrid.results] == [True, True, True]
    assert hybrid.metrics.hit_at_1 == 1.0 and hybrid.metrics.abstention_f1 == 1.0
    assert hybrid.metrics.grounding == 1.0
    # the ticking clock advances 5 ms per reading: every ask takes exactly one tick
    assert [r.latency_ms for r in hybrid.results] == pytest.approx([5.0, 5.0, 5.0])
    assert [k.kind for k in hybrid.kinds] == ["faq", "out_of_scope"]


def test_errors_are_recorded_per_case_and_warmup_is_not_scored(project: Path) -> None:
    seen: list[str] = []

    def ask(q: str, h: tuple[str, ...]) -> Answer:
        seen.append(q)
        if "qqqq" in q:
            raise QuestionError("question is odd")
        return Answer(q, "abstain", "no")

    run = run_eval(cases_of(CASES), [System("x", "stand-in", ask)], {}, clock=ticking_clock())
    assert seen[0] == runner.WARMUP_QUESTION and len(seen) == 4
    oos = run.primary.results[2]
    assert oos.route == "error" and oos.error == "question is odd" and not oos.passed
    assert run.primary.metrics.errors == 1


def test_gates_pass_fail_and_undefined(lexical: LexicalBot) -> None:
    systems = runner.make_systems(lexical, ["hybrid"])
    gates = [
        Gate("hit@1", ">=", 1.0),
        Gate("latency_p95_ms", "<=", 1.0),
        Gate("decision_accuracy", ">=", 0.1),
    ]
    run = run_eval(cases_of(CASES), systems, sources_of(lexical), gates=gates, clock=ticking_clock())
    assert [g.passed for g in run.gates] == [True, False, False]
    assert run.gates[2].value is None  # no decision case: undefined, which fails the gate
    assert not run.passed


def test_parse_configs() -> None:
    assert parse_configs(None) == ("hybrid", "dense", "bm25", "langchain")
    assert parse_configs(["bm25,dense", "bm25"]) == ("bm25", "dense")
    with pytest.raises(FaqbotError, match="unknown config 'sparse'"):
        parse_configs(["sparse"])


# ---- the LangChain baseline ------------------------------------------------------------------------------
def test_baseline_cites_grounded_recursive_chunks_and_never_abstains(lexical: LexicalBot) -> None:
    baseline = LangChainBaseline(lexical.docs, HashEmbeddings())
    assert len(baseline.chunks) >= 5
    assert all(len(c.page_content) <= 1000 for c in baseline.chunks)
    systems = [System("langchain", "baseline", baseline.ask)]
    rows = [*CASES, {"id": "o2", "kind": "out_of_scope", "question": "capital of France"}]
    run = run_eval(cases_of(rows), systems, sources_of(lexical), clock=ticking_clock())
    m = run.primary.metrics
    assert m.grounding == 1.0 and m.spans == 5 * len(rows)
    assert m.abstention_recall == 0.0 and m.abstention_precision is None  # never abstains
    assert all(r.route == "answer" and len(r.spans) == 5 for r in run.primary.results)
    labs = run.primary.results[1]
    assert labs.evidence_rank is not None and labs.evidence_rank <= 5


def test_make_systems_builds_the_baseline_over_the_bot_documents(lexical: LexicalBot) -> None:
    (system,) = runner.make_systems(lexical, ["langchain"], embeddings=HashEmbeddings())
    a = system.ask("Day 15 of the first four cycles", ())
    source = lexical.docs[0].text
    assert a.citations and all(source[c.start : c.end] == c.text for c in a.citations)


# ---- faqbot eval -----------------------------------------------------------------------------------------
@pytest.fixture
def fake_load(monkeypatch: pytest.MonkeyPatch, project: Path) -> Iterator[list[Settings]]:
    """``load_bot`` replaced by the lexical stand-in; yields the settings it was called with."""
    import bot.core

    calls: list[Settings] = []

    def load_bot(settings: Settings) -> LexicalBot:
        calls.append(settings)
        return LexicalBot(project)

    monkeypatch.setattr(bot.core, "load_bot", load_bot)
    yield calls


def write_set(tmp_path: Path, rows: list[dict[str, Any]], header: dict[str, Any] | None = None) -> str:
    path = tmp_path / "set.jsonl"
    lines = ([json.dumps({"meta": header})] if header else []) + [json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["eval", *argv, "--quiet"], out=out)
    return code, out.getvalue()


def test_exit_code_0_when_gates_pass(fake_load: list[Settings], tmp_path: Path) -> None:
    code, text = run_cli(
        write_set(tmp_path, CASES), "--config", "hybrid", "--min", "hit@1=1", "--min", "grounding=1"
    )
    assert code == 0, text
    assert "ok  hybrid: hit@1 = 1" in text and "PASSED" in text
    assert fake_load[0].cache_size == 0  # latency measures real answers, never the cache


def test_exit_code_1_when_a_gate_fails(fake_load: list[Settings], tmp_path: Path) -> None:
    code, text = run_cli(
        write_set(tmp_path, CASES), "--config", "hybrid,bm25", "--max", "bm25:latency_p95_ms=0"
    )
    assert code == 1
    assert "FAIL  bm25: latency_p95_ms" in text and "FAILED" in text


def test_header_gates_apply_and_the_command_line_overrides_them(
    fake_load: list[Settings], tmp_path: Path
) -> None:
    path = write_set(tmp_path, CASES, {"min": {"decision_accuracy": 0.5}})
    code, text = run_cli(path, "--config", "hybrid")
    assert code == 1 and "decision_accuracy = undefined" in text
    code, _ = run_cli(path, "--config", "hybrid", "--min", "hit@3=1")
    assert code == 1  # the header gate still applies next to an unrelated command-line gate


def test_exit_code_2_and_no_model_load_for_a_broken_file(
    fake_load: list[Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_set(tmp_path, [*CASES, {"id": "bad", "kind": "faq", "question": "q"}])
    code, _ = run_cli(path)
    assert code == cli.EXIT_ERROR == 2
    assert "set.jsonl:4: a faq case needs 'expect_evidence'" in capsys.readouterr().err
    assert fake_load == []  # the run never started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "sparse"], "unknown config 'sparse'"),
        (["--config", "hybrid", "--min", "dense:mrr=0.5"], "names config 'dense', which is not being run"),
        (["--min", "latency_p50_ms=10"], "lower-is-better: use --max"),
        (["--min", "hit@3"], "METRIC=VALUE"),
    ],
)
def test_exit_code_2_for_bad_arguments(
    fake_load: list[Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, _ = run_cli(write_set(tmp_path, CASES), *args)
    assert code == 2 and message in capsys.readouterr().err and fake_load == []


def test_evidence_missing_from_the_corpus_stops_the_run(fake_load: list[Settings], tmp_path: Path) -> None:
    rows = [{**CASES[0], "expect_evidence": ["every four cycles"]}]
    code, text = run_cli(write_set(tmp_path, rows), "--config", "hybrid")
    assert code == 2 and text == ""


def test_report_files_hold_the_printed_numbers(fake_load: list[Settings], tmp_path: Path) -> None:
    report = tmp_path / "out"
    code, text = run_cli(write_set(tmp_path, CASES), "--config", "hybrid,bm25", "--report", str(report))
    assert code == 0
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in data["configs"]] == ["hybrid", "bm25"]
    hybrid = data["configs"][0]
    assert hybrid["metrics"]["hit@1"] == 1.0 and len(hybrid["results"]) == 3
    assert f"| hybrid | {hybrid['metrics']['accuracy']:.3f} |" in text
    assert (report / "summary.md").is_file() and (report / "report.html").is_file()


def test_an_unwritable_report_folder_is_a_plain_error(
    fake_load: list[Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, _ = run_cli(write_set(tmp_path, CASES), "--config", "hybrid", "--report", str(blocker / "sub"))
    assert code == 2 and "cannot write the report" in capsys.readouterr().err
