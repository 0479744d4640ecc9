"""Scoring one answer against one case, and aggregating case results into metrics. Pure: no model.

The passages an answer *shows*, in order: decision quotes, then citations (together: the *cited*
passages), then related passages. Ranking metrics (hit@k, MRR, nDCG@5) run over all shown passages, so an
abstention's related passages still measure retrieval; whether the answer itself delivered the evidence is
``evidence_cited`` (cited passages only) and whether it abstained is the abstention metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bot.evaluation.cases import KINDS, EvalCase, Gate
from bot.evaluation.metrics import (
    METRICS,
    contains_loosely,
    evidence_rank,
    hit_at_k,
    mean,
    ndcg_at_k,
    percentile,
    prf,
    reciprocal_rank,
)
from bot.records import Answer

NDCG_K = 5


@dataclass(frozen=True, slots=True)
class Span:
    """A passage an answer showed: ``role`` is decision, citation or related."""

    role: str
    source: str
    start: int
    end: int
    text: str
    grounded: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "grounded": self.grounded,
        }


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case answered by one configuration, scored."""

    case: EvalCase
    route: str
    text: str
    passed: bool
    reason: str
    latency_ms: float
    evidence_rank: int | None = None
    ndcg: float | None = None
    evidence_cited: bool | None = None
    evidence_in_text: bool | None = None
    actions: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    spans: tuple[Span, ...] = ()
    error: str = ""
    facts: str = ""  # the dose facts the answer used, as compact JSON ("" for retrieval answers)

    @property
    def has_evidence(self) -> bool:
        return bool(self.case.expect_evidence)

    @property
    def abstained(self) -> bool:
        return self.route == "abstain"

    @property
    def grounded(self) -> bool:
        return all(s.grounded for s in self.spans)

    @property
    def cited_chars(self) -> int:
        return sum(s.end - s.start for s in self.spans if s.role != "related")

    def to_dict(self) -> dict[str, Any]:
        ev = self.has_evidence
        return {
            "id": self.case.id,
            "kind": self.case.kind,
            "question": self.case.question,
            "history": list(self.case.history),
            "tags": list(self.case.tags),
            "origin": self.case.origin,
            "expect_evidence": list(self.case.expect_evidence),
            "expect_action": list(self.case.expect_action),
            "route": self.route,
            "passed": self.passed,
            "reason": self.reason,
            "latency_ms": round(self.latency_ms, 3),
            "evidence_rank": self.evidence_rank,
            "hit@1": hit_at_k(self.evidence_rank, 1) if ev else None,
            "hit@3": hit_at_k(self.evidence_rank, 3) if ev else None,
            "rr": reciprocal_rank(self.evidence_rank) if ev else None,
            "ndcg@5": self.ndcg,
            "evidence_cited": self.evidence_cited,
            "evidence_in_text": self.evidence_in_text,
            "actions": list(self.actions),
            "missing": list(self.missing),
            "facts": json.loads(self.facts) if self.facts else {},
            "grounded": self.grounded,
            "text": self.text,
            "spans": [s.to_dict() for s in self.spans],
            "error": self.error,
        }


def _span(role: str, source: str, start: int, end: int, text: str, sources: Mapping[str, str]) -> Span:
    doc = sources.get(source)
    ok = doc is not None and 0 <= start <= end <= len(doc) and doc[start:end] == text and bool(text)
    return Span(role, source, start, end, text, ok)


def _verdict(case: EvalCase, answer: Answer, cited: bool | None, actions: tuple[str, ...]) -> str:
    """Why the case fails ("" when it passes)."""
    route = answer.route
    if case.kind == "out_of_scope":
        return "" if route == "abstain" else f"expected abstain, got {route}"
    if case.kind == "faq":
        if route != "answer":
            return f"expected answer, got {route}"
        return "" if cited else "evidence not in the cited passages"
    if case.kind == "decision":
        if route != "decision":
            return f"expected decision, got {route}"
        if sorted(actions) != sorted(case.expect_action):
            return f"actions {list(actions)} != expected {list(case.expect_action)}"
        return ""
    return "" if route == case.kind else f"expected {case.kind}, got {route}"


