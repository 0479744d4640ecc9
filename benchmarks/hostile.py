"""Hostile load (issue 9): a 32-client soak, 2000-character worst-case questions against a normal one, and
poisoned requests mixed into 32-client traffic. Loopback only, bounded in time and count.

    .venv/bin/python benchmarks/hostile.py [--soak-s 60] [--clients 32] [--worst 100] [--out ...]

Starts ``faqbot serve`` on a free 127.0.0.1 port (answer cache off, no rebuild), waits for /readyz, then:

1. soak: ``--clients`` clients ask distinct dev questions for ``--soak-s`` seconds; errors, p50, p99, the
   slowest request and slowest / p50 (target: 0 errors, slowest <= 10x p50);
2. worst case, one client: ``--worst`` 2000-character worst-case questions (one long word, random long
   words, distinct unknown words, a dose-term soup, mixed scripts, ligatures that NFKC expands 18x), each
   right after a normal question, so both are timed side by side in one run; per kind the median time and
   its ratio to the normal question's median (target <= 2x), and the server's RSS before and after
   (target: growth <= 50 MB);
3. poisoned mix: ``--clients`` clients send normal questions while one in four requests is poisoned (a
   lone surrogate, NUL, a control character, a 2000-letter word, invalid UTF-8, a too-long question);
   normal requests failed (target 0) and the status codes the poisoned ones got (all 4xx, none 5xx).

``--pythonpath DIR`` runs the server from another checkout (e.g. ``git archive`` of main) with this venv,
for before/after figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import string
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import ROOT, pct, retrieval_questions, start_server
from throughput import free_port, rss_mb, wait_ready


def _words(n_chars: int, length: int, seed: int) -> str:
    rnd = random.Random(seed)
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < n_chars:
        out.append("".join(rnd.choice(string.ascii_lowercase) for _ in range(length)))
    return " ".join(out)[:n_chars]


def worst_cases(seed: int = 0) -> dict[str, str]:
    """The worst-case questions; the random ones are drawn afresh for each ``seed`` (new words every time,
    so no cache of earlier questions' words helps: the cost of a question nobody asked before)."""
    return {
        "one 2000-letter word": _words(2000, 2000, 1 + 10 * seed),
        "distinct 8-letter words": _words(2000, 8, 2 + 10 * seed),
        "distinct 14-letter words": _words(2000, 14, 3 + 10 * seed),
        "dose-term soup": ("grade 3 rash and cpk 10x uln but no aki; ocular " * 50)[:2000],
        "mixed scripts": ("Грейд 3 сыпь 皮疹 三级 طفح جلدي 😀 ﬁ ＣＰＫ १२३ e\u0301 " * 40)[:2000],
        "NFKC 18x ligatures": "\ufdfa" * 2000,
    }


POISON: list[tuple[str, bytes]] = [
    ("lone surrogate", b'{"question": "grade 3 rash \\ud800"}'),
    ("NUL", b'{"question": "cpk\\u0000 10x"}'),
    ("escape character", b'{"question": "\\u001b[31m ocular"}'),
    ("2000-letter word", json.dumps({"question": _words(2000, 2000, 9)}).encode()),
    ("invalid UTF-8", b'{"question": "caf\xe9"}'),
    ("too long", json.dumps({"question": "x " * 1500}).encode()),
    ("history surrogate", b'{"question": "and grade 3?", "history": ["\\udc00"]}'),
]


async def _post(client: Any, url: str, body: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    try:
        r = await client.post(url + "/api/ask", content=body, headers={"content-type": "application/json"})
        status = r.status_code
    except Exception:
        status = -1
    return status, time.perf_counter() - t0


def _q(question: str) -> bytes:
    return json.dumps({"question": question}, ensure_ascii=True).encode()


async def soak(url: str, questions: list[str], clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    times: list[float] = []
    starts: list[float] = []
    errors = 0
    error_statuses: dict[str, int] = {}
    begin = time.perf_counter()
    stop = begin + seconds
    counter = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop:
            q = questions[counter % len(questions)]
            counter += 1
            t0 = time.perf_counter()
            status, dt = await _post(client, url, _q(q))
            times.append(dt)
            starts.append(t0 - begin)
            if status != 200:
                errors += 1
                error_statuses[str(status)] = error_statuses.get(str(status), 0) + 1

    ui_at: list[float] = []

    async def watch_ui() -> None:  # when the UI (mounted after /readyz, in the background) came up
        async with httpx.AsyncClient(timeout=120) as probe:
            while time.perf_counter() < stop and not ui_at:
                try:
                    if (await probe.get(url + "/readyz")).json().get("ui"):
                        ui_at.append(time.perf_counter() - begin)
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.25)

    # The machine is shared: a thread of this client that only sleeps 20 ms at a time records how late it
    # wakes. A late wake-up while a request was slow means the whole machine stalled, not the server.
    late: list[tuple[float, float]] = []
    done = threading.Event()

    def watch_machine() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            time.sleep(0.02)
            over = time.perf_counter() - t0 - 0.02
            if over > 0.1:
                late.append((t0 - begin, over))

    watcher = threading.Thread(target=watch_machine, daemon=True)
    watcher.start()
    load_before = os.getloadavg()[0]
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(watch_ui(), *(worker(client) for _ in range(clients)))
    done.set()
    watcher.join()
    p50 = pct(times, 50)
    slowest = max(range(len(times)), key=times.__getitem__)
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(times),
        "errors": errors,
        "error_statuses": error_statuses,  # -1: no response (connection error or client timeout)
        "p50_ms": p50 * 1000,
        "p95_ms": pct(times, 95) * 1000,
        "p99_ms": pct(times, 99) * 1000,
        "max_ms": max(times) * 1000,
        "max_over_p50": max(times) / p50,
        "slowest_started_at_s": starts[slowest],
        "ui_mounted_at_s": ui_at[0] if ui_at else None,  # seconds into the soak
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "client_stalls_over_100ms": len(late),
        "client_longest_stall_ms": max((o for _, o in late), default=0.0) * 1000,
        "client_stalls_during_slowest_ms": sum(
            o * 1000 for at, o in late if starts[slowest] <= at <= starts[slowest] + times[slowest]
        ),
        "slowest_10": [
            {"at_s": round(starts[i], 2), "ms": round(times[i] * 1000, 1)}
            for i in sorted(range(len(times)), key=times.__getitem__)[-10:]
        ],
    }


async def worst(url: str, normal: list[str], total: int, pid: int) -> dict[str, Any]:
    import httpx

    kinds = worst_cases()
    per_kind: dict[str, list[float]] = {k: [] for k in kinds}
    normal_times: list[float] = []
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=300) as client:
        # the UI mounts in the background after /readyz (Gradio: ~70 MB and much CPU): wait for it, so that
        # neither the times nor the RSS growth below include it
        deadline = time.perf_counter() + 180
        while time.perf_counter() < deadline:
            try:
                if (await client.get(url + "/readyz")).json().get("ui"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.25)
        for k in range(5):  # warm-up
            await _post(client, url, _q(normal[k]))
        rss_before = rss_mb(pid)
        names = list(kinds)
        for i in range(total):
            s, dt = await _post(client, url, _q(normal[i % len(normal)]))
            normal_times.append(dt)
            name = names[i % len(names)]
            # a distinct question each time (the answer cache is off): random words drawn afresh (no cache
            # of earlier words helps), the fixed texts with a distinct ending
            text = worst_cases(1 + i)[name][:-6] + "".join(
                random.Random(i).choice("qxzvkj") for _ in range(6)
            )
            s, dt = await _post(client, url, _q(text))
            per_kind[name].append(dt)
            statuses[str(s)] = statuses.get(str(s), 0) + 1
        rss_after = rss_mb(pid)
    base = pct(normal_times, 50)
    return {
        "worst_questions": total,
        "normal_p50_ms": base * 1000,
        "kinds": {
            k: {"n": len(v), "p50_ms": pct(v, 50) * 1000, "ratio_to_normal": pct(v, 50) / base}
            for k, v in per_kind.items()
            if v
        },
        "statuses": statuses,
        "rss_mb_before": rss_before,
        "rss_mb_after": rss_after,
        "rss_growth_mb": rss_after - rss_before,
    }


