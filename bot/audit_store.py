"""Where audit records live: one small interface (:class:`AuditStore`), two backends, no ORM.

- :class:`SQLiteStore` — embedded, the default: ``<FAQBOT_DATA_DIR>/audit.sqlite3`` in WAL mode. Appends are
  serialised by ``BEGIN IMMEDIATE`` (one writer at a time, across threads and processes).
- :class:`PostgresStore` — ``FAQBOT_DATABASE_URL=postgresql://…`` (psycopg 3), for several replicas. Appends
  are serialised in the database by ``pg_advisory_xact_lock``, so replicas extend one chain.

Every record is sealed when it is appended: ``hash = sha256(seq, time, kind, request_id, prev_hash, body)``
where ``prev_hash`` is the previous record's hash (:func:`seal`). The body is stored as the exact canonical
JSON text that was hashed (TEXT, not jsonb, which would re-serialise it). Verification lives in
:mod:`bot.audit`; this module only appends, reads and prunes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bot.errors import FaqbotError

log = logging.getLogger("faqbot")

GENESIS = "0" * 64
KINDS = ("answer", "feedback", "prune")
# Any fixed 64-bit key: the advisory lock every replica takes before appending.
ADVISORY_KEY = 0x6661_7162_6F74_0013  # "faqbot" + issue 13
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5000
RECONNECT_BACKOFF_S = 1.0
MAX_BATCH = 256  # most records one transaction writes (the auditor's writer batches up to this)


class AuditStoreError(FaqbotError):
    """The audit store cannot be opened, written or read (the message names it, without a password)."""


def canonical(body: dict[str, Any]) -> str:
    """The one JSON text of a record body that is hashed and stored."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def seal(seq: int, at: str, kind: str, request_id: str, prev_hash: str, body: str) -> str:
    """The record's hash: covers its position, content and the previous record's hash."""
    h = hashlib.sha256()
    for part in (str(seq), at, kind, request_id, prev_hash, body):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def utc_now() -> str:
    """ISO 8601 UTC with microseconds; sorts as text in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Entry:
    """A record to append: its kind, request id and canonical JSON body (sealed when appended)."""

    kind: str
    request_id: str
    body: str  # canonical JSON (see :func:`canonical`)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the chain, as stored."""

    seq: int
    at: str
    kind: str
    request_id: str
    body: str  # canonical JSON
    prev_hash: str
    hash: str

    def row(self) -> tuple[int, str, str, str, str, str, str]:
        """The values in ``COLUMNS`` order, for an INSERT in either store."""
        return (self.seq, self.at, self.kind, self.request_id, self.body, self.prev_hash, self.hash)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.body)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.at,
            "kind": self.kind,
            "request_id": self.request_id,
            **self.data(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class AuditStore(Protocol):
    """Append-only storage of sealed records. Implementations are thread-safe."""

    backend: str
    where: str  # printable location (a URL without its password, or a file path)

    def append(self, kind: str, request_id: str, body: dict[str, Any]) -> AuditRecord: ...

    def append_many(self, entries: Sequence[Entry]) -> list[AuditRecord]:
        """Append ``entries`` in order, in one transaction (all or none): the chain's next records."""
        ...

    def records(self, since: str | None = None) -> Iterator[AuditRecord]:
        """Records in chain order (by seq); ``since``: those at or after this ISO time."""
        ...

    def prune(self, before: str, body: dict[str, Any]) -> AuditRecord | None:
        """Delete the oldest records up to (not including) the first one at or after ``before`` and append
        a ``prune`` record naming the last deleted record; None when nothing is old enough."""
        ...

    def count(self) -> int: ...

    def ping(self) -> None:
        """Raise AuditStoreError if the store cannot be reached now (reconnecting if need be)."""
        ...

    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _prune_body(body: dict[str, Any], last: tuple[int, str] | None, deleted: int) -> dict[str, Any]:
    seq, digest = last if last is not None else (0, GENESIS)
    return {**body, "deleted": deleted, "deleted_through_seq": seq, "deleted_last_hash": digest}


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_log ("
    " seq BIGINT PRIMARY KEY,"
    " at TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " request_id TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL)"
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
    "CREATE INDEX IF NOT EXISTS audit_log_request ON audit_log (request_id)",
)
COLUMNS = "seq, at, kind, request_id, body, prev_hash, hash"


