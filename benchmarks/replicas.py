"""Audit cost as served: 32 concurrent clients through nginx to two replicas, audit to PostgreSQL vs off.

    FAQBOT_TEST_DATABASE_URL=postgresql://… .venv/bin/python benchmarks/replicas.py [--rounds 6] [--per-client 4]

Starts six ``faqbot serve`` processes on loopback (answer cache off), a pair per variant, each pair behind
its own Debian nginx: ``off`` (``FAQBOT_AUDIT=0``), ``on`` (the default: records queued, written by a
writer thread after the answer) and ``required`` (``FAQBOT_AUDIT_REQUIRED=1``: each answer waits for its
commit), the audited pairs each on their own PostgreSQL database. Every replica has mounted its UI (the
background import would otherwise land in the first phases) and every front gets the same warm-up before
anything is measured. Then rounds of load phases (32 clients x N POST /api/ask, the same distinct retrieval
questions for each variant within a round), the order of the variants rotated each round so each is first,
second and last equally often. Reports p50/p95 per variant, the pooled p50 ratio against ``off`` (target:
``on`` <= 1.10) and the median of the per-round ratios, and checks each audited variant's chain (verifies,
exactly one record per answered request after the replicas' orderly stop). Needs scripts/services.sh
(PostgreSQL, nginx): ``eval "$(bash scripts/services.sh start /tmp/faqbot-pg)"`` first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from common import ROOT, pct, retrieval_questions

CLIENTS = 32


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc; 0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def backend_pids(url: str) -> list[int]:
    """PostgreSQL server processes serving the replicas' connections to ``url``'s database (loopback)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="a multiple of 3 (each order equally often)")
    parser.add_argument("--per-client", type=int, default=4, help="requests per client per phase")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="ALTER DATABASE … SET synchronous_commit = off for the benchmark's database (see docs/deployment.md)",
    )
    parser.add_argument("--database-url", default=os.environ.get("FAQBOT_TEST_DATABASE_URL", ""))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "replicas.json")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("needs --database-url or FAQBOT_TEST_DATABASE_URL (see scripts/services.sh)")
    if args.rounds < 3 or args.rounds % 3:
        parser.error("--rounds must be a multiple of 3")

    import httpx
    import psycopg
    from audit import cpu_model

    from bot.audit import verify
    from bot.audit_store import PostgresStore
    from tests.serving import free_port, nginx_in_front, start_replica, wait_ready, wait_ui

    work = Path(tempfile.mkdtemp(prefix="faqbot-replicas-bench-"))
    shutil.copytree(ROOT / "corpus", work / "corpus")
    env0 = {**os.environ, "FAQBOT_ROOT": str(work), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "bot.cli", "build", "-q"], env=env0, cwd=work, check=True)
    names = ("off", "on", "required")
    audited = ("on", "required")
    dbs = {v: f"bench_{v}_{uuid.uuid4().hex[:8]}" for v in audited}
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        for db in dbs.values():
            conn.execute(f'CREATE DATABASE "{db}"')
            if args.async_commit:
                conn.execute(f'ALTER DATABASE "{db}" SET synchronous_commit = off')
    urls = {v: f"{args.database_url.rpartition('/')[0]}/{db}" for v, db in dbs.items()}
    common = {"FAQBOT_CACHE_SIZE": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    variants = {
        "off": {**common, "FAQBOT_AUDIT": "0"},
        "on": {**common, "FAQBOT_DATABASE_URL": urls["on"]},
        "required": {**common, "FAQBOT_DATABASE_URL": urls["required"], "FAQBOT_AUDIT_REQUIRED": "1"},
    }
    qs = retrieval_questions()
    latencies: dict[str, list[float]] = {v: [] for v in variants}
    per_round: dict[str, list[float]] = {v: [] for v in variants}  # p50 of each round
    answered: dict[str, list[str]] = {v: [] for v in audited}
    cpu: dict[str, dict[str, float]] = {v: {"replicas": 0.0, "postgres": 0.0} for v in variants}
    procs: list[subprocess.Popen[str]] = []
    pids: dict[str, list[int]] = {}
    try:
        with ExitStack() as stack:
            fronts: dict[str, str] = {}
            for name, extra in variants.items():
                ports = [free_port(), free_port()]
                started = [start_replica(work, p, extra) for p in ports]
                procs += started
                pids[name] = [p.pid for p in started]
                for p, proc in zip(ports, started, strict=True):
                    wait_ready(f"http://127.0.0.1:{p}", proc)
                folder = work / f"nginx-{name}"
                folder.mkdir()
                fronts[name] = stack.enter_context(nginx_in_front(folder, ports))
                for p in ports:
                    wait_ui(f"http://127.0.0.1:{p}")

            def client(base: str, k: int, phase: int) -> list[tuple[float, int, str]]:
                out = []
                with httpx.Client(base_url=base, timeout=120) as c:
                    for j in range(args.per_client):
                        q = qs[(phase * CLIENTS * args.per_client + k * args.per_client + j) % len(qs)]
                        t0 = time.perf_counter()
                        r = c.post("/api/ask", json={"question": q})
                        out.append(
                            (
                                (time.perf_counter() - t0) * 1000,
                                r.status_code,
                                r.headers.get("x-request-id", ""),
                            )
                        )
                return out

            def phase_of(name: str, phase: int) -> list[tuple[float, int, str]]:
                with ThreadPoolExecutor(CLIENTS) as pool:
                    runs = list(pool.map(lambda k: client(fronts[name], k, phase), range(CLIENTS)))
                return [x for run in runs for x in run]

            for warm in (98, 99):  # the same warm-up for every front, in the same rotation
                for name in names:
                    phase_of(name, warm)
            pg = {v: backend_pids(urls[v]) if v in urls else [] for v in names}
            for phase in range(args.rounds):
                order = names[phase % 3 :] + names[: phase % 3]
                for name in order:
                    before = cpu_seconds(pids[name]), cpu_seconds(pg[name])
                    got = phase_of(name, phase)
                    cpu[name]["replicas"] += cpu_seconds(pids[name]) - before[0]
                    cpu[name]["postgres"] += cpu_seconds(pg[name]) - before[1]
                    for ms, status, rid in got:
                        assert status == 200, status
                        latencies[name].append(ms)
                        if name in answered:
                            answered[name].append(rid)
                    per_round[name].append(pct([ms for ms, _, _ in got], 50))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()  # an orderly stop: the audited replicas drain their queues
                proc.wait(timeout=60)

    checks: dict[str, dict[str, Any]] = {}
    for v in audited:
        store = PostgresStore(urls[v])
        try:
            rows = list(store.records())
        finally:
            store.close()
        ids = Counter(r.request_id for r in rows if r.kind == "answer")
        checks[v] = {
            "records": sum(ids.values()),
            "lost": sum(1 for rid in answered[v] if ids[rid] == 0),
            "duplicated": sum(1 for n in ids.values() if n > 1),
            "chain_verifies": verify(rows).ok,
        }
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        for db in dbs.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    shutil.rmtree(work, ignore_errors=True)

    result: dict[str, Any] = {
        "cpu": cpu_model(),
        "load_average_at_end": os.getloadavg(),
        "clients": CLIENTS,
        "rounds": args.rounds,
        "requests_per_variant": len(latencies["on"]),
        "ms": {
            v: {"p50": pct(x, 50), "p95": pct(x, 95), "mean": statistics.fmean(x)}
            for v, x in latencies.items()
        },
        "round_p50_ms": per_round,
        # CPU time per ask: the variant's two replicas, and the PostgreSQL backends serving them (the WAL
        # writer and checkpointer are not counted); far less noisy than latency on a shared machine.
        "cpu_ms_per_ask": {
            v: {k: 1000 * t / len(latencies[v]) for k, t in c.items()} for v, c in cpu.items()
        },
        "audit": checks,
        "synchronous_commit": "off" if args.async_commit else "on",
    }
    for v in audited:
        result[f"ratio_p50_{v}"] = result["ms"][v]["p50"] / result["ms"]["off"]["p50"]
        result[f"ratio_p50_{v}_round_median"] = statistics.median(
            a / b for a, b in zip(per_round[v], per_round["off"], strict=True)
        )
    print(
        f"CPU: {result['cpu']}; {CLIENTS} clients, 2 replicas per variant, {args.rounds} rounds, "
        f"{len(latencies['on'])} asks per variant"
    )
    for v in names:
        m, c = result["ms"][v], result["cpu_ms_per_ask"][v]
        print(
            f"audit {v:<8}  p50 {m['p50']:8.1f} ms  p95 {m['p95']:8.1f} ms  mean {m['mean']:8.1f} ms  "
            f"CPU/ask replicas {c['replicas']:6.2f} ms, PostgreSQL {c['postgres']:5.2f} ms"
        )
    for v in audited:
        c = checks[v]
        print(
            f"{v:<8} ratio p50 {result[f'ratio_p50_{v}']:.3f} "
            f"(rounds' median {result[f'ratio_p50_{v}_round_median']:.3f}; "
            f"target for 'on' <= 1.10); records {c['records']}, lost {c['lost']}, duplicated {c['duplicated']}, "
            f"chain {'verifies' if c['chain_verifies'] else 'BROKEN'}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    ok = all(c["chain_verifies"] and not c["lost"] and not c["duplicated"] for c in checks.values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
