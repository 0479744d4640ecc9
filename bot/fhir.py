"""FHIR data (CDS Hooks prefetch) → the dose engine's facts. Pure: plain JSON in, small records out.

Labs become the criteria's multiples: the latest creatine kinase (LOINC 2157-6) ÷ its Observation's
``referenceRange.high`` → CPK × ULN; the latest serum creatinine (LOINC 2160-0) ÷ the baseline creatinine
(the earliest on record) → creatinine × baseline. A value is used only when it is a final result with a
plain number, a date and units that agree (UCUM codes compared, never converted); otherwise it is not used
and :class:`LabReading` says why, so a card can name what is missing. An active Condition of acute kidney
injury sets ``aki``; its absence never sets "no". Codes and words are data: ``bot/data/cds_hooks.yaml``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.dose import Facts
from bot.errors import FaqbotError

CODES_PATH = Path(__file__).parent / "data" / "cds_hooks.yaml"
UCUM = "http://unitsofmeasure.org"
FINAL = frozenset({"final", "amended", "corrected"})
GONE = frozenset({"entered-in-error", "cancelled"})
ACTIVE = frozenset({"active", "recurrence", "relapse"})
MAX_ENTRIES = 1000  # entries read from one prefetch Bundle (a hard cap: the rest is ignored and said so)


class FhirDataError(FaqbotError):
    """Prefetch data that is not FHIR JSON of the expected shape (names the key and the problem)."""


# ---- codes (data) -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Lab:
    key: str  # ck | creatinine | alt | ast | bilirubin
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class ConditionCodes:
    phrases: tuple[str, ...]
    codes: tuple[tuple[str, str], ...]  # (system, code prefix)


@dataclass(frozen=True, slots=True)
class Codes:
    """``bot/data/cds_hooks.yaml``: LOINC codes, the regimen's names, condition phrases and codes."""

    loinc_system: str
    labs: dict[str, Lab]
    medication_words: tuple[str, ...]
    medication_codes: tuple[tuple[str, str], ...]
    conditions: dict[str, ConditionCodes]
    monitoring_reactions: tuple[str, ...]

    def lab(self, key: str) -> Lab:
        return self.labs[key]


def load_codes(path: Path | None = None, medication_codes: str = "") -> Codes:
    """The code file, plus ``system|code`` medication codes (comma-separated) from the settings."""
    p = path or CODES_PATH
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
        loinc = data["loinc"]
        labs = {
            k: Lab(k, str(v["code"]), str(v["display"])) for k, v in loinc.items() if isinstance(v, Mapping)
        }
        conditions = {
            name: ConditionCodes(
                tuple(str(x).lower() for x in spec.get("phrases") or ()),
                tuple((str(c["system"]), str(c["prefix"])) for c in spec.get("codes") or ()),
            )
            for name, spec in (data.get("conditions") or {}).items()
        }
        words = tuple(str(w).lower() for w in data["medication_words"])
        monitoring = tuple(str(r) for r in data.get("monitoring_reactions") or ())
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise FhirDataError(f"{p}: not a valid CDS Hooks code file ({type(exc).__name__}: {exc})") from None
    for key in ("ck", "creatinine"):
        if key not in labs:
            raise FhirDataError(f"{p}: loinc.{key} is missing")
    return Codes(
        str(loinc.get("system", "http://loinc.org")),
        labs,
        words,
        parse_codes(medication_codes),
        conditions,
        monitoring,
    )


