"""The default query runtime: the bundled model exported to ONNX (fp32), run by ONNX Runtime, tokenized
by ``tokenizers`` from the model's own tokenizer.json. Imports neither torch, transformers nor
sentence-transformers.

The export (``bot.runtime.export``) folds mean pooling and L2 normalisation into the graph, exactly as
sentence-transformers does them; it was checked against torch on the corpus at export time. Loading
refuses a file whose sha256 is not the one recorded at that check, naming the file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ModelError
from bot.runtime.files import ModelFiles, export_dir

ONNX_FILE = "model.onnx"
META_FILE = "export.json"
OUTPUT = "sentence_embedding"


def default_threads() -> int:
    """Intra-op threads: the cores there are, at most 2 (measured best on the 2-core machines here;
    more threads than cores contend when another process is busy)."""
    return max(1, min(2, os.cpu_count() or 1))


def clean_text(text: str) -> str:
    """Text the tokenizer accepts: lone surrogates (not encodable as UTF-8) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


@dataclass(frozen=True)
class ExportInfo:
    """What ``export.json`` records beside ``model.onnx``."""

    onnx_sha256: str
    weights_sha256: str
    model: str
    dimension: int
    max_seq_length: int
    opset: int
    verified: dict[str, Any]
    libraries: dict[str, str]
    created: str

    @classmethod
    def read(cls, path: Path) -> ExportInfo:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                onnx_sha256=str(d["onnx_sha256"]),
                weights_sha256=str(d["weights_sha256"]),
                model=str(d["model"]),
                dimension=int(d["dimension"]),
                max_seq_length=int(d["max_seq_length"]),
                opset=int(d["opset"]),
                verified=dict(d["verified"]),
                libraries=dict(d.get("libraries", {})),
                created=str(d.get("created", "")),
            )
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: unreadable export record ({exc}); run `faqbot export-onnx`") from exc


def tokenizer_for(files: ModelFiles) -> Any:
    """The model's fast tokenizer, set up as sentence-transformers calls it: truncation at the model's
    max_seq_length, padding to the longest text of a batch."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(files.path / "tokenizer.json"))
    tok.no_truncation()
    tok.enable_truncation(max_length=files.max_seq_length, strategy="longest_first")
    pad_token = "[PAD]"
    try:
        cfg = json.loads((files.path / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad_token = str(cfg.get("pad_token") or pad_token)
    except (OSError, ValueError):
        pass
    pad_id = tok.token_to_id(pad_token)
    tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)
    return tok


class OnnxEncoder:
    """Encodes with an ONNX Runtime session. ``encode`` is thread-safe (ORT sessions are)."""

    name = "onnxruntime"

    def __init__(self, session: Any, tokenizer: Any, info: ExportInfo, path: Path) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.info = info
        self.path = path
        self.dimension = info.dimension
        self.inputs = {i.name for i in session.get_inputs()}
        sep = tokenizer.token_to_id("[SEP]")
        self.sep_id = int(sep if sep is not None else 102)
        self.description = f"onnxruntime {_version('onnxruntime')} float32"
        self.run_options = run_options()

    @classmethod
    def load(cls, files: ModelFiles, cache: Path, threads: int = 0) -> OnnxEncoder:
        """The verified export of ``files``'s weights from ``cache``; ModelError naming the file if it is
        missing, not verified, or not the file that was verified (sha256)."""
        directory = export_dir(cache, files.weights_sha256)
        onnx_path, meta_path = directory / ONNX_FILE, directory / META_FILE
        hint = "run `faqbot export-onnx` (scripts/install.sh does it) or set FAQBOT_RUNTIME=torch"
        try:
            info = ExportInfo.read(meta_path)
        except FileNotFoundError:
            raise ModelError(f"{onnx_path}: no verified ONNX export of this model; {hint}") from None
        if info.weights_sha256 != files.weights_sha256:
            raise ModelError(f"{meta_path}: exported from other weights than {files.weights}; {hint}")
        if not info.verified.get("passed"):
            raise ModelError(f"{onnx_path}: failed verification against torch at export; {hint}")
        try:
            data = onnx_path.read_bytes()  # hashed and loaded from the same bytes: no swap in between
        except OSError as exc:
            raise ModelError(f"{onnx_path}: cannot be read ({exc}); {hint}") from exc
        import hashlib

        actual = hashlib.sha256(data).hexdigest()
        if actual != info.onnx_sha256:
            raise ModelError(
                f"{onnx_path}: sha256 {actual[:16]}… is not the verified export's {info.onnx_sha256[:16]}…; "
                f"refusing it; {hint}"
            )
        session = make_session(data, threads)
        del data
        return cls(session, tokenizer_for(files), info, onnx_path)

    def encode(
        self, texts: list[str], batch_size: int = 32, *, max_tokens: int = 0, workers: int = 1
    ) -> np.ndarray:
        """Normalised float32 vectors; texts are sorted by length into batches (less padding).
        ``max_tokens`` > 0 embeds each text from its first ``max_tokens`` tokens only ([CLS] and [SEP]
        included), as the tokenizer's truncation at the model's limit does, only sooner. ``workers`` > 1:
        the batches run in that many threads at once (the session is thread-safe; each writes its own
        rows), for a session with fewer intra-op threads than cores."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = max(1, batch_size)
        batches = [order[start : start + step] for start in range(0, len(order), step)]

        def run(rows: list[int]) -> None:
            out[rows] = self._run([clean_text(texts[i]).strip() for i in rows], max_tokens)

        if workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(workers, len(batches))) as pool:
                list(pool.map(run, batches))  # re-raises the first failure
        else:
            for rows in batches:
                run(rows)
        return out

    def _run(self, texts: list[str], max_tokens: int = 0) -> np.ndarray:
        encodings = tokenize_capped(self.tokenizer, texts, max_tokens)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = truncate_feeds(feeds, max_tokens, self.sep_id)
        (vecs,) = self.session.run(
            [OUTPUT], {k: v for k, v in feeds.items() if k in self.inputs}, self.run_options
        )
        return np.asarray(vecs, dtype=np.float32)


