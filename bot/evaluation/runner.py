"""Run evaluation cases through one or more configurations and score them.

A configuration is a :class:`System`: a name, a label and an ``ask(question, history) -> Answer``
callable. :func:`make_systems` builds the standard ones over a loaded bot (``hybrid``, ``dense``,
``bm25`` — ``Bot.ask`` with that retrieval mode — and ``langchain``, the stock-recipe baseline);
:func:`run_eval` takes any systems, so tests can pass stand-ins.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.errors import FaqbotError
from bot.evaluation.cases import EvalCase, EvalSet, Gate
from bot.evaluation.results import (
    CaseResult,
    ConfigResult,
    GateResult,
    check_gates,
    error_result,
    score_case,
)
from bot.records import Answer

CONFIGS: tuple[str, ...] = ("hybrid", "dense", "bm25", "langchain")
LABELS = {
    "hybrid": "faqbot, hybrid retrieval (dense + BM25, linearly fused)",
    "dense": "faqbot, dense retrieval only",
    "bm25": "faqbot, BM25 retrieval only",
}
WARMUP_QUESTION = "warm-up question for latency measurement"

Ask = Callable[[str, tuple[str, ...]], Answer]


@dataclass(frozen=True, slots=True)
class System:
    """One configuration under evaluation."""

    name: str
    label: str
    ask: Ask


@dataclass(frozen=True, slots=True)
class SetInfo:
    path: str
    description: str
    cases: int


@dataclass(frozen=True, slots=True)
class EvalRun:
    """A finished run: per-config results (the first is the primary config), gate outcomes, context."""

    sets: tuple[SetInfo, ...]
    configs: tuple[ConfigResult, ...]
    gates: tuple[GateResult, ...]
    created: str
    seconds: float
    context: tuple[tuple[str, str], ...] = ()

    @property
    def passed(self) -> bool:
        """All gates passed (True when there are none)."""
        return all(g.passed for g in self.gates)

    @property
    def primary(self) -> ConfigResult:
        return self.configs[0]

    def config(self, name: str) -> ConfigResult:
        for c in self.configs:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "seconds": round(self.seconds, 3),
            "context": dict(self.context),
            "sets": [{"path": s.path, "description": s.description, "cases": s.cases} for s in self.sets],
            "primary": self.configs[0].name if self.configs else None,
            "passed": self.passed,
            "gates": [g.to_dict() for g in self.gates],
            "configs": [c.to_dict() for c in self.configs],
        }


def parse_configs(values: Sequence[str] | None) -> tuple[str, ...]:
    """Config names from repeatable/comma-separated ``--config`` values; all of them when none given."""
    if not values:
        return CONFIGS
    names: list[str] = []
    for v in values:
        for name in v.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in CONFIGS:
                raise FaqbotError(f"unknown config {name!r}; choose from {', '.join(CONFIGS)}")
            if name not in names:
                names.append(name)
    if not names:
        raise FaqbotError(f"no config given; choose from {', '.join(CONFIGS)}")
    return tuple(names)


def make_systems(bot: Any, names: Sequence[str], embeddings: Any = None) -> tuple[System, ...]:
    """Systems over a loaded bot. ``embeddings`` (LangChain) is for the baseline; by default it is built
    from the bot's own model through :func:`bot.embedding.langchain_embeddings`."""
    systems = []
    for name in names:
        if name in LABELS:

            def ask(q: str, h: tuple[str, ...], mode: str = name) -> Answer:
                result: Answer = bot.ask(q, h, mode=mode)
                return result

            systems.append(System(name, LABELS[name], ask))
        elif name == "langchain":
            from bot.evaluation.baseline import LABEL, LangChainBaseline

            if embeddings is None:
                from bot.embedding import langchain_embeddings

                embeddings = langchain_embeddings(bot.settings.model, bot.settings.device)
            baseline = LangChainBaseline(bot.docs, embeddings)
            systems.append(System(name, LABEL, baseline.ask))
        else:
            raise FaqbotError(f"unknown config {name!r}; choose from {', '.join(CONFIGS)}")
    return tuple(systems)


def run_eval(
    cases: Sequence[EvalCase],
    systems: Sequence[System],
    sources: Mapping[str, str],
    gates: Sequence[Gate] = (),
    sets: Sequence[EvalSet] = (),
    context: Mapping[str, str] | None = None,
    progress: bool = False,
    warmup: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> EvalRun:
    """Ask every case of every system, score, aggregate and check the gates.

    ``sources`` maps a citation's ``source`` to that file's text (for grounding). Latency is the wall time
    of one ``ask`` call, after one warm-up call per system; answer caches should be off (the CLI turns the
    bot's off). A :class:`~bot.errors.FaqbotError` raised for a case is recorded as that case's error.
    """
    from tqdm import tqdm

    started = clock()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    bar = tqdm(
        total=len(cases) * len(systems),
        desc="eval",
        unit="q",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    out: list[ConfigResult] = []
    try:
        for system in systems:
            bar.set_postfix_str(system.name)
            if warmup:
                try:
                    system.ask(WARMUP_QUESTION, ())
                except FaqbotError:
                    pass
            results: list[CaseResult] = []
            for case in cases:
                t0 = clock()
                try:
                    answer = system.ask(case.question, case.history)
                except FaqbotError as exc:
                    results.append(error_result(case, str(exc), (clock() - t0) * 1000.0))
                else:
                    ms = (clock() - t0) * 1000.0
                    results.append(score_case(case, answer, sources, ms))
                bar.update(1)
            out.append(ConfigResult.of(system.name, system.label, results))
    finally:
        bar.close()
    infos = tuple(SetInfo(s.path, s.description, len(s.cases)) for s in sets)
    return EvalRun(
        sets=infos,
        configs=tuple(out),
        gates=check_gates(out, gates),
        created=created,
        seconds=clock() - started,
        context=tuple(sorted((context or {}).items())),
    )
