"""The persisted index: a directory of plain files, checked on load. No pickle anywhere.

``index/index.faiss``  vectors, written with ``faiss.write_index``
``index/chunks.jsonl`` one chunk record per line, in vector order
``index/manifest.json`` model id, dimension, normalised, sha256 of each corpus file, chunker version,
                        index type and parameters, library versions, created

A build writes into a temporary sibling directory and swaps it in with renames, so an interrupted build
leaves the previous index intact.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.chunking import CHUNKER_VERSION
from bot.errors import IndexCorruptError, IndexMissingError, StaleIndexError
from bot.records import Chunk, Document

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
MANIFEST_FILE = "manifest.json"
# From this many vectors on, the index is approximate (IVF-Flat, inner product); below it, exact.
# IVF over HNSW: at 1M vectors it builds in ~15 s instead of >10 min on 2 cores, at recall@10 >= 0.99
# (benchmarks/scale.py).
ANN_THRESHOLD = 100_000
IVF_NPROBE = 32
IVF_TRAIN_PER_LIST = 40


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    normalized: bool
    corpus: dict[str, str]  # source → sha256
    chunker_version: str
    count: int
    index_type: str = "flat_ip"
    index_params: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    created: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            return cls(
                model=str(d["model"]),
                dimension=int(d["dimension"]),
                normalized=bool(d["normalized"]),
                corpus={str(k): str(v) for k, v in dict(d["corpus"]).items()},
                chunker_version=str(d["chunker_version"]),
                count=int(d["count"]),
                index_type=str(d.get("index_type", "flat_ip")),
                index_params=dict(d.get("index_params", {})),
                libraries=dict(d.get("libraries", {})),
                created=str(d.get("created", "")),
                format_version=int(d.get("format_version", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"manifest.json: missing or invalid field ({exc})") from exc


@dataclass(frozen=True)
class IndexData:
    """A loaded index: manifest, FAISS index and the chunks in vector order."""

    manifest: Manifest
    faiss_index: Any
    chunks: tuple[Chunk, ...]


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("faiss-cpu", "sentence-transformers", "torch", "bm25s", "langchain-core"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def make_faiss_index(
    vectors: np.ndarray, ann_threshold: int = ANN_THRESHOLD
) -> tuple[Any, str, dict[str, Any]]:
    """Exact inner product below ``ann_threshold`` vectors; IVF-Flat (inner product, ~sqrt(n) lists,
    k-means trained on a fixed-seed sample) at or above it. Returns (index, type, parameters)."""
    n, dim = vectors.shape
    if n < ann_threshold:
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        return flat, "flat_ip", {}
    nlist = int(min(4096, max(16, round(n**0.5))))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(n, min(n, IVF_TRAIN_PER_LIST * nlist), replace=False)]
    ivf.train(np.ascontiguousarray(sample))
    ivf.add(vectors)
    ivf.nprobe = min(IVF_NPROBE, nlist)
    ivf.make_direct_map()
    return ivf, "ivf_flat_ip", {"nlist": nlist, "nprobe": int(ivf.nprobe), "train_sample": len(sample)}


def _prepare(faiss_index: Any, manifest: Manifest) -> Any:
    """Search-time settings a loaded approximate index needs (from the manifest)."""
    if manifest.index_type == "ivf_flat_ip":
        ivf = faiss.extract_index_ivf(faiss_index)
        ivf.nprobe = int(manifest.index_params.get("nprobe", IVF_NPROBE))
        ivf.make_direct_map()
    return faiss_index


def write_index(
    directory: Path, manifest: Manifest, faiss_index: Any, chunks: list[Chunk] | tuple[Chunk, ...]
) -> None:
    """Write the three files into a temporary sibling, then swap it in with renames."""
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        tmp.chmod(0o755)
        faiss.write_index(faiss_index, str(tmp / INDEX_FILE))
        with (tmp / CHUNKS_FILE).open("w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        (tmp / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
        old = directory.with_name(f".{directory.name}.old-{time.time_ns()}")
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_FILE
    if not path.exists():
        raise IndexMissingError(f"no index at {directory} (missing {MANIFEST_FILE}); run `faqbot build`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{path}: unreadable ({exc}); run `faqbot build`") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{path}: not a JSON object; run `faqbot build`")
    manifest = Manifest.from_dict(data)
    if manifest.format_version != FORMAT_VERSION:
        raise StaleIndexError(
            f"{path}: index format {manifest.format_version}, this faqbot reads {FORMAT_VERSION}; run `faqbot build`"
        )
    return manifest


def read_index(directory: Path) -> IndexData:
    """Load and cross-check the three files; raise IndexMissingError / IndexCorruptError naming the file."""
    manifest = read_manifest(directory)
    for name in (INDEX_FILE, CHUNKS_FILE):
        if not (directory / name).exists():
            raise IndexMissingError(f"{directory / name} is missing; run `faqbot build`")
    try:
        faiss_index = faiss.read_index(str(directory / INDEX_FILE))
    except RuntimeError as exc:
        raise IndexCorruptError(
            f"{directory / INDEX_FILE}: cannot be read by faiss; run `faqbot build`"
        ) from exc
    chunks: list[Chunk] = []
    path = directory / CHUNKS_FILE
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    chunks.append(Chunk.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise IndexCorruptError(
                        f"{path}:{lineno}: bad chunk record ({exc}); run `faqbot build`"
                    ) from exc
    except UnicodeDecodeError as exc:
        raise IndexCorruptError(f"{path}: not UTF-8; run `faqbot build`") from exc
    if faiss_index.ntotal != len(chunks) or manifest.count != len(chunks):
        raise IndexCorruptError(
            f"{directory}: {faiss_index.ntotal} vectors, {len(chunks)} chunks, manifest says {manifest.count}; "
            "run `faqbot build`"
        )
    if faiss_index.d != manifest.dimension:
        raise IndexCorruptError(
            f"{directory / INDEX_FILE}: dimension {faiss_index.d}, manifest says {manifest.dimension}; "
            "run `faqbot build`"
        )
    return IndexData(manifest, _prepare(faiss_index, manifest), tuple(chunks))


def stale_reasons(manifest: Manifest, docs: list[Document], model_id: str | None) -> list[str]:
    """Why an index no longer matches the corpus/model/chunker (empty list: fresh)."""
    reasons = []
    current = {d.source: d.sha256 for d in docs}
    if manifest.corpus != current:
        changed = sorted(
            s for s in set(current) | set(manifest.corpus) if current.get(s) != manifest.corpus.get(s)
        )
        reasons.append(f"corpus changed: {', '.join(changed)}")
    if model_id is not None and manifest.model != model_id:
        reasons.append(f"model changed: index has {manifest.model!r}, settings ask for {model_id!r}")
    if manifest.chunker_version != CHUNKER_VERSION:
        reasons.append(f"chunker changed: index has v{manifest.chunker_version}, code is v{CHUNKER_VERSION}")
    return reasons


def build(
    docs: list[Document],
    chunks: list[Chunk],
    encode: Callable[[list[str]], np.ndarray],
    model_id: str,
    directory: Path,
    ann_threshold: int = ANN_THRESHOLD,
) -> IndexData:
    """Embed ``chunks`` (context + text) with ``encode`` and persist the index atomically."""
    vectors = encode([c.embed_text() for c in chunks])
    if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
        raise ValueError(f"encoder returned shape {vectors.shape} for {len(chunks)} chunks")
    faiss_index, kind, params = make_faiss_index(vectors, ann_threshold)
    manifest = Manifest(
        model=model_id,
        dimension=int(vectors.shape[1]),
        normalized=True,
        corpus={d.source: d.sha256 for d in docs},
        chunker_version=CHUNKER_VERSION,
        count=len(chunks),
        index_type=kind,
        index_params=params,
        libraries=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_index(directory, manifest, faiss_index, chunks)
    return IndexData(manifest, faiss_index, tuple(chunks))
