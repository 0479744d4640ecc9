"""Hybrid retrieval on plain data: dense (FAISS inner product) + lexical (BM25), linearly fused.

Pure: takes the query text and its vector; no model here. :class:`FaqRetriever` exposes the same search
as a ``langchain_core`` retriever for LangChain pipelines.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from bot.boilerplate import intent_terms
from bot.chunking import CAPTION
from bot.records import Chunk, Hit, plain
from bot.textdist import DeleteIndex, delete_index, deletes, osa_distance

LEXICAL_WEIGHT = 0.2  # weight of the max-normalised BM25 score added to the cosine similarity
CANDIDATES = 50
PREFIX_MIN = 5
# Passages in a bibliography section ("References", "Bibliography", …) cite sources rather than state
# facts; they are demoted unless the question asks about sources.
BIBLIOGRAPHY_RE = re.compile(r"^(references|bibliography|sources|citations|works cited|literature)\b", re.I)
BIBLIOGRAPHY_PENALTY = 0.15
# Words asking about the sources a document draws on. "Source" followed by document/text/… is the
# document itself ("the title of the source document"), not its references.
SOURCES_ASKED_RE = re.compile(
    r"\b(?:references?|refs?|cite[sd]?|citing|citations?|bibliography|literature|publications?|sources|sourced|"
    r"source(?!\s+(?:document|doc|text|file|material|pdf|page)s?\b))\b",
    re.I,
)
# A sentence of a paragraph or list item at most this long scores for, and is cited as, the whole unit:
# the unit is what a reader quotes, and an explanation ("why …?") often sits in its later sentences.
# Sentences of longer units stay citable on their own.
UNIT_CITE_MAX = 600
KEY_BONUS = 0.15  # a key-value line whose key the question names ("postal address?" → "Address: …")
_URL_PARTS = frozenset({"http", "https", "www", "com", "org", "net", "html", "pdf"})
# A passage that is only a key and reference marks ("Source: [1] [2]") states nothing: like a reference
# title it is cited only for questions about sources.
_MARKS_ONLY_RE = re.compile(r"^\s*(?:[A-Za-z][\w .&/-]{0,30}:)?(?:\s*\[\d{1,3}\][.,;]?)+\s*$")
MODES = ("hybrid", "dense", "bm25")

# Tokens: words and numbers, keeping inner hyphens/dots/slashes ("946128-88-7", "dose-reduced", "1.5x")
# and a trailing percent sign ("10%"); compound tokens also yield their parts.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-./][a-z0-9]+)*%?")
_OWN_SETTING_RE = re.compile(r"\b(?:for|in|into|on|onto|to|from|at)\s+(?:our|my|their)\b[^?.!;]{0,60}", re.I)
_ACRONYM_RE = re.compile(r"(?<![\w])[A-Z][A-Z0-9]{2,}(?![\w])")
_SHOUTED_RE = re.compile(r"(?<![\w])[A-Z][A-Z0-9]*(?:[ \t,:;!#-]+[A-Z][A-Z0-9]*)+(?![\w])")
STOPWORDS = frozenset(
    """a an the and or of to in on at for by with from as is are was were be been being it its this that
    these those there their they them he she his her we our you your i me my do does did done can could
    should would will shall may might must if then than so such not no nor but about into over under up
    down out any all some each which who whom whose what when where why how also very just only own same
    too more most other has have had having am s t
    don doesn didn isn aren wasn weren haven hasn hadn wouldn couldn shouldn ll ve re d m""".split()
)
# Question words that carry no topic: they never make a question unsupported by the corpus.
GENERIC_TERMS = frozenset(
    """tell know explain please question questions need needed needs recommended recommend recommendation
    recommendations patient patients pt pts doctor clinician someone person people drug drugs medicine
    medication medications treatment treat treating therapy dose doses dosing dosage happen happens
    happened mean means say says said document source protocol guideline guidelines guidance manage
    management managed managing handle handling next step steps action actions give given giving take
    taking taken use used using get got make made go going done info information detail details regard
    regarding case cases situation approach best way ok okay hi hello thanks thank much many long well
    number kind type sort see during general time decision decisions material purpose purposes required
    require participant
    participants subject subjects individual individuals level
    oncologist oncologists physician physicians nurse nurses pharmacist pharmacists consultant specialist
    team pill pills tablet tablets capsule capsules ma rn np md dr
    leaflet leaflets handout handouts pamphlet brochure factsheet sheet feel feels feeling unwell
    ask asking asked sure unsure something anything totally different separate unrelated""".split()
)


def _stem(tok: str) -> str:
    """A light, predictable plural stemmer (no dictionary): 'toxicities'→'toxicity', 'exams'→'exam'."""
    if len(tok) > 3 and tok.isalpha():
        if tok.endswith("ies"):
            return tok[:-3] + "y"
        if tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
            return tok[:-1]
    return tok


def tokenize(text: str) -> list[str]:
    """Lowercased tokens without stopwords, compounds also split into their parts."""
    out: list[str] = []
    for tok in _TOKEN_RE.findall(text.lower()):
        if tok in STOPWORDS:
            continue
        out.append(_stem(tok))
        if tok.endswith("%"):
            out.append(tok[:-1])
        if any(ch in tok for ch in "-./"):
            out.extend(_stem(p) for p in re.split(r"[-./%]", tok) if p and p not in STOPWORDS)
    return out


@lru_cache(maxsize=1)
def synonym_groups() -> dict[str, tuple[str, ...]]:
    """term → its group's other terms, from ``bot/data/synonyms.txt``."""
    text = resources.files("bot").joinpath("data/synonyms.txt").read_text(encoding="utf-8")
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        group = {_stem(t.strip().lower()) for t in line.split(",") if t.strip()}
        for term in group:
            table.setdefault(term, set()).update(group - {term})
    return {k: tuple(sorted(v)) for k, v in table.items()}


