"""Issue 9: the model embeds at most ``query_max_tokens`` tokens of a question (default 128, the sequence
length all-MiniLM-L6-v2 was trained on), so a 2000-character question's forward pass is bounded; documents
are still embedded up to the model's own limit."""

from __future__ import annotations

import numpy as np
import pytest

from bot.runtime.files import ModelFiles
from bot.runtime.onnx import tokenizer_for, truncate_feeds
from bot.settings import BUNDLED_MODEL, Settings

LONG = " ".join(f"grade {i % 4 + 1} rash with creatine kinase {i}x ULN and blurred vision" for i in range(40))
SHORT = "How often are eye exams needed?"


def _feeds(tok, texts):  # type: ignore[no-untyped-def]
    encodings = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


@pytest.mark.parametrize("cap", [3, 16, 64, 128])
def test_cutting_the_padded_batch_equals_the_tokenizers_own_truncation(cap: int) -> None:
    files = ModelFiles.of(BUNDLED_MODEL)
    full, capped = tokenizer_for(files), tokenizer_for(files)
    capped.enable_truncation(max_length=cap, strategy="longest_first")
    texts = [LONG, SHORT, LONG[: len(LONG) // 3], "x"]
    got = truncate_feeds(_feeds(full, texts), cap, full.token_to_id("[SEP]"))
    want = _feeds(capped, texts)
    assert got["input_ids"].shape[1] <= cap
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_batch_that_fits_is_unchanged() -> None:
    files = ModelFiles.of(BUNDLED_MODEL)
    tok = tokenizer_for(files)
    feeds = _feeds(tok, [SHORT, "x"])
    assert truncate_feeds(feeds, 128, 102) is feeds
    assert truncate_feeds(feeds, 0, 102) is feeds


def test_the_cap_is_a_setting_with_its_env_override() -> None:
    assert Settings().query_max_tokens == 128
    assert Settings.from_env({"FAQBOT_QUERY_MAX_TOKENS": "64"}).query_max_tokens == 64
    assert any(var == "FAQBOT_QUERY_MAX_TOKENS" for var, _, _ in Settings.describe())


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_questions_are_embedded_from_their_first_tokens_documents_in_full(runtime: str) -> None:
    from bot.embedding import Embedder

    e = Embedder(runtime=runtime, precision="float32", query_max_tokens=128).load()
    v = e.encode_one(LONG)
    # text past the cap changes nothing; the same text embedded in full (a document) differs
    assert np.allclose(v, e.encode_one(LONG + " ocular toxicity and interstitial lung disease"), atol=1e-5)
    assert np.allclose(v, e.encode([LONG], max_tokens=128)[0], atol=1e-5)
    assert float(v @ e.encode([LONG])[0]) < 0.9999
    # a question within the cap is embedded exactly as before
    assert np.allclose(e.encode_one(SHORT), e.encode([SHORT])[0], atol=1e-5)
    if runtime == "torch":  # the torch fallback cuts where ONNX does, and restores the model's limit
        onnx = Embedder(query_max_tokens=128).load()
        assert float(v @ onnx.encode_one(LONG)) >= 0.9999
        assert e._encoder.model.max_seq_length == 256  # type: ignore[union-attr]
