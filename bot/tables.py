"""Questions over the dose tables as a whole, answered from the rule file with every matching row cited.

"Which reactions mean permanent discontinuation?" → every row whose action starts with "Permanently
discontinue"; "What criteria define rhabdomyolysis in Table 2?" → every row of that reaction; "Which
toxicities do the tables cover?" → each reaction's table title or row label. A question about one
patient's case ("my patient has grade 3 rash", any stated grade or lab value) is not one of these: the
rule engine decides or asks for the missing fact.

Pure: the question, the reactions the dose parser read and the rule set in, an Answer (or None) out. The
signals are data (``bot/data/table_questions.txt``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from bot.display import cite_mark, readable
from bot.dose.rules import Passage, Rule, RuleSet
from bot.records import Answer, Citation

TABLE_LEAD = "From the source's tables:"
_EXCLUDE_RE = re.compile(r"\b(?:besides|except|other than|apart from|aside from|excluding|beyond)\b")
_SOURCES_RE = re.compile(r"\b(?:references?|sources?|cite[sd]?|citations?|bibliography)\b")
# "Which toxicities do the tables cover?": the reactions the tables hold, each named by its table or row.
_COVERAGE_RE = re.compile(
    r"\b(?:which|what)\b.*\b(?:reactions?|toxicit(?:y|ies)|adverse|side effects?)\b.*\b(?:tables?|cover(?:s|ed)?)\b"
)


@dataclass(frozen=True, slots=True)
class _Signals:
    ask: tuple[re.Pattern[str], ...]
    about: tuple[re.Pattern[str], ...]
    patient: tuple[re.Pattern[str], ...]
    actions: tuple[tuple[str, re.Pattern[str]], ...]


@lru_cache(maxsize=1)
def signals() -> _Signals:
    text = resources.files("bot").joinpath("data/table_questions.txt").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.rstrip().endswith("]"):
            current = line.strip()[1:-1]
            continue
        sections.setdefault(current, []).append(line.rstrip())
    actions = []
    for line in sections.get("action", []):
        category, _, pattern = line.partition("\t")
        actions.append((category.strip(), re.compile(pattern.strip())))
    return _Signals(
        tuple(re.compile(p) for p in sections.get("ask", [])),
        tuple(re.compile(p) for p in sections.get("about", [])),
        tuple(re.compile(p) for p in sections.get("patient", [])),
        tuple(actions),
    )


def action_categories(question: str) -> tuple[str, ...]:
    low = question.lower()
    return tuple(cat for cat, p in signals().actions if p.search(low))


def is_table_question(question: str, has_case_facts: bool) -> bool:
    """A general question about the tables' content (not one patient's case, no stated grade or lab)."""
    if has_case_facts:
        return False
    low = question.lower()
    sig = signals()
    if any(p.search(low) for p in sig.patient):
        return False
    if not any(p.search(low) for p in sig.ask):
        return False
    if _SOURCES_RE.search(low) or len(action_categories(low)) > 1:
        return False  # about the references, or about how actions are chosen in general
    return (
        any(p.search(low) for p in sig.about)
        or bool(action_categories(low))
        or bool(_COVERAGE_RE.search(low))
    )


def matching_rows(question: str, reactions: Sequence[str], rules: RuleSet) -> list[Rule]:
    """The rows a table question asks for: by action category, else by reaction, else none."""
    categories = action_categories(question)
    rows = list(rules.rules)
    if reactions:
        rows = [r for r in rows if r.reaction in reactions]
    if categories:
        rows = [r for r in rows if any(r.action.text.lower().startswith(c.lower()) for c in categories)]
    elif not reactions:
        return []
    return rows


def coverage_passages(rules: RuleSet) -> list[Passage]:
    """One passage per reaction naming it: its table's title when the table is the reaction's own, else
    its row label."""
    out: list[Passage] = []
    for reaction in rules.reactions:
        own_table = len([r for r in rules.reactions if r.table.start == reaction.table.start]) == 1
        span = reaction.table if own_table else reaction.label
        out.append(Passage(span, reaction.id, rules.source))
    return out


def table_answer(
    question: str, reactions: Sequence[str], has_case_facts: bool, rules: RuleSet
) -> Answer | None:
    """The answer to a question over the tables as a whole, or None when it is not one."""
    if not is_table_question(question, has_case_facts):
        return None
    if reactions and _EXCLUDE_RE.search(question.lower()):
        # "which reactions besides the eye ones?": the other reactions the tables cover
        others = [p for p in coverage_passages(rules) if p.context not in reactions]
        if others:
            cited = [p.citation(n) for n, p in enumerate(others, 1)]
            lines = [TABLE_LEAD] + [f"> {readable(' '.join(c.text.split()))} {cite_mark(c.n)}" for c in cited]
            return Answer(question, "answer", "\n\n".join(lines), citations=tuple(cited))
    rows = matching_rows(question, reactions, rules)
    citations: list[Citation]
    labels: list[str] = []
    if rows:
        citations = [r.passage.citation(n) for n, r in enumerate(rows, 1)]
        for r in rows:
            reaction = rules.reaction(r.reaction)
            labels.append(reaction.label.text if reaction is not None else "")
    elif _COVERAGE_RE.search(question.lower()):
        citations = [p.citation(n) for n, p in enumerate(coverage_passages(rules), 1)]
    else:
        return None
    lines = [TABLE_LEAD]
    for k, c in enumerate(citations):
        text = " — ".join(cell.strip() for cell in c.text.split("\t") if cell.strip())
        label = labels[k] if k < len(labels) else ""
        shown = f"{label}: {text}" if label and not text.startswith(label) else text
        lines.append(f"> {readable(' '.join(shown.split()))} {cite_mark(c.n)}")
    return Answer(question, "answer", "\n\n".join(lines), citations=tuple(citations))
