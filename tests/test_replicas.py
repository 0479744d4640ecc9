"""Two ``faqbot serve`` replicas behind Debian's nginx, sharing PostgreSQL: a bounded load of 32 clients
through nginx, one replica killed (SIGKILL) mid-load. Checks the invariants of issue 13: every request is
answered 200 except those in flight on the killed replica (counted, each a 502 naming it); every answered
request has exactly one audit record; the chain verifies; feedback from both replicas is in one store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
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
from tests.serving import free_port

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

NGINX_CONF = """
worker_processes 1;
daemon off;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream faqbot {{
        server 127.0.0.1:{a} max_fails=1 fail_timeout=30s;
        server 127.0.0.1:{b} max_fails=1 fail_timeout=30s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://faqbot;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Result:
    kind: str  # ask | decide | feedback
    status: int
    request_id: str
    upstream: str
    detail: str = ""


def nginx_binary() -> str:
    found = os.environ.get("FAQBOT_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(found).exists(), (
        "nginx is not installed: run `bash scripts/services.sh install` (scripts/test.sh does)"
    )
    return found


def wait_ready(base: str, proc: subprocess.Popen[str], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"replica exited: {proc.stdout.read() if proc.stdout else ''}"
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{base} did not become ready")


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
    nginx: subprocess.Popen[str] | None = None
    try:
        for name, port in ports.items():
            replicas[name] = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--no-rebuild"],
                env=env,
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        for name, port in ports.items():
            wait_ready(f"http://127.0.0.1:{port}", replicas[name])

        front = free_port()
        conf = tmp_path / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(tmp=tmp_path, a=ports["a"], b=ports["b"], port=front, user=user))
        nginx = subprocess.Popen(
            [nginx_binary(), "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{front}"
        deadline = time.monotonic() + 20
        while True:
            assert nginx.poll() is None, (tmp_path / "error.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.1)

        results: list[Result] = []
        lock = threading.Lock()
        done = threading.Event()
        killed_at: list[int] = []

        def record(r: Result) -> None:
            with lock:
                results.append(r)
                if len(results) >= KILL_AFTER and not killed_at:
                    killed_at.append(len(results))
                    replicas["a"].send_signal(signal.SIGKILL)  # mid-load, no goodbye
                    done.set()

        def client(k: int) -> None:
            with httpx.Client(base_url=base, timeout=120) as c:
                for j in range(PER_CLIENT):
                    if (k + j) % 3 == 2:
                        kind, resp = (
                            "decide",
                            c.post("/api/decide", json={"reaction": "ocular", "grade": 1 + j % 4}),
                        )
                    else:
                        q = QUESTIONS[(k * 3 + j) % len(QUESTIONS)]
                        kind, resp = "ask", c.post("/api/ask", json={"question": q})
                    rid = resp.headers.get("x-request-id", "")
                    record(
                        Result(
                            kind, resp.status_code, rid, resp.headers.get("x-upstream", ""), resp.text[:200]
                        )
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
        seconds = time.monotonic() - t0
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=20)
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
    assert killed_at and done.is_set()
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