def score_case(case: EvalCase, answer: Answer, sources: Mapping[str, str], latency_ms: float) -> CaseResult:
    """Score ``answer`` to ``case``; ``sources`` maps a citation's source path to that file's text."""
    spans = tuple(
        [_span("decision", d.source, d.start, d.end, d.quote, sources) for d in answer.decisions]
        + [_span("citation", c.source, c.start, c.end, c.text, sources) for c in answer.citations]
        + [_span("related", c.source, c.start, c.end, c.text, sources) for c in answer.related]
    )
    cited_texts = [s.text for s in spans if s.role != "related"]
    shown = [s.text for s in spans]
    ev = case.expect_evidence
    rank = evidence_rank(shown, ev) if ev else None
    ndcg = ndcg_at_k(shown, ev, NDCG_K) if ev else None
    cited = evidence_rank(cited_texts, ev) is not None if ev else None
    in_text = all(contains_loosely(answer.text, e) for e in ev) if ev else None
    actions = tuple(d.action for d in answer.decisions)
    reason = _verdict(case, answer, cited, actions)
    if not reason and not all(s.grounded for s in spans):
        reason = "a shown span is not the source text at its offsets"
    return CaseResult(
        case=case,
        route=answer.route,
        text=answer.text,
        passed=not reason,
        reason=reason,
        latency_ms=latency_ms,
        evidence_rank=rank,
        ndcg=ndcg,
        evidence_cited=cited,
        evidence_in_text=in_text,
        actions=actions,
        missing=tuple(answer.missing),
        spans=spans,
        facts=_facts(answer),
    )


def _facts(answer: Answer) -> str:
    getter = getattr(answer, "facts_dict", None)  # additive field of the dose engine's answers
    facts = getter() if callable(getter) else {}
    return json.dumps(facts, ensure_ascii=False, sort_keys=True, default=str) if facts else ""


def error_result(case: EvalCase, error: str, latency_ms: float) -> CaseResult:
    """A case whose system raised: it fails, and counts as neither an answer nor an abstention."""
    ev = bool(case.expect_evidence)
    return CaseResult(
        case=case,
        route="error",
        text="",
        passed=False,
        reason=f"error: {error}",
        latency_ms=latency_ms,
        ndcg=0.0 if ev else None,
        evidence_cited=False if ev else None,
        evidence_in_text=False if ev else None,
        error=error,
    )


