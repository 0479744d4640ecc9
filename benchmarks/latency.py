"""Warm latency of ``bot.ask()`` against the floor: the bare query embedding of the same model, same run.

    .venv/bin/python benchmarks/latency.py [--rounds 5] [--out benchmarks/results/latency.json]

Questions: the retrieval-routed (faq, out-of-scope) questions of evals/dev.jsonl and tests/data (distinct, so
the answer cache is off for the main figure; a second pass reports cache hits). Prints p50/p95 and the
ratios. The bot runs on the configured runtime (ONNX by default); the torch encoder
(sentence-transformers, as ``FAQBOT_RUNTIME=torch`` loads it) is timed on the same questions in the same
run. Targets (issue 11): ask p50 <= 1.1 x the ONNX bare embed p50 and <= 0.6 x the torch bare embed p50.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from common import ROOT, pct, retrieval_questions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency.json")
    args = parser.parse_args()

    from bot import Settings, load_bot

    base = Settings.from_env(root=ROOT)
    bot = load_bot(replace(base, cache_size=0))
    cached = load_bot(replace(base, cache_size=4096))
    model = bot.embedder
    from bot.embedding import Embedder

    torch_model = Embedder(runtime="torch", precision=base.precision, threads=base.threads).load()
    qs = retrieval_questions()
    for q in qs[:10]:  # warm-up: first calls allocate
        bot.ask(q)
        model.encode([q])
        torch_model.encode([q])

    embed_ms: list[float] = []
    torch_ms: list[float] = []
    ask_ms: list[float] = []
    for _ in range(args.rounds):
        for q in qs:  # interleaved, so all see the same machine state
            t0 = time.perf_counter()
            model.encode([q])
            t1 = time.perf_counter()
            bot.ask(q)
            t2 = time.perf_counter()
            torch_model.encode([q])
            t3 = time.perf_counter()
            embed_ms.append((t1 - t0) * 1000)
            ask_ms.append((t2 - t1) * 1000)
            torch_ms.append((t3 - t2) * 1000)
    for q in qs:
        cached.ask(q)
    hit_ms = []
    for q in qs:
        t0 = time.perf_counter()
        cached.ask(q)
        hit_ms.append((time.perf_counter() - t0) * 1000)

    result = {
        "questions": len(qs),
        "rounds": args.rounds,
        "runtime": model.description,
        "torch_runtime": torch_model.description,
        "torch_embed_ms": {"p50": pct(torch_ms, 50), "p95": pct(torch_ms, 95), "mean": statistics.fmean(torch_ms)},
        "embed_ms": {"p50": pct(embed_ms, 50), "p95": pct(embed_ms, 95), "mean": statistics.fmean(embed_ms)},
        "ask_ms": {"p50": pct(ask_ms, 50), "p95": pct(ask_ms, 95), "mean": statistics.fmean(ask_ms)},
        "ask_cached_ms": {"p50": pct(hit_ms, 50), "p95": pct(hit_ms, 95)},
    }
    result["ratio_p50"] = result["ask_ms"]["p50"] / result["embed_ms"]["p50"]
    result["ratio_p95"] = result["ask_ms"]["p95"] / result["embed_ms"]["p95"]
    result["ratio_p50_to_torch_embed"] = result["ask_ms"]["p50"] / result["torch_embed_ms"]["p50"]
    print(f"questions: {len(qs)} x {args.rounds} rounds")
    print(
        f"bare embed   p50 {result['embed_ms']['p50']:.2f} ms  p95 {result['embed_ms']['p95']:.2f} ms"
        f" ({model.description})"
    )
    print(
        f"torch embed  p50 {result['torch_embed_ms']['p50']:.2f} ms  p95 {result['torch_embed_ms']['p95']:.2f} ms"
        f" ({torch_model.description})"
    )
    print(f"bot.ask      p50 {result['ask_ms']['p50']:.2f} ms  p95 {result['ask_ms']['p95']:.2f} ms")
    print(
        f"ask (cached) p50 {result['ask_cached_ms']['p50']:.3f} ms  p95 {result['ask_cached_ms']['p95']:.3f} ms"
    )
    print(f"ratio ask/embed p50 {result['ratio_p50']:.2f}x (target <= 1.10)  p95 {result['ratio_p95']:.2f}x")
    print(f"ratio ask/torch embed p50 {result['ratio_p50_to_torch_embed']:.2f}x (target <= 0.60)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