def parse_codes(spec: str) -> tuple[tuple[str, str], ...]:
    """'http://www.nlm.nih.gov/research/umls/rxnorm|123,sys|456' → ((system, code), ...)."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        system, sep, code = part.rpartition("|")
        if not sep or not system or not code:
            raise FhirDataError(f"medication code {part!r} must be 'system|code'")
        out.append((system, code))
    return tuple(out)


# ---- reading resources --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Found:
    """The resources of one type a prefetch value holds, and notes (OperationOutcome, truncation)."""

    resources: tuple[Mapping[str, Any], ...]
    notes: tuple[str, ...] = ()


def resources_of(value: Any, resource_type: str, key: str) -> Found:
    """Resources of ``resource_type`` in a prefetch value: a resource, a searchset Bundle, or null."""
    if value is None:
        return Found(())
    if not isinstance(value, Mapping):
        raise FhirDataError(f"prefetch {key!r} must be a FHIR resource or null, got {type(value).__name__}")
    rtype = value.get("resourceType")
    if rtype == resource_type:
        return Found((value,))
    if rtype == "OperationOutcome":
        return Found((), (f"{key}: the EHR reported an error ({_outcome_text(value)})",))
    if rtype != "Bundle":
        raise FhirDataError(f"prefetch {key!r} is a {rtype!r}, not a {resource_type} or a Bundle")
    entries = value.get("entry") or []
    if not isinstance(entries, list):
        raise FhirDataError(f"prefetch {key!r}: Bundle.entry must be a list")
    out: list[Mapping[str, Any]] = []
    notes: list[str] = []
    for entry in entries[:MAX_ENTRIES]:
        res = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(res, Mapping) and res.get("resourceType") == resource_type:
            out.append(res)
        elif isinstance(res, Mapping) and res.get("resourceType") == "OperationOutcome":
            notes.append(f"{key}: the EHR reported an error ({_outcome_text(res)})")
    if len(entries) > MAX_ENTRIES:
        notes.append(f"{key}: only the first {MAX_ENTRIES} of {len(entries)} entries were read")
    return Found(tuple(out), tuple(notes))


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    issues = outcome.get("issue") or []
    texts = []
    for issue in issues[:3] if isinstance(issues, list) else []:
        if isinstance(issue, Mapping):
            details = issue.get("details")
            text = details.get("text") if isinstance(details, Mapping) else None
            texts.append(str(text or issue.get("diagnostics") or issue.get("code") or "issue"))
    return "; ".join(t[:200] for t in texts) or "OperationOutcome"


def ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"


def codings(concept: Any) -> list[Mapping[str, Any]]:
    if not isinstance(concept, Mapping):
        return []
    cs = concept.get("coding") or []
    return [c for c in cs if isinstance(c, Mapping)] if isinstance(cs, list) else []


def has_code(concept: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in codings(concept))


def concept_texts(concept: Any) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    texts = [str(c.get("display")) for c in codings(concept) if c.get("display")]
    if concept.get("text"):
        texts.append(str(concept["text"]))
    return texts


# ---- medications --------------------------------------------------------------------------------------
def medication_concepts(request: Mapping[str, Any]) -> list[Any]:
    """The medication of a MedicationRequest: R4 ``medicationCodeableConcept`` / ``medicationReference``,
    R5 ``medication.concept`` / ``medication.reference`` (a reference's display only)."""
    out: list[Any] = []
    if "medicationCodeableConcept" in request:
        out.append(request["medicationCodeableConcept"])
    mref = request.get("medicationReference")
    if isinstance(mref, Mapping) and mref.get("display"):
        out.append({"text": mref["display"]})
    med = request.get("medication")
    if isinstance(med, Mapping):
        if "concept" in med:
            out.append(med["concept"])
        r5ref = med.get("reference")
        if isinstance(r5ref, Mapping) and r5ref.get("display"):
            out.append({"text": r5ref["display"]})
    return out


def names_regimen(request: Mapping[str, Any], codes: Codes) -> str | None:
    """The matched name (a word or code) when the MedicationRequest is for avutometinib or defactinib."""
    for concept in medication_concepts(request):
        for system, code in codes.medication_codes:
            if has_code(concept, system, code):
                return f"{system}|{code}"
        for text in concept_texts(concept):
            low = text.lower()
            for word in codes.medication_words:
                if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", low):
                    return text[:200]
    return None


def regimen_orders(
    draft_orders: Any, codes: Codes, selections: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """(reference, medication) of the draft MedicationRequests for the regimen; with ``selections``
    (order-select), only the selected ones."""
    found = resources_of(draft_orders, "MedicationRequest", "context.draftOrders")
    chosen = set(selections) if selections else None
    out = []
    for req in found.resources:
        if chosen is not None and ref(req) not in chosen:
            continue
        name = names_regimen(req, codes)
        if name is not None:
            out.append((ref(req), name))
    return out


def active_regimen(medications: Any, codes: Codes, key: str = "medications") -> list[tuple[str, str]]:
    """(reference, medication) of the patient's active MedicationRequests for the regimen."""
    out = []
    for req in resources_of(medications, "MedicationRequest", key).resources:
        if req.get("status", "active") not in ("active", "on-hold"):
            continue
        name = names_regimen(req, codes)
        if name is not None:
            out.append((ref(req), name))
    return out


# ---- observations -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Value:
    """One usable lab value: number, UCUM code (or unit text), date, and the Observation it came from."""

    resource: str
    value: float
    unit: str
    ucum: str
    when: datetime
    when_text: str
    high: float | None = None
    high_unit: str = ""
    high_ucum: str = ""

    def show(self) -> str:
        return f"{fmt(self.value)} {self.unit} ({self.resource}, {self.when_text})"


def fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def parse_when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    t = text.strip()
    try:
        if len(t) == 4:
            t += "-01-01"
        elif len(t) == 7:
            t += "-01"
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def observed_at(obs: Mapping[str, Any]) -> tuple[datetime | None, str]:
    for key in ("effectiveDateTime", "effectiveInstant", "issued"):
        if obs.get(key):
            return parse_when(obs[key]), str(obs[key])
    period = obs.get("effectivePeriod")
    if isinstance(period, Mapping) and period.get("start"):
        return parse_when(period["start"]), str(period["start"])
    return None, ""


def _unit(q: Mapping[str, Any]) -> tuple[str, str]:
    """(shown unit, comparable unit): the UCUM code when the system is UCUM, else the unit text."""
    code = q.get("code") if q.get("system") in (UCUM, None) else None
    shown = str(q.get("unit") or q.get("code") or "")
    return shown, str(code or q.get("unit") or "")


def observations(found: Found, codes: Codes, lab: str) -> list[Mapping[str, Any]]:
    code = codes.lab(lab).code
    return [
        o
        for o in found.resources
        if has_code(o.get("code"), codes.loinc_system, code) and o.get("status") not in GONE
    ]


def read_value(obs: Mapping[str, Any], name: str, need_high: bool = False) -> Value | str:
    """A usable value of ``obs``, or the reason it cannot be used (a sentence naming the Observation)."""
    r = ref(obs)
    status = obs.get("status")
    if status not in FINAL:
        return f"{name} {r} has status {status!r}, not a final result"
    when, when_text = observed_at(obs)
    if when is None:
        return f"{name} {r} has no usable date"
    if obs.get("dataAbsentReason") is not None and "valueQuantity" not in obs:
        return f"{name} {r} has no value ({', '.join(concept_texts(obs['dataAbsentReason'])) or 'absent'})"
    q = obs.get("valueQuantity")
    if not isinstance(q, Mapping):
        return f"{name} {r} has no numeric value (valueQuantity)"
    if q.get("comparator"):
        return f"{name} {r} is a bound ({q['comparator']}{q.get('value')}), not a value"
    v = q.get("value")
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        return f"{name} {r} has no positive numeric value (got {v!r})"
    shown, ucum = _unit(q)
    if not ucum:
        return f"{name} {r} has no unit"
    high = None
    high_shown = high_ucum = ""
    if need_high:
        rng = _normal_range(obs.get("referenceRange"))
        hq = rng.get("high") if rng is not None else None
        if not isinstance(hq, Mapping):
            return f"{name} {r} has no reference range upper limit (referenceRange.high)"
        hv = hq.get("value")
        if isinstance(hv, bool) or not isinstance(hv, int | float) or not math.isfinite(hv) or hv <= 0:
            return f"{name} {r} has no positive reference range upper limit (got {hv!r})"
        high_shown, high_ucum = _unit(hq)
        high_ucum = high_ucum or ucum  # a range without units is in the value's units (FHIR SimpleQuantity)
        high_shown = high_shown or shown
        if high_ucum != ucum:
            return (
                f"{name} {r}: the value is in {shown} but the reference upper limit in {high_shown}; "
                "units must agree (faqbot does not convert units)"
            )
        high = float(hv)
    return Value(r, float(v), shown, ucum, when, when_text, high, high_shown, high_ucum)


def _normal_range(ranges: Any) -> Mapping[str, Any] | None:
    if not isinstance(ranges, list):
        return None
    usable = [x for x in ranges if isinstance(x, Mapping) and x.get("high") is not None]
    for x in usable:
        if not x.get("type") or any(c.get("code") == "normal" for c in codings(x.get("type"))):
            return x
    return None


def latest(values: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    dated = [(observed_at(o)[0], o) for o in values]
    known = [(w, o) for w, o in dated if w is not None]
    if known:
        return max(known, key=lambda t: t[0])[1]
    return next(iter(o for _, o in dated), None)


def earliest(values: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    known = [(w, o) for w, o in ((observed_at(o)[0], o) for o in values) if w is not None]
    return min(known, key=lambda t: t[0])[1] if known else None


# ---- labs → facts -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LabReading:
    """What the prefetch gave: the facts for the rhabdomyolysis rows, how each multiple was computed
    (``used``), what could not be used and why (``missing``), and other notes (liver tests, errors)."""

    facts: Facts
    used: tuple[str, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...]


def read_labs(prefetch: Mapping[str, Any], codes: Codes) -> LabReading:
    """Facts for the rhabdomyolysis rows from the prefetch keys ``ck``, ``creatinine``,
    ``creatinineBaseline``, ``conditions`` (and ``liver`` for notes). Missing keys count as no data."""
    used: list[str] = []
    missing: list[str] = []
    notes: list[str] = []
    ck_name = "Creatine kinase (LOINC 2157-6)"
    cr_name = "Serum creatinine (LOINC 2160-0)"

    ck_found = resources_of(prefetch.get("ck"), "Observation", "ck")
    notes += ck_found.notes
    cpk_uln: float | None = None
    ck_obs = latest(observations(ck_found, codes, "ck"))
    if ck_obs is None:
        missing.append(f"{ck_name}: no result")
    else:
        ck = read_value(ck_obs, ck_name, need_high=True)
        if isinstance(ck, str):
            missing.append(ck)
        else:
            assert ck.high is not None
            cpk_uln = ck.value / ck.high
            used.append(
                f"CPK {fmt(cpk_uln)}× ULN = creatine kinase {ck.show()} ÷ its reference upper limit "
                f"{fmt(ck.high)} {ck.high_unit}"
            )

    latest_found = resources_of(prefetch.get("creatinine"), "Observation", "creatinine")
    base_found = resources_of(prefetch.get("creatinineBaseline"), "Observation", "creatinineBaseline")
    notes += latest_found.notes + base_found.notes
    creatinine_baseline: float | None = None
    cr_obs = latest(observations(latest_found, codes, "creatinine"))
    base_obs = earliest(observations(base_found, codes, "creatinine"))
    if cr_obs is None:
        missing.append(f"{cr_name}: no latest result")
    elif base_obs is None:
        missing.append(f"{cr_name}: no baseline (earliest) result")
    else:
        cr = read_value(cr_obs, cr_name)
        base = read_value(base_obs, f"Baseline {cr_name[0].lower()}{cr_name[1:]}")
        if isinstance(cr, str):
            missing.append(cr)
        elif isinstance(base, str):
            missing.append(base)
        elif base.resource == cr.resource or base.when >= cr.when:
            missing.append(
                f"{cr_name}: only one result ({cr.resource}); no earlier value to serve as baseline"
            )
        elif base.ucum != cr.ucum:
            missing.append(
                f"{cr_name}: the latest value is in {cr.unit} but the baseline in {base.unit}; units must "
                "agree (faqbot does not convert units)"
            )
        else:
            creatinine_baseline = cr.value / base.value
            used.append(
                f"Serum creatinine {fmt(creatinine_baseline)}× baseline = latest {cr.show()} ÷ baseline "
                f"(earliest on record) {base.show()}; units {cr.unit}"
            )

    cond_found = resources_of(prefetch.get("conditions"), "Condition", "conditions")
    notes += cond_found.notes
    aki: bool | None = None
    for name, ref_ in active_conditions(cond_found.resources, codes, "aki"):
        aki = True
        used.append(f"Acute kidney injury: active condition {ref_} ({name})")
        break
    if aki is None:
        missing.append(
            "Acute kidney injury: no active condition of acute kidney injury in the record (not taken as no)"
            if prefetch.get("conditions") is not None
            else "Acute kidney injury: no conditions were given"
        )
    for name, ref_ in active_conditions(cond_found.resources, codes, "rhabdomyolysis"):
        notes.append(f"Rhabdomyolysis is an active condition: {ref_} ({name})")
        break

    liver_found = resources_of(prefetch.get("liver"), "Observation", "liver")
    notes += liver_found.notes
    for key, label in (("alt", "ALT"), ("ast", "AST"), ("bilirubin", "Total bilirubin")):
        if key not in codes.labs:
            continue
        obs = latest(observations(liver_found, codes, key))
        if obs is None:
            continue
        v = read_value(obs, f"{label} (LOINC {codes.lab(key).code})", need_high=True)
        if isinstance(v, str):
            notes.append(v)
        elif v.high is not None:
            notes.append(f"{label} {fmt(v.value / v.high)}× ULN: {v.show()}, upper limit {fmt(v.high)}")

    facts = Facts(
        reaction="rhabdomyolysis", cpk_uln=cpk_uln, creatinine_baseline=creatinine_baseline, aki=aki
    )
    return LabReading(facts, tuple(used), tuple(missing), tuple(notes))


def active_conditions(
    conditions: Iterable[Mapping[str, Any]], codes: Codes, kind: str
) -> list[tuple[str, str]]:
    """(name, reference) of active, not refuted Conditions of ``kind`` (by phrase or code prefix)."""
    spec = codes.conditions.get(kind)
    if spec is None:
        return []
    out = []
    for cond in conditions:
        status = [c.get("code") for c in codings(cond.get("clinicalStatus"))]
        if status and not any(s in ACTIVE for s in status):
            continue
        verification = [c.get("code") for c in codings(cond.get("verificationStatus"))]
        if any(v in ("refuted", "entered-in-error") for v in verification):
            continue
        concept = cond.get("code")
        hit = next(
            (
                f"{c.get('system')}|{c.get('code')}"
                for c in codings(concept)
                for system, prefix in spec.codes
                if c.get("system") == system and str(c.get("code", "")).startswith(prefix)
            ),
            None,
        )
        if hit is None:
            for text in concept_texts(concept):
                if any(re.search(rf"\b{re.escape(p)}\b", text.lower()) for p in spec.phrases):
                    hit = text[:200]
                    break
        if hit is not None:
            out.append((hit, ref(cond)))
    return out
