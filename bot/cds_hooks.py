"""The CDS Hooks face (HL7 CDS Hooks 2.0.1, STU2): discovery, service calls, feedback. A thin adapter over
``Bot.decide`` and the dose rules: labs from the EHR's prefetch become the criteria's multiples
(:mod:`bot.fhir`), the dose engine decides, and the cards quote the source verbatim.

Mounted by ``faqbot serve`` under the server's root path, auth and limits (``create_router``):

- ``GET {base}/cds-services`` — three services: ``faqbot-order-select`` and ``faqbot-order-sign`` (a
  MedicationRequest for avutometinib or defactinib) and ``faqbot-patient-view``, with prefetch templates.
- ``POST {base}/cds-services/{id}`` — ``{"cards": [...]}``: a decision card per holding row (``critical``
  for a permanent discontinuation, ``warning`` otherwise), an info card naming what the rows still need
  when no row holds, and for orders an info card with the source's monitoring schedule. ``{"cards": []}``
  when the order or patient is not on the regimen. ``412`` when a required prefetch key is absent: faqbot
  never queries the EHR's FHIR server.
- ``POST {base}/cds-services/{id}/feedback`` — accepted / overridden outcomes appended to the feedback log.

The cards' clinical text is only the source's (rows, guidance, notice) and fixed templates; lab values
are shown as the EHR sent them. Pure parts (``CdsHooks``) take and return plain JSON-like data.
"""

from __future__ import annotations

import calendar
import copy
import functools
import json
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from bot import fhir
from bot.core import NOTICE_MARKER
from bot.dose import load_router
from bot.dose.rules import RuleSet
from bot.errors import FaqbotError
from bot.feedback import MAX_COMMENT_CHARS, Feedback, FeedbackLog
from bot.records import Answer, Caller, Decision, plain
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.cds_auth import JwtVerifier
    from bot.core import Bot

log = logging.getLogger("faqbot")

SPEC = "CDS Hooks 2.0.1 (STU2)"
EXTENSION = "org.faqbot.dose"
SUMMARY_MAX = 140
MAX_FEEDBACK_ITEMS = 100
MAX_REMEMBERED_CARDS = 10_000
OVERRIDE_SYSTEM = "urn:faqbot:cds-hooks:override-reason"
OVERRIDE_REASONS = (
    ("data-out-of-date", "The laboratory data shown is out of date"),
    ("clinical-judgement", "Clinical judgement differs for this patient"),
    ("not-applicable", "Not applicable to this patient"),
)
PATIENT = "{{context.patientId}}"
# JSON Schemas written from the CDS Hooks 2.0.1 specification: the one source of truth for what the routes
# accept (validated here) and what /openapi.json says they accept and return.
SCHEMAS = Path(__file__).parent / "data" / "cds_hooks"


