"""Cost of the load-time integrity checks at 1M chunks: the sha256 of every index file (streamed) and the
finite / unit-length check of every vector.

    .venv/bin/python benchmarks/integrity.py [--n 1000000] [--out benchmarks/results/integrity.json]

Writes a synthetic index of ``--n`` random unit vectors (384-d, exact flat index as faiss writes it) and a
``chunks.jsonl`` of records the seed's size (~450 bytes each) into a temporary folder, then times
``bot.index.verify_files`` and ``bot.index.check_vectors`` on them, and ``faiss.read_index`` beside them for
scale. Needs ~2.5 GB of disk and ~3.5 GB of RAM at 1M.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "integrity.json")
    args = parser.parse_args()

    import faiss

    from bot import index as ix

    with tempfile.TemporaryDirectory(prefix="faqbot-integrity-") as tmp:
        d = Path(tmp)
        rng = np.random.default_rng(0)
        flat = faiss.IndexFlatIP(384)
        for start in range(0, args.n, 100_000):
            block = rng.standard_normal((min(100_000, args.n - start), 384)).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            flat.add(block)
        faiss.write_index(flat, str(d / ix.INDEX_FILE))
        del flat
        record = {
            "id": "x" * 16,
            "source": "corpus/a.md",
            "start": 0,
            "end": 300,
            "text": "t" * 300,
            "context": "c" * 60,
            "kind": "paragraph",
        }
        line = (json.dumps(record) + "\n").encode()
        with (d / ix.CHUNKS_FILE).open("wb") as fh:
            for _ in range(0, args.n, 10_000):
                fh.write(line * min(10_000, args.n))
        sizes = {name: (d / name).stat().st_size for name in (ix.INDEX_FILE, ix.CHUNKS_FILE)}
        t0 = time.perf_counter()
        files = {name: ix.sha256_file(d / name) for name in sizes}
        hash_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ix.hash_files(d, list(sizes))  # what a load does: the files hashed in parallel threads
        verify_s = time.perf_counter() - t0
        assert again == files
        t0 = time.perf_counter()
        loaded = faiss.read_index(str(d / ix.INDEX_FILE))
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ix.check_vectors(loaded, d / ix.INDEX_FILE, True)
        vectors_s = time.perf_counter() - t0
    total_mb = sum(sizes.values()) / 2**20
    result = {
        "chunks": args.n,
        "bytes": sizes,
        "sha256_s": verify_s,
        "sha256_mb_per_s": total_mb / verify_s,
        "sha256_first_pass_s": hash_s,
        "faiss_read_s": read_s,
        "vector_check_s": vectors_s,
    }
    print(f"{args.n} chunks: index files {total_mb:.0f} MB")
    print(
        f"sha256 of every file (streamed, 1 MiB blocks, 2 threads): {verify_s:.2f} s "
        f"({result['sha256_mb_per_s']:.0f} MB/s)"
    )
    print(
        f"finite + unit-length check of every vector: {vectors_s:.2f} s (faiss.read_index itself: {read_s:.2f} s)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
