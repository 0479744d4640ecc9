"""Throughput of ``POST /api/ask`` under 1, 8 and 32 concurrent clients, against the model's ceiling.

    .venv/bin/python benchmarks/throughput.py [--clients 1 8 32] [--requests 400] [--client raw|httpx]
                                             [--server-env FAQBOT_X=v ...] [--out ...]

Starts ``faqbot serve`` on a free 127.0.0.1 port (answer cache off, so every request is real work), waits
for /readyz and for the UI to be mounted (its import is background work that would otherwise land in the
first measurements), then runs a closed-loop asyncio client per concurrency level: a bounded number of
requests, distinct dev questions in turn, each with a 30 s timeout.

The client (``--client``): ``raw`` (default) writes each HTTP/1.1 request as prepared bytes on a keep-alive
connection and reads the status, the Content-Length body and its ``route`` (about 0.2 ms of CPU per request);
``httpx`` uses ``httpx.AsyncClient`` (about 5 ms of CPU per request at 32 clients: on these 2-core machines
the load generator then takes a third of the CPU the server needs, measured). Both are reported with their
own CPU per request, and the server's, so the two can be compared.

Measured in the same run: the model's batched-encode ceiling (queries/s of the ONNX runtime at batch 8, 16
and 32, with 1 and with the default number of intra-op threads, in this process while the server is idle,
before and after the load runs; the ceiling is the best of all of them, whatever the server is configured
with), and the server's RSS after warm-up. Targets at 32 clients (issue 11): >= 0.7 x the ceiling,
p95 <= 100 ms, no errors; RSS after warm-up <= 350 MB. ``--server-env`` passes settings to the server only
(the ceiling never depends on them). Only loopback addresses are contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, pct, retrieval_questions, start_server


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def ceiling(questions: list[str], seconds: float = 1.0) -> dict[str, float]:
    """Queries/s of bare batched encodes with the ONNX runtime (the server's model), each for about
    ``seconds``: one call at a time at batch 8, 16 and 32 with 1 and with the default number of intra-op
    threads (keys ``t{threads}_batch_{n}_qps``, the issue's "batched-encode ceiling"), and two one-thread
    calls at once from two threads (``lanes2_batch_{n}_qps``: what the model gives the server's two encode
    lanes); ``single_qps``: one query per call, default threads."""
    import threading

    from bot.embedding import Embedder
    from bot.runtime.onnx import default_threads

    def rate(model: Embedder, batch: int, lanes: int) -> float:
        done = [0] * lanes
        start = time.perf_counter()

        def lane(k: int) -> None:
            r = k
            while r < 4 * lanes or time.perf_counter() - start < seconds:
                model.encode(
                    [questions[(r * batch + i) % len(questions)] for i in range(batch)], batch_size=batch
                )
                done[k] += batch
                r += lanes

        threads = [threading.Thread(target=lane, args=(k,)) for k in range(lanes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(done) / (time.perf_counter() - start)

    out = {}
    for threads in sorted({1, default_threads()}):
        model = Embedder(runtime="onnx", threads=threads, lanes=1).load()
        for batch in (8, 16, 32):
            model.encode([questions[i % len(questions)] for i in range(batch)], batch_size=batch)
            out[f"t{threads}_batch_{batch}_qps"] = rate(model, batch, 1)
        if threads == 1 and default_threads() > 1:
            for batch in (8, 16):
                out[f"lanes2_batch_{batch}_qps"] = rate(model, batch, 2)
        if threads == default_threads():
            t0 = time.perf_counter()
            for q in questions[:64]:
                model.encode([q])
            out["single_qps"] = 64 / (time.perf_counter() - t0)
    return out


def wait_ui(url: str, timeout: float = 120.0) -> None:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if httpx.get(url + "/readyz", timeout=2).json().get("ui"):
            return
        time.sleep(0.1)
    raise RuntimeError("the UI was not mounted")


async def raw_load(url: str, questions: list[str], clients: int, total: int) -> dict[str, float]:
    """As :func:`load`, with a minimal HTTP/1.1 client: each request is prepared bytes written on a
    keep-alive connection; the reply's status line and Content-Length are read, then its body, which must
    be JSON with a ``route``. Any other reply, a timeout or a broken connection counts as an error (the
    connection is then opened again)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    requests = []
    for q in questions:
        body = json.dumps({"question": q}).encode()
        head = (
            f"POST /api/ask HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    latencies: list[float] = []
    errors = 0
    next_i = 0

    async def exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[bool, bool]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = -1, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if length < 0:
            raise ValueError("reply without Content-Length")
        body = await reader.readexactly(length)
        return status == 200 and "route" in json.loads(body), close

    async def worker() -> None:
        nonlocal next_i, errors
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while next_i < total:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            ok = False
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, int(port))
                ok, close = await asyncio.wait_for(exchange(reader, writer, requests[i % len(requests)]), 30)
            except (OSError, EOFError, ValueError, IndexError, TimeoutError, asyncio.IncompleteReadError):
                close = True
            if close and writer is not None:
                writer.close()
                reader = writer = None
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += not ok
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return summary(clients, latencies, errors, time.perf_counter() - t0)


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
    return summary(clients, latencies, errors, elapsed)


def summary(clients: int, latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    """One load level's figures: answers per second (errors excluded) and latency percentiles."""
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
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level and round")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling + every level, repeated (medians)")
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="load generator (see above)"
    )
    parser.add_argument(
        "--server-env", nargs="*", default=[], metavar="FAQBOT_X=v", help="settings for the server only"
    )
    parser.add_argument(
        "--before", type=Path, default=None, help="another checkout served beside this one, interleaved"
    )
    parser.add_argument(
        "--before-env", nargs="*", default=None, metavar="FAQBOT_X=v", help="settings for --before instead"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json")
    args = parser.parse_args()

    questions = retrieval_questions()
    extra = dict(kv.split("=", 1) for kv in args.server_env)
    before_env = extra if args.before_env is None else dict(kv.split("=", 1) for kv in args.before_env)
    names = ["after", "before"] if args.before is not None else ["after"]
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    run_load = raw_load if args.client == "raw" else load
    result: dict[str, Any] = {"client": args.client, "server_env": extra, "rounds": []}
    if args.before is not None:
        result["before"] = str(args.before)
        result["before_env"] = before_env
    try:
        for name in names:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = before_env if name == "before" else extra
            servers[name] = (start_server(port, args.before if name == "before" else None, extra=env), url)
            result[f"{name}_ready_s"] = wait_ready(url)
            wait_ui(url)
            asyncio.run(run_load(url, questions, 4, 64))  # warm-up
            result[f"{name}_rss_mb_after_warmup"] = rss_mb(servers[name][0].pid)
        for r in range(args.rounds):
            ceil = ceiling(questions, 0.6)
            single = max(v for k, v in ceil.items() if k.startswith("t"))
            lanes = max(v for k, v in ceil.items() if k.startswith("lanes"))
            rnd: dict[str, Any] = {"ceiling": ceil, "single_call_qps": single, "two_lane_qps": lanes}
            for name in names if r % 2 == 0 else names[::-1]:
                proc, url = servers[name]
                levels = []
                for c in args.clients:
                    server_cpu, own_cpu = cpu_seconds(proc.pid), own_cpu_seconds()
                    run = asyncio.run(run_load(url, questions, c, max(args.requests, 4 * c)))
                    answered = max(1, int(run["requests"] - run["errors"]))
                    run["server_cpu_ms_per_answer"] = (cpu_seconds(proc.pid) - server_cpu) * 1000 / answered
                    run["client_cpu_ms_per_answer"] = (own_cpu_seconds() - own_cpu) * 1000 / answered
                    run["ratio_to_ceiling"] = run["answers_per_s"] / single
                    run["ratio_to_two_lanes"] = run["answers_per_s"] / lanes
                    levels.append(run)
                rnd[name] = levels
            result["rounds"].append(rnd)
            print(
                f"round {r + 1}: ceiling {single:.0f} q/s (one call), {lanes:.0f} q/s (two lanes)", flush=True
            )
        for name in names:
            result[f"{name}_rss_mb_after_load"] = rss_mb(servers[name][0].pid)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=15)

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    rounds = result["rounds"]
    singles = [rnd["single_call_qps"] for rnd in rounds]
    lanes_all = [rnd["two_lane_qps"] for rnd in rounds]
    print(
        f"model ceiling (best batched encode, one call at a time, batch 8/16/32 x 1/2 threads): median "
        f"{med(singles):.0f} q/s [{min(singles):.0f}-{max(singles):.0f}]; two one-thread calls at once: "
        f"{med(lanes_all):.0f} q/s [{min(lanes_all):.0f}-{max(lanes_all):.0f}]"
    )
    for name in names:
        print(
            f"{name}: RSS after warm-up {result[f'{name}_rss_mb_after_warmup']:.0f} MB, "
            f"after load {result[f'{name}_rss_mb_after_load']:.0f} MB"
        )
    print(f"client: {args.client}; server settings: {extra or 'defaults'}; medians of {len(rounds)} rounds")
    if args.before is not None:
        print(f"before: {args.before} with settings {before_env or 'defaults'}")
    print(
        "server  clients  answers/s  p50 ms  p95 ms  errors  CPU ms/answer server/client"
        "  x ceiling [range]  x two lanes"
    )
    summary: dict[str, Any] = {}
    for name in names:
        for k, c in enumerate(args.clients):
            runs = [rnd[name][k] for rnd in rounds]
            ratios = [x["ratio_to_ceiling"] for x in runs]
            row = {
                "answers_per_s": med([x["answers_per_s"] for x in runs]),
                "p50_ms": med([x["p50_ms"] for x in runs]),
                "p95_ms": med([x["p95_ms"] for x in runs]),
                "errors": sum(int(x["errors"]) for x in runs),
                "server_cpu_ms_per_answer": med([x["server_cpu_ms_per_answer"] for x in runs]),
                "client_cpu_ms_per_answer": med([x["client_cpu_ms_per_answer"] for x in runs]),
                "ratio_to_ceiling": med(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ratio_to_two_lanes": med([x["ratio_to_two_lanes"] for x in runs]),
            }
            summary[f"{name}_{c}"] = row
            print(
                f"{name:>6}  {c:>7}  {row['answers_per_s']:>9.1f}  {row['p50_ms']:>6.1f}  {row['p95_ms']:>6.1f}"
                f"  {row['errors']:>6}  {row['server_cpu_ms_per_answer']:>8.2f} / "
                f"{row['client_cpu_ms_per_answer']:<5.2f}"
                f"        {row['ratio_to_ceiling']:.2f} [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"
                f"  {row['ratio_to_two_lanes']:.2f}"
            )
    result["summary"] = summary
    print("targets at 32 clients: >= 0.70 x ceiling, p95 <= 100 ms, 0 errors; RSS after warm-up <= 350 MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