class CdsError(FaqbotError):
    """A CDS Hooks request faqbot answers with an HTTP error: ``status`` and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    required: tuple[str, ...]
    usage: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(self.prefetch),
            "usageRequirements": self.usage,
        }


def prefetch_templates(codes: fhir.Codes, medications: bool) -> dict[str, str]:
    """The prefetch templates (FHIR searches with the ``{{context.patientId}}`` token)."""
    system = codes.loinc_system

    def obs(*keys: str, sort: str, count: int) -> str:
        code = ",".join(f"{system}|{codes.lab(k).code}" for k in keys)
        return f"Observation?patient={PATIENT}&code={code}&_sort={sort}&_count={count}"

    out = {}
    if medications:
        out["medications"] = f"MedicationRequest?patient={PATIENT}&status=active"
    out["ck"] = obs("ck", sort="-date", count=1)
    out["creatinine"] = obs("creatinine", sort="-date", count=1)
    out["creatinineBaseline"] = obs("creatinine", sort="date", count=1)
    liver = [k for k in ("alt", "ast", "bilirubin") if k in codes.labs]
    if liver:
        out["liver"] = obs(*liver, sort="-date", count=10)
    out["conditions"] = f"Condition?patient={PATIENT}&clinical-status=active"
    return out


def services(codes: fhir.Codes) -> tuple[Service, ...]:
    usage = (
        "Needs the prefetch keys ck, creatinine and creatinineBaseline (and medications for patient-view): "
        "faqbot does not query the EHR's FHIR server, so a call without them is answered 412. Research use "
        "only: the source is not medical advice."
    )
    order_required = ("ck", "creatinine", "creatinineBaseline")
    about = (
        "Dose-modification criteria for avutometinib + defactinib from the source's tables, decided by "
        "faqbot's rule engine from the latest CK, creatinine and active conditions; plus the source's "
        "monitoring schedule."
    )
    return (
        Service(
            "faqbot-order-select",
            "order-select",
            "Avutometinib + defactinib: dose modification criteria (order-select)",
            f"When avutometinib or defactinib is selected: {about}",
            prefetch_templates(codes, medications=False),
            order_required,
            usage,
        ),
        Service(
            "faqbot-order-sign",
            "order-sign",
            "Avutometinib + defactinib: dose modification criteria (order-sign)",
            f"When an order for avutometinib or defactinib is signed: {about}",
            prefetch_templates(codes, medications=False),
            order_required,
            usage,
        ),
        Service(
            "faqbot-patient-view",
            "patient-view",
            "Avutometinib + defactinib: dose modification criteria (patient-view)",
            "When the chart of a patient with an active avutometinib or defactinib order is opened: the "
            "source's rhabdomyolysis rows decided from the latest CK, creatinine and active conditions.",
            prefetch_templates(codes, medications=True),
            ("medications", *order_required),
            usage,
        ),
    )


# ---- markdown -----------------------------------------------------------------------------------------
_MD_INLINE = re.compile(r"([\\`*_\[\]<>&|~$])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([-+#])|(\d+)([.)]))")


def md_escape(text: str) -> str:
    """Document text as GitHub-flavoured Markdown that renders as exactly that text: inline markup
    characters (emphasis, code, links, HTML, tables, strikethrough, dollar math) and a leading list or
    heading marker are backslash-escaped; nothing else changes."""

    def lead(m: re.Match[str]) -> str:
        return f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}"

    return _MD_LINE_START.sub(lead, _MD_INLINE.sub(r"\\\1", text))


def md_unescape(text: str) -> str:
    """What :func:`md_escape`d text renders as (every backslash escape of ASCII punctuation removed)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def summarize(text: str, limit: int = SUMMARY_MAX) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


# ---- the service --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SourceInfo:
    """The document the cards cite: its path, title (first line), sha256 and research-use notice."""

    source: str
    title: str
    sha256: str
    notice: str
    notice_start: int
    notice_end: int


