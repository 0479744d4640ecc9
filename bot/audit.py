"""The audit trail: what faqbot told whom, and on what basis, in a hash chain nothing can silently change.

:class:`Auditor` turns an answer (or a feedback entry) and its :class:`~bot.records.Caller` into a record
body and appends it to an :class:`~bot.audit_store.AuditStore`. ``Bot.ask`` / ``Bot.decide`` call it when a
caller is given, so every face (API, UI, CDS Hooks, MCP; the CLI with ``--audit``) is audited by passing
a Caller. :func:`verify` walks the chain and names the first edited, deleted or reordered record;
:func:`export_lines` writes records as JSON lines or CSV; :meth:`Auditor.prune` applies the retention.

Writing: records go through a bounded in-process queue to one writer thread, which appends everything
queued since its last commit in one transaction (group commit), in queue order. By default
(``FAQBOT_AUDIT_REQUIRED=0``) a caller only queues its record and returns: the answer does not wait for
the database. With ``FAQBOT_AUDIT_REQUIRED=1`` the caller waits until its record is committed and raises
:class:`AuditWriteError` (the face answers 503) when it cannot be. A full queue makes callers wait for room
(nothing is dropped); :meth:`Auditor.flush` waits for the queue to drain, :meth:`Auditor.close` drains it
and closes the store (``faqbot serve`` does on shutdown, and an exit hook does for other processes).

What this guarantees, by default: every record of an answer is committed shortly after the answer left
(one commit later), unless the process dies without an orderly stop (SIGKILL, OOM kill, crash) in between;
then the records still queued are lost, and they are always the replica's most recent answers (the queue is
FIFO and ``seq`` is assigned at commit, so the chain has no gap). A write that fails (store down) is logged
with its request id and counted on ``/readyz``; the answer has gone out. With ``FAQBOT_AUDIT_REQUIRED=1`` no
answer leaves before its record is committed.
"""

from __future__ import annotations

import atexit
import collections
import csv
import hashlib
import hmac
import io
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.audit_store import (
    GENESIS,
    MAX_BATCH,
    AuditRecord,
    AuditStore,
    AuditStoreError,
    Entry,
    canonical,
    open_store,
    seal,
)
from bot.errors import FaqbotError
from bot.records import Answer, Caller
from bot.settings import Settings

log = logging.getLogger("faqbot")

REDACTIONS = ("full", "hashed", "dropped")
EXPORT_FORMATS = ("jsonl", "csv")
CSV_FIELDS = ("seq", "time", "kind", "request_id", "face", "user", "route", "latency_ms", "hash", "record")
PRUNE_CHECK_S = 3600.0
DRAIN_S = 30.0  # how long close() (an orderly shutdown) waits for the queue to drain
CONFIRM_S = 60.0  # how long a caller with audit_required waits for its commit (store timeouts are shorter)


class AuditWriteError(FaqbotError):
    """An audit record could not be written and ``FAQBOT_AUDIT_REQUIRED`` is on: do not answer."""


def redactor(mode: str, key: str = "") -> Any:
    """A function text → what the record keeps: the text (full), an HMAC-SHA256 / SHA-256 hex (hashed,
    keyed by ``FAQBOT_AUDIT_HASH_KEY`` when set) or None (dropped)."""
    if mode not in REDACTIONS:
        raise FaqbotError(f"FAQBOT_AUDIT_REDACTION={mode!r} must be one of {', '.join(REDACTIONS)}")
    if mode == "full":
        return lambda text: text
    if mode == "dropped":
        return lambda text: None
    secret = key.encode("utf-8")

    def hashed(text: str) -> str:
        data = text.encode("utf-8")
        digest = hmac.new(secret, data, hashlib.sha256) if secret else hashlib.sha256(data)
        return ("hmac-sha256:" if secret else "sha256:") + digest.hexdigest()

    return hashed


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def rule_ids(answer: Answer, rules: Any) -> list[str]:
    """Ids of the rules (table rows) an answer decided on, found by the decision's quoted span."""
    if rules is None or not answer.decisions:
        return []
    by_span = {(r.source, r.quote.start, r.quote.end): r.id for r in rules.rules}
    return [by_span.get((d.source, d.start, d.end), f"?{d.start}-{d.end}") for d in answer.decisions]


def _spans(citations: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"id": c.id, "source": c.source, "start": c.start, "end": c.end} for c in citations]


@dataclass
class AuditStats:
    """Counters shown on ``/readyz``."""

    written: int = 0
    failed: int = 0
    last_error: str = ""
    last_failure: str = ""
    failing: int = 0  # failures since the last successful write
    queued: int = 0  # records waiting for the writer
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "written": self.written,
                "failed": self.failed,
                "queued": self.queued,
                "last_error": self.last_error,
                "last_failure": self.last_failure,
            }


