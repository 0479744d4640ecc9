"""The facts a dose decision is made from, and their validation.

:class:`Facts` holds what is known about one adverse reaction; ``None`` means "not stated". A ``Facts``
can hold any value (``grade=7`` included): the engine turns invalid values into a ``clarify`` answer that
names them, so :func:`bot.dose.decide` is total. :func:`problems` lists what is invalid;
:func:`parse_grade`, :func:`parse_ratio` and :meth:`Facts.from_mapping` read values given as text or
JSON for the faces and raise :class:`~bot.errors.FactError` naming the bad value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from bot.errors import FactError

#: The grades the source's tables use ("Grade 1" to "Grade 4").
GRADES: tuple[int, ...] = (1, 2, 3, 4)
FIELDS: tuple[str, ...] = (
    "reaction",
    "grade",
    "symptomatic",
    "suspected_scar",
    "cpk_uln",
    "creatinine_baseline",
    "aki",
)
BOOL_FIELDS: frozenset[str] = frozenset({"symptomatic", "suspected_scar", "aki"})
RATIO_FIELDS: frozenset[str] = frozenset({"cpk_uln", "creatinine_baseline"})
CONDITION_FIELDS: frozenset[str] = frozenset({"grade"}) | BOOL_FIELDS | RATIO_FIELDS

#: What a missing fact is called when the bot asks for it (fixed templates, not source content).
PROMPTS: dict[str, str] = {
    "reaction": "the adverse reaction",
    "grade": "the grade (1 to 4)",
    "symptomatic": "whether it is symptomatic",
    "suspected_scar": "whether SCARs are suspected",
    "cpk_uln": "CPK as a multiple of the upper limit of normal (ULN)",
    "creatinine_baseline": "serum creatinine as a multiple of baseline",
    "aki": "whether there is acute kidney injury",
}


#: The comparisons a bound can state, and how it is written.
BOUND_OPS: dict[str, str] = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


@dataclass(frozen=True, slots=True)
class Bound:
    """A lab multiple known only as a bound ("CPK > 10× ULN"): every value ``op`` ``value``.

    A question often quotes the row's criterion back instead of the measured value. The bound decides a
    row's condition when the condition holds (or fails) for every value within it; otherwise the engine
    asks for the measured value. JSON: ``{"gt": 10}``."""

    op: str  # gt | ge | lt | le
    value: float

    def decides(self, op: str, threshold: float) -> bool | None:
        """Whether ``x op threshold`` holds for every x within this bound (True), for none (False), or
        for some only (None)."""
        lower = self.op in ("gt", "ge")
        b, t = self.value, threshold
        # the condition far out (x → ±∞) and just at the bound's edge (open: just beyond it)
        far = (op in ("gt", "ge")) if lower else (op in ("lt", "le"))
        if self.op == "ge" or self.op == "le":  # closed: the edge value itself
            near = {"gt": b > t, "ge": b >= t, "lt": b < t, "le": b <= t}[op]
        elif lower:  # x just above b
            near = {"gt": b >= t, "ge": b >= t, "lt": b < t, "le": b < t}[op]
        else:  # x just below b
            near = {"gt": b > t, "ge": b > t, "lt": b <= t, "le": b <= t}[op]
        return far if near == far else None

    def to_json(self) -> dict[str, float]:
        return {self.op: self.value}

    def __str__(self) -> str:
        return f"{BOUND_OPS[self.op]} {format_number(self.value)}"


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known about one adverse reaction (``None``: not stated)."""

    reaction: str | None = None
    grade: int | None = None
    symptomatic: bool | None = None
    suspected_scar: bool | None = None
    cpk_uln: float | Bound | None = None
    creatinine_baseline: float | Bound | None = None
    aki: bool | None = None

    def known(self) -> tuple[str, ...]:
        """Names of the fields that are stated, in :data:`FIELDS` order."""
        return tuple(f for f in FIELDS if getattr(self, f) is not None)

    def to_dict(self) -> dict[str, Any]:
        """Only the stated values (the ``facts`` object of the JSON contract; a bound as ``{"gt": 10}``)."""
        return {f: _json_value(getattr(self, f)) for f in self.known()}

    def merged(self, newer: Facts) -> Facts:
        """These facts with every value stated in ``newer`` replacing the one here."""
        values = {f.name: getattr(self, f.name) for f in fields(Facts)}
        values.update({f: getattr(newer, f) for f in newer.known()})
        return Facts(**values)

    def describe(self) -> str:
        """A short human summary of the stated values, e.g. ``ocular · grade 3``."""
        parts = [describe_value(f, getattr(self, f)) for f in self.known()]
        return " · ".join(parts) if parts else "no facts"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], reactions: Mapping[str, str] | None = None) -> Facts:
        """Facts from JSON-like data (the HTTP API); FactError names an unknown key or a mistyped value.

        ``reactions`` maps accepted reaction words (lower case) to canonical names; without it the name is
        kept as given. Grades may be given as text (``"III"``, ``"G3"``); ratios as numbers or numeric text.
        """
        if not isinstance(data, Mapping):
            raise FactError(f"facts must be an object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in FIELDS)
        if unknown:
            raise FactError(f"unknown fact {unknown[0]!r} (known: {', '.join(FIELDS)})")
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if raw is None:
                continue
            if name == "reaction":
                values[name] = canonical_reaction(raw, reactions)
            elif name == "grade":
                values[name] = raw if isinstance(raw, int) and not isinstance(raw, bool) else parse_grade(raw)
            elif name in BOOL_FIELDS:
                if not isinstance(raw, bool):
                    raise FactError(f"{name} must be true or false, got {raw!r}")
                values[name] = raw
            else:
                values[name] = parse_ratio(name, raw)
        return cls(**values)


def _json_value(v: Any) -> Any:
    return v.to_json() if isinstance(v, Bound) else v


@dataclass(frozen=True, slots=True)
class UsedFacts:
    """The facts a dose answer used (``Answer.facts``), with the fields taken from earlier turns.

    ``to_dict()`` is the JSON ``facts`` object: the stated values, plus ``"from_history": [field, ...]``
    (in :data:`FIELDS` order) when some came from earlier messages rather than this question.
    """

    facts: Facts
    from_history: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = self.facts.to_dict()
        carried = [f for f in FIELDS if f in self.from_history and f in out]
        if carried:
            out["from_history"] = carried
        return out


#: What each fact is called where the answer names it ("Adverse reaction: ocular").
FIELD_NAMES: dict[str, str] = {
    "reaction": "Adverse reaction",
    "grade": "Grade",
    "symptomatic": "Symptomatic",
    "suspected_scar": "Suspected SCARs",
    "cpk_uln": "CPK",
    "creatinine_baseline": "Serum creatinine",
    "aki": "Acute kidney injury",
}


def inherited_parts(name: str, value: Any) -> tuple[str, str]:
    """(what the fact is called, its value in words) for the "from an earlier message" note."""
    if name == "grade":
        return FIELD_NAMES[name], str(value)
    if name in BOOL_FIELDS:
        return FIELD_NAMES[name], "yes" if value is True else "no" if value is False else repr(value)
    if name in RATIO_FIELDS:
        text = describe_value(name, value)
        return FIELD_NAMES[name], text.split(" ", 1)[1] if name == "cpk_uln" else text.split(" ", 2)[2]
    return FIELD_NAMES.get(name, name), str(value)


def canonical_reaction(raw: Any, reactions: Mapping[str, str] | None = None) -> str:
    """The canonical reaction name for ``raw``; FactError if it is not one of ``reactions``."""
    if not isinstance(raw, str) or not raw.strip():
        raise FactError(f"reaction must be a name, got {raw!r}")
    if reactions is None:
        return raw.strip()
    key = " ".join(raw.strip().lower().replace("-", " ").replace("_", " ").split())
    for word, name in reactions.items():
        if key == " ".join(word.lower().replace("-", " ").replace("_", " ").split()):
            return name
    names = ", ".join(sorted(set(reactions.values())))
    raise FactError(f"unknown reaction {raw!r} (the source's tables cover: {names})")


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_INT_RE = re.compile(r"[+-]?\d{1,9}")
_GRADE_TEXT_RE = re.compile(r"(?:(?:ctcae\s*)?(?:grade|gr\.?|g)\s*[-:#]?\s*)?(\d{1,9}|[ivx]+|[a-z]+)")


def parse_grade(raw: Any) -> int:
    """A grade given as text: ``"3"``, ``"III"``, ``"G3"``, ``"grade 3"``, ``"three"``.

    Returns the integer even when it is outside 1-4 (the engine asks again, naming it); raises FactError
    for text that is not a grade at all (``"abc"``, ``"2.5"``).
    """
    if isinstance(raw, bool):
        raise FactError(f"grade must be a whole number 1-4, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise FactError(f"grade {raw!r} is not a whole number (grades are 1-4)")
    if not isinstance(raw, str):
        raise FactError(f"grade must be a whole number 1-4, got {raw!r}")
    text = " ".join(raw.strip().lower().split())
    if _INT_RE.fullmatch(text):
        return int(text)
    m = _GRADE_TEXT_RE.fullmatch(text)
    if m:
        token = m.group(1)
        if token.isdigit():
            return int(token)
        if token in _ROMAN:
            return _ROMAN[token]
        if token in _WORDS:
            return _WORDS[token]
    raise FactError(f"grade {raw!r} is not a grade: give 1-4 (also I-IV, G1-G4 or 'grade 3')")


def parse_ratio(name: str, raw: Any) -> float:
    """A lab multiple (of ULN or baseline) given as a number or numeric text; FactError otherwise.

    The value is returned even when negative or zero (the engine asks again, naming it).
    """
    if isinstance(raw, bool):
        raise FactError(f"{name} must be a number, got {raw!r}")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        text = raw.strip().lower().rstrip("x×").strip()
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # 1,5
        try:
            return float(text)
        except ValueError:
            pass
    raise FactError(f"{name} must be a number (a multiple, e.g. 15 or 1.5), got {raw!r}")


def problems(facts: Facts) -> tuple[tuple[str, str], ...]:
    """(field, message) for every stated value that cannot be used; empty when all are usable."""
    out: list[tuple[str, str]] = []
    r = facts.reaction
    if r is not None and (not isinstance(r, str) or not r.strip()):
        out.append(("reaction", f"The reaction {r!r} is not a reaction name."))
    g = facts.grade
    if g is not None:
        if isinstance(g, bool) or not isinstance(g, int):
            out.append(("grade", f"Grade {g!r} is not a whole number; give a grade from 1 to 4."))
        elif g not in GRADES:
            out.append(
                (
                    "grade",
                    f"Grade {g} is outside the grades the source's tables use (Grade 1 to Grade 4); "
                    "give a grade from 1 to 4.",
                )
            )
    for name in ("symptomatic", "suspected_scar", "aki"):
        v = getattr(facts, name)
        if v is not None and not isinstance(v, bool):
            out.append((name, f"{PROMPTS[name][0].upper()}{PROMPTS[name][1:]}: {v!r} is not yes or no."))
    for name in ("cpk_uln", "creatinine_baseline"):
        v = getattr(facts, name)
        if v is None:
            continue
        label = "CPK" if name == "cpk_uln" else "Serum creatinine"
        unit = "ULN" if name == "cpk_uln" else "baseline"
        if isinstance(v, Bound):
            if v.op not in BOUND_OPS or not math.isfinite(v.value) or v.value <= 0:
                out.append(
                    (
                        name,
                        f"{label} {v.op} {v.value!r} is not a valid bound; give it as a multiple of {unit}.",
                    )
                )
        elif isinstance(v, bool) or not isinstance(v, int | float):
            out.append((name, f"{label} {v!r} is not a number; give it as a multiple of {unit}."))
        elif not math.isfinite(v) or v <= 0:
            out.append(
                (
                    name,
                    f"{label} {format_number(v)}× {unit} is not a valid value: a multiple of {unit} must be "
                    "a positive number.",
                )
            )
    return tuple(out)


def format_number(x: float) -> str:
    """15.0 -> '15', 1.49 -> '1.49', -3.0 -> '-3'."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:g}"


def describe_value(name: str, value: Any) -> str:
    """One stated fact in words (fixed templates)."""
    if name == "reaction":
        return str(value)
    if name == "grade":
        return f"grade {value}"
    if name in RATIO_FIELDS:
        num = (
            str(value)
            if isinstance(value, Bound)
            else format_number(value)
            if isinstance(value, int | float)
            else repr(value)
        )
        return f"CPK {num}× ULN" if name == "cpk_uln" else f"serum creatinine {num}× baseline"
    words = {
        "symptomatic": ("symptomatic", "asymptomatic"),
        "suspected_scar": ("suspected SCARs", "no suspected SCARs"),
        "aki": ("acute kidney injury", "no acute kidney injury"),
    }[name]
    if value is True:
        return words[0]
    if value is False:
        return words[1]
    return f"{name}={value!r}"
