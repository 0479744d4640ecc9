"""The Gradio Blocks UI: Chat, Dose decision and Source tabs. A thin face over ``Bot.ask`` / ``Bot.decide``.

Every event has a pinned ``api_name``. The public endpoints (``/ask``, ``/decide``, ``/passage``) take and
return the JSON contract; the UI events are private. All text from documents and users goes through
:mod:`bot.render`, which escapes it.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from bot import render
from bot.core import Bot
from bot.errors import FaqbotError
from bot.feedback import Feedback, FeedbackLog
from bot.records import Caller
from bot.render import SourceView

NOT_READY = "the index is still loading; try again in a moment"
MAX_CHOICES = 4
EXAMPLES = (
    "How often are eye exams needed?",
    "What should be done for grade 2 ocular toxicity?",
    "What do I do for eye toxicity?",
    "Are antibiotics used to prevent skin toxicity?",
    "Can avutometinib be taken with grapefruit juice?",
)
UNSET = "—"  # a form field left empty
HEADER = (
    '<header><h1>faqbot <span class="fb-sub">— answers from the avutometinib + defactinib '
    "dose-modification source, with citations</span></h1></header>"
)
REACTIONS = ("ocular", "skin", "hepatotoxicity", "rhabdomyolysis")

# Colours meet WCAG 2.2 AA contrast (4.5:1 for text) on their backgrounds; focus is always visible.
CSS = """
.gradio-container { overflow: clip !important; }  /* hidden would stop the notice from sticking */
/* The theme's orange accent is 2.8:1 on white: a darker shade of it passes AA (5.2:1) as text and fill. */
.gradio-container { --color-accent: #c2410c !important; --button-primary-background-fill: #c2410c !important;
  --button-primary-background-fill-hover: #9a3412 !important; --button-primary-border-color: #c2410c !important;
  --button-primary-border-color-hover: #9a3412 !important; --checkbox-background-color-selected: #c2410c !important;
  --checkbox-border-color-selected: #c2410c !important; --checkbox-border-color-focus: #c2410c !important;
  --loader-color: #c2410c !important; --border-color-accent: #c2410c !important; }
.fb-sr { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
#fb-header h1 { font-size: 1.25rem; font-weight: 700; margin: 0; color: var(--body-text-color); }
#fb-header .fb-sub { font-weight: 400; font-size: 0.95rem; color: #374151; }
.dark #fb-header .fb-sub { color: #d1d5db; }
#fb-notice { position: sticky; top: 0; z-index: 50; background: var(--body-background-fill); padding: 4px 0; }
.fb-notice { border: 1px solid #b45309; background: #fffbeb; color: #78350f; padding: 6px 12px;
  border-radius: 6px; font-size: 0.9em; }
.fb-notice summary { cursor: pointer; }
.fb-notice-body { margin: 4px 0 0 0; }
.fb-notice details[open] .fb-notice-short { display: none; }
.fb-notice .fb-loc { color: #78350f; opacity: 1; }
.fb-badge { display: inline-block; font-size: 0.8em; font-weight: 600;
  letter-spacing: .03em; padding: 1px 8px; border-radius: 10px; background: #e0e7ff; color: #3730a3;
  margin-bottom: 4px; }
.fb-route-abstain .fb-badge { background: #fee2e2; color: #991b1b; }
.fb-route-no_rule .fb-badge { background: #fef3c7; color: #92400e; }
.fb-route-clarify .fb-badge { background: #e0f2fe; color: #075985; }
.fb-route-decision .fb-badge { background: #dcfce7; color: #166534; }
.fb-card { border: 2px solid #16a34a; border-radius: 8px; padding: 8px 12px; margin: 4px 0; }
.fb-route-no_rule .fb-card { border-color: #d97706; }
.fb-route-clarify .fb-card { border-color: #0284c7; border-style: dashed; }
.fb-action { font-size: 1.08em; margin: 4px 0; }
.fb-row-label { font-size: 0.85em; }
.fb-row, .fb-quote, .fb-passage-text { border-left: 3px solid #64748b; margin: 4px 0; padding: 2px 10px; }
.fb-verbatim { white-space: pre-wrap; tab-size: 4; overflow-wrap: anywhere; }
.fb-loc { font-size: 0.8em; font-family: monospace; overflow-wrap: anywhere; }
/* faqbot's citation markers: superscript number pills that link to the citation (the source's own
   reference marks stay plain bracketed text). */
.fb-mark { line-height: 0; }
.fb-mark a.fb-mark-link, .fb-n { display: inline-block; min-width: 1.3em; padding: 0 .3em; border-radius: 1em;
  background: #3730a3; color: #ffffff !important; font-weight: 700; font-size: .78em; text-align: center;
  text-decoration: none; line-height: 1.45; }
.fb-mark a.fb-mark-link { padding: .1em .45em; }  /* a 24 px target with its surroundings (WCAG 2.5.8) */
.fb-cite, .fb-related { margin: 4px 0; }
.fb-cite summary, .fb-related summary, .fb-more summary { cursor: pointer; }
.fb-jump { font-size: 0.9em; display: inline-block; padding: 4px 0; color: #1d4ed8; }
.dark .fb-jump { color: #93c5fd; }
.fb-facts ul { margin: 2px 0 2px 18px; padding: 0; }
.fb-missing { font-weight: 600; margin-top: 4px; }
.fb-error { color: #991b1b; }
.fb-question { white-space: pre-wrap; overflow-wrap: anywhere; }
.fb-doc-name { font-family: monospace; font-size: 1em; font-weight: 400; margin: 0 0 6px 0; }
.fb-source .fb-passage { scroll-margin-top: 120px; border-radius: 4px; transition: background .3s; }
.fb-source .fb-passage.fb-hl, .fb-source tr.fb-hl td { background: #fde68a; color: #1f2937;
  outline: 2px solid #b45309; }
.fb-table-wrap { overflow-x: auto; max-width: 100%; }
.fb-table { border-collapse: collapse; margin: 8px 0; width: 100%; min-width: 28em; }
.fb-table th, .fb-table td { border: 1px solid #94a3b8; padding: 4px 8px; text-align: left;
  vertical-align: top; }
.fb-table caption { text-align: left; font-weight: 600; padding: 4px 0; }
#fb-dose-card:empty { display: none; }
#fb-dose-card .fb-answer { scroll-margin-top: 90px; scroll-margin-bottom: 12px; }  /* clear of the notice */
/* Keyboard focus: always visible, on every control and on the document's own elements. */
a:focus-visible, summary:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible,
[tabindex]:focus-visible, [role="tab"]:focus-visible {
  outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }
.dark a:focus-visible, .dark summary:focus-visible, .dark button:focus-visible { outline-color: #93c5fd !important; }
/* Contrast: Gradio's placeholders and block labels are too pale for WCAG AA. */
textarea::placeholder, input::placeholder { color: #6b7280 !important; opacity: 1; }
/* Phones (≤ 480 px) and tablets (≤ 1024 px): one column, full-width chat, the notice folded to a line. */
@media (max-width: 1024px) {
  #fb-dose-row { flex-direction: column !important; }
  #fb-dose-row > * { min-width: 0 !important; width: 100% !important; }
}
@media (max-width: 480px) {
  #fb-header .fb-sub { display: none; }
  /* tables stack: one card per row, each cell named by its column */
  .fb-tables .fb-table { min-width: 0; }
  .fb-tables .fb-table thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  .fb-tables .fb-table tr { display: block; border: 1px solid #94a3b8; border-radius: 6px; margin: 6px 0; }
  .fb-tables .fb-table td { display: block; border: 0; padding: 2px 8px; }
  .fb-tables .fb-table td:empty { display: none; }
  .fb-tables .fb-table td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
  .fb-notice { padding: 4px 8px; font-size: .85em; }
  #fb-chat { height: 62vh !important; }
  #fb-chat .message-row, #fb-chat .message-wrap .message { max-width: 100% !important; }
  #fb-chat .bubble-wrap { padding: 6px !important; }
  #fb-ask-row { flex-wrap: nowrap !important; gap: 6px; }
  #fb-ask-row > * { min-width: 0 !important; }
  #fb-send { min-width: 4.5em !important; flex: 0 0 auto !important; }
  #fb-examples button, #fb-choices button { flex: 1 1 100% !important; min-height: 44px; }
}
"""

# In the page's <head>: citation links (jump to the Source tab, focus the passage), marker links (open the
# citation), the notice folded on narrow screens, and a polite live region that announces each new answer.
HEAD = """
<style>
/* Gradio scopes the css= rules inside its container; the page margins sit outside it. */
@media (max-width: 1024px) { .gradio-container > .main.app { padding: 8px 12px !important; } }
@media (max-width: 480px) { .gradio-container > .main.app { padding: 4px 6px !important; } }
</style>
<script>
(() => {
  function jump(id) {
    const tab = Array.from(document.querySelectorAll('button[role="tab"]'))
      .find((b) => b.textContent.trim() === 'Source');
    if (tab) tab.click();
    let tries = 0;
    const go = () => {
      const el = document.getElementById(id);
      if (el && el.offsetParent !== null) {
        document.querySelectorAll('.fb-hl').forEach((x) => x.classList.remove('fb-hl'));
        el.classList.add('fb-hl');
        el.setAttribute('tabindex', '-1');
        el.scrollIntoView({ block: 'center' });
        el.focus({ preventScroll: true });
      } else if (tries++ < 60) {
        setTimeout(go, 50);
      }
    };
    go();
  }
  function openCitation(link) {
    const n = (link.getAttribute('href') || '').replace('#fb-cite-', '');
    const answer = link.closest('.fb-answer');
    const cite = answer && answer.querySelector('details.fb-cite-' + CSS.escape(n));
    if (!cite) return;
    cite.open = true;
    const summary = cite.querySelector('summary');
    if (summary) { summary.scrollIntoView({ block: 'nearest' }); summary.focus(); }
  }
  document.addEventListener('click', (event) => {
    const target = event.target.closest ? event.target : null;
    if (!target) return;
    const a = target.closest('a.fb-jump');
    if (a) {
      event.preventDefault();
      jump((a.getAttribute('href') || '').slice(1));
      return;
    }
    const mark = target.closest('a.fb-mark-link');
    if (mark) {
      event.preventDefault();
      openCitation(mark);
    }
  }, true);
  // A link from outside (a CDS Hooks card: .../#p-<passage id>) opens the Source tab at that passage.
  function fromHash() {
    const id = decodeURIComponent(location.hash.slice(1));
    if (!/^p-[A-Za-z0-9_-]+$/.test(id)) return;
    let n = 0;
    const wait = () => {
      const ready = Array.from(document.querySelectorAll('button[role="tab"]'))
        .some((b) => b.textContent.trim() === 'Source');
      if (ready) jump(id); else if (n++ < 100) setTimeout(wait, 100);
    };
    wait();
  }
  // Gradio may insert this script after the page's load event: then run now.
  if (document.readyState === 'complete') fromHash(); else window.addEventListener('load', fromHash);
  window.addEventListener('hashchange', fromHash);

  let live = null;
  function announce(el) {
    const badge = el.querySelector('.fb-badge');
    const action = el.querySelector('.fb-action');
    const text = el.querySelector('.fb-text');
    const cites = el.querySelectorAll('.fb-cites details.fb-cite').length;
    const parts = ['New answer: ' + (badge ? badge.textContent.trim() : '') + '.'];
    if (action) parts.push(action.textContent.trim());
    else if (text) {
      const copy = text.cloneNode(true);
      copy.querySelectorAll('.fb-mark').forEach((m) => m.remove());
      parts.push(copy.textContent.replace(/\\s+/g, ' ').trim().slice(0, 240));
    }
    if (cites) parts.push(cites + (cites === 1 ? ' citation.' : ' citations.'));
    live.textContent = '';
    setTimeout(() => { live.textContent = parts.join(' '); }, 50);
  }
  let chatCount = 0;
  let doseShown = '';
  function check() {
    const answers = document.querySelectorAll('#fb-chat .fb-answer');
    if (answers.length > chatCount) announce(answers[answers.length - 1]);
    chatCount = answers.length;
    const dose = document.querySelector('#fb-dose-card .fb-answer');
    const shown = dose ? dose.outerHTML : '';
    if (dose && shown !== doseShown) {
      announce(dose);
      dose.scrollIntoView({ block: 'nearest' });  // below the form on small screens: bring it into view
    }
    doseShown = shown;
  }
  function setup() {
    live = document.createElement('div');
    live.id = 'fb-live';
    live.className = 'fb-sr';
    live.setAttribute('role', 'status');
    live.setAttribute('aria-live', 'polite');
    live.setAttribute('aria-atomic', 'true');
    document.body.appendChild(live);
    const narrow = window.matchMedia('(max-width: 1024px)');
    let folded = false;
    new MutationObserver(() => {
      const fold = document.querySelector('#fb-notice details.fb-notice-fold');
      if (fold && !folded) { folded = true; if (narrow.matches) fold.open = false; }
      // The chat log would read each whole answer aloud as well: the summary above is announced instead.
      const log = document.querySelector('#fb-chat [role="log"]');
      if (log && log.getAttribute('aria-live') !== 'off') log.setAttribute('aria-live', 'off');
      // Gradio's radio groups are fieldsets without a legend: name each group by its visible label.
      document.querySelectorAll('fieldset:not([aria-label])').forEach((f) => {
        const label = f.querySelector('[data-testid="block-info"]');
        if (label && label.textContent.trim()) f.setAttribute('aria-label', label.textContent.trim());
      });
      check();
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', setup);
  else setup();
})();
</script>
"""


# ---- plain functions (the UI's behaviour, testable without a browser) --------------------------------
def history_of(turns: Sequence[dict[str, Any]]) -> list[str]:
    """Earlier questions that were answered: what ``Bot.ask`` reads for follow-ups."""
    return [t["question"] for t in turns if t.get("answer") is not None]


def ui_caller(request: gr.Request | None) -> Caller:
    """The audit Caller of a UI event: Gradio's authenticated user (else anonymous), a fresh request id."""
    return Caller("ui", getattr(request, "username", None) or "anonymous", uuid.uuid4().hex)


def ask_turn(
    bot: Bot, question: str, turns: Sequence[dict[str, Any]], caller: Caller | None = None
) -> dict[str, Any]:
    """One chat turn: the question and its Answer JSON, or the error that stopped it."""
    question = question if isinstance(question, str) else ""
    rid = caller.request_id if caller else ""
    try:
        if not bot.ready:
            raise FaqbotError(NOT_READY)
        answer = bot.ask(question, history_of(turns), caller=caller).to_dict()
    except FaqbotError as exc:
        return {"question": question, "answer": None, "error": str(exc), "request_id": rid}
    return {"question": answer["question"], "answer": answer, "error": None, "request_id": rid}


def messages(turns: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Chatbot messages: two per turn (question, then answer or error), all escaped HTML."""
    out = []
    for t in turns:
        out.append({"role": "user", "content": render.question_html(t["question"])})
        body = render.answer_html(t["answer"]) if t.get("answer") else render.error_html(t["error"])
        out.append({"role": "assistant", "content": body})
    return out


def choices(turns: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """One-click follow-ups offered after the last turn (only when it asked to clarify)."""
    if not turns or not turns[-1].get("answer"):
        return ()
    last = turns[-1]["answer"]
    return render.choices_for(last.get("missing") or []) if last.get("route") == "clarify" else ()


EXPORT_MAX_AGE_S = 3600.0


def export_file(turns: Sequence[dict[str, Any]], notice: dict[str, Any] | None, folder: Path) -> Path | None:
    """The conversation as a Markdown file for the download button (None before the first answer).

    Exports older than an hour are removed on the way (Gradio serves its own copy from its cache).
    """
    answers = [t["answer"] for t in turns if t.get("answer")]
    if not answers:
        return None
    now = time.time()
    for old in folder.glob("*/faqbot-conversation.md"):
        try:
            if now - old.stat().st_mtime > EXPORT_MAX_AGE_S:
                old.unlink()
                old.parent.rmdir()
        except OSError:
            pass
    path = folder / uuid.uuid4().hex / "faqbot-conversation.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render.export_markdown(answers, notice), encoding="utf-8")
    return path


def facts_from_form(
    reaction: str | None,
    grade: str | None,
    symptomatic: str | None,
    suspected_scar: str | None,
    cpk_uln: str | None,
    creatinine_baseline: str | None,
    aki: str | None,
) -> dict[str, Any]:
    """The form's values as JSON-like facts for ``Facts.from_mapping`` (empty or UNSET → None; the
    ratios stay text, which the dose engine parses and names if invalid)."""

    def opt(v: str | None) -> str | None:
        return None if v in (None, "", UNSET) else v

    def yes_no(v: str | None) -> bool | None:
        v = opt(v)
        return None if v is None else v == "yes"

    g = opt(grade)
    return {
        "reaction": opt(reaction),
        "grade": int(g) if g is not None else None,
        "symptomatic": yes_no(symptomatic),
        "suspected_scar": yes_no(suspected_scar),
        "cpk_uln": opt((cpk_uln or "").strip()),
        "creatinine_baseline": opt((creatinine_baseline or "").strip()),
        "aki": yes_no(aki),
    }


def decide_dict(bot: Bot, values: dict[str, Any], caller: Caller | None = None) -> dict[str, Any]:
    """``Bot.decide`` on facts given as JSON-like values, as the JSON contract (needs no model or index).

    Raises FactError naming an unknown fact, reaction or a mistyped value.
    """
    from bot.dose import Facts

    rules = getattr(bot.dose, "rules", None)
    facts = Facts.from_mapping(values, rules.reaction_names() if rules is not None else None)
    return bot.decide(facts, caller=caller).to_dict()


# ---- the Blocks ------------------------------------------------------------------------------------
def build_ui(
    bot: Bot,
    view: SourceView,
    feedback: FeedbackLog,
    max_question_chars: int = 2000,
    concurrency: int = 8,
    export_dir: Path | None = None,
) -> gr.Blocks:
    folder = export_dir or Path(tempfile.mkdtemp(prefix="faqbot-export-"))

    def chat_outputs(turns: list[dict[str, Any]]) -> tuple[Any, ...]:
        offered = choices(turns)
        buttons = [
            gr.Button(value=offered[k], visible=True) if k < len(offered) else gr.Button(visible=False)
            for k in range(MAX_CHOICES)
        ]
        path = export_file(turns, view.notice, folder)
        download = gr.DownloadButton(value=str(path) if path else None, visible=path is not None)
        return (messages(turns), turns, "", *buttons, download)

    def respond(question: str, turns: list[dict[str, Any]], request: gr.Request) -> tuple[Any, ...]:
        return chat_outputs([*turns, ask_turn(bot, question, turns, ui_caller(request))])

    def clear() -> tuple[Any, ...]:
        return chat_outputs([])

    def on_like(turns: list[dict[str, Any]], data: gr.LikeData, request: gr.Request) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        k = int(index) // 2
        if not 0 <= k < len(turns) or not turns[k].get("answer"):
            return
        rating = "up" if data.liked is True else "down" if data.liked is False else None
        if rating is None:
            return
        user = getattr(request, "username", None)
        fb = Feedback.of(
            turns[k]["answer"], rating, history_of(turns[:k]), user, turns[k].get("request_id", ""), "ui"
        )
        try:
            feedback.append(fb)
        except FaqbotError as exc:  # the audit store is required and down
            raise gr.Error(str(exc)) from None

    def decide_form(
        reaction: Any,
        grade: Any,
        symptomatic: Any,
        scar: Any,
        cpk: Any,
        creat: Any,
        aki: Any,
        request: gr.Request,
    ) -> str:
        values = (reaction, grade, symptomatic, scar, cpk, creat, aki)
        try:
            return render.answer_html(decide_dict(bot, facts_from_form(*values), ui_caller(request)))
        except (FaqbotError, TypeError, ValueError) as exc:
            return render.error_html(str(exc))

    # ---- public API endpoints (JSON contract) ----
    def ask(question: str, history: list[str] | None = None, request: gr.Request = None) -> dict[str, Any]:  # type: ignore[assignment]
        """Answer a question (with earlier questions as history): the Answer JSON."""
        if not bot.ready:
            raise gr.Error(NOT_READY)
        try:
            result: dict[str, Any] = bot.ask(question, history, caller=ui_caller(request)).to_dict()
        except FaqbotError as exc:
            raise gr.Error(str(exc)) from None
        return result

    def decide(
        reaction: str | None = None,
        grade: int | None = None,
        symptomatic: bool | None = None,
        suspected_scar: bool | None = None,
        cpk_uln: float | None = None,
        creatinine_baseline: float | None = None,
        aki: bool | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Dose decision from structured facts: the Answer JSON (decision, no_rule or clarify)."""
        facts = {
            "reaction": reaction,
            "grade": grade,
            "symptomatic": symptomatic,
            "suspected_scar": suspected_scar,
            "cpk_uln": cpk_uln,
            "creatinine_baseline": creatinine_baseline,
            "aki": aki,
        }
        try:
            return decide_dict(bot, facts, ui_caller(request))
        except FaqbotError as exc:
            raise gr.Error(str(exc)) from None

    def passage(passage_id: str) -> dict[str, Any]:
        """A source passage by id, verbatim and located."""
        if not bot.ready:
            raise gr.Error(NOT_READY)
        try:
            result: dict[str, Any] = bot.passage(passage_id).to_dict()
        except FaqbotError as exc:
            raise gr.Error(str(exc)) from None
        return result

    private: dict[str, Any] = {"api_visibility": "private"}
    with gr.Blocks(title="faqbot", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.HTML(HEADER, elem_id="fb-header", padding=False)
        gr.HTML(render.notice_html(view.notice), elem_id="fb-notice", padding=False)
        with gr.Tabs(elem_id="fb-tabs"):
            with gr.Tab("Chat", id="chat", elem_id="fb-tab-chat"):
                turns = gr.State([])
                chatbot = gr.Chatbot(
                    elem_id="fb-chat",
                    label="Conversation",
                    show_label=False,
                    height=520,
                    render_markdown=False,
                    sanitize_html=True,
                    latex_delimiters=[],
                    buttons=[],
                    feedback_options=("Like", "Dislike"),
                    placeholder="Ask about the source: answers quote it, with numbered citations.",
                )
                with gr.Row(elem_id="fb-choices"):
                    choice_buttons = [
                        gr.Button(visible=False, size="sm", elem_classes=["fb-choice"])
                        for _ in range(MAX_CHOICES)
                    ]
                with gr.Row(elem_id="fb-ask-row"):
                    box = gr.Textbox(
                        elem_id="fb-question",
                        label="Your question",
                        show_label=False,
                        placeholder=f"Ask a question (up to {max_question_chars} characters)",
                        max_length=max_question_chars,
                        lines=1,
                        scale=6,
                    )
                    send = gr.Button("Ask", variant="primary", elem_id="fb-send", scale=1)
                with gr.Row(elem_id="fb-examples"):
                    example_buttons = [gr.Button(q, size="sm", elem_classes=["fb-example"]) for q in EXAMPLES]
                with gr.Row():
                    clear_btn = gr.Button("Clear", size="sm", elem_id="fb-clear")
                    download = gr.DownloadButton(
                        "Export conversation (Markdown)", visible=False, size="sm", elem_id="fb-export"
                    )
            with gr.Tab("Dose decision", id="dose", elem_id="fb-tab-dose"), gr.Row(elem_id="fb-dose-row"):
                with gr.Column(scale=1, elem_id="fb-dose-form"):
                    f_reaction = gr.Dropdown(
                        [UNSET, *REACTIONS],
                        value=UNSET,
                        label="Adverse reaction",
                        elem_id="fb-f-reaction",
                    )
                    f_grade = gr.Radio(
                        [UNSET, "1", "2", "3", "4"],
                        value=UNSET,
                        label="CTCAE grade",
                        elem_id="fb-f-grade",
                    )
                    f_symptomatic = gr.Radio(
                        [UNSET, "yes", "no"], value=UNSET, label="Symptomatic", elem_id="fb-f-symptomatic"
                    )
                    f_scar = gr.Radio(
                        [UNSET, "yes", "no"], value=UNSET, label="Suspected SCAR", elem_id="fb-f-scar"
                    )
                    f_cpk = gr.Textbox(
                        label="CPK × ULN", placeholder="e.g. 12", elem_id="fb-f-cpk", max_lines=1
                    )
                    f_creat = gr.Textbox(
                        label="Serum creatinine × baseline",
                        placeholder="e.g. 1.6",
                        elem_id="fb-f-creat",
                        max_lines=1,
                    )
                    f_aki = gr.Radio(
                        [UNSET, "yes", "no"], value=UNSET, label="Acute kidney injury", elem_id="fb-f-aki"
                    )
                    decide_btn = gr.Button("Decide", variant="primary", elem_id="fb-decide")
                    card = gr.HTML("", elem_id="fb-dose-card", padding=False)
                with gr.Column(scale=1):
                    gr.HTML(render.tables_html(view.chunks), elem_id="fb-dose-tables", padding=False)
            with gr.Tab("Source", id="source", elem_id="fb-tab-source", render_children=True):
                gr.HTML(render.source_html(view.docs, view.chunks), elem_id="fb-source", padding=False)

        outputs = [chatbot, turns, box, *choice_buttons, download]
        box.submit(respond, [box, turns], outputs, api_name="chat_submit", **private)
        send.click(respond, [box, turns], outputs, api_name="chat_send", **private)
        for k, b in enumerate(choice_buttons, 1):
            b.click(respond, [b, turns], outputs, api_name=f"chat_choice_{k}", **private)
        for k, b in enumerate(example_buttons, 1):
            b.click(respond, [b, turns], outputs, api_name=f"chat_example_{k}", **private)
        clear_btn.click(clear, None, outputs, api_name="chat_clear", **private)
        chatbot.like(on_like, [turns], None, api_name="chat_feedback", **private)
        form = [f_reaction, f_grade, f_symptomatic, f_scar, f_cpk, f_creat, f_aki]
        decide_btn.click(decide_form, form, card, api_name="decide_form", **private)
        gr.api(ask, api_name="ask")
        gr.api(decide, api_name="decide")
        gr.api(passage, api_name="passage")
    demo.queue(default_concurrency_limit=max(1, concurrency), max_size=max(16, 8 * concurrency))
    return demo
