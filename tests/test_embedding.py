from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.embedding import Embedder, resolve_model
from bot.errors import ModelError
from bot.settings import BUNDLED_MODEL


class SlowModel:
    """A stand-in encoder: a vector that encodes the text itself, and a delay so callers pile up."""

    dimension = 8
    description = "stand-in"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self.lock:
            self.batches.append(len(texts))
        time.sleep(0.02)
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, 0] = float(t.split("-")[1])
            out[i, 1] = 1.0
        return out


def _embedder(model: SlowModel) -> Embedder:
    e = Embedder(batch_max=32)
    e._encoder = model
    e.dimension = 8
    return e


def test_micro_batching_gives_each_caller_its_own_vector() -> None:
    model = SlowModel()
    e = _embedder(model)
    texts = [f"q-{i}" for i in range(64)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        vectors = list(pool.map(e.encode_one, texts))
    for i, v in enumerate(vectors):
        assert v[0] / v[1] == pytest.approx(i), f"caller {i} got another caller's vector"
    assert sum(model.batches) == 64
    assert max(model.batches) > 1  # concurrent callers were joined into one encode call
    assert max(model.batches) <= 32


def test_a_lone_caller_is_not_delayed_by_batching() -> None:
    model = SlowModel()
    e = _embedder(model)
    v = e.encode_one("q-7")
    assert v[0] / v[1] == pytest.approx(7.0)
    assert model.batches == [1]


def test_a_failing_item_fails_only_its_caller_and_the_next_batch_still_works() -> None:
    class Broken(SlowModel):
        def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
            if any("boom" in t for t in texts):
                raise RuntimeError("encoder failed")
            return super().encode(texts)

    e = _embedder(Broken())
    with pytest.raises(RuntimeError, match="encoder failed"):
        e.encode_one("boom-1")
    texts = [f"boom-{i}" if i % 4 == 0 else f"q-{i}" for i in range(40)]

    def call(t: str) -> object:
        try:
            return e.encode_one(t)
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, texts))
    for t, r in zip(texts, results, strict=True):
        if t.startswith("boom"):
            assert isinstance(r, RuntimeError)
        else:
            assert isinstance(r, np.ndarray) and r[0] / r[1] == pytest.approx(float(t.split("-")[1]))


def test_non_finite_vectors_from_the_encoder_are_an_error() -> None:
    class Nan(SlowModel):
        def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
            return np.full((len(texts), 8), np.nan, dtype=np.float32)

    with pytest.raises(ModelError, match="non-finite"):
        _embedder(Nan()).encode(["q-1"])


def test_model_resolution_errors(tmp_path: Path) -> None:
    path, model_id = resolve_model(BUNDLED_MODEL)
    assert Path(path, "modules.json").exists() and "all-MiniLM-L6-v2" in model_id
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds no sentence-transformers model"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="cannot load embedding model"):
        Embedder(str(tmp_path / "not-a-model-name-anywhere"), runtime="torch").load()
    with pytest.raises(ModelError, match="not a local folder"):
        Embedder(str(tmp_path / "not-a-model-name-anywhere")).load()


@pytest.mark.slow
def test_real_model_concurrent_vectors_equal_single_ones() -> None:
    e = Embedder().load()
    texts = [f"How often are eye exams needed, case {i}?" for i in range(24)]
    single = [e.encode([t])[0] for t in texts]
    with ThreadPoolExecutor(max_workers=12) as pool:
        batched = list(pool.map(e.encode_one, texts))
    for a, b in zip(single, batched, strict=True):
        assert np.allclose(a, b, atol=1e-5)
    assert e.dimension == 384
    assert np.isclose(np.linalg.norm(single[0]), 1.0, atol=1e-5)


