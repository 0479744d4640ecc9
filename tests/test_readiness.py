"""/readyz turns 200 only when everything has loaded (dose rules included), and names the parts; the UI
is mounted off the API's critical path (503 with Retry-After until then)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot import Settings
from bot.core import Bot
from bot.server import LoadState, create_app, start_loading
from tests.conftest import ROOT


@pytest.mark.slow
def test_readyz_never_says_ready_when_the_rule_file_is_broken(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    shutil.copytree(ROOT / "index", tmp_path / "index")
    (tmp_path / "corpus" / "dose_rules.yaml").write_text("reactions: [unclosed\n", encoding="utf-8")
    bot = Bot(Settings(root=tmp_path, rebuild=False))
    state = LoadState()
    client = TestClient(create_app(bot, load_state=state), raise_server_exceptions=False)
    seen: list[int] = []
    thread = start_loading(bot, state)
    while thread.is_alive():
        seen.append(client.get("/readyz").status_code)
    seen.append(client.get("/readyz").status_code)
    assert 200 not in seen and len(seen) > 1
    r = client.get("/readyz")
    assert r.json()["error"]["code"] == "load_failed" and "dose_rules.yaml" in r.json()["error"]["message"]
    assert bot.parts()["index"] is False and not bot.ready  # nothing half-loaded is published


@pytest.mark.slow
def test_readyz_lists_the_parts_and_turns_ready_after_all_of_them(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    shutil.copytree(ROOT / "index", tmp_path / "index")
    bot = Bot(Settings(root=tmp_path, rebuild=False))
    state = LoadState()
    client = TestClient(create_app(bot, load_state=state), raise_server_exceptions=False)
    r = client.get("/readyz")
    assert (
        r.status_code == 503 and "still loading: corpus, model, index, rules" in r.json()["error"]["message"]
    )
    start_loading(bot, state).join(120)
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["parts"] == {"corpus": True, "model": True, "index": True, "rules": True, "ui": True}


def test_the_api_does_not_wait_for_the_ui(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the UI built in the background, the API answers while the UI is not mounted yet; the UI gets a
    clear 503 with Retry-After, then works once mounted."""
    from fastapi.testclient import TestClient

    import bot.ui

    release = threading.Event()
    real_build = bot.ui.build_ui

    def slow_build(*args: Any, **kw: Any) -> Any:
        assert release.wait(30)
        return real_build(*args, **kw)

    monkeypatch.setattr(bot.ui, "build_ui", slow_build)
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    b = Bot(Settings(root=tmp_path))
    state = LoadState()
    with TestClient(
        create_app(b, load_state=state, ui_in_background=True), raise_server_exceptions=False
    ) as c:
        r = c.get("/")
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["code"] == "ui_not_ready"
        assert c.get("/config").status_code == 503  # every Gradio route, not just the page
        d = c.post("/api/decide", json={"reaction": "ocular", "grade": 3})
        assert d.status_code == 200 and d.json()["route"] == "decision"
        assert c.get("/healthz").status_code == 200
        release.set()
        deadline = time.monotonic() + 60
        while not state.ui:
            assert time.monotonic() < deadline and state.ui_error is None, state.ui_error
            time.sleep(0.05)
        page = c.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert c.get("/config").status_code == 200
