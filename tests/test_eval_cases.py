"""The eval-file parser's errors (with line numbers), gates, and the shipped sets checked against the source."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bot.errors import EvalFileError, FaqbotError
from bot.evaluation.cases import (
    KINDS,
    Gate,
    check_against_sources,
    load_eval_file,
    load_eval_files,
    parse_gate_arg,
    parse_lines,
)
from bot.evaluation.metrics import normalize
from bot.evaluation.results import merge_gates

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "evals" / "dev.jsonl"
SMOKE = ROOT / "evals" / "smoke.jsonl"

GOOD = {"id": "a", "kind": "faq", "question": "How often?", "expect_evidence": ["every three cycles"]}


def line(**fields: object) -> str:
    return json.dumps({**GOOD, **fields}, ensure_ascii=False)


def problems_of(*lines: str) -> tuple[str, ...]:
    with pytest.raises(EvalFileError) as info:
        parse_lines(lines, "set.jsonl")
    assert isinstance(info.value, FaqbotError)
    return info.value.problems


def test_a_good_file_parses_into_records() -> None:
    s = parse_lines(
        [
            '{"meta": {"description": "d", "min": {"hit@3": 0.8}, "max": {"latency_p95_ms": 200}}}',
            "",
            line(history=["earlier"], tags=["t"]),
            line(id="b", kind="decision", expect_action="Permanently discontinue.", expect_evidence=[]),
            line(id="c", kind="out_of_scope", expect_evidence=[]),
        ],
        "set.jsonl",
    )
    assert s.description == "d"
    assert [c.id for c in s.cases] == ["a", "b", "c"]
    assert s.cases[0].history == ("earlier",) and s.cases[0].origin == "set.jsonl:3"
    assert s.cases[1].expect_action == ("Permanently discontinue.",)  # a string becomes a one-tuple
    assert s.gates == (Gate("hit@3", ">=", 0.8), Gate("latency_p95_ms", "<=", 200.0))


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (line(id=""), "'id' must be a non-empty string"),
        (line(question="   "), "'question' must be a non-empty string"),
        (line(kind="trivia"), "'kind' must be one of"),
        (line(expect_evidence=[]), "a faq case needs 'expect_evidence'"),
        (line(expect_evidence="every three cycles"), "'expect_evidence' must be a list of strings"),
        (line(expect_evidence=[""]), "holds an empty string"),
        (line(history="earlier"), "'history' must be a list of strings"),
        (line(kind="decision"), "a decision case needs 'expect_action'"),
        (line(expect_action="Permanently discontinue."), "only for decision cases"),
        (line(kind="out_of_scope"), "an out_of_scope case cannot expect evidence"),
        (line(expected_evidence=["x"]), "unknown field(s) 'expected_evidence'"),
        ('{"meta": {"min": {"hit@9": 0.5}}}', "unknown metric 'hit@9'"),
        ('{"meta": {"min": {"latency_p95_ms": 100}}}', "lower-is-better: use --max"),
        ('{"meta": {"min": {"hit@3": "high"}}}', "must be a number"),
        ('{"meta": {}, "id": "x"}', "the header must be"),
    ],
)
def test_each_bad_line_is_reported_with_its_line_number(bad: str, expected: str) -> None:
    problems = problems_of("", bad)  # line 1 blank: numbering still counts it
    assert len(problems) == 1
    assert problems[0].startswith("set.jsonl:2: ")
    assert expected in problems[0]


def test_all_problems_are_reported_at_once_and_duplicates_name_the_first() -> None:
    problems = problems_of(line(), line(kind="nope"), "{", line(), line(id="z", question=""))
    assert [p.split(": ")[0] for p in problems] == [
        "set.jsonl:2",
        "set.jsonl:3",
        "set.jsonl:4",
        "set.jsonl:5",
    ]
    assert "duplicate id 'a' (first at set.jsonl:1)" in problems[2]


def test_meta_must_come_first_and_a_file_needs_cases() -> None:
    assert "must be the first line" in problems_of(line(), '{"meta": {}}')[0]
    assert problems_of('{"meta": {}}') == ("set.jsonl: no cases",)
    assert problems_of() == ("set.jsonl: no cases",)


def test_files_missing_or_clashing(tmp_path: Path) -> None:
    with pytest.raises(EvalFileError, match="no such evaluation file"):
        load_eval_file(tmp_path / "absent.jsonl")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_text(line() + "\n", encoding="utf-8")
    two.write_text(line(id="b") + "\n" + line() + "\n", encoding="utf-8")
    with pytest.raises(EvalFileError, match=r"two.jsonl:2: duplicate id 'a' \(first at .*one.jsonl:1\)"):
        load_eval_files([one, two])
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(EvalFileError, match="cannot read"):
        load_eval_file(broken)


def test_expected_strings_must_be_in_the_corpus() -> None:
    s = parse_lines(
        [line(expect_evidence=["every three\ncycles"]), line(id="b", expect_evidence=["made up"])]
    )
    with pytest.raises(EvalFileError) as info:
        check_against_sources(s.cases, ["... every three cycles thereafter ..."])
    assert info.value.problems == ("<eval>:2: expect_evidence 'made up' of 'b' is not in the corpus",)


def test_gate_arguments() -> None:
    assert parse_gate_arg("hit@3=0.8", ">=") == Gate("hit@3", ">=", 0.8, None)
    assert parse_gate_arg("bm25:mrr=0.5", ">=") == Gate("mrr", ">=", 0.5, "bm25")
    assert parse_gate_arg("latency_p95_ms=250", "<=") == Gate("latency_p95_ms", "<=", 250.0)
    for bad, message in [
        ("hit@3", "expected \\[CONFIG:\\]METRIC=VALUE"),
        ("hit@3=lots", "is not a number"),
        ("recall=0.5", "unknown metric 'recall'"),
        ("latency_p95_ms=100", "lower-is-better: use --max"),
        ("hit@3=nan", "finite"),
    ]:
        with pytest.raises(EvalFileError, match=message):
            parse_gate_arg(bad, ">=")
    with pytest.raises(EvalFileError, match="higher-is-better: use --min"):
        parse_gate_arg("hit@3=0.5", "<=")


def test_command_line_gates_override_header_gates_and_files_keep_the_stricter() -> None:
    header = [Gate("hit@3", ">=", 0.7), Gate("hit@3", ">=", 0.9), Gate("mrr", ">=", 0.5)]
    merged = merge_gates(header, [Gate("mrr", ">=", 0.2)])
    assert merged == (Gate("hit@3", ">=", 0.9), Gate("mrr", ">=", 0.2))


# ---- the shipped sets ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table_actions(seed_text: str) -> set[str]:
    """The action cell (last cell) of every tab-separated table row of the source, verbatim."""
    rows = [ln.split("\t") for ln in seed_text.splitlines() if "\t" in ln]
    return {cells[-1] for cells in rows[1:] if "Action" not in cells[-1]}


@pytest.mark.parametrize("path", [DEV, SMOKE], ids=["dev", "smoke"])
def test_every_expected_string_is_verbatim_source_text(
    path: Path, seed_text: str, table_actions: set[str]
) -> None:
    s = load_eval_file(path)
    source = normalize(seed_text)
    for c in s.cases:
        for e in c.expect_evidence:
            assert normalize(e) in source, f"{c.origin}: evidence {e!r} is not in the source"
        for a in c.expect_action:
            assert a in table_actions, f"{c.origin}: {a!r} is not a table action cell verbatim"
    check_against_sources(s.cases, [seed_text])


def test_dev_set_covers_every_kind_and_the_required_styles() -> None:
    s = load_eval_file(DEV)
    kinds = Counter(c.kind for c in s.cases)
    assert len(s.cases) >= 100
    assert set(kinds) == set(KINDS) and min(kinds.values()) >= 8
    tags = Counter(t for c in s.cases for t in c.tags)
    for style in ("paraphrase", "abbreviation", "typo", "follow-up", "multiple", "injection", "drug"):
        assert tags[style] >= 2, style
    assert sum(1 for c in s.cases if c.history) >= 5
    assert sum(1 for c in s.cases if len(c.expect_action) > 1) >= 2
    # injection attempts appear both as in-scope questions and as out-of-scope ones
    assert {c.kind for c in s.cases if "injection" in c.tags} >= {"faq", "out_of_scope", "decision"}
    # every table row is asked about at least once
    assert len({a for c in s.cases for a in c.expect_action}) == 8


def test_smoke_set_is_small_covers_every_kind_and_gates() -> None:
    s = load_eval_file(SMOKE)
    assert len(s.cases) <= 20
    assert {c.kind for c in s.cases} == set(KINDS)
    assert Gate("grounding", ">=", 1.0) in s.gates
    assert not ({c.id for c in s.cases} & {c.id for c in load_eval_file(DEV).cases})  # both can run together
