"""The judgement data files beside the code (``bot/data/*.txt``): one reader for their common form."""

from __future__ import annotations

from importlib import resources


def data_lines(name: str) -> list[str]:
    """The lines of ``bot/data/<name>`` that hold data: not blank, not a ``#`` comment, stripped."""
    text = resources.files("bot").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def forms(text: str) -> tuple[str, ...]:
    """Question forms separated by " | "."""
    return tuple(f.strip() for f in text.split(" | ") if f.strip())
