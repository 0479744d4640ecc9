"""Pure metric arithmetic: evidence ranks, hit@k, MRR, nDCG@k, precision/recall/F1, percentiles.

No model, no I/O. The definitions (also in ``evals/README.md``):

* A passage *contains* an evidence string when the whitespace-normalised string is a substring of the
  whitespace-normalised passage (case-sensitive: evidence strings are verbatim source text).
* The *evidence rank* of a ranked passage list is the smallest ``r`` such that passages ``1..r`` together
  contain every evidence string (None if they never do). With one evidence string it is the rank of the
  first passage containing it.
* ``hit@k`` = 1 if the evidence rank is ≤ k; ``RR`` = 1 / evidence rank (0 if none); MRR is its mean.
* ``nDCG@k``: passage ``i`` gains the fraction of evidence strings it is the *first* to contain; DCG sums
  ``gain_i / log2(i + 1)`` over the top ``k``; the ideal is one passage holding all evidence at rank 1
  (IDCG = 1). With one evidence string this is the textbook ``1 / log2(rank + 1)``.
* Precision, recall and F1 are None when their denominator is zero (``F1 = 2TP / (2TP + FP + FN)``).
* Percentiles use the nearest-rank method (the value at position ``ceil(p/100 · n)`` of the sorted list).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.display import readable

_WORD_RE = re.compile(r"[0-9a-z]+")


def normalize(text: str) -> str:
    """Whitespace runs (tabs, newlines) collapsed to one space; ends stripped."""
    return " ".join(text.split())


def loose(text: str) -> str:
    """Lowercase words and numbers only, single-spaced: ignores markdown, punctuation and table separators."""
    return " ".join(_WORD_RE.findall(text.lower()))


def contains(passage: str, evidence: str) -> bool:
    return normalize(evidence) in normalize(passage)


def contains_loosely(text: str, evidence: str) -> bool:
    """``evidence`` appears in ``text`` word for word, ignoring case, punctuation and markup (inline TeX
    and links compared as they read: answer text shows "CPK > 10× ULN" for the source's "CPK $>10x$ ULN")."""
    e = loose(readable(evidence))
    return bool(e) and f" {e} " in f" {loose(readable(text))} "


def evidence_rank(passages: Sequence[str], evidence: Sequence[str]) -> int | None:
    """Smallest r such that passages[:r] together contain every evidence string (1-based); None if never."""
    need = {normalize(e) for e in evidence}
    if not need:
        return None
    covered: set[str] = set()
    for r, passage in enumerate(passages, 1):
        p = normalize(passage)
        covered.update(e for e in need if e in p)
        if covered == need:
            return r
    return None


def hit_at_k(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank is not None and rank > 0 else 0.0


def ndcg_at_k(passages: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """Novelty-graded nDCG@k against the ideal of all evidence in the first passage (see module doc)."""
    need = {normalize(e) for e in evidence}
    if not need or k <= 0:
        return 0.0
    covered: set[str] = set()
    dcg = 0.0
    for i, passage in enumerate(passages[:k], 1):
        p = normalize(passage)
        new = {e for e in need - covered if e in p}
        covered |= new
        dcg += (len(new) / len(need)) / math.log2(i + 1)
    return dcg


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float | None
    recall: float | None
    f1: float | None


def prf(tp: int, fp: int, fn: int) -> PRF:
    """Precision, recall and F1 from counts; each None when its denominator is zero."""
    if min(tp, fp, fn) < 0:
        raise ValueError(f"negative count in tp={tp} fp={fp} fn={fn}")
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return PRF(precision, recall, f1)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values); p in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    idx = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[idx]


def mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


Unit = Literal["rate", "count", "ms", "chars"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A reported metric: its key (as in ``--min KEY=…``), direction, unit and one-line definition."""

    key: str
    label: str
    higher_is_better: bool
    unit: Unit
    doc: str


_SPECS = (
    MetricSpec("hit@1", "hit@1", True, "rate", "evidence fully in the first shown passage"),
    MetricSpec("hit@3", "hit@3", True, "rate", "evidence covered by the first 3 shown passages"),
    MetricSpec("mrr", "MRR", True, "rate", "mean of 1 / evidence rank"),
    MetricSpec("ndcg@5", "nDCG@5", True, "rate", "novelty-graded nDCG over the first 5 shown passages"),
    MetricSpec("evidence_cited", "evidence cited", True, "rate", "evidence covered by the cited passages"),
    MetricSpec(
        "answer_evidence", "evidence in text", True, "rate", "evidence words appear in the answer text"
    ),
    MetricSpec("accuracy", "accuracy", True, "rate", "cases passed (per-kind rule) over all cases"),
    MetricSpec("faq_accuracy", "faq acc.", True, "rate", "faq: answered and evidence cited"),
    MetricSpec(
        "decision_accuracy", "decision acc.", True, "rate", "decision: the expected action(s), verbatim"
    ),
    MetricSpec("no_rule_accuracy", "no-rule acc.", True, "rate", "no_rule: routed to no_rule"),
    MetricSpec("clarify_accuracy", "clarify acc.", True, "rate", "clarify: routed to clarify"),
    MetricSpec("abstention_precision", "abst. P", True, "rate", "abstentions that were out of scope"),
    MetricSpec("abstention_recall", "abst. R", True, "rate", "out-of-scope cases abstained on"),
    MetricSpec("abstention_f1", "abst. F1", True, "rate", "F1 of abstention on out_of_scope"),
    MetricSpec("false_abstentions", "false abst.", False, "count", "in-scope cases abstained on"),
    MetricSpec(
        "false_abstention_rate", "false abst. rate", False, "rate", "false abstentions / in-scope cases"
    ),
    MetricSpec("grounding", "grounding", True, "rate", "shown spans equal to source[start:end]"),
    MetricSpec("latency_p50_ms", "p50 ms", False, "ms", "median answer latency"),
    MetricSpec("latency_p95_ms", "p95 ms", False, "ms", "95th percentile answer latency"),
    MetricSpec("cited_chars", "cited chars", False, "chars", "mean characters cited per case that cites"),
    MetricSpec("errors", "errors", False, "count", "cases where the system raised an error"),
)
METRICS: dict[str, MetricSpec] = {s.key: s for s in _SPECS}


def format_value(key: str, value: float | None) -> str:
    """A metric value for tables: rates to 3 decimals, ms to 1, counts as integers, None as an em dash."""
    if value is None:
        return "—"
    unit = METRICS[key].unit if key in METRICS else "rate"
    if unit == "count":
        return str(int(value))
    if unit in ("ms", "chars"):
        return f"{value:.1f}" if unit == "ms" else f"{value:.0f}"
    return f"{value:.3f}"
