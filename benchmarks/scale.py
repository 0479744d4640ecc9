"""How cost grows with the corpus: 10k, 100k and 1M chunks.

    .venv/bin/python benchmarks/scale.py [--sizes 10000 100000 1000000] [--out benchmarks/results/scale.json]

- Embedding throughput on real text: chunks made from the seed's own sentences and rows (recombined),
  encoded by the bundled model in batches — the figure that bounds a real build (target >= 300 chunks/s).
- 10k: the real pipeline — embed every chunk, build the FAISS index, write the index directory.
- 100k and 1M: vectors are synthetic (each a perturbed copy of one of the 10k real vectors, renormalised),
  texts are recombined seed sentences; the index type switches to IVF-Flat at ``ANN_THRESHOLD``.
- For each size: build throughput (chunks/s), index size on disk, query p50 of the full hybrid search
  (dense + BM25 + fusion) and of the FAISS search alone, with real dev questions as queries; for the
  approximate index, recall@10 against exact search on the same vectors (target >= 0.95, p50 <= 20 ms).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from common import ROOT, pct, retrieval_questions

if TYPE_CHECKING:
    from bot.records import Chunk


def seed_units() -> list[str]:
    from bot.chunking import chunk_documents
    from bot.corpus import load_corpus

    chunks = chunk_documents(load_corpus(ROOT / "corpus", ROOT))
    return [c.text for c in chunks if c.kind in ("sentence", "table_row", "paragraph", "list_item")]


def synthetic_texts(n: int, rng: np.random.Generator) -> list[str]:
    """Chunks the size of the seed's own (a sentence, row or paragraph each), numbered to be distinct."""
    units = seed_units()
    picks = rng.integers(0, len(units), size=n)
    return [f"{units[a]} (item {i})" for i, a in enumerate(picks)]


def synthetic_chunks(texts: list[str]) -> list[Chunk]:
    """One paragraph chunk per text of a synthetic corpus file, at consecutive offsets."""
    from bot.chunking import chunk_id
    from bot.records import Chunk

    source = "corpus/synthetic.md"
    return [
        Chunk(chunk_id(source, i, i + len(t), t), source, i, i + len(t), t, "Synthetic", "paragraph")
        for i, t in enumerate(texts)
    ]


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()

    from bot import index as ix
    from bot.embedding import Embedder
    from bot.lexical import LexicalTables
    from bot.retrieval import HybridSearcher

    rng = np.random.default_rng(0)
    embedder = Embedder().load()
    qtexts = retrieval_questions()[:100]
    qvecs = embedder.encode(qtexts)

    real_n = min(args.sizes)
    texts = synthetic_texts(real_n, rng)
    embedder.encode(texts[:64])  # warm-up
    t0 = time.perf_counter()
    real_vecs = embedder.encode(texts)  # the build's own batch size (32)
    embed_s = time.perf_counter() - t0
    embed_rate = real_n / embed_s
    print(f"embedding throughput: {embed_rate:.0f} chunks/s on {real_n} real-text chunks (target >= 300)")
    int8 = Embedder(quantize=True).load()
    int8.encode(texts[:64])
    t0 = time.perf_counter()
    int8.encode(texts[:2000])
    int8_rate = 2000 / (time.perf_counter() - t0)
    print(f"embedding throughput, int8 (FAQBOT_QUANTIZE=1): {int8_rate:.0f} chunks/s")
    del int8
    results: dict[str, object] = {
        "embed_chunks_per_s": embed_rate,
        "embed_chunks_per_s_int8": int8_rate,
        "embed_chunks": real_n,
        "sizes": [],
    }

    for n in args.sizes:
        print(f"\n== {n:,} chunks")
        t_text = time.perf_counter()
        sizes_texts = texts if n == real_n else synthetic_texts(n, rng)
        chunks = synthetic_chunks(sizes_texts)
        t_text = time.perf_counter() - t_text
        if n == real_n:
            vecs = real_vecs
            vec_note = "real embeddings"
            embed_time = embed_s
        else:
            base = real_vecs[rng.integers(0, real_n, n)]
            noise = rng.standard_normal((n, real_vecs.shape[1])).astype(np.float32) / np.sqrt(
                real_vecs.shape[1]
            )
            vecs = base + 0.5 * noise
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            vec_note = "synthetic vectors (perturbed real ones)"
            embed_time = n / embed_rate  # what embedding this many real chunks would take
        t0 = time.perf_counter()
        index, kind, params = ix.make_faiss_index(np.ascontiguousarray(vecs, dtype=np.float32))
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tables = LexicalTables.compute(
            chunks
        )  # BM25 and the per-chunk flags (stored in the index since format 3)
        lexical_s = time.perf_counter() - t0
        tmp = Path(tempfile.mkdtemp(prefix="faqbot-scale-"))
        try:
            manifest = ix.Manifest("scale", vecs.shape[1], True, {}, "bench", n, kind, params)
            t0 = time.perf_counter()
            ix.write_index(tmp / "index", manifest, index, chunks, tables)
            write_s = time.perf_counter() - t0
            size = dir_size(tmp / "index")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        searcher = HybridSearcher(chunks, index, tables)

        searcher.search(qtexts[0], qvecs[0], 5)  # warm-up: first call allocates
        dense_ms, hybrid_ms = [], []
        for text, vec in zip(qtexts, qvecs, strict=True):
            q = vec.reshape(1, -1)
            t0 = time.perf_counter()
            index.search(q, 10)
            dense_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            searcher.search(text, vec, 5)
            hybrid_ms.append((time.perf_counter() - t0) * 1000)
        row: dict[str, object] = {
            "chunks": n,
            "vectors": vec_note,
            "index_type": kind,
            "index_params": params,
            "index_build_s": index_s,
            "write_s": write_s,
            "lexical_build_s": lexical_s,
            "build_chunks_per_s_index_only": n / (index_s + write_s),
            "build_chunks_per_s_with_embedding": n / (embed_time + index_s + write_s + t_text),
            "index_bytes": size,
            "faiss_query_p50_ms": pct(dense_ms, 50),
            "hybrid_query_p50_ms": pct(hybrid_ms, 50),
            "hybrid_query_p95_ms": pct(hybrid_ms, 95),
        }
        if kind != "flat_ip":
            import faiss

            exact = faiss.IndexFlatIP(vecs.shape[1])
            exact.add(vecs)
            _, truth = exact.search(qvecs, 10)
            _, approx = index.search(qvecs, 10)
            recall = float(np.mean([len(set(truth[i]) & set(approx[i])) / 10 for i in range(len(qvecs))]))
            same_top = float(np.mean(truth[:, 0] == approx[:, 0]))
            row["recall_at_10"] = recall
            row["same_top1"] = same_top
            del exact
        results["sizes"].append(row)  # type: ignore[union-attr]
        print(
            f"index {kind} {params}  build {row['build_chunks_per_s_index_only']:.0f} chunks/s (index+write), "
            f"{row['build_chunks_per_s_with_embedding']:.0f} chunks/s with embedding  size {size / 1e6:.1f} MB\n"
            f"query p50: faiss {row['faiss_query_p50_ms']:.2f} ms, hybrid {row['hybrid_query_p50_ms']:.2f} ms "
            f"(p95 {row['hybrid_query_p95_ms']:.2f})  lexical tables build {lexical_s:.1f} s (stored)"
            + (
                f"  recall@10 {row['recall_at_10']:.3f} (top-1 same {row['same_top1']:.2f})"
                if "recall_at_10" in row
                else ""
            )
        )
        del index, searcher, chunks, vecs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
