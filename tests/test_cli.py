"""The `faqbot` CLI: build summary, human and --json answers, batch mode over stdin, errors."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    return root


def run(root: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> tuple[int, str]:
    monkeypatch.chdir(root)
    out = io.StringIO()
    code = main(list(argv), out=out, inp=io.StringIO(stdin))
    return code, out.getvalue()


def test_build_prints_a_one_line_summary(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run(built, monkeypatch, "build", "--quiet")
    assert code == 0
    from bot.chunking import Chunker
    from bot.records import Document
    from bot.views import derive_views

    doc = (built / "corpus" / "avutometinib_dose_modification.md").read_text(encoding="utf-8")
    chunks = Chunker().chunk(Document("corpus/avutometinib_dose_modification.md", doc, "x"))
    rows = len(chunks) + len(derive_views(chunks))  # chunks and their question-form views
    assert out.startswith(f"Built index/: {rows} chunks from 1 file(s) in ")
    assert (built / "index" / "manifest.json").exists()


def test_ask_human_output(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run(built, monkeypatch, "ask", "How often are eye exams needed?")
    assert code == 0
    assert "every three cycles" in out
    assert "[^1] corpus/avutometinib_dose_modification.md:" in out


def test_ask_json_is_the_contract(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run(built, monkeypatch, "ask", "--json", "Is CK monitored?")
    assert code == 0
    payload = json.loads(out)
    assert payload["question"] == "Is CK monitored?"
    assert payload["route"] == "answer" and payload["citations"]


def test_batch_mode_reads_plain_and_json_lines(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = "\n".join(
        [
            "How often are eye exams needed?",
            json.dumps({"question": "What is the half-life of avutometinib?"}),
            "",
            "{not json",
            json.dumps({"question": "and the blood tests?", "history": ["How often are eye exams needed?"]}),
            json.dumps({"history": []}),
        ]
    )
    code, out = run(built, monkeypatch, "ask", "--json", "-", stdin=stdin)
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5
    assert lines[0]["route"] == "answer"
    assert lines[1]["route"] == "abstain" and lines[1]["abstained"] is True
    assert lines[2] == {
        "line": 4,
        "error": "malformed JSON: Expecting property name enclosed in double quotes at column 2",
    }
    assert lines[3]["route"] == "answer" and "Blood Tests" in lines[3]["citations"][0]["text"]
    assert lines[4]["line"] == 6 and "question" in lines[4]["error"]
    assert code == 1  # some lines failed; the others were still answered


def test_errors_exit_2_with_a_message(
    built: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(built, monkeypatch, "ask", "   ")
    assert code == 2
    assert "faqbot: error: question is empty" in capsys.readouterr().err


def test_no_rebuild_names_the_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    code, _ = run(tmp_path, monkeypatch, "ask", "--no-rebuild", "eye exams?")
    assert code == 2
    assert "run `faqbot build`" in capsys.readouterr().err
