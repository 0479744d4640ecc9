"""Edit distance and symmetric-delete indexes for typo tolerance: pure, shared by retrieval and the dose
parser (which must not import each other)."""

from __future__ import annotations

from collections.abc import Iterable


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours each count 1), or
    ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
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


def delete_index(words: Iterable[str]) -> dict[str, list[str]]:
    """Symmetric-delete index (SymSpell): each word and each of its one-letter deletions → the words, in
    the order given (so the first is the preferred one when the input is ranked)."""
    index: dict[str, list[str]] = {}
    for word in words:
        for key in dict.fromkeys((word, *deletes(word))):
            index.setdefault(key, []).append(word)
    return index
