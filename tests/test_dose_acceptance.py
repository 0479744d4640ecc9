"""The committed acceptance table (docs/dose_acceptance.md) is what the rules generate now."""

from __future__ import annotations

from pathlib import Path

from bot.dose import load_rules
from bot.dose.acceptance import GENERATOR, render_markdown
from bot.dose.rules import RULES_FILENAME

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "dose_acceptance.md"


def test_the_acceptance_document_is_up_to_date() -> None:
    expected = render_markdown(load_rules(ROOT / "corpus" / RULES_FILENAME, ROOT))
    assert DOC.read_text(encoding="utf-8") == expected, f"regenerate it: {GENERATOR}"


def test_the_document_lists_every_rule_and_action() -> None:
    text = DOC.read_text(encoding="utf-8")
    rules = load_rules(ROOT / "corpus" / RULES_FILENAME, ROOT)
    for r in rules.rules:
        assert f"`{r.id}`" in text
        assert r.action.text in text
    assert text.count("**no rule**") >= 10 and "**clarify**" in text
