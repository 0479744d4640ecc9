"""Thumbs feedback on answers (UI thumbs, API, CDS Hooks feedback), linked to the answer's request id.

With an audit store (``FeedbackLog(path, store=auditor)``, what the server builds) feedback is appended to
the same tamper-evident store as the answers, so every replica's feedback is in one place, and
``faqbot feedback export`` writes it as JSON lines. Without one it is appended to the JSONL file ``path``
(one object per line, never rewritten), as before.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import FaqbotError

if TYPE_CHECKING:
    from bot.audit import Auditor

RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 2000


class FeedbackError(FaqbotError):
    """A feedback entry is malformed (unknown rating, over-long comment)."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """One rating of one answer: what was asked, how it was answered, and the verdict."""

    question: str
    rating: str  # "up" | "down"
    route: str = ""
    history: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()  # passage ids shown with the answer
    comment: str = ""
    user: str | None = None
    request_id: str = ""  # the X-Request-ID of the answer rated (links it to its audit record)
    face: str = ""  # "ui" | "api" | "cds-hooks" | ...

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise FeedbackError(f"rating must be one of {', '.join(RATINGS)}, got {self.rating!r}")
        if len(self.comment) > MAX_COMMENT_CHARS:
            raise FeedbackError(
                f"comment is {len(self.comment)} characters; the limit is {MAX_COMMENT_CHARS}"
            )

    @classmethod
    def of(
        cls,
        answer: dict[str, Any],
        rating: str,
        history: Sequence[str] = (),
        user: str | None = None,
        request_id: str = "",
        face: str = "",
    ) -> Feedback:
        """Feedback on an Answer in its JSON form."""
        return cls(
            question=str(answer.get("question", "")),
            rating=rating,
            route=str(answer.get("route", "")),
            history=tuple(history),
            citations=tuple(str(c["id"]) for c in answer.get("citations") or []),
            user=user,
            request_id=request_id,
            face=face,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "rating": self.rating,
            "route": self.route,
            "history": list(self.history),
            "citations": list(self.citations),
            "comment": self.comment,
            "user": self.user,
            "request_id": self.request_id,
            "face": self.face,
        }


class FeedbackLog:
    """Appends feedback to the audit ``store`` when given, else to ``path`` (created with its folder on
    first use). Thread-safe. With a store, a failed write follows the audit failure policy (logged and
    counted, or AuditWriteError when ``audit_required``)."""

    def __init__(self, path: Path, store: Auditor | None = None) -> None:
        self.path = path
        self.store = store
        self._lock = threading.Lock()

    def append(self, feedback: Feedback) -> dict[str, Any]:
        if self.store is not None:
            body = feedback.to_dict()
            request_id = str(body.pop("request_id"))
            written = self.store.record_feedback(body, request_id)
            return {"time": written.at if written else "", "request_id": request_id, **body}
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **feedback.to_dict()}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        return record

    def read(self) -> list[dict[str, Any]]:
        """Every feedback entry, oldest first (from the store when there is one)."""
        if self.store is not None:
            return list(self.store.feedback())
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
