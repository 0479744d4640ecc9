"""Where the serving process's memory goes: RSS of `faqbot serve` at each stage, and what it imported.

    .venv/bin/python benchmarks/serve_memory.py [--out benchmarks/results/serve_memory.json]

Starts ``faqbot serve`` on a free 127.0.0.1 port (answer cache off) and reads ``/proc/<pid>`` at: /readyz
200; the UI mounted (``"ui": true``); after a warm-up of 64 asks at 4 clients (throughput.py's warm-up,
the figure its target is about: <= 350 MB) and a UI page load; after 200 more asks at 32 clients. For each:
VmRSS, and from ``smaps_rollup`` the anonymous and file-backed parts. Then, in a fresh interpreter, the
number of modules the serving path imports (``-X importtime`` of ``bot.server`` + ``uvicorn``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, retrieval_questions
from throughput import free_port, load, wait_ready


def memory(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "Threads:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) / (1 if key == "Threads" else 1024)
    return out


def wait_ui(url: str, timeout: float = 120.0) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if httpx.get(url + "/readyz", timeout=2).json().get("ui"):
            return time.perf_counter() - t0
        time.sleep(0.1)
    raise RuntimeError("the UI was not mounted")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_memory.json")
    args = parser.parse_args()
    import httpx

    questions = retrieval_questions()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, FAQBOT_CACHE_SIZE="0", HF_HUB_OFFLINE="1")
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "faqbot"), "serve", "--port", str(port), "--no-rebuild"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stages: dict[str, dict[str, float]] = {}
    try:
        wait_ready(url)
        stages["ready"] = memory(server.pid)
        wait_ui(url)
        stages["ui_mounted"] = memory(server.pid)
        asyncio.run(load(url, questions, 4, 64))
        httpx.get(url + "/", timeout=30)
        stages["after_warmup"] = memory(server.pid)
        asyncio.run(load(url, questions, 32, 200))
        stages["after_32_clients"] = memory(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=15)
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import bot.server, bot.core, uvicorn"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    modules = [line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")][1:]
    result = {"stages_mb": stages, "serve_path_modules": len(modules)}
    for stage, m in stages.items():
        print(
            f"{stage:>18}: RSS {m['VmRSS']:.0f} MB (anon {m.get('RssAnon', 0):.0f}, file {m.get('RssFile', 0):.0f}), "
            f"peak {m['VmHWM']:.0f} MB, {m.get('Threads', 0):.0f} threads"
        )
    print(f"modules imported by bot.server + uvicorn: {len(modules)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
