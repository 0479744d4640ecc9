"""The audit trail: hash chain and its verification, pruning, redaction, the failure policy, the records
``Bot.decide`` / the API write, export and the CLI. Each store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.audit import Auditor, AuditWriteError, export_lines, redactor, verify
from bot.audit_store import (
    GENESIS,
    AuditRecord,
    AuditStore,
    AuditStoreError,
    Entry,
    PostgresStore,
    SQLiteStore,
    open_store,
    redact_url,
)
from bot.cli import main
from bot.core import Bot
from bot.dose import Facts
from bot.feedback import Feedback, FeedbackLog
from bot.records import Caller
from bot.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    s: AuditStore
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "data" / "audit.sqlite3")
    else:
        s = PostgresStore(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def raw_execute(s: AuditStore, sql: str, *params: Any) -> None:
    """Tamper with the stored rows behind the store's back (what an attacker with DB access could do)."""
    if isinstance(s, SQLiteStore):
        with sqlite3.connect(s.path) as db:
            db.execute(sql.replace("%s", "?"), params)
    else:
        assert isinstance(s, PostgresStore)
        with psycopg.connect(s.url, autocommit=True) as conn:
            conn.execute(sql, params)


def fill(s: AuditStore, n: int) -> list[AuditRecord]:
    return [
        s.append("answer", f"r{k}", {"face": "api", "question": f"q{k}", "route": "answer"}) for k in range(n)
    ]


