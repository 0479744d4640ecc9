"""The decision engine: an exhaustive expected-outcome table, the answer contract of each route, and
properties (total, deterministic, verbatim actions) checked with hypothesis."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.display import readable
from bot.dose import Facts, decide, evaluate, load_rules, render
from bot.dose.acceptance import code
from bot.dose.engine import Problem
from bot.dose.rules import RULES_FILENAME, RuleSet
from bot.records import ROUTES, Answer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(ROOT / "corpus" / RULES_FILENAME, ROOT)


# ---- the expected outcomes, written by hand from the source's tables ----------------------------------
# D:<rule ids>  a decision with exactly these rows;  N  no rule covers the facts;  C:<facts>  clarify,
# asking for these facts. "-" is "not stated". A reaction's outcome depends only on the columns shown.
OCULAR = """
grade  outcome
-      C:grade
1      D:ocular-grade-1
2      D:ocular-grade-2
3      D:ocular-grade-3
4      D:ocular-grade-4
"""
# Suspected SCARs not stated is taken as "no" (the assumption is shown in the answer).
SKIN = """
grade  scar  outcome
-      -     C:grade
-      yes   D:skin-grade-4-or-scar
-      no    C:grade
1      -     N
1      yes   D:skin-grade-4-or-scar
1      no    N
2      -     N
2      yes   D:skin-grade-4-or-scar
2      no    N
3      -     D:skin-grade-3
3      yes   D:skin-grade-4-or-scar>skin-grade-3
3      no    D:skin-grade-3
4      -     D:skin-grade-4-or-scar
4      yes   D:skin-grade-4-or-scar
4      no    D:skin-grade-4-or-scar
"""
HEPATOTOXICITY = """
grade  symptomatic  outcome
-      -            C:grade,symptomatic
-      yes          C:grade
-      no           C:grade
1      -            N
1      yes          N
1      no           N
2      -            N
2      yes          N
2      no           N
3      -            C:symptomatic
3      yes          D:hepatotoxicity-grade-3-symptomatic-or-4
3      no           N
4      -            D:hepatotoxicity-grade-3-symptomatic-or-4
4      yes          D:hepatotoxicity-grade-3-symptomatic-or-4
4      no           D:hepatotoxicity-grade-3-symptomatic-or-4
"""
# Row 1: CPK > 10x ULN with creatinine >= 1.5x baseline. Row 2: any grade with acute kidney injury.
RHABDOMYOLYSIS = """
cpk    creat  aki  outcome
-      -      -    C:cpk_uln,creatinine_baseline,aki
-      -      yes  D:rhabdomyolysis-aki
-      -      no   C:cpk_uln,creatinine_baseline
-      1.49   -    C:aki
-      1.49   yes  D:rhabdomyolysis-aki
-      1.49   no   N
-      1.5    -    C:cpk_uln,aki
-      1.5    yes  D:rhabdomyolysis-aki
-      1.5    no   C:cpk_uln
-      2      -    C:cpk_uln,aki
-      2      yes  D:rhabdomyolysis-aki
-      2      no   C:cpk_uln
9.99   -      -    C:aki
9.99   -      yes  D:rhabdomyolysis-aki
9.99   -      no   N
9.99   1.49   -    C:aki
9.99   1.49   yes  D:rhabdomyolysis-aki
9.99   1.49   no   N
9.99   1.5    -    C:aki
9.99   1.5    yes  D:rhabdomyolysis-aki
9.99   1.5    no   N
9.99   2      -    C:aki
9.99   2      yes  D:rhabdomyolysis-aki
9.99   2      no   N
10     -      -    C:aki
10     -      yes  D:rhabdomyolysis-aki
10     -      no   N
10     1.49   -    C:aki
10     1.49   yes  D:rhabdomyolysis-aki
10     1.49   no   N
10     1.5    -    C:aki
10     1.5    yes  D:rhabdomyolysis-aki
10     1.5    no   N
10     2      -    C:aki
10     2      yes  D:rhabdomyolysis-aki
10     2      no   N
10.01  -      -    C:creatinine_baseline,aki
10.01  -      yes  D:rhabdomyolysis-aki
10.01  -      no   C:creatinine_baseline
10.01  1.49   -    C:aki
10.01  1.49   yes  D:rhabdomyolysis-aki
10.01  1.49   no   N
10.01  1.5    -    D:rhabdomyolysis-cpk-creatinine
10.01  1.5    yes  D:rhabdomyolysis-aki>rhabdomyolysis-cpk-creatinine
10.01  1.5    no   D:rhabdomyolysis-cpk-creatinine
10.01  2      -    D:rhabdomyolysis-cpk-creatinine
10.01  2      yes  D:rhabdomyolysis-aki>rhabdomyolysis-cpk-creatinine
10.01  2      no   D:rhabdomyolysis-cpk-creatinine
15     -      -    C:creatinine_baseline,aki
15     -      yes  D:rhabdomyolysis-aki
15     -      no   C:creatinine_baseline
15     1.49   -    C:aki
15     1.49   yes  D:rhabdomyolysis-aki
15     1.49   no   N
15     1.5    -    D:rhabdomyolysis-cpk-creatinine
15     1.5    yes  D:rhabdomyolysis-aki>rhabdomyolysis-cpk-creatinine
15     1.5    no   D:rhabdomyolysis-cpk-creatinine
15     2      -    D:rhabdomyolysis-cpk-creatinine
15     2      yes  D:rhabdomyolysis-aki>rhabdomyolysis-cpk-creatinine
15     2      no   D:rhabdomyolysis-cpk-creatinine
"""
COLUMNS = {
    "grade": "grade",
    "scar": "suspected_scar",
    "symptomatic": "symptomatic",
    "cpk": "cpk_uln",
    "creat": "creatinine_baseline",
    "aki": "aki",
}
TABLES = {"ocular": OCULAR, "skin": SKIN, "hepatotoxicity": HEPATOTOXICITY, "rhabdomyolysis": RHABDOMYOLYSIS}


def _value(name: str, cell: str) -> object:
    if cell == "-":
        return None
    if name in ("suspected_scar", "symptomatic", "aki"):
        return {"yes": True, "no": False}[cell]
    if name == "grade":
        return int(cell)
    return float(cell)


def expected_table(reaction: str) -> dict[tuple[object, ...], str]:
    lines = [ln.split() for ln in TABLES[reaction].strip().splitlines()]
    names = [COLUMNS[c] for c in lines[0][:-1]]
    table = {}
    for row in lines[1:]:
        key = tuple(_value(n, c) for n, c in zip(names, row[:-1], strict=True))
        table[key] = row[-1]
    return table


def relevant(reaction: str) -> list[str]:
    return [
        COLUMNS[c]
        for c in TABLES[reaction].split()[: len(TABLES[reaction].strip().splitlines()[0].split()) - 1]
    ]


def expected(facts: Facts) -> str:
    assert facts.reaction is not None
    key = tuple(getattr(facts, n) for n in relevant(facts.reaction))
    return expected_table(facts.reaction)[key]


def test_the_expected_tables_cover_every_combination_once() -> None:
    sizes = {r: len(expected_table(r)) for r in TABLES}
    assert sizes == {"ocular": 5, "skin": 15, "hepatotoxicity": 15, "rhabdomyolysis": 60}


def test_the_tables_use_the_facts_the_rules_use(rules: RuleSet) -> None:
    for reaction in TABLES:
        assert sorted(relevant(reaction)) == sorted(rules.fields_of(reaction))


GRADES = (1, 2, 3, 4)
BOOLS = (True, False)
CPK = (9.99, 10.0, 10.01, 15.0)
CREAT = (1.49, 1.5, 2.0)


def full_grid(with_unknown: bool) -> list[Facts]:
    def vals(values: tuple[object, ...]) -> tuple[object, ...]:
        return (None, *values) if with_unknown else values

    out = []
    for reaction, grade, sym, scar, cpk, creat, aki in itertools.product(
        TABLES, vals(GRADES), vals(BOOLS), vals(BOOLS), vals(CPK), vals(CREAT), vals(BOOLS)
    ):
        out.append(Facts(reaction, grade, sym, scar, cpk, creat, aki))  # type: ignore[arg-type]
    return out


def test_exhaustive_every_reaction_grade_flag_and_lab_combination(rules: RuleSet) -> None:
    """4 reactions x grade 1-4 x symptomatic yes/no x suspected SCAR yes/no x CPK 9.99/10/10.01/15 x
    creatinine 1.49/1.5/2 x AKI yes/no = 1536 cases, each against the hand-written table."""
    cases = full_grid(with_unknown=False)
    assert len(cases) == 1536
    wrong = [
        (f, code(evaluate(f, rules)), expected(f)) for f in cases if code(evaluate(f, rules)) != expected(f)
    ]
    assert wrong == []


def test_exhaustive_with_facts_not_stated(rules: RuleSet) -> None:
    cases = full_grid(with_unknown=True)
    assert len(cases) == 4 * 5 * 3 * 3 * 5 * 4 * 3
    wrong = [
        (f, code(evaluate(f, rules)), expected(f)) for f in cases if code(evaluate(f, rules)) != expected(f)
    ]
    assert wrong[:5] == []


# ---- the answer of each route --------------------------------------------------------------------------
def _check_grounded(answer: Answer, rules: RuleSet) -> None:
    """Every citation is the source text at its offsets, every [^n] in the text is a citation, and every
    quoted line is made of source spans as they read (``readable``; the rest is fixed templates)."""
    text = rules.source_text
    shown = readable(text)
    for c in answer.citations:
        assert text[c.start : c.end] == c.text
    numbers = {int(n) for n in re.findall(r"\[\^(\d+)\]", answer.text)}
    assert numbers == {c.n for c in answer.citations}
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    by_n = {c.n: c for c in answer.citations}
    for line in answer.text.splitlines():
        if not line.startswith("> "):
            continue
        m = re.match(r"^> (.*) \[\^(\d+)\]$", line)
        assert m, line
        body, cited = m.group(1), by_n[int(m.group(2))]
        flat = " ".join(readable(cited.text).split())
        parts = [p.strip("* ") for p in body.split(" — ")]
        for part in parts:
            in_source = part in flat or part in shown or part in " ".join(shown.split())
            assert in_source, (part, line)
    for d in answer.decisions:
        assert text[d.start : d.end] == d.quote
        assert d.action in d.quote and d.quote.endswith(d.action)
        assert readable(d.action) in answer.text


def test_decision_states_the_action_cites_the_row_and_shows_monitoring(rules: RuleSet) -> None:
    a = decide(Facts(reaction="ocular", grade=3), rules)
    assert a.route == "decision" and not a.abstained and a.missing == ()
    (d,) = a.decisions
    assert d.action == "Withhold until Grade ≤ 1 , then resume at a reduced dose or permanently discontinue."
    assert d.severity == "Grade 3 (severe)" and d.reaction == "ocular"
    assert a.citations[0].start == d.start and a.citations[0].end == d.end
    assert "every three cycles thereafter" in a.text  # the ophthalmic evaluation schedule
    assert any("ophthalmic evaluation" in c.text for c in a.citations)
    assert a.to_dict()["facts"] == {"reaction": "ocular", "grade": 3}
    _check_grounded(a, rules)


def test_hepatotoxicity_and_rhabdomyolysis_decisions_show_lft_cpk_monitoring(rules: RuleSet) -> None:
    for facts in (Facts(reaction="hepatotoxicity", grade=4), Facts(reaction="rhabdomyolysis", aki=True)):
        a = decide(facts, rules)
        assert a.route == "decision"
        assert "Monitor liver function tests (LFTs) and creatine phosphokinase (CPK)" in a.text
        _check_grounded(a, rules)


@pytest.mark.parametrize(
    "facts",
    [
        Facts(reaction="skin", grade=2),
        Facts(reaction="hepatotoxicity", grade=3, symptomatic=False),
        Facts(reaction="rhabdomyolysis", cpk_uln=10.0, creatinine_baseline=2.0, aki=False),
        Facts(reaction="rhabdomyolysis", cpk_uln=15.0, creatinine_baseline=1.0, aki=False),
    ],
)
def test_no_rule_gives_no_decision_and_cites_the_rows_that_exist(rules: RuleSet, facts: Facts) -> None:
    a = decide(facts, rules)
    assert a.route == "no_rule"
    assert a.decisions == () and a.missing == ()
    assert "gives no specific criterion" in a.text and "no decision is given" in a.text
    assert facts.reaction is not None
    rows = rules.rules_for(facts.reaction)
    cited_rows = [c for c in a.citations if any(c.start == r.quote.start for r in rows)]
    assert [c.text for c in cited_rows] == [r.quote.text for r in rows]  # all its rows, not the nearest one
    _check_grounded(a, rules)


def test_no_rule_for_unstated_scar_says_what_was_assumed(rules: RuleSet) -> None:
    a = decide(Facts(reaction="skin", grade=2), rules)
    assert "Whether SCARs are suspected: not stated, taken as no." in a.text
    b = decide(Facts(reaction="skin", grade=2, suspected_scar=False), rules)
    assert "taken as" not in b.text


@pytest.mark.parametrize(
    ("facts", "missing"),
    [
        (Facts(grade=3), ("reaction",)),
        (Facts(reaction="ocular"), ("grade",)),
        (Facts(reaction="hepatotoxicity", grade=3), ("symptomatic",)),
        (Facts(reaction="rhabdomyolysis", grade=2), ("cpk_uln", "creatinine_baseline", "aki")),
        (Facts(aki=True), ("reaction",)),
        (Facts(), ("reaction",)),
    ],
)
def test_clarify_names_the_missing_facts_and_shows_candidate_rows(
    rules: RuleSet, facts: Facts, missing: tuple[str, ...]
) -> None:
    a = decide(facts, rules)
    assert a.route == "clarify" and a.missing == missing and a.decisions == ()
    assert a.citations, "candidate rows are shown"
    _check_grounded(a, rules)


def test_clarify_for_a_grade_without_reaction_shows_the_rows_for_that_grade(rules: RuleSet) -> None:
    a = decide(Facts(grade=3), rules)
    assert {c.text.split("\t")[0] for c in a.citations} == {
        "Grade 3 (severe)",
        "Serious Skin Toxicity",
        "Hepatotoxicity",
    }
    assert "Which adverse reaction?" in a.text


def test_isolated_aki_asks_for_the_reaction_and_shows_the_rhabdomyolysis_row(rules: RuleSet) -> None:
    a = decide(Facts(aki=True), rules)
    assert a.route == "clarify" and a.missing == ("reaction",)
    assert [c.text.split("\t")[0] for c in a.citations] == ["Any grade with acute kidney injury"]


@pytest.mark.parametrize(
    ("facts", "field", "shown"),
    [
        (Facts(reaction="ocular", grade=0), "grade", "Grade 0"),
        (Facts(reaction="ocular", grade=5), "grade", "Grade 5"),
        (Facts(reaction="skin", grade=7), "grade", "Grade 7"),
        (Facts(reaction="rhabdomyolysis", cpk_uln=-3.0), "cpk_uln", "CPK -3× ULN"),
        (Facts(reaction="rhabdomyolysis", creatinine_baseline=-1.5), "creatinine_baseline", "-1.5× baseline"),
        (Facts(reaction="rhabdomyolysis", cpk_uln=math.nan), "cpk_uln", "nan"),
        (Facts(reaction="kidney", grade=3), "reaction", "'kidney'"),
        (Facts(reaction="ocular", grade="3"), "grade", "'3'"),  # type: ignore[arg-type]
        (Facts(reaction="ocular", aki="yes"), "aki", "'yes'"),  # type: ignore[arg-type]
    ],
)
def test_invalid_values_clarify_naming_the_value(
    rules: RuleSet, facts: Facts, field: str, shown: str
) -> None:
    a = decide(facts, rules)
    assert a.route == "clarify" and field in a.missing and a.decisions == ()
    assert shown in a.text


def test_grade_5_is_not_treated_as_a_management_row(rules: RuleSet) -> None:
    a = decide(Facts(reaction="ocular", grade=5), rules)
    assert "Grade 1 to Grade 4" in a.text and a.decisions == ()


def test_synonym_reaction_names_are_accepted(rules: RuleSet) -> None:
    assert decide(Facts(reaction="eye", grade=4), rules).decisions[0].action == "Permanently discontinue."
    assert decide(Facts(reaction="Liver", grade=4), rules).route == "decision"


def test_several_reactions_one_decision_each_and_route_priority(rules: RuleSet) -> None:
    both = [
        evaluate(Facts(reaction="ocular", grade=2), rules),
        evaluate(Facts(reaction="skin", grade=3), rules),
    ]
    a = render("q", both, rules)
    assert a.route == "decision"
    assert [d.reaction for d in a.decisions] == ["ocular", "skin"]
    assert a.to_dict()["facts"] == {
        "readings": [{"reaction": "ocular", "grade": 2}, {"reaction": "skin", "grade": 3}]
    }
    _check_grounded(a, rules)
    mixed = render("q", [both[0], evaluate(Facts(reaction="hepatotoxicity", grade=3), rules)], rules)
    assert mixed.route == "clarify" and len(mixed.decisions) == 1 and mixed.missing == ("symptomatic",)
    no = render("q", [both[0], evaluate(Facts(reaction="skin", grade=2), rules)], rules)
    assert no.route == "decision" and "gives no specific criterion" in no.text


def test_a_passage_cited_twice_keeps_one_number(rules: RuleSet) -> None:
    a = render(
        "q",
        [
            evaluate(Facts(reaction="hepatotoxicity", grade=4), rules),
            evaluate(Facts(reaction="rhabdomyolysis", aki=True), rules),
        ],
        rules,
    )
    ids = [c.id for c in a.citations]
    assert len(ids) == len(set(ids))
    _check_grounded(a, rules)


def test_extra_problems_from_parsing_clarify(rules: RuleSet) -> None:
    o = evaluate(Facts(reaction="rhabdomyolysis"), rules, [Problem("cpk_uln", "CPK is given as 4500 u/l.")])
    assert o.kind == "clarify" and o.missing == ("cpk_uln",)
    assert "4500" in render("q", [o], rules).text


def test_the_json_contract_keeps_every_key_and_adds_facts(rules: RuleSet) -> None:
    d = decide(Facts(reaction="skin", suspected_scar=True), rules).to_dict()
    assert set(d) == {
        "question",
        "route",
        "text",
        "abstained",
        "citations",
        "related",
        "decisions",
        "missing",
        "facts",
    }
    assert d["facts"] == {"reaction": "skin", "suspected_scar": True}
    assert d["decisions"][0]["severity"] == "Grade 4 / Suspected SCARs"
    assert json.loads(json.dumps(d)) == d
    assert Answer("q", "answer", "t").to_dict()["facts"] == {}


# ---- properties ----------------------------------------------------------------------------------------
REACTIONS = st.one_of(
    st.none(), st.sampled_from(["ocular", "skin", "hepatotoxicity", "rhabdomyolysis"]), st.text(max_size=12)
)
RATIOS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-100, 100))
FACTS = st.builds(
    Facts,
    reaction=REACTIONS,
    grade=st.one_of(st.none(), st.integers(-(10**6), 10**6)),
    symptomatic=st.one_of(st.none(), st.booleans()),
    suspected_scar=st.one_of(st.none(), st.booleans()),
    cpk_uln=RATIOS,
    creatinine_baseline=RATIOS,
    aki=st.one_of(st.none(), st.booleans()),
)
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
GARBAGE = st.builds(
    Facts,
    reaction=ANYTHING,
    grade=ANYTHING,
    symptomatic=ANYTHING,
    suspected_scar=ANYTHING,
    cpk_uln=ANYTHING,
    creatinine_baseline=ANYTHING,
    aki=ANYTHING,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=FACTS)
def test_decide_is_total_deterministic_and_verbatim(rules: RuleSet, facts: Facts) -> None:
    a = decide(facts, rules)
    b = decide(facts, rules)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    assert a.route in ROUTES and a.route in ("decision", "no_rule", "clarify")
    text = rules.source_text
    actions = {r.action.text for r in rules.rules}
    for d in a.decisions:
        assert text[d.start : d.end] == d.quote
        assert d.action in actions and d.action in d.quote
        start = d.start + d.quote.rindex(d.action)
        assert text[start : start + len(d.action)] == d.action
    for c in a.citations:
        assert text[c.start : c.end] == c.text
    assert bool(a.decisions) == (a.route == "decision") or a.route == "clarify"
    assert (a.route == "clarify") == bool(a.missing)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=GARBAGE)
def test_decide_never_raises_even_on_mistyped_facts(rules: RuleSet, facts: Facts) -> None:
    a = decide(facts, rules)
    assert a.route in ("decision", "no_rule", "clarify")
    json.dumps(a.to_dict(), default=str)


def test_an_assumed_fact_still_shows_the_row_for_the_other_answer() -> None:
    """Grade 3 skin toxicity with SCARs not mentioned: the grade-3 row decides, and the row for suspected
    SCARs is put in front of the reader (cited, not decided on) instead of being silently assumed away."""
    from bot.dose import Facts, decide, load_rules
    from tests.conftest import ROOT

    rules = load_rules(ROOT / "corpus" / "dose_rules.yaml", ROOT)
    answer = decide(Facts(reaction="skin", grade=3), rules)
    assert answer.route == "decision"
    assert [d.severity for d in answer.decisions] == ["Grade 3"]
    assert "If it is yes, the source's row is:" in answer.text
    assert any("Suspected SCARs" in c.text for c in answer.citations)
    stated = decide(Facts(reaction="skin", grade=3, suspected_scar=False), rules)
    assert "If it is yes" not in stated.text
    assert not any("Suspected SCARs" in c.text for c in stated.citations)
