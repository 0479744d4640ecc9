"""Report files for an :class:`~bot.evaluation.runner.EvalRun`: ``results.json``, ``summary.md`` and one
self-contained ``report.html`` (inline CSS and SVG charts, no script, no external request; a CSP forbids
any). All question, answer and passage text is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.evaluation.metrics import METRICS, format_value
from bot.evaluation.results import CaseResult, ConfigResult, aggregate
from bot.evaluation.runner import EvalRun

TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Retrieval (evidence-based)",
        ("hit@1", "hit@3", "mrr", "ndcg@5", "evidence_cited", "answer_evidence", "cited_chars"),
    ),
    (
        "Answers by kind",
        ("accuracy", "faq_accuracy", "decision_accuracy", "no_rule_accuracy", "clarify_accuracy"),
    ),
    (
        "Abstention and grounding",
        ("abstention_precision", "abstention_recall", "abstention_f1", "false_abstentions", "grounding"),
    ),
    ("Latency", ("latency_p50_ms", "latency_p95_ms", "errors")),
)
HEADLINE = (
    "accuracy",
    "hit@1",
    "hit@3",
    "mrr",
    "ndcg@5",
    "abstention_f1",
    "false_abstentions",
    "grounding",
    "decision_accuracy",
    "cited_chars",
    "latency_p50_ms",
    "latency_p95_ms",
)
CHART_METRICS = ("hit@1", "hit@3", "mrr", "ndcg@5", "evidence_cited", "abstention_f1", "accuracy")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
EXCERPT_CHARS = 160


@dataclass(frozen=True, slots=True)
class ReportFiles:
    json: Path
    markdown: Path
    html: Path


def write_report(run: EvalRun, directory: str | Path) -> ReportFiles:
    """Write the three report files into ``directory`` (created if missing)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(d / "results.json", d / "summary.md", d / "report.html")
    files.json.write_text(results_json(run), encoding="utf-8")
    files.markdown.write_text(summary_markdown(run), encoding="utf-8")
    files.html.write_text(report_html(run), encoding="utf-8")
    return files


def results_json(run: EvalRun) -> str:
    return json.dumps(run.to_dict(), ensure_ascii=False, indent=1) + "\n"


# ---- markdown -----------------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def metrics_table(configs: Sequence[ConfigResult], keys: Sequence[str]) -> str:
    """A Markdown table: one row per config, one column per metric key."""
    head = "| config | " + " | ".join(METRICS[k].label for k in keys) + " |"
    rule = "|---|" + "|".join("---:" for _ in keys) + "|"
    rows = [
        f"| {c.name} | " + " | ".join(format_value(k, c.metrics.value(k)) for k in keys) + " |"
        for c in configs
    ]
    return "\n".join([head, rule, *rows])


def kinds_table(configs: Sequence[ConfigResult]) -> str:
    kinds = [k.kind for k in configs[0].kinds] if configs else []
    head = "| config | " + " | ".join(kinds) + " |"
    rule = "|---|" + "|".join("---:" for _ in kinds) + "|"
    rows = []
    for c in configs:
        cells = {k.kind: f"{k.passed}/{k.cases}" for k in c.kinds}
        rows.append(f"| {c.name} | " + " | ".join(cells.get(k, "—") for k in kinds) + " |")
    return "\n".join([head, rule, *rows])


def headline_table(run: EvalRun) -> str:
    return metrics_table(run.configs, HEADLINE)


def summary_markdown(run: EvalRun) -> str:
    lines = ["# faqbot evaluation", ""]
    sets = ", ".join(f"`{s.path}` ({s.cases} cases)" for s in run.sets) or "—"
    lines += [f"- Created: {run.created} ({run.seconds:.1f} s)", f"- Sets: {sets}"]
    lines += [f"- {k}: {_md_cell(v)}" for k, v in run.context]
    lines += [f"- Config `{c.name}`: {_md_cell(c.label)}" for c in run.configs]
    lines.append("")
    for title, keys in TABLES:
        lines += [f"## {title}", "", metrics_table(run.configs, keys), ""]
    lines += ["## Passed per kind", "", kinds_table(run.configs), ""]
    lines += ["## Per set (primary config; drop from the first set)", "", sets_table(run), ""]
    if run.gates:
        lines += ["## Gates", ""]
        lines += [f"- {g.describe()}" for g in run.gates]
        lines += ["", f"**{'PASSED' if run.passed else 'FAILED'}**", ""]
    if run.configs:
        primary = run.primary
        failures = [r for r in primary.results if not r.passed]
        lines += [f"## Failures of `{primary.name}` ({len(failures)} of {len(primary.results)})", ""]
        if failures:
            lines += ["| id | kind | question | route | reason |", "|---|---|---|---|---|"]
            lines += [
                f"| {_md_cell(r.case.id)} | {r.case.kind} | {_md_cell(r.case.question)} | {r.route} | "
                f"{_md_cell(r.reason)} |"
                for r in failures
            ]
        else:
            lines.append("None.")
        lines.append("")
    return "\n".join(lines)


