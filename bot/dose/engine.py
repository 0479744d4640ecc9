"""The decision engine: facts in, one of three outcomes out — pure, total and deterministic.

For one reaction's :class:`~bot.dose.facts.Facts` the engine evaluates every row of that reaction:

* some row applies                        -> ``decision``: the row that governs (the most severe, by the
                                             reaction's ``precedence``), action verbatim; other applying
                                             rows of the reaction are shown as context, never decided on
* no row applies, some row needs a fact   -> ``clarify`` (``missing`` names the facts; candidate rows shown)
* every row is ruled out                  -> ``no_rule`` (the source has no criterion; its rows are cited)

Unknown reaction, invalid values (grade 0, 5, 7; a negative ratio) or problems read from a question give
``clarify`` with a message naming the value. Several reactions in one question give one outcome each;
:func:`render` combines them into one :class:`~bot.records.Answer` whose text is made of source spans
and the fixed templates below, every span marked ``[^n]`` (``bot.display``) and listed in ``citations``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.display import cite_mark, readable
from bot.dose.facts import FIELDS, PROMPTS, Facts, UsedFacts, describe_value, inherited_parts, problems
from bot.dose.rules import Passage, Rule, RuleSet
from bot.records import Answer, Citation, Decision, Route

DECISION = "decision"
NO_RULE = "no_rule"
CLARIFY = "clarify"

# Fixed templates: the only words of a dosing answer that are not quoted from the source.
T_DECISION = "**{label}**{facts} — {applies}:"
T_APPLIES_ONE = "the source's row applies"
T_APPLIES_MANY = "{n} of the source's rows apply; the most severe governs"
T_NO_RULE = (
    "**{label}**{facts} — the source gives no specific criterion for this case, so no decision is "
    "given. The rows it has for {label} are:"
)
T_CLARIFY = "**{label}**{facts} — to decide, the source's rows need {needs}. The rows that could apply:"
T_CLARIFY_REACTION = (
    "**Which adverse reaction?**{facts} — the source's tables give rows per reaction ({reactions}); "
    "name the reaction. The rows that fit what is given:"
)
T_INVALID = "**{label}**{facts} — {messages}"
T_RELATED = "Related guidance in the source:"
T_ASSUMED = "{what}: not stated, taken as {value}."
T_ALTERNATIVE = "If it is {value}, the source's row is:"
T_INHERITED = "{name}: {value} (from an earlier message)."
T_CONTEXT = "Also met, shown as context only (the row above governs):"
T_SUGGEST = (
    "An earlier message was about {label}; if this is the same reaction, say so — it is not assumed, "
    "since a new question may be about another reaction or another patient."
)


@dataclass(frozen=True, slots=True)
class Problem:
    """A fact that cannot be used, with the message shown to the user (naming the bad value)."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The engine's result for one reaction's facts."""

    kind: str  # decision | no_rule | clarify
    facts: Facts
    reaction: str | None  # canonical reaction id when known and valid
    matched: tuple[Rule, ...] = ()
    cited: tuple[Rule, ...] = ()  # rows shown: candidates (clarify) or the reaction's rows (no_rule)
    missing: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    assumed: tuple[tuple[str, bool], ...] = ()
    inherited: tuple[str, ...] = ()
    # Other rows of the reaction that hold too, less severe than the governing one (shown, not decided on).
    context: tuple[Rule, ...] = ()
    # Reactions of earlier turns offered first when the reaction is asked for (never assumed).
    suggested: tuple[str, ...] = ()
    # Rows that would apply were an assumed fact the other way (shown, never decided on): an unstated
    # "suspected SCARs" is taken as no, and the row for suspected SCARs is still put in front of the reader.
    alternatives: tuple[tuple[str, bool, tuple[Rule, ...]], ...] = ()

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return tuple(r.decision() for r in self.matched)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in (self.matched or self.cited))


