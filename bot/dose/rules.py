"""The dose rules as data: ``corpus/dose_rules.yaml`` loaded into small frozen records, validated.

:func:`load_rules` checks the whole file — structure, types, that every quoted text is the exact span of
the source at its offsets, that conditions only use known facts — and raises
:class:`~bot.errors.RuleFileError` naming the rule (or reaction) and the field at the first problem.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.chunking import chunk_id
from bot.dose.facts import BOOL_FIELDS, CONDITION_FIELDS, FIELDS, GRADES, RATIO_FIELDS, Bound, Facts
from bot.errors import RuleFileError
from bot.records import Citation, Decision

RULES_FILENAME = "dose_rules.yaml"
SCHEMA_VERSION = 1
_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")

_OPS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "gt": (">", operator.gt),
    "ge": ("≥", operator.ge),
    "lt": ("<", operator.lt),
    "le": ("≤", operator.le),
}


@dataclass(frozen=True, slots=True)
class Span:
    """A verbatim span of the source: ``source_text[start:end] == text``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Passage:
    """A cited passage (a chunk of the index: same span, same id)."""

    span: Span
    context: str
    source: str

    @property
    def id(self) -> str:
        return chunk_id(self.source, self.span.start, self.span.end, self.span.text)

    def citation(self, n: int) -> Citation:
        s = self.span
        return Citation(n, self.id, self.source, s.start, s.end, s.text, self.context, 1.0)


def compare(op: str, value: float, threshold: float) -> bool:
    """``value op threshold`` for a rule file's comparison (gt | ge | lt | le)."""
    return bool(_OPS[op][1](value, threshold))


@dataclass(frozen=True, slots=True)
class Constraint:
    """One fact's condition: ``grade == 3``, ``aki is True``, ``cpk_uln > 10``."""

    field: str
    op: str  # eq | gt | ge | lt | le
    value: int | bool | float

    def holds(self, facts: Facts) -> bool | None:
        """True/False when the fact is stated, None when it is not."""
        actual = getattr(facts, self.field)
        if actual is None:
            return None
        if self.op == "eq":
            if isinstance(self.value, bool):
                return actual is self.value
            return type(actual) is int and actual == self.value
        if isinstance(actual, Bound):  # "CPK > 10× ULN": decided when every value within it agrees
            return actual.decides(self.op, float(self.value))
        return compare(self.op, float(actual), float(self.value))

    def describe(self) -> str:
        if self.field == "grade":
            return f"grade {self.value}"
        if self.field in BOOL_FIELDS:
            names = {
                "symptomatic": "symptomatic",
                "suspected_scar": "suspected SCARs",
                "aki": "acute kidney injury",
            }
            return names[self.field] if self.value else f"no {names[self.field]}"
        what = "CPK" if self.field == "cpk_uln" else "serum creatinine"
        unit = "ULN" if self.field == "cpk_uln" else "baseline"
        return f"{what} {_OPS[self.op][0]} {self.value:g}× {unit}"


@dataclass(frozen=True, slots=True)
class Alternative:
    """Constraints that must all hold."""

    constraints: tuple[Constraint, ...]

    def holds(self, facts: Facts) -> bool | None:
        results = [c.holds(facts) for c in self.constraints]
        if any(r is False for r in results):
            return False
        if any(r is None for r in results):
            return None
        return True

    def unknown(self, facts: Facts) -> tuple[str, ...]:
        # not stated, or stated as a bound that does not decide the condition
        return tuple(c.field for c in self.constraints if c.holds(facts) is None)

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.constraints)


