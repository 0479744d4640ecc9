"""Evaluation files: JSONL parsing and validation into :class:`EvalCase` records.

One JSON object per line (blank lines are skipped). The first object may be a header
``{"meta": {"description": ..., "min": {METRIC: VALUE}, "max": {METRIC: VALUE}}}``; every other line is a
case. Every problem is reported with its line number, all at once, in one :class:`EvalFileError`: a broken
file never starts a run. The format is documented in ``evals/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from bot.errors import EvalFileError
from bot.evaluation.metrics import METRICS, normalize

Kind = Literal["faq", "decision", "no_rule", "clarify", "out_of_scope"]
KINDS: tuple[Kind, ...] = ("faq", "decision", "no_rule", "clarify", "out_of_scope")
CASE_FIELDS = frozenset({"id", "question", "history", "kind", "expect_evidence", "expect_action", "tags"})
META_FIELDS = frozenset({"description", "min", "max"})
MAX_REPORTED = 20


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One evaluation question and what a correct answer must show.

    ``expect_evidence``: strings that must appear (whitespace-normalised) in a cited passage.
    ``expect_action``: the table action cell(s), verbatim — one per reaction for multi-reaction questions.
    ``origin``: ``file:line`` where the case was written.
    """

    id: str
    question: str
    kind: Kind
    history: tuple[str, ...] = ()
    expect_evidence: tuple[str, ...] = ()
    expect_action: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "kind": self.kind,
            "history": list(self.history),
            "expect_evidence": list(self.expect_evidence),
            "expect_action": list(self.expect_action),
            "tags": list(self.tags),
            "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class Gate:
    """A regression threshold: ``metric`` of ``config`` (None: the primary config) must be ``op`` ``value``."""

    metric: str
    op: Literal[">=", "<="]
    value: float
    config: str | None = None

    def describe(self) -> str:
        target = f"{self.config}:" if self.config else ""
        return f"{target}{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True, slots=True)
class EvalSet:
    """A parsed evaluation file: its cases in file order and the gates its header declares."""

    path: str
    description: str
    cases: tuple[EvalCase, ...]
    gates: tuple[Gate, ...] = ()


def _strings(
    value: Any, field: str, problems: list[str], where: str, *, allow_str: bool = False
) -> tuple[str, ...]:
    if value is None:
        return ()
    if allow_str and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        want = "a string or a list of strings" if allow_str else "a list of strings"
        problems.append(
            f"{where}: {field!r} must be {want}, got {json.dumps(value, ensure_ascii=False)[:60]}"
        )
        return ()
    if any(not v.strip() for v in value):
        problems.append(f"{where}: {field!r} holds an empty string")
        return ()
    return tuple(value)


def gate(metric: str, value: float, op: str | None = None, config: str | None = None) -> Gate:
    """A gate on a known metric; the operator follows the metric's direction unless given.

    Raises EvalFileError for an unknown metric, a non-finite value, or ``--min`` on a lower-is-better metric
    (and ``--max`` on a higher-is-better one).
    """
    spec = METRICS.get(metric)
    if spec is None:
        raise EvalFileError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise EvalFileError(f"threshold for {metric} must be a finite number, got {value}")
    natural = ">=" if spec.higher_is_better else "<="
    if op is not None and op != natural:
        flag = "--min" if spec.higher_is_better else "--max"
        raise EvalFileError(
            f"{metric} is {'higher' if spec.higher_is_better else 'lower'}-is-better: use {flag}"
        )
    return Gate(metric, cast(Literal[">=", "<="], natural), float(value), config)


