"""``faqbot audit verify|export|prune`` and ``faqbot feedback export``: the auditor's commands.

They read the store the settings name (``FAQBOT_DATABASE_URL``, else the SQLite file in
``FAQBOT_DATA_DIR``) and need no model or index.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from bot.audit import Auditor, check_since, export_lines, verify
from bot.errors import FaqbotError
from bot.settings import Settings

EXIT_TAMPERED = 1


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify, export or prune the audit trail")
    asub = p.add_subparsers(dest="audit_command", required=True)
    asub.add_parser("verify", help="check the hash chain (exit 0 intact, 1 naming the first bad record)")
    e = asub.add_parser("export", help="write audit records to stdout, one per line")
    e.add_argument("--since", help="only records at or after this ISO 8601 time (UTC unless it says)")
    e.add_argument("--format", default="jsonl", help="jsonl (default) or csv")
    asub.add_parser("prune", help="apply FAQBOT_AUDIT_RETENTION_DAYS now (appends a pruning record)")
    p = sub.add_parser("feedback", help="export feedback from the audit store")
    fsub = p.add_subparsers(dest="feedback_command", required=True)
    f = fsub.add_parser("export", help="feedback as JSON lines (the old feedback.jsonl format) to stdout")
    f.add_argument("--since", help="only feedback at or after this ISO 8601 time")


def _open(settings: Settings | None) -> Auditor:
    return Auditor.from_settings(settings or Settings.from_env())


def cli_audit(args: argparse.Namespace, out: TextIO, settings: Settings | None = None) -> int:
    command = args.audit_command
    if command == "export" and args.format not in ("jsonl", "csv"):
        raise FaqbotError(f"--format {args.format!r} must be jsonl or csv")
    since = check_since(getattr(args, "since", None))
    auditor = _open(settings)
    try:
        if command == "verify":
            v = verify(auditor.store.records())
            if v.ok:
                span = f"records {v.first_seq}..{v.last_seq}" if v.records else "no records"
                out.write(f"audit trail intact: {v.records} record(s), {span}, head {v.head}\n")
                return 0
            out.write(f"audit trail TAMPERED: {v.problem} (first bad record: {v.bad_seq})\n")
            return EXIT_TAMPERED
        if command == "export":
            for line in export_lines(auditor.store.records(since), args.format):
                out.write(line)
            return 0
        if command == "prune":
            if auditor.retention_days <= 0:
                raise FaqbotError("FAQBOT_AUDIT_RETENTION_DAYS is 0 (keep forever): nothing to prune")
            record = auditor.prune()
            if record is None:
                out.write("nothing older than the retention\n")
            else:
                out.write(f"pruned {record.data()['deleted']} record(s); pruning record {record.seq}\n")
            return 0
    finally:
        auditor.close()
    raise FaqbotError(f"unknown audit command {command!r}")


def cli_feedback(args: argparse.Namespace, out: TextIO, settings: Settings | None = None) -> int:
    import json

    since = check_since(args.since)
    auditor = _open(settings)
    try:
        for entry in auditor.feedback(since):
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    finally:
        auditor.close()
    return 0
