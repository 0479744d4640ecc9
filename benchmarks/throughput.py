"""Throughput of ``POST /api/ask`` under 1, 8 and 32 concurrent clients, against the model's ceiling.

    .venv/bin/python benchmarks/throughput.py [--clients 1 8 32] [--requests 400] [--out ...]

Starts ``faqbot serve`` on a free 127.0.0.1 port (answer cache off, so every request is real work), waits
for /readyz, then runs an asyncio + httpx client loop per concurrency level: a bounded number of requests,
distinct dev questions in turn, each with a 30 s timeout. Measured in the same run: the model's
batched-encode ceiling of the configured runtime (ONNX by default: queries/s at batch 8, 16 and 32, in this
process, while the server is idle), and the server's RSS after warm-up. Targets at 32 clients (issue 11):
>= 0.7 x the ceiling (the best of batch 8-32), p95 <= 100 ms, no errors; RSS after warm-up <= 350 MB.
Only loopback addresses are contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, pct, retrieval_questions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(url: str, timeout: float = 120.0) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def ceiling(questions: list[str]) -> dict[str, float]:
    from bot.embedding import Embedder
    from bot.settings import Settings

    s = Settings.from_env()
    model = Embedder(runtime=s.runtime, precision=s.precision, threads=s.threads).load()
    out = {}
    for batch in (8, 16, 32):
        texts = [questions[i % len(questions)] for i in range(batch)]
        model.encode(texts, batch_size=batch)
        rounds = max(4, 256 // batch)
        t0 = time.perf_counter()
        for r in range(rounds):
            model.encode(
                [questions[(r * batch + i) % len(questions)] for i in range(batch)], batch_size=batch
            )
        out[f"batch_{batch}_qps"] = rounds * batch / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for q in questions[:64]:
        model.encode([q])
    out["single_qps"] = 64 / (time.perf_counter() - t0)
    return out


async def load(url: str, questions: list[str], clients: int, total: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    next_i = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_i, errors
        while next_i < total:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(url + "/api/ask", json={"question": questions[i % len(questions)]})
                ok = r.status_code == 200 and "route" in r.json()
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": len(latencies),
        "answers_per_s": (len(latencies) - errors) / elapsed,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "p99_ms": pct(latencies, 99),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json")
    args = parser.parse_args()

    questions = retrieval_questions()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, FAQBOT_CACHE_SIZE="0", HF_HUB_OFFLINE="1")
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "faqbot"), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-rebuild"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready_s = wait_ready(url)
        result: dict[str, object] = {"ready_s": ready_s, "ceiling": ceiling(questions)}
        asyncio.run(load(url, questions, 4, 64))  # warm-up
        result["server_rss_mb_after_warmup"] = rss_mb(server.pid)
        runs = [asyncio.run(load(url, questions, c, max(args.requests, 4 * c))) for c in args.clients]
        result["runs"] = runs
        result["server_rss_mb_after_load"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=15)

    ceil = result["ceiling"]
    assert isinstance(ceil, dict)
    print("model ceiling: " + ", ".join(f"{k} {v:.0f}" for k, v in ceil.items()))
    print(
        f"server RSS after warm-up {result['server_rss_mb_after_warmup']:.0f} MB, "
        f"after load {result['server_rss_mb_after_load']:.0f} MB"
    )
    best = max(v for k, v in ceil.items() if k.startswith("batch_"))
    result["ceiling_best_batch_qps"] = best
    print(f"clients  answers/s  p50 ms  p95 ms  p99 ms  errors  x ceiling (best batch, {best:.0f} q/s)")
    for r in runs:
        ratio = r["answers_per_s"] / best
        r["ratio_to_ceiling"] = ratio
        print(
            f"{r['clients']:>7}  {r['answers_per_s']:>9.1f}  {r['p50_ms']:>6.1f}  {r['p95_ms']:>6.1f}  "
            f"{r['p99_ms']:>6.1f}  {r['errors']:>6}  {ratio:.2f}"
        )
    print("targets at 32 clients: >= 0.70 x ceiling, p95 <= 100 ms, 0 errors; RSS after warm-up <= 350 MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
