"""The evaluation with the real bundled model: the CI regression gate on the smoke set, and the invariants
(grounding 100%, no errors) of every config on the dev set. Throwaway indexes only."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.evaluation.cases import check_against_sources, load_eval_file
from bot.evaluation.runner import make_systems, run_eval

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "evals" / "smoke.jsonl"
DEV = ROOT / "evals" / "dev.jsonl"

pytestmark = pytest.mark.slow


def test_ci_gate_smoke_set_passes(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The regression gate CI runs: `faqbot eval evals/smoke.jsonl --min ...` must exit 0."""
    monkeypatch.chdir(project)  # corpus/ copy; the index is built in the throwaway project
    report = project / "report"
    out = io.StringIO()
    code = cli.main(
        [
            "eval",
            str(SMOKE),
            "--config",
            "hybrid",
            "--min",
            "grounding=1.0",
            "--min",
            "hit@3=0.75",
            "--min",
            "abstention_recall=0.75",
            "--min",
            "decision_accuracy=1.0",
            "--max",
            "errors=0",
            "--report",
            str(report),
            "--quiet",
        ],
        out=out,
    )
    assert code == 0, out.getvalue()
    assert (project / "index" / "manifest.json").is_file()
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    assert data["passed"] is True and len(data["gates"]) >= 4
    assert data["configs"][0]["metrics"]["cases"] == len(load_eval_file(SMOKE).cases)


def test_every_config_is_grounded_on_the_dev_set(real_bot: Any) -> None:
    cases = load_eval_file(DEV).cases
    sources = {d.source: d.text for d in real_bot.docs}
    check_against_sources(cases, sources.values())
    systems = make_systems(real_bot, ["hybrid", "dense", "bm25", "langchain"])
    run = run_eval(cases, systems, sources)
    for c in run.configs:
        m = c.metrics
        assert m.errors == 0, c.name
        assert m.grounding == 1.0, (c.name, [r.case.id for r in c.results if not r.grounded])
        assert m.cases == len(cases) and m.latency_p95_ms is not None and m.latency_p95_ms > 0
    baseline = run.config("langchain")
    assert baseline.metrics.abstention_recall == 0.0  # the stock recipe never abstains
    assert all(len(s.text) <= 1000 for r in baseline.results for s in r.spans)
    # hybrid fusion should not rank worse than both of its parts on the same cases
    mrr = {c.name: c.metrics.mrr or 0.0 for c in run.configs}
    assert mrr["hybrid"] >= min(mrr["dense"], mrr["bm25"])
