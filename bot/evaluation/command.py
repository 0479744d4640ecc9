"""``faqbot eval``: parse the sets and gates, load the bot, run every config, print, report, gate.

Exit codes: 0 when every gate passes (or there are none), 1 when a gate fails, 2 (from ``bot.cli``) for any
:class:`~bot.errors.FaqbotError` — a broken eval file, an unknown metric or config — before anything runs.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from bot.errors import FaqbotError

EXIT_GATE_FAILED = 1


def cli_eval(args: argparse.Namespace, out: TextIO) -> int:
    from bot.evaluation.cases import check_against_sources, load_eval_files, parse_gate_arg
    from bot.evaluation.report import headline_table, kinds_table, sets_table, write_report
    from bot.evaluation.results import merge_gates
    from bot.evaluation.runner import make_systems, parse_configs, run_eval

    # Everything that can be checked without the model is checked first: a broken file never loads it.
    sets = load_eval_files(args.sets)
    cases = [c for s in sets for c in s.cases]
    cli_gates = [parse_gate_arg(t, ">=") for t in getattr(args, "min", None) or []]
    cli_gates += [parse_gate_arg(t, "<=") for t in getattr(args, "max", None) or []]
    configs = parse_configs(getattr(args, "config", None))
    gates = merge_gates([g for s in sets for g in s.gates], cli_gates)
    for g in gates:
        if g.config is not None and g.config not in configs:
            raise FaqbotError(f"gate {g.describe()!r} names config {g.config!r}, which is not being run")

    from bot.core import load_bot
    from bot.settings import Settings

    overrides = {name: getattr(args, name, None) for name in ("corpus_dir", "index_dir", "model")}
    settings = Settings.from_env(**overrides, cache_size=0)  # every question really answered
    bot = load_bot(settings)
    sources = {d.source: d.text for d in bot.docs}
    check_against_sources(cases, sources.values())
    systems = make_systems(bot, configs)
    context = {
        "model": bot.embedder.model_id,  # the loaded variant (e.g. +bfloat16), as the index manifest has it
        "corpus": ", ".join(f"{d.source} (sha256 {d.sha256[:12]})" for d in bot.docs),
        "primary config": configs[0],
    }
    run = run_eval(
        cases,
        systems,
        sources,
        gates=gates,
        sets=sets,
        context=context,
        progress=not getattr(args, "quiet", False),
    )
    out.write(f"{len(cases)} cases × {len(configs)} config(s) in {run.seconds:.1f} s\n\n")
    out.write(headline_table(run) + "\n\nPassed per kind:\n\n" + kinds_table(run.configs) + "\n")
    if len(sets) > 1:  # calibration set first, blind sets after: the drop is the headline
        out.write(
            f"\nPer set ({configs[0]}; the first set is the baseline of the drop):\n\n{sets_table(run)}\n"
        )
    if args.report:
        try:
            files = write_report(run, args.report)
        except OSError as exc:
            raise FaqbotError(f"cannot write the report to {args.report}: {exc}") from exc
        out.write(f"\nReport: {files.html}  ({files.markdown.name}, {files.json.name})\n")
    if run.gates:
        out.write("\nGates:\n" + "".join(f"  {g.describe()}\n" for g in run.gates))
        out.write("PASSED\n" if run.passed else "FAILED\n")
    return 0 if run.passed else EXIT_GATE_FAILED
