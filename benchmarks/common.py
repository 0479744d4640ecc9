"""Helpers shared by the benchmark scripts (not a test module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def retrieval_questions() -> list[str]:
    """Distinct retrieval-routed questions (faq, out-of-scope) of evals/dev.jsonl and tests/data."""
    out: list[str] = []
    for line in (ROOT / "evals" / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("kind") in ("faq", "out_of_scope") and not row.get("history"):
            out.append(row["question"])
    for name in ("retrieval_dev.jsonl", "out_of_scope_dev.jsonl"):
        for line in (ROOT / "tests" / "data" / name).read_text(encoding="utf-8").splitlines():
            out.append(json.loads(line)["q"])
    return list(dict.fromkeys(out))


def start_server(
    port: int,
    pythonpath: Path | None = None,
    stderr: Path | None = None,
    extra: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``faqbot serve`` on 127.0.0.1:``port`` with the answer cache off, from ``pythonpath`` (another
    checkout, for a before/after run) or this one, with ``extra`` settings; its stderr to ``stderr`` when
    given."""
    env = dict(os.environ, FAQBOT_CACHE_SIZE="0", FAQBOT_REBUILD="0", HF_HUB_OFFLINE="1", **(extra or {}))
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath.resolve())
    cmd = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    return subprocess.Popen(
        [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=pythonpath or ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("w") if stderr else subprocess.DEVNULL,
    )
