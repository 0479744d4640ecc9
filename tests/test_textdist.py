from __future__ import annotations

import pytest

from bot.textdist import delete_index, deletes, osa_distance


@pytest.mark.parametrize(
    ("a", "b", "limit", "expected"),
    [
        ("mechanism", "mechanism", 2, 0),
        ("mechansim", "mechanism", 2, 1),  # a swap of neighbours counts one edit
        ("opthalmic", "ophthalmic", 1, 1),
        ("actoin", "action", 1, 1),
        ("kinase", "kidney", 1, 2),  # above the limit: limit + 1
        ("pembrolizumab", "avutometinib", 2, 3),
    ],
)
def test_osa_distance(a: str, b: str, limit: int, expected: int) -> None:
    assert osa_distance(a, b, limit) == expected


def test_delete_index_keeps_input_order_and_no_duplicates() -> None:
    assert deletes("abc") == ["bc", "ac", "ab"]
    index = delete_index(["when", "went", "wen"])
    assert index["wen"] == ["when", "went", "wen"]  # the first is the preferred (most frequent) word
    assert delete_index(["aa"]) == {"aa": ["aa"], "a": ["aa"]}
