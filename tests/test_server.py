"""The HTTP face: API contract, limits, errors, auth on/off, CORS, CSP, root path, gradio_client.

Fast tests use a bot that is not loaded (the server answers /healthz and checks requests before the bot
is needed); slow tests use the real model over a copy of corpus/.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.core import Bot
from bot.errors import SettingsError
from bot.server import Security, check_root_path, create_app, parse_users
from bot.settings import Settings
from tests.serving import free_port, running

ROOT = Path(__file__).resolve().parent.parent


def client_for(bot: Bot, **overrides: Any) -> Any:
    from fastapi.testclient import TestClient

    settings = replace(bot.settings, **overrides)
    return TestClient(create_app(bot, settings), raise_server_exceptions=False)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def without_scores(answer: dict[str, Any]) -> dict[str, Any]:
    out = dict(answer)
    for key in ("citations", "related"):
        out[key] = [{k: v for k, v in c.items() if k != "score"} for c in answer[key]]
    return out


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return dict(body["error"])


@pytest.fixture
def unloaded(project: Path) -> Bot:
    return Bot(Settings(root=project, feedback_path=project / "feedback.jsonl"))


@pytest.fixture
def client(unloaded: Bot) -> Iterator[Any]:
    with client_for(unloaded) as c:
        yield c


# ---- settings checks --------------------------------------------------------------------------------
def test_parse_users_and_root_path() -> None:
    assert parse_users("alice:s3cret, bob:a:b") == {"alice": "s3cret", "bob": "a:b"}
    assert parse_users("") == {}
    with pytest.raises(SettingsError, match="'carol'"):
        parse_users("alice:x,carol")
    assert (
        check_root_path("/dosing/") == "/dosing" and check_root_path("") == "" and check_root_path("/") == ""
    )
    with pytest.raises(SettingsError):
        check_root_path("dosing")


def test_security_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="not both"):
        Security.of(Settings(auth_users="a:b", auth_header="X-Forwarded-User"))
    with pytest.raises(SettingsError, match="FAQBOT_TRUSTED_PROXIES"):
        Security.of(Settings(trusted_proxies="proxy.local"))
    with pytest.raises(SettingsError, match="FAQBOT_FRAME_ANCESTORS"):
        Security.of(Settings(frame_ancestors="'self'; script-src *"))


# ---- health, readiness, errors, limits ----------------------------------------------------------------
def test_health_is_up_while_the_bot_loads(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 503 and error_of(r)["code"] == "not_ready"
    r = client.post("/api/ask", json={"question": "How often are eye exams needed?"})
    assert r.status_code == 503 and error_of(r)["code"] == "not_ready"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"question": "eye exams?"', 400, "malformed_json"),
        (b"not json at all", 400, "malformed_json"),
        (b'{"question": 42}', 422, "invalid_request"),
        (b'{"question": "x", "history": "not a list"}', 422, "invalid_request"),
        (b'{"question": "x", "extra": 1}', 422, "invalid_request"),
        (b"[]", 422, "invalid_request"),
        (b"{}", 422, "invalid_request"),
    ],
)
def test_bad_requests_get_clear_json_errors_and_the_server_keeps_serving(
    client: Any, body: bytes, status: int, code: str
) -> None:
    r = client.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    err = error_of(r)
    assert err["code"] == code and err["message"]
    assert client.get("/healthz").status_code == 200


def test_body_cap(client: Any, unloaded: Bot) -> None:
    big = json.dumps({"question": "x" * (unloaded.settings.max_body_bytes + 10)})
    r = client.post("/api/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and error_of(r)["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(100):
            yield b"x" * 1000

    r = client.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/healthz").status_code == 200


def test_body_cap_is_configurable(unloaded: Bot) -> None:
    with client_for(unloaded, max_body_bytes=2048) as c:
        r = c.post("/api/ask", json={"question": "y" * 3000})
        assert r.status_code == 413 and "2048 bytes" in error_of(r)["message"]


def test_decide_needs_no_model(client: Any) -> None:
    r = client.post("/api/decide", json={"reaction": "ocular", "grade": 4})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["route"] == "decision" and a["decisions"][0]["action"] == "Permanently discontinue."
    assert a["facts"] == {"reaction": "ocular", "grade": 4}
    r = client.post("/api/decide", json={"reaction": "eyeball", "grade": 2})
    assert r.status_code == 422 and error_of(r)["code"] == "invalid_request"  # the schema's enum
    assert "reaction" in error_of(r)["message"] and "'ocular'" in error_of(r)["message"]
    r = client.post("/api/decide", json={"reaction": "ocular", "grade": "two"})
    assert r.status_code == 422 and error_of(r)["code"] == "invalid_request"
    r = client.post("/api/decide", json={"reaction": "ocular", "colour": "red"})
    assert r.status_code == 422


def test_openapi_and_offline_docs(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/ask", "/api/decide", "/api/passages/{passage_id}", "/healthz", "/readyz"):
        assert path in spec["paths"]
    assert set(spec["components"]["schemas"]["AskBody"]["properties"]) == {"question", "history"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/ask" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # nothing fetched from a CDN
    assert "href='openapi.json'" in docs.text  # relative: works under a root path


def test_web_component_loader_is_served(client: Any) -> None:
    r = client.get("/gradio.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "./assets/" in r.text


# ---- security headers, CORS, auth ---------------------------------------------------------------------
def test_csp_frame_ancestors_on_ui_and_api(unloaded: Bot) -> None:
    with client_for(unloaded, frame_ancestors="'self' https://intranet.example") as c:
        for path in ("/", "/healthz"):
            csp = c.get(path).headers["content-security-policy"]
            assert csp.endswith("frame-ancestors 'self' https://intranet.example")
            assert "default-src 'self'" in csp
        assert c.get("/").headers["x-content-type-options"] == "nosniff"


def test_cors_closed_by_default_even_where_gradio_would_reflect(client: Any) -> None:
    evil = {"Origin": "http://evil.example", "Host": "faqbot.intranet.example"}
    for path in ("/healthz", "/config", "/gradio_api/info"):
        r = client.get(path, headers=evil)
        assert "access-control-allow-origin" not in r.headers, path
    pre = client.options(
        "/api/ask",
        headers={
            **evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in pre.headers


def test_cors_allow_list(unloaded: Bot) -> None:
    good = "https://portal.intranet.example"
    with client_for(unloaded, cors_origins=f"{good}, https://other.example") as c:
        pre = c.options(
            "/api/ask",
            headers={
                "Origin": good,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == good
        r = c.get("/config", headers={"Origin": good, "Host": "faqbot.intranet.example"})
        assert r.headers["access-control-allow-origin"] == good
        foreign = c.get(
            "/config", headers={"Origin": "http://evil.example", "Host": "faqbot.intranet.example"}
        )
        assert "access-control-allow-origin" not in foreign.headers
        pre = c.options(
            "/api/ask", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert pre.status_code == 400 and "access-control-allow-origin" not in pre.headers


def test_auth_off_by_default(client: Any) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_basic_auth_users(unloaded: Bot) -> None:
    with client_for(unloaded, auth_users="alice:s3cret") as c:
        for path in ("/", "/openapi.json", "/docs", "/config"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"].startswith("Basic")
        r = c.post("/api/ask", json={"question": "x"})
        assert r.status_code == 401 and error_of(r)["code"] == "unauthorized"
        assert c.get("/", headers=basic("alice", "wrong")).status_code == 401
        assert c.get("/", headers=basic("mallory", "s3cret")).status_code == 401
        assert c.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401
        assert c.get("/", headers=basic("alice", "s3cret")).status_code == 200
        assert c.get("/openapi.json", headers=basic("alice", "s3cret")).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open
        assert c.get("/readyz").status_code == 503


def test_identity_header_from_a_trusted_proxy(unloaded: Bot) -> None:
    # TestClient's peer is "testclient", not an address: trusted only when any peer is (trusted_proxies="")
    with client_for(unloaded, auth_header="X-Forwarded-User", trusted_proxies="") as c:
        assert c.get("/").status_code == 401
        assert "www-authenticate" not in c.get("/").headers
        assert c.get("/", headers={"X-Forwarded-User": "  "}).status_code == 401
        assert c.get("/", headers={"X-Forwarded-User": "alice"}).status_code == 200
        assert c.get("/gradio_api/user", headers={"X-Forwarded-User": "alice"}).json() == "alice"
        assert c.get("/healthz").status_code == 200
    with client_for(unloaded, auth_header="X-Forwarded-User") as c:  # default: only 127.0.0.1/::1
        assert c.get("/", headers={"X-Forwarded-User": "alice"}).status_code == 401


# ---- with the real model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(real_bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    feedback = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    settings = replace(real_bot.settings, feedback_path=feedback)
    with TestClient(create_app(real_bot, settings), raise_server_exceptions=False) as c:
        c.feedback_path = feedback  # type: ignore[attr-defined]
        c.app_bot = real_bot  # type: ignore[attr-defined]
        yield c


needs_decide = pytest.mark.skipif(
    not hasattr(Bot, "decide"), reason="the dose engine (Bot.decide) has not landed"
)


@pytest.mark.slow
def test_ready_and_ask_contract(live: Any, real_bot: Bot) -> None:
    assert live.get("/readyz").json()["status"] == "ready"
    r = live.post("/api/ask", json={"question": "How often are eye exams needed?"})
    assert r.status_code == 200
    a = r.json()
    assert {"question", "route", "text", "abstained", "citations", "related", "decisions", "missing"} <= set(
        a
    )
    assert a["route"] == "answer" and not a["abstained"]
    assert [c["n"] for c in a["citations"]] == list(range(1, len(a["citations"]) + 1))
    for c in a["citations"]:
        source = (real_bot.settings.root / c["source"]).read_text(encoding="utf-8")
        assert source[c["start"] : c["end"]] == c["text"]
    assert a == real_bot.ask("How often are eye exams needed?").to_dict()


@pytest.mark.slow
def test_ask_body_is_the_bytes_fastapi_would_write(live: Any, real_bot: Bot) -> None:
    """Issue 11: /api/ask renders the Answer dict directly (no jsonable_encoder walk): byte for byte what
    FastAPI's own serialisation of the returned dict gives, on answers of every route."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    questions = [
        "How often are eye exams needed?",
        "What is the capital of France?",
        "grade 3 rash, what dose?",
        "what do refs 1 and 2 say",
        "Ünïcode ✓ question about CPK — “quoted”?",
    ]
    routes = set()
    for q in questions:
        r = live.post("/api/ask", json={"question": q})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        expected = JSONResponse(jsonable_encoder(real_bot.ask(q).to_dict())).body
        assert r.content == expected, q
        routes.add(r.json()["route"])
    assert len(routes) >= 3, routes