class Auditor:
    """Builds records and appends them; applies the failure policy and the retention."""

    def __init__(
        self,
        store: AuditStore,
        redaction: str = "full",
        required: bool = False,
        retention_days: float = 0.0,
        hash_key: str = "",
        queue_max: int = 10_000,
    ) -> None:
        if queue_max < 1:
            raise FaqbotError(f"FAQBOT_AUDIT_QUEUE={queue_max} must be >= 1")
        self.store = store
        self.redaction = redaction
        self.redact = redactor(redaction, hash_key)
        self.required = required
        self.retention_days = retention_days
        self.stats = AuditStats()
        self._next_prune = 0.0
        self._prune_lock = threading.Lock()
        self.queue_max = queue_max
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cv = threading.Condition()
        self._busy = False  # the writer holds a batch
        self._writer: threading.Thread | None = None
        self._closed = False
        self._waiting = 0  # callers waiting for room in a full queue (under self._cv)

    @classmethod
    def from_settings(cls, s: Settings) -> Auditor:
        """Open the store the settings name; AuditStoreError (URL without password) if it cannot."""
        if s.audit_retention_days < 0:
            raise FaqbotError(f"FAQBOT_AUDIT_RETENTION_DAYS={s.audit_retention_days} must be >= 0")
        redactor(s.audit_redaction)  # checked before anything is opened
        if s.audit_queue < 1:
            raise FaqbotError(f"FAQBOT_AUDIT_QUEUE={s.audit_queue} must be >= 1")
        store = open_store(s.database_url, s.resolve(s.data_dir))
        return cls(
            store,
            s.audit_redaction,
            s.audit_required,
            s.audit_retention_days,
            s.audit_hash_key,
            s.audit_queue,
        )

    @property
    def ok(self) -> bool:
        """False after a failed write until the next successful one."""
        with self.stats.lock:
            return self.stats.failing == 0

    def check(self) -> dict[str, Any]:
        """:meth:`status`, after probing the store when the last write failed (so a store that is back is
        seen as back even when no write has been tried since, e.g. while /readyz keeps traffic away)."""
        if not self.ok:
            try:
                self.store.ping()
            except AuditStoreError as exc:
                with self.stats.lock:
                    self.stats.last_error = str(exc)
            else:
                with self.stats.lock:
                    self.stats.failing = 0
        return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "backend": self.store.backend,
            "where": self.store.where,
            "required": self.required,
            "redaction": self.redaction,
            "ok": self.ok,
            **self.stats.to_dict(),
        }

    # ---- writing -------------------------------------------------------------------------------------
    def _append(self, kind: str, request_id: str, body: dict[str, Any]) -> AuditRecord | None:
        """Queue a record for the writer. Default: return None at once (failures are logged and counted by
        the writer). ``required``: wait for the commit and return the record, or raise AuditWriteError."""
        item = _Pending(Entry(kind, request_id, canonical(body)), threading.Event())
        with self._cv:
            if self._closed:
                item.error = AuditStoreError("the audit trail is closed (the server is stopping)")
                item.done.set()
            else:
                self._start_writer()
                self._waiting += 1  # flush() waits for callers waiting for room, not only for the queue
                try:
                    while len(self._queue) >= self.queue_max and not self._closed:  # back-pressure
                        self._cv.wait()
                finally:
                    self._waiting -= 1
                if self._closed:  # stopped while this caller waited: fail it visibly, never queue it unseen
                    item.error = AuditStoreError("the audit trail is closed (the server is stopping)")
                    item.done.set()
                else:
                    self._queue.append(item)
                    with self.stats.lock:
                        self.stats.queued = len(self._queue)
                self._cv.notify_all()
        if item.done.is_set() and item.error is not None:  # closed: nothing will write it
            self._failed([item], item.error)
        if not self.required:
            return None
        if not item.done.wait(CONFIRM_S):
            raise AuditWriteError(f"the audit record was not confirmed within {CONFIRM_S:.0f} s")
        if item.error is not None:
            raise AuditWriteError(f"the audit record could not be written: {item.error}") from None
        return item.record

    def _start_writer(self) -> None:  # under self._cv
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_loop, name="faqbot-audit-writer", daemon=True)
            self._writer.start()
            atexit.register(self.flush, DRAIN_S)

    def _write_loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    if self._closed:
                        return
                    self._cv.wait()
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                self._busy = True
                with self.stats.lock:
                    self.stats.queued = len(self._queue)
                self._cv.notify_all()  # room for callers waiting on a full queue
            try:
                self._write(batch)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _write(self, batch: list[_Pending]) -> None:
        """One transaction for the batch (group commit); every record gets its result."""
        try:
            records = self.store.append_many([p.entry for p in batch])
        except Exception as exc:  # the writer must survive anything; the batch fails as a whole
            error = exc if isinstance(exc, AuditStoreError) else AuditStoreError(f"audit write failed: {exc}")
            self._failed(batch, error)
            for p in batch:
                p.error = error
                p.done.set()
            return
        with self.stats.lock:
            self.stats.written += len(records)
            self.stats.failing = 0
        for p, r in zip(batch, records, strict=True):
            p.record = r
            p.done.set()
        try:
            self.maybe_prune()
        except Exception:  # never let the retention stop the writer
            log.exception("faqbot: audit retention pruning failed")

    def _failed(self, batch: list[_Pending], exc: AuditStoreError) -> None:
        with self.stats.lock:
            self.stats.failed += len(batch)
            self.stats.failing += len(batch)
            self.stats.last_error = str(exc)
            self.stats.last_failure = datetime.now(UTC).isoformat()
        ids = ", ".join(p.entry.request_id or p.entry.kind for p in batch)
        log.error("faqbot: audit record %s not written: %s", ids, exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record has been written (or has failed); False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._queue or self._busy or self._waiting:
                if self._writer is None or not self._writer.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def answer_body(
        self,
        caller: Caller,
        answer: Answer,
        history: Sequence[str],
        latency_ms: float,
        provenance: dict[str, Any],
        rules: Any = None,
        mode: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The record body of one answer: who, what was asked (redacted), what was answered and on what."""
        body: dict[str, Any] = {
            "face": caller.face,
            "user": caller.user or "anonymous",
            "question": self.redact(answer.question),
            "history": None if self.redaction == "dropped" else [self.redact(h) for h in history],
            "redaction": self.redaction,
            "route": answer.route,
            "rule_ids": rule_ids(answer, rules),
            "citations": _spans(answer.citations),
            "related": _spans(answer.related),
            "missing": list(answer.missing),
            "answer_sha256": hashlib.sha256(answer.text.encode("utf-8")).hexdigest(),
            "latency_ms": round(latency_ms, 3),
            **provenance,
        }
        if self.redaction == "full":
            body["answer"] = answer.text
        if mode is not None:
            body["mode"] = mode
        if facts is not None:
            body["facts"] = facts
        return body

    def record_answer(self, caller: Caller, body: dict[str, Any]) -> AuditRecord | None:
        """Append an answer record (failure policy applies)."""
        return self._append("answer", caller.request_id, body)

    def record_feedback(self, body: dict[str, Any], request_id: str = "") -> AuditRecord | None:
        """Append a feedback record linked to the answer's request id (failure policy applies)."""
        redacted = dict(body)
        if "question" in redacted and isinstance(redacted["question"], str):
            redacted["question"] = self.redact(redacted["question"])
        if "history" in redacted:
            redacted["history"] = (
                None
                if self.redaction == "dropped"
                else [self.redact(str(h)) for h in redacted["history"] or []]
            )
        return self._append("feedback", request_id, redacted)

    # ---- retention -----------------------------------------------------------------------------------
    def prune(self, now: datetime | None = None) -> AuditRecord | None:
        """Delete records older than the retention and append a pruning record (None: nothing to do)."""
        if self.retention_days <= 0:
            return None
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        before = cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record = self.store.prune(before, {"retention_days": self.retention_days, "before": before})
        if record is not None:
            log.warning(
                "faqbot: audit retention pruned %s record(s) before %s", record.data()["deleted"], before
            )
        return record

    def maybe_prune(self) -> None:
        """Prune at most once an hour while serving (never fails the caller)."""
        if self.retention_days <= 0 or time.monotonic() < self._next_prune:
            return
        if not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._next_prune = time.monotonic() + PRUNE_CHECK_S
            self.prune()
        except AuditStoreError as exc:
            log.error("faqbot: audit retention pruning failed: %s", exc)
        finally:
            self._prune_lock.release()

    def feedback(self, since: str | None = None) -> Iterator[dict[str, Any]]:
        """Feedback records as the old ``feedback.jsonl`` objects (with ``time`` and ``request_id``); this
        process's queued records are written first, so a reader sees what was just saved."""
        self.flush(DRAIN_S)
        for r in self.store.records(since):
            if r.kind == "feedback":
                yield {"time": r.at, "request_id": r.request_id, **r.data()}

    def close(self, timeout: float = DRAIN_S) -> None:
        """Drain the queue (up to ``timeout``), stop the writer and close the store. Records still queued
        after the timeout are logged by request id and counted as failed."""
        self.flush(timeout)
        with self._cv:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._cv.notify_all()
        if left:
            self._failed(left, AuditStoreError(f"not written before shutdown ({timeout:.0f} s drain)"))
            for p in left:
                p.error = AuditStoreError("not written before shutdown")
                p.done.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        atexit.unregister(self.flush)
        self.store.close()


@dataclass(eq=False, slots=True)
class _Pending:
    """A queued record and, once written, its result."""

    entry: Entry
    done: threading.Event
    record: AuditRecord | None = None
    error: AuditStoreError | None = None


# ---- verification -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``faqbot audit verify`` reports: intact, or the first bad record and why."""

    ok: bool
    records: int
    first_seq: int | None
    last_seq: int | None
    head: str
    problem: str = ""
    bad_seq: int | None = None


def verify(records: Iterable[AuditRecord]) -> Verdict:
    """Walk the chain in seq order. The first record must follow the genesis hash, or a ``prune`` record
    further on must attest the records deleted before it (a pruning starts a new verified segment)."""
    prev: AuditRecord | None = None
    first: AuditRecord | None = None
    count = 0
    attested: dict[int, str] = {}
    for r in records:
        count += 1
        if first is None:
            first = r
        expected = seal(r.seq, r.at, r.kind, r.request_id, r.prev_hash, r.body)
        if r.hash != expected:
            return _bad(
                count, first, prev, r.seq, f"record {r.seq} was edited (its hash does not match its content)"
            )
        if prev is not None:
            if r.seq != prev.seq + 1:
                missing = f"{prev.seq + 1}" if r.seq == prev.seq + 2 else f"{prev.seq + 1}..{r.seq - 1}"
                return _bad(
                    count, first, prev, r.seq, f"record(s) {missing} before record {r.seq} were deleted"
                )
            if r.prev_hash != prev.hash:
                return _bad(
                    count,
                    first,
                    prev,
                    r.seq,
                    f"record {r.seq} does not follow record {prev.seq} (reordered, replaced or inserted)",
                )
        if r.kind == "prune":
            try:
                d = r.data()
                attested[int(d["deleted_through_seq"])] = str(d["deleted_last_hash"])
            except (ValueError, KeyError, TypeError):
                return _bad(count, first, prev, r.seq, f"pruning record {r.seq} is malformed")
        prev = r
    if first is None or prev is None:
        return Verdict(True, 0, None, None, GENESIS)
    if not (first.seq == 1 and first.prev_hash == GENESIS) and attested.get(first.seq - 1) != first.prev_hash:
        return Verdict(
            False,
            count,
            first.seq,
            prev.seq,
            prev.hash,
            f"record(s) before record {first.seq} were deleted (no pruning record attests it)",
            first.seq,
        )
    return Verdict(True, count, first.seq, prev.seq, prev.hash)


def _bad(count: int, first: AuditRecord | None, prev: AuditRecord | None, seq: int, problem: str) -> Verdict:
    return Verdict(
        False,
        count,
        first.seq if first else None,
        prev.seq if prev else None,
        prev.hash if prev else GENESIS,
        problem,
        seq,
    )


# ---- export -----------------------------------------------------------------------------------------
def check_since(since: str | None) -> str | None:
    """``--since`` as the stored time format (UTC); FaqbotError naming a value that is not ISO 8601."""
    if since is None:
        return None
    try:
        dt = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FaqbotError(
            f"--since {since!r} is not an ISO 8601 date or time (e.g. 2026-11-27T12:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_lines(records: Iterable[AuditRecord], fmt: str = "jsonl") -> Iterator[str]:
    """One line per record: a JSON object (jsonl) or a CSV row with the main columns and the whole record
    as JSON in the last column (csv, header first)."""
    if fmt not in EXPORT_FORMATS:
        raise FaqbotError(f"--format {fmt!r} must be one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "jsonl":
        for r in records:
            yield json.dumps(r.to_dict(), ensure_ascii=False) + "\n"
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    yield buf.getvalue()
    for r in records:
        buf.seek(0)
        buf.truncate()
        d = r.to_dict()
        writer.writerow(
            [
                r.seq,
                r.at,
                r.kind,
                r.request_id,
                d.get("face", ""),
                d.get("user", ""),
                d.get("route", ""),
                d.get("latency_ms", ""),
                r.hash,
                json.dumps(d, ensure_ascii=False),
            ]
        )
        yield buf.getvalue()
