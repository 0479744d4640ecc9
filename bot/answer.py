"""Extractive answers and abstention, on plain data (hits in, :class:`~bot.records.Answer` out).

The answer text is built only from source spans, each marked ``[^n]`` and listed in ``citations``; the only
other words are the fixed templates below. When the source does not answer, the answer abstains and the
nearest passages go under ``related`` only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.display import cite_mark, readable
from bot.records import Answer, Chunk, Citation, Hit
from bot.retrieval import Support, Vocabulary

log = logging.getLogger("faqbot")

ANSWER_LEAD = "From the source:"
SOURCES_LEAD = "From the source's references:"
NO_ROW_TEXT = (
    "The source's tables have no criterion for this reaction ({terms}), so no dose action is given. "
    "The reactions its tables cover:"
)
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


# A short question pointing back with a pronoun ("what toxicity made them stop?", "was that more or less than
# in FRAME?"): read with the previous one.
_BACK_RE = re.compile(r"\b(?:they|them|their|those|these|that|it|its)\b", re.I)
_NEW_TOPIC_RE = re.compile(
    r"\b(?:(?:totally |completely |a )?(?:different|separate|new|another|unrelated|other) "
    r"(?:q|qs|question|topic|thing)|"
    r"change of (?:subject|topic)|switching (?:topics?|subjects?)|on another note|unrelated(?: but)?)\b",
    re.I,
)
_PLURAL_BACK_RE = re.compile(r"\b(?:they|them|their|those|these)\b", re.I)
FOLLOWUP_PRONOUN_MAX = 3  # salient terms at most, for a pronoun to make a question a follow-up


def followup_query(question: str, history: Sequence[str], vocabulary: Vocabulary) -> str:
    """The text to search for: an elliptical follow-up ("and the blood work?") is read together with the
    previous question; a self-contained question stands alone."""
    if not history:
        return question
    if _NEW_TOPIC_RE.search(question):  # "totally different q - …": the earlier turn is no context
        return question
    salient = len(vocabulary.salient(question))
    if (
        _FOLLOWUP_RE.match(question)
        or salient <= 1
        or (salient <= FOLLOWUP_PRONOUN_MAX and refers_back(question))
    ):
        return f"{history[-1]} {question}"
    return question


def refers_back(question: str) -> bool:
    """The question points back with a pronoun ("what made them stop?", "was that more than in X?")."""
    return bool(_BACK_RE.search(question))


def lacks_subject(question: str) -> bool:
    """The question's subject is a plural pronoun ("what made them stop?"): it names no subject of its own,
    so it is no search by itself (unlike "what class of drug is that?" after naming the drug)."""
    return bool(_PLURAL_BACK_RE.search(question))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Abstention calibration (see ``Settings``; calibrated on tests/data and evals/dev.jsonl)."""

    min_dense: float = 0.20
    support_dense: float = 0.50
    missing_share: float = 0.75
    rare_information: float = 4.0
    max_citations: int = 2
    passage_support: float = 0.5
    missing_floor: float = 3.0


def display(chunk: Chunk) -> str:
    """A chunk as one line of markdown made only of its own words (a row as 'context: cells')."""
    if chunk.kind == "table_row" and len(chunk.cells) >= 2:
        return f"{chunk.context}: " + " — ".join(chunk.cells[1:])
    if chunk.kind == "list":  # a lead-in and its items: each item's marker dropped
        return " ".join(
            _LIST_MARK_RE.sub("", line, count=1).strip() for line in chunk.text.splitlines() if line.strip()
        )
    text = (
        _LIST_MARK_RE.sub("", chunk.text, count=1) if chunk.kind in ("list_item", "sentence") else chunk.text
    )
    return " ".join(text.split())


def foreign_terms(support: Support) -> list[str]:
    """Unsupported terms that name another drug (by its USAN/INN stem) or a drug-label topic the corpus
    never covers: out of scope whatever the similarity."""
    drugs = [t for t in support.missing if _DRUG_STEM_RE.search(t)]
    return drugs + [f"{topic} ({', '.join(support.missing)})" for topic in support.missing_topics]