# ---- HTML ---------------------------------------------------------------------------------------------------
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{_color(i)}"></span>{_e(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def bar_chart(
    title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]
) -> str:
    """Grouped vertical bars on a 0..1 scale, as inline SVG; None values are drawn as a hollow marker."""
    width, height, left, bottom, top = 760, 260, 40, 46, 16
    plot_w, plot_h = width - left - 10, height - bottom - top
    group_w = plot_w / max(1, len(categories))
    bar_w = max(3.0, (group_w - 12) / max(1, len(series)))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - t)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">{t:.2f}</text>')
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + 6
        for si, (name, values) in enumerate(series):
            v = values[ci] if ci < len(values) else None
            x = gx + si * bar_w
            label = f"{name} · {cat}: {'undefined' if v is None else f'{v:.3f}'}"
            if v is None:
                parts.append(
                    f'<rect x="{x:.1f}" y="{top + plot_h - 2:.1f}" width="{bar_w - 1:.1f}" height="2" '
                    f'fill="none" stroke="{_color(si)}"><title>{_e(label)}</title></rect>'
                )
                continue
            h = plot_h * max(0.0, min(1.0, v))
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{_color(si)}"><title>{_e(label)}</title></rect>'
                f'<text x="{x + (bar_w - 1) / 2:.1f}" y="{top + plot_h - h - 2:.1f}" class="value" '
                f'text-anchor="middle">{v:.2f}</text>'
            )
        parts.append(
            f'<text x="{gx + (group_w - 12) / 2:.1f}" y="{height - bottom + 16}" class="axis" '
            f'text-anchor="middle">{_e(cat)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def latency_chart(configs: Sequence[ConfigResult]) -> str:
    """One row per config: every case's latency as a dot (log scale), with p50 and p95 marks."""
    width, row_h, left, right, top = 760, 34, 90, 20, 10
    values = [r.latency_ms for c in configs for r in c.results if r.latency_ms > 0]
    height = top + row_h * max(1, len(configs)) + 30
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="latency distribution">'
    ]
    parts.append("<title>Latency per question (ms, log scale)</title>")
    if not values:
        parts.append('<text x="10" y="20" class="axis">no latencies</text></svg>')
        return "".join(parts)
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def x_of(ms: float) -> float:
        ms = max(ms, lo)
        return left + (width - left - right) * (math.log10(ms) - math.log10(lo)) / span

    decade = lo
    while decade <= hi * 1.0001:
        x = x_of(decade)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 24}" class="grid"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" class="axis" text-anchor="middle">{decade:g} ms</text>'
        )
        decade *= 10
    for i, c in enumerate(configs):
        y = top + row_h * i + row_h / 2
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_e(c.name)}</text>'
        )
        for k, r in enumerate(c.results):
            jitter = ((k * 7919) % 13 - 6) * 1.2
            parts.append(
                f'<circle cx="{x_of(r.latency_ms):.1f}" cy="{y + jitter:.1f}" r="2.2" fill="{_color(i)}" '
                f'fill-opacity="0.45"><title>{_e(r.case.id)}: {r.latency_ms:.1f} ms</title></circle>'
            )
        for key, dash in (("latency_p50_ms", ""), ("latency_p95_ms", ' stroke-dasharray="3 2"')):
            v = c.metrics.value(key)
            if v is not None:
                x = x_of(v)
                parts.append(
                    f'<line x1="{x:.1f}" y1="{y - 13:.1f}" x2="{x:.1f}" y2="{y + 13:.1f}" stroke="#222" '
                    f'stroke-width="2"{dash}><title>{_e(c.name)} {METRICS[key].label}: {v:.1f} ms</title></line>'
                )
    parts.append("</svg>")
    return "".join(parts)