@pytest.mark.slow
def test_abstains_on_an_unrelated_question(live: Any) -> None:
    a = live.post("/api/ask", json={"question": "What is the capital of France?"}).json()
    assert a["route"] == "abstain" and a["abstained"] and a["citations"] == []


@pytest.mark.slow
def test_question_length_limits(live: Any, real_bot: Bot) -> None:
    limit = real_bot.settings.max_question_chars
    r = live.post("/api/ask", json={"question": "x" * (limit + 1)})
    assert r.status_code == 422 and error_of(r)["code"] == "invalid_question"
    assert str(limit) in error_of(r)["message"]
    assert live.post("/api/ask", json={"question": "eye exams " + "x" * (limit - 10)}).status_code == 200
    r = live.post("/api/ask", json={"question": "   "})
    assert r.status_code == 422 and error_of(r)["message"] == "question is empty"
    r = live.post("/api/ask", json={"question": "ok?", "history": ["y" * (limit + 1)]})
    assert r.status_code == 422
    assert live.get("/healthz").status_code == 200


@pytest.mark.slow
def test_passages_and_notice(live: Any) -> None:
    a = live.post("/api/ask", json={"question": "How often are eye exams needed?"}).json()
    first = a["citations"][0]
    p = live.get(f"/api/passages/{first['id']}").json()
    assert (p["id"], p["text"], p["start"], p["end"]) == (
        first["id"],
        first["text"],
        first["start"],
        first["end"],
    )
    r = live.get("/api/passages/nope")
    assert r.status_code == 404 and "nope" in error_of(r)["message"]
    notice = live.get("/api/notice").json()
    assert "Research Use Only" in notice["text"]