# ---- the chain ----------------------------------------------------------------------------------------
def test_records_form_a_chain_that_verifies(store: AuditStore) -> None:
    written = fill(store, 5)
    assert [r.seq for r in written] == [1, 2, 3, 4, 5]
    assert written[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    read = list(store.records())
    assert read == written
    v = verify(read)
    assert v.ok and v.records == 5 and v.head == written[-1].hash
    assert verify([]).ok


def test_verify_names_an_edited_record(store: AuditStore) -> None:
    fill(store, 5)
    raw_execute(store, "UPDATE audit_log SET body = replace(body, 'q2', 'q9') WHERE seq = %s", 3)
    v = verify(store.records())
    assert not v.ok and v.bad_seq == 3 and "record 3 was edited" in v.problem


def test_verify_names_a_deleted_record(store: AuditStore) -> None:
    fill(store, 5)
    raw_execute(store, "DELETE FROM audit_log WHERE seq = %s", 3)
    v = verify(store.records())
    assert not v.ok and v.bad_seq == 4 and "record(s) 3 before record 4 were deleted" in v.problem


def test_verify_names_reordered_records(store: AuditStore) -> None:
    """Records 2 and 3 swapped, each keeping its own hash: re-sealing would need every later hash too."""
    fill(store, 5)
    raw_execute(store, "UPDATE audit_log SET seq = -2 WHERE seq = 2")
    raw_execute(store, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    raw_execute(store, "UPDATE audit_log SET seq = 3 WHERE seq = -2")
    v = verify(store.records())
    assert not v.ok and v.bad_seq == 2 and "edited" in v.problem
    # A forger who also re-seals the swapped records is caught by the links instead.
    from bot.audit_store import seal

    recs = {r.seq: r for r in store.records()}
    for seq in (2, 3):
        r = recs[seq]
        digest = seal(seq, r.at, r.kind, r.request_id, r.prev_hash, r.body)
        raw_execute(store, "UPDATE audit_log SET hash = %s WHERE seq = %s", digest, seq)
    v = verify(store.records())
    assert not v.ok and v.bad_seq == 2 and "does not follow record 1" in v.problem


def test_deleting_the_oldest_records_without_a_pruning_record_is_caught(store: AuditStore) -> None:
    fill(store, 4)
    raw_execute(store, "DELETE FROM audit_log WHERE seq <= %s", 2)
    v = verify(store.records())
    assert not v.ok and v.bad_seq == 3 and "no pruning record attests it" in v.problem


def test_pruning_records_what_it_did_and_starts_a_new_verified_segment(store: AuditStore) -> None:
    fill(store, 3)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    auditor = Auditor(store, retention_days=1)
    record = auditor.prune(now=cutoff + timedelta(days=1))  # everything so far is older than a day then
    assert record is not None and record.kind == "prune" and record.seq == 4
    body = record.data()
    assert body["deleted"] == 3 and body["deleted_through_seq"] == 3 and body["retention_days"] == 1
    kept = fill(store, 2)
    rows = list(store.records())
    assert [r.seq for r in rows] == [4, 5, 6] and rows[1:] == kept
    v = verify(rows)
    assert v.ok and v.first_seq == 4 and v.last_seq == 6
    assert auditor.prune(now=datetime.now(UTC) - timedelta(days=5)) is None  # nothing old enough
    # Once more: the new first record is attested by the second pruning record.
    second = auditor.prune(now=datetime.now(UTC) + timedelta(days=2))
    assert second is not None and second.data()["deleted_through_seq"] == 6
    assert verify(store.records()).ok and store.count() == 1


def test_two_writers_on_one_store_extend_one_chain(store: AuditStore, tmp_path: Path) -> None:
    """Two store objects (two replicas) appending from threads at once: one gap-free chain."""
    from concurrent.futures import ThreadPoolExecutor

    other: AuditStore = (
        SQLiteStore(store.path) if isinstance(store, SQLiteStore) else PostgresStore(store.url)  # type: ignore[attr-defined]
    )
    try:
        with ThreadPoolExecutor(8) as pool:
            jobs = [
                pool.submit((store if k % 2 else other).append, "answer", f"r{k}", {"k": k})
                for k in range(160)
            ]
            results = [j.result() for j in jobs]
        rows = list(store.records())
        assert len(rows) == 160 and [r.seq for r in rows] == list(range(1, 161))
        assert sorted(r.request_id for r in rows) == sorted(r.request_id for r in results)
        assert verify(rows).ok
    finally:
        other.close()


# ---- redaction, failure policy ------------------------------------------------------------------------
def test_redaction_modes() -> None:
    assert redactor("full")("grade 3, Mr X") == "grade 3, Mr X"
    assert redactor("dropped")("grade 3, Mr X") is None
    plain = redactor("hashed")("grade 3, Mr X")
    keyed = redactor("hashed", "k")("grade 3, Mr X")
    assert plain.startswith("sha256:") and keyed.startswith("hmac-sha256:") and plain[7:] != keyed[12:]
    assert "Mr X" not in plain + keyed
    with pytest.raises(Exception, match="full, hashed, dropped"):
        redactor("partial")


class BrokenStore(SQLiteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.broken = True

    def append_many(self, entries: Sequence[Entry]) -> list[AuditRecord]:
        if self.broken:
            raise AuditStoreError("cannot write to the audit store: disk I/O error")
        return super().append_many(entries)

    def ping(self) -> None:
        if self.broken:
            raise AuditStoreError("down")


def decide_bot(project: Path, **kw: Any) -> Bot:
    return Bot(Settings(root=project, **kw))


def test_a_failed_write_is_counted_and_the_answer_still_goes_out(project: Path, caplog: Any) -> None:
    bot = decide_bot(project)
    broken = BrokenStore(project / "b.sqlite3")
    bot.auditor = Auditor(broken)
    a = bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "alice", "r1"))
    assert a.route == "decision"
    assert bot.auditor.flush(10)  # the answer went out before its record was tried
    status = bot.auditor.status()
    assert status["failed"] == 1 and status["written"] == 0 and not status["ok"]
    assert "disk I/O error" in status["last_error"]
    assert not bot.auditor.check()["ok"]  # /readyz probes the store: still down
    assert "audit record r1 not written" in caplog.text
    broken.broken = False  # the store is back: /readyz sees it at once, and writes resume
    assert bot.auditor.check()["ok"]
    bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "alice", "r2"))
    assert bot.auditor.flush(10)
    assert [r.request_id for r in broken.records()] == ["r2"]


