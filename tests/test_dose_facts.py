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


# ---- bounds: a lab multiple known only as "> 10" ---------------------------------------------------------
@pytest.mark.parametrize(
    ("bound", "op", "threshold", "expected"),
    [
        (("gt", 10.0), "gt", 10.0, True),  # every x > 10 is > 10
        (("ge", 10.0), "gt", 10.0, None),  # x = 10 is not > 10, x = 11 is
        (("gt", 12.0), "gt", 10.0, True),
        (("gt", 5.0), "gt", 10.0, None),
        (("ge", 1.5), "ge", 1.5, True),
        (("gt", 1.5), "ge", 1.5, True),
        (("lt", 5.0), "gt", 10.0, False),  # no x < 5 is > 10
        (("le", 10.0), "gt", 10.0, False),
        (("lt", 10.0), "ge", 10.0, False),
        (("le", 10.0), "ge", 10.0, None),  # x = 10 is >= 10
        (("lt", 12.0), "gt", 10.0, None),
        (("gt", 10.0), "lt", 10.0, False),
        (("lt", 1.5), "lt", 1.5, True),
    ],
)
def test_a_bound_decides_a_condition_only_when_every_value_within_it_agrees(
    bound: tuple[str, float], op: str, threshold: float, expected: bool | None
) -> None:
    from bot.dose.facts import Bound

    assert Bound(*bound).decides(op, threshold) is expected


def test_a_bound_decides_the_row_and_is_shown_and_serialised_as_written() -> None:
    from bot.dose import decide
    from bot.dose.facts import Bound
    from bot.dose.parse import default_rules

    rules = default_rules()
    facts = Facts(reaction="rhabdomyolysis", cpk_uln=Bound("gt", 10.0), creatinine_baseline=Bound("ge", 1.5))
    answer = decide(facts, rules)
    assert answer.route == "decision"
    assert answer.to_dict()["facts"]["cpk_uln"] == {"gt": 10.0}
    assert "CPK > 10× ULN" in answer.text
    # a bound that leaves the row's condition open is asked about like a missing value
    open_ = decide(Facts(reaction="rhabdomyolysis", cpk_uln=Bound("gt", 5.0), creatinine_baseline=2.0), rules)
    assert open_.route == "clarify" and "cpk_uln" in open_.missing