@dataclass(frozen=True, slots=True)
class Rule:
    """One table row: when any alternative holds, the row's action applies."""

    id: str
    reaction: str
    source: str
    context: str
    severity: Span
    action: Span
    quote: Span
    when: tuple[Alternative, ...]

    def holds(self, facts: Facts) -> bool | None:
        """True: the row applies; False: it does not; None: a fact it needs is not stated."""
        results = [a.holds(facts) for a in self.when]
        if any(r is True for r in results):
            return True
        if any(r is None for r in results):
            return None
        return False

    def unknown(self, facts: Facts) -> tuple[str, ...]:
        """Facts not stated that could still make this row apply (in FIELDS order)."""
        names = {f for a in self.when if a.holds(facts) is None for f in a.unknown(facts)}
        return tuple(f for f in FIELDS if f in names)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(c.field for a in self.when for c in a.constraints)

    def describe(self) -> str:
        return " or ".join(a.describe() for a in self.when)

    @property
    def passage(self) -> Passage:
        return Passage(self.quote, self.context, self.source)

    def decision(self) -> Decision:
        q = self.quote
        return Decision(
            self.reaction, self.severity.text, self.action.text, q.text, self.source, q.start, q.end
        )


@dataclass(frozen=True, slots=True)
class FlagTerms:
    """Words that state a boolean fact (e.g. SJS, TEN -> suspected_scar)."""

    field: str
    synonyms: tuple[str, ...]
    acronyms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reaction:
    id: str
    label: Span
    table: Span
    synonyms: tuple[str, ...]
    acronyms: tuple[str, ...]
    flags: tuple[FlagTerms, ...]
    exclude: tuple[str, ...]
    assume: tuple[tuple[str, bool], ...]
    related: tuple[Passage, ...]
    # The reaction's rule ids from most to least severe: when several rows hold, the first governs.
    precedence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All rules and reactions of one rule file, with the source text they quote."""

    path: str
    source: str
    source_text: str
    reactions: tuple[Reaction, ...]
    rules: tuple[Rule, ...]
    # The drugs the source is about (lower case; each occurs in it): never "another drug", and carrying
    # no information that tells the source's passages apart.
    regimen: tuple[str, ...] = ()

    def reaction(self, reaction_id: str) -> Reaction | None:
        for r in self.reactions:
            if r.id == reaction_id:
                return r
        return None

    def rules_for(self, reaction_id: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.reaction == reaction_id)

    def by_precedence(self, rows: Sequence[Rule]) -> tuple[Rule, ...]:
        """``rows`` (of one reaction) ordered most severe first, by the reaction's ``precedence``; rows it
        does not list keep their order after the listed ones. The first is the row that governs."""
        if not rows:
            return ()
        rx = self.reaction(rows[0].reaction)
        order = {rid: k for k, rid in enumerate(rx.precedence if rx is not None else ())}
        return tuple(sorted(rows, key=lambda r: order.get(r.id, len(order))))

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    @property
    def reaction_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.reactions)

    def reaction_names(self) -> dict[str, str]:
        """Every accepted word for a reaction (lower case) -> its id (the ids themselves included)."""
        out: dict[str, str] = {}
        for r in self.reactions:
            out[r.id] = r.id
            for word in (*r.synonyms, *r.acronyms):
                out.setdefault(word.lower(), r.id)
        return out

    def fields_of(self, reaction_id: str) -> tuple[str, ...]:
        """The facts the reaction's rows depend on (in FIELDS order)."""
        used = {f for r in self.rules_for(reaction_id) for f in r.fields}
        return tuple(f for f in FIELDS if f in used)


# ---- loading -------------------------------------------------------------------------------------------
class _Where:
    """Where in the file a value sits, for error messages: 'rule 'x': field 'action.start''."""

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner

    def error(self, field: str, problem: str) -> RuleFileError:
        return RuleFileError(f"{self.path}: {self.owner}: field {field!r}: {problem}")


