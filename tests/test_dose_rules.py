"""The rule file: every quoted text is an exact span of the source, the tables' rows and the rules match
one to one, citations are the index's chunks, and a bad file is refused with an error naming rule and field."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.chunking import Chunker, chunk_id
from bot.corpus import load_corpus
from bot.dose import load_router, load_rules, parse
from bot.dose.rules import RULES_FILENAME, RuleSet
from bot.errors import RuleFileError
from bot.records import Document
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RULES_PATH = ROOT / "corpus" / RULES_FILENAME
SOURCE = "corpus/avutometinib_dose_modification.md"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(RULES_PATH, ROOT)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    return data


def table_rows(text: str) -> list[tuple[int, int, str]]:
    """Every body row of every table of ``text``, found independently of the chunker and the rule file:
    a table is a run of non-blank lines that all contain a tab, right after a 'Table N:' title; its first
    line is the header. A row's span is its line without leading/trailing whitespace."""
    lines: list[tuple[int, str]] = []
    pos = 0
    for raw_line in text.splitlines(keepends=True):
        lines.append((pos, raw_line.rstrip("\r\n")))
        pos += len(raw_line)
    rows: list[tuple[int, int, str]] = []
    i = 0
    while i < len(lines):
        if re.match(r"^Table \d+:", lines[i][1]):
            j = i + 1
            while j < len(lines) and not lines[j][1].strip():
                j += 1
            block = []
            while j < len(lines) and lines[j][1].strip() and "\t" in lines[j][1]:
                block.append(lines[j])
                j += 1
            for start, line in block[1:]:
                lead = len(line) - len(line.lstrip())
                body = line.strip()
                rows.append((start + lead, start + lead + len(body), body))
            i = j
        else:
            i += 1
    return rows


def test_the_source_has_two_tables_with_nine_rows(seed_text: str) -> None:
    rows = table_rows(seed_text)
    assert len(rows) == 9
    assert rows[0][2].startswith("Grade 1 (mild)\t")
    assert rows[-1][2].startswith("Any grade with acute kidney injury\t")


def test_every_table_row_has_exactly_one_rule_none_missed_none_invented(
    rules: RuleSet, seed_text: str
) -> None:
    rows = {(s, e): t for s, e, t in table_rows(seed_text)}
    quotes = [(r.quote.start, r.quote.end) for r in rules.rules]
    assert len(quotes) == len(set(quotes)), "two rules quote the same row"
    assert set(quotes) == set(rows), "rules and table rows differ"
    assert len(rules.rules) == len(rows)


def test_every_action_quote_severity_and_label_is_an_exact_span_of_the_source(
    rules: RuleSet, seed_text: str
) -> None:
    assert rules.source == SOURCE
    for r in rules.rules:
        for span in (r.quote, r.action, r.severity):
            assert seed_text[span.start : span.end] == span.text, (r.id, span)
        cells = r.quote.text.split("\t")
        assert r.action.text == cells[-1], r.id  # the action cell, verbatim
        assert r.severity.text == cells[-2], r.id  # the severity cell, verbatim
        assert r.quote.text == seed_text[r.quote.start : r.quote.end].strip()
    for rx in rules.reactions:
        for span in (rx.label, rx.table):
            assert seed_text[span.start : span.end] == span.text
        for p in rx.related:
            assert seed_text[p.span.start : p.span.end] == p.span.text


def test_the_raw_file_offsets_and_texts_agree_with_the_source(raw: dict[str, Any], seed_text: str) -> None:
    """Checked on the YAML itself too, so a loader bug cannot hide a bad span."""
    seen = 0
    for rule in raw["rules"]:
        for key in ("quote", "action", "severity"):
            span = rule[key]
            assert seed_text[span["start"] : span["end"]] == span["text"], (rule["id"], key)
            seen += 1
    assert seen == 27


