"""Specific exceptions, each carrying the bad value in its message.

Everything faqbot raises on bad input derives from :class:`FaqbotError`, so faces (CLI, API, UI)
can catch one type and show the message; nothing here is a bare ``ValueError``.
"""

from __future__ import annotations


class FaqbotError(Exception):
    """Base class of every error faqbot raises deliberately."""


class CorpusError(FaqbotError):
    """A corpus file is missing, unreadable, binary or of an unsupported type."""


class IndexMissingError(FaqbotError):
    """No index at the given directory (or a file of it is missing)."""


class IndexCorruptError(FaqbotError):
    """An index file exists but cannot be read or is inconsistent with the others."""


class StaleIndexError(FaqbotError):
    """The index was built from another corpus, model or chunker version."""


class QuestionError(FaqbotError):
    """A question is empty, too long or not text."""


class ModelError(FaqbotError):
    """The embedding model cannot be found or loaded (never downloaded at run time)."""


class RuleFileError(FaqbotError):
    """The dose-rule data file is malformed; the message names the rule and the field."""


class FactError(FaqbotError):
    """A structured dosing fact is invalid (e.g. grade 7, a negative lab ratio)."""


class SettingsError(FaqbotError):
    """An environment override or setting has an invalid value."""


class EvalFileError(FaqbotError):
    """An evaluation file is malformed; the message names the file and each bad line by number."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems
