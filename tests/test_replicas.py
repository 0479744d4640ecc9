"""Two ``faqbot serve`` replicas behind Debian's nginx, sharing PostgreSQL: a bounded load of 32 clients
through nginx, one replica killed (SIGKILL) mid-load. Checks the invariants of issue 13: every request is
answered 200 except those in flight on the killed replica (counted, each a 502 naming it); every answered
request has exactly one audit record; the chain verifies; feedback from both replicas is in one store."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.audit import verify
from bot.audit_store import PostgresStore
from bot.core import Bot
from tests.serving import free_port, nginx_in_front, start_replica, wait_ready

CLIENTS = 32
PER_CLIENT = 8  # 256 requests in all
KILL_AFTER = 96  # completed requests before replica A is killed
QUESTIONS = (
    "How often are eye exams needed?",
    "What should be done for grade 2 ocular toxicity?",
    "Is CK monitored?",
    "What is rhabdomyolysis?",
    "When should defactinib be discontinued?",
    "What do I do for grade 3 skin toxicity?",
    "Can avutometinib be taken with grapefruit juice?",
    "How is hepatotoxicity managed?",
)


@dataclass
class Result:
    kind: str  # ask | decide | feedback
    status: int
    request_id: str
    upstream: str
    detail: str = ""


def run_load(base: str, victim: subprocess.Popen[str]) -> tuple[list[Result], list[int], float]:
    """32 clients x 8 requests (ask, decide, and feedback on some answers) through ``base``; ``victim`` is
    killed (SIGKILL, no goodbye) once KILL_AFTER requests have completed."""
    results: list[Result] = []
    lock = threading.Lock()
    killed_at: list[int] = []

    def record(r: Result) -> None:
        with lock:
            results.append(r)
            if len(results) >= KILL_AFTER and not killed_at:
                killed_at.append(len(results))
                victim.send_signal(signal.SIGKILL)

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            for j in range(PER_CLIENT):
                if (k + j) % 3 == 2:
                    kind, resp = (
                        "decide",
                        c.post("/api/decide", json={"reaction": "ocular", "grade": 1 + j % 4}),
                    )
                else:
                    kind, resp = (
                        "ask",
                        c.post("/api/ask", json={"question": QUESTIONS[(k * 3 + j) % len(QUESTIONS)]}),
                    )
                rid = resp.headers.get("x-request-id", "")
                record(
                    Result(kind, resp.status_code, rid, resp.headers.get("x-upstream", ""), resp.text[:200])
                )
                if resp.status_code == 200 and j % 4 == 1:
                    fb = c.post(
                        "/api/feedback",
                        json={"question": "q", "rating": "up", "request_id": rid, "comment": f"c{k}-{j}"},
                    )
                    record(Result("feedback", fb.status_code, rid, fb.headers.get("x-upstream", "")))

    t0 = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for f in [pool.submit(client, k) for k in range(CLIENTS)]:
            f.result()
    return results, killed_at, time.monotonic() - t0


@pytest.mark.slow
def test_two_replicas_behind_nginx_survive_a_killed_replica(
    real_bot: Bot, pg_url: str, tmp_path: Path
) -> None:
    root = real_bot.settings.root  # corpus and an index built for this CPU, shipped read-only to both
    ports = {"a": free_port(), "b": free_port()}
    env = {
        **os.environ,
        "FAQBOT_ROOT": str(root),
        "FAQBOT_DATABASE_URL": pg_url,
        "FAQBOT_REBUILD": "0",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",  # two replicas share the cores
        "MKL_NUM_THREADS": "1",
    }
    replicas: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, port in ports.items():
            replicas[name] = start_replica(root, port, env)
        for name, port in ports.items():
            wait_ready(f"http://127.0.0.1:{port}", replicas[name])
        with nginx_in_front(tmp_path, list(ports.values())) as base:
            results, killed_at, seconds = run_load(base, replicas["a"])
    finally:
        for proc in replicas.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    a_addr, b_addr = f"127.0.0.1:{ports['a']}", f"127.0.0.1:{ports['b']}"
    answers = [r for r in results if r.kind != "feedback"]
    answered = [r for r in answers if r.status == 200]
    failed = [r for r in results if r.status != 201 and r.status != 200]
    print(
        f"\n{len(results)} requests in {seconds:.1f} s through nginx; replica A killed after {killed_at}; "
        f"{len(failed)} failed (in flight on A); served by {Counter(r.upstream for r in results)}"
    )
    assert killed_at
    assert len(answers) == CLIENTS * PER_CLIENT
    # Only requests in flight on the killed replica fail: at most one per client, each a 502 naming A.
    assert len(failed) <= CLIENTS
    for r in failed:
        assert r.status == 502 and a_addr in r.upstream, r
    assert {a_addr, b_addr} <= {r.upstream for r in answered}  # both served before the kill
    after = results[killed_at[0] + 2 * CLIENTS :]  # well after the kill: everything answered by B
    assert after and all(r.status in (200, 201) and r.upstream.endswith(b_addr) for r in after)

    store = PostgresStore(pg_url)
    try:
        rows = list(store.records())
    finally:
        store.close()
    v = verify(rows)
    assert v.ok, v.problem
    answer_ids = Counter(r.request_id for r in rows if r.kind == "answer")
    # No audit record lost or duplicated for an answered request; at most the failed ones extra (written
    # by A just before it died, the response lost).
    for r in answered:
        assert answer_ids[r.request_id] == 1, r
    assert all(n == 1 for n in answer_ids.values())
    assert len(answer_ids) - len(answered) <= len(failed)
    # Feedback from both replicas, in one place, linked to the answers.
    saved_fb = [r for r in results if r.kind == "feedback" and r.status == 201]
    fb_rows = Counter(r.request_id for r in rows if r.kind == "feedback")
    assert all(fb_rows[r.request_id] == 1 for r in saved_fb)
    assert sum(fb_rows.values()) - len(saved_fb) <= len([r for r in failed if r.kind == "feedback"])
    assert {a_addr, b_addr} <= {r.upstream for r in saved_fb}
    assert all(answer_ids[rid] == 1 for rid in fb_rows)
    faces = Counter(r.data()["face"] for r in rows if r.kind == "answer")
    assert set(faces) == {"api"}
