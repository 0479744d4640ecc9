"""Deterministic dose decisions over the source's Tables 1 and 2 — never from fuzzy retrieval.

    from bot.dose import Facts, load_rules, decide, parse, load_router
    rules = load_rules("corpus/dose_rules.yaml")
    decide(Facts(reaction="ocular", grade=3), rules).to_dict()     # route "decision", action verbatim
    parse("grade 3 rash and grade 2 eye toxicity").facts            # one Facts per reaction
    load_router(settings).route("And grade 4?", ("grade 3 eye toxicity",))

Imports only the standard library, PyYAML and bot.records / errors / settings / chunking: no model.
"""

from __future__ import annotations

from bot.dose.cli import cli_decide
from bot.dose.engine import Outcome, Problem, decide, evaluate, render
from bot.dose.facts import FIELDS, GRADES, Facts, parse_grade, parse_ratio
from bot.dose.parse import ParseResult, Reading, parse
from bot.dose.router import DoseRouter, load_router
from bot.dose.rules import RULES_FILENAME, Rule, RuleSet, load_rules

__all__ = [
    "FIELDS",
    "GRADES",
    "RULES_FILENAME",
    "DoseRouter",
    "Facts",
    "Outcome",
    "ParseResult",
    "Problem",
    "Reading",
    "Rule",
    "RuleSet",
    "cli_decide",
    "decide",
    "evaluate",
    "load_router",
    "load_rules",
    "parse",
    "parse_grade",
    "parse_ratio",
    "render",
]