@pytest.mark.slow
def test_feedback_and_export(live: Any) -> None:
    a = live.post("/api/ask", json={"question": "How often are eye exams needed?"}).json()
    r = live.post(
        "/api/feedback",
        json={"question": a["question"], "rating": "up", "citations": [a["citations"][0]["id"]]},
    )
    assert r.status_code == 201
    saved = list(live.app_bot.auditor.feedback())  # feedback goes to the audit store (issue 13)
    assert saved[-1]["rating"] == "up" and saved[-1]["citations"] == [a["citations"][0]["id"]]
    assert not live.feedback_path.exists()
    r = live.post("/api/feedback", json={"question": "q", "rating": "meh"})
    assert r.status_code == 422 and error_of(r)["code"] == "invalid_request"  # the schema's enum
    assert "rating" in error_of(r)["message"]
    md = live.post("/api/export", json={"answers": [a]})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "## 1. How often are eye exams needed?" in md.text
    assert f"{a['citations'][0]['source']}:{a['citations'][0]['start']}-{a['citations'][0]['end']}" in md.text
    assert live.post("/api/export", json={"answers": [{"x": 1}]}).status_code == 422


@pytest.mark.slow
def test_concurrent_asks_agree_with_sequential(live: Any, real_bot: Bot) -> None:
    questions = [
        "How often are eye exams needed?",
        "Are antibiotics used to prevent skin toxicity?",
        "How often are liver function tests done?",
        "What was the discontinuation rate in RAMP-201?",
    ] * 3
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: live.post("/api/ask", json={"question": q}).json(), questions))
    for q, a in zip(questions, got, strict=True):  # batched encoding may move scores in the last digits
        assert without_scores(a) == without_scores(real_bot.ask(q).to_dict())