def expand(tokens: Iterable[str]) -> list[str]:
    """Tokens plus their synonyms (each synonym once)."""
    groups = synonym_groups()
    out = list(tokens)
    seen = set(out)
    for tok in list(out):
        for syn in groups.get(tok, ()):
            if syn not in seen:
                seen.add(syn)
                out.append(syn)
    return out


def typo_limit(term: str) -> int:
    """Edits tolerated in a term: none below 5 letters, 1 from 5, 2 from 8."""
    return 2 if len(term) >= 8 else 1 if len(term) >= 5 else 0


@lru_cache(maxsize=1)
def word_zipf() -> dict[str, float]:
    """English word frequencies on the Zipf scale (``bot/data/word_zipf.tsv``, made from wordfreq)."""
    text = resources.files("bot").joinpath("data/word_zipf.tsv").read_text(encoding="utf-8")
    table: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, _, z = line.partition("\t")
            table[word] = float(z)
    return table


RARE_ZIPF = 3.0  # a word missing from the frequency list is rarer than every listed word
COMMON_ZIPF = 4.0  # a misspelling of a word at least this common counts as that word
TYPO_MARGIN = 2.0  # a listed but rare word is read as a misspelling of a word this much more common


# Cost caps of typo correction (issue 9): a word longer than the longest indexed word plus the edits
# allowed has no correction (checked by length, before any delete keys are made), and a question has at
# most this many distinct words looked up for typos; the rest are taken as they are.
MAX_TYPO_WORDS = 24


@lru_cache(maxsize=1)
def _common_deletes() -> dict[str, list[str]]:
    """Symmetric-delete index of the common words, most frequent first."""
    return delete_index(w for w, z in word_zipf().items() if z >= COMMON_ZIPF and len(w) >= 3)


@lru_cache(maxsize=1)
def _common_longest() -> int:
    return max((len(k) for k in _common_deletes()), default=0)


def _common_correction(term: str) -> str | None:
    """A common word one edit (insert, delete, substitute, swap) away from ``term``, if any."""
    if len(term) < 3 or len(term) > _common_longest() + 1 or not term.isalpha():
        return None
    index = _common_deletes()
    for key in (term, *deletes(term)):
        if key in index:
            return index[key][0]
    return None


# Words up to this length have their Zipf value remembered (a bounded LRU: each word of a question is
# weighed several times per question, and common words recur across questions); longer ones are computed
# each time (they are cheap: no typo lookup past the longest common word).
ZIPF_CACHED_CHARS = 32
ZIPF_CACHE_SIZE = 8192


def zipf(term: str) -> float:
    """How common an English word is (Zipf: 7 'the' … 3 rare). A misspelling of a common word counts as
    that word; a hyphenated compound is rarer than its rarest part; anything else unknown is rare."""
    return _zipf_cached(term) if len(term) <= ZIPF_CACHED_CHARS else _zipf(term)


def _zipf(term: str) -> float:
    table = word_zipf()
    known = table.get(term, table.get(term[:-1]) if term.endswith("s") else None)
    if "-" in term and known is None:
        return min(zipf(p) for p in term.split("-") if p) - 1.0
    fixed = _common_correction(term)
    if fixed is not None and (known is None or table[fixed] >= known + TYPO_MARGIN):
        return table[fixed]  # "wen" → "when", "mesured" → "measured"
    return known if known is not None else RARE_ZIPF


_zipf_cached = lru_cache(maxsize=ZIPF_CACHE_SIZE)(_zipf)


def information(term: str) -> float:
    """Specificity of a term: 7 - Zipf (0 for the commonest words, 4 for rare or unknown ones)."""
    return max(0.0, 7.0 - zipf(term))