class CdsHooks:
    """Discovery, service calls and feedback as plain data. Needs no model or index: the rule file,
    the corpus text and ``Bot.decide``."""

    def __init__(
        self,
        bot: Bot,
        feedback: FeedbackLog | None = None,
        codes: fhir.Codes | None = None,
        settings: Settings | None = None,
    ) -> None:
        from bot.chunking import chunk_documents
        from bot.corpus import load_corpus

        self.bot = bot
        self.settings = s = settings or bot.settings
        self.codes = codes or fhir.load_codes(medication_codes=s.cds_medication_codes)
        router = bot.dose if bot.dose is not None else load_router(s)
        if router.rules is None:
            raise FaqbotError(f"CDS Hooks needs the dose rule file: {router.reason}")
        self.rules: RuleSet = router.rules
        docs = [d for d in load_corpus(s.corpus_path, s.root) if d.source == self.rules.source]
        if not docs:
            raise FaqbotError(f"the rule file's source {self.rules.source} is not in the corpus")
        doc = docs[0]
        title = next((line.strip() for line in doc.text.splitlines() if line.strip()), doc.source)
        notice = next((c for c in chunk_documents([doc]) if NOTICE_MARKER in c.text), None)
        self.doc = SourceInfo(
            doc.source,
            title,
            doc.sha256,
            notice.text if notice else "",
            notice.start if notice else 0,
            notice.end if notice else 0,
        )
        self.services = {sv.id: sv for sv in services(self.codes)}
        self.feedback = feedback or FeedbackLog(s.resolve(s.feedback_path))
        self._cards: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    # ---- discovery ----
    def discovery(self) -> dict[str, Any]:
        return {"services": [sv.to_dict() for sv in self.services.values()]}

    # ---- a call ----
    def call(self, service_id: str, body: Any, ui_url: str, user: str = "anonymous") -> dict[str, Any]:
        """``{"cards": [...]}`` for a hook request; CdsError (404, 400, 412) for what cannot be answered."""
        service = self.services.get(service_id)
        if service is None:
            raise CdsError(404, "unknown_service", f"no CDS service {service_id!r} (see /cds-services)")
        req = check_request(body, service)
        context = req["context"]
        prefetch = req.get("prefetch") or {}
        if service.hook in ("order-select", "order-sign"):
            selections = context.get("selections") if service.hook == "order-select" else None
            orders = self._data(
                lambda: fhir.regimen_orders(context.get("draftOrders"), self.codes, selections)
            )
        else:
            self._require(service, prefetch, ("medications",))
            orders = self._data(lambda: fhir.active_regimen(prefetch.get("medications"), self.codes))
        if not orders:
            return {"cards": []}
        self._require(service, prefetch, service.required)
        reading = self._data(lambda: fhir.read_labs(prefetch, self.codes))
        caller = Caller(face="cds-hooks", user=user, request_id=str(req["hookInstance"]))
        answer = self.bot.decide(reading.facts, caller=caller)
        cards = self.decision_cards(answer, reading, orders, ui_url)
        if not answer.decisions:
            cards.append(self.needs_card(answer, reading, orders, ui_url))
        if service.hook != "patient-view":
            cards.append(self.monitoring_card(orders, reading, ui_url))
        for card in cards:
            ids = tuple(link["url"].rsplit("#p-", 1)[-1] for link in card.get("links", []))
            self._remember(card["uuid"], service.id, ids)
        return {"cards": cards}

    def _require(self, service: Service, prefetch: Mapping[str, Any], keys: Sequence[str]) -> None:
        absent = [k for k in keys if k not in prefetch]
        if absent:
            raise CdsError(
                412,
                "prefetch_required",
                f"prefetch key(s) {', '.join(absent)} absent: faqbot does not query FHIR servers, so "
                f"service {service.id!r} needs them prefetched (templates at /cds-services; send null "
                "when there is no data)",
            )

    @staticmethod
    def _data(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except fhir.FhirDataError as exc:
            raise CdsError(400, "invalid_fhir_data", str(exc)) from None

    # ---- cards ----
    def _source(self, ui_url: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": f"{self.doc.title} ({self.doc.source}, sha256 {self.doc.sha256})",
        }
        if ui_url:
            out["url"] = f"{ui_url}/"
        return out

    def _link(self, ui_url: str, passage_id: str, label: str) -> dict[str, Any]:
        return {"label": label, "url": f"{ui_url}/#p-{passage_id}", "type": "absolute"}

    def _notice_md(self) -> str:
        if not self.doc.notice:
            return ""
        return (
            f"Research use only — the source says: \u201c{md_escape(self.doc.notice)}\u201d "
            f"({md_escape(self.doc.source)}, characters {self.doc.notice_start}–{self.doc.notice_end})."
        )

    def _where(self, start: int, end: int, context: str) -> str:
        return f"{self.doc.source}, characters {start}–{end}" + (f", {context}" if context else "")

    def _extension(self, answer: Answer, reading: fhir.LabReading, orders: Sequence[tuple[str, str]]) -> dict:
        return {
            EXTENSION: {
                "route": answer.route,
                "facts": answer.facts_dict(),
                "decisions": [d.to_dict() for d in answer.decisions],
                "missing": list(answer.missing),
                "orders": [{"reference": r, "medication": m} for r, m in orders],
                "document": {"source": self.doc.source, "title": self.doc.title, "sha256": self.doc.sha256},
            }
        }

    def decision_cards(
        self, answer: Answer, reading: fhir.LabReading, orders: Sequence[tuple[str, str]], ui_url: str
    ) -> list[dict[str, Any]]:
        cards = []
        for d in answer.decisions:
            rule = self._rule_of(d)
            label = self.rules.reaction(d.reaction)
            name = label.label.text if label is not None else d.reaction
            critical = d.action.strip().lower().startswith("permanently discontinue")
            lines = [
                f"**{md_escape(name)} — {md_escape(plain(d.severity))}: {md_escape(plain(d.action))}**",
                "",
                f"> {md_escape(d.quote)}",
                "",
                f"\u2014 {md_escape(self._where(d.start, d.end, rule.context if rule else ''))}",
                "",
                "Facts used (from the EHR's data):",
                *[f"- {md_escape(u)}" for u in reading.used],
                "",
                f"Orders: {md_escape(', '.join(f'{m} ({r})' for r, m in orders))}",
            ]
            if self._notice_md():
                lines += ["", self._notice_md()]
            card: dict[str, Any] = {
                "uuid": str(uuid.uuid4()),
                "summary": summarize(f"{name}: {plain(d.action)}"),
                "detail": "\n".join(lines),
                "indicator": "critical" if critical else "warning",
                "source": self._source(ui_url),
                "overrideReasons": [
                    {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
                    for code, display in OVERRIDE_REASONS
                ],
                "extension": self._extension(answer, reading, orders),
            }
            if ui_url and rule is not None:
                card["links"] = [self._link(ui_url, rule.passage.id, "Show this row in faqbot's source view")]
            cards.append(card)
        return cards

    def _rule_of(self, d: Decision) -> Any:
        return next((r for r in self.rules.rules if r.quote.start == d.start and r.quote.end == d.end), None)

    def needs_card(
        self, answer: Answer, reading: fhir.LabReading, orders: Sequence[tuple[str, str]], ui_url: str
    ) -> dict[str, Any]:
        """No row holds: what the rows need that the EHR's data does not give, and the rows themselves."""
        from bot.dose.facts import PROMPTS

        rows = self.rules.rules_for("rhabdomyolysis")
        needed = [PROMPTS.get(m, m) for m in answer.missing]
        lines = ["**Not decided: the source's rhabdomyolysis rows need data the EHR did not give.**", ""]
        if needed:
            lines.append(f"Needed: {md_escape('; '.join(needed))}.")
        if reading.missing:
            lines += ["", "Not available or not usable:", *[f"- {md_escape(m)}" for m in reading.missing]]
        if reading.used:
            lines += ["", "Facts used:", *[f"- {md_escape(u)}" for u in reading.used]]
        lines += ["", "The source's rows (Table 2):"]
        for r in rows:
            lines += [
                f"> {md_escape(r.quote.text)}",
                ">",
                f"> \u2014 {md_escape(self._where(r.quote.start, r.quote.end, r.context))}",
                "",
            ]
        if self._notice_md():
            lines.append(self._notice_md())
        summary = "Rhabdomyolysis rows not decided; needed: " + ("; ".join(needed) if needed else "data")
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "summary": summarize(summary),
            "detail": "\n".join(lines).rstrip(),
            "indicator": "info",
            "source": self._source(ui_url),
            "extension": self._extension(answer, reading, orders),
        }
        if ui_url and rows:
            card["links"] = [self._link(ui_url, rows[0].passage.id, "Show the rows in faqbot's source view")]
        return card

    def monitoring_card(
        self, orders: Sequence[tuple[str, str]], reading: fhir.LabReading, ui_url: str
    ) -> dict[str, Any]:
        """The source's monitoring guidance (eye exams, LFT/CPK timing), verbatim and located."""
        passages = []
        seen = set()
        for rid in self.codes.monitoring_reactions:
            reaction = self.rules.reaction(rid)
            for p in reaction.related if reaction is not None else ():
                if p.id not in seen:
                    seen.add(p.id)
                    passages.append(p)
        lines = ["**Monitoring the source gives for avutometinib + defactinib:**", ""]
        for p in passages:
            lines += [
                f"> {md_escape(p.span.text)}",
                ">",
                f"> \u2014 {md_escape(self._where(p.span.start, p.span.end, p.context))}",
                "",
            ]
        if reading.notes:
            lines += [
                "Other data from the EHR (shown, not used by the source's rows):",
                *[f"- {md_escape(n)}" for n in reading.notes],
                "",
            ]
        if self._notice_md():
            lines.append(self._notice_md())
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "summary": summarize(
                "The source's monitoring schedule for avutometinib + defactinib (eye exams, LFTs, CPK)"
            ),
            "detail": "\n".join(lines).rstrip(),
            "indicator": "info",
            "source": self._source(ui_url),
        }
        if ui_url and passages:
            card["links"] = [self._link(ui_url, p.id, f"Show in source: {p.context[:60]}") for p in passages]
        return card

    # ---- feedback ----
    def _remember(self, card: str, service_id: str, passage_ids: tuple[str, ...]) -> None:
        with self._lock:
            self._cards[card] = (service_id, passage_ids)
            while len(self._cards) > MAX_REMEMBERED_CARDS:
                self._cards.popitem(last=False)

    def record_feedback(self, service_id: str, body: Any, user: str | None = None) -> int:
        """Append each feedback item to the feedback log; the number recorded. CdsError for bad input."""
        if service_id not in self.services:
            raise CdsError(404, "unknown_service", f"no CDS service {service_id!r} (see /cds-services)")
        items = check_feedback(body)
        entries = []
        for item in items:
            card = item["card"]
            with self._lock:
                known = self._cards.get(card)
            reason = item.get("overrideReason") or {}
            coding = reason.get("reason") or {}
            parts = []
            if coding:
                code = f"{coding.get('system', '')}|{coding.get('code', '')}"
                parts.append(f"override reason: {coding.get('display') or ''} [{code}]")
            if reason.get("userComment"):
                parts.append(f"comment: {reason['userComment']}")
            accepted = [s["id"] for s in item.get("acceptedSuggestions") or []]
            if accepted:
                parts.append(f"accepted suggestions: {', '.join(accepted)}")
            parts.append(f"at {item['outcomeTimestamp']}")
            comment = "; ".join(parts)
            if len(comment) > MAX_COMMENT_CHARS:
                comment = comment[: MAX_COMMENT_CHARS - 1] + "…"
            entries.append(
                Feedback(
                    question=f"CDS Hooks card {card} ({service_id})",
                    rating="up" if item["outcome"] == "accepted" else "down",
                    route=f"cds-hooks:{item['outcome']}",
                    citations=known[1] if known else (),
                    comment=comment,
                    user=user,
                )
            )
        for entry in entries:
            self.feedback.append(entry)
        return len(entries)