UNKNOWN_REACTION_INFORMATION = 3.0  # a corpus-absent word at least this specific names the reaction


def unknown_reaction(routed: Answer, support: Support, th: Thresholds) -> list[str]:
    """The words naming the reaction of a dosing question that asks which reaction while naming something
    specific the corpus never mentions ("grade 3 diarrhoea"): the source has no criterion for it, so it
    is not asked back. Empty when that is not the case."""
    if routed.route != "clarify" or "reaction" not in routed.missing:
        return []
    from bot.retrieval import information

    return [t for t in support.missing if t.isalpha() and information(t) >= UNKNOWN_REACTION_INFORMATION]


def other_drugs(support: Support) -> list[str]:
    """Unsupported terms that name another drug (USAN/INN stem)."""
    return [t for t in support.missing if _DRUG_STEM_RE.search(t)]


# Asking for sources: an interrogative and a source word in the same sentence ("which references …?",
# "what are the numbers sourced from?"); "ignore your sources" is not a question about them.
ASKS_SOURCES_RE = re.compile(
    r"\b(?:what|which|list|name|where|give|show)\b[^.?!;]{0,80}?"
    r"\b(?:references?|refs?|sources|sourced|bibliography|literature)\b",
    re.I,
)
SOURCE_WORDS_RE = re.compile(r"\b(?:references?|refs?|sources|sourced|bibliography|literature)\b", re.I)


def abstain_reason(hits: Sequence[Hit], support: Support, th: Thresholds, stated: float = 0.0) -> str | None:
    """Why the source does not answer (None: it does). ``stated``: the share of the question's specific
    content that the best passage states (``HybridSearcher.passage_support``)."""
    if not hits:
        return "no passage matches"
    foreign = foreign_terms(support)
    if foreign:
        return f"asks about what the source never mentions: {'; '.join(foreign)}"
    best = max(h.dense for h in hits)
    if support.missing_acronyms and stated < th.passage_support:
        # a named thing ("what to look for on OCT?") beside a passage about its neighbourhood (the eye
        # exams) is not answered by it, however similar: the passage must state the rest of the question
        return f"names what the source never mentions ({', '.join(support.missing_acronyms)})"
    if best < th.min_dense:
        return f"best similarity {best:.2f} is below {th.min_dense:.2f}"
    if (
        support.rarest_missing >= th.rare_information
        and best < th.support_dense
        and stated < th.passage_support
    ):
        # an unknown specific word abstains only when no passage is a good match either: a clinician's
        # unusual word ("idiosyncratic") beside a well-matched passage, or beside a passage stating the
        # rest of what is asked ("RAMP-201 … pivotal or exploratory?"), is not evidence of absence
        return (
            f"a specific term the source lacks ({', '.join(support.missing)}) and best similarity {best:.2f}"
        )
    if (
        support.missing_share >= th.missing_share
        and support.missing_information >= th.missing_floor
        and best < th.support_dense
    ):
        return (
            f"{support.missing_share:.0%} of the question's content is not in the source "
            f"({', '.join(support.missing)}) and the best similarity is {best:.2f}"
        )
    return None


def abstention(question: str, hits: Sequence[Hit]) -> Answer:
    related = tuple(Citation.of(n, h.chunk, h.score) for n, h in enumerate(hits[:3], 1))
    return Answer(question, "abstain", ABSTAIN_TEXT if hits else EMPTY_TEXT, related=related)


def compose(
    question: str, hits: Sequence[Hit], support: Support, th: Thresholds, stated: float = 0.0
) -> Answer:
    """An extractive answer citing the best passages, or an abstention listing them as related."""
    reason = abstain_reason(hits, support, th, stated)
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
    quotes = [f"> {readable(display(h.chunk))} {cite_mark(n)}" for n, h in enumerate(chosen, 1)]
    text = "\n\n".join([ANSWER_LEAD, *quotes])
    related = tuple(
        Citation.of(n, h.chunk, h.score)
        for n, h in enumerate((h for h in hits if h not in chosen), len(chosen) + 1)
    )[:3]
    return Answer(question, "answer", text, citations=citations, related=related)