class Vocabulary:
    """The corpus's lexical vocabulary, for deciding which question terms the corpus supports."""

    def __init__(
        self,
        tokens: Iterable[str],
        content: Iterable[str] | None = None,
        content_phrases: frozenset[str] = frozenset(),
    ) -> None:
        self.terms = frozenset(tokens)
        self.sorted_terms = sorted(self.terms)
        # Terms of passages that state facts (not reference titles, calls to action or views): a
        # drug-label topic only a reference title mentions ("… Yields Responses …") is not covered.
        self.content_terms = self.terms if content is None else frozenset(content)
        self.content_phrases = content_phrases  # topic phrases a fact-stating passage states
        self._deletes_index: DeleteIndex | None = None

    def prefix_matches(self, term: str) -> list[str]:
        """Corpus terms sharing a long prefix with ``term`` ('symptoms' → 'symptomatic')."""
        if len(term) < PREFIX_MIN or not term.isalpha():
            return []
        prefix = term[: max(PREFIX_MIN, len(term) - 3)]
        out = []
        i = bisect.bisect_left(self.sorted_terms, prefix)
        while i < len(self.sorted_terms) and self.sorted_terms[i].startswith(prefix):
            out.append(self.sorted_terms[i])
            i += 1
        return out

    @lru_cache(maxsize=4096)  # noqa: B019 - one Vocabulary per loaded index; terms repeat across questions
    def covers(self, term: str, fuzzy: bool = True) -> bool:
        """Known term, a synonym or prefix-variant of one, or (``fuzzy``) a typo of one (edit distance 1
        from 5 letters, 2 from 8)."""
        if term in self.terms or term.isdigit():
            return True
        if any(s in self.terms for s in synonym_groups().get(term, ())):
            return True
        if self.prefix_matches(term):
            return True
        if not fuzzy:
            return False
        if self.corrections(term):
            return True
        limit = typo_limit(term)
        return limit > 0 and any(
            osa_distance(term, s, limit) <= limit
            for s in _synonym_index().candidates(term, limit)
            if s[:1] == term[:1]
        )

    def fuzzy_terms(self, terms: Iterable[str]) -> frozenset[str]:
        """The terms of one question that may be looked up for typos: the first :data:`MAX_TYPO_WORDS`
        distinct ones that are not known as they are (a cap on the work one question can cause)."""
        out: dict[str, None] = {}
        for t in terms:
            if len(out) >= MAX_TYPO_WORDS:
                break
            if t not in self.terms and typo_limit(t) and t.isalpha():
                out.setdefault(t, None)
        return frozenset(out)

    @lru_cache(maxsize=4096)  # noqa: B019 - one Vocabulary per loaded index
    def corrections(self, term: str) -> tuple[str, ...]:
        """Corpus terms a misspelt ``term`` may stand for ('mechansim' → 'mechanism'). Bounded work: a term
        longer than the longest corpus term plus the edits allowed has none (no delete keys are made)."""
        limit = typo_limit(term)
        if not limit or term in self.terms or not term.isalpha():
            return ()
        candidates = self._delete_index().candidates(term, limit)
        return tuple(
            sorted(
                t
                for t in candidates
                if t[:1] == term[:1] and t != term and osa_distance(term, t, limit) <= limit
            )
        )

    def _delete_index(self) -> DeleteIndex:
        """Symmetric-delete index of the alphabetic corpus terms (built on first use): each term and each
        of its one-letter deletions → the term. Candidate lookup is O(len(term)), not O(vocabulary)."""
        if self._deletes_index is None:
            self._deletes_index = DeleteIndex(
                (t for t in self.sorted_terms if len(t) >= PREFIX_MIN - 1 and t.isalpha()), depth=1
            )
        return self._deletes_index

    def corrected(self, question: str) -> str:
        """The question with misspelt words replaced ('wen shoud … mesured' → 'when should … measured'), for
        embedding; a word is misspelt when neither the corpus nor common English knows it."""
        table = word_zipf()
        looked_up: set[str] = set()

        def fix(m: re.Match[str]) -> str:
            word = m.group(0)
            low = word.lower()
            known = low in self.terms or _stem(low) in self.terms or low in synonym_groups()
            if known or table.get(low, 0.0) >= COMMON_ZIPF - 0.5:
                return word
            if low not in looked_up and len(looked_up) >= MAX_TYPO_WORDS:
                return word  # the cap on typo lookups per question
            looked_up.add(low)
            if len(low) >= 5 and (mine := self.corrections(low)):
                return mine[0]
            common = _common_correction(low)
            if common is not None and table[common] >= table.get(low, 0.0) + TYPO_MARGIN:
                return common
            return word

        return re.sub(r"[A-Za-z]{3,}", fix, question)

    def salient(self, question: str) -> list[str]:
        """Question terms that carry its topic (no stopwords or generic question words), each once. A
        compound the corpus supports stands for its parts; an unsupported one brings its parts along."""
        out: list[str] = []
        seen: set[str] = set()

        def add(term: str) -> None:
            if term not in GENERIC_TERMS and term not in seen and len(term) >= 2:
                seen.add(term)
                out.append(term)

        # an acronym written in capitals ("KRAS", "VEGF") is a name, not a plural to stem
        acronyms = {a.lower() for a in _ACRONYM_RE.findall(question)}
        for raw in _TOKEN_RE.findall(question.lower()):
            if raw in STOPWORDS:
                continue
            tok = raw if raw in acronyms else _stem(raw.rstrip("%"))
            parts = [_stem(p) for p in re.split(r"[-./%]", raw) if p and p not in STOPWORDS]
            if "/" not in raw or not parts:  # names joined by a slash are only their parts
                add(tok)
            if len(parts) > 1 and not self.covers(tok):
                for p in parts:
                    add(p)
        return out

    def normalized(self, question: str) -> str:
        """The question with shorthand expanded, joined names split and clipped forms completed from this
        vocabulary (see :mod:`bot.query`)."""
        from bot.query import normalize_query

        table = word_zipf()
        return normalize_query(question, self.terms, self.sorted_terms, lambda w: table.get(w, 0.0))

    def support(self, question: str) -> Support:
        """How much of the question's specific content the corpus supports. The asker's own setting ("…
        for our EHR metadata field", "… in our departmental audit") is not part of what is asked."""
        question = _OWN_SETTING_RE.sub(" ", question)
        terms = self.salient(question)
        # an acronym in capitals is a name: never a typo of a common word, never fuzzily covered
        acronyms = {a.lower() for a in _ACRONYM_RE.findall(question)}
        # words of a run in capitals ("IGNORE ALL PREVIOUS INSTRUCTIONS") are shouting, not acronyms
        shouted = {w.lower() for run in _SHOUTED_RE.findall(question) for w in run.split() if w.isalnum()}
        fuzzy = self.fuzzy_terms(t for t in terms if t not in acronyms)
        missing = [t for t in terms if not self.covers(t, t in fuzzy)]

        def info(t: str) -> float:
            return max(0.0, 7.0 - word_zipf().get(t, RARE_ZIPF)) if t in acronyms else information(t)

        total = sum(info(t) for t in terms)
        lost = sum(info(t) for t in missing)
        topics = clinical_topics()
        return Support(
            tuple(missing),
            lost / total if total > 0 else 0.0,
            max((info(t) for t in missing), default=0.0),
            tuple(
                sorted(
                    {topics[t] for t in terms if t in topics and not self._stated(t)}
                    | {
                        topic
                        for pattern, topic in topic_phrases()
                        if pattern.pattern not in self.content_phrases and pattern.search(question.lower())
                    }
                )
            ),
            lost,
            tuple(t for t in missing if t in acronyms and t not in shouted and t not in setting_acronyms()),
        )

    def _stated(self, term: str) -> bool:
        """A term (or a synonym) that a fact-stating passage of the corpus uses."""
        if term in self.content_terms:
            return True
        return any(s in self.content_terms for s in synonym_groups().get(term, ()))