# ---- the specification's JSON Schemas ------------------------------------------------------------------
@functools.cache
def spec_schema(name: str) -> dict[str, Any]:
    """``bot/data/cds_hooks/<name>.schema.json`` (discovery, request, response, feedback)."""
    data: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return data


def request_schema(hook: str, prefetch: Sequence[str] = ()) -> dict[str, Any]:
    """The request schema of one hook: ``hook`` fixed to it and ``context`` that hook's context; with the
    service's ``prefetch`` keys named (each optional: a missing one the service needs is 412, not 400)."""
    schema = copy.deepcopy(spec_schema("request"))
    contexts = schema.pop("$defs")
    schema["properties"]["hook"] = {"type": "string", "const": hook}
    schema["properties"]["context"] = contexts[f"context-{hook}"]
    schema["title"] = f"{schema['title']}: {hook}"
    if prefetch:
        value = schema["properties"]["prefetch"]["additionalProperties"]
        schema["properties"]["prefetch"]["properties"] = {key: value for key in prefetch}
    return schema


def inline(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``#/$defs/...`` references replaced by the definitions (none is recursive) and
    without ``$schema``, ``$id`` and ``$defs``: an OpenAPI 3.1 Schema Object resolving on its own."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items() if k not in ("$schema", "$id", "$defs")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))"
)


