"""Load the corpus: UTF-8 ``.md`` and ``.txt`` documents, each with its sha256.

Rule data files (``*.yaml``, ``*.yml``, ``*.json``) may sit beside the documents; they are data for the
dose engine, not documents, and their content is left to it, but an unreadable, binary or non-UTF-8 one
raises like a document. Hidden files are ignored. Any other file, or a document
that is binary or not UTF-8, raises :class:`~bot.errors.CorpusError` naming it: nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bot.errors import CorpusError
from bot.records import Document

DOCUMENT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


def relative_source(path: Path, root: Path) -> str:
    """The path as cited: relative to ``root`` with forward slashes (absolute if outside it)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def load_document(path: Path, root: Path) -> Document:
    """Read one document; raise CorpusError naming the file if it is unsupported, binary or not UTF-8."""
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        raise CorpusError(
            f"{path}: unsupported file type {path.suffix!r} (supported: {', '.join(sorted(DOCUMENT_SUFFIXES))})"
        )
    data, text = _read_utf8(path, "a text document")
    if text.startswith("\ufeff"):
        raise CorpusError(f"{path}: starts with a byte-order mark; save it as UTF-8 without BOM")
    return Document(relative_source(path, root), text, hashlib.sha256(data).hexdigest())


def check_data_file(path: Path) -> None:
    """A rule data file beside the documents must be readable UTF-8 text like them: CorpusError naming it
    if it is unreadable, too large, binary (NUL bytes) or not UTF-8. Its content is the dose engine's to
    check."""
    _read_utf8(path, "a text data file")


def _read_utf8(path: Path, what: str) -> tuple[bytes, str]:
    """The file's bytes and text; CorpusError naming it if unreadable, too large, binary or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CorpusError(f"{path}: {len(data)} bytes is larger than the {MAX_DOCUMENT_BYTES}-byte limit")
    if b"\x00" in data:
        raise CorpusError(f"{path}: looks binary (contains NUL bytes), not {what}")
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 at byte {exc.start}") from exc


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The document files of a corpus folder, sorted; raise CorpusError for anything unsupported."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus folder does not exist")
    docs: list[Path] = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue
        suffix = path.suffix.lower()
        if suffix in DOCUMENT_SUFFIXES:
            docs.append(path)
        elif suffix in DATA_SUFFIXES:
            check_data_file(path)
        else:
            raise CorpusError(
                f"{path}: unsupported file type {suffix or '(none)'!r} in the corpus "
                f"(documents: {', '.join(sorted(DOCUMENT_SUFFIXES))}; data: {', '.join(sorted(DATA_SUFFIXES))})"
            )
    if not docs:
        raise CorpusError(f"{corpus_dir}: no documents (.md or .txt) found")
    return docs


def load_corpus(corpus_dir: Path, root: Path) -> list[Document]:
    return [load_document(p, root) for p in corpus_files(corpus_dir)]
