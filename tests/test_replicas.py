"""Two ``faqbot serve`` replicas behind Debian's nginx, sharing PostgreSQL: a bounded load of 32 clients
through nginx, one replica (A) killed (SIGKILL) mid-load, the other (B) stopped in order (SIGTERM) after it.
Checks the invariants of issue 13: every request is answered 200 except those in flight on A (counted, each
a 502 naming it); no audit record is duplicated; the chain verifies; feedback from both replicas is in one
store; and no record of an answered request is lost, stated precisely for each write mode:

- ``FAQBOT_AUDIT_REQUIRED=1``: an answer leaves only after its record is committed, so every answered
  request (A's included) has exactly one record.
- default (records queued, written after the answer): every request B answered has exactly one record (its
  orderly stop drained its queue). A's records may miss only those still queued when it was killed: each of
  A's answered requests has at most one record, and the ones without are A's *last* answers (the queue is
  FIFO: no answer of A that completed before a recorded one, give or take the time a response takes to reach
  the client, is missing), so the chain has no gap either.
"""

from __future__ import annotations

import dataclasses
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
    done: float = 0.0  # time.monotonic() when the response arrived


# How much later than its enqueueing a response may reach the client (a thread of the killed replica between
# queueing its record and sending its answer, the proxy, the client thread): the slack of the FIFO check.
RESPONSE_SLACK_S = 1.0


def run_load(base: str, victim: subprocess.Popen[str]) -> tuple[list[Result], list[float], float]:
    """32 clients x 8 requests (ask, decide, and feedback on some answers) through ``base``; ``victim`` is
    killed (SIGKILL, no goodbye) once KILL_AFTER requests have completed."""
    results: list[Result] = []
    lock = threading.Lock()
    killed_at: list[float] = []  # [index in results, time.monotonic()]

    def record(r: Result) -> None:
        r.done = time.monotonic()
        with lock:
            results.append(r)
            if len(results) >= KILL_AFTER and not killed_at:
                victim.send_signal(signal.SIGKILL)
                killed_at.extend((len(results), time.monotonic()))

    def post(c: httpx.Client, kind: str, path: str, body: dict[str, object]) -> Result:
        """One request; a response whose body the killed replica cut off (its headers already passed on by
        nginx) is status 0 — in flight on the killed process, like a 502."""
        with c.stream("POST", path, json=body) as resp:
            rid, upstream = resp.headers.get("x-request-id", ""), resp.headers.get("x-upstream", "")
            try:
                resp.read()
            except httpx.TransportError as exc:
                return Result(kind, 0, rid, upstream, f"cut off: {exc}")
            return Result(kind, resp.status_code, rid, upstream, resp.text[:200])

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            for j in range(PER_CLIENT):
                if (k + j) % 3 == 2:
                    r = post(c, "decide", "/api/decide", {"reaction": "ocular", "grade": 1 + j % 4})
                else:
                    r = post(c, "ask", "/api/ask", {"question": QUESTIONS[(k * 3 + j) % len(QUESTIONS)]})
                record(r)
                if r.status == 200 and j % 4 == 1:
                    fb = {"question": "q", "rating": "up", "request_id": r.request_id, "comment": f"c{k}-{j}"}
                    sent = post(c, "feedback", "/api/feedback", fb)
                    record(dataclasses.replace(sent, request_id=r.request_id))  # feedback on that answer

    t0 = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for f in [pool.submit(client, k) for k in range(CLIENTS)]:
            f.result()
    return results, killed_at, time.monotonic() - t0


@pytest.mark.slow
@pytest.mark.parametrize("required", [False, True], ids=["queued", "required"])
def test_two_replicas_behind_nginx_survive_a_killed_replica(
    real_bot: Bot, pg_url: str, tmp_path: Path, required: bool
) -> None:
    root = real_bot.settings.root  # corpus and an index built for this CPU, shipped read-only to both
    ports = {"a": free_port(), "b": free_port()}
    env = {
        **os.environ,
        "FAQBOT_ROOT": str(root),
        "FAQBOT_DATABASE_URL": pg_url,
        "FAQBOT_AUDIT_REQUIRED": "1" if required else "0",
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
                proc.terminate()  # SIGTERM: an orderly stop, which drains the audit queue
                proc.wait(timeout=60)
    # uvicorn re-raises SIGTERM once its orderly shutdown (lifespan included: the audit drain) is over
    assert replicas["b"].returncode in (0, -signal.SIGTERM), (
        replicas["b"].stdout.read() if replicas["b"].stdout else ""
    )
    a_addr, b_addr = f"127.0.0.1:{ports['a']}", f"127.0.0.1:{ports['b']}"
    answers = [r for r in results if r.kind != "feedback"]
    answered = [r for r in answers if r.status == 200]
    failed = [r for r in results if r.status != 201 and r.status != 200]
    print(
        f"\n{len(results)} requests in {seconds:.1f} s through nginx; replica A killed after {killed_at}; "
        f"{len(failed)} failed (in flight on A); served by {Counter(r.upstream for r in results)}"
    )
    assert killed_at
    kill_index, kill_time = int(killed_at[0]), killed_at[1]
    assert len(answers) == CLIENTS * PER_CLIENT
    # Only requests in flight on the killed replica fail: at most one per client, each a 502 naming A or an
    # answer of A cut off mid-body (status 0).
    assert len(failed) <= CLIENTS
    for r in failed:
        assert r.status in (0, 502) and a_addr in r.upstream, r
    assert {a_addr, b_addr} <= {r.upstream for r in answered}  # both served before the kill
    after = results[kill_index + 2 * CLIENTS :]  # well after the kill: everything answered by B
    assert after and all(r.status in (200, 201) and r.upstream.endswith(b_addr) for r in after)

    store = PostgresStore(pg_url)
    try:
        rows = list(store.records())
    finally:
        store.close()
    v = verify(rows)
    assert v.ok, v.problem
    answer_ids = Counter(r.request_id for r in rows if r.kind == "answer")
    fb_rows = Counter(r.request_id for r in rows if r.kind == "feedback")
    assert all(n == 1 for n in answer_ids.values()) and all(n == 1 for n in fb_rows.values())  # no duplicate
    saved_fb = [r for r in results if r.kind == "feedback" and r.status == 201]
    saved = [(r, answer_ids) for r in answered] + [(r, fb_rows) for r in saved_fb]
    on_b = [r for r, ids in saved if ids[r.request_id] != 1 and r.upstream != a_addr]
    assert not on_b, f"B stopped in order, yet lost the records of {on_b}"
    lost = [r for r, ids in saved if ids[r.request_id] == 0]
    kept_on_a = [r for r, ids in saved if ids[r.request_id] == 1 and r.upstream == a_addr]
    print(
        f"{len(lost)} answered request(s) of A without a record (queued when it was killed); "
        f"{len(kept_on_a)} of A's recorded"
    )
    if required:  # nothing answered before its record was committed
        assert not lost, lost
    elif lost:  # only A's last answers: none completed before a recorded answer of A (FIFO queue)
        assert all(r.upstream == a_addr and r.done <= kill_time + RESPONSE_SLACK_S for r in lost)
        last_kept = max((r.done for r in kept_on_a), default=float("-inf"))
        assert min(r.done for r in lost) > last_kept - RESPONSE_SLACK_S, (
            "a record older than one that was written is missing"
        )
    # At most the failed requests extra (A recorded them, then died before its answer left).
    assert len(answer_ids) - (len(answered) - len([r for r in lost if r.kind != "feedback"])) <= len(failed)
    assert sum(fb_rows.values()) - (len(saved_fb) - len([r for r in lost if r.kind == "feedback"])) <= len(
        [r for r in failed if r.kind == "feedback"]
    )
    # Feedback from both replicas, in one place, linked to the answers.
    assert {a_addr, b_addr} <= {r.upstream for r in saved_fb if fb_rows[r.request_id] == 1}
    lost_answers = {r.request_id for r in lost if r.kind != "feedback"}
    assert all(answer_ids[rid] == 1 or rid in lost_answers for rid in fb_rows)
    faces = Counter(r.data()["face"] for r in rows if r.kind == "answer")
    assert set(faces) == {"api"}