def is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time`` (JSON Schema's format), leap second included; other types pass."""
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.fullmatch(value)
    if m is None:
        return False
    y, mo, d, h, mi, sec = (int(m[i]) for i in range(1, 7))
    oh, om = int(m[7] or 0), int(m[8] or 0)
    return (
        1 <= mo <= 12
        and 1 <= d <= calendar.monthrange(y, mo)[1]
        and h <= 23
        and mi <= 59
        and sec <= 60
        and oh <= 23
        and om <= 59
    )


@functools.cache
def _validator(kind: str) -> Any:
    """A Draft 2020-12 validator of a hook's request (``kind`` = the hook) or of feedback."""
    import jsonschema

    schema = spec_schema("feedback") if kind == "feedback" else request_schema(kind)
    formats = jsonschema.FormatChecker(formats=())
    formats.checks("date-time")(is_date_time)
    return jsonschema.Draft202012Validator(schema, format_checker=formats)


def validate(kind: str, body: Any) -> None:
    """CdsError 400 naming the first place where ``body`` breaks the specification's schema."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(body))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
        raise _bad(f"{where.lstrip('.') or 'the body'}: {message} (CDS Hooks 2.0.1)")


# ---- request checks -----------------------------------------------------------------------------------
def _bad(message: str) -> CdsError:
    return CdsError(400, "invalid_request", message)


def check_request(body: Any, service: Service) -> Mapping[str, Any]:
    """The hook request, checked against the spec's schema for the service's hook, then faqbot's reading."""
    if not isinstance(body, Mapping):
        raise _bad("the request body must be a JSON object")
    if isinstance(body.get("hook"), str) and body["hook"] != service.hook:
        raise _bad(f"service {service.id!r} answers hook {service.hook!r}, not {body['hook'][:100]!r}")
    validate(service.hook, body)
    for name in ("hook", "hookInstance"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise _bad(f"{name!r} is required and must be a non-empty string")
    if body["hook"] != service.hook:
        raise _bad(f"service {service.id!r} answers hook {service.hook!r}, not {body['hook'][:100]!r}")
    context = body.get("context")
    if not isinstance(context, Mapping):
        raise _bad("'context' is required and must be an object")
    if not isinstance(context.get("patientId"), str) or not context["patientId"]:
        raise _bad("context.patientId is required")
    if service.hook in ("order-select", "order-sign") and not isinstance(context.get("draftOrders"), Mapping):
        raise _bad(f"context.draftOrders (a FHIR Bundle) is required for {service.hook}")
    if service.hook == "order-select":
        sel = context.get("selections")
        if not isinstance(sel, list) or not all(isinstance(x, str) for x in sel):
            raise _bad("context.selections (a list of references) is required for order-select")
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, Mapping):
        raise _bad("'prefetch' must be an object")
    if "fhirAuthorization" in body and not isinstance(body.get("fhirServer"), str):
        raise _bad("'fhirServer' is required when 'fhirAuthorization' is given")
    return body


def check_feedback(body: Any) -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping) or not isinstance(body.get("feedback"), list):
        raise _bad('feedback must be an object {"feedback": [...]}')
    validate("feedback", body)
    items = body["feedback"]
    if not items:
        raise _bad("feedback is empty")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise _bad(f"{len(items)} feedback items; the limit is {MAX_FEEDBACK_ITEMS}")
    for k, item in enumerate(items):
        where = f"feedback[{k}]"
        if not isinstance(item, Mapping):
            raise _bad(f"{where} must be an object")
        if not isinstance(item.get("card"), str) or not item["card"] or len(item["card"]) > 200:
            raise _bad(f"{where}.card (the card's uuid) is required")
        if item.get("outcome") not in ("accepted", "overridden"):
            raise _bad(
                f"{where}.outcome must be 'accepted' or 'overridden', got {item.get('outcome')!r}"[:300]
            )
        if not isinstance(item.get("outcomeTimestamp"), str) or not is_date_time(item["outcomeTimestamp"]):
            raise _bad(f"{where}.outcomeTimestamp must be an RFC 3339 date and time")
        accepted = item.get("acceptedSuggestions")
        if accepted is not None and (
            not isinstance(accepted, list)
            or not all(isinstance(s, Mapping) and isinstance(s.get("id"), str) for s in accepted)
        ):
            raise _bad(f"{where}.acceptedSuggestions must be a list of {{'id': ...}}")
        reason = item.get("overrideReason")
        if reason is not None:
            if not isinstance(reason, Mapping):
                raise _bad(f"{where}.overrideReason must be an object")
            coding = reason.get("reason")
            if coding is not None and not (
                isinstance(coding, Mapping) and isinstance(coding.get("code"), str)
            ):
                raise _bad(f"{where}.overrideReason.reason must be a Coding with a code")
            comment = reason.get("userComment")
            if comment is not None and not isinstance(comment, str):
                raise _bad(f"{where}.overrideReason.userComment must be text")
    return items


# ---- HTTP ---------------------------------------------------------------------------------------------
FEEDBACK_RECEIPT: dict[str, Any] = {
    "type": "object",
    "required": ["recorded"],
    "additionalProperties": False,
    "properties": {"recorded": {"type": "integer", "minimum": 1, "description": "feedback items recorded"}},
}
ERRORS = {
    400: "Not CDS Hooks 2.0.1 (invalid_request, naming the field), not JSON (malformed_json), or FHIR data "
    "faqbot cannot read (invalid_fhir_data)",
    401: "Authentication required: the EHR's JWT (when FAQBOT_CDS_JWT_* is set) or the server's auth",
    412: "A prefetch key the service needs is absent (prefetch_required): faqbot never queries FHIR servers",
    413: "Request body larger than FAQBOT_MAX_BODY_BYTES (body_too_large)",
    503: "The audit record or feedback could not be stored and FAQBOT_AUDIT_REQUIRED is on (audit_unavailable)",
}


def openapi_operation(
    request: dict[str, Any] | None, response: dict[str, Any], what: str, errors: Sequence[int]
) -> dict[str, Any]:
    """An operation's request body, 200 response and error statuses for /openapi.json, from the schemas
    (the server gives every 4xx/5xx the ``{"error": {"code", "message"}}`` body)."""
    out: dict[str, Any] = {
        "responses": {
            "200": {"description": what, "content": {"application/json": {"schema": response}}},
            **{str(code): {"description": ERRORS[code]} for code in errors},
        }
    }
    if request is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": request}}}
    return out


