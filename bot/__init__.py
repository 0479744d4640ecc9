"""faqbot: a document-grounded FAQ assistant with cited answers and a deterministic dose-decision engine.

Importing ``bot`` is cheap: heavy modules (torch, faiss, gradio) load only when used.

    from bot import load_bot
    bot = load_bot()
    answer = bot.ask("How often are eye exams needed?")
    answer.to_dict()   # the JSON contract
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Answer", "Bot", "Chunk", "Citation", "Decision", "Settings", "load_bot"]

if TYPE_CHECKING:
    from bot.core import Bot, load_bot
    from bot.records import Answer, Chunk, Citation, Decision
    from bot.settings import Settings

_LAZY = {
    "Bot": "bot.core",
    "load_bot": "bot.core",
    "Answer": "bot.records",
    "Chunk": "bot.records",
    "Citation": "bot.records",
    "Decision": "bot.records",
    "Settings": "bot.settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
