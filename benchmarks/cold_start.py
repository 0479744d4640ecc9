"""Cold start: `faqbot serve` to /healthz and /readyz, `faqbot decide`, one-shot `faqbot ask`.

    .venv/bin/python benchmarks/cold_start.py [--runs 3] [--out benchmarks/results/cold_start.json]

Each figure is the median of --runs fresh processes (wall clock), on the committed index as it is
(``--no-rebuild``: a stale index fails the run instead of being rebuilt, and nothing tracked changes).
The yardstick, measured in the same run: ``python -c "import sentence_transformers"`` (what the serving
path no longer imports). Targets (issue 11): serve → /readyz <= 0.35x of it, one-shot ask <= 0.4x;
decide <= 1 s. Also lists the slowest imports of the serve path (-X importtime).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT
from throughput import free_port

FAQBOT = str(ROOT / ".venv" / "bin" / "faqbot")
ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def serve_once() -> tuple[float, float]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [FAQBOT, "serve", "--port", str(port), "--no-rebuild"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    health = ready = float("nan")
    try:
        while time.perf_counter() - t0 < 120:
            try:
                if health != health and httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    health = time.perf_counter() - t0
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    ready = time.perf_counter() - t0
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return health, ready


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def slowest_imports(n: int = 8) -> list[tuple[str, float]]:
    code = "import bot.server, bot.core, bot.embedding, bot.retrieval, bot.runtime.onnx, faiss, onnxruntime"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
            if parts[1].isdigit() and parts[2].count(".") <= 1 and not parts[2].startswith(" "):
                rows.append((parts[2].strip(), int(parts[1]) / 1e6))
    top = [r for r in rows if "." not in r[0]]
    return sorted(top, key=lambda r: -r[1])[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold_start.json")
    args = parser.parse_args()
    yardstick = statistics.median(
        timed([sys.executable, "-c", "import sentence_transformers"]) for _ in range(args.runs)
    )
    serves = [serve_once() for _ in range(args.runs)]
    result = {
        "import_sentence_transformers_s": yardstick,
        "serve_healthz_s": statistics.median(h for h, _ in serves),
        "serve_readyz_s": statistics.median(r for _, r in serves),
        "decide_s": statistics.median(
            timed([FAQBOT, "decide", "--reaction", "ocular", "--grade", "3"]) for _ in range(args.runs)
        ),
        "ask_one_shot_s": statistics.median(
            timed([FAQBOT, "ask", "How often are eye exams needed?", "--no-rebuild"]) for _ in range(args.runs)
        ),
        "slowest_top_level_imports_s": slowest_imports(),
    }
    result["ratio_readyz"] = result["serve_readyz_s"] / yardstick
    result["ratio_ask"] = result["ask_one_shot_s"] / yardstick
    print(f"yardstick: python -c 'import sentence_transformers' {yardstick:.2f} s")
    print(
        f"faqbot serve → /healthz {result['serve_healthz_s']:.2f} s, → /readyz {result['serve_readyz_s']:.2f} s"
        f" = {result['ratio_readyz']:.2f}x (target <= 0.35x)"
    )
    print(f"faqbot decide {result['decide_s']:.2f} s (target <= 1 s)")
    print(f"faqbot ask (one shot) {result['ask_one_shot_s']:.2f} s = {result['ratio_ask']:.2f}x (target <= 0.40x)")
    print(
        "slowest top-level imports: "
        + ", ".join(f"{m} {s:.2f}s" for m, s in result["slowest_top_level_imports_s"])
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