_GAP_RE = re.compile(r"[ \t\n\r]+")  # the spaces every tokenizer splits words at


def head_words(text: str, words: int) -> str:
    """``text`` up to the space after its first ``words`` words (all of it when it has no more)."""
    k = 0
    for m in _GAP_RE.finditer(text):
        if m.start() > 0:
            k += 1
            if k >= words:
                return text[: m.start()]
    return text


def tokenize_capped(tokenizer: Any, texts: list[str], max_tokens: int) -> list[Any]:
    """The tokenizer's encodings of ``texts``; with ``max_tokens``, a long text is tokenized from its first
    ``max_tokens`` words only (issue 9: a 2000-character question is not tokenized to the end to keep
    128 tokens of it). Exact: the words before a space tokenize the same whatever follows, and each word
    gives at least one token, unless it is made only of characters the tokenizer drops; so a head that
    gives fewer than ``max_tokens`` tokens is tokenized in full instead."""
    if max_tokens < 3:  # truncate_feeds cuts nothing below 3 tokens
        return list(tokenizer.encode_batch(texts))
    heads = [head_words(t, max_tokens) for t in texts]
    encodings = list(tokenizer.encode_batch(heads))
    short = {
        i
        for i, e in enumerate(encodings)
        if len(heads[i]) < len(texts[i]) and sum(e.attention_mask) < max_tokens
    }
    if short:
        again = tokenizer.encode_batch([texts[i] if i in short else heads[i] for i in range(len(texts))])
        encodings = list(again)  # re-encoded together: padded to one length again
    return encodings


def truncate_feeds(feeds: dict[str, np.ndarray], max_tokens: int, sep_id: int) -> dict[str, np.ndarray]:
    """The padded batch cut to ``max_tokens`` columns, each cut row ending in [SEP] again: exactly the
    tokenizer's own truncation of a single text at ``max_tokens`` ([CLS] + its first max_tokens - 2 tokens
    + [SEP]). Rows that fit are unchanged (padding only shrinks)."""
    ids, mask = feeds["input_ids"], feeds["attention_mask"]
    if max_tokens < 3 or ids.shape[1] <= max_tokens:
        return feeds
    cut = {k: np.ascontiguousarray(v[:, :max_tokens]) for k, v in feeds.items()}
    long_rows = mask.sum(axis=1) > max_tokens
    cut["input_ids"][long_rows, max_tokens - 1] = sep_id
    return cut


def make_session(model: bytes | str, threads: int = 0) -> Any:
    """An ORT CPU session with deliberate threading: ``threads`` intra-op threads (0: up to 2), one
    inter-op thread, sequential execution, and no spin-waiting (spinning threads burn the cores another
    process on a shared 2-core machine needs, and the latency collapses under contention)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError("onnxruntime is not installed (pip install onnxruntime)") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads if threads > 0 else default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for invalid graphs
        raise ModelError(f"onnxruntime cannot load the model: {exc}") from exc
    # Issue 11 (server RSS): ORT's Python wrapper keeps the model bytes it was given for the whole life of
    # the session (its own "TODO: … holding the memory indefinitely"), only to re-create the session on a
    # provider fallback, which a CPU-only session never does: 90 MB released.
    if isinstance(getattr(session, "_model_bytes", None), bytes):
        session._model_bytes = None
    return session


def run_options() -> Any:
    """Per-run options: the CPU arena gives back what a run allocated beyond what it holds between runs
    (``memory.enable_memory_arena_shrinkage``), so one batch of long questions does not keep its peak
    (~50-100 MB) for the life of the server; measured without a visible cost in encode latency."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"
