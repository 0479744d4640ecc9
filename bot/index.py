"""The persisted index: a directory of plain files, checked on load. No pickle anywhere.

``index/index.faiss``   vectors, written with ``faiss.write_index``
``index/chunks.npz``    chunk records as columns, in vector order (numbers; see :mod:`bot.chunkstore`)
``index/chunks.bin``    the chunks' text, context and table cells as one UTF-8 blob (memory-mapped)
``index/lexical.npz``   bm25s's score matrix and vocabulary and the per-chunk flags search uses, with
                        the fingerprint of the code that computed them (see :mod:`bot.lexical`)
``index/manifest.json`` model id and the sha256 of its weights, dimension, normalised, sha256 of each
                        corpus file, chunker version, index type and parameters, the sha256 of every
                        other file of the index (verified on every load), the runtime that encoded (for
                        information), library versions, created

Nothing of the index is a Python object per chunk: a million chunks load as a few arrays (format 3; format
2 kept one JSON line per chunk and rebuilt BM25 on every load).

Integrity on load: every file's full sha256 is checked before ``read_index`` returns, so a damaged file
never answers. The hashes run in background threads (hashlib releases the GIL) while the numpy files are
parsed; ``index.faiss`` is handed to faiss only once its hash has matched. ``faqbot index verify`` runs
the same checks on demand and prints what it found.

Staleness is decided by the model's weights, the dimension, the chunker version and the corpus, never by
the runtime or precision that produced the vectors (ONNX float32, torch float32 or bfloat16 agree at
cosine >= 0.9999): the committed index is valid on every CPU. Loading also refuses non-finite or
non-normalised vectors (a damaged index.faiss with an intact header).

A build writes into a temporary sibling directory and swaps it in with renames, so an interrupted build
leaves the previous index intact.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.chunking import CHUNKER_VERSION
from bot.chunkstore import COLUMNS_FILE, TEXT_FILE, ChunkStore, as_store
from bot.errors import IndexCorruptError, IndexMissingError, StaleIndexError
from bot.lexical import LEXICAL_FILE, LexicalTables
from bot.records import Chunk, Document
from bot.runtime.files import sha256_file

FORMAT_VERSION = 3
INDEX_FILE = "index.faiss"
CHUNKS_FILE = COLUMNS_FILE  # chunks.npz
MANIFEST_FILE = "manifest.json"
INDEX_FILES = (INDEX_FILE, COLUMNS_FILE, TEXT_FILE, LEXICAL_FILE)
# From this many vectors on, the index is approximate (IVF-Flat, inner product); below it, exact.
# IVF over HNSW: at 1M vectors it builds in ~15 s instead of >10 min on 2 cores, at recall@10 >= 0.99
# (benchmarks/scale.py).
ANN_THRESHOLD = 100_000
IVF_NPROBE = 32
IVF_TRAIN_PER_LIST = 40
HASH_THREADS = 2  # files hashed at once on load (the machines this runs on have 2 cores)


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
    model_sha256: str = ""  # the weights the vectors come from: the model's identity for staleness
    runtime: str = ""  # what encoded, e.g. 'onnxruntime 1.23.2 float32' (information only)
    files: dict[str, str] = field(default_factory=dict)  # index file → sha256

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
                model_sha256=str(d.get("model_sha256", "")),
                runtime=str(d.get("runtime", "")),
                files={str(k): str(v) for k, v in dict(d.get("files", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"manifest.json: missing or invalid field ({exc})") from exc


@dataclass(frozen=True)
class IndexData:
    """A loaded index: manifest, FAISS index, the chunks in vector order (columnar) and the stored lexical
    tables (None: compute them from the chunks)."""

    manifest: Manifest
    faiss_index: Any
    chunks: ChunkStore
    lexical: LexicalTables | None = None


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("faiss-cpu", "onnxruntime", "sentence-transformers", "torch", "bm25s", "langchain-core"):
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
    directory: Path,
    manifest: Manifest,
    faiss_index: Any,
    chunks: Sequence[Chunk],
    lexical: LexicalTables | None = None,
) -> Manifest:
    """Write the files into a temporary sibling, the manifest last with their sha256, then swap it in
    with renames. ``lexical``: the chunks' lexical tables (computed here when not given)."""
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    store = as_store(chunks)
    tables = lexical if lexical is not None else LexicalTables.compute(store)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        tmp.chmod(0o755)
        faiss.write_index(faiss_index, str(tmp / INDEX_FILE))
        store.write(tmp)
        tables.write(tmp)
        hashes = hash_files(tmp, INDEX_FILES)
        manifest = replace(manifest, files=hashes)
        (tmp / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
        old = directory.with_name(f".{directory.name}.old-{time.time_ns()}")
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
        return manifest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def hash_files(directory: Path, names: Sequence[str]) -> dict[str, str]:
    """sha256 of each file, streamed, in parallel threads (hashlib releases the GIL), largest first."""
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        futures = {n: pool.submit(sha256_file, directory / n) for n in _largest_first(directory, names)}
        return {n: futures[n].result() for n in names}


def _largest_first(directory: Path, names: Sequence[str]) -> list[str]:
    def size(n: str) -> int:
        try:
            return (directory / n).stat().st_size
        except OSError:
            return 0

    return sorted(names, key=size, reverse=True)


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
    """Load and cross-check the files; raise IndexMissingError / IndexCorruptError naming the file.

    Every file's sha256 is checked (in background threads) before this returns; ``index.faiss`` is read by
    faiss only after its own hash matched."""
    manifest = read_manifest(directory)
    for name in INDEX_FILES:
        if not (directory / name).exists():
            raise IndexMissingError(f"{directory / name} is missing; run `faqbot build`")
    names = _checked_names(directory, manifest)
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        futures = {n: pool.submit(sha256_file, directory / n) for n in _largest_first(directory, names)}

        def verified(name: str) -> None:
            actual = futures[name].result()
            expected = manifest.files[name]
            if actual != expected:
                raise IndexCorruptError(
                    f"{directory / name}: sha256 {actual[:16]}… does not match the manifest's {expected[:16]}… "
                    "(damaged or edited); run `faqbot build`"
                )

        try:
            chunks = ChunkStore.read(directory)
            lexical = LexicalTables.read(directory, len(chunks))
        except IndexCorruptError:
            for name in names:  # a damaged file is named by its checksum first
                verified(name)
            raise
        verified(INDEX_FILE)
        try:
            faiss_index = faiss.read_index(str(directory / INDEX_FILE))
        except RuntimeError as exc:
            raise IndexCorruptError(
                f"{directory / INDEX_FILE}: cannot be read by faiss; run `faqbot build`"
            ) from exc
        for name in names:
            verified(name)
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
    check_vectors(faiss_index, directory / INDEX_FILE, manifest.normalized)
    return IndexData(manifest, _prepare(faiss_index, manifest), chunks, lexical)


def _checked_names(directory: Path, manifest: Manifest) -> list[str]:
    for name in INDEX_FILES:
        if name not in manifest.files:
            raise IndexCorruptError(
                f"{directory / MANIFEST_FILE}: no checksum for {name}; run `faqbot build`"
            )
    for name in manifest.files:
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise IndexCorruptError(f"{path}: listed in the manifest but missing; run `faqbot build`")
    return sorted(manifest.files)


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Every index file's sha256 (streamed, in parallel) against the manifest; IndexCorruptError naming
    the file."""
    names = _checked_names(directory, manifest)
    actual = hash_files(directory, names)
    for name in names:
        if actual[name] != manifest.files[name]:
            raise IndexCorruptError(
                f"{directory / name}: sha256 {actual[name][:16]}… does not match the manifest's "
                f"{manifest.files[name][:16]}… (damaged or edited); run `faqbot build`"
            )


VECTOR_BLOCK = 65_536


def check_vectors(faiss_index: Any, path: Path, normalized: bool) -> None:
    """Refuse NaN/infinite vectors, and vectors off unit length when the manifest says normalised.

    Reads the vectors where faiss keeps them (the flat array, or each inverted list of an IVF-Flat index),
    without copying, in blocks: constant extra memory whatever the index size."""
    if not getattr(faiss_index, "is_trained", True):
        raise IndexCorruptError(f"{path}: the index is not trained; run `faqbot build`")
    for rows, block in _vector_blocks(faiss_index):
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = int(rows[int(np.flatnonzero(~finite)[0])])
            raise IndexCorruptError(f"{path}: vector {row} is not finite (NaN or inf); run `faqbot build`")
        if normalized:
            norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
            bad = np.flatnonzero(np.abs(norms - 1.0) > 1e-3)
            if len(bad):
                row = int(rows[int(bad[0])])
                raise IndexCorruptError(
                    f"{path}: vector {row} has length {norms[bad[0]]:.4f}, not 1 as the manifest says; "
                    "run `faqbot build`"
                )


def _vector_blocks(faiss_index: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row numbers, float32 vectors) in blocks of at most VECTOR_BLOCK, viewed in place where faiss
    allows it (flat and IVF-Flat indexes), else reconstructed."""
    n, d = int(faiss_index.ntotal), int(faiss_index.d)
    if isinstance(faiss_index, faiss.IndexFlat) and n:
        xb = faiss.rev_swig_ptr(faiss_index.get_xb(), n * d).reshape(n, d)
        for start in range(0, n, VECTOR_BLOCK):
            stop = min(n, start + VECTOR_BLOCK)
            yield np.arange(start, stop), xb[start:stop]
        return
    if isinstance(faiss_index, faiss.IndexIVFFlat):
        invlists = faiss_index.invlists
        if invlists is None:
            raise IndexCorruptError("the IVF index has no inverted lists; run `faqbot build`")
        for lst in range(faiss_index.nlist):
            size = int(invlists.list_size(lst))
            if not size:
                continue
            codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * d * 4)
            ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size)
            vecs = np.frombuffer(codes, dtype=np.float32).reshape(size, d)
            for start in range(0, size, VECTOR_BLOCK):
                yield ids[start : start + VECTOR_BLOCK], vecs[start : start + VECTOR_BLOCK]
        return
    if isinstance(faiss_index, faiss.IndexIVF):
        faiss_index.make_direct_map()
    for start in range(0, n, VECTOR_BLOCK):
        stop = min(n, start + VECTOR_BLOCK)
        yield np.arange(start, stop), faiss_index.reconstruct_n(start, stop - start)


