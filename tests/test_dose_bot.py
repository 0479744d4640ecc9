"""The dose engine inside the bot: Bot.ask routes dosing questions to the rules (never to retrieval),
Bot.decide serves structured facts without the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import Bot
from bot.dose import DoseRouter, Facts, load_router
from bot.errors import FactError
from bot.settings import Settings


def test_bot_decide_needs_no_model_or_index(project: Path) -> None:
    bot = Bot(Settings(root=project))
    assert not bot.ready
    a = bot.decide(Facts(reaction="rhabdomyolysis", cpk_uln=15.0, creatinine_baseline=2.0))
    assert a.route == "decision"
    assert a.decisions[0].severity.startswith("CPK $>10x$ ULN")
    assert isinstance(bot.dose, DoseRouter)


def test_structured_input_refuses_an_unknown_reaction_name(project: Path) -> None:
    router = load_router(Settings(root=project))
    with pytest.raises(FactError, match="eyeball"):
        router.decide(Facts(reaction="eyeball", grade=2))
    assert router.decide(Facts(reaction="Eye", grade=2)).to_dict()["facts"] == {
        "reaction": "ocular",
        "grade": 2,
    }
    assert router.decide(Facts(reaction="ocular", grade=7)).route == "clarify"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "history", "route", "actions"),
    [
        ("Grade 4 skin toxicity, what now?", (), "decision", ["Permanently discontinue."]),
        ("Grade 2 skin toxicity — how should I adjust the dose?", (), "no_rule", []),
        ("It's grade 3 — what should we do?", (), "clarify", []),
        (
            "what if it's grade 4?",
            ("Patient has grade 3 eye toxicity",),
            "decision",
            ["Permanently discontinue."],
        ),
    ],
)
def test_ask_routes_dosing_questions_to_the_rules(
    real_bot: Bot, question: str, history: tuple[str, ...], route: str, actions: list[str]
) -> None:
    a = real_bot.ask(question, list(history))
    assert a.route == route
    assert [d.action for d in a.decisions] == actions
    assert a.related == ()  # nothing from fuzzy retrieval
    assert all(c.score == 1.0 for c in a.citations)


@pytest.mark.slow
def test_citation_ids_are_the_index_chunk_ids(real_bot: Bot) -> None:
    a = real_bot.ask("Grade 3 hepatotoxicity, symptomatic — hold?")
    assert a.route == "decision"
    for c in a.citations:
        passage = real_bot.passage(c.id)
        assert (passage.start, passage.end, passage.text) == (c.start, c.end, c.text)


@pytest.mark.slow
def test_non_dosing_questions_still_go_to_retrieval(real_bot: Bot) -> None:
    a = real_bot.ask("How often are eye exams needed?")
    assert a.route == "answer" and a.decisions == ()
    assert real_bot.ask("What's the capital of France?").route == "abstain"


@pytest.mark.slow
def test_bot_decide_on_a_loaded_bot(real_bot: Bot) -> None:
    assert (
        real_bot.decide(Facts(reaction="ocular", grade=1)).decisions[0].action
        == "Continue at same dose; monitor."
    )