def test_model_variants_and_runtimes() -> None:
    from bot.embedding import model_identity
    from bot.runtime.torch import resolve_precision

    assert model_identity("m", False) == "m"
    assert model_identity("m", True) == "m +int8-dynamic"
    assert resolve_precision("float32", "cpu", False) == "float32"
    assert resolve_precision("bfloat16", "cpu", True) == "float32"  # int8 quantization works on float32
    assert resolve_precision("auto", "cuda", False) == "float32"
    with pytest.raises(ModelError, match="precision 'half'"):
        resolve_precision("half", "cpu", False)
    with pytest.raises(ModelError, match="runtime 'tf'"):
        Embedder(runtime="tf")
    with pytest.raises(ModelError, match="needs FAQBOT_RUNTIME=torch"):
        Embedder(quantize=True)


@pytest.mark.slow
def test_bfloat16_vectors_match_float32_ones() -> None:
    full = Embedder(precision="float32", runtime="torch").load()
    half = Embedder(precision="bfloat16", runtime="torch").load()
    assert half.description.endswith("bfloat16") and full.description.endswith("float32")
    assert half.weights_sha256 == full.weights_sha256  # same weights: the same index serves both
    texts = ["How often are eye exams needed?", "Rhabdomyolysis\tAny grade with acute kidney injury"]
    a, b = full.encode(texts), half.encode(texts)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert ((a * b).sum(axis=1) > 0.999).all()


@pytest.mark.slow
def test_quantized_model_encodes_close_to_the_full_one() -> None:
    full = Embedder(precision="float32", runtime="torch").load()
    small = Embedder(quantize=True, runtime="torch").load()
    assert small.model_id.endswith("+int8-dynamic") and small.model_id != full.model_id
    texts = ["How often are eye exams needed?", "CPK above ten times the upper limit of normal"]
    a, b = full.encode(texts), small.encode(texts)
    cosines = (a * b).sum(axis=1)
    assert (cosines > 0.85).all() and (cosines < 0.9999).all()


def test_encode_lanes_and_threads_are_checked_and_shared_among_the_cores() -> None:
    """Issue 11: FAQBOT_ENCODE_LANES (default 1: one call at a time, every core inside it, as before) and
    FAQBOT_THREADS (0: the cores, at most 2, shared among the lanes); lanes=0 is one lane per core; the
    torch runtime has one lane; a bad count is an error naming it."""
    from bot.runtime.onnx import default_threads

    cores = default_threads()
    default = Embedder()
    assert (default.lanes, default.threads, default.batcher.lanes) == (1, cores, 1)
    per_core = Embedder(lanes=0)
    assert (per_core.lanes, per_core.threads, per_core.batcher.lanes) == (cores, 1, cores)
    assert (Embedder(lanes=3, threads=2).lanes, Embedder(lanes=3, threads=2).threads) == (3, 2)
    torch = Embedder(runtime="torch", lanes=2)
    assert torch.lanes == 1 and torch.batcher.lanes == 1
    for bad in (-1, 65, 1000):
        with pytest.raises(ModelError, match=f"lanes {bad}"):
            Embedder(lanes=bad)
        with pytest.raises(ModelError, match=f"threads {bad}"):
            Embedder(threads=bad)


def test_settings_pass_the_lanes_to_the_bot_embedder() -> None:
    from bot import Settings
    from bot.core import Bot

    assert Bot(Settings()).embedder.lanes == 1
    two = Bot(Settings.from_env({"FAQBOT_ENCODE_LANES": "2", "FAQBOT_THREADS": "1"})).embedder
    assert (two.lanes, two.threads, two.batcher.lanes) == (2, 1, 2)


@pytest.mark.slow
def test_a_bulk_encode_split_across_lanes_equals_one_lane() -> None:
    """An index build's batches run in two threads at once on one-thread sessions: the same vectors, in
    the same order, as one lane encoding them one batch after another."""
    texts = [f"Case {i}: how often are eye exams needed{' and why' * (i % 7)}?" for i in range(50)]
    two = Embedder(lanes=2, threads=1).load()
    one = Embedder(lanes=1, threads=1).load()
    a, b = two.encode(texts, batch_size=8), one.encode(texts, batch_size=8)
    assert a.shape == (50, 384) and np.allclose(a, b, atol=1e-5)
    assert np.allclose(a[7], one.encode([texts[7]])[0], atol=1e-5)
