"""Hybrid retrieval on plain data: dense (FAISS inner product) + lexical (BM25) fused by reciprocal rank.

Pure: takes the query text and its vector; no model here. :class:`FaqRetriever` exposes the same search
as a ``langchain_core`` retriever for LangChain pipelines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from bot.records import Chunk, Hit

RRF_K = 20
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
CANDIDATES = 50

# Tokens: words and numbers, keeping inner hyphens/dots/slashes ("946128-88-7", "dose-reduced", "1.5x")
# and a trailing percent sign ("10%"); compound tokens also yield their parts.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-./][a-z0-9]+)*%?")
STOPWORDS = frozenset(
    """a an the and or of to in on at for by with from as is are was were be been being it its this that
    these those there their they them he she his her we our you your i me my do does did done can could
    should would will shall may might must if then than so such not no nor but about into over under up
    down out any all some each which who whom whose what when where why how also very just only own same
    too more most other has have had having am s t""".split()
)
# Question words that carry no topic: they never make a question unsupported by the corpus.
GENERIC_TERMS = frozenset(
    """tell know explain please question questions need needed needs recommended recommend recommendation
    recommendations patient patients pt pts doctor clinician someone person people drug drugs medicine
    medication medications treatment treat treating therapy dose doses dosing dosage happen happens
    happened mean means say says said document source protocol guideline guidelines guidance manage
    management managed managing handle handling next step steps action actions give given giving take
    taking taken use used using get got make made go going done info information detail details regard
    regarding case cases situation approach best way ok okay hi hello thanks thank much many long well""".split()
)


def _stem(tok: str) -> str:
    """A light, predictable plural stemmer (no dictionary): 'toxicities'→'toxicity', 'exams'→'exam'."""
    if len(tok) > 4 and tok.isalpha():
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


def _edit_distance_le(a: str, b: str, limit: int) -> bool:
    if abs(len(a) - len(b)) > limit:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


class Vocabulary:
    """The corpus's lexical vocabulary, for deciding which question terms the corpus supports."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.terms = frozenset(tokens)
        self._by_prefix: dict[str, list[str]] = {}
        for t in self.terms:
            self._by_prefix.setdefault(t[:2], []).append(t)

    def covers(self, term: str) -> bool:
        """Known term, a synonym of one, or a typo of one (edit distance 1 from 5 letters, 2 from 8)."""
        if term in self.terms or term.isdigit():
            return True
        if any(s in self.terms for s in synonym_groups().get(term, ())):
            return True
        limit = 2 if len(term) >= 8 else 1 if len(term) >= 5 else 0
        if not limit:
            return False
        candidates = [t for t in self.terms if abs(len(t) - len(term)) <= limit and t[:1] == term[:1]]
        candidates += [s for s in synonym_groups() if abs(len(s) - len(term)) <= limit and s[:1] == term[:1]]
        return any(_edit_distance_le(term, c, limit) for c in candidates)

    def unsupported(self, question: str) -> list[str]:
        """Salient question terms the corpus does not support (in question order, each once)."""
        out: list[str] = []
        for tok in tokenize(question):
            if tok in GENERIC_TERMS or tok in out or len(tok) < 3:
                continue
            if not self.covers(tok):
                out.append(tok)
        return out


class HybridSearcher:
    """Dense + BM25 search over chunks in index order. Build once per loaded index; ``search`` is cheap."""

    def __init__(self, chunks: Sequence[Chunk], faiss_index: Any) -> None:
        import bm25s

        self.chunks = tuple(chunks)
        self.faiss_index = faiss_index
        corpus_tokens = [tokenize(c.embed_text()) for c in self.chunks]
        self.vocabulary = Vocabulary(t for toks in corpus_tokens for t in toks)
        self.bm25 = bm25s.BM25()
        self.bm25.index([toks or ["∅"] for toks in corpus_tokens], show_progress=False)

    def lexical_scores(self, query: str) -> np.ndarray:
        tokens = [t for t in expand(tokenize(query)) if t in self.vocabulary.terms]
        if not tokens:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, vector: np.ndarray, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        """Top ``k`` hits, best first; ``mode`` is ``hybrid``, ``dense`` or ``bm25``. Ties: index order."""
        n = len(self.chunks)
        if n == 0 or k <= 0:
            return []
        depth = min(n, max(CANDIDATES, k))
        q = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        d_scores, d_ids = self.faiss_index.search(q, depth)
        dense_rank = [int(i) for i in d_ids[0] if i >= 0]
        dense_score = {int(i): float(s) for i, s in zip(d_ids[0], d_scores[0], strict=True) if i >= 0}
        lex = self.lexical_scores(query) if mode != "dense" else np.zeros(n, dtype=np.float32)
        if mode != "dense":
            top = np.argpartition(-lex, depth - 1)[:depth] if depth < n else np.arange(n)
            lex_rank = sorted((int(i) for i in top if lex[i] > 0), key=lambda i: (-lex[i], i))
        else:
            lex_rank = []
        fused: dict[int, float] = {}
        if mode in ("hybrid", "dense"):
            for r, i in enumerate(dense_rank):
                fused[i] = fused.get(i, 0.0) + DENSE_WEIGHT / (RRF_K + r + 1)
        if mode in ("hybrid", "bm25"):
            for r, i in enumerate(lex_rank):
                fused[i] = fused.get(i, 0.0) + LEXICAL_WEIGHT / (RRF_K + r + 1)
        order = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        hits = []
        for i in order:
            dense = dense_score[i] if i in dense_score else float(self.faiss_index.reconstruct(i) @ q[0])
            hits.append(Hit(self.chunks[i], fused[i], dense, float(lex[i])))
        return hits


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
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[LCDocument]:
            return [to_langchain_document(h) for h in searcher.search(query, embed(query), self.k, self.mode)]

    return FaqRetriever(k=k, mode=mode)
