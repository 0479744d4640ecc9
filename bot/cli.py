"""``faqbot`` command line: a thin adapter over the library.

Subcommands: build, ask, decide, serve, mcp, eval, settings, verify-index. Heavy modules are imported
inside the handlers, so ``faqbot decide`` never imports torch or loads the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from bot.display import cite_mark
from bot.errors import FaqbotError, QuestionError
from bot.settings import Settings

EXIT_ERROR = 2


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("corpus_dir", "index_dir", "model"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_rebuild", False):
        overrides["rebuild"] = False
    return Settings.from_env(**overrides)


def _add_common(p: argparse.ArgumentParser) -> None:
    from pathlib import Path

    p.add_argument("--corpus-dir", type=Path, help="corpus folder (default: corpus, or FAQBOT_CORPUS_DIR)")
    p.add_argument("--index-dir", type=Path, help="index folder (default: index, or FAQBOT_INDEX_DIR)")
    p.add_argument("--model", help="embedding model folder or name (default: the bundled all-MiniLM-L6-v2)")


def cmd_build(args: argparse.Namespace, out: TextIO) -> int:
    from bot.core import Bot

    bot = Bot(_settings(args))
    report = bot.build(progress=not args.quiet).report
    out.write(
        f"Built {report.directory}/: {report.chunks} chunks from {report.files} file(s) in "
        f"{report.seconds:.1f} s (model {report.model})\n"
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace, out: TextIO) -> int:
    from bot.runtime.export import export_for
    from bot.runtime.onnx import META_FILE

    path = export_for(_settings(args), force=args.force)
    figures = json.loads((path.parent / META_FILE).read_text(encoding="utf-8"))["verified"]
    out.write(
        f"ONNX model {path} verified against torch: min cosine {figures['min_cosine']}, same top-"
        f"{figures['top_k']} for {figures['same_top_k']}/{figures['queries']} questions\n"
    )
    return 0


def cmd_verify_index(args: argparse.Namespace, out: TextIO) -> int:
    """Every check a load makes (each file's sha256, the parsers, counts, finite unit vectors), and whether
    the stored lexical tables match this code; exit 0 when intact, 2 naming the first bad file."""
    import time

    from bot import index as ix
    from bot.lexical import fingerprint

    s = _settings(args)
    t0 = time.perf_counter()
    data = ix.read_index(s.index_path)
    lexical = (
        "current"
        if data.lexical is not None and data.lexical.fingerprint == fingerprint()
        else ("from other code (recomputed on load; run `faqbot build` to store them)")
    )
    out.write(
        f"{s.index_dir}/ intact: {len(data.chunks)} chunks, {len(data.manifest.files)} files match their "
        f"sha256, vectors finite and unit length; lexical tables {lexical} ({time.perf_counter() - t0:.1f} s)\n"
    )
    return 0


def format_answer(answer: Any) -> str:
    """Terminal rendering of an Answer: its text, then the numbered citations with their locations."""
    lines = [answer.text, ""]
    for c in answer.citations:
        lines.append(f"{cite_mark(c.n)} {c.source}:{c.start}-{c.end}  ({c.context})")
    if answer.related:
        lines.append("Related passages:" if answer.citations else "Nearest passages (not an answer):")
        for c in answer.related:
            snippet = " ".join(c.text.split())
            snippet = snippet if len(snippet) <= 100 else snippet[:97] + "..."
            lines.append(f"  - {c.source}:{c.start}-{c.end}  {snippet}")
    return "\n".join(lines).rstrip() + "\n"


def _parse_batch_line(line: str) -> tuple[str, list[str] | None]:
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(obj, dict):
            raise QuestionError('a JSON line must be an object {"question": ..., "history": [...]}')
        question = obj.get("question")
        history = obj.get("history")
        if not isinstance(question, str):
            raise QuestionError('the object needs a "question" string')
        if history is not None and not (
            isinstance(history, list) and all(isinstance(h, str) for h in history)
        ):
            raise QuestionError('"history" must be a list of strings')
        return question, history
    return line, None


def _cli_caller(args: argparse.Namespace) -> Any:
    """A Caller (face 'cli', the OS user, a fresh id) with ``--audit``; None otherwise: the CLI writes
    audit records only when asked."""
    if not getattr(args, "audit", False):
        return None
    import getpass
    import uuid

    from bot.records import Caller

    return Caller("cli", getpass.getuser(), uuid.uuid4().hex)


def cmd_ask(args: argparse.Namespace, out: TextIO, inp: TextIO) -> int:
    from bot.core import load_bot

    bot = load_bot(_settings(args))
    try:
        return _ask(bot, args, out, inp)
    finally:
        if bot.auditor is not None:  # --audit: write the queued records before exiting
            bot.auditor.close()


def _ask(bot: Any, args: argparse.Namespace, out: TextIO, inp: TextIO) -> int:
    if args.question == "-":
        status = 0
        for lineno, raw in enumerate(inp, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            try:
                question, history = _parse_batch_line(line)
                payload = bot.ask(question, history, caller=_cli_caller(args)).to_dict()
            except FaqbotError as exc:
                payload = {"line": lineno, "error": str(exc)}
                status = 1
            out.write(json.dumps(payload, ensure_ascii=False) + "\n")
            out.flush()
        return status
    answer = bot.ask(args.question, args.history or None, caller=_cli_caller(args))
    if args.json:
        out.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.write(format_answer(answer))
    return 0


def cmd_settings(args: argparse.Namespace, out: TextIO) -> int:
    current = Settings.from_env()
    for var, _default, doc in Settings.describe():
        name = var.removeprefix("FAQBOT_").lower()
        value = getattr(current, name)
        if name == "database_url" or name == "audit_hash_key" or name == "auth_users":
            from bot.audit_store import redact_url

            value = redact_url(str(value)) if name == "database_url" else "***" if value else ""
        out.write(f"{var}={value}\n    {doc}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faqbot", description="Grounded FAQ assistant over corpus/.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and rebuilds")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build index/ from corpus/")
    _add_common(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("ask", help="answer a question with cited passages")
    _add_common(p)
    p.add_argument("question", help="the question, or - to read one per line from stdin (JSON lines out)")
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.add_argument("--history", action="append", metavar="TURN", help="an earlier question (repeatable)")
    p.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")
    p.add_argument("--audit", action="store_true", help="append an audit record per answer (face 'cli')")

    sub.add_parser("settings", help="print every setting, its value and its environment variable")

    p = sub.add_parser("decide", help="deterministic dose decision from the source's tables")
    p.add_argument("text", nargs="?", help="free-text description (alternative to the flags)")
    p.add_argument("--reaction", help="ocular | skin | hepatotoxicity | rhabdomyolysis")
    p.add_argument("--grade", help="CTCAE grade 1-4")
    p.add_argument("--symptomatic", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--suspected-scar", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--cpk-uln", type=float, metavar="X", help="CPK as a multiple of the upper limit of normal"
    )
    p.add_argument("--creatinine-baseline", type=float, metavar="X", help="serum creatinine × baseline")
    p.add_argument("--aki", action=argparse.BooleanOptionalAction, default=None, help="acute kidney injury")
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.add_argument("--corpus-dir", help="corpus folder holding the rule file (default: corpus)")

    p = sub.add_parser("serve", help="serve the chat UI and JSON API (127.0.0.1 unless told otherwise)")
    _add_common(p)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--root-path", help="URL prefix behind a reverse proxy, e.g. /dosing")
    p.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")

    p = sub.add_parser("mcp", help="serve the MCP tools and resources over stdio (for desktop assistants)")
    _add_common(p)
    p.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")

    p = sub.add_parser(
        "verify-index", help="check every file of the index (what each load checks) and report"
    )
    _add_common(p)

    p = sub.add_parser(
        "export-onnx", help="export the model to ONNX once (torch), verified against torch; install does it"
    )
    _add_common(p)
    p.add_argument("--force", action="store_true", help="export again even if a verified export exists")

    p = sub.add_parser("eval", help="run evaluation sets and write a report")
    _add_common(p)
    p.add_argument("sets", nargs="+", help="evaluation files (JSONL)")
    p.add_argument(
        "--config",
        action="append",
        help="hybrid | dense | bm25 | langchain (repeatable or comma-separated; default all; the first is gated)",
    )
    p.add_argument("--report", help="folder for results.json, summary.md and report.html")
    p.add_argument(
        "--min", action="append", metavar="[CONFIG:]METRIC=VALUE", help="exit 1 below this (repeatable)"
    )
    p.add_argument(
        "--max",
        action="append",
        metavar="[CONFIG:]METRIC=VALUE",
        help="exit 1 above this, for lower-is-better metrics such as latency_p95_ms (repeatable)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    from bot.audit_cli import add_parsers

    add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, inp: TextIO | None = None) -> int:
    out = out or sys.stdout
    inp = inp or sys.stdin
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="faqbot: %(levelname)s: %(message)s"
    )
    try:
        if args.command == "build":
            return cmd_build(args, out)
        if args.command == "ask":
            return cmd_ask(args, out, inp)
        if args.command == "settings":
            return cmd_settings(args, out)
        if args.command == "decide":
            from bot.dose import cli_decide

            return int(cli_decide(args, out))
        if args.command == "serve":
            from bot.server import cli_serve

            return int(cli_serve(args))
        if args.command == "mcp":
            from bot.mcp_server import serve_stdio

            return int(serve_stdio(_settings(args)))
        if args.command == "export-onnx":
            return cmd_export_onnx(args, out)
        if args.command == "verify-index":
            return cmd_verify_index(args, out)
        if args.command == "eval":
            from bot.evaluation import cli_eval

            return int(cli_eval(args, out))
        if args.command in ("audit", "feedback"):
            from bot import audit_cli

            if args.command == "audit":
                return audit_cli.cli_audit(args, out)
            return audit_cli.cli_feedback(args, out)
    except FaqbotError as exc:
        print(f"faqbot: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
