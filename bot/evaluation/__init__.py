"""Offline evaluation: eval files, metrics, a runner over configurations, reports and the CI gate.

``faqbot eval evals/dev.jsonl --report out/`` is the face; the library calls are :func:`load_eval_files`,
:func:`make_systems` and :func:`run_eval` (returning an :class:`EvalRun`), and :func:`write_report`.
Importing this package loads no model.
"""

from __future__ import annotations

from bot.evaluation.cases import EvalCase, EvalSet, Gate, load_eval_file, load_eval_files, parse_lines
from bot.evaluation.command import cli_eval
from bot.evaluation.report import ReportFiles, write_report
from bot.evaluation.results import CaseResult, ConfigResult, GateResult, Metrics, aggregate, score_case
from bot.evaluation.runner import CONFIGS, EvalRun, System, make_systems, run_eval

__all__ = [
    "CONFIGS",
    "CaseResult",
    "ConfigResult",
    "EvalCase",
    "EvalRun",
    "EvalSet",
    "Gate",
    "GateResult",
    "Metrics",
    "ReportFiles",
    "System",
    "aggregate",
    "cli_eval",
    "load_eval_file",
    "load_eval_files",
    "make_systems",
    "parse_lines",
    "run_eval",
    "score_case",
    "write_report",
]
