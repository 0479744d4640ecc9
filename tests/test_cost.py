"""Issue 9, the worst-case question's cost: work that a question causes once rather than several times per
ask, and shortcuts that must give exactly what the long way gives. Work is counted, never timed."""

from __future__ import annotations

import importlib
import random
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import retrieval
from bot.chunking import chunk_documents
from bot.corpus import load_corpus
from bot.dose import parse as parse_module  # noqa: F401 - the package re-exports the function
from bot.retrieval import MAX_TYPO_WORDS, Vocabulary, tokenize
from bot.textdist import METER, DeleteIndex, deletes_upto
from tests.conftest import ROOT


def _fresh_words(n: int, length: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(string.ascii_lowercase) for _ in range(length)) for _ in range(n)]


# ---- the dose parser reads each turn of a request once --------------------------------------------------
@pytest.mark.slow
def test_ask_reads_each_turn_once(real_bot, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    parse_mod = importlib.import_module("bot.dose.parse")  # the package's `parse` attribute is the function
    read: list[str] = []
    original = parse_mod._read_turn

    def counting(question: str, rules):  # type: ignore[no-untyped-def]
        read.append(question)
        return original(question, rules)

    monkeypatch.setattr(parse_mod, "_read_turn", counting)
    real_bot._cache.clear()
    # a dosing question goes through both routes: the table route (the question alone), then the rule route
    answer = real_bot.ask("Patient has grade 3 rash, what should we do with the dose?")
    assert answer.route in ("decision", "clarify", "no_rule")
    assert read == ["Patient has grade 3 rash, what should we do with the dose?"]  # twice before
    read.clear()
    real_bot.ask("and if it is grade 4?", ["grade 3 rash on avutometinib"])
    assert sorted(read) == sorted(["and if it is grade 4?", "grade 3 rash on avutometinib"])  # 3 before


def test_parse_with_a_memo_is_parse_without() -> None:
    from bot.dose.parse import parse

    memo: dict = {}  # type: ignore[type-arg]
    history = ("grade 3 rash", "cpk 10x uln")
    for q in ("and grade 4?", "grade 2 ocular toxicity, no AKI", "what should I do?"):
        assert parse(q, history, memo=memo) == parse(q, history)
        assert parse(q, (), memo=memo) == parse(q)
    assert set(memo) == {*history, "and grade 4?", "grade 2 ocular toxicity, no AKI", "what should I do?"}


# ---- per-word frequencies: once per word ----------------------------------------------------------------
@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    chunks = chunk_documents(load_corpus(ROOT / "corpus", ROOT))
    vocab = Vocabulary(t for c in chunks for t in tokenize(c.embed_text()))
    vocab.support("qzxwvk")  # the lazy tables, outside any count
    return vocab


def test_support_weighs_each_word_once(vocabulary: Vocabulary, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = retrieval._common_correction

    def counting(term: str) -> str | None:
        calls.append(term)
        return original(term)

    monkeypatch.setattr(retrieval, "_common_correction", counting)
    retrieval._zipf_cached.cache_clear()
    words = _fresh_words(200, 8, 1)
    support = vocabulary.support(" ".join(words))
    assert len(support.missing) == len(words)  # every word unknown, weighed for total, lost and the maximum
    assert sorted(calls) == sorted(support.missing)  # each word's frequency once (3-4 times per word before)
    again = vocabulary.support(" ".join(words))
    assert again == support and len(calls) == len(support.missing)  # remembered (a bounded LRU)


def test_zipf_cache_is_bounded_and_skips_long_words() -> None:
    retrieval._zipf_cached.cache_clear()
    long_word = "q" * (retrieval.ZIPF_CACHED_CHARS + 1)
    assert retrieval.zipf(long_word) == retrieval.RARE_ZIPF
    assert retrieval._zipf_cached.cache_info().currsize == 0
    assert retrieval._zipf_cached.cache_info().maxsize == retrieval.ZIPF_CACHE_SIZE
    assert retrieval.zipf("when") == retrieval._zipf("when") and retrieval.zipf("wen") == retrieval.zipf(
        "when"
    )


# ---- passage support: typo lookups capped like everywhere else -----------------------------------------
@pytest.mark.slow
def test_passage_support_looks_up_at_most_the_capped_words(real_bot) -> None:  # type: ignore[no-untyped-def]
    searcher = real_bot.searcher
    hit = real_bot.search("how often are eye exams needed")[0]
    words = _fresh_words(200, 9, 2)
    Vocabulary.corrections.cache_clear()
    before = METER.snapshot()
    share = searcher.passage_support(words, hit)
    done = METER.since(before)
    assert share == 0.0
    assert done.lookups <= MAX_TYPO_WORDS  # one typo lookup per word before: 200
    # a misspelt word within the cap is still read as the corpus word it stands for
    assert searcher.passage_support(["opthalmic"], hit) == searcher.passage_support(["ophthalmic"], hit)


# ---- the delete index's letter pre-check: the same candidates, fewer keys --------------------------------
def _reference(index: DeleteIndex, word: str, max_edits: int) -> list[str]:
    seen: dict[str, None] = {}
    for key in sorted(deletes_upto(word, max_edits)):
        for w in index.index.get(key, ()):
            seen.setdefault(w, None)
    return list(seen)


def _indexes() -> list[tuple[DeleteIndex, list[str]]]:
    from bot.dose.parse import _vocabulary_index, default_rules, lexicon_of

    dose = _vocabulary_index(lexicon_of(default_rules()).vocabulary)
    syn = retrieval._synonym_index()
    words = sorted(t for t in retrieval.synonym_groups() if t.isalpha())[:150]
    small = DeleteIndex(words, depth=1)
    return [(dose, sorted({w for v in dose.index.values() for w in v})), (syn, words), (small, words)]


INDEXES = _indexes()


def _typo(word: str, rnd: random.Random) -> str:
    for _ in range(rnd.randint(0, 3)):
        k = rnd.randrange(len(word) + 1)
        op = rnd.choice("dist")
        c = rnd.choice(string.ascii_lowercase)
        if op == "d" and len(word) > 1:
            word = word[:k] + word[k + 1 :]
        elif op == "i":
            word = word[:k] + c + word[k:]
        elif op == "s" and k < len(word):
            word = word[:k] + c + word[k + 1 :]
        elif k + 1 < len(word):
            word = word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    return word


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 10**9), which=st.integers(0, len(INDEXES) - 1), edits=st.integers(0, 2))
def test_letter_precheck_gives_the_same_candidates(seed: int, which: int, edits: int) -> None:
    index, words = INDEXES[which]
    rnd = random.Random(seed)
    word = (
        _typo(rnd.choice(words), rnd) if rnd.random() < 0.7 else _fresh_words(1, rnd.randint(1, 20), seed)[0]
    )
    assert index.candidates(word, edits) == _reference(index, word, edits)


