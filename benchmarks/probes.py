"""Issue 9's probes against a served faqbot, for its closing note's before/after table. Loopback only.

    .venv/bin/python benchmarks/probes.py [--pythonpath DIR] [--out benchmarks/results/probes.json]

Starts ``faqbot serve`` on a free 127.0.0.1 port (answer cache off, no rebuild) and re-runs the probes of
the issue that go through HTTP: one and three concurrent 2000-letter words (time, server RSS), lone
surrogates mixed into 40 normal questions, a surrogate in ``/api/export``, the spec/shape probes (unknown
path and method, invalid UTF-8, ``"aki": 0``, statuses and media type in ``/openapi.json``, the CDS Hooks
routes in it) and an anonymous upload. The 32-client soak is ``hostile.py``; damaged vectors, the broken
rule file, LangChain's ``k`` and binary corpus files are regression tests (test_index, test_readiness,
test_langchain_standard, test_corpus).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import ROOT, retrieval_questions, start_server
from throughput import free_port, rss_mb, wait_ready


def word(n: int, seed: int) -> str:
    import random
    import string

    rnd = random.Random(seed)
    return "".join(rnd.choice(string.ascii_lowercase) for _ in range(n))


def probes(url: str, pid: int) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {}
    c = httpx.Client(base_url=url, timeout=300)
    questions = retrieval_questions()
    for q in questions[:5]:
        c.post("/api/ask", json={"question": q})

    def ask(body: bytes | dict[str, Any]) -> tuple[int, float]:
        t0 = time.perf_counter()
        if isinstance(body, bytes):
            r = c.post("/api/ask", content=body, headers={"content-type": "application/json"})
        else:
            r = c.post("/api/ask", json=body)
        return r.status_code, time.perf_counter() - t0

    rss0 = rss_mb(pid)
    status, dt = ask({"question": word(2000, 1)})
    out["one_2000_letter_word"] = {"status": status, "s": round(dt, 3), "rss_growth_mb": rss_mb(pid) - rss0}
    rss0 = rss_mb(pid)
    with ThreadPoolExecutor(3) as pool:
        three = list(pool.map(lambda s: ask({"question": word(2000, s)}), (2, 3, 4)))
    out["three_2000_letter_words"] = {
        "statuses": [s for s, _ in three],
        "s": [round(t, 3) for _, t in three],
        "rss_growth_mb": rss_mb(pid) - rss0,
    }
    bodies: list[bytes | dict[str, Any]] = [{"question": q} for q in (questions * 2)[:40]]
    poison = b'{"question": "grade 3 rash \\ud800"}'
    mixed = [(b, False) for b in bodies]
    for k in range(10):
        mixed.insert(k * 5, (poison, True))
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda item: (ask(item[0])[0], item[1]), mixed))
    out["surrogates_among_40_normal"] = {
        "normal_failed": sum(1 for s, bad in results if not bad and s != 200),
        "poisoned_statuses": sorted({s for s, bad in results if bad}),
    }
    answer = c.post("/api/ask", json={"question": questions[0]}).json()
    answer["question"] = "eye \ud800"
    r = c.post(
        "/api/export",
        content=json.dumps({"answers": [answer]}).encode(),
        headers={"content-type": "application/json"},
    )
    out["export_with_surrogate"] = r.status_code
    r = c.get("/api/nope")
    out["GET /api/nope"] = [r.status_code, sorted(r.json())]
    r = c.delete("/api/ask")
    out["DELETE /api/ask"] = [r.status_code, r.headers.get("allow")]
    r = c.post("/api/ask", content=b'{"question": "caf\xe9"}', headers={"content-type": "application/json"})
    out["invalid UTF-8"] = [r.status_code, r.json()["error"]["code"]]
    r = c.post("/api/decide", json={"reaction": "rhabdomyolysis", "cpk_uln": 12, "aki": 0})
    out['"aki": 0'] = r.status_code
    spec = c.get("/openapi.json").json()
    ask_responses = spec["paths"]["/api/ask"]["post"]["responses"]
    out["openapi /api/ask statuses"] = sorted(ask_responses)
    out["openapi 422 body"] = ask_responses["422"]["content"]["application/json"]["schema"]
    out["openapi export media"] = sorted(spec["paths"]["/api/export"]["post"]["responses"]["200"]["content"])
    out["openapi cds operations"] = sorted(
        f"{m.upper()} {p}" for p, ops in spec["paths"].items() if p.startswith("/cds-services") for m in ops
    )
    r = c.post("/gradio_api/upload", files={"files": ("x.txt", b"hello")})
    out["anonymous upload"] = r.status_code
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythonpath", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "probes.json")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, args.pythonpath, None)
    try:
        wait_ready(url)
        result = probes(url, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(json.dumps(result, indent=1, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
