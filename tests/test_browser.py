"""The UI in a real browser: Debian's headless Chromium driven by Playwright (never a downloaded browser).

The server runs in a thread on a free 127.0.0.1 port with the real model over a copy of corpus/.
Screenshots go to artifacts/ (look at them: they are part of the check).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.core import Bot
from bot.server import create_app
from tests.serving import free_port, prefix_proxy, running

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL = ("http://127.0.0.1", "data:", "blob:", "about:")
XSS = "<script>alert('x')</script> <img src=x onerror=alert(1)> ![](http://x.invalid/p.png) $>10x$"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `bash scripts/install.sh --dev`")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(real_bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    feedback = tmp_path_factory.mktemp("browser") / "feedback.jsonl"
    settings = replace(real_bot.settings, feedback_path=feedback)
    with running(create_app(real_bot, settings)) as url:
        yield {"url": url + "/", "feedback": feedback}


class Page:
    """A page with the checks every test wants: no request leaves 127.0.0.1, no dialog, no page error."""

    def __init__(self, browser: Any, url: str, name: str, size: tuple[int, int] = (1280, 1100)) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.name = name
        self.context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.external: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", self._request)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="load")
        self.page.wait_for_selector("#fb-question textarea", timeout=30_000)

    def _request(self, request: Any) -> None:
        if not request.url.startswith(LOCAL):
            self.external.append(request.url)

    def shot(self, step: str) -> Path:
        path = ARTIFACTS / f"browser_{self.name}_{step}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def ask(self, question: str) -> Any:
        count = self.page.locator("#fb-chat .fb-question").count()
        self.page.fill("#fb-question textarea", question)
        self.page.click("#fb-send")
        self.page.wait_for_function(
            f"document.querySelectorAll('#fb-chat .fb-answer, #fb-chat .fb-error').length > {count}",
            timeout=30_000,
        )
        return self.page.locator("#fb-chat [class*='fb-answer'], #fb-chat .fb-error").last

    def close(self) -> None:
        assert not self.external, f"requests left 127.0.0.1: {self.external}"
        assert not self.dialogs, f"a dialog opened (script ran): {self.dialogs}"
        assert not self.errors, f"page errors: {self.errors}"
        self.context.close()


@pytest.fixture
def page(browser: Any, server: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Page]:
    p = Page(browser, server["url"], request.node.name.removeprefix("test_"))
    yield p
    p.close()


def test_page_loads_locally_with_the_notice_always_visible(page: Page) -> None:
    notice = page.page.locator("#fb-notice .fb-notice")
    assert notice.is_visible()
    assert "Research Use Only (RUO)" in notice.inner_text()
    assert page.page.locator(".fb-example").count() >= 4
    page.shot("01_loaded")
    page.page.get_by_role("tab", name="Source").click()
    page.page.mouse.wheel(0, 3000)
    page.page.wait_for_function("window.scrollY > 1000")
    box = notice.bounding_box()
    assert box is not None and 0 <= box["y"] < 100  # still in view, scrolled far down another tab
    page.shot("02_scrolled_source")


def test_ask_see_citation_expand_it_and_jump_to_the_source(page: Page) -> None:
    answer = page.ask("How often are eye exams needed?")
    assert "Answer from the source" in answer.inner_text()
    assert answer.locator(".fb-mark").first.inner_text() == "1"  # faqbot's marker: a superscript link
    cite = answer.locator("details.fb-cite").first
    passage = cite.locator(".fb-passage-text")
    assert not passage.is_visible()
    page.shot("01_answer")
    cite.locator("summary").click()
    assert passage.is_visible()
    assert "every three cycles thereafter" in passage.inner_text()
    page.shot("02_expanded")
    cite.locator("a.fb-jump").click()
    page.page.wait_for_selector("#fb-source .fb-hl", timeout=5_000)
    highlighted = page.page.locator("#fb-source .fb-hl")
    assert highlighted.count() == 1 and highlighted.is_visible()
    assert "every three cycles thereafter" in highlighted.inner_text()
    page.shot("03_source_highlight")


def test_clarifying_question_offers_grades_and_a_click_decides(page: Page) -> None:
    answer = page.ask("What do I do for eye toxicity?")
    assert "More information needed" in answer.inner_text()
    choices = page.page.locator("#fb-choices button:visible")
    assert [b.inner_text() for b in choices.all()] == ["Grade 1", "Grade 2", "Grade 3", "Grade 4"]
    page.shot("01_clarify")
    page.page.get_by_role("button", name="Grade 3", exact=True).click()
    page.page.wait_for_function(
        "document.querySelectorAll('#fb-chat .fb-route-decision').length > 0", timeout=30_000
    )
    card = page.page.locator("#fb-chat .fb-route-decision").last
    text = card.inner_text()
    assert "Dose decision" in text
    strong = card.locator(".fb-action strong").inner_text()
    assert strong == "Withhold until Grade ≤ 1 , then resume at a reduced dose or permanently discontinue."
    assert "Grade 3 (severe)" in card.locator(".fb-row").inner_text()  # the row, quoted
    assert "CTCAE grade: 3" in card.locator(".fb-facts").inner_text()  # the inputs used
    assert page.page.locator("#fb-choices button:visible").count() == 0
    page.shot("02_decided")


def test_dose_form_gives_the_same_card_beside_the_tables(page: Page) -> None:
    page.page.get_by_role("tab", name="Dose decision").click()
    tables = page.page.locator("#fb-dose-tables table")
    assert tables.count() == 2 and tables.nth(1).locator("tbody tr").count() == 5
    page.page.locator("#fb-f-reaction input").click()
    page.page.get_by_role("option", name="hepatotoxicity").click()
    page.page.locator("#fb-f-grade").get_by_label("3").check()
    page.page.click("#fb-decide")
    card = page.page.locator("#fb-dose-card .fb-answer")
    card.wait_for(timeout=15_000)
    assert "More information needed" in card.inner_text() and "Symptomatic" in card.inner_text()
    page.page.locator("#fb-f-symptomatic").get_by_label("yes").check()
    page.page.click("#fb-decide")
    page.page.wait_for_selector("#fb-dose-card .fb-route-decision", timeout=15_000)
    card = page.page.locator("#fb-dose-card .fb-route-decision")
    assert card.locator(".fb-action strong").inner_text().startswith("Withhold until improved to Grade ≤ 1")
    facts = card.locator(".fb-facts").inner_text()
    assert "Adverse reaction: hepatotoxicity" in facts and "Symptomatic: yes" in facts
    page.shot("01_decided")


def test_no_specific_criterion_and_abstention_are_marked(page: Page) -> None:
    no_rule = page.ask("grade 1 hepatotoxicity: what should be done?")
    assert "No specific criterion in the source" in no_rule.inner_text()
    abstain = page.ask("Can avutometinib be taken with grapefruit juice?")
    assert "Not answered by the source" in abstain.inner_text()
    page.shot("01_marked")


def test_xss_payload_stays_text(page: Page) -> None:
    reply = page.ask(XSS)
    question = page.page.locator("#fb-chat .fb-question").last
    assert question.inner_text() == XSS
    chat = page.page.locator("#fb-chat")
    assert chat.locator("img").count() == 0 and chat.locator("script").count() == 0
    assert reply.is_visible()
    assert page.page.locator("#fb-chat .katex").count() == 0  # $…$ is not math
    page.shot("01_literal")
    time.sleep(0.3)  # an onerror handler would have fired by now (Page.close checks for dialogs)


def test_source_math_and_links_show_as_written(page: Page) -> None:
    page.page.get_by_role("tab", name="Source").click()
    source = page.page.locator("#fb-source")
    text = source.inner_text()
    assert "CPK $>10x$ ULN" in text and "[Get Quote](#)" in text
    assert source.locator("a, img, .katex").count() == 0
    page.shot("01_source")


def test_thumbs_feedback_and_export(page: Page, server: dict[str, Any], real_bot: Bot) -> None:
    page.ask("How often are eye exams needed?")
    auditor = real_bot.auditor  # feedback goes to the audit store, linked to the answer's request id
    assert auditor is not None
    before = len(list(auditor.feedback()))
    page.page.locator("#fb-chat button[aria-label='Like']").last.click()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(list(auditor.feedback())) == before:
        time.sleep(0.1)
    last = list(auditor.feedback())[-1]
    assert last["rating"] == "up" and last["question"] == "How often are eye exams needed?"
    assert last["citations"] and last["face"] == "ui"
    answered = [r for r in auditor.store.records() if r.request_id == last["request_id"]]
    assert [r.kind for r in answered] == ["answer", "feedback"]
    with page.page.expect_download() as download:
        page.page.click("#fb-export")
    saved = Path(download.value.path())
    md = saved.read_text(encoding="utf-8")
    assert "## 1. How often are eye exams needed?" in md and "Citations:" in md
    page.shot("01_feedback")


def test_served_under_a_root_path_behind_a_proxy(browser: Any, real_bot: Bot, tmp_path: Path) -> None:
    """Like the nginx example of docs/embedding.md: the proxy strips /dosing, the app knows its root path."""
    settings = replace(real_bot.settings, root_path="/dosing", feedback_path=tmp_path / "fb.jsonl")
    with running(create_app(real_bot, settings), root_path="/dosing") as upstream:
        port = free_port()
        with running(prefix_proxy(upstream, "/dosing"), port=port) as proxied:
            p = Page(browser, proxied + "/dosing/", "root_path")
            try:
                answer = p.ask("How often are eye exams needed?")
                assert "Answer from the source" in answer.inner_text()
                p.shot("01_answer")
            finally:
                p.close()


def host_page(body: str) -> Any:
    """Another site (another origin) that embeds faqbot."""
    from starlette.responses import HTMLResponse

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await HTMLResponse(f"<!doctype html><html><body><h1>Intranet portal</h1>{body}</body></html>")(
                scope, receive, send
            )

    return app


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "refused"])
def test_iframe_embedding_follows_frame_ancestors(
    browser: Any, real_bot: Bot, tmp_path: Path, allowed: bool
) -> None:
    host_port = free_port()
    host = f"http://127.0.0.1:{host_port}"
    frame_ancestors = f"'self' {host}" if allowed else "'self'"
    settings = replace(
        real_bot.settings, frame_ancestors=frame_ancestors, feedback_path=tmp_path / "fb.jsonl"
    )
    with running(create_app(real_bot, settings)) as faqbot:
        iframe = f'<iframe id="fb" src="{faqbot}/" style="width:100%;height:900px;border:0"></iframe>'
        with running(host_page(iframe), port=host_port):
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            page.goto(host + "/", wait_until="load")
            frame = page.frame_locator("#fb")
            if allowed:
                frame.locator("#fb-question textarea").fill("How often are eye exams needed?")
                frame.locator("#fb-send").click()
                frame.locator("#fb-chat .fb-answer").wait_for(timeout=30_000)
                page.screenshot(path=str(ARTIFACTS / "browser_iframe_allowed.png"))
            else:
                time.sleep(2)
                assert frame.locator("#fb-question").count() == 0  # the browser refused to frame it
            context.close()


def test_web_component_from_another_origin(browser: Any, real_bot: Bot, tmp_path: Path) -> None:
    host_port = free_port()
    host = f"http://127.0.0.1:{host_port}"
    settings = replace(real_bot.settings, cors_origins=host, feedback_path=tmp_path / "fb.jsonl")
    with running(create_app(real_bot, settings)) as faqbot:
        body = f'<script type="module" src="{faqbot}/gradio.js"></script><gradio-app src="{faqbot}/"></gradio-app>'
        with running(host_page(body), port=host_port):
            context = browser.new_context(viewport={"width": 1280, "height": 1200})
            page = context.new_page()
            external: list[str] = []
            page.on("request", lambda r: external.append(r.url) if not r.url.startswith(LOCAL) else None)
            page.goto(host + "/", wait_until="load")
            page.locator("#fb-question textarea").wait_for(timeout=30_000)
            page.locator("#fb-question textarea").fill("How often are eye exams needed?")
            page.locator("#fb-send").click()
            page.locator("#fb-chat .fb-answer").wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "browser_web_component.png"))
            assert not external
            context.close()


PASSAGE_XSS = (
    "Storage of the tablets\n\n"
    "Store the tablets at room temperature <script>alert('p')</script> and keep them "
    "<img src=x onerror=alert(2)> away from ![](http://x.invalid/i.png) direct light, CPK $>10x$ ULN.\n"
)


def test_a_hostile_passage_stays_text(browser: Any, tmp_path: Path) -> None:
    """A corpus document with markup in it: cited in the chat and shown in the source, always as text."""
    from bot import Settings, load_bot

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    (tmp_path / "corpus" / "storage_notes.md").write_text(PASSAGE_XSS, encoding="utf-8")
    bot = load_bot(Settings(root=tmp_path, feedback_path=tmp_path / "fb.jsonl"))
    with running(create_app(bot)) as url:
        p = Page(browser, url + "/", "hostile_passage")
        try:
            reply = p.ask("How should the tablets be stored, at room temperature?")
            for details in reply.locator("details").all():
                details.locator("summary").first.click()
            assert "<img src=x onerror=alert(2)>" in reply.inner_text()
            assert "<script>alert('p')</script>" in reply.inner_text()
            chat = p.page.locator("#fb-chat")
            assert chat.locator("img").count() == 0 and chat.locator("script").count() == 0
            p.shot("01_chat")
            p.page.get_by_role("tab", name="Source").click()
            source = p.page.locator("#fb-source")
            assert "![](http://x.invalid/i.png)" in source.inner_text()
            assert source.locator("img, script").count() == 0
            time.sleep(0.3)
        finally:
            p.close()


def test_a_cds_hooks_card_link_opens_the_row_in_the_source(browser: Any, server: dict[str, Any]) -> None:
    """Issue 12: a card's link ({base}/#p-<passage id>) opens the Source tab at the row, highlighted."""
    import httpx

    body = json.loads(
        (Path(__file__).parent / "data" / "cds_hooks" / "order-select-request.json").read_text()
    )
    r = httpx.post(server["url"] + "cds-services/faqbot-order-select", json=body, timeout=30)
    link = r.json()["cards"][0]["links"][0]["url"]
    assert link.startswith(server["url"] + "#p-")
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(link, wait_until="load")
        page.wait_for_selector("#fb-source .fb-hl", timeout=30_000)
        highlighted = page.locator("#fb-source .fb-hl")
        assert highlighted.count() == 1 and highlighted.is_visible()
        assert "CPK" in highlighted.inner_text() and "Withhold until resolved" in highlighted.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser_cds_card_link_row_highlighted.png"))
        assert not errors, errors
    finally:
        context.close()