@lru_cache(maxsize=1)
def _synonym_index() -> DeleteIndex:
    """Symmetric-delete index of the synonym terms (deletions up to two letters, so every synonym within
    two edits of a word shares a key with it)."""
    return DeleteIndex(synonym_groups(), depth=2)


@lru_cache(maxsize=1)
def setting_acronyms() -> frozenset[str]:
    """Acronyms of the asker's setting, formats and roles (``bot/data/setting_acronyms.txt``)."""
    from bot.datafiles import data_lines

    return frozenset(line.lower() for line in data_lines("setting_acronyms.txt"))


@lru_cache(maxsize=1)
def clinical_topics() -> dict[str, str]:
    """term → drug-label topic, from ``bot/data/clinical_topics.txt``."""
    text = resources.files("bot").joinpath("data/clinical_topics.txt").read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("phrase "):
            continue
        topic, _, terms = line.partition(":")
        for term in terms.split(","):
            if term.strip():
                table[_stem(term.strip().lower())] = topic.strip()
    return table


@lru_cache(maxsize=1)
def topic_phrases() -> tuple[tuple[re.Pattern[str], str], ...]:
    """(pattern, drug-label topic) for the ``phrase`` lines of ``bot/data/clinical_topics.txt``."""
    text = resources.files("bot").joinpath("data/clinical_topics.txt").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.startswith("phrase "):
            topic, _, pattern = line[len("phrase ") :].partition(":")
            out.append((re.compile(pattern.strip()), topic.strip()))
    # a hyphenated topic term is also asked about spaced or joined ("half life", "halflife")
    for term, topic in clinical_topics().items():
        if "-" in term:
            parts = [re.escape(p) for p in term.split("-") if p]
            out.append((re.compile(r"\b" + r"[- ]?".join(parts) + r"s?\b"), topic))
    return tuple(out)


def stated_phrases(texts: Iterable[str]) -> frozenset[str]:
    """The topic-phrase patterns that some fact-stating passage matches (one pass over the texts; stops
    once every phrase is found)."""
    phrases = topic_phrases()
    found: set[str] = set()
    for text in texts:
        low = text.lower()
        for pattern, _ in phrases:
            if pattern.pattern not in found and pattern.search(low):
                found.add(pattern.pattern)
        if len(found) == len(phrases):
            break
    return frozenset(found)


SUBJECT_MIN_REST = 2  # salient terms that must remain for the subject's names to be left out


def without_subject(question: str, names: Sequence[str], vocabulary: Vocabulary) -> str:
    """The question for embedding without the names of the drugs the whole source is about ("… skin
    toxicity with avutometinib/defactinib?" → "… skin toxicity with ?"): every passage is about them, so
    they only pull the vector towards passages that repeat them. Kept when too little would remain
    ("How does avutometinib work?"). Linear in the question."""
    if not names or asks_about_the_drug(question):
        return question  # no names, or a question about the drugs themselves ("how does it work?")
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    joined = rf"(?<![\w])(?:{alt})(?:\s*(?:/|\+|&|and|plus|with)\s*(?:{alt}))*(?![\w])"
    stripped = re.sub(joined, " ", question, flags=re.IGNORECASE)
    if stripped == question or len(vocabulary.salient(stripped)) < SUBJECT_MIN_REST:
        return question
    return " ".join(stripped.split())


# Keys of the lines that name who publishes a document (author, web site, e-mail): generic front matter.
_PUBLISHER_KEY_RE = re.compile(r"(?:authors?|by|publisher|web|website|url|homepage|e-?mail)", re.I)
PUBLISHER_MAX_ZIPF = 1.5  # a name, not an English word: "smolecule", never "support" or "team"


def publisher_names(fields: Iterable[Chunk]) -> frozenset[str]:
    """Words naming the document's publisher: in the value of an author, web or e-mail line and not English
    words ("Author: Smolecule Technical Support Team", "info@smolecule.com" → smolecule). At most 8."""
    zipf = word_zipf()
    found: dict[str, None] = {}
    for c in fields:
        key = c.context.rsplit(" › ", 1)[-1]
        if not _PUBLISHER_KEY_RE.fullmatch(key.strip(" .")):
            continue
        for t in re.findall(r"[a-z]{4,}", c.text.lower()[len(key) :]):
            if zipf.get(t, 0.0) < PUBLISHER_MAX_ZIPF and t not in ("http", "https"):
                found[t] = None
    return frozenset(list(found)[:8])


