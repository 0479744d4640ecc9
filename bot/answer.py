"""Extractive answers and abstention, on plain data (hits in, :class:`~bot.records.Answer` out).

The answer text is built only from source spans, each marked ``[n]`` and listed in ``citations``; the only
other words are the fixed templates below. When the source does not answer, the answer abstains and the
nearest passages go under ``related`` only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.records import Answer, Chunk, Citation, Hit
from bot.retrieval import Support, Vocabulary

log = logging.getLogger("faqbot")

ANSWER_LEAD = "From the source:"
ABSTAIN_TEXT = (
    "The source does not answer this question, so no answer is given. "
    "The nearest passages are listed as related, not as an answer."
)
EMPTY_TEXT = "The source does not answer this question: nothing in it matches."
# USAN/INN stems of drug names: a question naming a drug the corpus never mentions is out of scope.
_DRUG_STEM_RE = re.compile(
    r"(mab|nib|lisib|parib|ciclib|platin|taxel|rubicin|mustine|tecan|zomib|degib|rafenib|metinib|tinib|"
    r"sertib|lukast|prazole|statin|sartan|pril|olol|cycline|floxacin|mycin|cillin|azole|vir|dronate|"
    r"gliptin|glutide|parin|xaban|gatran)$"
)
_LIST_MARK_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
SUPPORT_MARGIN = 0.04  # a further passage is quoted if its cosine is within this of the best one


_FOLLOWUP_RE = re.compile(
    r"^\s*(?:and|also|plus|what about|how about|what if|same for|and what about|but|then|ok(?:ay)?,?\s+and)\b",
    re.I,
)


def followup_query(question: str, history: Sequence[str], vocabulary: Vocabulary) -> str:
    """The text to search for: an elliptical follow-up ("and the blood work?") is read together with the
    previous question; a self-contained question stands alone."""
    if not history:
        return question
    if _FOLLOWUP_RE.match(question) or len(vocabulary.salient(question)) <= 1:
        return f"{history[-1]} {question}"
    return question


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Abstention calibration (see ``Settings``; calibrated on tests/data and evals/dev.jsonl)."""

    min_dense: float = 0.20
    support_dense: float = 0.50
    missing_share: float = 0.75
    rare_information: float = 4.0
    max_citations: int = 2


def display(chunk: Chunk) -> str:
    """A chunk as one line of markdown made only of its own words (a row as 'context: cells')."""
    if chunk.kind == "table_row" and len(chunk.cells) >= 2:
        return f"{chunk.context}: " + " — ".join(chunk.cells[1:])
    text = (
        _LIST_MARK_RE.sub("", chunk.text, count=1) if chunk.kind in ("list_item", "sentence") else chunk.text
    )
    return " ".join(text.split())


def foreign_terms(support: Support) -> list[str]:
    """Unsupported terms that name another drug (by its USAN/INN stem) or a drug-label topic the corpus
    never covers: out of scope whatever the similarity."""
    drugs = [t for t in support.missing if _DRUG_STEM_RE.search(t)]
    return drugs + [f"{topic} ({', '.join(support.missing)})" for topic in support.missing_topics]


def unknown_reaction(routed: Answer, support: Support, th: Thresholds) -> bool:
    """A dosing question that asks which reaction while naming something specific the corpus never
    mentions ("grade 2 pneumonitis"): the source has no criteria for it, so it is not asked back."""
    return (
        routed.route == "clarify"
        and "reaction" in routed.missing
        and support.rarest_missing >= th.rare_information
    )


def abstain_reason(hits: Sequence[Hit], support: Support, th: Thresholds) -> str | None:
    """Why the source does not answer (None: it does)."""
    if not hits:
        return "no passage matches"
    foreign = foreign_terms(support)
    if foreign:
        return f"asks about what the source never mentions: {'; '.join(foreign)}"
    best = max(h.dense for h in hits)
    if best < th.min_dense:
        return f"best similarity {best:.2f} is below {th.min_dense:.2f}"
    if support.rarest_missing >= th.rare_information and best < th.support_dense:
        # an unknown specific word abstains only when no passage is a good match either: a clinician's
        # unusual word ("idiosyncratic") beside a well-matched passage is not evidence of absence
        return f"a specific term the source lacks ({', '.join(support.missing)}) and best similarity {best:.2f}"
    if support.missing_share >= th.missing_share and best < th.support_dense:
        return (
            f"{support.missing_share:.0%} of the question's content is not in the source "
            f"({', '.join(support.missing)}) and the best similarity is {best:.2f}"
        )
    return None


def abstention(question: str, hits: Sequence[Hit]) -> Answer:
    related = tuple(Citation.of(n, h.chunk, h.score) for n, h in enumerate(hits[:3], 1))
    return Answer(question, "abstain", ABSTAIN_TEXT if hits else EMPTY_TEXT, related=related)


def compose(question: str, hits: Sequence[Hit], support: Support, th: Thresholds) -> Answer:
    """An extractive answer citing the best passages, or an abstention listing them as related."""
    reason = abstain_reason(hits, support, th)
    if reason is not None:
        log.debug("abstained on %r: %s", question, reason)
        return abstention(question, hits)
    best = hits[0]
    chosen = [best]
    for h in hits[1:]:
        if len(chosen) >= th.max_citations:
            break
        if h.dense >= best.dense - SUPPORT_MARGIN and h.chunk.id not in {c.chunk.id for c in chosen}:
            chosen.append(h)
    citations = tuple(Citation.of(n, h.chunk, h.score) for n, h in enumerate(chosen, 1))
    text = "\n\n".join([ANSWER_LEAD] + [f"> {display(h.chunk)} [{n}]" for n, h in enumerate(chosen, 1)])
    related = tuple(
        Citation.of(n, h.chunk, h.score)
        for n, h in enumerate((h for h in hits if h not in chosen), len(chosen) + 1)
    )[:3]
    return Answer(question, "answer", text, citations=citations, related=related)