# ---- accessibility and small screens (issue 14) ----------------------------------------------------------
SIZES = {"phone": (390, 844), "tablet": (820, 1180), "desktop": (1366, 900)}
BLOCKING = ("serious", "critical")


def documented_rules() -> set[str]:
    """axe rule ids that docs/accessibility.md lists, with a reason, as known and accepted."""
    text = (ROOT / "docs" / "accessibility.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M))


def axe(page: Page, view: str) -> list[str]:
    """axe-core (WCAG 2.0/2.1/2.2 A and AA plus best practices) on the page as it is: the problems found,
    i.e. serious or critical violations, and lesser ones not listed in docs/accessibility.md."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page.page, options={"resultTypes": ["violations"]}).response["violations"]
    accepted = documented_rules()
    return [
        f"{view}: {v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:5]}"
        for v in violations
        if v["impact"] in BLOCKING or v["id"] not in accepted
    ]


def clip(box: dict[str, float] | None, frame: dict[str, float] | None) -> dict[str, float] | None:
    """The part of ``box`` visible inside ``frame`` (an answer scrolled inside the chat's own scroller)."""
    assert box is not None and frame is not None
    x, y = max(box["x"], frame["x"]), max(box["y"], frame["y"])
    right = min(box["x"] + box["width"], frame["x"] + frame["width"])
    bottom = min(box["y"] + box["height"], frame["y"] + frame["height"])
    return {"x": x, "y": y, "width": max(0.0, right - x), "height": max(0.0, bottom - y)}


def overlaps(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    assert a is not None and b is not None
    return not (
        a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
        or a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
    )


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_every_view_passes_axe_and_nothing_overlaps(browser: Any, server: dict[str, Any], size: str) -> None:
    width, height = SIZES[size]
    p = Page(browser, server["url"], f"a11y_{size}", (width, height))
    page = p.page
    found: list[str] = []
    try:
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("h1").count() == 1 and page.locator("main").count() == 1
        assert page.get_by_text("Use via API").count() == 0  # no API footer in the clinicians' page
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways page scroll
        notice = page.locator("#fb-notice")
        assert "Research use only." in notice.inner_text()
        found += axe(p, "start")
        p.shot("01_start")

        answer = p.ask("How often are eye exams needed?")
        chat = page.locator("#fb-chat").bounding_box()
        assert not overlaps(notice.bounding_box(), chat)
        shown = clip(answer.bounding_box(), chat)
        assert shown is not None and shown["height"] > 100  # the answer is in view...
        assert not overlaps(notice.bounding_box(), shown)  # ...and the notice covers none of it
        assert not overlaps(notice.bounding_box(), page.locator("#fb-question").bounding_box())
        page.wait_for_function(
            "document.getElementById('fb-live').textContent.includes('New answer: Answer from the source')"
        )
        found += axe(p, "answer")
        p.shot("02_answer")

        p.ask("What do I do for eye toxicity?")
        page.locator("#fb-choices button:visible").first.wait_for()
        found += axe(p, "clarify")
        p.shot("03_clarify")
        page.get_by_role("button", name="Grade 3", exact=True).click()
        page.wait_for_function("document.querySelectorAll('#fb-chat .fb-route-decision').length > 0")
        found += axe(p, "chat_decision")
        p.shot("04_chat_decision")

        page.get_by_role("tab", name="Dose decision").click()
        page.locator("#fb-f-reaction input").click()
        page.get_by_role("option", name="rhabdomyolysis").click()
        page.fill("#fb-f-cpk textarea, #fb-f-cpk input", "12")
        page.fill("#fb-f-creat textarea, #fb-f-creat input", "1.6")
        page.locator("#fb-f-aki").get_by_label("no").check()
        page.click("#fb-decide")
        card = page.locator("#fb-dose-card .fb-route-decision")
        card.wait_for(timeout=15_000)
        row = card.locator(".fb-row").inner_text()
        assert "CPK > 10× ULN with concurrent serum creatinine ≥ 1.5× baseline" in row and "$" not in row
        tables = page.locator("#fb-dose-tables").inner_text()
        assert "CPK > 10× ULN" in tables and "$" not in tables
        page.wait_for_function("document.getElementById('fb-live').textContent.includes('Dose decision')")
        assert not overlaps(notice.bounding_box(), card.bounding_box())
        found += axe(p, "dose_decision")
        p.shot("05_dose_decision")
        page.screenshot(path=str(ARTIFACTS / f"browser_a11y_{size}_06_dose_full.png"), full_page=True)

        page.get_by_role("tab", name="Source").click()
        page.locator("#fb-source").wait_for()
        found += axe(p, "source")
        p.shot("07_source")
        assert not found, "\n".join(found)
    finally:
        p.close()


FOCUSED_JS = "() => { const e = document.activeElement; return e ? e.outerHTML.slice(0, 120) : ''; }"
FOCUS_VISIBLE_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return false;
  const s = getComputedStyle(e);
  return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none';
}"""


def tab_to(page: Any, selector: str, back: bool = False, limit: int = 200) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches ``selector``; its focus must be visible."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if page.evaluate(f"() => !!document.activeElement && document.activeElement.matches({selector!r})"):
            assert page.evaluate(FOCUS_VISIBLE_JS), f"focus not visible on {page.evaluate(FOCUSED_JS)}"
            return
    raise AssertionError(f"{selector} not reached by keyboard; focus is on {page.evaluate(FOCUSED_JS)}")


@pytest.mark.parametrize("size", ["phone", "tablet"])
def test_every_action_by_keyboard_alone(
    browser: Any, server: dict[str, Any], real_bot: Bot, size: str
) -> None:
    p = Page(browser, server["url"], f"keyboard_{size}", SIZES[size])
    page = p.page
    auditor = real_bot.auditor  # thumbs feedback goes to the audit store
    assert auditor is not None
    try:
        # ask
        tab_to(page, "#fb-question textarea")
        page.keyboard.type("How often are eye exams needed?")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('#fb-chat .fb-answer').length > 0", timeout=30_000)
        # expand a citation from its marker
        tab_to(page, "#fb-chat a.fb-mark-link", back=True)
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement.matches('details.fb-cite[open] > summary')")
        p.shot("01_citation_open")
        # jump to the source
        tab_to(page, "#fb-chat details[open] a.fb-jump")
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement.classList.contains('fb-hl')", timeout=5_000)
        assert "every three cycles thereafter" in page.locator("#fb-source .fb-hl").inner_text()
        p.shot("02_source")
        # back to the chat; choose a clarify option
        tab_to(page, "button[role='tab']#fb-tab-chat-button", back=True)
        page.keyboard.press("Enter")
        tab_to(page, "#fb-question textarea")
        page.keyboard.type("What do I do for eye toxicity?")
        page.keyboard.press("Enter")
        page.locator("#fb-choices button:visible").first.wait_for(timeout=30_000)
        tab_to(page, "#fb-choices button")
        while page.evaluate("document.activeElement.textContent.trim()") != "Grade 3":
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('#fb-chat .fb-route-decision').length > 0")
        p.shot("03_decided")
        # feedback
        before = len(list(auditor.feedback()))
        tab_to(page, "#fb-question textarea")
        tab_to(page, "#fb-chat button[aria-label='Like']", back=True)
        page.keyboard.press("Enter")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(list(auditor.feedback())) == before:
            time.sleep(0.1)
        assert len(list(auditor.feedback())) == before + 1
        assert list(auditor.feedback())[-1]["rating"] == "up"
        # export
        tab_to(page, "#fb-export")
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        md = Path(download.value.path()).read_text(encoding="utf-8")
        assert "[^1.1]:" in md and "## 2. What do I do for eye toxicity?" in md
        # decide, in the dose form
        tab_to(page, "button[role='tab']#fb-tab-dose-button", back=True)
        page.keyboard.press("Enter")
        tab_to(page, "#fb-f-reaction input")
        page.keyboard.press("Control+a")  # replace the "—" (unset) value
        page.keyboard.type("ocular")
        page.locator("#fb-f-reaction [role='option'].active", has_text="ocular").wait_for()  # highlighted
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#fb-f-reaction input').value === 'ocular'")
        page.locator("#fb-f-reaction [role='listbox'] [role='option']").first.wait_for(state="detached")
        tab_to(page, "#fb-f-grade input[value='3']")  # Gradio names each radio apart: one Tab stop each
        page.keyboard.press("Space")
        assert page.locator("#fb-f-grade input:checked").get_attribute("value") == "3"
        assert page.locator("#fb-f-grade").get_attribute("aria-label") == "CTCAE grade"  # the group's name
        tab_to(page, "#fb-decide")
        page.keyboard.press("Enter")
        page.locator("#fb-dose-card .fb-answer, #fb-dose-card .fb-error").wait_for(timeout=15_000)
        p.shot("04_dose_card")
        card = page.locator("#fb-dose-card .fb-route-decision")
        assert card.count() == 1, page.locator("#fb-dose-card").inner_text()
        assert card.locator(".fb-action strong").inner_text().startswith("Withhold until Grade ≤ 1")
        p.shot("04_dose_decided")
    finally:
        p.close()
