"""``faqbot decide``: a dose decision from flags or free text, without the model (no torch import)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from bot.display import cite_mark
from bot.dose.facts import Facts, canonical_reaction, parse_grade
from bot.dose.router import load_router
from bot.records import Answer
from bot.settings import Settings


def facts_from_args(args: argparse.Namespace, reactions: dict[str, str]) -> Facts:
    """The flags as Facts; FactError names a bad --reaction or --grade."""
    reaction = getattr(args, "reaction", None)
    grade = getattr(args, "grade", None)
    return Facts(
        reaction=canonical_reaction(reaction, reactions) if reaction is not None else None,
        grade=parse_grade(grade) if grade is not None else None,
        symptomatic=getattr(args, "symptomatic", None),
        suspected_scar=getattr(args, "suspected_scar", None),
        cpk_uln=getattr(args, "cpk_uln", None),
        creatinine_baseline=getattr(args, "creatinine_baseline", None),
        aki=getattr(args, "aki", None),
    )


def format_decision(answer: Answer) -> str:
    """Terminal rendering: the outcome, the text, then each citation with its location."""
    lines = [f"[{answer.route}]", "", answer.text, ""]
    for c in answer.citations:
        lines.append(f"{cite_mark(c.n)} {c.source}:{c.start}-{c.end}  ({c.context})")
    if answer.missing:
        lines.append(f"missing: {', '.join(answer.missing)}")
    return "\n".join(lines).rstrip() + "\n"


def cli_decide(args: argparse.Namespace, out: TextIO) -> int:
    corpus_dir = getattr(args, "corpus_dir", None)
    settings = Settings.from_env(corpus_dir=Path(corpus_dir)) if corpus_dir else Settings.from_env()
    router = load_router(settings)
    rules = router._rules()
    flags = facts_from_args(args, rules.reaction_names())
    text = getattr(args, "text", None)
    answer = router.decide_text(text, overrides=flags) if text else router.decide(flags)
    if getattr(args, "json", False):
        out.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.write(format_decision(answer))
    return 0
