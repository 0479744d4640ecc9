"""Chunk records as columns: numbers in numpy arrays, strings in one UTF-8 blob. No pickle.

A million chunks are a few arrays and one memory-mapped file, not a million Python objects: a
:class:`Chunk` is made only when one is asked for (``store[i]``), which is what a search does for its
few hits.

Files (in the index directory, both listed with their sha256 in the manifest):

``chunks.npz``  uncompressed numpy arrays, read with ``allow_pickle=False``:
                ``start``, ``end`` (int64), ``source`` (uint32 code into ``sources``), ``kind`` (uint8
                code into ``kinds``), ``ids`` (bytes, row order), ``id_order`` (rows sorted by id, for
                lookup), ``offsets`` (int64, 3 per chunk + 1: text, context, extra in ``chunks.bin``)
``chunks.bin``  UTF-8: for each chunk its text, its context, then its header and cells as a JSON array
                pair (empty when it has neither), one after another, located by ``offsets``
"""

from __future__ import annotations

import json
import mmap
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from bot.errors import IndexCorruptError
from bot.records import Chunk

COLUMNS_FILE = "chunks.npz"
TEXT_FILE = "chunks.bin"
_FIELDS = 3  # text, context, extra
_ARRAYS = ("start", "end", "source", "sources", "kind", "kinds", "ids", "id_order", "offsets")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed ``.npz`` that ``np.load(..., allow_pickle=False)`` reads, byte-for-byte the same for
    the same arrays (fixed member timestamps, unlike ``np.savez``): a rebuilt index has the same sha256."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            if array.dtype.hasobject:
                raise ValueError(f"{path.name}: array {name!r} holds Python objects")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)


