"""Edit distance and symmetric-delete indexes for typo tolerance: pure, shared by retrieval and the dose
parser (which must not import each other).

Cost is bounded per word: :class:`DeleteIndex` refuses (returns no candidates for) a word longer than its
longest indexed word plus the edits allowed, since no indexed word can then be within reach; so the delete
keys of a looked-up word (O(len²) keys for two edits, each O(len)) are bounded by a constant of the index,
and a question costs linear time in its number of words. :data:`METER` counts the work done (delete keys
generated, edit-distance cells computed) for tests that bound work rather than wall time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class WorkMeter:
    """Running totals of the typo-tolerance work done in this process (approximate under threads)."""

    delete_keys: int = 0  # delete-variant strings generated for lookups
    osa_cells: int = 0  # edit-distance table cells computed
    lookups: int = 0  # DeleteIndex.candidates calls that did any work
    refused: int = 0  # lookups refused because the word is longer than any indexed word can reach
    filtered: int = 0  # lookups answered without delete keys: no indexed word has the letters to match

    def snapshot(self) -> WorkMeter:
        return WorkMeter(self.delete_keys, self.osa_cells, self.lookups, self.refused, self.filtered)

    def since(self, before: WorkMeter) -> WorkMeter:
        return WorkMeter(
            self.delete_keys - before.delete_keys,
            self.osa_cells - before.osa_cells,
            self.lookups - before.lookups,
            self.refused - before.refused,
            self.filtered - before.filtered,
        )


METER = WorkMeter()


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours each count 1), or
    ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        METER.osa_cells += len(b)
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def deletes(word: str) -> list[str]:
    """Every string one deleted letter away from ``word``."""
    return [word[:k] + word[k + 1 :] for k in range(len(word))]


def deletes_upto(word: str, depth: int) -> set[str]:
    """``word`` and every string up to ``depth`` deleted letters away from it (each generated once)."""
    keys = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {d for w in frontier for d in deletes(w)} - keys
        keys |= frontier
    METER.delete_keys += len(keys)
    return keys


def delete_index(words: Iterable[str]) -> dict[str, list[str]]:
    """Symmetric-delete index (SymSpell): each word and each of its one-letter deletions → the words, in
    the order given (so the first is the preferred one when the input is ranked)."""
    index: dict[str, list[str]] = {}
    for word in words:
        for key in dict.fromkeys((word, *deletes(word))):
            index.setdefault(key, []).append(word)
    return index


class DeleteIndex:
    """A symmetric-delete index of words with their deletions up to ``depth`` letters; a lookup generates
    the query word's deletions up to ``max_edits`` letters and returns the indexed words sharing a key,
    unverified (check them with :func:`osa_distance`). Words are kept in the order given."""

    def __init__(self, words: Iterable[str], depth: int = 1) -> None:
        self.depth = depth
        self.index: dict[str, list[str]] = {}
        self.longest = 0
        # the letters of the indexed words by length, as bit sets (see _may_share)
        self._masks: dict[int, list[int]] = {}
        for word in dict.fromkeys(words):
            self.longest = max(self.longest, len(word))
            self._masks.setdefault(len(word), []).append(letter_mask(word))
            for key in deletes_upto(word, depth):
                self.index.setdefault(key, []).append(word)

    def reachable(self, word: str, max_edits: int) -> bool:
        """Whether any indexed word can be within ``max_edits`` of ``word`` by length alone."""
        return len(word) <= self.longest + max_edits

    def candidates(self, word: str, max_edits: int) -> list[str]:
        """Indexed words sharing a delete key with ``word`` (its deletions up to ``max_edits``), first-seen
        order; [] at once for a word too long to be near any indexed word."""
        if not self.reachable(word, max_edits):
            METER.refused += 1
            return []
        METER.lookups += 1
        if not self._may_share(word, max_edits):
            METER.filtered += 1
            return []  # no indexed word can share a key: the same empty answer, without making the keys
        seen: dict[str, None] = {}
        for key in sorted(deletes_upto(word, max_edits)):
            for w in self.index.get(key, ()):
                seen.setdefault(w, None)
        return list(seen)

    def _may_share(self, word: str, max_edits: int) -> bool:
        """False only when no indexed word can share a delete key with ``word``: a shared key is ``word``
        less at most ``max_edits`` letters and an indexed word less at most ``depth``, so that word's length
        is within those bounds and at most ``max_edits`` of ``word``'s distinct letters are missing from it
        (and at most ``depth`` of its letters from ``word``). Letters are hashed to 64 bits: a collision only
        hides a difference, so the test never rules out a word that shares a key. Only worth it when the
        words of that length window are fewer than the delete keys ``word`` would make (two-edit lookups of
        long words); otherwise True (the keys decide)."""
        low, high = len(word) - max_edits, len(word) + self.depth
        window = [self._masks.get(n, ()) for n in range(max(0, low), high + 1)]
        n = len(word)
        keys = 1 + n + (n * (n - 1) // 2 if max_edits >= 2 else 0)  # about (duplicates aside)
        if sum(len(w) for w in window) > keys:
            return True
        mask = letter_mask(word)
        for masks in window:
            for other in masks:
                if (mask & ~other).bit_count() <= max_edits and (other & ~mask).bit_count() <= self.depth:
                    return True
        return False


def letter_mask(word: str) -> int:
    """The set of ``word``'s letters as bits (each character's code point modulo 64)."""
    mask = 0
    for ch in word:
        mask |= 1 << (ord(ch) & 63)
    return mask