def test_rule_conditions_read_the_rows_as_written(rules: RuleSet) -> None:
    described = {r.id: r.describe() for r in rules.rules}
    assert described == {
        "ocular-grade-1": "grade 1",
        "ocular-grade-2": "grade 2",
        "ocular-grade-3": "grade 3",
        "ocular-grade-4": "grade 4",
        "skin-grade-3": "grade 3",
        "skin-grade-4-or-scar": "grade 4 or suspected SCARs",
        "hepatotoxicity-grade-3-symptomatic-or-4": "grade 3 and symptomatic or grade 4",
        "rhabdomyolysis-cpk-creatinine": "CPK > 10× ULN and serum creatinine ≥ 1.5× baseline",
        "rhabdomyolysis-aki": "acute kidney injury",
    }
    assert [rx.id for rx in rules.reactions] == ["ocular", "skin", "hepatotoxicity", "rhabdomyolysis"]


def test_citations_are_the_index_chunks_same_span_same_id_same_context(
    rules: RuleSet, seed_text: str
) -> None:
    chunks = Chunker().chunk(Document(SOURCE, seed_text, "x"))
    by_span = {(c.start, c.end): c for c in chunks}
    passages = [r.passage for r in rules.rules] + [p for rx in rules.reactions for p in rx.related]
    for p in passages:
        chunk = by_span.get((p.span.start, p.span.end))
        assert chunk is not None, f"no chunk at {p.span.start}-{p.span.end}"
        assert p.id == chunk.id == chunk_id(SOURCE, p.span.start, p.span.end, p.span.text)
        assert p.context == chunk.context
        c = p.citation(1)
        assert (c.id, c.text, c.start, c.end) == (chunk.id, chunk.text, chunk.start, chunk.end)


def test_related_guidance_is_the_monitoring_passages(rules: RuleSet) -> None:
    related = {rx.id: [p.span.text for p in rx.related] for rx in rules.reactions}
    assert any("ophthalmic evaluation" in t for t in related["ocular"])
    assert any("Ophthalmic Exams" in t for t in related["ocular"])
    assert any("liver function tests (LFTs)" in t for t in related["hepatotoxicity"])
    assert any("creatine phosphokinase (CPK)" in t for t in related["rhabdomyolysis"])


def test_the_rule_file_is_data_not_a_document() -> None:
    docs = load_corpus(ROOT / "corpus", ROOT)
    assert [d.source for d in docs if not d.source.endswith(".md")] == []
    assert SOURCE in [d.source for d in docs]


def test_every_synonym_in_the_file_is_read_as_its_reaction(rules: RuleSet) -> None:
    for rx in rules.reactions:
        for word in (*rx.synonyms, *rx.acronyms):
            result = parse(f"grade 2 {word}, what now?", (), rules)
            assert [f.reaction for f in result.facts] == [rx.id], (rx.id, word)
        for flag in rx.flags:
            for word in (*flag.synonyms, *flag.acronyms):
                facts = parse(f"{word} — what now?", (), rules).facts
                assert [(f.reaction, getattr(f, flag.field)) for f in facts] == [(rx.id, True)], word


def test_excluded_phrases_are_not_the_reaction(rules: RuleSet) -> None:
    assert (
        parse("grade 2 hepatic impairment at baseline", (), rules).facts == parse("grade 2", (), rules).facts
    )


# ---- validation --------------------------------------------------------------------------------------
def _write(project: Path, data: Any) -> Path:
    path = project / "corpus" / RULES_FILENAME
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["rules"] if r["id"] == rule_id)
    return found


