"""Thumbs feedback on answers, appended to a local JSONL file (one object per line, never rewritten)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import FaqbotError

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

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise FeedbackError(f"rating must be one of {', '.join(RATINGS)}, got {self.rating!r}")
        if len(self.comment) > MAX_COMMENT_CHARS:
            raise FeedbackError(
                f"comment is {len(self.comment)} characters; the limit is {MAX_COMMENT_CHARS}"
            )

    @classmethod
    def of(
        cls, answer: dict[str, Any], rating: str, history: Sequence[str] = (), user: str | None = None
    ) -> Feedback:
        """Feedback on an Answer in its JSON form."""
        return cls(
            question=str(answer.get("question", "")),
            rating=rating,
            route=str(answer.get("route", "")),
            history=tuple(history),
            citations=tuple(str(c["id"]) for c in answer.get("citations") or []),
            user=user,
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
        }


class FeedbackLog:
    """Appends feedback to ``path`` (created with its folder on first use). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, feedback: Feedback) -> dict[str, Any]:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **feedback.to_dict()}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        return record

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