_MARK_RE = re.compile(r"\[(\d{1,3})\]")
_NUMBERED_RE = re.compile(r"^\s*(\d{1,3})[.)]\s+")


def reference_items(chunks: Sequence[Chunk], is_bibliography: Callable[[Chunk], bool]) -> dict[int, Chunk]:
    """The numbered items of the bibliography ("1. Press Release …"), by number."""
    out: dict[int, Chunk] = {}
    for c in chunks:
        if c.kind == "list_item" and is_bibliography(c):
            m = _NUMBERED_RE.match(c.text)
            if m:
                out.setdefault(int(m.group(1)), c)
    return out


def sources_answer(
    question: str, about: Sequence[Hit], items: dict[int, Chunk], is_bibliography: Callable[[Chunk], bool]
) -> Answer | None:
    """A question asking for sources: the passage it is about with the references its marks ("[3] [4]")
    point to, or — when it names no passage that carries marks — the whole reference list. ``about``: the
    hits for the question without its source-asking words. None when the source has no numbered list."""
    if not items:
        return None
    # the passage the question names: the best non-bibliography hit, if the question's own words match it
    content = next((h for h in about if not is_bibliography(h.chunk)), None)
    chosen: list[Chunk] = []
    if content is not None and content.lexical > 0 and _MARK_RE.search(content.chunk.text):
        marks = [int(n) for n in _MARK_RE.findall(content.chunk.text)]
        chosen = [content.chunk] + [items[n] for n in dict.fromkeys(marks) if n in items]
    if len(chosen) <= 1:
        chosen = [items[n] for n in sorted(items)]
    citations = tuple(Citation.of(n, c, 1.0) for n, c in enumerate(chosen, 1))
    lead = SOURCES_LEAD if chosen[0] is items.get(min(items)) or is_bibliography(chosen[0]) else ANSWER_LEAD
    text = "\n\n".join([lead] + [f"> {readable(display(c))} {cite_mark(n)}" for n, c in enumerate(chosen, 1)])
    return Answer(question, "answer", text, citations=citations)


# References named by number ("ref 1", "refs 3 and 4", "reference #2"): answered by those entries.
_NAMED_REFS_RE = re.compile(
    r"\b(?:refs?|references?)\.?\s*#?\s*(\d{1,3}(?:\s*(?:,|and|&|\+|/|or)\s*#?\d{1,3})*)\b", re.I
)


def named_references(question: str) -> list[int]:
    """The reference numbers a question names ("ref 1", "refs 3 and 4"), in order, each once."""
    out: dict[int, None] = {}
    for m in _NAMED_REFS_RE.finditer(question):
        for n in re.findall(r"\d{1,3}", m.group(1)):
            out.setdefault(int(n), None)
    return list(out)


def references_answer(question: str, entries: Sequence[Chunk]) -> Answer:
    """The bibliography entries a question names by number, each cited."""
    citations = tuple(Citation.of(n, c, 1.0) for n, c in enumerate(entries, 1))
    text = "\n\n".join(
        [SOURCES_LEAD] + [f"> {readable(display(c))} {cite_mark(n)}" for n, c in enumerate(entries, 1)]
    )
    return Answer(question, "answer", text, citations=citations)


def no_row_answer(question: str, terms: Sequence[str], coverage: Sequence[Citation]) -> Answer:
    """A dosing question about a reaction the tables never mention ("grade 3 diarrhoea"): no_rule, with
    the reactions the tables do cover cited — never the nearest row."""
    lines = [NO_ROW_TEXT.format(terms=", ".join(terms))]
    lines += [f"> {readable(' '.join(c.text.split()))} {cite_mark(c.n)}" for c in coverage]
    return Answer(question, "no_rule", "\n\n".join(lines), citations=tuple(coverage))
