"""Facts from structured input (CLI flags, JSON): grades and lab multiples given as text, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from bot.dose import Facts, parse_grade, parse_ratio
from bot.errors import FactError

NAMES = {"ocular": "ocular", "eye": "ocular", "skin": "skin", "rash": "skin", "liver": "hepatotoxicity"}


@pytest.mark.parametrize(
    ("raw", "grade"),
    [
        ("3", 3),
        (" 3 ", 3),
        ("III", 3),
        ("iv", 4),
        ("G3", 3),
        ("g 2", 2),
        ("Gr. 1", 1),
        ("grade 4", 4),
        ("Grade-2", 2),
        ("CTCAE grade 3", 3),
        ("three", 3),
        ("7", 7),
        ("0", 0),
        ("-1", -1),
        ("V", 5),
        (4, 4),
        (2.0, 2),
    ],
)
def test_grades_given_as_text(raw: Any, grade: int) -> None:
    assert parse_grade(raw) == grade  # out-of-range values are returned: the engine asks again, naming them


@pytest.mark.parametrize("raw", ["abc", "2.5", "", "grade", "3rd", "1e3", "9" * 20, True, None, [3], 2.5])
def test_text_that_is_not_a_grade_is_a_fact_error_naming_it(raw: Any) -> None:
    with pytest.raises(FactError) as err:
        parse_grade(raw)
    assert repr(raw)[:20] in str(err.value)


@pytest.mark.parametrize(
    ("raw", "value"), [(15, 15.0), ("15", 15.0), ("15x", 15.0), (" 1.5× ", 1.5), ("1,5", 1.5), ("-3", -3.0)]
)
def test_ratios_given_as_numbers_or_text(raw: Any, value: float) -> None:
    assert parse_ratio("cpk_uln", raw) == value


@pytest.mark.parametrize("raw", ["lots", "", "1,000,0", True, None, [1]])
def test_bad_ratios_name_the_field_and_value(raw: Any) -> None:
    with pytest.raises(FactError, match="cpk_uln"):
        parse_ratio("cpk_uln", raw)


def test_from_mapping_canonicalizes_and_validates() -> None:
    f = Facts.from_mapping({"reaction": "Eye", "grade": "III", "cpk_uln": "2,0", "aki": None}, NAMES)
    assert f == Facts(reaction="ocular", grade=3, cpk_uln=2.0)
    assert f.to_dict() == {"reaction": "ocular", "grade": 3, "cpk_uln": 2.0}
    with pytest.raises(FactError, match="unknown fact 'colour'"):
        Facts.from_mapping({"colour": "red"}, NAMES)
    with pytest.raises(FactError, match="unknown reaction 'eyeball'"):
        Facts.from_mapping({"reaction": "eyeball"}, NAMES)
    with pytest.raises(FactError, match="aki must be true or false, got 'yes'"):
        Facts.from_mapping({"aki": "yes"}, NAMES)
    with pytest.raises(FactError, match="facts must be an object"):
        Facts.from_mapping(["grade", 3], NAMES)  # type: ignore[arg-type]


def test_merged_and_describe() -> None:
    a = Facts(reaction="hepatotoxicity", grade=3)
    b = a.merged(Facts(symptomatic=True, grade=4))
    assert b == Facts(reaction="hepatotoxicity", grade=4, symptomatic=True)
    assert b.describe() == "hepatotoxicity · grade 4 · symptomatic"
    assert Facts().describe() == "no facts" and Facts().to_dict() == {}
