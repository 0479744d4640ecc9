"""Metric arithmetic on tiny hand-made runs whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from bot.evaluation.cases import EvalCase
from bot.evaluation.metrics import (
    contains,
    contains_loosely,
    evidence_rank,
    hit_at_k,
    ndcg_at_k,
    percentile,
    prf,
    reciprocal_rank,
)
from bot.evaluation.results import aggregate, error_result, score_case
from bot.records import Answer, Citation, Decision

SRC = "corpus/doc.md"
DOC = "alpha beta gamma. delta epsilon zeta. eta theta iota. kappa lambda mu."
SOURCES = {SRC: DOC}


def cite(n: int, phrase: str, *, offset: int | None = None) -> Citation:
    """A citation of ``phrase`` at its true offsets in DOC (or at a wrong ``offset``)."""
    start = DOC.index(phrase) if offset is None else offset
    return Citation(n, f"c{n}", SRC, start, start + len(phrase), phrase, "", 1.0)


def answer(q: str, *cites: Citation, related: tuple[Citation, ...] = (), route: str = "answer") -> Answer:
    return Answer(q, route, " ".join(c.text for c in cites) or "abstained", citations=cites, related=related)  # type: ignore[arg-type]


def case(
    cid: str, kind: str = "faq", evidence: tuple[str, ...] = (), actions: tuple[str, ...] = ()
) -> EvalCase:
    return EvalCase(cid, f"question {cid}", kind, expect_evidence=evidence, expect_action=actions)  # type: ignore[arg-type]


# ---- the arithmetic --------------------------------------------------------------------------------------
def test_evidence_rank_is_where_the_evidence_is_first_fully_covered() -> None:
    passages = ["x y", "alpha beta", "gamma delta"]
    assert evidence_rank(passages, ["alpha"]) == 2
    assert evidence_rank(passages, ["alpha", "delta"]) == 3  # covered only once both are shown
    assert evidence_rank(passages, ["alpha", "beta"]) == 2
    assert evidence_rank(passages, ["omega"]) is None
    assert evidence_rank(passages, []) is None


def test_evidence_matching_normalises_whitespace_but_not_case() -> None:
    assert contains("Grade 2 (moderate)\tWithhold until", "Grade 2 (moderate) Withhold")
    assert contains("resume at\n  reduced dose", "resume at reduced dose")
    assert not contains("grade 2 (moderate)", "Grade 2 (moderate)")
    assert contains_loosely(
        "Table 2 › Serious Skin Toxicity: Grade 3 — Withhold", "Serious Skin Toxicity\tGrade 3"
    )
    assert contains_loosely("**10%** of patients", "10%")
    assert not contains_loosely("grade 30 rash", "grade 3")  # word boundaries hold


def test_hit_at_k_and_reciprocal_rank() -> None:
    assert [hit_at_k(r, 1) for r in (1, 2, 3, None)] == [1.0, 0.0, 0.0, 0.0]
    assert [hit_at_k(r, 3) for r in (1, 2, 3, 4, None)] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [reciprocal_rank(r) for r in (1, 2, 4, None)] == [1.0, 0.5, 0.25, 0.0]


def test_ndcg_single_evidence_is_the_textbook_value() -> None:
    ev = ["gold"]
    assert ndcg_at_k(["gold", "x", "y"], ev, 5) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "gold"], ev, 5) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["x", "y", "gold"], ev, 5) == pytest.approx(0.5)
    assert ndcg_at_k(["a", "b", "c", "d", "e", "gold"], ev, 5) == 0.0  # beyond the cut-off
    assert ndcg_at_k(["x", "gold", "gold"], ev, 5) == pytest.approx(1 / math.log2(3))  # no double credit


def test_ndcg_multi_evidence_gives_novelty_credit() -> None:
    # passage 2 brings half the evidence, passage 3 the other half
    got = ndcg_at_k(["x", "alpha", "beta"], ["alpha", "beta"], 5)
    assert got == pytest.approx(0.5 / math.log2(3) + 0.5 / math.log2(4))
    assert ndcg_at_k(["alpha beta"], ["alpha", "beta"], 5) == pytest.approx(1.0)
    assert ndcg_at_k(["alpha", "beta"], ["alpha", "beta"], 5) == pytest.approx(0.5 + 0.5 / math.log2(3))


def test_precision_recall_f1() -> None:
    r = prf(tp=3, fp=1, fn=2)
    assert (r.precision, r.recall) == (pytest.approx(0.75), pytest.approx(0.6))
    assert r.f1 == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    never = prf(tp=0, fp=0, fn=4)  # never abstains: precision undefined, F1 zero
    assert (never.precision, never.recall, never.f1) == (None, 0.0, 0.0)
    assert prf(0, 0, 0).f1 is None
    with pytest.raises(ValueError):
        prf(-1, 0, 0)


def test_percentile_nearest_rank() -> None:
    assert percentile(range(1, 101), 50) == 50
    assert percentile(range(1, 101), 95) == 95
    assert percentile([40.0, 10.0, 30.0, 20.0], 50) == 20.0
    assert percentile([40.0, 10.0, 30.0, 20.0], 95) == 40.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


# ---- a tiny run, scored by hand --------------------------------------------------------------------------
def tiny_run() -> list:
    faq1 = case("f1", evidence=("delta epsilon",))
    faq2 = case("f2", evidence=("kappa", "eta"))
    faq3 = case("f3", evidence=("iota",))
    oos1 = case("o1", "out_of_scope")
    oos2 = case("o2", "out_of_scope")
    return [
        # f1: evidence in the first citation → rank 1
        score_case(faq1, answer("q", cite(1, "delta epsilon zeta")), SOURCES, 10.0),
        # f2: "eta" in citation 1, "kappa" only in related 3 → rank 3, not cited, case fails
        score_case(
            faq2,
            answer("q", cite(1, "eta theta"), related=(cite(2, "alpha beta"), cite(3, "kappa lambda"))),
            SOURCES,
            20.0,
        ),
        # f3: a false abstention; evidence at related rank 2
        score_case(
            faq3,
            answer("q", related=(cite(1, "alpha"), cite(2, "theta iota")), route="abstain"),
            SOURCES,
            30.0,
        ),
        score_case(oos1, answer("q", related=(cite(1, "alpha"),), route="abstain"), SOURCES, 40.0),
        score_case(oos2, answer("q", cite(1, "mu")), SOURCES, 50.0),  # answered out of scope
    ]


def test_tiny_run_metrics_match_hand_computation() -> None:
    results = tiny_run()
    assert [r.evidence_rank for r in results[:3]] == [1, 3, 2]
    assert [r.passed for r in results] == [True, False, False, True, False]
    m = aggregate(results)
    assert m.cases == 5 and m.evidence_cases == 3
    assert m.hit_at_1 == pytest.approx(1 / 3)
    assert m.hit_at_3 == pytest.approx(1.0)
    assert m.mrr == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    ndcg_f2 = 0.5 / math.log2(2) + 0.5 / math.log2(4)
    assert m.ndcg_at_5 == pytest.approx((1.0 + ndcg_f2 + 1 / math.log2(3)) / 3)
    assert m.evidence_cited == pytest.approx(1 / 3)
    # abstention: TP=1 (o1), FP=1 (f3), FN=1 (o2)
    assert (m.abstention_precision, m.abstention_recall, m.abstention_f1) == (0.5, 0.5, 0.5)
    assert m.false_abstentions == 1 and m.false_abstention_rate == pytest.approx(1 / 3)
    assert m.accuracy == pytest.approx(2 / 5) and m.faq_accuracy == pytest.approx(1 / 3)
    assert m.decision_accuracy is None  # no decision cases: undefined, not zero
    assert m.grounding == 1.0 and m.spans == 8
    assert (m.latency_p50_ms, m.latency_p95_ms) == (30.0, 50.0)
    assert m.value("hit@3") == m.hit_at_3 and m.value("ndcg@5") == m.ndcg_at_5


def test_evidence_in_text_reads_the_answer_text() -> None:
    c = case("t", evidence=("theta iota",))
    shown = Answer(
        "q", "answer", "From the source: > **eta theta iota** [1]", citations=(cite(1, "eta theta iota"),)
    )
    hidden = Answer("q", "answer", "From the source: [1]", citations=(cite(1, "eta theta iota"),))
    assert score_case(c, shown, SOURCES, 1.0).evidence_in_text is True
    assert score_case(c, hidden, SOURCES, 1.0).evidence_in_text is False


def test_grounding_catches_a_span_that_is_not_the_source_text() -> None:
    c = case("g", evidence=("alpha",))
    bad = answer("q", cite(1, "alpha", offset=3))  # text "alpha" but offsets point elsewhere
    r = score_case(c, bad, SOURCES, 1.0)
    assert not r.grounded and not r.passed and "not the source text" in r.reason
    unknown = Citation(1, "c", "corpus/other.md", 0, 5, "alpha", "", 1.0)
    assert not score_case(c, answer("q", unknown), SOURCES, 1.0).spans[0].grounded
    m = aggregate([r, score_case(c, answer("q", cite(1, "alpha")), SOURCES, 1.0)])
    assert m.grounding == pytest.approx(0.5)


def test_decision_scoring_compares_actions_as_a_multiset() -> None:
    hold, stop = "Withhold until better.", "Permanently discontinue."
    c = case("d", "decision", actions=(stop, hold))

    def decided(*actions: str, route: str = "decision") -> Answer:
        ds = tuple(Decision("r", "s", a, "alpha beta", SRC, 0, 10) for a in actions)
        return Answer("q", route, "text", decisions=ds)  # type: ignore[arg-type]

    assert score_case(c, decided(hold, stop), SOURCES, 1.0).passed  # order does not matter
    assert not score_case(c, decided(stop), SOURCES, 1.0).passed
    assert not score_case(c, decided(stop, stop), SOURCES, 1.0).passed
    wrong_route = score_case(c, decided(hold, stop, route="no_rule"), SOURCES, 1.0)
    assert not wrong_route.passed and "expected decision, got no_rule" in wrong_route.reason
    # the decision quote is a cited passage and is grounding-checked
    r = score_case(case("d2", "decision", ("alpha beta",), (stop,)), decided(stop), SOURCES, 1.0)
    assert r.evidence_rank == 1 and r.evidence_cited and r.grounded


def test_routes_for_no_rule_clarify_and_errors() -> None:
    assert score_case(case("n", "no_rule"), answer("q", route="no_rule"), SOURCES, 1.0).passed
    assert not score_case(case("n", "no_rule"), answer("q", cite(1, "alpha")), SOURCES, 1.0).passed
    assert score_case(case("c", "clarify"), answer("q", route="clarify"), SOURCES, 1.0).passed
    err = error_result(case("e", evidence=("alpha",)), "boom", 5.0)
    m = aggregate([err])
    assert not err.passed and m.errors == 1 and m.hit_at_1 == 0.0 and m.grounding is None