@given(word=st.text(min_size=1, max_size=24))
def test_letter_precheck_any_text(word: str) -> None:
    index, _ = INDEXES[0]
    for edits in (1, 2):
        assert index.candidates(word, edits) == _reference(index, word, edits)


def test_fresh_long_words_make_no_delete_keys_against_the_dose_vocabulary() -> None:
    index, _ = INDEXES[0]
    words = _fresh_words(100, 14, 3)
    before = METER.snapshot()
    found = [index.candidates(w, 2) for w in words]
    done = METER.since(before)
    assert found == [_reference(index, w, 2) for w in words]
    # 106 keys per 14-letter word before; now only the words whose letters could match make keys
    assert done.filtered >= 80 and done.delete_keys <= 20 * 106


# ---- tokenizing a long question: its first words only, the same encoding -------------------------------
def _ids(tok, texts: list[str], cap: int):  # type: ignore[no-untyped-def]
    from bot.runtime.onnx import truncate_feeds

    return truncate_feeds(
        {
            "input_ids": np.array([e.ids for e in texts], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in texts], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in texts], dtype=np.int64),
        },
        cap,
        tok.token_to_id("[SEP]"),
    )


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from bot.runtime.files import ModelFiles
    from bot.runtime.onnx import tokenizer_for
    from bot.settings import BUNDLED_MODEL

    return tokenizer_for(ModelFiles.of(BUNDLED_MODEL))


WORDISH = st.lists(
    st.one_of(
        st.sampled_from(
            ["grade", "3", "rash", "CPK", "10x", "uln", "ocular", "hépatotoxicité", "皮疹三级", "—", ""]
        ),
        st.sampled_from(
            ["\u0301", "\u200b", "\ufeff", "\u0301\u0301", "a\u0301"]
        ),  # dropped by the tokenizer
        st.text(max_size=12),
        st.just("x" * 150),
    ),
    max_size=300,
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(WORDISH, min_size=1, max_size=3), cap=st.sampled_from([3, 8, 32, 128]))
def test_tokenizing_the_head_equals_tokenizing_all(tokenizer, texts: list[str], cap: int) -> None:  # type: ignore[no-untyped-def]
    from bot.runtime.onnx import clean_text, tokenize_capped

    texts = [clean_text(t).strip() for t in texts]
    got = _ids(tokenizer, tokenize_capped(tokenizer, texts, cap), cap)
    want = _ids(tokenizer, list(tokenizer.encode_batch(texts)), cap)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_long_question_is_tokenized_from_its_head(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from bot.runtime.onnx import head_words, tokenize_capped

    seen: list[int] = []
    original = tokenizer.encode_batch

    class Spy:
        def encode_batch(self, texts):  # type: ignore[no-untyped-def]
            seen.extend(len(t) for t in texts)
            return original(texts)

    question = " ".join(_fresh_words(220, 8, 4))[:2000]
    tokenize_capped(Spy(), [question], 128)
    assert seen == [len(head_words(question, 128))] and seen[0] < len(question) // 1.5
    # words the tokenizer drops do not count: the head falls back to the whole text
    seen.clear()
    odd = " ".join(["\u200b"] * 200 + ["grade", "3", "rash"])
    tokenize_capped(Spy(), [odd], 16)
    assert seen[-1] == len(odd)