def read_npz(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` written by :func:`write_npz` (no pickle). IndexCorruptError naming
    the file when it is unreadable or lacks one of them."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [a for a in names if a not in npz.files]
            if missing:
                raise IndexCorruptError(f"{path}: no array {missing[0]!r}; run `faqbot build`")
            return {a: npz[a] for a in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexCorruptError(f"{path}: unreadable ({exc}); run `faqbot build`") from exc


class ChunkStore(Sequence[Chunk]):
    """An immutable, indexable sequence of chunks in vector order, stored as columns."""

    def __init__(self, columns: dict[str, np.ndarray], blob: bytes | mmap.mmap, name: str = "chunks") -> None:
        self._start = columns["start"]
        self._end = columns["end"]
        self._source = columns["source"]
        self._sources = tuple(str(s) for s in columns["sources"])
        self._kind = columns["kind"]
        self._kinds = tuple(str(k) for k in columns["kinds"])
        self._ids = columns["ids"]
        self._id_order = columns["id_order"]
        self._sorted_ids = self._ids[self._id_order]
        self._offsets = columns["offsets"]
        self._blob = blob
        self._name = name
        self._check()

    # ---- construction -----------------------------------------------------------------------------
    @classmethod
    def from_chunks(cls, chunks: Sequence[Chunk]) -> ChunkStore:
        """The columns of ``chunks``, held in memory (what a build writes)."""
        sources: dict[str, int] = {}
        kinds: dict[str, int] = {}
        n = len(chunks)
        start = np.empty(n, dtype=np.int64)
        end = np.empty(n, dtype=np.int64)
        source = np.empty(n, dtype=np.uint32)
        kind = np.empty(n, dtype=np.uint8)
        offsets = np.empty(_FIELDS * n + 1, dtype=np.int64)
        parts: list[bytes] = []
        pos = 0
        for i, c in enumerate(chunks):
            start[i], end[i] = c.start, c.end
            source[i] = sources.setdefault(c.source, len(sources))
            if c.kind not in kinds and len(kinds) >= 255:
                raise ValueError(f"more than 255 chunk kinds (at {c.kind!r})")
            kind[i] = kinds.setdefault(c.kind, len(kinds))
            extra = (
                json.dumps([list(c.header), list(c.cells)], ensure_ascii=False) if c.header or c.cells else ""
            )
            for j, s in enumerate((c.text, c.context, extra)):
                b = s.encode("utf-8")
                offsets[_FIELDS * i + j] = pos
                parts.append(b)
                pos += len(b)
        offsets[_FIELDS * n] = pos
        ids = np.array([c.id.encode("utf-8") for c in chunks], dtype=np.bytes_) if n else np.array([], "S1")
        columns: dict[str, np.ndarray] = {
            "start": start,
            "end": end,
            "source": source,
            "sources": np.array(list(sources), dtype=np.str_) if sources else np.array([], "U1"),
            "kind": kind,
            "kinds": np.array(list(kinds), dtype=np.str_) if kinds else np.array([], "U1"),
            "ids": ids,
            "id_order": np.argsort(ids, kind="stable").astype(np.int64),
            "offsets": offsets,
        }
        return cls(columns, b"".join(parts))

    def write(self, directory: Path) -> tuple[str, str]:
        """Write ``chunks.npz`` and ``chunks.bin`` into ``directory``; returns their names."""
        columns = {
            "start": self._start,
            "end": self._end,
            "source": self._source,
            "sources": np.array(self._sources, dtype=np.str_) if self._sources else np.array([], "U1"),
            "kind": self._kind,
            "kinds": np.array(self._kinds, dtype=np.str_) if self._kinds else np.array([], "U1"),
            "ids": self._ids,
            "id_order": self._id_order,
            "offsets": self._offsets,
        }
        write_npz(directory / COLUMNS_FILE, columns)
        with (directory / TEXT_FILE).open("wb") as fh:
            fh.write(self._blob)
        return COLUMNS_FILE, TEXT_FILE

    @classmethod
    def read(cls, directory: Path) -> ChunkStore:
        """The store in ``directory``: the arrays read, the text memory-mapped. IndexCorruptError naming
        the file when either is unreadable or they disagree."""
        columns = read_npz(directory / COLUMNS_FILE, _ARRAYS)
        text_path = directory / TEXT_FILE
        with text_path.open("rb") as fh:
            size = text_path.stat().st_size
            blob: bytes | mmap.mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        return cls(columns, blob, str(text_path))

    def _check(self) -> None:
        n = len(self._start)
        shapes = {
            "end": len(self._end),
            "source": len(self._source),
            "kind": len(self._kind),
            "ids": len(self._ids),
            "id_order": len(self._id_order),
            "offsets": len(self._offsets) - 1,
        }
        expected = {"offsets": _FIELDS * n}
        bad = [k for k, v in shapes.items() if v != expected.get(k, n)]
        if bad:
            raise IndexCorruptError(
                f"{self._name}: column {bad[0]!r} does not match {n} chunks; run `faqbot build`"
            )
        off = self._offsets
        if n and (off[0] != 0 or off[-1] != len(self._blob) or bool((np.diff(off) < 0).any())):
            raise IndexCorruptError(
                f"{self._name}: text offsets out of order or past the end; run `faqbot build`"
            )
        if n and (
            int(self._source.max()) >= len(self._sources)
            or int(self._kind.max()) >= len(self._kinds)
            or bool((self._id_order < 0).any())
            or int(self._id_order.max()) >= n
        ):
            raise IndexCorruptError(f"{self._name}: a code points past its table; run `faqbot build`")

    # ---- Sequence -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._start)

    @overload
    def __getitem__(self, i: int) -> Chunk: ...

    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...

    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return [self._chunk(k) for k in range(*i.indices(len(self)))]
        n = len(self)
        k = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= k < n:
            raise IndexError(f"chunk {i} out of range (0..{n - 1})")
        return self._chunk(k)

    def __iter__(self) -> Iterator[Chunk]:
        for k in range(len(self)):
            yield self._chunk(k)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def _field(self, k: int, j: int) -> str:
        a = int(self._offsets[_FIELDS * k + j])
        b = int(self._offsets[_FIELDS * k + j + 1])
        try:
            return self._blob[a:b].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"{self._name}: chunk {k} is not UTF-8; run `faqbot build`") from exc

    def _chunk(self, k: int) -> Chunk:
        extra = self._field(k, 2)
        header: tuple[str, ...] = ()
        cells: tuple[str, ...] = ()
        if extra:
            h, c = json.loads(extra)
            header, cells = tuple(str(x) for x in h), tuple(str(x) for x in c)
        return Chunk(
            id=self._ids[k].decode("utf-8"),
            source=self._sources[int(self._source[k])],
            start=int(self._start[k]),
            end=int(self._end[k]),
            text=self._field(k, 0),
            context=self._field(k, 1),
            kind=self._kinds[int(self._kind[k])],
            header=header,
            cells=cells,
        )

    # ---- columns ------------------------------------------------------------------------------------
    def row(self, chunk_id: str) -> int | None:
        """The row of the chunk with this id (binary search over the sorted ids), or None."""
        key = chunk_id.encode("utf-8")
        if not len(self) or len(key) > self._ids.dtype.itemsize:
            return None
        pos = int(np.searchsorted(self._sorted_ids, key))
        if pos < len(self) and self._sorted_ids[pos] == key:
            return int(self._id_order[pos])
        return None

    def get(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id, or None."""
        k = self.row(chunk_id)
        return None if k is None else self._chunk(k)

    def kind_mask(self, kind: str) -> np.ndarray:
        """Boolean array: which rows are of ``kind``."""
        if kind not in self._kinds:
            return np.zeros(len(self), dtype=bool)
        return self._kind == self._kinds.index(kind)

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self._start,
                self._end,
                self._source,
                self._kind,
                self._ids,
                self._id_order,
                self._offsets,
            )
        )

    def __repr__(self) -> str:
        return f"ChunkStore({len(self)} chunks)"


def as_store(chunks: Sequence[Chunk] | Any) -> ChunkStore:
    """``chunks`` as a :class:`ChunkStore` (itself when it already is one)."""
    return chunks if isinstance(chunks, ChunkStore) else ChunkStore.from_chunks(list(chunks))
