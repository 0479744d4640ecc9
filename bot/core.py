"""The library call every face uses: ``load_bot()`` then ``bot.ask(question, history)``.

:class:`Bot` is cheap to construct; :meth:`Bot.load` reads the corpus, loads the model and the index
(building or rebuilding it when missing or stale, unless ``rebuild`` is off).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.dose import DoseRouter, Facts, load_router
from bot.errors import FaqbotError, IndexCorruptError, IndexMissingError, QuestionError, StaleIndexError
from bot.records import Answer, Caller, Chunk, Citation, Document, Hit
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.answer import Thresholds
    from bot.audit import Auditor

log = logging.getLogger("faqbot")
NOTICE_MARKER = "Research Use Only"


@dataclass(frozen=True, slots=True)
class BuildReport:
    chunks: int
    files: int
    seconds: float
    directory: str
    model: str


# Characters refused in any text a face passes in: C0/C1 control characters other than tab, line feed and
# carriage return (NUL included), and unpaired UTF-16 surrogates (not Unicode scalar values: they cannot be
# encoded as UTF-8 and make the tokenizer fail). Nothing else is changed: the text is only stripped.
FORBIDDEN_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(text: str, what: str) -> str:
    """``text`` unchanged; QuestionError naming ``what``, the character and its position if it holds a
    control character or an unpaired surrogate (one linear scan)."""
    m = FORBIDDEN_CHARS_RE.search(text)
    if m is not None:
        ch = m.group(0)
        kind = "an unpaired surrogate" if "\ud800" <= ch <= "\udfff" else "a control character"
        raise QuestionError(
            f"{what} contains {kind} (U+{ord(ch):04X}) at character {m.start() + 1}; "
            "control characters other than tab and newline, and unpaired surrogates, are not accepted"
        )
    return text


def check_question(question: Any, max_chars: int) -> str:
    """The question stripped; QuestionError if it is not text, empty, too long, or holds a control
    character or an unpaired surrogate."""
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, got {type(question).__name__}")
    if len(question) > 2 * max_chars:  # refuse before doing any work on it
        raise QuestionError(f"question is {len(question)} characters; the limit is {max_chars}")
    q = check_text(question, "question").strip()
    if not q:
        raise QuestionError("question is empty")
    if len(q) > max_chars:
        raise QuestionError(f"question is {len(q)} characters; the limit is {max_chars}")
    return q


def check_history(history: Any, max_turns: int, max_chars: int) -> tuple[str, ...]:
    if history is None:
        return ()
    if isinstance(history, str) or not isinstance(history, Sequence):
        raise QuestionError(f"history must be a list of earlier questions, got {type(history).__name__}")
    turns = []
    for k, turn in enumerate(history):
        if not isinstance(turn, str):
            raise QuestionError(f"history[{k}] must be text, got {type(turn).__name__}")
        if len(turn) > max_chars:
            raise QuestionError(f"history[{k}] is {len(turn)} characters; the limit is {max_chars}")
        check_text(turn, f"history[{k}]")
        if turn.strip():
            turns.append(turn.strip())
    return tuple(turns[-max_turns:]) if max_turns > 0 else ()


class Bot:
    """Grounded FAQ bot over one corpus. Thread-safe after :meth:`load`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        from bot.embedding import Embedder

        s = self.settings
        self.embedder = Embedder(
            s.model,
            s.device,
            s.batch_max,
            s.batch_wait_ms,
            s.quantize,
            s.precision,
            runtime=s.runtime,
            model_cache=s.resolve(s.model_cache) if str(s.model_cache) not in ("", ".") else None,
            threads=s.threads,
            query_max_tokens=s.query_max_tokens,
            lanes=s.encode_lanes,
        )
        self.docs: list[Document] = []
        self.index: Any = None
        self.searcher: Any = None
        self.dose: DoseRouter | None = None
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], Answer] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._generation = 0
        self.auditor: Auditor | None = None  # open_audit(): by the server at start, else on first use
        self._audit_lock = threading.Lock()
        self._provenance: dict[str, Any] | None = None

    # ---- loading -------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Everything :meth:`load` loads is there: the searcher over the index, and the dose rules."""
        return self.searcher is not None and self.dose is not None

    def parts(self) -> dict[str, bool]:
        """Which parts are loaded (for ``/readyz``)."""
        return {
            "corpus": bool(self.docs),
            "model": self.embedder.loaded,
            "index": self.searcher is not None,
            "rules": self.dose is not None,
        }

    def load(self, rebuild: bool | None = None) -> Bot:
        """Load corpus, model and index; rebuild a missing/stale/corrupt index if allowed."""
        from bot import index as ix
        from bot.corpus import load_corpus

        s = self.settings
        allow = s.rebuild if rebuild is None else rebuild
        self.docs = load_corpus(s.corpus_path, s.root)
        self.embedder.load()  # its weights' sha256 is what the manifest must match
        try:
            data = ix.read_index(s.index_path)
            reasons = ix.stale_reasons(
                data.manifest, self.docs, self.embedder.model_id, self.embedder.weights_sha256
            )
            if data.manifest.dimension != self.embedder.dimension:
                reasons.append(f"dimension {data.manifest.dimension} != model's {self.embedder.dimension}")
            if reasons:
                raise StaleIndexError(
                    f"index at {s.index_path} is stale: {'; '.join(reasons)}; run `faqbot build`"
                )
        except (IndexMissingError, IndexCorruptError, StaleIndexError) as exc:
            if not allow:
                raise
            log.warning("%s — rebuilding", exc)
            data = self.build().index_data
        self._install(data)
        return self

    def _install(self, data: Any) -> None:
        from bot.retrieval import HybridSearcher

        searcher = HybridSearcher(data.chunks, data.faiss_index, data.lexical)
        searcher.vocabulary.support("qzxwvk")  # an unknown word builds the lazy typo tables now
        if self.dose is None:  # before the searcher is published: ready means everything is loaded
            self.dose = load_router(self.settings)
        self.index = data
        self.searcher = searcher
        with self._cache_lock:
            self._cache.clear()
            self._generation += 1
        self._provenance = None

    # ---- audit trail (issue 13) ----------------------------------------------------------------------
    def open_audit(self) -> Auditor | None:
        """Open the audit store named by the settings (None when ``audit`` is off). Idempotent.
        Raises AuditStoreError (naming the database URL without its password) when it cannot be opened."""
        if not self.settings.audit:
            return None
        with self._audit_lock:
            if self.auditor is None:
                from bot.audit import Auditor

                self.auditor = Auditor.from_settings(self.settings)
                self.auditor.maybe_prune()
            return self.auditor

    def provenance(self) -> dict[str, Any]:
        """The versions an answer rests on: corpus files' and rule file's sha256, model id, faqbot version."""
        p = self._provenance
        if p is None:
            from bot import __version__
            from bot.audit import file_sha256
            from bot.dose.rules import RULES_FILENAME

            s = self.settings
            if self.docs:
                corpus = {d.source: d.sha256 for d in self.docs}
            else:
                from bot.corpus import load_corpus

                corpus = {d.source: d.sha256 for d in load_corpus(s.corpus_path, s.root)}
            p = {
                "corpus_sha256": corpus,
                "rules_sha256": file_sha256(s.corpus_path / RULES_FILENAME),
                "model": self.embedder.model_id or None,
                "version": __version__,
            }
            self._provenance = p
        return p

    def _audit(
        self,
        caller: Caller | None,
        answer: Answer,
        history: Sequence[str],
        started: float,
        mode: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> None:
        if caller is None or not self.settings.audit:
            return
        auditor = self.auditor
        if auditor is None:
            from bot.audit import AuditWriteError
            from bot.audit_store import AuditStoreError

            try:  # servers open the store at start (faqbot serve fails there); a library user here
                auditor = self.open_audit()
            except AuditStoreError as exc:
                log.error("faqbot: audit record %s not written: %s", caller.request_id, exc)
                if self.settings.audit_required:
                    raise AuditWriteError(f"the audit record could not be written: {exc}") from None
                return
            if auditor is None:
                return
        latency = (time.perf_counter() - started) * 1000.0
        rules = self.dose.rules if self.dose is not None else None
        body = auditor.answer_body(caller, answer, history, latency, self.provenance(), rules, mode, facts)
        auditor.record_answer(caller, body)

    def build(self, progress: bool = False) -> _Built:
        """Chunk the corpus, embed and write the index atomically (does not need a loaded index)."""
        from bot import index as ix
        from bot.chunking import chunk_documents
        from bot.corpus import load_corpus

        s = self.settings
        t0 = time.perf_counter()
        self.docs = load_corpus(s.corpus_path, s.root)
        from bot.views import derive_views

        chunks = chunk_documents(self.docs)
        chunks = chunks + derive_views(chunks)  # question-form views, after every chunk (bot/views.py)
        self.embedder.load()
        data = ix.build(
            self.docs,
            chunks,
            lambda texts: self.embedder.encode(texts, progress=progress),
            self.embedder.model_id,
            s.index_path,
            model_sha256=self.embedder.weights_sha256,
            runtime=self.embedder.description,
        )
        report = BuildReport(
            len(chunks),
            len(self.docs),
            time.perf_counter() - t0,
            str(s.index_dir),
            self.embedder.model_id,
        )
        return _Built(report, data)

    def rebuild(self) -> BuildReport:
        built = self.build()
        self._install(built.index_data)
        return built.report

    def _require(self) -> None:
        if self.searcher is None:
            raise FaqbotError("the bot is not loaded: call load() first")

    # ---- asking --------------------------------------------------------------------------------------
    def embed_query(self, question: str) -> np.ndarray:
        """The question's vector, misspellings corrected first when an index is loaded, and the names of
        the regimen the source is about left out (``bot.retrieval.without_subject``)."""
        if self.searcher is not None:
            from bot.retrieval import generic_publisher, without_subject

            question = self.searcher.vocabulary.corrected(question)
            rules = self.dose.rules if self.dose is not None else None
            if rules is not None and rules.regimen:
                question = without_subject(question, rules.regimen, self.searcher.vocabulary)
            question = generic_publisher(question, self.searcher.publisher_names, self.searcher.vocabulary)
        return self.embedder.encode_one(question)

    def search(self, question: str, k: int | None = None, mode: str = "hybrid") -> list[Hit]:
        self._require()
        q = check_question(question, self.settings.max_question_chars)
        return list(self.searcher.search(q, self.embed_query(q), k or self.settings.top_k, mode))

    def ask(
        self,
        question: str,
        history: Sequence[str] | None = None,
        mode: str = "hybrid",
        caller: Caller | None = None,
    ) -> Answer:
        """Answer, decide, clarify or abstain. Raises QuestionError for empty/too long/non-text input.

        With a ``caller`` (the face, user and request id) an audit record is queued for the auditor's writer
        before returning (with ``audit_required``: committed, else AuditWriteError)."""
        started = time.perf_counter()
        self._require()
        s = self.settings
        q = check_question(question, s.max_question_chars)
        hist = check_history(history, s.max_history_turns, s.max_question_chars)
        key = (f"{mode}\x00{q}", hist)
        if s.cache_size > 0:
            with self._cache_lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                generation = self._generation
            if hit is not None:
                self._audit(caller, hit, hist, started, mode)
                return hit
        answer = self._answer(q, hist, mode)
        if s.cache_size > 0:
            with self._cache_lock:
                if generation == self._generation:
                    self._cache[key] = answer
                    while len(self._cache) > s.cache_size:
                        self._cache.popitem(last=False)
        self._audit(caller, answer, hist, started, mode)
        return answer

    @functools.cached_property
    def thresholds(self) -> Thresholds:
        """Abstention thresholds from the settings."""
        from bot.answer import Thresholds

        s = self.settings
        return Thresholds(
            s.abstain_min_dense,
            s.abstain_support_dense,
            s.abstain_missing_share,
            s.abstain_rare_information,
            s.max_citations,
            s.abstain_passage_support,
            s.abstain_missing_floor,
        )

    def _answer(self, q: str, hist: tuple[str, ...], mode: str) -> Answer:
        from bot.answer import (
            ASKS_SOURCES_RE,
            SOURCE_WORDS_RE,
            abstention,
            compose,
            followup_query,
            foreign_terms,
            lacks_subject,
            named_references,
            no_row_answer,
            other_drugs,
            references_answer,
            sources_answer,
            unknown_reaction,
        )
        from bot.retrieval import asks_overview, merge_hits

        s = self.settings
        vocabulary = self.searcher.vocabulary
        # What clinicians type, read as corpus words: shorthand, joined and clipped names (bot/query.py).
        nq = vocabulary.normalized(q)
        query = followup_query(nq, tuple(vocabulary.normalized(h) for h in hist[-1:]), vocabulary)
        support = vocabulary.support(query)
        # Route order: a dosing question the rule engine reads is answered by it (decision, no_rule or
        # clarify) before any retrieval gate; the parser itself refuses questions naming another drug.
        if self.dose is not None and self.dose.rules is not None:
            turns: dict[str, Any] = {}  # this request's turns read by the dose parser: each is read once
            # not about another drug or an uncovered topic, nor about the approach as a whole (the
            # document's opening states it: "broadly, what are the options?")
            if not foreign_terms(support) and not asks_overview(nq):
                table = self._table_answer(q, turns)
                if table is not None:  # a question over the tables as a whole: every matching row, cited
                    return table
            routed = self.dose.route(q, hist, turns)
            if routed is not None:
                # the reaction a question names is in the question itself, not in the turn it follows
                named = support if query == nq else vocabulary.support(nq)  # no follow-up: the same text
                unknown = unknown_reaction(routed, named, self.thresholds)
                if not unknown:
                    return routed
                if not other_drugs(support):  # our regimen, a reaction the tables never name
                    return no_row_answer(q, unknown, self._coverage())
                return abstention(q, self._search(query, s.top_k, mode))
        # another drug, or an uncovered label topic — except in a question asking for the document's
        # sources ("a press release or the label?"), which the reference list answers
        if other_drugs(support) or (foreign_terms(support) and not ASKS_SOURCES_RE.search(nq)):
            return abstention(q, self._search(query, s.top_k, mode))
        hits = self._search(query, s.top_k, mode)
        # a follow-up: what it asks now weighs as much as the context it continues — unless it points back
        # with a pronoun ("what made them stop?"): without its subject it is no search of its own
        if query != nq and not lacks_subject(nq):
            hits = merge_hits(hits, self._search(nq, 2 * s.top_k, mode), k=s.top_k)
        numbers = named_references(nq)
        if numbers and all(n in self._references for n in numbers):  # "ref 1 is what", "refs 3 and 4"
            return references_answer(q, [self._references[n] for n in numbers])
        if ASKS_SOURCES_RE.search(nq):  # the references a passage's marks point to, or the whole list
            rest = SOURCE_WORDS_RE.sub(" ", nq)  # what the question is about, apart from asking for sources
            about = self._search(rest, s.top_k, mode, sources=True) if rest.strip() else []
            sourced = sources_answer(q, about, self._references, self.searcher.is_bibliography)
            if sourced is not None:
                return sourced
        # what the best passage states of the question, apart from the regimen's names (every passage is
        # about them: stating them is no evidence that the passage answers what is asked)
        regimen = (
            set(self.dose.rules.regimen) if self.dose is not None and self.dose.rules is not None else set()
        )
        asked = [t for t in vocabulary.salient(query) if t not in regimen]
        stated = self.searcher.passage_support(asked, hits[0]) if hits else 0.0
        return compose(q, hits, support, self.thresholds, stated)

    @functools.cached_property
    def _references(self) -> dict[int, Chunk]:
        from bot.answer import reference_items

        return reference_items(self.index.chunks, self.searcher.is_bibliography)

    def _coverage(self) -> list[Citation]:
        from bot.tables import coverage_passages

        assert self.dose is not None and self.dose.rules is not None
        return [p.citation(n) for n, p in enumerate(coverage_passages(self.dose.rules), 1)]

    def _table_answer(self, q: str, turns: dict[str, Any] | None = None) -> Answer | None:
        from bot.tables import table_answer

        assert self.dose is not None and self.dose.rules is not None
        readings = self.dose.read(q, (), turns).readings
        reactions = tuple(r.facts.reaction for r in readings if r.facts.reaction)
        case_facts = any(set(r.facts.known()) - {"reaction"} for r in readings)
        return table_answer(q, reactions, case_facts, self.dose.rules)

    def _search(self, text: str, k: int, mode: str, sources: bool | None = None) -> list[Hit]:
        return list(self.searcher.search(text, self.embed_query(text), k, mode, sources))

    def decide(self, facts: Facts, caller: Caller | None = None) -> Answer:
        """A dose decision from structured facts (the UI form, ``POST /api/decide``): route decision,
        no_rule or clarify. Needs no model or index: the rule file is loaded on first use if needed.
        With a ``caller`` an audit record is appended (see :meth:`ask`)."""
        started = time.perf_counter()
        if self.dose is None:
            self.dose = load_router(self.settings)
        answer = self.dose.decide(facts)
        self._audit(caller, answer, (), started, facts=answer.facts_dict())
        return answer

    def passage(self, chunk_id: str) -> Citation:
        """A chunk by id, as a citation (n=0). KeyError-free: raises FaqbotError naming the id."""
        self._require()
        chunk = self.index.chunks.get(chunk_id)  # a binary search over the index's sorted ids
        if chunk is None:
            raise FaqbotError(f"no passage with id {chunk_id!r}")
        return Citation.of(0, chunk, 1.0)

    def notice(self) -> Citation | None:
        """The source's research-use / not-medical-advice notice, verbatim and located."""
        self._require()
        for c in self.index.chunks:
            if NOTICE_MARKER in c.text:
                return Citation.of(0, c, 1.0)
        return None


@dataclass(frozen=True, slots=True)
class _Built:
    report: BuildReport
    index_data: Any


def load_bot(settings: Settings | None = None, **overrides: Any) -> Bot:
    """A loaded :class:`Bot`; keyword overrides are applied to the settings (``load_bot(index_dir=...)``)."""
    s = settings or Settings.from_env()
    if overrides:
        from dataclasses import replace

        s = replace(s, **overrides)
    return Bot(s).load()