async def poisoned(url: str, questions: list[str], clients: int, total: int) -> dict[str, Any]:
    import httpx

    normal_failed = 0
    normal_sent = 0
    poison_status: dict[str, dict[str, int]] = {}
    counter = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal counter, normal_failed, normal_sent
        while counter < total:
            k = counter
            counter += 1
            if k % 4 == 3:
                name, body = POISON[(k // 4) % len(POISON)]
                status, _ = await _post(client, url, body)
                by = poison_status.setdefault(name, {})
                by[str(status)] = by.get(str(status), 0) + 1
            else:
                normal_sent += 1
                status, _ = await _post(client, url, _q(questions[k % len(questions)]))
                normal_failed += status != 200

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients)) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return {
        "clients": clients,
        "normal_sent": normal_sent,
        "normal_failed": normal_failed,
        "poison": poison_status,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-s", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--worst", type=int, default=100)
    parser.add_argument("--mix", type=int, default=800, help="requests in the poisoned mix")
    parser.add_argument("--parts", default="soak,worst,mix")
    parser.add_argument("--pythonpath", type=Path, default=None)
    parser.add_argument("--server-log", type=Path, default=None, help="write the server's stderr here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hostile.json")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    questions = retrieval_questions()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, args.pythonpath, args.server_log)
    result: dict[str, Any] = {"code": str(args.pythonpath or ROOT)}
    try:
        result["ready_s"] = wait_ready(url)
        if "soak" in parts:
            result["soak"] = asyncio.run(soak(url, questions, args.clients, args.soak_s))
            print("soak:", json.dumps(result["soak"]), flush=True)
        if "worst" in parts:
            result["worst"] = asyncio.run(worst(url, questions, args.worst, server.pid))
            print("worst:", json.dumps(result["worst"], ensure_ascii=False), flush=True)
            ratios = {k: v["ratio_to_normal"] for k, v in result["worst"]["kinds"].items()}
            print(
                f"worst case / normal question (p50, normal {result['worst']['normal_p50_ms']:.1f} ms): "
                + ", ".join(f"{k} {r:.2f}x" for k, r in ratios.items())
                + f"; highest {max(ratios.values()):.2f}x (target <= 2x)",
                flush=True,
            )
        if "mix" in parts:
            result["mix"] = asyncio.run(poisoned(url, questions, args.clients, args.mix))
            print("mix:", json.dumps(result["mix"]), flush=True)
        result["server_rss_mb_end"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=15)
    print("targets: soak 0 errors and slowest <= 10x p50; worst case <= 2x normal, RSS growth <= 50 MB;")
    print("         poisoned mix 0 normal requests failed, no 5xx")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
