"""What writing the audit record adds to an answer: ``bot.ask()`` p50 with audit off vs on, same run.

    .venv/bin/python benchmarks/audit.py [--rounds 3] [--questions N] [--database-url postgresql://…]

One loaded bot (answer cache off, so every call answers), the distinct retrieval questions of
evals/dev.jsonl and tests/data, asked interleaved: without a caller (not audited), with a caller into a
SQLite store (the default) and, given ``--database-url`` (or FAQBOT_TEST_DATABASE_URL), into PostgreSQL. The
write is synchronous inside the call, as served. Target: audited p50 <= 1.10 x unaudited p50. ``Bot.decide``
(no model, ~0.2 ms) is measured too: there the write is most of the call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import ROOT, pct, retrieval_questions


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50": pct(ms, 50), "p95": pct(ms, 95), "mean": statistics.fmean(ms)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=0, help="use only the first N questions (0: all)")
    parser.add_argument("--database-url", default=os.environ.get("FAQBOT_TEST_DATABASE_URL", ""))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "audit.json")
    args = parser.parse_args()

    from bot import Settings, load_bot
    from bot.audit import Auditor
    from bot.audit_store import PostgresStore, SQLiteStore
    from bot.dose import Facts
    from bot.records import Caller

    work = Path(tempfile.mkdtemp(prefix="faqbot-audit-bench-"))
    for folder in ("corpus", "index"):  # a copy: a stale index is rebuilt there, never in the checkout
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns(".index.*"))
    data = work / "data"
    bot = load_bot(replace(Settings.from_env(root=work), cache_size=0, data_dir=data, database_url=""))
    stores: dict[str, Auditor] = {"sqlite": Auditor(SQLiteStore(data / "audit.sqlite3"))}
    if args.database_url:
        pg = PostgresStore(args.database_url)
        stores["postgresql"] = Auditor(pg)

    def caller() -> Caller:
        return Caller("bench", "bench", uuid.uuid4().hex)

    qs = retrieval_questions()
    qs = qs[: args.questions] if args.questions > 0 else qs
    for q in qs[:10]:  # warm-up
        bot.ask(q)
    for auditor in stores.values():
        bot.auditor = auditor
        bot.ask(qs[0], caller=caller())

    def timed(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000

    ask: dict[str, list[float]] = {"off": [], **{k: [] for k in stores}}
    decide: dict[str, list[float]] = {"off": [], **{k: [] for k in stores}}
    facts = [Facts(reaction="ocular", grade=g) for g in (1, 2, 3, 4)]
    for _ in range(args.rounds):
        for k, q in enumerate(qs):  # interleaved, so every variant sees the same machine state
            bot.auditor = None
            ask["off"].append(timed(lambda q=q: bot.ask(q)))  # type: ignore[misc]
            decide["off"].append(timed(lambda k=k: bot.decide(facts[k % 4])))  # type: ignore[misc]
            for name, auditor in stores.items():
                bot.auditor = auditor
                ask[name].append(timed(lambda q=q: bot.ask(q, caller=caller())))  # type: ignore[misc]
                decide[name].append(timed(lambda k=k: bot.decide(facts[k % 4], caller=caller())))  # type: ignore[misc]

    result: dict[str, Any] = {
        "cpu": cpu_model(),
        "questions": len(qs),
        "rounds": args.rounds,
        "ask_ms": {k: summary(v) for k, v in ask.items()},
        "decide_ms": {k: summary(v) for k, v in decide.items()},
    }
    result["ask_ratio_p50"] = {k: result["ask_ms"][k]["p50"] / result["ask_ms"]["off"]["p50"] for k in stores}
    result["write_ms_p50"] = {
        k: result["decide_ms"][k]["p50"] - result["decide_ms"]["off"]["p50"] for k in stores
    }
    print(f"CPU: {result['cpu']}; {len(qs)} questions x {args.rounds} rounds, interleaved")
    for name in ask:
        a, d = result["ask_ms"][name], result["decide_ms"][name]
        print(
            f"audit {name:<10} ask p50 {a['p50']:7.2f} ms  p95 {a['p95']:7.2f} ms   "
            f"decide p50 {d['p50']:6.3f} ms  p95 {d['p95']:6.3f} ms"
        )
    for name in stores:
        print(
            f"ratio ask p50 {name}/off {result['ask_ratio_p50'][name]:.3f} (target <= 1.10); "
            f"one write ~{result['write_ms_p50'][name]:.3f} ms"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for auditor in stores.values():
        auditor.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
