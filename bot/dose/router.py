"""The dose router: the one object the bot and the faces use.

``route(question, history)`` answers dosing questions (None for anything else, which then goes to
retrieval); ``decide(facts)`` serves structured input (the UI form, ``POST /api/decide``, the CLI flags).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.dose.engine import Outcome, evaluate, render
from bot.dose.facts import Facts, canonical_reaction
from bot.dose.parse import ParseResult, Reading, parse
from bot.dose.rules import RULES_FILENAME, RuleSet, load_rules
from bot.errors import FactError, RuleFileError
from bot.records import Answer
from bot.settings import Settings

log = logging.getLogger("faqbot")


class DoseRouter:
    """Deterministic dosing answers over one rule file (``rules`` None: no rule file, routes nothing)."""

    def __init__(self, rules: RuleSet | None, reason: str = "") -> None:
        self.rules = rules
        self.reason = reason

    @property
    def enabled(self) -> bool:
        return self.rules is not None

    def _rules(self) -> RuleSet:
        if self.rules is None:
            raise RuleFileError(self.reason or "no dose rule file is loaded")
        return self.rules

    def read(
        self, question: str, history: Sequence[str] = (), memo: dict[str, Any] | None = None
    ) -> ParseResult:
        """The facts read from ``question`` (and earlier turns), and whether it is a dosing question.
        ``memo``: one request's turns already read (see :func:`~bot.dose.parse.parse`)."""
        return parse(question, tuple(history), self._rules(), memo)

    def route(
        self, question: str, history: tuple[str, ...] = (), memo: dict[str, Any] | None = None
    ) -> Answer | None:
        """A decision / no_rule / clarify answer for a dosing question; None for any other question."""
        if self.rules is None:
            return None
        result = parse(question, history, self.rules, memo)
        if not result.dosing:
            return None
        return self.answer(question, result.readings)

    def answer(self, question: str, readings: Sequence[Reading]) -> Answer:
        rules = self._rules()
        outcomes: list[Outcome] = [
            evaluate(r.facts, rules, r.problems, r.inherited, r.suggested) for r in readings
        ]
        if not outcomes:
            outcomes = [evaluate(Facts(), rules)]
        return render(question, outcomes, rules)

    def decide(self, facts: Facts, question: str | None = None) -> Answer:
        """The answer for structured facts (the UI form, ``POST /api/decide``, the CLI flags).

        A reaction name that is not a reaction of the rule file (nor one of its synonyms) is a client error:
        FactError naming it. Every other value is answered — an invalid grade or lab value with clarify.
        """
        rules = self._rules()
        if facts.reaction is not None:
            facts = replace(facts, reaction=canonical_reaction(facts.reaction, rules.reaction_names()))
        outcome = evaluate(facts, rules)
        return render(question if question is not None else facts.describe(), [outcome], rules)

    def decide_text(self, text: str, history: Sequence[str] = (), overrides: Facts | None = None) -> Answer:
        """Always a dosing answer for ``text`` (``faqbot decide "..."``); stated ``overrides`` win."""
        readings = list(self.read(text, history).readings)
        if overrides is not None and overrides.known():
            if len(readings) > 1:
                names = ", ".join(str(r.facts.reaction) for r in readings)
                raise FactError(
                    f"the text names several reactions ({names}); give flags for one reaction only"
                )
            base = readings[0] if readings else Reading(Facts())
            given = set(overrides.known())
            readings = [
                Reading(
                    base.facts.merged(overrides),
                    tuple(f for f in base.inherited if f not in given),
                    tuple(p for p in base.problems if p.field not in given),
                )
            ]
        return self.answer(text, readings)


def load_router(settings: Settings) -> DoseRouter:
    """The router over ``<corpus_dir>/dose_rules.yaml``; a router that routes nothing if there is none.

    A rule file that exists but is invalid raises :class:`~bot.errors.RuleFileError` (never served).
    """
    path = settings.corpus_path / RULES_FILENAME
    if not path.exists():
        reason = f"no dose rule file at {path}: dosing questions go to retrieval"
        log.warning(reason)
        return DoseRouter(None, reason)
    return DoseRouter(load_rules(path, settings.root))