def generic_publisher(question: str, names: Iterable[str], vocabulary: Vocabulary) -> str:
    """The question for embedding with the publisher's name read as "the publisher" ("where is smolecule
    based?" → "where is the publisher based?"): a made-up name means nothing to the encoder and pulls the
    vector to any line that spells it (an e-mail address) instead of the line that answers. Kept when too
    little would remain. Linear in the question."""
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    if not alt:
        return question
    replaced = re.sub(rf"(?<![\w@.])(?:{alt})(?:'s)?(?![\w@]|\.\w)", "the publisher", question, flags=re.I)
    if replaced == question or len(vocabulary.salient(replaced)) < SUBJECT_MIN_REST:
        return question
    return replaced


@dataclass(frozen=True, slots=True)
class Support:
    """Corpus support of a question: the unsupported terms, the share of the question's information
    they carry (0 = all supported), and the specificity of the rarest one."""

    missing: tuple[str, ...]
    missing_share: float
    rarest_missing: float
    missing_topics: tuple[str, ...] = ()  # drug-label topics asked about that the corpus never mentions
    missing_information: float = 0.0  # the unsupported terms' information, summed
    # acronyms written in capitals that the corpus never uses ("OCT", "LVEF"), besides the asker's setting
    # ("EHR", "URL": ``bot/data/setting_acronyms.txt``): a named thing the source does not mention
    missing_acronyms: tuple[str, ...] = ()