def evaluate(
    facts: Facts,
    rules: RuleSet,
    extra_problems: Sequence[Problem] = (),
    inherited: Sequence[str] = (),
    suggested: Sequence[str] = (),
) -> Outcome:
    """The outcome for one reaction's facts. Never raises for any ``Facts`` value.

    When several rows of the reaction hold, the first by the reaction's ``precedence`` (most severe first)
    governs: it is the outcome's only decision; the others are ``context``. ``suggested`` names reactions
    of earlier turns, offered first when the reaction is asked for."""
    found = [Problem(f, m) for f, m in problems(facts)] + list(extra_problems)
    reaction = facts.reaction if isinstance(facts.reaction, str) else None
    if reaction is not None and reaction not in rules.reaction_ids:
        canonical = rules.reaction_names().get(" ".join(reaction.lower().replace("-", " ").split()))
        if canonical is None:
            names = ", ".join(rules.reaction_ids)
            found.append(
                Problem(
                    "reaction", f"The reaction {reaction!r} is not one the source's tables cover ({names})."
                )
            )
        reaction = canonical
    bad = {p.field for p in found}
    usable = replace(facts, **{f: None for f in bad if f in FIELDS})
    inh = tuple(inherited)
    if found:
        cited = _candidates(usable, rules, reaction)
        missing = tuple(f for f in FIELDS if f in bad)
        return Outcome(
            CLARIFY, facts, reaction, cited=cited, missing=missing, problems=tuple(found), inherited=inh
        )
    if reaction is None:
        offer = tuple(r for r in dict.fromkeys(suggested) if isinstance(r, str) and r in rules.reaction_ids)
        cited = _candidates(usable, rules, None)
        cited = tuple(
            sorted(
                cited,
                key=lambda r: (
                    r.reaction not in offer,
                    offer.index(r.reaction) if r.reaction in offer else 0,
                ),
            )
        )
        return Outcome(
            CLARIFY, facts, None, cited=cited, missing=("reaction",), inherited=inh, suggested=offer
        )

    rx = rules.reaction(reaction)
    assert rx is not None
    assumed = tuple((f, v) for f, v in rx.assume if getattr(usable, f) is None)
    effective = replace(usable, reaction=reaction, **dict(assumed))
    rows = rules.rules_for(reaction)
    results = [(r, r.holds(effective)) for r in rows]
    holding = rules.by_precedence([r for r, ok in results if ok is True])
    matched, context = holding[:1], holding[1:]
    if matched:
        alternatives = []
        for f, v in assumed:
            flip: dict[str, Any] = {f: not v}
            flipped = replace(effective, **flip)
            alt = tuple(r for r in rows if r not in holding and r.holds(flipped) is True)
            if alt:
                alternatives.append((f, not v, alt))
        return Outcome(
            DECISION,
            facts,
            reaction,
            matched=matched,
            context=context,
            assumed=assumed,
            inherited=inh,
            alternatives=tuple(alternatives),
        )
    open_rows = tuple(r for r, ok in results if ok is None)
    if open_rows:
        need = {f for r in open_rows for f in r.unknown(effective)}
        missing = tuple(f for f in FIELDS if f in need)
        return Outcome(
            CLARIFY, facts, reaction, cited=open_rows, missing=missing, assumed=assumed, inherited=inh
        )
    return Outcome(NO_RULE, facts, reaction, cited=rows, assumed=assumed, inherited=inh)


def _candidates(facts: Facts, rules: RuleSet, reaction: str | None) -> tuple[Rule, ...]:
    """Rows that could still apply (with each reaction's assumptions): the reaction's rows if it is known;
    else the rows that use a stated fact."""

    def possible(rule: Rule) -> bool:
        rx = rules.reaction(rule.reaction)
        assumed = {f: v for f, v in (rx.assume if rx else ()) if getattr(facts, f) is None}
        return rule.holds(replace(facts, reaction=rule.reaction, **assumed)) is not False

    if reaction is not None:
        rows = rules.rules_for(reaction)
        return tuple(r for r in rows if possible(r)) or rows
    stated = set(facts.known())
    fitting = tuple(r for r in rules.rules if r.fields & stated and possible(r))
    return fitting or rules.rules


def route_of(outcomes: Sequence[Outcome]) -> Route:
    """clarify if any reaction needs a fact; else decision if any row applies; else no_rule."""
    kinds = {o.kind for o in outcomes}
    if not outcomes or CLARIFY in kinds:
        return "clarify"
    if DECISION in kinds:
        return "decision"
    return "no_rule"


