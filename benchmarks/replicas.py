"""Audit cost as served: 32 concurrent clients through nginx to two replicas, audit to PostgreSQL vs off.

    FAQBOT_TEST_DATABASE_URL=postgresql://… .venv/bin/python benchmarks/replicas.py [--rounds 3] [--per-client 4]

Starts four ``faqbot serve`` processes on loopback (answer cache off): two writing audit records to the
shared PostgreSQL, two with ``FAQBOT_AUDIT=0``, each pair behind its own Debian nginx; then alternates load
phases (32 clients x N POST /api/ask, distinct retrieval questions) between the two fronts, so both see the
same machine. Reports p50/p95 per variant and the ratio (target: audited p50 <= 1.10 x unaudited p50),
and checks the audited run's chain (verifies, one record per answered request). Needs scripts/services.sh
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
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

    import httpx
    import psycopg
    from audit import cpu_model

    from bot.audit import verify
    from bot.audit_store import PostgresStore
    from tests.serving import free_port, nginx_in_front, start_replica, wait_ready

    work = Path(tempfile.mkdtemp(prefix="faqbot-replicas-bench-"))
    shutil.copytree(ROOT / "corpus", work / "corpus")
    env0 = {**os.environ, "FAQBOT_ROOT": str(work), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "bot.cli", "build", "-q"], env=env0, cwd=work, check=True)
    db = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
        if args.async_commit:
            conn.execute(f'ALTER DATABASE "{db}" SET synchronous_commit = off')
    url = f"{args.database_url.rpartition('/')[0]}/{db}"
    common = {"FAQBOT_CACHE_SIZE": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    variants = {"on": {**common, "FAQBOT_DATABASE_URL": url}, "off": {**common, "FAQBOT_AUDIT": "0"}}
    qs = retrieval_questions()
    latencies: dict[str, list[float]] = {v: [] for v in variants}
    answered: list[str] = []
    procs: list[subprocess.Popen[str]] = []
    try:
        with ExitStack() as stack:
            fronts: dict[str, str] = {}
            for name, extra in variants.items():
                ports = [free_port(), free_port()]
                started = [start_replica(work, p, extra) for p in ports]
                procs += started
                for p, proc in zip(ports, started, strict=True):
                    wait_ready(f"http://127.0.0.1:{p}", proc)
                folder = work / f"nginx-{name}"
                folder.mkdir()
                fronts[name] = stack.enter_context(nginx_in_front(folder, ports))

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

            for base in fronts.values():  # warm-up
                with ThreadPoolExecutor(CLIENTS) as pool:
                    list(pool.map(lambda k, base=base: client(base, k, 99), range(CLIENTS)))
            for phase in range(args.rounds):
                for name in ("off", "on") if phase % 2 == 0 else ("on", "off"):
                    with ThreadPoolExecutor(CLIENTS) as pool:
                        runs = list(
                            pool.map(lambda k, b=fronts[name], p=phase: client(b, k, p), range(CLIENTS))
                        )
                    for ms, status, rid in (x for run in runs for x in run):
                        assert status == 200, status
                        latencies[name].append(ms)
                        if name == "on":
                            answered.append(rid)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)

    store = PostgresStore(url)
    try:
        rows = list(store.records())
    finally:
        store.close()
    ids = Counter(r.request_id for r in rows if r.kind == "answer")
    lost = sum(1 for rid in answered if ids[rid] == 0)
    duplicated = sum(1 for n in ids.values() if n > 1)
    chain_ok = verify(rows).ok
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    shutil.rmtree(work, ignore_errors=True)

    result: dict[str, Any] = {
        "cpu": cpu_model(),
        "clients": CLIENTS,
        "requests_per_variant": len(latencies["on"]),
        "ms": {
            v: {"p50": pct(x, 50), "p95": pct(x, 95), "mean": statistics.fmean(x)}
            for v, x in latencies.items()
        },
        "audit_records": sum(ids.values()),
        "lost": lost,
        "duplicated": duplicated,
        "chain_verifies": chain_ok,
        "synchronous_commit": "off" if args.async_commit else "on",
    }
    result["ratio_p50"] = result["ms"]["on"]["p50"] / result["ms"]["off"]["p50"]
    print(
        f"CPU: {result['cpu']}; {CLIENTS} clients, 2 replicas per variant, {len(latencies['on'])} asks each"
    )
    for v in ("off", "on"):
        m = result["ms"][v]
        print(f"audit {v:<3}  p50 {m['p50']:8.1f} ms  p95 {m['p95']:8.1f} ms")
    print(
        f"ratio p50 on/off {result['ratio_p50']:.3f} (target <= 1.10); records {result['audit_records']}, "
        f"lost {lost}, duplicated {duplicated}, chain {'verifies' if chain_ok else 'BROKEN'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if chain_ok and not lost and not duplicated else 1


if __name__ == "__main__":
    raise SystemExit(main())
