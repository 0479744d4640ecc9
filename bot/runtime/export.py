"""One-time export of the installed model to ONNX (fp32, opset 17), verified against torch.

Run by ``faqbot export-onnx`` (``scripts/install.sh`` does it after installing the package). Writes
``<cache>/<weights sha256[:16]>/model.onnx`` and ``export.json`` (sha256 of the file, the weights it came
from, the verification's figures), atomically: a file that fails verification is deleted, never used.

Verification: every given text (the corpus chunks, as the index embeds them, and the probe questions)
encoded by sentence-transformers (torch, float32) and by the ONNX file through the serving code path must
agree at cosine >= ``MIN_COSINE``, and every question's top-k chunks must be the same set.
Mean pooling and L2 normalisation are folded into the graph, written as sentence-transformers' Pooling
(mean over the attention mask, denominator clamped at 1e-9) and Normalize modules compute them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ModelError
from bot.runtime.files import ModelFiles, export_dir
from bot.runtime.onnx import (
    META_FILE,
    ONNX_FILE,
    OUTPUT,
    ExportInfo,
    OnnxEncoder,
    make_session,
    tokenizer_for,
)

OPSET = 17
MIN_COSINE = 0.9999
TOP_K = 10


def _libraries() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("torch", "transformers", "sentence-transformers", "onnxruntime", "tokenizers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _export_graph(files: ModelFiles, target: Path) -> None:
    import torch
    from transformers import AutoModel

    from bot.runtime.torch import offline

    offline()
    model = AutoModel.from_pretrained(str(files.path), attn_implementation="eager").float().eval()

    class MeanPooledNormalized(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            # BERT's classic additive mask (batch, 1, 1, seq), built here rather than by transformers'
            # masking utilities, whose traced form rests on trace-time shape checks (TracerWarning).
            embedded = self.inner.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            mask = attention_mask.unsqueeze(-1).to(embedded.dtype)
            additive = (1.0 - mask.transpose(1, 2).unsqueeze(1)) * torch.finfo(embedded.dtype).min
            hidden = self.inner.encoder(embedded, attention_mask=additive)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            counts = torch.clamp(mask.sum(dim=1), min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)

    tok = tokenizer_for(files)
    enc = tok.encode_batch(["a short probe", "a somewhat longer probe sentence for the dynamic axes"])
    args = tuple(
        torch.tensor([getattr(e, name) for e in enc], dtype=torch.int64)
        for name in ("ids", "attention_mask", "type_ids")
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad():
        torch.onnx.export(
            MeanPooledNormalized(model),
            args,
            str(target),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def verify(
    files: ModelFiles, onnx_file: Path, texts: list[str], queries: list[str], top_k: int = TOP_K
) -> dict[str, Any]:
    """Compare the ONNX file with sentence-transformers (torch, float32) on ``texts`` and ``queries``:
    the figures, and ``passed``."""
    from bot.runtime.torch import TorchEncoder

    reference = TorchEncoder.load(str(files.path), precision="float32")
    data = onnx_file.read_bytes()
    info = ExportInfo(
        hashlib.sha256(data).hexdigest(),
        files.weights_sha256,
        files.model_id,
        0,
        files.max_seq_length,
        OPSET,
        {},
        {},
        "",
    )
    session = make_session(data)
    dim = (
        int(session.get_outputs()[0].shape[-1]) if isinstance(session.get_outputs()[0].shape[-1], int) else 0
    )
    candidate = OnnxEncoder(session, tokenizer_for(files), info, onnx_file)
    candidate.dimension = dim or reference.dimension
    ref_t, onx_t = reference.encode(texts), candidate.encode(texts)
    ref_q, onx_q = reference.encode(queries), candidate.encode(queries)
    cos = np.concatenate([(ref_t * onx_t).sum(axis=1), (ref_q * onx_q).sum(axis=1)])
    k = min(top_k, len(texts))
    same = 0
    for rq, oq in zip(ref_q, onx_q, strict=True):
        a = set(np.argsort(-(ref_t @ rq), kind="stable")[:k].tolist())
        b = set(np.argsort(-(onx_t @ oq), kind="stable")[:k].tolist())
        same += a == b
    min_cos = float(cos.min()) if len(cos) else 0.0
    return {
        "texts": len(texts),
        "queries": len(queries),
        "min_cosine": round(min_cos, 6),
        "threshold": MIN_COSINE,
        "top_k": k,
        "same_top_k": same,
        "dimension": reference.dimension,
        "passed": bool(len(cos) and min_cos >= MIN_COSINE and same == len(queries)),
    }


def export(files: ModelFiles, cache: Path, texts: list[str], queries: list[str], force: bool = False) -> Path:
    """Export, verify and install the ONNX file for ``files``'s weights; return its path. An existing
    verified export is kept unless ``force``. ModelError if verification fails (nothing is installed)."""
    target = export_dir(cache, files.weights_sha256)
    if not force and (target / META_FILE).exists() and (target / ONNX_FILE).exists():
        try:
            OnnxEncoder.load(files, cache)
            return target / ONNX_FILE
        except ModelError:
            pass  # damaged or unverified: export again
    if not texts or not queries:
        raise ModelError("export needs texts and queries to verify the ONNX file against torch")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        _export_graph(files, tmp / ONNX_FILE)
        figures = verify(files, tmp / ONNX_FILE, texts, queries)
        if not figures["passed"]:
            raise ModelError(
                f"{tmp / ONNX_FILE}: the ONNX export does not match torch (min cosine {figures['min_cosine']}, "
                f"same top-{figures['top_k']} for {figures['same_top_k']}/{figures['queries']} questions); "
                "not installed"
            )
        info = ExportInfo(
            onnx_sha256=hashlib.sha256((tmp / ONNX_FILE).read_bytes()).hexdigest(),
            weights_sha256=files.weights_sha256,
            model=files.model_id,
            dimension=int(figures["dimension"]),
            max_seq_length=files.max_seq_length,
            opset=OPSET,
            verified=figures,
            libraries=_libraries(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        (tmp / META_FILE).write_text(
            json.dumps(asdict(info), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        tmp.chmod(0o755)
        old = target.with_name(f".{target.name}.old-{datetime.now(UTC).timestamp():.0f}")
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return target / ONNX_FILE
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


PROBES = (
    "How often are eye exams needed?",
    "What is the dose reduction for grade 3 skin toxicity?",
    "CPK above ten times the upper limit of normal with acute kidney injury",
    "When should treatment be permanently discontinued?",
    "What is the capital of France?",
)


def check_texts(settings: Any) -> tuple[list[str], list[str]]:
    """What an export is verified on: the corpus chunks as the index embeds them, and questions (the
    development set's if it is there, and a few fixed probes)."""
    from bot.chunking import chunk_documents
    from bot.corpus import load_corpus
    from bot.views import derive_views

    docs = load_corpus(settings.corpus_path, settings.root)
    chunks = chunk_documents(docs)
    texts = [c.embed_text() for c in chunks + derive_views(chunks)]  # as Bot.build embeds them
    queries = list(PROBES)
    dev = settings.root / "evals" / "dev.jsonl"
    if dev.is_file():
        for line in dev.read_text(encoding="utf-8").splitlines():
            try:
                q = json.loads(line).get("question")
            except (ValueError, AttributeError):
                continue
            if isinstance(q, str) and q.strip():
                queries.append(q)
    return texts, queries


def export_for(settings: Any, force: bool = False) -> Path:
    """``faqbot export-onnx``: the export for the configured model, verified on the configured corpus."""
    cache = settings.resolve(settings.model_cache) if str(settings.model_cache) not in ("", ".") else None
    from bot.runtime.files import default_cache

    cache = cache or default_cache()
    files = ModelFiles.of(settings.model, cache)
    texts, queries = check_texts(settings)
    return export(files, cache, texts, queries, force=force)