# ---- SQLite -----------------------------------------------------------------------------------------
class SQLiteStore:
    """The embedded store: one SQLite file in WAL mode (synchronous=NORMAL: a crashed or killed process
    loses no committed record; a power cut may lose the last few)."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            for statement in INDEXES:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise AuditStoreError(f"cannot open the audit store {path}: {exc}") from None

    def _append(self, kind: str, request_id: str, body: str, tail: Any = None) -> AuditRecord:
        row = tail or self._db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
        at = utc_now()
        record = AuditRecord(
            seq, at, kind, request_id, body, prev, seal(seq, at, kind, request_id, prev, body)
        )
        self._db.execute(
            f"INSERT INTO audit_log ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            record.row(),
        )
        return record

    def append(self, kind: str, request_id: str, body: dict[str, Any]) -> AuditRecord:
        return self.append_many([Entry(kind, request_id, canonical(body))])[0]

    def append_many(self, entries: Sequence[Entry]) -> list[AuditRecord]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    records: list[AuditRecord] = []
                    tail = None
                    for e in entries:
                        records.append(self._append(e.kind, e.request_id, e.body, tail))
                        tail = (records[-1].seq, records[-1].hash)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise AuditStoreError(f"cannot write to the audit store {self.path}: {exc}") from None
        return records

    def records(self, since: str | None = None) -> Iterator[AuditRecord]:
        # A separate connection: reading a long export does not hold the writers' lock.
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot read the audit store {self.path}: {exc}") from None
        try:
            if since:
                cur = db.execute(f"SELECT {COLUMNS} FROM audit_log WHERE at >= ? ORDER BY seq", (since,))
            else:
                cur = db.execute(f"SELECT {COLUMNS} FROM audit_log ORDER BY seq")
            for row in cur:
                yield AuditRecord(int(row[0]), *(str(v) for v in row[1:]))
        finally:
            db.close()

    def prune(self, before: str, body: dict[str, Any]) -> AuditRecord | None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    record = self._prune(before, body)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise AuditStoreError(f"cannot prune the audit store {self.path}: {exc}") from None
        return record

    def _prune(self, before: str, body: dict[str, Any]) -> AuditRecord | None:
        keep = self._db.execute("SELECT MIN(seq) FROM audit_log WHERE at >= ?", (before,)).fetchone()[0]
        if keep is None:
            keep = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log").fetchone()[0]
        last = self._db.execute(
            "SELECT seq, hash FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT 1", (keep,)
        ).fetchone()
        if last is None:
            return None
        tail = self._db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        deleted = self._db.execute("DELETE FROM audit_log WHERE seq < ?", (keep,)).rowcount
        pruned = canonical(_prune_body(body, (int(last[0]), str(last[1])), deleted))
        return self._append("prune", "", pruned, tail)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])

    def ping(self) -> None:
        with self._lock:
            try:
                self._db.execute("SELECT seq FROM audit_log LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise AuditStoreError(f"cannot read the audit store {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---- PostgreSQL -------------------------------------------------------------------------------------
class PostgresStore:
    """Records in PostgreSQL (psycopg 3). One connection per store, used under a lock; appends take a
    transaction-level advisory lock, so every replica appends to the same chain in turn.

    :meth:`append_many` writes a batch in one transaction (one lock, one WAL flush for the lot): the
    :class:`~bot.audit.Auditor`'s writer thread hands it everything queued since its last commit (group
    commit). A connection lost mid-run is dropped and reopened on the next call (at most once per second
    while it stays down).
    """

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redact_url(url)
        self._lock = threading.Lock()  # the connection
        self._conn: Any = None
        self._failed_at = 0.0
        with self._lock:
            conn = self._connect()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
                conn.execute(SCHEMA)
                for statement in INDEXES:
                    conn.execute(statement)

    def _connect(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() - self._failed_at < RECONNECT_BACKOFF_S:
            raise AuditStoreError(f"the audit database {self.where} is unreachable (retrying shortly)")
        try:
            import psycopg
        except ImportError:
            raise AuditStoreError(
                "FAQBOT_DATABASE_URL needs psycopg 3: pip install 'psycopg[binary]'"
            ) from None
        try:
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                application_name="faqbot",
            )
        except Exception as exc:
            self._failed_at = time.monotonic()
            reason = str(exc).replace(self.url, self.where).strip().splitlines()
            raise AuditStoreError(
                f"cannot connect to the audit database {self.where}: {reason[0] if reason else type(exc).__name__}"
            ) from None
        return self._conn

    def _run(self, what: str, job: Any) -> Any:
        with self._lock:
            conn = self._connect()
            try:
                return job(conn)
            except AuditStoreError:
                raise
            except Exception as exc:
                import psycopg

                if isinstance(exc, psycopg.OperationalError) or conn.closed or conn.broken:
                    self._drop()
                first = str(exc).strip().splitlines()
                raise AuditStoreError(
                    f"cannot {what} the audit database {self.where}: {first[0] if first else type(exc).__name__}"
                ) from None

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:
            pass
        self._conn = None
        self._failed_at = time.monotonic()

    @staticmethod
    def _append_in(conn: Any, kind: str, request_id: str, body: str, tail: Any = None) -> AuditRecord:
        row = tail or conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
        at = utc_now()
        record = AuditRecord(
            seq, at, kind, request_id, body, prev, seal(seq, at, kind, request_id, prev, body)
        )
        conn.execute(
            f"INSERT INTO audit_log ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            record.row(),
        )
        return record

    def append(self, kind: str, request_id: str, body: dict[str, Any]) -> AuditRecord:
        return self.append_many([Entry(kind, request_id, canonical(body))])[0]

    def append_many(self, entries: Sequence[Entry]) -> list[AuditRecord]:
        def job(conn: Any) -> list[AuditRecord]:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
                row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (int(row[0]), str(row[1])) if row else (0, GENESIS)
                records = []
                for e in entries:
                    seq += 1
                    at = utc_now()
                    digest = seal(seq, at, e.kind, e.request_id, prev, e.body)
                    records.append(AuditRecord(seq, at, e.kind, e.request_id, e.body, prev, digest))
                    prev = digest
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO audit_log ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [r.row() for r in records],
                    )
            return records

        written: list[AuditRecord] = self._run("write to", job)
        return written

    def records(self, since: str | None = None) -> Iterator[AuditRecord]:
        # Its own connection and a server-side cursor: an export streams in batches, in constant memory,
        # and never holds the appending connection.
        import psycopg

        where, params = ("WHERE at >= %s", (since,)) if since else ("", ())
        try:
            with (
                psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S) as conn,
                conn.cursor(name="faqbot_audit_read") as cur,
            ):
                cur.itersize = 1000
                cur.execute(f"SELECT {COLUMNS} FROM audit_log {where} ORDER BY seq", params)
                for r in cur:
                    yield AuditRecord(int(r[0]), *(str(v) for v in r[1:]))
        except psycopg.Error as exc:
            first = str(exc).replace(self.url, self.where).strip().splitlines()
            raise AuditStoreError(
                f"cannot read the audit database {self.where}: {first[0] if first else type(exc).__name__}"
            ) from None

    def prune(self, before: str, body: dict[str, Any]) -> AuditRecord | None:
        def job(conn: Any) -> AuditRecord | None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
                keep = conn.execute("SELECT MIN(seq) FROM audit_log WHERE at >= %s", (before,)).fetchone()[0]
                if keep is None:
                    keep = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log").fetchone()[0]
                last = conn.execute(
                    "SELECT seq, hash FROM audit_log WHERE seq < %s ORDER BY seq DESC LIMIT 1", (keep,)
                ).fetchone()
                if last is None:
                    return None
                tail = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                deleted = conn.execute("DELETE FROM audit_log WHERE seq < %s", (keep,)).rowcount
                pruned = _prune_body(body, (int(last[0]), str(last[1])), deleted)
                return self._append_in(conn, "prune", "", canonical(pruned), tail)

        record: AuditRecord | None = self._run("prune", job)
        return record

    def count(self) -> int:
        n: int = self._run(
            "read", lambda conn: int(conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])
        )
        return n

    def ping(self) -> None:
        self._run("reach", lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        with self._lock:
            self._drop()
            self._failed_at = 0.0


def open_store(database_url: str, data_dir: Path) -> AuditStore:
    """PostgreSQL when ``database_url`` is set, else SQLite at ``data_dir/audit.sqlite3``."""
    url = database_url.strip()
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise AuditStoreError(
                f"FAQBOT_DATABASE_URL={redact_url(url)!r} must start with postgresql:// (or be empty for SQLite)"
            )
        return PostgresStore(url)
    return SQLiteStore(data_dir / "audit.sqlite3")