@pytest.mark.slow
@needs_decide
def test_decide_contract(live: Any) -> None:
    r = live.post("/api/decide", json={"reaction": "ocular", "grade": 2})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["route"] == "decision" and a["decisions"]
    assert "Withhold" in a["decisions"][0]["action"]
    assert a["facts"] == {"reaction": "ocular", "grade": 2}
    clarify = live.post("/api/decide", json={"reaction": "ocular"}).json()
    assert clarify["route"] == "clarify" and "grade" in clarify["missing"]
    r = live.post("/api/decide", json={"reaction": "ocular", "grade": "two"})
    assert r.status_code == 422


@pytest.mark.slow
@needs_decide
def test_follow_up_with_history(live: Any) -> None:
    a = live.post("/api/ask", json={"question": "and grade 4?", "history": ["grade 3 eye toxicity"]}).json()
    assert a["route"] == "decision"
    assert any("Permanently discontinue" in d["action"] for d in a["decisions"])


@pytest.mark.slow
def test_gradio_client_calls_the_pinned_endpoints(real_bot: Bot, tmp_path: Path) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    settings = replace(real_bot.settings, feedback_path=tmp_path / "fb.jsonl")
    with running(create_app(real_bot, settings)) as url:
        client = Client(url + "/", verbose=False, analytics_enabled=False, download_files=False)
        api = client.view_api(print_info=False, return_format="dict")
        assert set(api["named_endpoints"]) == {"/ask", "/decide", "/passage"}
        assert api["unnamed_endpoints"] == {}
        a = client.predict("How often are eye exams needed?", None, api_name="/ask")
        assert a == real_bot.ask("How often are eye exams needed?").to_dict()
        p = client.predict(a["citations"][0]["id"], api_name="/passage")
        assert p["text"] == a["citations"][0]["text"]
        with pytest.raises(AppError, match="question is empty"):
            client.predict("  ", None, api_name="/ask")
        with pytest.raises(AppError, match="no passage"):
            client.predict("nope", api_name="/passage")
        if hasattr(Bot, "decide"):
            d = client.predict("ocular", 4, None, None, None, None, None, api_name="/decide")
            assert d["route"] == "decision"


# ---- `faqbot serve` as IT runs it ---------------------------------------------------------------------
@pytest.mark.slow
def test_faqbot_serve_under_a_root_path(real_bot: Bot, tmp_path: Path) -> None:
    """The real command: binds 127.0.0.1, answers /healthz at once, /readyz once loaded, under --root-path."""
    shutil.copytree(real_bot.settings.root / "corpus", tmp_path / "corpus")
    shutil.copytree(real_bot.settings.index_path, tmp_path / "index")
    port = free_port()
    env = {**os.environ, "FAQBOT_ROOT": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--port",
        str(port),
        "--root-path",
        "/dosing/",
        "--no-rebuild",
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready_after = None
        while time.monotonic() - t0 < 120:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                r = httpx.get(base + "/readyz", timeout=2)
                if r.status_code == 200:
                    ready_after = time.monotonic() - t0
                    break
                assert r.status_code == 503
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert ready_after is not None
        print(f"faqbot serve → /readyz in {ready_after:.1f} s")
        # The UI is mounted off the API's critical path: meanwhile a clear 503 with Retry-After.
        while not httpx.get(base + "/readyz", timeout=2).json()["ui"]:
            early = httpx.get(base + "/", timeout=10)
            if early.status_code != 200:
                assert early.status_code == 503 and early.headers["retry-after"].isdigit()
                assert early.json()["error"]["code"] == "ui_not_ready"
            assert time.monotonic() - t0 < 120
            time.sleep(0.1)
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200
        config = httpx.get(base + "/config", timeout=10).json()
        assert config["root"].endswith("/dosing")  # the UI calls back through the proxy prefix
        openapi = httpx.get(base + "/openapi.json", timeout=10).json()
        assert openapi.get("servers") == [{"url": "/dosing"}]
        a = httpx.post(base + "/api/ask", json={"question": "How often are eye exams needed?"}, timeout=30)
        assert a.json()["route"] == "answer"
        with pytest.raises(httpx.TransportError):  # bound to 127.0.0.1 only
            httpx.get(f"http://{_other_address()}:{port}/healthz", timeout=2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _other_address() -> str:
    """An address of this machine other than loopback (skips the check if there is none)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            addr = str(s.getsockname()[0])
        except OSError:
            addr = "127.0.0.1"
    if addr.startswith("127."):
        pytest.skip("no non-loopback address to check the bind against")
    return addr


@pytest.mark.slow
def test_faqbot_serve_exits_when_loading_fails(project: Path) -> None:
    """No index and --no-rebuild: /healthz came up, the load fails, the process ends with exit code 2."""
    port = free_port()
    env = {**os.environ, "FAQBOT_ROOT": str(project), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--no-rebuild"]
    proc = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "loading failed" in proc.stderr and "faqbot build" in proc.stderr  # the error names the fix