class _Numbering:
    """Citation numbers shared across the sections of one answer (a passage cited twice keeps its n)."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._by_id: dict[str, int] = {}

    def cite(self, passage: Passage) -> int:
        pid = passage.id
        if pid not in self._by_id:
            n = len(self.citations) + 1
            self._by_id[pid] = n
            self.citations.append(passage.citation(n))
        return self._by_id[pid]


def _row_line(rule: Rule, rules: RuleSet, n: int) -> str:
    rx = rules.reaction(rule.reaction)
    label = rx.label.text if rx is not None else rule.reaction
    severity, action = readable(rule.severity.text), readable(rule.action.text)
    return f"> {readable(label)} — {severity} — **{action}** {cite_mark(n)}"


_SOURCE_REFS_RE = re.compile(r"(?:\s*\[\d+\])+\s*[.:]?\s*$")


def _passage_line(p: Passage, n: int) -> str:
    """A related passage on one line. A trailing run of the source's own reference marks ("... indicated
    [1] [2].") is cut off so it is not mistaken for this answer's citation numbers: the shown line stays a
    verbatim prefix of the passage, and the citation keeps the whole passage."""
    text = " ".join(p.span.text.split())
    if text.startswith("- "):
        text = text[2:]
    text = _SOURCE_REFS_RE.sub("", text)
    return f"> {readable(text)} {cite_mark(n)}"


def _facts_text(o: Outcome) -> str:
    shown = [
        describe_value(f, getattr(o.facts, f))
        for f in o.facts.known()
        if f != "reaction" and f not in o.inherited
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _section(o: Outcome, rules: RuleSet, cites: _Numbering) -> str:
    rx = rules.reaction(o.reaction) if o.reaction else None
    label = rx.label.text if rx is not None else "Adverse reaction"
    facts = _facts_text(o)
    parts: list[str] = []
    if o.problems:
        parts.append(
            T_INVALID.format(label=label, facts=facts, messages=" ".join(p.message for p in o.problems))
        )
    elif o.kind == DECISION:
        n = len(o.matched) + len(o.context)
        applies = T_APPLIES_ONE if n == 1 else T_APPLIES_MANY.format(n=n)
        parts.append(T_DECISION.format(label=label, facts=facts, applies=applies))
    elif o.kind == NO_RULE:
        parts.append(T_NO_RULE.format(label=label, facts=facts))
    elif o.reaction is None:
        offered = (*o.suggested, *(r for r in rules.reaction_ids if r not in o.suggested))
        parts.append(T_CLARIFY_REACTION.format(facts=facts, reactions=", ".join(offered)))
    else:
        needs = "; ".join(PROMPTS[f] for f in o.missing)
        parts.append(T_CLARIFY.format(label=label, facts=facts, needs=needs))
    rows = o.matched if o.kind == DECISION else o.cited
    if o.problems and not rows:
        rows = ()
    parts.append("\n".join(_row_line(r, rules, cites.cite(r.passage)) for r in rows))
    if o.kind == DECISION and o.context and not o.problems:
        lines = [T_CONTEXT] + [_row_line(r, rules, cites.cite(r.passage)) for r in o.context]
        parts.append("\n".join(lines))
    notes = [
        T_ASSUMED.format(what=PROMPTS[f][0].upper() + PROMPTS[f][1:], value="yes" if v else "no")
        for f, v in o.assumed
    ]
    for rid in o.suggested[:1] if o.reaction is None else ():
        srx = rules.reaction(rid)
        notes.append(T_SUGGEST.format(label=srx.label.text if srx is not None else rid))
    for f in FIELDS:
        if f in o.inherited and getattr(o.facts, f) is not None:
            name, shown = inherited_parts(f, getattr(o.facts, f))
            notes.append(T_INHERITED.format(name=name, value=shown))
    if notes:
        parts.append(" ".join(notes))
    for _field, value, alt_rows in o.alternatives:
        lines = [T_ALTERNATIVE.format(value="yes" if value else "no")]
        lines += [_row_line(r, rules, cites.cite(r.passage)) for r in alt_rows]
        parts.append("\n".join(lines))
    if rx is not None and rx.related and not o.problems:
        lines = [T_RELATED] + [_passage_line(p, cites.cite(p)) for p in rx.related]
        parts.append("\n".join(lines))
    return "\n\n".join(p for p in parts if p)


def render(question: str, outcomes: Sequence[Outcome], rules: RuleSet) -> Answer:
    """One Answer for the outcomes of one question (one section per reaction)."""
    cites = _Numbering()
    sections = [_section(o, rules, cites) for o in outcomes]
    decisions = tuple(d for o in outcomes for d in o.decisions)
    missing_set = {f for o in outcomes for f in o.missing}
    missing = tuple(f for f in FIELDS if f in missing_set)
    return Answer(
        question,
        route_of(outcomes),
        "\n\n---\n\n".join(sections),
        citations=tuple(cites.citations),
        decisions=decisions,
        missing=missing,
        facts=tuple(
            UsedFacts(o.facts, tuple(f for f in o.inherited if f in o.facts.known())) for o in outcomes
        ),
    )


def decide(facts: Facts, rules: RuleSet, question: str | None = None) -> Answer:
    """The Answer for one reaction's facts (route decision / no_rule / clarify). Total: never raises."""
    outcome = evaluate(facts, rules)
    return render(question if question is not None else facts.describe(), [outcome], rules)