class GatedStore(SQLiteStore):
    """A store whose writes wait for ``gate`` (a slow database); counts the records of each transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.batches: list[int] = []

    def append_many(self, entries: Sequence[Entry]) -> list[AuditRecord]:
        assert self.gate.wait(30)
        self.batches.append(len(entries))
        return super().append_many(entries)


def test_answers_do_not_wait_for_the_audit_write_and_queued_records_share_a_commit(project: Path) -> None:
    bot = decide_bot(project)
    store = GatedStore(project / "g.sqlite3")
    bot.auditor = Auditor(store)
    for k in range(20):  # the store is stuck: answers go out anyway, their records queue
        assert bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "a", f"r{k}")).route
    status = bot.auditor.status()  # the writer holds the first batch, stuck; the rest wait in the queue
    assert status["written"] == 0 and store.count() == 0
    store.gate.set()
    assert bot.auditor.flush(10)
    rows = list(store.records())
    assert [r.request_id for r in rows] == [f"r{k}" for k in range(20)]  # queue order
    assert verify(rows).ok and sum(store.batches) == 20 and len(store.batches) <= 2  # group commit
    assert bot.auditor.status() | {"written": 20, "failed": 0, "queued": 0} == bot.auditor.status()


def test_audit_required_answers_only_after_the_commit(project: Path) -> None:
    bot = decide_bot(project, audit_required=True)
    store = GatedStore(project / "g.sqlite3")
    bot.auditor = Auditor(store, required=True)
    done = threading.Event()

    def ask() -> None:
        bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "a", "r1"))
        done.set()

    threading.Thread(target=ask, daemon=True).start()
    assert not done.wait(0.5)  # the store has not committed: no answer yet
    store.gate.set()
    assert done.wait(10) and [r.request_id for r in store.records()] == ["r1"]


def test_a_full_queue_makes_callers_wait_and_close_drains_it(project: Path, caplog: Any) -> None:
    store = GatedStore(project / "g.sqlite3")
    auditor = Auditor(store, queue_max=2)
    returned: list[str] = []

    def record(rid: str) -> None:
        auditor.record_answer(Caller("api", "a", rid), {"route": "answer"})
        returned.append(rid)

    record("r0")
    deadline = time.monotonic() + 10
    while auditor.status()["queued"] and time.monotonic() < deadline:  # the writer holds r0
        time.sleep(0.01)
    record("r1")
    record("r2")  # the queue (2) is full now
    late = threading.Thread(target=record, args=("r3",), daemon=True)
    late.start()
    late.join(0.5)
    assert late.is_alive() and returned == ["r0", "r1", "r2"]  # waits for room; nothing dropped
    threading.Timer(0.3, store.gate.set).start()
    auditor.close()  # an orderly stop: everything queued is written first
    late.join(5)
    assert [r.request_id for r in SQLiteStore(store.path).records()] == ["r0", "r1", "r2", "r3"]
    auditor.record_answer(
        Caller("api", "a", "r4"), {"route": "answer"}
    )  # after close: counted, not lost silently
    assert auditor.status()["failed"] == 1 and "audit record r4 not written" in caplog.text


def test_a_queue_size_below_one_is_refused_naming_it(project: Path) -> None:
    from bot.errors import FaqbotError

    with pytest.raises(FaqbotError, match="FAQBOT_AUDIT_QUEUE=0 must be >= 1"):
        Auditor.from_settings(Settings(root=project, audit_queue=0))
    assert not (project / ".faqbot-data").exists()  # refused before anything was opened


def test_audit_required_fails_the_request_instead(project: Path) -> None:
    bot = decide_bot(project, audit_required=True)
    bot.auditor = Auditor(BrokenStore(project / "b.sqlite3"), required=True)
    with pytest.raises(AuditWriteError, match="could not be written"):
        bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "alice", "r1"))
    assert bot.decide(Facts(reaction="ocular", grade=3)).route == "decision"  # no caller: not audited


# ---- what Bot.decide records --------------------------------------------------------------------------
def test_decide_with_a_caller_writes_one_full_record(project: Path) -> None:
    bot = decide_bot(project)
    a = bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "alice", "req-1"))
    bot.decide(Facts(reaction="ocular", grade=3))  # no caller: nothing written
    assert bot.auditor is not None and bot.auditor.flush(10)
    rows = list(bot.auditor.store.records())
    assert len(rows) == 1 and rows[0].kind == "answer" and rows[0].request_id == "req-1"
    r = rows[0].data()
    assert r["face"] == "api" and r["user"] == "alice" and r["route"] == "decision" == a.route
    assert r["rule_ids"] and all(not i.startswith("?") for i in r["rule_ids"])
    import hashlib

    assert (
        r["rules_sha256"] == hashlib.sha256((project / "corpus" / "dose_rules.yaml").read_bytes()).hexdigest()
    )
    src = project / "corpus" / "avutometinib_dose_modification.md"
    assert r["corpus_sha256"] == {
        "corpus/avutometinib_dose_modification.md": hashlib.sha256(src.read_bytes()).hexdigest()
    }
    assert [c["id"] for c in r["citations"]] == [c.id for c in a.citations]
    assert all({"source", "start", "end"} <= set(c) for c in r["citations"])
    assert r["facts"] == {"reaction": "ocular", "grade": 3} and r["answer"] == a.text
    assert r["latency_ms"] > 0 and r["version"] and r["model"] is None  # decide never loads the model
    assert (project / ".faqbot-data" / "audit.sqlite3").exists()  # default store: SQLite in the data dir


def test_hashed_redaction_keeps_no_question_text(project: Path) -> None:
    bot = decide_bot(project, audit_redaction="hashed")
    bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "alice", "r"))
    assert bot.auditor is not None and bot.auditor.flush(10)
    r = next(iter(bot.auditor.store.records())).data()
    assert r["question"].startswith("sha256:") and "answer" not in r and r["answer_sha256"]
    assert r["rule_ids"]


def test_audit_off_writes_nothing(project: Path) -> None:
    bot = decide_bot(project, audit=False)
    bot.decide(Facts(reaction="ocular", grade=3), caller=Caller("api", "alice", "r"))
    assert bot.auditor is None and not (project / ".faqbot-data").exists()


# ---- opening stores -----------------------------------------------------------------------------------
def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://faqbot:s3cret-pw@127.0.0.1:1/faqbot"
    assert redact_url(url) == "postgresql://faqbot:***@127.0.0.1:1/faqbot"
    with pytest.raises(AuditStoreError) as info:
        open_store(url, tmp_path)
    assert "postgresql://faqbot:***@127.0.0.1:1/faqbot" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(AuditStoreError, match="must start with postgresql://"):
        open_store("mysql://x:pw@h/db", tmp_path)


def test_faqbot_serve_exits_at_once_when_the_database_is_unreachable(project: Path) -> None:
    env = {
        "FAQBOT_ROOT": str(project),
        "FAQBOT_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/db",
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "1"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "postgresql://u:***@127.0.0.1:1/db" in proc.stderr and "hunter2" not in proc.stderr


# ---- export and the CLI -------------------------------------------------------------------------------
def test_export_jsonl_and_csv(store: AuditStore) -> None:
    written = fill(store, 3)
    lines = list(export_lines(store.records(), "jsonl"))
    objs = [json.loads(x) for x in lines]
    assert [o["seq"] for o in objs] == [1, 2, 3] and objs[1]["question"] == "q1"
    assert objs[2]["hash"] == written[2].hash and objs[2]["request_id"] == "r2"
    rows = list(csv.reader(io.StringIO("".join(export_lines(store.records(), "csv")))))
    assert rows[0][:4] == ["seq", "time", "kind", "request_id"] and len(rows) == 4
    assert json.loads(rows[3][-1])["question"] == "q2"
    since = list(store.records(written[2].at))
    assert [r.seq for r in since] == [3]


def run_cli(*argv: str, env: dict[str, str], monkeypatch: Any) -> tuple[int, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_cli_verify_export_prune_and_feedback_export(project: Path, monkeypatch: Any) -> None:
    env = {"FAQBOT_ROOT": str(project)}
    bot = decide_bot(project)
    for k in range(3):
        bot.decide(Facts(reaction="ocular", grade=k + 1), caller=Caller("api", "alice", f"r{k}"))
    assert bot.auditor is not None
    FeedbackLog(project / "unused.jsonl", store=bot.auditor).append(
        Feedback("q", "down", comment="wrong row", user="bob", request_id="r1", face="api")
    )
    assert bot.auditor.flush(10)
    code, text = run_cli("audit", "verify", env=env, monkeypatch=monkeypatch)
    assert code == 0 and "intact: 4 record(s)" in text
    code, text = run_cli("audit", "export", "--format", "csv", env=env, monkeypatch=monkeypatch)
    assert code == 0 and len(text.splitlines()) == 5
    code, text = run_cli("audit", "export", "--since", "2000-01-01", env=env, monkeypatch=monkeypatch)
    assert code == 0 and [json.loads(x)["request_id"] for x in text.splitlines()] == ["r0", "r1", "r2", "r1"]
    code, text = run_cli("feedback", "export", env=env, monkeypatch=monkeypatch)
    fb = [json.loads(x) for x in text.splitlines()]
    assert code == 0 and len(fb) == 1 and fb[0]["request_id"] == "r1" and fb[0]["comment"] == "wrong row"
    assert not (project / "unused.jsonl").exists()
    with sqlite3.connect(project / ".faqbot-data" / "audit.sqlite3") as db:
        db.execute("UPDATE audit_log SET body = replace(body, 'alice', 'mallory') WHERE seq = 2")
    code, text = run_cli("audit", "verify", env=env, monkeypatch=monkeypatch)
    assert code == 1 and "record 2 was edited" in text
    code, _ = run_cli("audit", "export", "--since", "yesterday", env=env, monkeypatch=monkeypatch)
    assert code == 2
    code, _ = run_cli("audit", "prune", env=env, monkeypatch=monkeypatch)
    assert code == 2  # retention 0: keep forever
    code, text = run_cli(
        "audit", "prune", env={**env, "FAQBOT_AUDIT_RETENTION_DAYS": "0.00000001"}, monkeypatch=monkeypatch
    )
    assert code == 0 and "pruned 4 record(s)" in text


def test_feedback_without_a_store_still_writes_jsonl(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "f.jsonl")
    saved = log.append(Feedback("q", "up", request_id="abc"))
    assert saved["request_id"] == "abc" and log.read()[0]["request_id"] == "abc"


# ---- the API face -------------------------------------------------------------------------------------
def test_api_decide_and_feedback_are_audited_with_request_ids_and_users(project: Path) -> None:
    from fastapi.testclient import TestClient

    from bot.server import create_app

    bot = Bot(Settings(root=project, auth_users="alice:pw"))
    auth = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
    with TestClient(create_app(bot), raise_server_exceptions=False) as c:
        r = c.post("/api/decide", json={"reaction": "ocular", "grade": 2}, headers=auth)
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        f = c.post("/api/feedback", json={"question": "q", "rating": "up", "request_id": rid}, headers=auth)
        assert f.status_code == 201 and f.headers["x-request-id"] != rid
        assert c.post("/api/decide", json={"reaction": "ocular", "grade": 2}).status_code == 401
    assert bot.auditor is not None
    rows = list(bot.auditor.store.records())
    assert [(r.kind, r.request_id) for r in rows] == [("answer", rid), ("feedback", rid)]
    assert rows[0].data()["user"] == "alice" and rows[0].data()["face"] == "api"
    assert rows[1].data()["user"] == "alice" and rows[1].data()["rating"] == "up"


def test_api_answers_503_when_audit_is_required_and_down(project: Path) -> None:
    from fastapi.testclient import TestClient

    from bot.server import create_app

    bot = Bot(Settings(root=project, audit_required=True))
    broken = BrokenStore(project / "b.sqlite3")
    bot.auditor = Auditor(broken, required=True)
    with TestClient(create_app(bot), raise_server_exceptions=False) as c:
        r = c.post("/api/decide", json={"reaction": "ocular", "grade": 2})
        assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
        broken.broken = False
        assert c.post("/api/decide", json={"reaction": "ocular", "grade": 2}).status_code == 200


def test_settings_hide_the_database_password(monkeypatch: Any) -> None:
    monkeypatch.setenv("FAQBOT_DATABASE_URL", "postgresql://u:topsecret@db/faqbot")
    out = io.StringIO()
    assert main(["settings"], out=out) == 0
    assert "FAQBOT_DATABASE_URL=postgresql://u:***@db/faqbot" in out.getvalue()
    assert "topsecret" not in out.getvalue()


def test_settings_defaults() -> None:
    s = Settings()
    assert s.audit and not s.audit_required and s.audit_redaction == "full" and s.database_url == ""
    assert Settings.from_env({"FAQBOT_AUDIT_REQUIRED": "1"}).audit_required


# ---- a database that goes away mid-run ----------------------------------------------------------------
def test_a_database_that_goes_away_and_comes_back(pg_url: str, project: Path) -> None:
    """Answers continue (failures counted) while PostgreSQL is unreachable; writes resume when it returns;
    with audit_required the request fails instead. The chain stays intact throughout."""
    import time
    from urllib.parse import urlsplit

    from tests.serving import TcpProxy

    parts = urlsplit(pg_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    proxied = pg_url.replace(f"@{parts.hostname}:{parts.port}/", f"@127.0.0.1:{proxy.port}/")
    bot = Bot(Settings(root=project, database_url=proxied))
    facts = Facts(reaction="ocular", grade=3)
    try:
        bot.decide(facts, caller=Caller("api", "alice", "before"))
        assert bot.auditor is not None and bot.auditor.flush(10)
        proxy.stop()  # the database goes away: connections cut, new ones refused
        assert bot.decide(facts, caller=Caller("api", "alice", "during")).route == "decision"
        assert bot.auditor.flush(10)  # the writer tried, failed, and counted it
        status = bot.auditor.status()
        assert status["failed"] == 1 and not status["ok"] and "***" in status["last_error"]
        required = Auditor(bot.auditor.store, required=True)
        with pytest.raises(AuditWriteError):
            required.record_answer(Caller("api", "alice", "refused"), {"route": "decision"})
        assert not bot.auditor.check()["ok"]
        proxy.start()  # back
        deadline = time.monotonic() + 10
        while not bot.auditor.check()["ok"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert bot.auditor.check()["ok"]
        bot.decide(facts, caller=Caller("api", "alice", "after"))
        assert bot.auditor.flush(10) and bot.auditor.status()["written"] == 2
    finally:
        proxy.stop()
    store = PostgresStore(pg_url)
    try:
        rows = list(store.records())
        assert [r.request_id for r in rows] == ["before", "after"] and verify(rows).ok
    finally:
        store.close()


# ---- with the real model ------------------------------------------------------------------------------
def records_for(bot: Bot, request_id: str) -> list[dict[str, Any]]:
    assert bot.auditor is not None and bot.auditor.flush(10)
    return [r.data() for r in bot.auditor.store.records() if r.request_id == request_id]


@pytest.mark.slow
def test_ask_records_the_model_spans_and_cache_hits(real_bot: Bot) -> None:
    q = "How often are eye exams needed?"
    first = real_bot.ask(q, caller=Caller("mcp", "carol", "ask-1"))
    again = real_bot.ask(q, caller=Caller("mcp", "carol", "ask-2"))  # an answer from the cache: recorded too
    assert again is first
    for rid in ("ask-1", "ask-2"):
        (r,) = records_for(real_bot, rid)
        assert (
            r["face"] == "mcp" and r["user"] == "carol" and r["route"] == "answer" and r["mode"] == "hybrid"
        )
        assert r["model"] == real_bot.embedder.model_id and r["model"]
        assert [(c["id"], c["start"], c["end"]) for c in r["citations"]] == [
            (c.id, c.start, c.end) for c in first.citations
        ]
        assert r["question"] == q and r["rule_ids"] == [] and r["latency_ms"] > 0
    dosing = real_bot.ask("grade 3 eye toxicity, what now?", caller=Caller("api", "carol", "ask-3"))
    (r,) = records_for(real_bot, "ask-3")
    assert dosing.route == "decision" and r["rule_ids"] and r["route"] == "decision"


@pytest.mark.slow
def test_ui_turns_and_cli_audit(real_bot: Bot, monkeypatch: Any) -> None:
    import getpass

    from bot.ui import ask_turn, ui_caller

    turn = ask_turn(real_bot, "Is CK monitored?", [], ui_caller(None))
    (r,) = records_for(real_bot, turn["request_id"])
    assert r["face"] == "ui" and r["user"] == "anonymous" and turn["answer"]["route"] == r["route"]

    assert real_bot.auditor is not None
    before = real_bot.auditor.store.count()
    env = {"FAQBOT_ROOT": str(real_bot.settings.root)}
    code, _ = run_cli("ask", "--json", "Is CK monitored?", env=env, monkeypatch=monkeypatch)
    assert code == 0 and real_bot.auditor.store.count() == before  # the CLI records only when asked
    code, _ = run_cli("ask", "--audit", "--json", "Is CK monitored?", env=env, monkeypatch=monkeypatch)
    assert code == 0
    last = list(real_bot.auditor.store.records())[-1].data()
    assert last["face"] == "cli" and last["user"] == getpass.getuser()
    assert verify(real_bot.auditor.store.records()).ok
