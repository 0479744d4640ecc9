"""Loading a large index (issue 11): build a synthetic index of ``--n`` chunks (default 1M), then load it in
a fresh process and time the load, its memory and the hybrid query.

    .venv/bin/python benchmarks/large_index.py [--n 1000000] [--out benchmarks/results/large_index.json]

- Texts: the seed's own sentences, rows and paragraphs recombined and numbered ("… (item 17)"), so the
  vocabulary grows with n as a real corpus's would (1M distinct numbers).
- Vectors: **synthetic** — each a perturbed copy (noise 0.5/√d, renormalised) of one of 2,000 real
  embeddings of seed texts; queries are 100 real dev questions embedded by the bundled model (ONNX).
- Build: ``bot.index.write_index`` (IVF-Flat from ``ANN_THRESHOLD`` on), which also computes and stores the
  lexical tables, as ``faqbot build`` does.
- Load (a fresh interpreter, page cache warm from the build): ``bot.index.read_index`` (every file's
  sha256, the parsers, the vector check) + ``HybridSearcher`` on the stored tables; wall time and RSS
  (VmRSS after load and after the queries, VmHWM peak) from ``/proc/self/status``.
- Query: p50/p95 of the full hybrid search (k=5) over the 100 questions in the loaded process; then, after
  the memory figures, the same index and tables with the chunks as a tuple of Python objects (format 2's
  in-memory representation) beside it, interleaved question by question (3 rounds): "unchanged or better"
  compares those two p50s.
- Recall@10: the approximate (IVF) index's top 10 against exact inner-product search (``faiss.knn``,
  brute force over the same vectors), averaged over the 100 questions.

Needs ~2.5 GB of disk and ~6 GB of RAM at 1M (the build process holds the vectors and the Python chunks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, pct, retrieval_questions


def rss_mb() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def query_times(searcher: object, texts: list[str], vecs: np.ndarray) -> list[float]:
    searcher.search(texts[0], vecs[0], 5)  # type: ignore[attr-defined]
    times = []
    for text, vec in zip(texts, vecs, strict=True):
        t0 = time.perf_counter()
        searcher.search(text, vec, 5)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - t0) * 1000)
    return times


def load(directory: Path, queries: Path) -> dict[str, object]:
    """In a fresh process: read the index, make the searcher, run the queries."""
    t0 = time.perf_counter()
    from bot import index as ix
    from bot.retrieval import HybridSearcher

    import_s = time.perf_counter() - t0
    before = rss_mb()
    t0 = time.perf_counter()
    data = ix.read_index(directory)
    read_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    searcher = HybridSearcher(data.chunks, data.faiss_index, data.lexical)
    searcher.vocabulary.support("qzxwvk")  # as Bot.load does: the typo tables are built at load
    searcher_s = time.perf_counter() - t1
    loaded = rss_mb()
    with np.load(queries, allow_pickle=False) as npz:
        vecs = npz["vecs"]
        texts = [str(t) for t in npz["texts"]]
    times = query_times(searcher, texts, vecs)
    rss_queries = rss_mb()["VmRSS"]
    rss_peak = rss_mb()["VmHWM"]
    # Beside it, interleaved question by question in this process: the same index and tables with the
    # chunks as a tuple of Python objects (format 2's representation in memory) — the query baseline.
    objects = HybridSearcher(tuple(data.chunks), data.faiss_index, data.lexical)
    store_ms, object_ms = [], []
    for _ in range(3):
        for text, vec in zip(texts, vecs, strict=True):
            for s, out in ((searcher, store_ms), (objects, object_ms)):
                t0 = time.perf_counter()
                s.search(text, vec, 5)
                out.append((time.perf_counter() - t0) * 1000)
    del objects
    # the parts of read_index, measured apart afterwards (page cache warm)
    t0 = time.perf_counter()
    ix.verify_files(directory, data.manifest)
    hash_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ix.check_vectors(data.faiss_index, directory / ix.INDEX_FILE, True)
    vector_s = time.perf_counter() - t0
    return {
        "import_s": import_s,
        "read_index_s": read_s,
        "searcher_s": searcher_s,
        "load_s": read_s + searcher_s,
        "rss_before_mb": before["VmRSS"],
        "rss_after_load_mb": loaded["VmRSS"],
        "rss_after_queries_mb": rss_queries,
        "rss_peak_mb": rss_peak,
        "hybrid_interleaved_p50_ms": pct(store_ms, 50),
        "hybrid_interleaved_p50_ms_python_chunks": pct(object_ms, 50),
        "sha256_all_files_alone_s": hash_s,
        "vector_check_alone_s": vector_s,
        "hybrid_p50_ms": pct(times, 50),
        "hybrid_p95_ms": pct(times, 95),
        "lexical_from_store": data.lexical is not None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "large_index.json")
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)  # internal: the loading process
    parser.add_argument("--queries", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(args.load, args.queries)))
        return 0

    import faiss
    from scale import synthetic_chunks, synthetic_texts

    from bot import index as ix
    from bot.embedding import Embedder
    from bot.lexical import LexicalTables

    rng = np.random.default_rng(0)
    embedder = Embedder().load()
    qtexts = retrieval_questions()[:100]
    qvecs = embedder.encode(qtexts)
    seeds = embedder.encode(synthetic_texts(2000, rng))
    del embedder
    n, dim = args.n, seeds.shape[1]
    print(f"building {n:,} chunks (synthetic vectors around 2,000 real ones; real dev questions as queries)")
    t0 = time.perf_counter()
    texts = synthetic_texts(n, rng)
    chunks = synthetic_chunks(texts)
    del texts
    chunks_s = time.perf_counter() - t0
    vecs = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = seeds[rng.integers(0, len(seeds), stop - start)]
        block = block + 0.5 * rng.standard_normal(block.shape).astype(np.float32) / np.sqrt(dim)
        vecs[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    t0 = time.perf_counter()
    index, kind, params = ix.make_faiss_index(vecs)
    index_s = time.perf_counter() - t0
    _, truth = faiss.knn(qvecs, vecs, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, approx = index.search(qvecs, 10)
    recall = float(np.mean([len(set(truth[i]) & set(approx[i])) / 10 for i in range(len(qvecs))]))
    del vecs
    t0 = time.perf_counter()
    tables = LexicalTables.compute(chunks)
    lexical_s = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="faqbot-large-"))
    try:
        manifest = ix.Manifest("synthetic", dim, True, {}, "bench", n, kind, params)
        t0 = time.perf_counter()
        manifest = ix.write_index(tmp / "index", manifest, index, chunks, tables)
        write_s = time.perf_counter() - t0
        sizes = {name: (tmp / "index" / name).stat().st_size for name in manifest.files}
        del chunks, index, tables
        queries = tmp / "queries.npz"
        with queries.open("wb") as fh:
            np.savez(fh, vecs=qvecs, texts=np.array(qtexts, dtype=np.str_))
        proc = subprocess.run(
            [sys.executable, __file__, "--load", str(tmp / "index"), "--queries", str(queries)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "chunks": n,
        "vectors": "synthetic (perturbed copies of 2,000 real embeddings)",
        "index_type": kind,
        "index_params": params,
        "bytes": sizes,
        "build": {
            "chunks_s": chunks_s,
            "faiss_s": index_s,
            "lexical_tables_s": lexical_s,
            "write_s": write_s,
        },
        "load": loaded,
        "recall_at_10_vs_exact": recall,
    }
    print(f"index files: {', '.join(f'{k} {v / 1e6:.0f} MB' for k, v in sizes.items())}")
    print(f"build: lexical tables {lexical_s:.1f} s, faiss {index_s:.1f} s, write (+sha256) {write_s:.1f} s")
    print(
        f"load (fresh process): read_index {loaded['read_index_s']:.2f} s + searcher {loaded['searcher_s']:.2f} s "
        f"= {loaded['load_s']:.2f} s (target <= 10 s); alone: sha256 of all files "
        f"{loaded['sha256_all_files_alone_s']:.2f} s, vector check {loaded['vector_check_alone_s']:.2f} s"
    )
    print(
        f"RSS: {loaded['rss_after_load_mb']:.0f} MB after load, {loaded['rss_after_queries_mb']:.0f} MB after "
        f"queries, peak {loaded['rss_peak_mb']:.0f} MB (target <= 3 GB)"
    )
    print(
        f"hybrid query p50 {loaded['hybrid_p50_ms']:.2f} ms (p95 {loaded['hybrid_p95_ms']:.2f}); interleaved in "
        f"the loaded process: {loaded['hybrid_interleaved_p50_ms']:.2f} ms columnar vs "
        f"{loaded['hybrid_interleaved_p50_ms_python_chunks']:.2f} ms over Python chunk objects"
    )
    print(f"recall@10 of the IVF index vs exact search {recall:.3f} (target >= 0.95)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
