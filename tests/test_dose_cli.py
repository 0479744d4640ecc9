"""``faqbot decide``: flags and free text, human and JSON output, clear errors, and no torch / no model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "sentence_transformers", "faiss", "gradio", "transformers")


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(["decide", *argv, "--corpus-dir", str(ROOT / "corpus")], out=out)
    return rc, out.getvalue()


def test_flags_give_a_decision_with_the_action_verbatim_and_the_row_located() -> None:
    rc, text = run(["--reaction", "ocular", "--grade", "3"])
    assert rc == 0
    assert text.startswith("[decision]")
    assert "Withhold until Grade ≤ 1 , then resume at a reduced dose or permanently discontinue." in text
    assert "[^1] corpus/avutometinib_dose_modification.md:715-816" in text


def test_json_output_is_the_answer_contract() -> None:
    rc, text = run(["--reaction", "skin", "--grade", "III", "--json"])
    assert rc == 0
    d = json.loads(text)
    assert d["route"] == "decision"
    assert d["facts"] == {"reaction": "skin", "grade": 3}
    assert (
        d["decisions"][0]["action"]
        == "Withhold until Grade ≤ 1 , then resume at reduced dose or consider discontinuation."
    )


@pytest.mark.parametrize(
    ("argv", "route", "missing"),
    [
        (["--reaction", "hepatotoxicity", "--grade", "3", "--no-symptomatic"], "no_rule", []),
        (["--reaction", "hepatotoxicity", "--grade", "G3", "--symptomatic"], "decision", []),
        (["--reaction", "hepatotoxicity", "--grade", "3"], "clarify", ["symptomatic"]),
        (["--reaction", "skin", "--suspected-scar"], "decision", []),
        (["--reaction", "rhabdomyolysis", "--cpk-uln", "15", "--creatinine-baseline", "1.5"], "decision", []),
        (
            ["--reaction", "rhabdomyolysis", "--cpk-uln", "10", "--creatinine-baseline", "2", "--no-aki"],
            "no_rule",
            [],
        ),
        (["--reaction", "rhabdomyolysis", "--aki"], "decision", []),
        (["--reaction", "eye", "--grade", "four"], "decision", []),
        (["--grade", "2"], "clarify", ["reaction"]),
        (["--reaction", "ocular", "--grade", "7"], "clarify", ["grade"]),
        (["--reaction", "ocular", "--grade", "0"], "clarify", ["grade"]),
        (["--reaction", "rhabdomyolysis", "--cpk-uln", "-3"], "clarify", ["cpk_uln"]),
        ([], "clarify", ["reaction"]),
    ],
)
def test_flag_combinations(argv: list[str], route: str, missing: list[str]) -> None:
    rc, text = run([*argv, "--json"])
    assert rc == 0
    d = json.loads(text)
    assert (d["route"], d["missing"]) == (route, missing)


def test_free_text_and_flags_together() -> None:
    rc, text = run(["grade 3 hepatotoxicity, what now?", "--json"])
    assert json.loads(text)["missing"] == ["symptomatic"]
    rc, text = run(["grade 3 hepatotoxicity, what now?", "--symptomatic", "--json"])
    d = json.loads(text)
    assert rc == 0 and d["route"] == "decision" and d["facts"]["symptomatic"] is True


def test_free_text_that_is_not_a_dosing_question_still_gets_a_dosing_answer() -> None:
    rc, text = run(["hello there", "--json"])
    assert rc == 0 and json.loads(text)["route"] == "clarify"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reaction", "ocular", "--grade", "abc"], "grade 'abc' is not a grade"),
        (["--reaction", "ocular", "--grade", "2.5"], "grade '2.5' is not a grade"),
        (["--reaction", "kidney", "--grade", "3"], "unknown reaction 'kidney'"),
        (["grade 3 rash and grade 2 eye toxicity", "--grade", "4"], "several reactions"),
    ],
)
def test_bad_flags_are_clear_errors_not_tracebacks(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _ = run(argv)
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_non_numeric_lab_value_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["--reaction", "rhabdomyolysis", "--cpk-uln", "lots"])
    assert exc.value.code == 2
    assert "--cpk-uln" in capsys.readouterr().err


def test_a_corpus_without_rules_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "doc.md").write_text("# Doc\n\nText.\n", encoding="utf-8")
    rc = main(
        ["decide", "--reaction", "ocular", "--grade", "3", "--corpus-dir", str(tmp_path)], out=io.StringIO()
    )
    assert rc == 2
    assert "no dose rule file" in capsys.readouterr().err


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("FAQBOT_CORPUS_DIR", None)
    return env


def test_decide_does_not_import_torch_or_load_the_model() -> None:
    code = (
        "import sys, io\n"
        "from bot.cli import main\n"
        "rc = main(['decide', '--reaction', 'ocular', '--grade', '3', '--json'], out=io.StringIO())\n"
        "rc2 = main(['decide', 'grade 3 rash and CPK 15x ULN', '--json'], out=io.StringIO())\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(rc, rc2, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "0 0 []"


def test_decide_import_time_has_no_heavy_module() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "bot.cli",
            "decide",
            "--reaction",
            "ocular",
            "--grade",
            "3",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "bot" in imported and "yaml" in imported
    assert not imported & set(HEAVY)
    assert "Withhold until Grade ≤ 1 , then resume at a reduced dose" in proc.stdout


def test_decide_runs_in_under_a_second() -> None:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "decide", "grade 4 eye toxicity", "--json"],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            check=True,
        )
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0