def parse_gate_arg(text: str, op: Literal[">=", "<="]) -> Gate:
    """``[CONFIG:]METRIC=VALUE`` from the command line (``--min`` gives ``>=``, ``--max`` gives ``<=``)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip() or not raw.strip():
        flag = "--min" if op == ">=" else "--max"
        raise EvalFileError(f"{flag} {text!r}: expected [CONFIG:]METRIC=VALUE, e.g. {flag} hit@3=0.8")
    config, colon, metric = name.strip().rpartition(":")
    try:
        value = float(raw)
    except ValueError:
        raise EvalFileError(f"threshold {text!r}: {raw.strip()!r} is not a number") from None
    return gate(metric.strip(), value, op, config.strip() if colon else None)


def _meta_gates(meta: Mapping[str, Any], where: str, problems: list[str]) -> list[Gate]:
    gates: list[Gate] = []
    for key, op in (("min", ">="), ("max", "<=")):
        table = meta.get(key, {})
        if not isinstance(table, dict):
            problems.append(f"{where}: meta {key!r} must be an object of METRIC: VALUE")
            continue
        for name, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{where}: meta {key} {name!r} must be a number, got {value!r}")
                continue
            try:
                config, colon, metric = str(name).rpartition(":")
                gates.append(gate(metric, float(value), op, config if colon else None))
            except EvalFileError as exc:
                problems.append(f"{where}: {exc}")
    return gates


def _case(obj: dict[str, Any], where: str, problems: list[str]) -> EvalCase | None:
    before = len(problems)
    unknown = sorted(set(obj) - CASE_FIELDS)
    if unknown:
        problems.append(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; allowed: {sorted(CASE_FIELDS)}"
        )
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid.strip():
        problems.append(f"{where}: 'id' must be a non-empty string")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        problems.append(f"{where}: 'question' must be a non-empty string")
    kind = obj.get("kind")
    if kind not in KINDS:
        problems.append(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    history = _strings(obj.get("history"), "history", problems, where)
    evidence = _strings(obj.get("expect_evidence"), "expect_evidence", problems, where)
    actions = _strings(obj.get("expect_action"), "expect_action", problems, where, allow_str=True)
    tags = _strings(obj.get("tags"), "tags", problems, where)
    if len(problems) > before:  # the per-kind rules below would only repeat a field's problem
        return None
    if kind == "faq" and not evidence:
        problems.append(f"{where}: a faq case needs 'expect_evidence' (what the cited passage must contain)")
    if kind == "decision" and not actions:
        problems.append(f"{where}: a decision case needs 'expect_action' (the table's action, verbatim)")
    if kind in ("faq", "no_rule", "clarify", "out_of_scope") and actions:
        problems.append(f"{where}: 'expect_action' is only for decision cases (kind is {kind})")
    if kind == "out_of_scope" and evidence:
        problems.append(f"{where}: an out_of_scope case cannot expect evidence")
    if len(problems) > before:
        return None
    return EvalCase(
        id=cast(str, cid).strip(),
        question=cast(str, question),
        kind=cast(Kind, kind),
        history=history,
        expect_evidence=evidence,
        expect_action=actions,
        tags=tags,
        origin=where,
    )


def parse_lines(lines: Iterable[str], name: str = "<eval>") -> EvalSet:
    """Parse JSONL text; raises EvalFileError listing every bad line (``name:line: problem``)."""
    problems: list[str] = []
    cases: list[EvalCase] = []
    gates: list[Gate] = []
    description = ""
    seen: dict[str, str] = {}
    first = True
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            first = False
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
            first = False
            continue
        if "meta" in obj:
            if not first:
                problems.append(f"{where}: the 'meta' header must be the first line")
            elif set(obj) != {"meta"} or not isinstance(obj["meta"], dict):
                problems.append(f'{where}: the header must be {{"meta": {{...}}}} alone')
            else:
                meta = obj["meta"]
                extra = sorted(set(meta) - META_FIELDS)
                if extra:
                    problems.append(f"{where}: unknown meta field(s) {extra}; allowed: {sorted(META_FIELDS)}")
                description = str(meta.get("description", ""))
                gates.extend(_meta_gates(meta, where, problems))
            first = False
            continue
        first = False
        case = _case(obj, where, problems)
        if case is None:
            continue
        if case.id in seen:
            problems.append(f"{where}: duplicate id {case.id!r} (first at {seen[case.id]})")
            continue
        seen[case.id] = where
        cases.append(case)
    if not problems and not cases:
        problems.append(f"{name}: no cases")
    if problems:
        shown = problems[:MAX_REPORTED]
        more = f"\n  … and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise EvalFileError(
            f"{name}: {len(problems)} problem(s):\n  " + "\n  ".join(shown) + more, tuple(problems)
        )
    return EvalSet(name, description, tuple(cases), tuple(gates))


def load_eval_file(path: str | Path) -> EvalSet:
    """Read and parse one evaluation file (UTF-8 JSONL)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalFileError(f"{p}: no such evaluation file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{p}: cannot read ({exc})") from None
    return parse_lines(text.splitlines(), str(path))


def load_eval_files(paths: Sequence[str | Path]) -> tuple[EvalSet, ...]:
    """Several files; ids must be unique across them (a clash names both places)."""
    sets = tuple(load_eval_file(p) for p in paths)
    seen: dict[str, str] = {}
    problems = []
    for s in sets:
        for c in s.cases:
            if c.id in seen:
                problems.append(f"{c.origin}: duplicate id {c.id!r} (first at {seen[c.id]})")
            else:
                seen[c.id] = c.origin
    if problems:
        raise EvalFileError(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems), tuple(problems))
    return sets


def check_against_sources(cases: Sequence[EvalCase], sources: Iterable[str]) -> None:
    """Every expected evidence string and action must occur verbatim (whitespace-normalised) in a source.

    Raises EvalFileError naming each offending case by file and line, so a run never starts on strings the
    corpus cannot contain.
    """
    texts = [normalize(t) for t in sources]
    problems = []
    for c in cases:
        for field, values in (("expect_evidence", c.expect_evidence), ("expect_action", c.expect_action)):
            for v in values:
                if not any(normalize(v) in t for t in texts):
                    problems.append(f"{c.origin}: {field} {v!r} of {c.id!r} is not in the corpus")
    if problems:
        raise EvalFileError(
            f"{len(problems)} expected string(s) not found in the corpus:\n  "
            + "\n  ".join(problems[:MAX_REPORTED]),
            tuple(problems),
        )