def _mapping(where: _Where, field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise where.error(field, f"must be a mapping, got {_show(value)}")
    return value


def _text(where: _Where, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(field, f"must be non-empty text, got {_show(value)}")
    return value


def _words(where: _Where, field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise where.error(field, f"must be a list of words, got {_show(value)}")
    out = []
    for k, w in enumerate(value):
        out.append(_text(where, f"{field}[{k}]", w).strip())
    return tuple(out)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _span(where: _Where, field: str, value: Any, source_text: str) -> Span:
    m = _mapping(where, field, value)
    extra = sorted(set(m) - {"text", "start", "end", "context"})
    if extra:
        raise where.error(f"{field}.{extra[0]}", "unknown key")
    text = _text(where, f"{field}.text", m.get("text"))
    start, end = m.get("start"), m.get("end")
    for name, v in (("start", start), ("end", end)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise where.error(f"{field}.{name}", f"must be a character offset (integer >= 0), got {_show(v)}")
    assert isinstance(start, int) and isinstance(end, int)
    if end <= start or end > len(source_text):
        raise where.error(
            field, f"offsets {start}-{end} are not a span of the source ({len(source_text)} chars)"
        )
    actual = source_text[start:end]
    if actual != text:
        raise where.error(
            f"{field}.text", f"is not the source text at {start}-{end} (the source has {_show(actual)})"
        )
    return Span(text, start, end)


def _within(where: _Where, field: str, inner: Span, outer: Span, outer_name: str) -> None:
    if not (outer.start <= inner.start and inner.end <= outer.end):
        raise where.error(
            field, f"span {inner.start}-{inner.end} is not inside {outer_name} {outer.start}-{outer.end}"
        )


def _constraint(where: _Where, field: str, name: Any, value: Any) -> Constraint:
    if name not in CONDITION_FIELDS:
        raise where.error(field, f"unknown fact {name!r} (known: {', '.join(sorted(CONDITION_FIELDS))})")
    here = f"{field}.{name}"
    if name == "grade":
        if isinstance(value, bool) or not isinstance(value, int) or value not in GRADES:
            raise where.error(here, f"must be a grade 1-4, got {_show(value)}")
        return Constraint(name, "eq", value)
    if name in BOOL_FIELDS:
        if not isinstance(value, bool):
            raise where.error(here, f"must be true or false, got {_show(value)}")
        return Constraint(name, "eq", value)
    m = _mapping(where, here, value)
    if len(m) != 1 or next(iter(m)) not in _OPS:
        raise where.error(here, f"must be one comparison {{gt|ge|lt|le: number}}, got {_show(dict(m))}")
    op, threshold = next(iter(m.items()))
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise where.error(f"{here}.{op}", f"must be a number, got {_show(threshold)}")
    if threshold <= 0:
        raise where.error(f"{here}.{op}", f"must be a positive multiple, got {_show(threshold)}")
    return Constraint(name, op, float(threshold))


def _when(where: _Where, value: Any) -> tuple[Alternative, ...]:
    if not isinstance(value, list) or not value:
        raise where.error("when", f"must be a non-empty list of conditions, got {_show(value)}")
    alts = []
    for k, alt in enumerate(value):
        m = _mapping(where, f"when[{k}]", alt)
        if not m:
            raise where.error(f"when[{k}]", "must state at least one fact")
        alts.append(Alternative(tuple(_constraint(where, f"when[{k}]", n, v) for n, v in m.items())))
    return tuple(alts)


def _passage(where: _Where, field: str, value: Any, source: str, source_text: str) -> Passage:
    m = _mapping(where, field, value)
    span = _span(where, field, m, source_text)
    context = m.get("context", "")
    if not isinstance(context, str):
        raise where.error(f"{field}.context", f"must be text, got {_show(context)}")
    return Passage(span, context, source)


def _reaction(path: Path, k: int, raw: Any, source: str, source_text: str) -> Reaction:
    rid = raw.get("id") if isinstance(raw, Mapping) else None
    where = _Where(path, f"reaction {rid!r}" if isinstance(rid, str) else f"reactions[{k}]")
    m = _mapping(where, "reaction", raw)
    known = {
        "id",
        "label",
        "table",
        "synonyms",
        "acronyms",
        "flags",
        "exclude",
        "assume",
        "related",
        "precedence",
    }
    extra = sorted(set(m) - known)
    if extra:
        raise where.error(extra[0], "unknown key")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        raise where.error("id", f"must be a lower-case identifier, got {_show(rid)}")
    synonyms = _words(where, "synonyms", m.get("synonyms"))
    if not synonyms:
        raise where.error("synonyms", "must list at least one word")
    flags = []
    for name, spec in _mapping(where, "flags", m.get("flags") or {}).items():
        if name not in BOOL_FIELDS:
            raise where.error(f"flags.{name}", f"must be a yes/no fact ({', '.join(sorted(BOOL_FIELDS))})")
        fm = _mapping(where, f"flags.{name}", spec)
        flags.append(
            FlagTerms(
                name,
                _words(where, f"flags.{name}.synonyms", fm.get("synonyms")),
                _words(where, f"flags.{name}.acronyms", fm.get("acronyms")),
            )
        )
    assume = []
    for name, value in _mapping(where, "assume", m.get("assume") or {}).items():
        if name not in BOOL_FIELDS or not isinstance(value, bool):
            raise where.error(
                f"assume.{name}", f"must be a yes/no fact with true or false, got {_show(value)}"
            )
        assume.append((str(name), value))
    related = m.get("related") or []
    if not isinstance(related, list):
        raise where.error("related", f"must be a list of passages, got {_show(related)}")
    return Reaction(
        id=rid,
        label=_span(where, "label", m.get("label"), source_text),
        table=_span(where, "table", m.get("table"), source_text),
        synonyms=synonyms,
        acronyms=_words(where, "acronyms", m.get("acronyms")),
        flags=tuple(flags),
        exclude=_words(where, "exclude", m.get("exclude")),
        assume=tuple(assume),
        related=tuple(
            _passage(where, f"related[{j}]", p, source, source_text) for j, p in enumerate(related)
        ),
        precedence=_words(where, "precedence", m.get("precedence")),
    )


def _rule(path: Path, k: int, raw: Any, reactions: set[str], source: str, source_text: str) -> Rule:
    rid = raw.get("id") if isinstance(raw, Mapping) else None
    where = _Where(path, f"rule {rid!r}" if isinstance(rid, str) else f"rules[{k}]")
    m = _mapping(where, "rule", raw)
    known = {"id", "reaction", "context", "severity", "action", "quote", "when"}
    extra = sorted(set(m) - known)
    if extra:
        raise where.error(extra[0], "unknown key")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        raise where.error("id", f"must be a lower-case identifier, got {_show(rid)}")
    reaction = m.get("reaction")
    if reaction not in reactions:
        raise where.error(
            "reaction", f"{_show(reaction)} is not a reaction of this file ({', '.join(sorted(reactions))})"
        )
    context = _text(where, "context", m.get("context"))
    severity = _span(where, "severity", m.get("severity"), source_text)
    action = _span(where, "action", m.get("action"), source_text)
    quote = _span(where, "quote", m.get("quote"), source_text)
    if quote.text != quote.text.strip() or "\n" in quote.text:
        raise where.error("quote", "must be one table row without leading or trailing whitespace")
    _within(where, "action", action, quote, "quote")
    _within(where, "severity", severity, quote, "quote")
    if not quote.text.endswith(action.text):
        raise where.error("action", "must be the row's last cell (the action)")
    return Rule(rid, str(reaction), source, context, severity, action, quote, _when(where, m.get("when")))


def _resolve_source(path: Path, source: str, root: Path | None) -> Path:
    candidates = [root / source] if root is not None else []
    candidates += [path.parent.parent / source, path.parent / Path(source).name]
    for c in candidates:
        if c.is_file():
            return c
    raise RuleFileError(
        f"{path}: field 'source': {source!r} not found (looked in {', '.join(str(c) for c in candidates)})"
    )


def load_rules(path: Path | str, root: Path | str | None = None) -> RuleSet:
    """Load and validate a rule file; ``root`` is the project root ``source`` is relative to.

    Without ``root`` the source is looked up relative to the rule file's parent folder's parent (the
    project root for ``corpus/dose_rules.yaml``), then beside the rule file.
    """
    path = Path(path)
    top = _Where(path, "file")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleFileError(f"{path}: dose rule file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the dose rule file ({exc})") from exc
    try:
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleFileError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    doc = _mapping(top, "(top level)", data)
    extra = sorted(set(doc) - {"version", "source", "regimen", "reactions", "rules"})
    if extra:
        raise top.error(extra[0], "unknown key")
    if doc.get("version") != SCHEMA_VERSION:
        raise top.error("version", f"must be {SCHEMA_VERSION}, got {_show(doc.get('version'))}")
    source = _text(top, "source", doc.get("source"))
    source_path = _resolve_source(path, source, Path(root) if root is not None else None)
    try:
        source_text = source_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise top.error("source", f"cannot read {source_path} ({exc})") from exc

    raw_reactions = doc.get("reactions")
    if not isinstance(raw_reactions, list) or not raw_reactions:
        raise top.error("reactions", f"must be a non-empty list, got {_show(raw_reactions)}")
    reactions = [_reaction(path, k, r, source, source_text) for k, r in enumerate(raw_reactions)]
    seen: dict[str, str] = {}
    for rx in reactions:
        if rx.id in {x.id for x in reactions if x is not rx}:
            raise RuleFileError(f"{path}: reaction {rx.id!r}: field 'id': defined twice")
        for word in (*rx.synonyms, *rx.acronyms, *(w for f in rx.flags for w in (*f.synonyms, *f.acronyms))):
            key = word.lower()
            if key in seen and seen[key] != rx.id:
                raise RuleFileError(
                    f"{path}: reaction {rx.id!r}: field 'synonyms': {word!r} is also a word for {seen[key]!r}"
                )
            seen[key] = rx.id

    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise top.error("rules", f"must be a non-empty list, got {_show(raw_rules)}")
    ids = {r.id for r in reactions}
    rules = [_rule(path, k, r, ids, source, source_text) for k, r in enumerate(raw_rules)]
    rule_ids: set[str] = set()
    for r in rules:
        if r.id in rule_ids:
            raise RuleFileError(f"{path}: rule {r.id!r}: field 'id': defined twice")
        rule_ids.add(r.id)
    for rx in reactions:
        if not any(r.reaction == rx.id for r in rules):
            raise RuleFileError(f"{path}: reaction {rx.id!r}: field 'id': no rule uses this reaction")
        for name, _value in rx.assume:
            if not any(name in r.fields for r in rules if r.reaction == rx.id):
                raise RuleFileError(
                    f"{path}: reaction {rx.id!r}: field 'assume.{name}': no rule of this reaction uses it"
                )
    quotes: dict[tuple[int, int], str] = {}
    for r in rules:
        span = (r.quote.start, r.quote.end)
        if span in quotes:
            raise RuleFileError(f"{path}: rule {r.id!r}: field 'quote': same row as rule {quotes[span]!r}")
        quotes[span] = r.id
    for rx in reactions:
        own = [r.id for r in rules if r.reaction == rx.id]
        if (len(own) > 1 or rx.precedence) and sorted(rx.precedence) != sorted(own):
            raise RuleFileError(
                f"{path}: reaction {rx.id!r}: field 'precedence': must list each of the reaction's rules once, "
                f"most severe first ({', '.join(own)}); got [{', '.join(rx.precedence)}]"
            )
    raw_regimen = doc.get("regimen", [])
    if not isinstance(raw_regimen, list) or not all(isinstance(d, str) and d.strip() for d in raw_regimen):
        raise top.error("regimen", f"must be a list of drug names, got {_show(raw_regimen)}")
    regimen = tuple(d.strip().lower() for d in raw_regimen)
    low_source = source_text.lower()
    for d in regimen:
        if not re.search(rf"(?<![\w]){re.escape(d)}(?![\w])", low_source):
            raise top.error("regimen", f"{d!r} does not occur in the source")
    return RuleSet(str(path), source, source_text, tuple(reactions), tuple(rules), regimen)


def default_rules_path(corpus_dir: Path) -> Path:
    return corpus_dir / RULES_FILENAME


__all__ = [
    "RATIO_FIELDS",
    "RULES_FILENAME",
    "Alternative",
    "Constraint",
    "FlagTerms",
    "Passage",
    "Reaction",
    "Rule",
    "RuleSet",
    "Span",
    "default_rules_path",
    "load_rules",
]