def _html_metrics_table(configs: Sequence[ConfigResult], keys: Sequence[str]) -> str:
    head = "".join(f'<th title="{_e(METRICS[k].doc)}">{_e(METRICS[k].label)}</th>' for k in keys)
    rows = "".join(
        f"<tr><th>{_e(c.name)}</th>"
        + "".join(f'<td class="num">{_e(format_value(k, c.metrics.value(k)))}</td>' for k in keys)
        + "</tr>"
        for c in configs
    )
    return (
        f'<table class="metrics"><thead><tr><th>config</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def _excerpt(text: str) -> str:
    t = " ".join(text.split())
    return t if len(t) <= EXCERPT_CHARS else t[: EXCERPT_CHARS - 1] + "…"


def _spans_html(r: CaseResult) -> str:
    items = []
    for s in r.spans:
        flag = "" if s.grounded else ' <b class="bad">NOT GROUNDED</b>'
        items.append(
            f'<li class="{_e(s.role)}"><span class="where" title="{_e(s.source)}">{_e(s.role)} '
            f"{_e(Path(s.source).name)}:{s.start}-{s.end}</span>"
            f"{flag} {_e(_excerpt(s.text))}</li>"
        )
    return f"<ol>{''.join(items)}</ol>" if items else ""


def _question_html(r: CaseResult) -> str:
    hist = "".join(f'<div class="hist">earlier: {_e(h)}</div>' for h in r.case.history)
    tags = " ".join(f'<span class="tag">{_e(t)}</span>' for t in r.case.tags)
    return f"{hist}<div>{_e(r.case.question)}</div>{tags}"


def _expected_html(r: CaseResult) -> str:
    parts = [f"<div>evidence: <code>{_e(e)}</code></div>" for e in r.case.expect_evidence]
    parts += [f"<div>action: <code>{_e(a)}</code></div>" for a in r.case.expect_action]
    return "".join(parts) or "—"


def _got_html(r: CaseResult) -> str:
    parts = [f"<div>{_e(r.route)}</div>"]
    parts += [f"<div>action: <code>{_e(a)}</code></div>" for a in r.actions]
    if r.missing:
        parts.append(f"<div>missing: {_e(', '.join(r.missing))}</div>")
    if r.facts:
        parts.append(f'<div class="where">facts {_e(r.facts)}</div>')
    return "".join(parts)


def _cases_table(run: EvalRun) -> str:
    """Every case: pass/fail per config, and the primary config's details. Failures first."""
    configs = run.configs
    primary = run.primary
    by_config = [{r.case.id: r for r in c.results} for c in configs]
    order = sorted(
        range(len(primary.results)),
        key=lambda i: (
            primary.results[i].passed,
            sum(m[primary.results[i].case.id].passed for m in by_config),
            i,
        ),
    )
    head = "".join(f"<th>{_e(c.name)}</th>" for c in configs)
    rows = []
    for i in order:
        r = primary.results[i]
        marks = []
        for m in by_config:
            cr = m[r.case.id]
            cls, sym = ("ok", "✓") if cr.passed else ("bad", "✗")
            marks.append(
                f'<td class="{cls}" title="{_e(cr.route + (": " + cr.reason if cr.reason else ""))}">{sym}</td>'
            )
        rank = "—" if r.evidence_rank is None else str(r.evidence_rank)
        rows.append(
            f'<tr class="{"pass" if r.passed else "fail"}"><td><code>{_e(r.case.id)}</code></td>'
            f"<td>{_e(r.case.kind)}</td><td>{_question_html(r)}</td>{''.join(marks)}"
            f"<td>{_got_html(r)}</td><td>{_e(r.reason) or '—'}</td><td>{_expected_html(r)}</td>"
            f'<td class="num">{rank}</td><td class="num">{r.latency_ms:.1f}</td><td>{_spans_html(r)}</td></tr>'
        )
    return (
        '<table class="cases"><thead><tr><th>id</th><th>kind</th><th>question</th>'
        f"{head}<th>route ({_e(primary.name)})</th><th>why it failed</th><th>expected</th>"
        "<th>evidence rank</th><th>ms</th><th>shown passages</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _config_details(c: ConfigResult) -> str:
    failures = [r for r in c.results if not r.passed]
    rows = "".join(
        f"<tr><td><code>{_e(r.case.id)}</code></td><td>{_e(r.case.kind)}</td><td>{_e(r.case.question)}</td>"
        f"<td>{_e(r.route)}</td><td>{_e(r.reason)}</td><td>{_spans_html(r)}</td></tr>"
        for r in failures
    )
    return (
        f"<details><summary>{_e(c.name)}: {len(failures)} failure(s) of {len(c.results)} — {_e(c.label)}"
        f'</summary><table class="cases"><thead><tr><th>id</th><th>kind</th><th>question</th><th>route</th>'
        f"<th>why</th><th>shown passages</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top}
th{background:#f5f5f5;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{color:#1a7f37;text-align:center}td.bad{color:#c62828;text-align:center;font-weight:bold}
tr.fail>td:first-child{border-left:4px solid #c62828}tr.pass>td:first-child{border-left:4px solid #1a7f37}
.cases{font-size:12.5px}.cases ol{margin:0;padding-left:18px}.cases li.related{color:#666}
.where{font-family:ui-monospace,monospace;font-size:11px;color:#555}.bad{color:#c62828}
.hist{color:#666;font-size:12px}.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 4px;
margin:2px 2px 0 0;font-size:11px}.legend{margin:4px 0}.key{margin-right:14px}
.swatch{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:middle}
.grid{stroke:#e5e5e5}.axis{font-size:11px;fill:#555}.value{font-size:8px;fill:#333}.gate-ok{color:#1a7f37}.gate-bad{color:#c62828;font-weight:bold}
code{font-size:12px;background:#f6f6f6;padding:0 2px}
"""


def report_html(run: EvalRun) -> str:
    names = [c.name for c in run.configs]
    kinds = [k.kind for k in run.primary.kinds] if run.configs else []
    kind_series = [
        (c.name, [{k.kind: k.accuracy for k in c.kinds}.get(kind) for kind in kinds]) for c in run.configs
    ]
    metric_series = [(c.name, [c.metrics.value(k) for k in CHART_METRICS]) for c in run.configs]
    body = [
        "<h1>faqbot evaluation</h1>",
        "<ul>",
        f"<li>Created {_e(run.created)} in {run.seconds:.1f} s</li>",
        *(f"<li>Set <code>{_e(s.path)}</code>: {s.cases} cases. {_e(s.description)}</li>" for s in run.sets),
        *(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in run.context),
        *(f"<li><b>{_e(c.name)}</b>: {_e(c.label)}</li>" for c in run.configs),
        "</ul>",
    ]
    if run.gates:
        verdict = "PASSED" if run.passed else "FAILED"
        body.append(
            f'<h2>Gates: <span class="{"gate-ok" if run.passed else "gate-bad"}">{verdict}</span></h2><ul>'
        )
        body += [
            f'<li class="{"gate-ok" if g.passed else "gate-bad"}">{_e(g.describe())}</li>' for g in run.gates
        ]
        body.append("</ul>")
    body.append("<h2>Per-config comparison</h2>")
    for title, keys in TABLES:
        body += [f"<h3>{_e(title)}</h3>", _html_metrics_table(run.configs, keys)]
    body += [
        "<h2>Charts</h2><h3>Accuracy per kind</h3>",
        _legend(names),
        bar_chart("Accuracy per kind", kinds, kind_series),
        "<h3>Metrics per config</h3>",
        _legend(names),
        bar_chart("Metrics per config", [METRICS[k].label for k in CHART_METRICS], metric_series),
        "<h3>Latency distribution (log scale; solid line p50, dashed p95)</h3>",
        latency_chart(run.configs),
    ]
    if run.configs:
        body += [
            f"<h2>Per question (failures of <code>{_e(run.primary.name)}</code> first)</h2>",
            _cases_table(run),
            "<h2>Failures per config</h2>",
            *(_config_details(c) for c in run.configs),
        ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>faqbot evaluation</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def faq_first_cited(results: Sequence[CaseResult]) -> float | None:
    """FAQ accuracy scored on the *first cited* passage: answered (not abstained) with every evidence
    string in citation [1]. Quoting most of the document cannot score here, unlike "evidence cited"."""
    faq = [r for r in results if r.case.kind == "faq"]
    if not faq:
        return None
    return sum(1 for r in faq if r.route == "answer" and r.evidence_rank == 1) / len(faq)


def sets_table(run: EvalRun) -> str:
    """The primary config per eval file, side by side (first file = the calibration set, e.g. dev), and
    each later file's drop from the first: what generalisation costs."""
    by_file: dict[str, list[CaseResult]] = {}
    for r in run.primary.results:
        by_file.setdefault(r.case.origin.rsplit(":", 1)[0], []).append(r)
    cols = [
        ("FAQ first cited", lambda rs: faq_first_cited(rs)),
        ("FAQ hit@3", lambda rs: aggregate([r for r in rs if r.case.kind == "faq"]).hit_at_3),
        ("in-scope abstained", lambda rs: aggregate(rs).false_abstention_rate),
        ("out-of-scope abstained", lambda rs: aggregate(rs).abstention_recall),
        ("decision", lambda rs: aggregate(rs).decision_accuracy),
        ("no_rule", lambda rs: aggregate(rs).no_rule_accuracy),
        ("clarify", lambda rs: aggregate(rs).clarify_accuracy),
    ]
    head = "| set | cases | " + " | ".join(c for c, _ in cols) + " |"
    rule = "|---|---:|" + "|".join("---:" for _ in cols) + "|"
    rows = [head, rule]
    values: dict[str, list[float | None]] = {}
    for name, rs in by_file.items():
        vals = [f(rs) for _, f in cols]
        values[name] = vals
        cells = ["—" if v is None else f"{v:.3f}" for v in vals]
        rows.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")
    names = list(values)
    if len(names) > 1:
        base = values[names[0]]
        for name in names[1:]:
            diffs = [
                "—" if a is None or b is None else f"{b - a:+.3f}"
                for a, b in zip(base, values[name], strict=True)
            ]
            rows.append(f"| drop: {name} − {names[0]} | | " + " | ".join(diffs) + " |")
    return "\n".join(rows)
