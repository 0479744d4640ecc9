from __future__ import annotations

import numpy as np
import pytest

from bot import index as ix
from bot.chunking import chunk_documents
from bot.corpus import load_corpus
from bot.retrieval import (
    HybridSearcher,
    Vocabulary,
    expand,
    make_retriever,
    synonym_groups,
    tokenize,
    zipf,
)
from tests.conftest import hash_encoder


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> HybridSearcher:
    import shutil

    from tests.conftest import ROOT

    root = tmp_path_factory.mktemp("retr")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    docs = load_corpus(root / "corpus", root)
    data = ix.build(docs, chunk_documents(docs), hash_encoder(), "hash", root / "index")
    return HybridSearcher(data.chunks, data.faiss_index)


def q(text: str) -> np.ndarray:
    return hash_encoder()([text])[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CAS No.: 946128-88-7", ["cas", "946128-88-7", "946128", "88", "7"]),
        ("led to discontinuation in **10%**", ["led", "discontinuation", "10%", "10"]),
        ("CPK and ULN", ["cpk", "uln"]),
        ("dose-reduced eyes", ["dose-reduced", "dose", "reduced", "eye"]),
        ("The toxicities of the exams", ["toxicity", "exam"]),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_synonyms_are_symmetric_and_expand() -> None:
    groups = synonym_groups()
    assert "ocular" in groups["eye"] and "eye" in groups["ocular"]
    assert "cpk" in expand(["ck"])
    assert expand(["unrelatedword"]) == ["unrelatedword"]


def test_vocabulary_covers_synonyms_prefixes_and_typos() -> None:
    v = Vocabulary(["ophthalmic", "symptomatic", "hepatotoxicity", "cpk", "mechanism"])
    assert v.covers("ophthalmic")
    assert v.covers("eye")  # synonym of a corpus term
    assert v.covers("symptom")  # shares a long prefix
    assert v.covers("opthalmic")  # one edit away
    assert v.covers("mechansim")  # a swap counts as one edit; 2 allowed from 8 letters
    assert not v.covers("pembrolizumab")
    assert v.corrections("mechansim") == ("mechanism",)


def test_support_flags_rare_missing_terms_and_label_topics() -> None:
    v = Vocabulary(["avutometinib", "dose", "ocular"])
    s = v.support("What is the half-life of avutometinib?")
    assert "half-life" in s.missing and s.missing_topics == ("pharmacokinetics",)
    assert 0 < s.missing_share < 1
    ok = v.support("avutometinib ocular dose")
    assert ok.missing == () and ok.missing_share == 0.0 and ok.missing_topics == ()


def test_zipf_reads_misspellings_of_common_words_as_common() -> None:
    assert zipf("measured") > 4
    assert zipf("mesured") == zipf("measured")
    assert zipf("pembrolizumab") == 3.0
    assert zipf("half-life") < min(zipf("half"), zipf("life"))


def test_corrected_question_for_embedding() -> None:
    v = Vocabulary(["creatine", "kinase", "mechanism"])
    assert v.corrected("wen shoud creatine kinase be mesured") == "wen should creatine kinase be measured"
    assert v.corrected("mechansim of the drug") == "mechanism of the drug"


def test_exact_passage_text_ranks_its_chunk_first(searcher: HybridSearcher) -> None:
    for chunk in searcher.chunks:
        if chunk.kind != "table_row":
            continue
        text = chunk.embed_text()
        hits = searcher.search(text, q(text), k=3)
        assert hits[0].chunk == chunk


def test_search_is_deterministic_and_collapses_overlaps(searcher: HybridSearcher) -> None:
    question = "Defactinib is a focal adhesion kinase inhibitor"
    a = searcher.search(question, q(question), k=8)
    b = searcher.search(question, q(question), k=8)
    assert [h.chunk.id for h in a] == [h.chunk.id for h in b]
    for i, h in enumerate(a):
        for g in a[:i]:
            assert not (h.chunk.start < g.chunk.end and g.chunk.start < h.chunk.end)
    assert [h.score for h in a] == sorted((h.score for h in a), reverse=True)


def test_modes(searcher: HybridSearcher) -> None:
    question = "RAMP-201 discontinuation 10%"
    for mode in ("hybrid", "dense", "bm25"):
        hits = searcher.search(question, q(question), k=3, mode=mode)
        assert hits, mode
    assert "RAMP-201" in searcher.search(question, q(question), k=1, mode="bm25")[0].chunk.text
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        searcher.search(question, q(question), mode="magic")


def test_bibliography_is_demoted_unless_asked_for_then_promoted(searcher: HybridSearcher) -> None:
    from bot.retrieval import BIBLIOGRAPHY_PENALTY, LEXICAL_WEIGHT

    def fused(question: str) -> dict[str, tuple[float, float]]:
        hits = searcher.search(question, q(question), k=len(searcher.chunks))
        top_lex = float(searcher.lexical_scores(question).max())
        base = {h.chunk.id: h.dense + LEXICAL_WEIGHT * h.lexical / top_lex for h in hits}
        return {h.chunk.id: (h.score, base[h.chunk.id]) for h in hits if h.chunk.context == "References"}

    plain = fused("Avutometinib and Defactinib Monograph for Professionals")
    assert plain and all(
        score == pytest.approx(base - BIBLIOGRAPHY_PENALTY) for score, base in plain.values()
    )
    asked = fused("Which reference: Avutometinib and Defactinib Monograph for Professionals")
    # asked for, the sources are what answers: promoted by the same amount
    assert asked and all(
        score == pytest.approx(base + BIBLIOGRAPHY_PENALTY) for score, base in asked.values()
    )


def test_langchain_retriever(searcher: HybridSearcher) -> None:
    retriever = make_retriever(searcher, q, k=2)
    docs = retriever.invoke("ophthalmic evaluation schedule")
    assert len(docs) == 2
    meta = docs[0].metadata
    assert {"id", "source", "start", "end", "context", "score"} <= set(meta)
    assert docs[0].page_content == searcher.chunks[[c.id for c in searcher.chunks].index(meta["id"])].text


def test_zero_k_returns_nothing(searcher: HybridSearcher) -> None:
    assert searcher.search("eye", q("eye"), k=0) == []