@dataclass(frozen=True, slots=True)
class Metrics:
    """Totals for one configuration over a set of cases (None: undefined on this set)."""

    cases: int
    evidence_cases: int
    out_of_scope_cases: int
    spans: int
    hit_at_1: float | None
    hit_at_3: float | None
    mrr: float | None
    ndcg_at_5: float | None
    evidence_cited: float | None
    answer_evidence: float | None
    accuracy: float | None
    faq_accuracy: float | None
    decision_accuracy: float | None
    no_rule_accuracy: float | None
    clarify_accuracy: float | None
    abstention_precision: float | None
    abstention_recall: float | None
    abstention_f1: float | None
    false_abstentions: float
    false_abstention_rate: float | None
    grounding: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cited_chars: float | None
    errors: float

    def value(self, key: str) -> float | None:
        """A metric by its public key (``hit@1``, ``ndcg@5``, ``decision_accuracy``, …)."""
        if key not in METRICS:
            raise KeyError(key)
        attr = key.replace("@", "_at_")
        out: float | None = getattr(self, attr)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {f.name.replace("_at_", "@"): getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class KindSummary:
    kind: str
    cases: int
    passed: int

    @property
    def accuracy(self) -> float | None:
        return self.passed / self.cases if self.cases else None


def aggregate(results: Sequence[CaseResult]) -> Metrics:
    """Totals over case results (see ``evals/README.md`` for every definition)."""
    ev = [r for r in results if r.has_evidence]
    ranks = [r.evidence_rank for r in ev]

    def rate(rs: Sequence[CaseResult]) -> float | None:
        return mean(1.0 if r.passed else 0.0 for r in rs)

    def of_kind(kind: str) -> list[CaseResult]:
        return [r for r in results if r.case.kind == kind]

    oos = of_kind("out_of_scope")
    in_scope = [r for r in results if r.case.kind != "out_of_scope"]
    tp = sum(r.abstained for r in oos)
    fp = sum(r.abstained for r in in_scope)
    fn = len(oos) - tp
    abst = prf(tp, fp, fn)
    spans = [s for r in results for s in r.spans]
    latencies = [r.latency_ms for r in results]
    citing = [r.cited_chars for r in results if any(s.role != "related" for s in r.spans)]
    return Metrics(
        cases=len(results),
        evidence_cases=len(ev),
        out_of_scope_cases=len(oos),
        spans=len(spans),
        hit_at_1=mean(hit_at_k(k, 1) for k in ranks),
        hit_at_3=mean(hit_at_k(k, 3) for k in ranks),
        mrr=mean(reciprocal_rank(k) for k in ranks),
        ndcg_at_5=mean(r.ndcg or 0.0 for r in ev),
        evidence_cited=mean(1.0 if r.evidence_cited else 0.0 for r in ev),
        answer_evidence=mean(1.0 if r.evidence_in_text else 0.0 for r in ev),
        accuracy=rate(results),
        faq_accuracy=rate(of_kind("faq")),
        decision_accuracy=rate(of_kind("decision")),
        no_rule_accuracy=rate(of_kind("no_rule")),
        clarify_accuracy=rate(of_kind("clarify")),
        abstention_precision=abst.precision,
        abstention_recall=abst.recall,
        abstention_f1=abst.f1,
        false_abstentions=float(fp),
        false_abstention_rate=fp / len(in_scope) if in_scope else None,
        grounding=mean(1.0 if s.grounded else 0.0 for s in spans),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        cited_chars=mean(citing),
        errors=float(sum(1 for r in results if r.error)),
    )


def kind_summaries(results: Sequence[CaseResult]) -> tuple[KindSummary, ...]:
    """Cases and passes per kind, in the canonical kind order (kinds with no cases left out)."""
    out = []
    for kind in KINDS:
        rs = [r for r in results if r.case.kind == kind]
        if rs:
            out.append(KindSummary(kind, len(rs), sum(r.passed for r in rs)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ConfigResult:
    """One configuration's run: its name, a one-line description, totals, per-kind and per-case results."""

    name: str
    label: str
    metrics: Metrics
    kinds: tuple[KindSummary, ...]
    results: tuple[CaseResult, ...]

    @classmethod
    def of(cls, name: str, label: str, results: Sequence[CaseResult]) -> ConfigResult:
        return cls(name, label, aggregate(results), kind_summaries(results), tuple(results))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "metrics": self.metrics.to_dict(),
            "kinds": [
                {"kind": k.kind, "cases": k.cases, "passed": k.passed, "accuracy": k.accuracy}
                for k in self.kinds
            ],
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: Gate
    config: str
    value: float | None
    passed: bool

    def describe(self) -> str:
        shown = "undefined" if self.value is None else f"{self.value:.4g}"
        verdict = "ok" if self.passed else "FAIL"
        return f"{verdict}  {self.config}: {self.gate.metric} = {shown} (needs {self.gate.op} {self.gate.value:g})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "metric": self.gate.metric,
            "op": self.gate.op,
            "threshold": self.gate.value,
            "value": self.value,
            "passed": self.passed,
        }


def check_gates(configs: Sequence[ConfigResult], gates: Sequence[Gate]) -> tuple[GateResult, ...]:
    """Each gate against its config (no config named: the first, primary one). Undefined values fail."""
    by_name = {c.name: c for c in configs}
    out = []
    for g in gates:
        target = by_name.get(g.config) if g.config else (configs[0] if configs else None)
        if target is None:
            out.append(GateResult(g, g.config or "?", None, False))
            continue
        v = target.metrics.value(g.metric)
        ok = v is not None and (v >= g.value if g.op == ">=" else v <= g.value)
        out.append(GateResult(g, target.name, v, ok))
    return tuple(out)


def merge_gates(file_gates: Sequence[Gate], cli_gates: Sequence[Gate]) -> tuple[Gate, ...]:
    """Header gates then command-line gates; a command-line gate replaces a header gate on the same target."""
    cli_keys = {(g.config, g.metric) for g in cli_gates}
    kept: dict[tuple[str | None, str], Gate] = {}
    for g in file_gates:
        key = (g.config, g.metric)
        if key in cli_keys:
            continue
        prev = kept.get(key)
        # Two files gating the same metric: keep the stricter threshold.
        if prev is None or (g.value > prev.value if g.op == ">=" else g.value < prev.value):
            kept[key] = g
    return tuple(kept.values()) + tuple(cli_gates)