class HybridSearcher:
    """Dense + BM25 search over chunks in index order. Build once per loaded index; ``search`` is cheap.

    Fusion is linear: ``cosine + LEXICAL_WEIGHT * bm25 / max(bm25)`` over the union of both candidate
    lists; ties are broken by index order. Overlapping spans (a sentence and its paragraph) are collapsed
    to the better-scoring one.
    """

    def __init__(self, chunks: Sequence[Chunk], faiss_index: Any, lexical: Any = None) -> None:
        """``lexical``: the index's stored :class:`bot.lexical.LexicalTables` (used when this code computes
        the same ones), else they are computed from ``chunks`` here."""
        from bot.chunkstore import ChunkStore
        from bot.lexical import tables_for

        # A ChunkStore (a loaded index) stays columnar: chunks are made only for hits.
        self.chunks: Sequence[Chunk] = chunks if isinstance(chunks, (tuple, ChunkStore)) else tuple(chunks)
        self._row: dict[Chunk, int] | None = None  # for a plain tuple, made on first use
        self.faiss_index = faiss_index
        tables = tables_for(self.chunks, lexical)
        self.lexical = tables
        # Alias rows are never hits themselves; their dense score counts for the chunk they stand for:
        # a view (a question form of a chunk, bot/views.py) for the chunk over the same span, and a
        # question sentence of a unit ("Q2: Are there …?") for the unit that holds its answer.
        self._base = tables.base
        self._views = frozenset(int(i) for i in np.flatnonzero(self._base != np.arange(len(self._base))))
        self._boilerplate = frozenset(int(i) for i in np.flatnonzero(tables.boilerplate))
        # A table's caption names what the table is about: an answer only to a question naming its label
        # word ("what is Table 2 about?"), never to one about the topic it names ("managing reactions").
        self._captions = {
            i: (tokenize(c.text)[:1] or [""])[0] for i, c in _rows_of_kind(self.chunks, CAPTION)
        }
        self.vocabulary = Vocabulary(tables.vocabulary_terms(), tables.content_terms(), tables.phrases)
        self._bibliographic = frozenset(int(i) for i in np.flatnonzero(tables.bibliographic))
        # Passages that cite rather than state — a bibliography's entries (its list items, not the section's
        # other text such as "To cite this document: … Available at: <url>") and "Source: [1] [2]" — answer
        # only questions about sources, or a question naming words only they hold ("the Verastem release").
        # (Both computed at build by bot.lexical.LexicalTables.compute, stored in the index.)
        self._citing = frozenset(int(i) for i in np.flatnonzero(tables.citing))
        self._citing_only_terms = frozenset(tables.citing_only_terms())
        self._context_terms = _RowTerms(self.chunks, lambda c: c.context)  # per row, made when a search asks
        self._chunk_terms = _RowTerms(self.chunks, _indexed_text)  # the tokens a chunk is indexed under
        # each document's opening paragraph (what the document is about), for "(opening)" question types
        first: dict[str, int] = {}
        for i, c in _rows_of_kind(self.chunks, "paragraph"):
            first.setdefault(c.source, i)
        self._openings = frozenset(first.values())
        # A key-value line's key ("Contact › Address" → address): a question naming it asks for that line.
        self._field_keys = {
            i: frozenset(tokenize(c.context.rsplit(" › ", 1)[-1]))
            for i, c in _rows_of_kind(self.chunks, "field")
            if " › " in c.context
        }
        self.bm25 = tables  # bm25s's vocab_dict and score matrix, as stored
        self.publisher_names = publisher_names(self.chunks[i] for i in self._field_keys)

    def chunk_terms(self, row: int) -> frozenset[str]:
        """The tokens a chunk is indexed under (none for a view)."""
        return self._chunk_terms[row]

    def row_of(self, chunk: Chunk) -> int:
        """The chunk's row in index order."""
        from bot.chunkstore import ChunkStore

        if isinstance(self.chunks, ChunkStore):
            row = self.chunks.row(chunk.id)
            if row is not None and self.chunks[row] == chunk:
                return row
        if self._row is None:
            self._row = {c: i for i, c in enumerate(self.chunks)}
        return self._row[chunk]

    def is_bibliography(self, chunk: Chunk) -> bool:
        """A passage of a bibliography section (it cites sources rather than states facts)."""
        return BIBLIOGRAPHY_RE.match(chunk.context) is not None

    def specificity(self, term: str) -> float:
        """How much a term tells passages apart: 1 for a term in one chunk (or none), falling towards 0 for a
        term in every chunk (inverse document frequency scaled to [0, 1])."""
        n = len(self.chunks)
        df = self.lexical.document_frequency(term)
        if n <= 1 or df <= 1:
            return 1.0
        return float(np.log(n / df) / np.log(n))

    def passage_support(self, question_terms: Sequence[str], hit: Hit) -> float:
        """Share of the question's specific content (information x specificity) that the hit's own words
        (text and context, with synonyms, prefix variants and typo fixes) state. 1.0 when the question
        has no specific content. The positive evidence that a passage answers *what is asked*."""
        words = self.chunk_terms(self.row_of(hit.chunk))
        # typo fixes for the question's first MAX_TYPO_WORDS unknown words only, as everywhere else (issue 9)
        fuzzy = self.vocabulary.fuzzy_terms(question_terms)
        total = lost = 0.0
        for t in question_terms:
            fixes = self.vocabulary.corrections(t) if t in fuzzy else ()
            w = information(t) * self.specificity(self._canonical(t, fixes))
            total += w
            if not self._stated(t, words, fixes):
                lost += w
        return 1.0 - lost / total if total > 0 else 1.0

    def _canonical(self, term: str, fixes: Sequence[str]) -> str:
        if term in self.vocabulary.terms:
            return term
        for alt in (*self.vocabulary.prefix_matches(term), *fixes):
            return alt
        return term

    def _stated(self, term: str, words: frozenset[str], fixes: Sequence[str]) -> bool:
        if term in words:
            return True
        alts = {*synonym_groups().get(term, ()), *self.vocabulary.prefix_matches(term), *fixes}
        return any(a in words for a in alts)

    def query_terms(self, query: str) -> list[str]:
        """Query tokens + synonyms + corpus terms sharing a long prefix ('symptoms' → 'symptomatic')."""
        terms = expand(tokenize(query))
        out = [t for t in terms if t in self.vocabulary.terms]
        seen = set(out)
        fuzzy = self.vocabulary.fuzzy_terms(terms)
        for t in dict.fromkeys(terms):
            fixes = self.vocabulary.corrections(t) if t in fuzzy else ()
            for term in (*self.vocabulary.prefix_matches(t), *fixes):
                if term not in seen:
                    seen.add(term)
                    out.append(term)
        return out

    def lexical_scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for the query's terms (a repeated term counts again, as in bm25s).

        Summed straight from bm25s's sparse score matrix with ``np.bincount``: ~20x faster than
        ``BM25.get_scores`` on large corpora, same numbers (tests/test_retrieval.py)."""
        vocab = self.bm25.vocab_dict
        ids = [vocab[t] for t in self.query_terms(query) if t in vocab]
        n = len(self.chunks)
        if not ids:
            return np.zeros(n, dtype=np.float32)
        m = self.bm25.scores
        indptr, indices, data = m["indptr"], m["indices"], m["data"]
        rows = np.concatenate([indices[indptr[i] : indptr[i + 1]] for i in ids])
        weights = np.concatenate([data[indptr[i] : indptr[i + 1]] for i in ids])
        return np.bincount(rows, weights=weights, minlength=n).astype(np.float32)

    def search(
        self,
        query: str,
        vector: np.ndarray,
        k: int = 5,
        mode: str = "hybrid",
        sources: bool | None = None,
    ) -> list[Hit]:
        """Top ``k`` hits, best first; ``mode`` is ``hybrid``, ``dense`` or ``bm25``. ``sources``: whether
        the question asks about sources (reference titles and marks-only lines are then answers); None
        decides from the query's words."""
        n = len(self.chunks)
        if n == 0 or k <= 0:
            return []
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r} (expected one of {', '.join(MODES)})")
        depth = min(n, max(CANDIDATES, 4 * k))
        q = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        d_scores, d_ids = self.faiss_index.search(q, depth)
        dense: dict[int, float] = {}
        for i, s in zip(d_ids[0], d_scores[0], strict=True):
            if i >= 0:  # a chunk scores by its best view
                b = int(self._base[i])
                dense[b] = max(dense.get(b, -1.0), float(s))
        lex = self.lexical_scores(query) if mode != "dense" else np.zeros(n, dtype=np.float32)
        if self._views:  # a unit scores lexically by its best sentence too, as it does densely
            np.maximum.at(lex, self._base, lex)
        lex_max = float(lex.max()) if n else 0.0
        lex_top: list[int] = []
        if lex_max > 0:
            top = np.argpartition(-lex, depth - 1)[:depth] if depth < n else np.arange(n)
            lex_top = [int(i) for i in top if lex[i] > 0]
        if mode == "dense":
            candidates = set(dense)
        elif mode == "bm25":
            candidates = set(lex_top)
        else:
            candidates = set(dense) | set(lex_top)
        candidates -= self._views
        if self._boilerplate and not intent_terms().intersection(tokenize(query)):
            candidates -= self._boilerplate  # calls to action are cited only when asked about
        if self._captions:
            asked = set(tokenize(query))
            candidates -= {i for i, label in self._captions.items() if label not in asked}
        for i in candidates - set(dense):
            dense[i] = float(self.faiss_index.reconstruct(i) @ q[0])
        lex_norm = (lambda i: float(lex[i]) / lex_max) if lex_max > 0 else (lambda i: 0.0)
        # Bibliography passages cite sources rather than state facts: promoted when the question asks
        # for the sources, when they are what answers it; otherwise they answer only a question naming
        # words that only they hold, and then demoted.
        query_tokens = set(tokenize(query))
        asks_sources = bool(SOURCES_ASKED_RE.search(query)) if sources is None else sources
        bib = BIBLIOGRAPHY_PENALTY if asks_sources else -BIBLIOGRAPHY_PENALTY
        if not asks_sources and not (self._citing_only_terms & query_tokens):
            candidates -= self._citing

        typed = [words for pattern, words in question_types() if pattern.search(query)]
        openings = self._openings if any(OPENING in w for w in typed) else frozenset()
        answers_type = (
            (lambda i: TYPE_BONUS if i in openings or any(self._context_terms[i] & w for w in typed) else 0.0)
            if typed
            else (lambda i: 0.0)
        )

        def score(i: int) -> float:
            if mode == "dense":
                return dense[i]
            if mode == "bm25":
                return float(lex[i])
            key = self._field_keys.get(i)
            bonus = (bib if i in self._bibliographic else 0.0) + answers_type(i)
            if key and key <= query_tokens:
                bonus += KEY_BONUS
            return dense[i] + LEXICAL_WEIGHT * lex_norm(i) + bonus

        scored = sorted(((score(i), i) for i in candidates), key=lambda t: (-t[0], t[1]))
        hits: list[Hit] = []
        for s, i in scored:
            c = self.chunks[i]
            if any(_overlaps(c, h.chunk) for h in hits):
                continue
            hits.append(Hit(c, s, dense[i], float(lex[i])))
            if len(hits) >= k:
                break
        return hits