def _mutations() -> list[tuple[str, Any, tuple[str, ...]]]:
    """(name, mutate(data), fragments the error must contain)."""

    def m_regimen_absent(d: dict[str, Any]) -> None:
        d["regimen"] = ["avutometinib", "trametinib"]

    def m_regimen_type(d: dict[str, Any]) -> None:
        d["regimen"] = "avutometinib"

    def m_action_text(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-3")["action"]["text"] = "Continue at full dose."

    def m_quote_offset(d: dict[str, Any]) -> None:
        _rule(d, "skin-grade-3")["quote"]["start"] += 1

    def m_quote_end_past_source(d: dict[str, Any]) -> None:
        _rule(d, "skin-grade-3")["quote"]["end"] = 10**7

    def m_offset_type(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-1")["severity"]["start"] = "585"

    def m_unknown_fact(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-2")["when"] = [{"colour": "red"}]

    def m_grade_7(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-2")["when"] = [{"grade": 7}]

    def m_bad_ratio(d: dict[str, Any]) -> None:
        _rule(d, "rhabdomyolysis-cpk-creatinine")["when"] = [{"cpk_uln": {"gt": "ten"}}]

    def m_bad_op(d: dict[str, Any]) -> None:
        _rule(d, "rhabdomyolysis-cpk-creatinine")["when"] = [{"cpk_uln": {"above": 10}}]

    def m_bool_type(d: dict[str, Any]) -> None:
        _rule(d, "rhabdomyolysis-aki")["when"] = [{"aki": "yes"}]

    def m_no_when(d: dict[str, Any]) -> None:
        del _rule(d, "ocular-grade-4")["when"]

    def m_empty_alternative(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-4")["when"] = [{}]

    def m_unknown_reaction(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-4")["reaction"] = "kidney"

    def m_duplicate_id(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-4")["id"] = "ocular-grade-3"

    def m_duplicate_row(d: dict[str, Any]) -> None:
        bad = copy.deepcopy(_rule(d, "ocular-grade-4"))
        bad["id"] = "ocular-grade-4-again"
        d["rules"].append(bad)

    def m_action_not_last_cell(d: dict[str, Any]) -> None:
        r = _rule(d, "ocular-grade-1")
        r["action"] = {"text": "Grade 1 (mild)", "start": 585, "end": 599}

    def m_action_outside_quote(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-1")["action"] = copy.deepcopy(_rule(d, "ocular-grade-2")["action"])

    def m_unknown_rule_key(d: dict[str, Any]) -> None:
        _rule(d, "ocular-grade-1")["note"] = "x"

    def m_related_text(d: dict[str, Any]) -> None:
        d["reactions"][0]["related"][0]["text"] = "Note: eye exams are optional."

    def m_shared_synonym(d: dict[str, Any]) -> None:
        d["reactions"][1]["synonyms"].append("eye")

    def m_reaction_without_rules(d: dict[str, Any]) -> None:
        d["rules"] = [r for r in d["rules"] if r["reaction"] != "hepatotoxicity"]

    def m_assume_unused(d: dict[str, Any]) -> None:
        d["reactions"][0]["assume"] = {"aki": False}

    def m_version(d: dict[str, Any]) -> None:
        d["version"] = 2

    def m_top_key(d: dict[str, Any]) -> None:
        d["tables"] = []

    def m_no_rules(d: dict[str, Any]) -> None:
        d["rules"] = []

    def m_source_missing(d: dict[str, Any]) -> None:
        d["source"] = "corpus/missing.md"

    return [
        (
            "regimen not in source",
            m_regimen_absent,
            ("'regimen'", "'trametinib' does not occur in the source"),
        ),
        ("regimen type", m_regimen_type, ("'regimen'", "must be a list")),
        ("action text", m_action_text, ("rule 'ocular-grade-3'", "'action.text'", "is not the source text")),
        ("quote offset", m_quote_offset, ("rule 'skin-grade-3'", "'quote.text'")),
        ("quote end", m_quote_end_past_source, ("rule 'skin-grade-3'", "'quote'", "10000000")),
        ("offset type", m_offset_type, ("rule 'ocular-grade-1'", "'severity.start'", "'585'")),
        ("unknown fact", m_unknown_fact, ("rule 'ocular-grade-2'", "'when[0]'", "'colour'")),
        ("grade 7", m_grade_7, ("rule 'ocular-grade-2'", "'when[0].grade'", "7")),
        (
            "ratio type",
            m_bad_ratio,
            ("rule 'rhabdomyolysis-cpk-creatinine'", "'when[0].cpk_uln.gt'", "'ten'"),
        ),
        ("ratio op", m_bad_op, ("rule 'rhabdomyolysis-cpk-creatinine'", "'when[0].cpk_uln'", "above")),
        ("bool type", m_bool_type, ("rule 'rhabdomyolysis-aki'", "'when[0].aki'", "'yes'")),
        ("no when", m_no_when, ("rule 'ocular-grade-4'", "'when'")),
        ("empty alternative", m_empty_alternative, ("rule 'ocular-grade-4'", "'when[0]'")),
        ("unknown reaction", m_unknown_reaction, ("rule 'ocular-grade-4'", "'reaction'", "'kidney'")),
        ("duplicate id", m_duplicate_id, ("rule 'ocular-grade-3'", "'id'", "defined twice")),
        ("duplicate row", m_duplicate_row, ("rule 'ocular-grade-4-again'", "'quote'", "ocular-grade-4")),
        ("action cell", m_action_not_last_cell, ("rule 'ocular-grade-1'", "'action'", "last cell")),
        ("action outside", m_action_outside_quote, ("rule 'ocular-grade-1'", "'action'", "not inside quote")),
        ("unknown key", m_unknown_rule_key, ("rule 'ocular-grade-1'", "'note'", "unknown key")),
        ("related text", m_related_text, ("reaction 'ocular'", "'related[0].text'")),
        ("shared synonym", m_shared_synonym, ("reaction 'skin'", "'synonyms'", "'eye'", "'ocular'")),
        ("no rules for reaction", m_reaction_without_rules, ("reaction 'hepatotoxicity'", "no rule")),
        ("assume unused", m_assume_unused, ("reaction 'ocular'", "'assume.aki'")),
        ("version", m_version, ("field 'version'", "2")),
        ("top key", m_top_key, ("field 'tables'", "unknown key")),
        ("no rules", m_no_rules, ("field 'rules'",)),
        ("source", m_source_missing, ("field 'source'", "corpus/missing.md")),
    ]


@pytest.mark.parametrize(("name", "mutate", "fragments"), _mutations(), ids=[m[0] for m in _mutations()])
def test_a_bad_rule_file_is_refused_naming_the_rule_and_field(
    project: Path, raw: dict[str, Any], name: str, mutate: Any, fragments: tuple[str, ...]
) -> None:
    data = copy.deepcopy(raw)
    mutate(data)
    path = _write(project, data)
    with pytest.raises(RuleFileError) as err:
        load_rules(path, project)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (name, message)


def test_the_unmodified_copy_loads(project: Path, raw: dict[str, Any]) -> None:
    path = _write(project, raw)
    assert len(load_rules(path, project).rules) == 9


def test_invalid_yaml_names_the_line(project: Path) -> None:
    path = project / "corpus" / RULES_FILENAME
    path.write_text("version: 1\nrules: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"not valid YAML at line \d+"):
        load_rules(path, project)


def test_a_top_level_list_is_refused(project: Path) -> None:
    path = project / "corpus" / RULES_FILENAME
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match="must be a mapping"):
        load_rules(path, project)


def test_a_changed_source_invalidates_the_rules(project: Path) -> None:
    """If the source's table text moves, the rules are refused rather than quoting the wrong text."""
    src = project / "corpus" / "avutometinib_dose_modification.md"
    src.write_text("Preface line.\n" + src.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RuleFileError, match="is not the source text"):
        load_rules(project / "corpus" / RULES_FILENAME, project)


def test_source_is_found_without_root(project: Path) -> None:
    assert len(load_rules(project / "corpus" / RULES_FILENAME).rules) == 9


def test_missing_rule_file_is_an_error_for_load_rules_and_a_disabled_router(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="not found"):
        load_rules(tmp_path / RULES_FILENAME)
    (tmp_path / "corpus").mkdir()
    router = load_router(Settings(root=tmp_path))
    assert not router.enabled
    assert router.route("grade 3 eye toxicity", ()) is None
    with pytest.raises(RuleFileError, match="no dose rule file"):
        router.decide(parse("grade 3 eye toxicity", (), load_rules(RULES_PATH, ROOT)).facts[0])


def test_load_router_refuses_an_invalid_file(project: Path, raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    _rule(data, "ocular-grade-1")["action"]["text"] = "Stop."
    _write(project, data)
    with pytest.raises(RuleFileError, match="ocular-grade-1"):
        load_router(Settings(root=project))
