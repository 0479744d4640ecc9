"""Issue 11: chunk records as columns and the BM25 tables persisted in the index directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from bot import index as ix
from bot import lexical
from bot.chunking import chunk_documents
from bot.chunkstore import ChunkStore
from bot.corpus import load_corpus
from bot.errors import IndexCorruptError
from bot.lexical import LexicalTables
from bot.records import Chunk
from bot.retrieval import HybridSearcher, tokenize
from bot.views import KIND as VIEW
from bot.views import derive_views
from tests.conftest import hash_encoder

QUESTIONS = (
    "How often are eye exams needed?",
    "CPK 10x ULN creatinine",
    "skin rash grade 3 what to do",
    "Which references support this?",
    "mechansim of action",  # a typo: corrections come from the stored vocabulary
    "zzz qqq",
)


def _chunks(project: Path) -> list[Chunk]:
    docs = load_corpus(project / "corpus", project)
    chunks = chunk_documents(docs)
    return chunks + derive_views(chunks)


def _build(project: Path) -> ix.IndexData:
    docs = load_corpus(project / "corpus", project)
    return ix.build(docs, _chunks(project), hash_encoder(), "m", project / "index")


def test_chunk_store_round_trip_keeps_every_field(tmp_path: Path) -> None:
    chunks = [
        Chunk("a1", "corpus/x.md", 0, 5, "héllo ≥ 10× ULN", "Ctx — ü", "paragraph"),
        Chunk(
            "b2", "corpus/y.md", 5, 9, "row", "Table 1", "table_row", ("Grade", "Action"), ("3", "Withhold")
        ),
        Chunk("c3", "corpus/x.md", 9, 9, "", "", "view"),
        Chunk("zz-longer-id", "corpus/x.md", 1, 2, "emoji 🙂", "", "sentence"),
    ]
    store = ChunkStore.from_chunks(chunks)
    store.write(tmp_path)
    loaded = ChunkStore.read(tmp_path)
    assert list(loaded) == chunks and loaded == chunks and len(loaded) == 4
    assert loaded[-1] == chunks[-1] and loaded[1:3] == chunks[1:3]
    assert [loaded.row(c.id) for c in chunks] == [0, 1, 2, 3]
    assert loaded.get("b2") == chunks[1] and loaded.get("nope") is None and loaded.row("x" * 99) is None
    assert loaded.kind_mask("view").tolist() == [False, False, True, False]
    with pytest.raises(IndexError, match="out of range"):
        loaded[4]


def test_stored_lexical_tables_equal_the_computed_ones(project: Path) -> None:
    built = _build(project)
    loaded = ix.read_index(project / "index")
    assert loaded.lexical is not None and loaded.lexical.fingerprint == lexical.fingerprint()
    fresh = LexicalTables.compute(list(built.chunks))
    stored = loaded.lexical
    assert stored.terms == fresh.terms and stored.vocab_dict == fresh.vocab_dict
    for key in ("data", "indices", "indptr"):
        assert np.array_equal(stored.scores[key], fresh.scores[key]), key
    assert stored.scores["num_docs"] == len(built.chunks) and stored.phrases == fresh.phrases
    for key in ("content", "citing_only", "base", "bibliographic", "boilerplate", "citing"):
        assert np.array_equal(getattr(stored, key), getattr(fresh, key)), key
    # document frequency read off the matrix equals counting each chunk's distinct tokens
    df: dict[str, int] = {}
    for c in built.chunks:
        for t in set() if c.kind == VIEW else set(tokenize(c.embed_text())):
            df[t] = df.get(t, 0) + 1
    assert {t: stored.document_frequency(t) for t in df} == df
    assert stored.document_frequency("notaword") == 0


def test_search_over_a_loaded_index_equals_search_over_chunks_in_memory(project: Path) -> None:
    _build(project)
    loaded = ix.read_index(project / "index")
    chunks = tuple(loaded.chunks)  # plain Chunk objects: the searcher computes its tables itself
    stored = HybridSearcher(loaded.chunks, loaded.faiss_index, loaded.lexical)
    memory = HybridSearcher(chunks, loaded.faiss_index)
    assert stored.vocabulary.terms == memory.vocabulary.terms
    assert stored.vocabulary.content_terms == memory.vocabulary.content_terms
    assert stored.vocabulary.content_phrases == memory.vocabulary.content_phrases
    encode = hash_encoder()
    for question in QUESTIONS:
        vec = encode([question])[0]
        assert np.array_equal(stored.lexical_scores(question), memory.lexical_scores(question)), question
        for mode in ("hybrid", "dense", "bm25"):
            a, b = stored.search(question, vec, 8, mode), memory.search(question, vec, 8, mode)
            assert a == b, (question, mode)
            terms = stored.query_terms(question)
            assert [stored.passage_support(terms, h) for h in a] == [
                memory.passage_support(terms, h) for h in b
            ]
        assert stored.vocabulary.support(question) == memory.vocabulary.support(question)


def test_lexical_scores_equal_bm25s_own(project: Path) -> None:
    import bm25s

    built = _build(project)
    searcher = HybridSearcher(ix.read_index(project / "index").chunks, built.faiss_index, built.lexical)
    bm25 = bm25s.BM25()
    tokens = [[] if c.kind == VIEW else tokenize(c.embed_text()) for c in built.chunks]
    bm25.index([t or ["∅"] for t in tokens], show_progress=False)
    for question in ("eye exams every three cycles", "CPK ULN creatinine baseline", "rash rash skin"):
        terms = searcher.query_terms(question)
        assert np.allclose(searcher.lexical_scores(question), bm25.get_scores(terms), atol=1e-6), question


def test_tables_from_other_code_are_recomputed_not_trusted(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _build(project)
    loaded = ix.read_index(project / "index")
    assert loaded.lexical is not None
    calls: list[int] = []
    real = LexicalTables.compute

    def counting(chunks: object) -> LexicalTables:
        calls.append(1)
        return real(chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(LexicalTables, "compute", staticmethod(counting))
    HybridSearcher(loaded.chunks, loaded.faiss_index, loaded.lexical)
    assert calls == []  # same code: the stored tables are used as they are
    monkeypatch.setattr(lexical, "fingerprint", lambda: "f" * 64)  # e.g. the tokenizer was changed
    with caplog.at_level(logging.WARNING, logger="faqbot"):
        HybridSearcher(loaded.chunks, loaded.faiss_index, loaded.lexical)
    assert calls == [1] and "run `faqbot build`" in caplog.text


def _rehash(directory: Path) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    data["files"] = {name: ix.sha256_file(directory / name) for name in data["files"]}
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("array", "value", "message"),
    [
        ("indices", lambda a: a + 10_000, "matrix indices out of range"),
        ("indptr", lambda a: a[:-1], "terms but"),
        ("base", lambda a: a[:-1], "row flags do not match"),
        ("data", lambda a: np.full_like(a, np.nan), "non-finite BM25 scores"),
    ],
)
def test_inconsistent_lexical_file_is_refused_even_with_a_matching_checksum(
    project: Path, array: str, value: object, message: str
) -> None:
    _build(project)
    path = project / "index" / "lexical.npz"
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[array] = value(arrays[array])  # type: ignore[operator]
    with path.open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(IndexCorruptError, match=r"lexical\.npz: sha256"):
        ix.read_index(project / "index")
    _rehash(project / "index")
    with pytest.raises(IndexCorruptError, match=rf"lexical\.npz: (\d+ )?{message}"):
        ix.read_index(project / "index")
