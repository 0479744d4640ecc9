"""Issue 10, dose side: questions phrased the way clinicians and patients phrase them.

Written from the classes of the issue (specific events with a severity word and a grade, grades with
qualifiers, lay words, a SCAR added to a grade-3 skin reaction, SCAR negation, facts carried over from
earlier turns, patient-framed questions without a grade), each over several phrasings built from the
rule file's own data where it has them, not from single questions of an evaluation set.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.dose import DoseRouter, Facts, evaluate, load_rules, parse
from bot.dose.acceptance import VALUES
from bot.dose.rules import RULES_FILENAME, RuleSet
from bot.records import Answer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(ROOT / "corpus" / RULES_FILENAME, ROOT)


@pytest.fixture(scope="module")
def router(rules: RuleSet) -> DoseRouter:
    return DoseRouter(rules)


def _route(router: DoseRouter, question: str, history: tuple[str, ...] = ()) -> Answer:
    answer = router.route(question, history)
    assert answer is not None, question
    return answer


# ---- item 7: specific events, severity words, grades with qualifiers -----------------------------------
EVENTS = {
    "ocular": [
        "retinopathy",
        "serous retinopathy",
        "retinal vein occlusion",
        "blurred vision",
        "blurry vision",
        "visual disturbance",
        "visual disturbances",
        "floaters",
        "retinal detachment",
        "photophobia",
    ],
    "skin": [
        "maculopapular rash",
        "acneiform rash",
        "rash",
        "hives",
        "urticaria",
        "blistering",
        "exfoliative dermatitis",
    ],
    "hepatotoxicity": [
        "transaminitis",
        "ALT increased",
        "liver injury",
        "hepatitis",
        "cholestatic liver injury",
    ],
    "rhabdomyolysis": ["myositis", "myalgia", "muscle breakdown", "myopathy"],
}
SEVERITY = {1: "mild", 2: "moderate", 3: "severe", 4: "life-threatening"}


@pytest.mark.parametrize(("reaction", "event"), [(r, e) for r, es in EVENTS.items() for e in es])
def test_a_specific_event_with_a_grade_is_its_reaction(rules: RuleSet, reaction: str, event: str) -> None:
    for grade in (1, 2, 3, 4):
        for question in (
            f"grade {grade} {event}, what now?",
            f"G{grade} {event} — hold?",
            f"{event}, CTCAE grade {grade}. Next step?",
            f"{SEVERITY[grade]} {event} (grade {grade}), how do we manage the dose?",
            f"G{grade} ({SEVERITY[grade]}) {event}",
        ):
            (facts,) = parse(question, (), rules).facts
            assert (facts.reaction, facts.grade) == (reaction, grade), question


def test_a_written_grade_outranks_a_severity_word(rules: RuleSet) -> None:
    # "severe" is a lay description; the CTCAE grade is the measure the tables use.
    for question, grade in (
        ("severe retinal vein occlusion, grade 4", 4),
        ("grade 2 blurry vision, patient calls it severe", 2),
        ("mild rash but CTCAE grade 3", 3),
    ):
        result = parse(question, (), load_rules(ROOT / "corpus" / RULES_FILENAME, ROOT))
        assert [f.grade for f in result.facts] == [grade], question
        assert all(not r.problems for r in result.readings)
    # two written grades, or two severity words, still conflict
    for question in ("grade 3 or 4 rash", "mild to severe rash, hold?"):
        (reading,) = parse(question).readings
        assert [p.field for p in reading.problems] == ["grade"], question


@pytest.mark.parametrize(
    "extent",
    ["covering 40% BSA", "over 30% of body surface area", "on 50% of her body", "(60 % BSA)", "10% TBSA"],
)
def test_the_extent_of_a_skin_reaction_is_not_a_lab_value(router: DoseRouter, extent: str) -> None:
    answer = _route(router, f"grade 3 rash {extent}, hold?")
    assert answer.route == "decision"
    assert answer.to_dict()["facts"] == {"reaction": "skin", "grade": 3}


def test_a_percent_or_doubling_is_a_creatinine_multiple_only_next_to_creatinine(rules: RuleSet) -> None:
    (facts,) = parse("rhabdo, CPK 12x ULN, creatinine up 50% from baseline", (), rules).facts
    assert facts.creatinine_baseline == 1.5
    (facts,) = parse("rhabdomyolysis, CK 15x ULN and creatinine doubled", (), rules).facts
    assert facts.creatinine_baseline == 2.0
    (facts,) = parse("grade 3 rash, the area doubled overnight, 20% worse", (), rules).facts
    assert facts.creatinine_baseline is None and facts.reaction == "skin"


# ---- item 7: lay words ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "reaction"),
    [
        ("my eyes are blurry, grade 2", "ocular"),
        ("everything looks blurred, grade 2", "ocular"),
        ("I see floaters, grade 2", "ocular"),
        ("my skin is peeling, grade 2", "skin"),
        ("hives all over, grade 2", "skin"),
        ("blisters on her arms, grade 2", "skin"),
        ("dark urine and muscle pain, grade 2", "rhabdomyolysis"),
    ],
)
def test_lay_words_name_the_reaction(rules: RuleSet, question: str, reaction: str) -> None:
    assert [f.reaction for f in parse(question, (), rules).facts] == [reaction]


@pytest.mark.parametrize(
    "phrase",
    [
        "yellow eyes",
        "my eyes are yellow",
        "her eyes turned yellow",
        "yellow skin",
        "skin looks yellow",
        "jaundice",
    ],
)
def test_yellow_eyes_or_skin_are_jaundice_not_an_eye_or_skin_reaction(
    router: DoseRouter, phrase: str
) -> None:
    answer = _route(router, f"{phrase}, grade 3 — hold?")
    assert answer.to_dict()["facts"] == {"reaction": "hepatotoxicity", "grade": 3, "symptomatic": True}
    assert [d.severity for d in answer.decisions] == ["Grade 3 (symptomatic) or Grade 4"]


def test_no_jaundice_says_nothing_about_other_symptoms(router: DoseRouter) -> None:
    answer = _route(router, "grade 3 liver toxicity, no jaundice — hold?")
    assert answer.route == "clarify" and answer.missing == ("symptomatic",)


def test_common_words_near_the_new_terms_are_not_corrected_into_them(rules: RuleSet) -> None:
    # "feeling" is one edit from "peeling" (a skin word): feeling well must stay "asymptomatic"
    (facts,) = parse("grade 3 hepatotoxicity, feeling well — hold?", (), rules).facts
    assert facts.symptomatic is False and facts.reaction == "hepatotoxicity"
    assert parse("a popular question about dosing", (), rules).readings == ()


# ---- item 7: which row governs --------------------------------------------------------------------------
def _scar_words(rules: RuleSet) -> list[str]:
    rx = rules.reaction("skin")
    assert rx is not None
    return [w for f in rx.flags if f.field == "suspected_scar" for w in (*f.synonyms, *f.acronyms)]


def test_a_suspected_scar_added_to_grade_3_skin_governs(router: DoseRouter, rules: RuleSet) -> None:
    for word in _scar_words(rules):
        for history, question in (
            (("grade 3 rash on avutometinib",), f"now we suspect {word}"),
            (("Grade 3 skin toxicity — what should we do?",), f"what if it is {word}?"),
            ((), f"grade 3 rash and suspected {word}, hold?"),
        ):
            answer = _route(router, question, history)
            assert answer.route == "decision", (question, word)
            assert [d.action for d in answer.decisions] == ["Permanently discontinue."], (question, word)
            assert [d.severity for d in answer.decisions] == ["Grade 4 / Suspected SCARs"]
            # the grade-3 row is shown as context, after the governing row, and is not a decision
            text = answer.text
            assert "Also met, shown as context only" in text
            assert text.index("Permanently discontinue.") < text.index("consider discontinuation")


def test_rhabdomyolysis_with_both_rows_met_has_one_governing_decision(router: DoseRouter) -> None:
    answer = _route(router, "rhabdomyolysis: CPK 15x ULN, creatinine 2x baseline, and AKI. Plan?")
    assert [d.severity for d in answer.decisions] == ["Any grade with acute kidney injury"]
    assert "concurrent serum creatinine" in answer.text  # the other row, as context
    assert len(answer.citations) == len({c.id for c in answer.citations})


def test_every_outcome_has_at_most_one_decision_per_reaction(rules: RuleSet) -> None:
    names = list(VALUES)
    for reaction in rules.reaction_ids:
        for combo in itertools.product(*(VALUES[n] for n in names)):
            facts = Facts(reaction=reaction, **dict(zip(names, combo, strict=True)))  # type: ignore[arg-type]
            o = evaluate(facts, rules)
            assert len(o.decisions) <= 1
            holding = [r for r in rules.rules_for(reaction) if r.holds(_effective(facts, rules)) is True]
            if holding:
                assert o.matched[0] == rules.by_precedence(holding)[0]
                assert set(o.matched + o.context) == set(holding)


def _effective(facts: Facts, rules: RuleSet) -> Facts:
    from dataclasses import replace

    rx = rules.reaction(str(facts.reaction))
    assert rx is not None
    return replace(facts, **{f: v for f, v in rx.assume if getattr(facts, f) is None})


# ---- item 7: SCAR negation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "negation",
    [
        "no suspected SCAR",
        "no SJS",
        "SJS ruled out",
        "SCARs not suspected",
        "no SJS, TEN or DRESS",
        "without SJS/TEN",
        "no evidence of SJS/TEN or DRESS",
        "no signs of Stevens-Johnson syndrome or toxic epidermal necrolysis",
        "negative for SJS, TEN, DRESS",
        "SJS, TEN or DRESS ruled out",
        "TEN and DRESS excluded",
    ],
)
def test_a_negated_scar_is_read_as_no(router: DoseRouter, negation: str) -> None:
    for question in (f"grade 3 rash, {negation}. Hold?", f"{negation}; grade 3 rash — hold?"):
        answer = _route(router, question)
        assert answer.to_dict()["facts"] == {"reaction": "skin", "grade": 3, "suspected_scar": False}, (
            question
        )
        assert [d.severity for d in answer.decisions] == ["Grade 3"]


def test_negation_does_not_spread_past_the_list(rules: RuleSet) -> None:
    (facts,) = parse("grade 3 rash, no fever, but SJS suspected", (), rules).facts
    assert facts.suspected_scar is True
    # one SCAR suspected and another ruled out: contradictory, so the engine asks
    (reading,) = parse("grade 3 rash, SJS suspected, TEN ruled out", (), rules).readings
    assert [p.field for p in reading.problems] == ["suspected_scar"]


# ---- item 8: facts from earlier turns -------------------------------------------------------------------
EYE = ("Grade 3 ocular toxicity - what should I do?",)


@pytest.mark.parametrize(
    ("question", "grade"),
    [
        ("and grade 4?", 4),
        ("what if it's grade 2", 2),
        ("And for a grade 1 toxicity?", 1),
        ("what about grade 4 tox?", 4),
        ("the toxicity is now grade 4", 4),
        ("this reaction is grade 2 now", 2),
    ],
)
def test_an_elliptical_follow_up_inherits_the_reaction_and_says_so(
    router: DoseRouter, question: str, grade: int
) -> None:
    answer = _route(router, question, EYE)
    assert answer.route == "decision"
    assert answer.to_dict()["facts"] == {"reaction": "ocular", "grade": grade, "from_history": ["reaction"]}
    assert "Adverse reaction: ocular (from an earlier message)." in answer.text


def test_a_follow_up_lab_value_marks_the_earlier_lab_as_carried_over(router: DoseRouter) -> None:
    answer = _route(router, "now CK is 12x", ("rhabdo with CK 8x ULN and creatinine 1.6x baseline",))
    assert answer.route == "decision"
    d = answer.to_dict()["facts"]  # "CK" names rhabdomyolysis itself: only creatinine is carried over
    assert d["cpk_uln"] == 12.0 and d["from_history"] == ["creatinine_baseline"]
    assert "Serum creatinine: 1.6× baseline (from an earlier message)." in answer.text
    answer = _route(
        router, "and creatinine is now 2x baseline", ("rhabdo with CK 12x ULN, creatinine normal",)
    )
    assert answer.route == "decision"
    assert answer.to_dict()["facts"]["from_history"] == ["reaction", "cpk_uln"]
    assert "CPK: 12× ULN (from an earlier message)." in answer.text


@pytest.mark.parametrize(
    "question",
    [
        "Patient has a grade 3 toxicity, what now?",
        "Patient has grade 3 toxicity, what now?",
        "A new patient has a grade 2 side effect, continue?",
        "pt with another grade 3 adverse event — hold?",
        "Grade 4 reaction: what should we do?",
    ],
)
def test_a_new_question_naming_only_a_generic_reaction_asks_which_offering_the_earlier(
    router: DoseRouter, question: str
) -> None:
    answer = _route(router, question, EYE)
    assert answer.route == "clarify" and answer.missing == ("reaction",)
    assert answer.decisions == ()
    facts = answer.to_dict()["facts"]
    assert "reaction" not in facts and "from_history" not in facts
    assert "An earlier message was about Ocular Toxicity" in answer.text
    assert "(ocular, skin, hepatotoxicity, rhabdomyolysis)" in answer.text
    # the earlier reaction's row is offered first
    assert answer.citations[0].context.startswith("Table 1: Ocular Toxicity Management")


def test_the_earlier_reaction_is_offered_first_whichever_it_was(router: DoseRouter) -> None:
    answer = _route(router, "Patient has a grade 3 toxicity, what now?", ("grade 2 rash, continue?",))
    assert "(skin, ocular, hepatotoxicity, rhabdomyolysis)" in answer.text
    assert "Serious Skin Toxicity" in answer.citations[0].text
    # answering the question then decides with the grade of the question it answers
    answer = _route(
        router, "it is the eye", ("grade 2 rash, continue?", "Patient has a grade 3 toxicity, what now?")
    )
    assert answer.to_dict()["facts"] == {"reaction": "ocular", "grade": 3, "from_history": ["grade"]}


def test_facts_of_this_question_carry_no_history_mark(router: DoseRouter) -> None:
    answer = _route(router, "grade 4 eye toxicity", EYE)
    assert answer.to_dict()["facts"] == {"reaction": "ocular", "grade": 4}
    assert "from an earlier message" not in answer.text


# ---- item 7/5: patient-framed questions without a grade -------------------------------------------------
@pytest.mark.parametrize(
    ("question", "reaction"),
    [
        ("my eyes have been blurry, should I stop?", "ocular"),
        ("rash on the chest, hold?", "skin"),
        ("My skin is peeling. Is it OK to keep taking it?", "skin"),
        ("I have blurry vision since yesterday", "ocular"),
        ("pt has a rash on the arms", "skin"),
        ("she developed hives after cycle 2", "skin"),
        ("my eyes are yellow", "hepatotoxicity"),
        ("my muscles hurt and my urine is dark", "rhabdomyolysis"),
    ],
)
def test_a_patient_framed_reaction_without_a_grade_asks_for_it(
    router: DoseRouter, question: str, reaction: str
) -> None:
    answer = _route(router, question)
    assert answer.route == "clarify" and answer.decisions == ()
    assert answer.to_dict()["facts"]["reaction"] == reaction
    assert answer.missing and "reaction" not in answer.missing


@pytest.mark.parametrize(
    "question",
    [
        "why are my eyes blurry?",
        "How often do I need an eye exam if my vision is blurry?",
        "what are the criteria for ocular toxicity?",
        "What prophylaxis prevents rash?",
        "Is blurred vision a known class effect of MEK inhibitors?",
    ],
)
def test_questions_about_a_reaction_that_are_not_about_a_patient_go_to_retrieval(
    router: DoseRouter, question: str
) -> None:
    assert router.route(question, ()) is None


# ---- the route-order predicate ---------------------------------------------------------------------------
def test_decidable_means_a_reaction_with_a_fact(router: DoseRouter) -> None:
    assert router.read("gr3 rash, hold?").decidable
    assert router.read("now we suspect SJS", ("grade 3 rash",)).decidable
    assert router.read("CPK 4500 U/L with rhabdomyolysis").decidable  # a value the engine must ask about
    assert router.read("and grade 4?", EYE).decidable
    assert not router.read("my eyes are blurry, should I stop?").decidable  # a reaction, no fact
    assert not router.read("grade 3 toxicity, what now?").decidable  # a fact, no reaction
    assert not router.read("How often are eye exams needed?").decidable
    # whatever is decidable is answered by the engine
    for q, h in (("gr3 rash, hold?", ()), ("and grade 4?", EYE)):
        assert router.read(q, h).decidable and router.route(q, h) is not None


def test_a_negated_scar_as_a_follow_up_updates_the_skin_reaction(router: DoseRouter) -> None:
    for question in ("no SJS", "SJS ruled out, what now?", "TEN and DRESS excluded"):
        answer = _route(router, question, ("grade 3 rash on avutometinib",))
        assert answer.route == "decision", question
        assert answer.to_dict()["facts"] == {
            "reaction": "skin",
            "grade": 3,
            "suspected_scar": False,
            "from_history": ["reaction", "grade"],
        }, question


# ---- lab values as clinicians write them; values taken back; patient framing ------------------------------
@pytest.mark.parametrize(
    ("text", "cpk", "creatinine"),
    [
        ("CPK 5000 U/L (ULN 250), creatinine 1.9x baseline", 20.0, 1.9),
        ("CK 3400 IU/L, upper limit of normal 170; creat 2x b/l", 20.0, 2.0),
        ("creatinine 2.4 mg/dL, baseline 1.2, CPK 11x ULN", 11.0, 2.0),
        ("CPK ratio 13, creatinine ratio to baseline 1.7.", 13.0, 1.7),
        ("CK 16x ULN (i.e. >10x), Cr 1.5x baseline", 16.0, 1.5),
    ],
)
def test_lab_values_in_units_ratios_and_restated_bounds_are_read_as_multiples(
    rules: RuleSet, text: str, cpk: float, creatinine: float
) -> None:
    reading = parse(text, rules=rules).readings[0]
    assert (reading.facts.cpk_uln, reading.facts.creatinine_baseline) == (cpk, creatinine)
    assert not reading.problems


def test_a_bound_the_measured_value_contradicts_is_still_asked_about(rules: RuleSet) -> None:
    reading = parse("CK 6x ULN (>10x ULN), creatinine 2x baseline", rules=rules).readings[0]
    assert any(p.field == "cpk_uln" for p in reading.problems)


@pytest.mark.parametrize("state", ["same as baseline", "the same as b/l", "unchanged"])
def test_creatinine_at_baseline_is_one_times_baseline(rules: RuleSet, state: str) -> None:
    facts = parse(f"CPK 14x ULN, creatinine {state}, no AKI", rules=rules).readings[0].facts
    assert facts.creatinine_baseline == 1.0 and facts.aki is False


@pytest.mark.parametrize(
    "well", ["no AKI, pt feels fine", "no aki and she feels well", "no AKI; asymptomatic"]
)
def test_a_negation_before_feeling_well_does_not_make_the_patient_symptomatic(
    rules: RuleSet, well: str
) -> None:
    facts = parse(f"hepatotoxicity grade 3, {well}", rules=rules).readings[0].facts
    assert facts.symptomatic is False


@pytest.mark.parametrize(
    ("history", "correction", "grade"),
    [
        ("grade 2 eye toxicity, what now", "sorry, it's grade 3 not grade 2", 3),
        ("G3 eye tox on avuto/defac", "correction: grade 2, not 3", 2),
        ("grade 4 ocular event", "my mistake, grade 1 rather than 4", 1),
    ],
)
def test_a_value_taken_back_in_a_correction_is_no_fact(
    router: DoseRouter, history: str, correction: str, grade: int
) -> None:
    answer = _route(router, correction, (history,))
    assert answer.route == "decision"
    assert answer.facts_dict()["grade"] == grade


@pytest.mark.parametrize(
    "question",
    ["she's having a reaction, what should we do with the doses?", "he is having a side effect - hold?"],
)
def test_someone_having_an_unnamed_reaction_is_asked_which(router: DoseRouter, question: str) -> None:
    answer = _route(router, question, ("my patient is on avutometinib and defactinib",))
    assert answer.route == "clarify"


def test_a_patient_on_the_regimen_with_a_reaction_then_hold_asks_for_the_grade(router: DoseRouter) -> None:
    answer = _route(router, "looks bad. hold?", ("pt on avuto+defac, rash on chest and back",))
    assert answer.route == "clarify" and "grade" in answer.missing


@pytest.mark.parametrize(
    "question",
    [
        "what does SJS stand for?",
        "how is grade 3 hepatotoxicity defined?",
        "How are suspected SCARs diagnosed?",
        "which CTCAE version do the grade 3 rows use?",
    ],
)
def test_a_definition_question_about_a_table_term_is_not_a_dosing_question(
    rules: RuleSet, question: str
) -> None:
    assert not parse(question, rules=rules).dosing


def test_asking_for_the_recommended_action_after_a_patient_turn_asks_for_the_missing_facts(
    router: DoseRouter,
) -> None:
    answer = _route(router, "what's the recommended action?", ("pt with rhabdo on avuto/defactinib",))
    assert answer.route == "clarify"


def test_a_correction_of_the_reaction_moves_the_stated_facts_to_the_reaction_named_instead(
    router: DoseRouter,
) -> None:
    answer = _route(router, "sorry, it's the liver, not the eyes", ("grade 4 eye toxicity, what now?",))
    assert answer.route == "decision"
    assert answer.facts_dict()["reaction"] == "hepatotoxicity" and answer.facts_dict()["grade"] == 4


@pytest.mark.parametrize(
    "question",
    ["hepatotox on defactinib, dose mod?", "should we stop avutometinib?", "can we hold defactinib?"],
)
def test_a_dosing_ask_without_the_facts_is_asked_back(router: DoseRouter, question: str) -> None:
    assert _route(router, question).route == "clarify"


def test_the_regimens_names_run_together_are_not_another_drug(router: DoseRouter) -> None:
    answer = _route(router, "rhabdo + AKI on avutometinibdefactinib, what now")
    assert answer.route == "decision"


@pytest.mark.parametrize(
    ("text", "cpk", "creatinine"),
    [
        ("CPK 3800 U/L (ref 30-190), creatinine 0.8 -> 1.6 mg/dL", 20.0, 2.0),
        ("CK 1500% of ULN, creatinine baseline 80 umol/L now 160", 15.0, 2.0),
        ("creat 1.0 → 1.5, CK 11x ULN", 11.0, 1.5),
    ],
)
def test_ranges_percentages_of_uln_and_rises_from_baseline_are_multiples(
    rules: RuleSet, text: str, cpk: float, creatinine: float
) -> None:
    facts = parse(text, rules=rules).readings[0].facts
    assert facts.cpk_uln == pytest.approx(cpk) and facts.creatinine_baseline == pytest.approx(creatinine)


def test_a_cpk_rise_between_two_values_is_not_a_multiple_of_uln(rules: RuleSet) -> None:
    reading = parse("CK from 200 to 3000, creatinine 2x baseline", rules=rules).readings[0]
    assert reading.facts.cpk_uln is None and any(p.field == "cpk_uln" for p in reading.problems)


@pytest.mark.parametrize(
    "question",
    [
        "pt on cycle 5 - do we still need the day 15 bloods?",
        "what symptoms count as grade 2 eye toxicity?",
        "grade 2 eye tox - from your own knowledge, what dose do I restart at?",
    ],
)
def test_monitoring_definition_and_outside_knowledge_questions_are_not_dosing_questions(
    rules: RuleSet, question: str
) -> None:
    assert not parse(question, rules=rules).dosing


def test_thousands_separators_and_a_named_baseline_creatinine(rules: RuleSet) -> None:
    facts = parse(
        "CK 4,000 U/L (ref 40-200), creatinine 150 umol/L, baseline creatinine was 100", rules=rules
    )
    assert facts.readings[0].facts.cpk_uln == 20.0
    assert facts.readings[0].facts.creatinine_baseline == pytest.approx(1.5)


@pytest.mark.parametrize(
    "unknown", ["haven't assessed symptoms yet", "symptoms unknown", "not sure about symptoms"]
)
def test_symptoms_not_known_yet_are_asked_back_not_assumed(router: DoseRouter, unknown: str) -> None:
    answer = _route(router, f"grade 3 hepatotoxicity, {unknown} - which row?")
    assert answer.route == "clarify"


def test_a_misspelt_name_of_the_regimen_is_not_another_drug(router: DoseRouter) -> None:
    answer = _route(router, "grade 4 eye problem from the avutomatinib pill, must I stop?")
    assert answer.route == "decision"
    assert router.route("grade 3 rash on trametinib, hold?") is None  # another drug: not our tables


def test_a_value_at_baseline_and_today_and_an_age_framed_patient(rules: RuleSet, router: DoseRouter) -> None:
    facts = parse("CK 20x ULN, creatinine 0.8 mg/dL at baseline and 1.2 today", rules=rules).readings[0].facts
    assert facts.creatinine_baseline == pytest.approx(1.5)
    answer = _route(
        router, "what's the recommended action?", ("59yo on avuto/defac, new rash on chest and back",)
    )
    assert answer.route == "clarify"


@pytest.mark.parametrize(
    "also", ["she now also has grade 1 ocular toxicity", "grade 1 eye tox as well - plan for both?"]
)
def test_a_reaction_added_in_a_follow_up_is_decided_with_the_earlier_one(
    router: DoseRouter, also: str
) -> None:
    answer = _route(router, also, ("pt has grade 3 rash on avuto/defac",))
    assert answer.route == "decision"
    assert sorted(d.action for d in answer.decisions) == sorted(
        [
            "Continue at same dose; monitor.",
            "Withhold until Grade ≤ 1 , then resume at reduced dose or consider discontinuation.",
        ]
    )
