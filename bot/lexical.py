"""The lexical side of an index, computed once at build and persisted: BM25 matrix, vocabulary, and the
per-chunk flags search needs. No pickle: one uncompressed ``lexical.npz`` read with ``allow_pickle=False``.

What is stored is exactly what :class:`bot.retrieval.HybridSearcher` used to derive from the chunks on
every load (49 s at 1M chunks): bm25s's own score matrix (CSC: ``data``, ``indices``, ``indptr``; one
column per vocabulary term) and vocabulary, which vocabulary terms fact-stating passages use, the topic
phrases they state, each row's alias target (views and question sentences), and the bibliography and
boilerplate rows. The numbers are bm25s's, so scores are identical to an in-memory build.

These tables depend on code (tokenizer, stopwords, alias and bibliography rules, chunk text rules) as well
as on the chunks. The file records a :func:`fingerprint` of that code (the sha256 of the modules and data
file it comes from, and bm25s's version); when the running code's fingerprint differs, the tables are
recomputed from the chunks in memory (slower, never wrong) and a warning says to run ``faqbot build``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np

from bot.chunkstore import read_npz, write_npz
from bot.errors import IndexCorruptError
from bot.records import Chunk

LEXICAL_FILE = "lexical.npz"
EMPTY_TOKEN = "∅"  # what a chunk without tokens (a view) is indexed under; never a query term
# The code the tables are computed by (package-relative paths); any change makes stored tables stale.
CODE_FILES = (
    "retrieval.py",
    "records.py",
    "views.py",
    "boilerplate.py",
    "lexical.py",
    "data/clinical_topics.txt",
    "data/signposts.txt",
)
_ARRAYS = (
    "terms",
    "data",
    "indices",
    "indptr",
    "content",
    "citing_only",
    "base",
    "bibliographic",
    "boilerplate",
    "citing",
    "meta",
)
log = logging.getLogger("faqbot")


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """sha256 over the code and data that compute the lexical tables, and bm25s's version."""
    h = hashlib.sha256()
    root = resources.files("bot")
    for name in CODE_FILES:
        h.update(name.encode() + b"\0" + root.joinpath(name).read_bytes() + b"\0")
    try:
        h.update(metadata.version("bm25s").encode())
    except metadata.PackageNotFoundError:
        pass
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class LexicalTables:
    """Everything lexical search needs besides the chunks' text. ``vocab_dict`` and ``scores`` have the
    shape of a ``bm25s.BM25``'s attributes of the same names."""

    terms: list[str]  # vocabulary in column order
    vocab_dict: dict[str, int]
    scores: dict[str, Any]  # data, indices, indptr, num_docs
    content: np.ndarray  # bool per term: used by a fact-stating passage
    citing_only: np.ndarray  # bool per term: held only by passages that cite (see HybridSearcher._citing)
    phrases: frozenset[str]  # topic-phrase patterns a fact-stating passage matches
    base: np.ndarray  # int64 per row: the row it stands for (itself unless an alias)
    bibliographic: np.ndarray  # bool per row
    boilerplate: np.ndarray  # bool per row
    citing: np.ndarray  # bool per row: a bibliography entry or a marks-only line ("Source: [1] [2]")
    fingerprint: str

    def document_frequency(self, term: str) -> int:
        """Number of chunks whose tokens include ``term`` (0 for an unknown term)."""
        i = self.vocab_dict.get(term)
        if i is None or term == EMPTY_TOKEN:
            return 0
        indptr = self.scores["indptr"]
        return int(indptr[i + 1] - indptr[i])

    def vocabulary_terms(self) -> list[str]:
        return [t for t in self.terms if t != EMPTY_TOKEN]

    def content_terms(self) -> list[str]:
        return [self.terms[i] for i in np.flatnonzero(self.content) if self.terms[i] != EMPTY_TOKEN]

    def citing_only_terms(self) -> list[str]:
        return [self.terms[i] for i in np.flatnonzero(self.citing_only)]

    # ---- build ----------------------------------------------------------------------------------------
    @classmethod
    def compute(cls, chunks: Sequence[Chunk]) -> LexicalTables:
        """The tables of ``chunks`` (one pass of tokenising; what a build stores)."""
        import bm25s

        from bot.boilerplate import KIND as BOILERPLATE
        from bot.records import plain
        from bot.retrieval import (
            _MARKS_ONLY_RE,
            _URL_PARTS,
            BIBLIOGRAPHY_RE,
            GENERIC_TERMS,
            _alias_targets,
            stated_phrases,
            tokenize,
        )
        from bot.views import KIND as VIEW

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
        n = len(chunks)
        kinds = [c.kind for c in chunks]
        base = np.array(_alias_targets(chunks, VIEW), dtype=np.int64).reshape(n)
        boilerplate = np.array([k == BOILERPLATE for k in kinds], dtype=bool).reshape(n)
        bibliographic = np.array([BIBLIOGRAPHY_RE.match(c.context) is not None for c in chunks], dtype=bool)
        bibliographic = bibliographic.reshape(n)
        corpus_tokens = [[] if c.kind == VIEW else tokenize(c.embed_text()) for c in chunks]
        facts = [i for i in range(n) if not (bibliographic[i] or boilerplate[i]) and kinds[i] != VIEW]
        bm25 = bm25s.BM25()
        bm25.index([toks or [EMPTY_TOKEN] for toks in corpus_tokens], show_progress=False)
        indptr = np.asarray(bm25.scores["indptr"])
        columns = len(indptr) - 1
        # Columns in sorted term order (bm25s's follow set iteration, which varies between processes): the
        # same chunks always give the same bytes, and the sorted vocabulary loads without sorting.
        # bm25s also maps "" past the matrix; it is never a query term.
        terms = sorted(t for t, i in bm25.vocab_dict.items() if i < columns)
        if len(terms) != columns:
            raise ValueError(f"bm25s vocabulary has {len(terms)} terms for {columns} matrix columns")
        old = np.array([bm25.vocab_dict[t] for t in terms], dtype=np.int64)
        lengths = (indptr[1:] - indptr[:-1])[old] if columns else np.zeros(0, dtype=np.int64)
        new_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(indptr.dtype)
        take = np.repeat(indptr[:-1][old] - new_indptr[:-1], lengths) + np.arange(int(new_indptr[-1]))
        vocab = {t: i for i, t in enumerate(terms)}
        fact_terms: set[str] = set()
        for i in facts:
            fact_terms.update(corpus_tokens[i])
        content = np.fromiter((t in fact_terms for t in terms), dtype=bool, count=len(terms))
        # passages that cite rather than state, and the words only they hold (bot/retrieval.py)
        citing = np.array(
            [
                (bool(bibliographic[i]) and c.kind == "list_item")
                or _MARKS_ONLY_RE.match(plain(c.text)) is not None
                for i, c in enumerate(chunks)
            ],
            dtype=bool,
        ).reshape(n)
        only: set[str] = set()
        for row in np.flatnonzero(citing):
            only.update(
                t
                for t in corpus_tokens[int(row)]
                if t not in fact_terms and t not in GENERIC_TERMS and t.isalpha() and t not in _URL_PARTS
            )
        citing_only = np.fromiter((t in only for t in terms), dtype=bool, count=len(terms))
        phrases = stated_phrases(plain(chunks[i].text) for i in facts)
        scores = {
            "data": np.asarray(bm25.scores["data"], dtype=np.float32)[take],
            "indices": np.asarray(bm25.scores["indices"])[take],
            "indptr": new_indptr,
            "num_docs": int(bm25.scores["num_docs"]),
        }
        return cls(
            terms,
            vocab,
            scores,
            content,
            citing_only,
            phrases,
            base,
            bibliographic,
            boilerplate,
            citing,
            fingerprint(),
        )

    # ---- files ----------------------------------------------------------------------------------------
    def write(self, directory: Path) -> str:
        meta = {
            "phrases": sorted(self.phrases),
            "num_docs": self.scores["num_docs"],
            "fingerprint": self.fingerprint,
        }
        terms = "\n".join(self.terms).encode("utf-8")
        arrays = {
            "terms": np.frombuffer(terms, dtype=np.uint8),
            "data": self.scores["data"],
            "indices": self.scores["indices"],
            "indptr": self.scores["indptr"],
            "content": self.content,
            "citing_only": self.citing_only,
            "base": self.base,
            "bibliographic": self.bibliographic,
            "boilerplate": self.boilerplate,
            "citing": self.citing,
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        }
        write_npz(directory / LEXICAL_FILE, arrays)
        return LEXICAL_FILE

    @classmethod
    def read(cls, directory: Path, rows: int) -> LexicalTables:
        """The stored tables, checked for shape against ``rows`` chunks; IndexCorruptError naming the file."""
        path = directory / LEXICAL_FILE
        a = read_npz(path, _ARRAYS)
        try:
            meta = json.loads(a["meta"].tobytes().decode("utf-8"))
            text = a["terms"].tobytes().decode("utf-8")
            phrases = frozenset(str(p) for p in meta["phrases"])
            num_docs = int(meta["num_docs"])
            stamp = str(meta["fingerprint"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:  # the meta and terms arrays
            raise IndexCorruptError(f"{path}: unreadable ({exc}); run `faqbot build`") from exc
        terms = text.split("\n") if text else []
        indptr, indices, data = a["indptr"], a["indices"], a["data"]
        problem = None
        if num_docs != rows:
            problem = f"{num_docs} documents, the index has {rows} chunks"
        elif len(indptr) != len(terms) + 1 or any(
            len(a[k]) != len(terms) for k in ("content", "citing_only")
        ):
            problem = f"{len(terms)} terms but {len(indptr) - 1} matrix columns"
        elif len(data) != len(indices) or (len(indptr) and (indptr[0] != 0 or indptr[-1] != len(data))):
            problem = "matrix arrays disagree"
        elif bool((np.diff(indptr) < 0).any()) or (
            len(indices) and (indices.min() < 0 or indices.max() >= rows)
        ):
            problem = "matrix indices out of range"
        elif any(len(a[k]) != rows for k in ("base", "bibliographic", "boilerplate", "citing")):
            problem = "row flags do not match the chunks"
        elif rows and (a["base"].min() < 0 or a["base"].max() >= rows):
            problem = "alias rows out of range"
        elif not np.isfinite(data).all():
            problem = "non-finite BM25 scores"
        if problem is not None:
            raise IndexCorruptError(f"{path}: {problem}; run `faqbot build`")
        vocab = {t: i for i, t in enumerate(terms)}
        if len(vocab) != len(terms):
            raise IndexCorruptError(f"{path}: repeated vocabulary terms; run `faqbot build`")
        scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}
        return cls(
            terms,
            vocab,
            scores,
            a["content"].astype(bool),
            a["citing_only"].astype(bool),
            phrases,
            a["base"].astype(np.int64),
            a["bibliographic"].astype(bool),
            a["boilerplate"].astype(bool),
            a["citing"].astype(bool),
            stamp,
        )


def tables_for(chunks: Sequence[Chunk], stored: LexicalTables | None) -> LexicalTables:
    """The stored tables when the running code computes the same ones; else recomputed from the chunks."""
    if stored is not None and stored.fingerprint == fingerprint():
        return stored
    if stored is not None:
        log.warning(
            "the index's lexical tables were computed by other code (fingerprint %s…, this code %s…): "
            "recomputing them in memory; run `faqbot build` to store them",
            stored.fingerprint[:12],
            fingerprint()[:12],
        )
    return LexicalTables.compute(chunks)