def create_router(
    cds: CdsHooks,
    verifier: JwtVerifier | None = None,
    identify: Callable[[Any], str | None] | None = None,
) -> Any:
    """The FastAPI router of the three endpoints. ``verifier`` (optional) checks the EHR's JWT on every
    call; ``identify`` (from the server) names the authenticated user for the audit record."""
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse

    from bot.cds_auth import CdsAuthError

    router = APIRouter(tags=["cds-hooks"])
    public = cds.settings.cds_public_url.rstrip("/")

    def err(exc: CdsError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=exc.status)

    def base_of(request: Request) -> str:
        if public:
            return public
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}{root}"

    def who(request: Request, endpoint: str) -> str:
        if verifier is not None:
            try:
                client = verifier.verify(
                    request.headers.get("authorization", ""), base_of(request) + endpoint
                )
            except CdsAuthError as exc:
                raise CdsError(401, "unauthorized", str(exc)) from None
            return client.issuer + (f" tenant {client.tenant}" if client.tenant else "")
        user = identify(request) if identify is not None else None
        return user or "anonymous"

    async def json_body(request: Request) -> Any:
        import json

        raw = await request.body()
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CdsError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise CdsError(400, "malformed_json", "request body is nested too deeply") from None

    def discovery(request: Request) -> Any:
        try:
            who(request, "/cds-services")
        except CdsError as exc:
            return err(exc)
        return cds.discovery()

    async def call(service_id: str, request: Request) -> Any:
        import anyio.to_thread

        try:
            user = who(request, f"/cds-services/{service_id}")
            body = await json_body(request)
            return await anyio.to_thread.run_sync(lambda: cds.call(service_id, body, base_of(request), user))
        except CdsError as exc:
            return err(exc)

    async def feedback(service_id: str, request: Request) -> Any:
        import anyio.to_thread

        try:
            user = who(request, f"/cds-services/{service_id}/feedback")
            body = await json_body(request)
            n = await anyio.to_thread.run_sync(lambda: cds.record_feedback(service_id, body, user))
        except CdsError as exc:
            return err(exc)
        return {"recorded": n}

    def bound(endpoint: Callable[[str, Request], Any], service_id: str) -> Callable[[Request], Any]:
        async def route(request: Request) -> Any:
            return await endpoint(service_id, request)

        return route

    router.add_api_route(
        "/cds-services",
        discovery,
        methods=["GET"],
        summary="CDS Hooks discovery: the services, their hooks and prefetch templates",
        openapi_extra=openapi_operation(None, inline(spec_schema("discovery")), "The services", (401,)),
    )
    # One documented operation per service (its hook's request schema); the templated routes after them
    # answer unknown service ids with 404 and stay out of the spec (the discovery document lists the ids).
    for sid, service in cds.services.items():
        router.add_api_route(
            f"/cds-services/{sid}",
            bound(call, sid),
            methods=["POST"],
            name=f"cds_call_{sid}",
            summary=f"Call {sid} ({service.hook})",
            description=f"{service.description}\n\n{service.usage}",
            openapi_extra=openapi_operation(
                inline(request_schema(service.hook, tuple(service.prefetch))),
                inline(spec_schema("response")),
                'Cards ({"cards": []} when the order or patient is not on the regimen)',
                (400, 401, 412, 413, 503),
            ),
        )
        router.add_api_route(
            f"/cds-services/{sid}/feedback",
            bound(feedback, sid),
            methods=["POST"],
            name=f"cds_feedback_{sid}",
            summary=f"Feedback on {sid}'s cards (accepted / overridden)",
            openapi_extra=openapi_operation(
                inline(spec_schema("feedback")), FEEDBACK_RECEIPT, "Items recorded", (400, 401, 413, 503)
            ),
        )
    router.add_api_route("/cds-services/{service_id}", call, methods=["POST"], include_in_schema=False)
    router.add_api_route(
        "/cds-services/{service_id}/feedback", feedback, methods=["POST"], include_in_schema=False
    )

    return router