OPENING = "(opening)"  # in question_types.txt: the type is answered by the document's opening paragraph
TYPE_BONUS = 0.2  # a passage under a heading of the kind a question's type asks for ("why" → "Rationale")


@lru_cache(maxsize=1)
def question_types() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """(question pattern, heading words) from ``bot/data/question_types.txt``."""
    return tuple((pattern, words) for _name, pattern, words in _question_type_lines())


def asks_overview(question: str) -> bool:
    """A question about the approach as a whole ("in general", "broadly", "the general options")."""
    return any(name == "overview" and p.search(question) for name, p, _w in _question_type_lines())


def asks_about_the_drug(question: str) -> bool:
    """A question about the drugs themselves ("how does it work?", "drug class?")."""
    return any(name == "about-the-drug" and p.search(question) for name, p, _w in _question_type_lines())


@lru_cache(maxsize=1)
def _question_type_lines() -> tuple[tuple[str, re.Pattern[str], frozenset[str]], ...]:
    """(name, question pattern, heading words): the "name: pattern : words" lines of the data file."""
    from bot.datafiles import data_lines

    out = []
    for line in data_lines("question_types.txt"):
        name, _, rest = line.partition(": ")
        pattern, _, words = rest.rpartition(" : ")
        heading_words = frozenset(
            w.strip() if w.strip() == OPENING else _stem(w.strip().lower()) for w in words.split(",")
        )
        out.append((name.strip(), re.compile(pattern.strip(), re.I), heading_words))
    return tuple(out)


@lru_cache(maxsize=1)
def signpost_patterns() -> tuple[re.Pattern[str], ...]:
    """Patterns of signposting sentences, from ``bot/data/signposts.txt``."""
    from bot.datafiles import data_lines

    return tuple(re.compile(line, re.I) for line in data_lines("signposts.txt"))


def is_signpost(chunk: Chunk) -> bool:
    """A one-sentence paragraph that points at what follows ("The diagram below illustrates …")."""
    if chunk.kind != "paragraph":
        return False
    text = " ".join(plain(chunk.text).split())
    if len(text) > 300 or "?" in text or len(_SENTENCE_END_RE.findall(text)) > 1:
        return False
    return any(p.search(text) for p in signpost_patterns())


_SENTENCE_END_RE = re.compile(r"[.!](?:\s|$)")
_UNITS = ("paragraph", "list_item", "list")


def _indexed_text(chunk: Chunk) -> str:
    """What a chunk is indexed lexically under: its embed text; nothing for a view (a question form)."""
    from bot.views import KIND as VIEW

    return "" if chunk.kind == VIEW else chunk.embed_text()


class _RowTerms:
    """``terms[i]``: the tokens of ``text_of(chunk i)``, made on first use and kept, up to ``CAP`` rows (a
    search asks for its few candidates; a million rows are never all tokenised, nor all kept)."""

    CAP = 65_536

    def __init__(self, chunks: Sequence[Chunk], text_of: Callable[[Chunk], str]) -> None:
        self._chunks = chunks
        self._text_of = text_of
        self._terms: dict[int, frozenset[str]] = {}

    def __getitem__(self, i: int) -> frozenset[str]:
        terms = self._terms.get(i)
        if terms is None:
            if len(self._terms) >= self.CAP:
                self._terms = {}
            terms = self._terms[i] = frozenset(tokenize(self._text_of(self._chunks[i])))
        return terms


def _rows_of_kind(chunks: Sequence[Chunk], kind: str) -> list[tuple[int, Chunk]]:
    """(row, chunk) of every chunk of ``kind``; from the kind column when the chunks are a ChunkStore."""
    from bot.chunkstore import ChunkStore

    if isinstance(chunks, ChunkStore):
        return [(int(i), chunks[int(i)]) for i in np.flatnonzero(chunks.kind_mask(kind))]
    return [(i, c) for i, c in enumerate(chunks) if c.kind == kind]