def stale_reasons(
    manifest: Manifest, docs: list[Document], model_id: str | None, model_sha256: str | None = None
) -> list[str]:
    """Why an index no longer matches the corpus/model/chunker (empty list: fresh).

    With ``model_sha256`` the model is compared by its weights (and by the int8 mark, the one variant
    whose vectors differ), not by the id's text or the runtime; without it, by id."""
    reasons = []
    current = {d.source: d.sha256 for d in docs}
    if manifest.corpus != current:
        changed = sorted(
            s for s in set(current) | set(manifest.corpus) if current.get(s) != manifest.corpus.get(s)
        )
        reasons.append(f"corpus changed: {', '.join(changed)}")
    if model_sha256 is not None:
        if manifest.model_sha256 != model_sha256:
            reasons.append(
                f"model weights changed: index has {manifest.model_sha256[:16] or 'none'}, "
                f"the model's are {model_sha256[:16]}"
            )
        elif model_id is not None and _int8(manifest.model) != _int8(model_id):
            reasons.append(f"model changed: index has {manifest.model!r}, settings ask for {model_id!r}")
    elif model_id is not None and manifest.model != model_id:
        reasons.append(f"model changed: index has {manifest.model!r}, settings ask for {model_id!r}")
    if manifest.chunker_version != CHUNKER_VERSION:
        reasons.append(f"chunker changed: index has v{manifest.chunker_version}, code is v{CHUNKER_VERSION}")
    return reasons


def _int8(model_id: str) -> bool:
    return model_id.endswith("+int8-dynamic")


def build(
    docs: list[Document],
    chunks: Sequence[Chunk],
    encode: Callable[[list[str]], np.ndarray],
    model_id: str,
    directory: Path,
    ann_threshold: int = ANN_THRESHOLD,
    model_sha256: str = "",
    runtime: str = "",
) -> IndexData:
    """Embed ``chunks`` (context + text) with ``encode`` and persist the index atomically."""
    vectors = encode([c.embed_text() for c in chunks])
    if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
        raise ValueError(f"encoder returned shape {vectors.shape} for {len(chunks)} chunks")
    if not np.isfinite(vectors).all():
        raise ValueError("encoder returned non-finite vectors; nothing written")
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.ones(0)
    if (np.abs(norms - 1.0) > 1e-3).any():
        raise ValueError("encoder returned vectors that are not unit length; nothing written")
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
        model_sha256=model_sha256,
        runtime=runtime,
    )
    store = as_store(chunks)
    lexical = LexicalTables.compute(store)
    manifest = write_index(directory, manifest, faiss_index, store, lexical)
    return IndexData(manifest, faiss_index, store, lexical)