def _alias_targets(chunks: Sequence[Chunk], view_kind: str) -> list[int]:
    """For each row, the row it stands for (its own score counts for that row; it is never a hit):

    - a view: the chunk over the same span;
    - a sentence of a paragraph or list item at most :data:`UNIT_CITE_MAX` characters long: that unit (a
      question sentence "…?" whatever the unit's length: the unit holds its answer);
    - a paragraph that is the lead-in of a ``list`` block (and so its sentences): the block;
    - a signpost paragraph (:func:`is_signpost`): the first passage of its section that states something.
    """
    from bot.boilerplate import KIND as BOILERPLATE

    span_row: dict[tuple[str, int, int], int] = {}
    for i, c in enumerate(chunks):
        if c.kind != view_kind:
            span_row.setdefault((c.source, c.start, c.end), i)
    # lead-in paragraphs of list blocks (the block follows its lead-in's sentences, before the items)
    lead_of: dict[tuple[str, int], int] = {}
    for i, c in enumerate(chunks):
        if c.kind == "list":
            lead_of[(c.source, c.start)] = i
    # each section's first passage that states something, for its signposts
    signposts = {i for i, c in enumerate(chunks) if is_signpost(c)}
    first_content: dict[tuple[str, str], int] = {}
    for i, c in enumerate(chunks):
        if c.kind in _UNITS and i not in signposts and c.kind != BOILERPLATE:
            first_content.setdefault((c.source, c.context.split(" › ")[0]), i)
    out: list[int] = []
    unit: Chunk | None = None
    unit_row = -1
    for i, c in enumerate(chunks):
        if c.kind in ("paragraph", "list_item") or (
            c.kind == BOILERPLATE and (unit is None or c.end > unit.end)
        ):
            unit, unit_row = c, i
            if c.kind == "paragraph" and (c.source, c.start) in lead_of:
                unit_row = lead_of[(c.source, c.start)]
        if c.kind == view_kind:
            out.append(span_row.get((c.source, c.start, c.end), i))
        elif c.kind == "paragraph" and (c.source, c.start) in lead_of:
            out.append(lead_of[(c.source, c.start)])
        elif i in signposts and (c.source, c.context.split(" › ")[0]) in first_content:
            out.append(first_content[(c.source, c.context.split(" › ")[0])])
        elif (
            c.kind in ("sentence", BOILERPLATE)
            and unit is not None
            and unit.source == c.source
            and unit.start <= c.start
            and c.end <= unit.end
            and unit.end - unit.start > c.end - c.start
            and (c.text.rstrip().endswith("?") or unit.end - unit.start <= UNIT_CITE_MAX)
        ):
            out.append(unit_row)
        else:
            out.append(i)
    for i, b in enumerate(out):  # a target that is itself an alias (a signpost's lead-in): follow it
        out[i] = out[b] if out[b] != b else b
    return out


def merge_hits(*lists: Sequence[Hit], k: int) -> list[Hit]:
    """Hits of several searches merged by summed score (a chunk missing from a list adds nothing), the
    dense and lexical parts kept at their best; ties by index order of first appearance."""
    total: dict[str, float] = {}
    best: dict[str, Hit] = {}
    order: dict[str, int] = {}
    for hits in lists:
        for h in hits:
            cid = h.chunk.id
            total[cid] = total.get(cid, 0.0) + h.score
            order.setdefault(cid, len(order))
            prev = best.get(cid)
            best[cid] = (
                h
                if prev is None
                else Hit(h.chunk, 0.0, max(prev.dense, h.dense), max(prev.lexical, h.lexical))
            )
    ranked = sorted(total, key=lambda cid: (-total[cid], order[cid]))
    out: list[Hit] = []
    for cid in ranked:
        h = best[cid]
        if any(_overlaps(h.chunk, o.chunk) for o in out):
            continue
        out.append(Hit(h.chunk, total[cid], h.dense, h.lexical))
        if len(out) >= k:
            break
    return out


def _overlaps(a: Chunk, b: Chunk) -> bool:
    return a.source == b.source and a.start < b.end and b.start < a.end


def to_langchain_document(hit: Hit) -> Any:
    from langchain_core.documents import Document as LCDocument

    c = hit.chunk
    return LCDocument(
        page_content=c.text,
        id=c.id,
        metadata={
            "id": c.id,
            "source": c.source,
            "start": c.start,
            "end": c.end,
            "context": c.context,
            "kind": c.kind,
            "score": hit.score,
            "dense": hit.dense,
            "lexical": hit.lexical,
        },
    )


def make_retriever(
    searcher: HybridSearcher, embed: Callable[[str], np.ndarray], k: int = 5, mode: str = "hybrid"
) -> Any:
    """A ``langchain_core`` BaseRetriever over ``searcher``; metadata carries source offsets and scores."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    class FaqRetriever(BaseRetriever):
        """Hybrid dense + BM25 retriever over the faqbot index."""

        k: int = 5
        mode: str = "hybrid"

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
        ) -> list[LCDocument]:
            """``k`` and ``mode`` given to ``invoke`` override the retriever's own for this call."""
            k = kwargs.get("k", self.k)
            mode = kwargs.get("mode", self.mode)
            return [to_langchain_document(h) for h in searcher.search(query, embed(query), k, mode)]

    return FaqRetriever(k=k, mode=mode)
