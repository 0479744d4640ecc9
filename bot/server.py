"""One ASGI app: the JSON API and the Gradio UI mounted in one FastAPI app. A thin face over ``Bot``.

Routes (relative to ``--root-path``): ``/`` the UI; ``POST /api/ask``, ``POST /api/decide``,
``GET /api/passages/{id}``, ``GET /api/notice``, ``POST /api/feedback``, ``POST /api/export``;
``/healthz`` (alive) and ``/readyz`` (everything loaded); ``/openapi.json`` and an offline ``/docs``; CDS
Hooks at ``/cds-services`` (bot/cds_hooks.py) and MCP streamable HTTP at ``/mcp`` (bot/mcp_server.py).

Around it, outermost first: CORS (closed unless ``cors_origins``), security headers (CSP with
``frame_ancestors``), optional auth (basic-auth users, or a reverse proxy's identity header), a request
body cap. Errors are JSON ``{"error": {"code", "message"}}``. ``faqbot serve`` answers ``/healthz`` at once
and loads the bot in the background; ``/readyz`` turns 200 when all of it has loaded (corpus, model, index,
dose rules) and lists which parts are ready.

The UI is off the API's critical path (``faqbot serve``, ``create_app(..., ui_in_background=True)``):
Gradio's import (~2.5 s) and the Blocks are built in a thread after the server starts, and mounted when
done; until then a request for the UI gets 503 with ``Retry-After`` and ``/readyz`` says ``"ui": false``.
The JSON API never imports Gradio. (Chosen over a separate UI process: one port, one auth, one app.)
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Request
from fastapi.responses import Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from bot.audit import AuditWriteError
from bot.core import Bot, check_history, check_question, check_text
from bot.errors import FaqbotError, QuestionError, SettingsError
from bot.records import Caller
from bot.settings import Settings

log = logging.getLogger("faqbot")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/healthz", "/readyz")
SYSTEM_FONTS = ["system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace"]
# Everything the page needs comes from this server; frame-ancestors comes from the settings.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; media-src 'self' data: blob:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'"
)


# ---- settings checks --------------------------------------------------------------------------------
def parse_users(spec: str) -> dict[str, str]:
    """'alice:secret,bob:pw' → {'alice': 'secret', 'bob': 'pw'}; SettingsError names a bad entry."""
    users: dict[str, str] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        name, sep, password = entry.partition(":")
        if not sep or not name or not password:
            raise SettingsError(f"FAQBOT_AUTH_USERS entry {name or entry!r} must be 'user:password'")
        users[name] = password
    return users


def check_root_path(root_path: str) -> str:
    """'' or '/prefix' without a trailing slash; SettingsError otherwise."""
    rp = root_path.strip()
    if rp in ("", "/"):
        return ""
    if not rp.startswith("/") or any(c in rp for c in " ?#"):
        raise SettingsError(f"root path {root_path!r} must look like /dosing")
    return rp.rstrip("/")


def _addresses(spec: str) -> list[Any]:
    nets = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"FAQBOT_TRUSTED_PROXIES entry {part!r} is not an IP address or network"
            ) from None
    return nets


@dataclass(frozen=True, slots=True)
class Security:
    """The server's security settings, checked once."""

    users: dict[str, str]
    header: str
    proxies: tuple[Any, ...]
    origins: tuple[str, ...]
    frame_ancestors: str
    max_body_bytes: int

    @classmethod
    def of(cls, s: Settings) -> Security:
        users = parse_users(s.auth_users)
        header = s.auth_header.strip()
        if users and header:
            raise SettingsError("set FAQBOT_AUTH_USERS or FAQBOT_AUTH_HEADER, not both")
        if s.max_body_bytes < 1024:
            raise SettingsError(f"FAQBOT_MAX_BODY_BYTES={s.max_body_bytes} is below 1024")
        origins = tuple(o.strip().rstrip("/") for o in s.cors_origins.split(",") if o.strip())
        fa = " ".join(s.frame_ancestors.split()) or "'none'"
        if any(c in fa for c in ";,\r\n"):
            raise SettingsError(f"FAQBOT_FRAME_ANCESTORS={s.frame_ancestors!r} may not contain ';' or ','")
        return cls(users, header, tuple(_addresses(s.trusted_proxies)), origins, fa, s.max_body_bytes)

    def identify(self, headers: Any, client: tuple[str, int] | None) -> str | None:
        """The user a request comes from, or None (auth on and not satisfied). '' when auth is off."""
        if self.users:
            raw = headers.get("authorization", "")
            scheme, _, token = raw.partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                name, _, password = (
                    base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return None
            expected = self.users.get(name)
            ok = expected is not None and secrets.compare_digest(password.encode(), expected.encode())
            return name if ok else None
        if self.header:
            if not self._from_proxy(client):
                return None
            value = str(headers.get(self.header.lower(), "")).strip()
            return value or None
        return ""

    def _from_proxy(self, client: tuple[str, int] | None) -> bool:
        if not self.proxies:
            return True
        if client is None:
            return False
        try:
            ip = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    @property
    def auth_on(self) -> bool:
        return bool(self.users or self.header)


# ---- ASGI middlewares -------------------------------------------------------------------------------
def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def send_error(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = error_body(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] or "/" if root and path.startswith(root) else path


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 (by Content-Length, or while reading)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body is larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit():
                    await send_error(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if int(value) > self.max_bytes:
                    await send_error(send, 413, "body_too_large", too_big)
                    return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await send_error(send, 413, "body_too_large", too_big)
                return
            chunks.append(body)
            if not message.get("more_body"):
                break
        data = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Auth:
    """Every route but /healthz and /readyz needs the configured identity (see :class:`Security`).

    ``delegated``: path patterns whose face authenticates itself (CDS Hooks with its JWT verification)."""

    def __init__(self, app: ASGIApp, security: Security, delegated: tuple[re.Pattern[str], ...] = ()) -> None:
        self.app = app
        self.security = security
        self.delegated = delegated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or not self.security.auth_on
            or route_path(scope) in OPEN_PATHS
            or any(d.fullmatch(route_path(scope)) for d in self.delegated)
        ):
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        user = self.security.identify(Headers(scope=scope), scope.get("client"))
        if user is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        extra = (
            [(b"www-authenticate", b'Basic realm="faqbot", charset="UTF-8"')] if self.security.users else []
        )
        await send_error(send, 401, "unauthorized", "authentication required", extra)


UPLOAD_ROUTES = ("/gradio_api/upload", "/gradio_api/process_recording", "/upload")


class NoUploads:
    """Refuses Gradio's file-upload routes (403): no component of the UI takes a file, so nobody may
    store one on the server (Gradio's own limit is also set to 0 bytes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope).rstrip("/") in UPLOAD_ROUTES:
            await send_error(send, 403, "uploads_disabled", "this server accepts no file uploads")
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """CSP (with the configured frame-ancestors), nosniff and a same-origin referrer policy."""

    def __init__(self, app: ASGIApp, frame_ancestors: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", f"{CSP}; frame-ancestors {frame_ancestors}".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestId:
    """Gives every HTTP request a fresh id (``scope["faqbot.request_id"]``), returned as ``X-Request-ID``
    and written in its audit record. Client-sent ids are not trusted (they could collide)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope["faqbot.request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_caller(request: Request, security: Security, face: str = "api") -> Caller:
    """The audit Caller of a request: authenticated or proxy-header user (else anonymous) and its id."""
    client = None if request.client is None else (request.client.host, request.client.port)
    user = security.identify(request.headers, client) or "anonymous"
    rid = str(request.scope.get("faqbot.request_id") or uuid.uuid4().hex)
    return Caller(face, user, rid)


# ---- request bodies ----
# Text fields refuse control characters (other than tab, newline, carriage return) and unpaired surrogates
# with 422 (bot.core.check_text); the pattern says the same in the schema (surrogates cannot be written in
# a JSON Schema pattern: they are named in the description).
CONTROL_CLASS = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
TEXT_PATTERN = f"^[^{CONTROL_CLASS}]*$"
NONBLANK_PATTERN = f"^[^{CONTROL_CLASS}]*[^\\s{CONTROL_CLASS}][^{CONTROL_CLASS}]*$"
TEXT_NOTE = "No control characters but tab, newline and carriage return; no unpaired surrogates."
REACTIONS = ("ocular", "skin", "hepatotoxicity", "rhabdomyolysis")  # the rule file's ids (tested)
RATINGS = ("up", "down")
MAX_HISTORY_ITEMS = 100


def _text(value: str) -> str:
    try:
        return check_text(value, "text")
    except QuestionError as exc:
        raise ValueError(str(exc).removeprefix("text ")) from None


Text = Annotated[StrictStr, AfterValidator(_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})]


class AskBody(BaseModel):
    """A question, with earlier questions of the conversation for follow-ups."""

    model_config = ConfigDict(extra="forbid")
    question: Annotated[
        StrictStr,
        AfterValidator(_text),
        Field(
            description="1 to FAQBOT_MAX_QUESTION_CHARS (2000) characters, not only white space. "
            + TEXT_NOTE,
            json_schema_extra={"pattern": NONBLANK_PATTERN, "maxLength": 2000},
        ),
    ]
    history: list[Text] | None = Field(
        default=None,
        max_length=MAX_HISTORY_ITEMS,
        description="earlier questions, oldest first, each at most FAQBOT_MAX_QUESTION_CHARS characters "
        "(only the last FAQBOT_MAX_HISTORY_TURNS are read). " + TEXT_NOTE,
    )


class DecideBody(BaseModel):
    """Structured facts for the dose engine; omitted facts are unknown. Values are strict JSON types:
    booleans are true/false (not 0/1), the grade a whole number, ratios numbers."""

    model_config = ConfigDict(extra="forbid")
    reaction: Literal["ocular", "skin", "hepatotoxicity", "rhabdomyolysis"] | None = Field(
        default=None, description="the adverse reaction, as the source's tables name it"
    )
    grade: StrictInt | None = Field(
        default=None, description="CTCAE grade 1–4 (another whole number gets a clarify answer)"
    )
    symptomatic: StrictBool | None = None
    suspected_scar: StrictBool | None = None
    cpk_uln: float | None = Field(default=None, description="CPK as a multiple of the upper limit of normal")
    creatinine_baseline: float | None = Field(default=None, description="serum creatinine × baseline")
    aki: StrictBool | None = Field(default=None, description="acute kidney injury")

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("cpk_uln", "creatinine_baseline"):
                v = data.get(name)
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                    raise ValueError(f"{name} must be a number, got {type(v).__name__}")
        return data


class FeedbackBody(BaseModel):
    """A thumbs up/down on an answer."""

    model_config = ConfigDict(extra="forbid")
    question: Annotated[Text, Field(min_length=1, max_length=10_000)]
    rating: Literal["up", "down"]
    route: Annotated[Text, Field(max_length=100)] = ""
    history: list[Annotated[Text, Field(max_length=10_000)]] = Field(default_factory=list, max_length=100)
    citations: list[Annotated[Text, Field(max_length=1_000)]] = Field(default_factory=list, max_length=100)
    comment: Annotated[Text, Field(max_length=2000)] = ""

    request_id: Annotated[Text, Field(max_length=64)] = Field(
        default="", description="the X-Request-ID of the answer rated (links the audit record)"
    )


class ExportDecision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: Text
    quote: Text
    source: Text
    start: StrictInt
    end: StrictInt
    reaction: Text = ""
    severity: Text = ""


class ExportCitation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    n: StrictInt
    context: Text
    source: Text
    start: StrictInt
    end: StrictInt
    text: Text


class ExportAnswer(BaseModel):
    """The parts of an Answer JSON object the export shows; other keys are ignored."""

    model_config = ConfigDict(extra="ignore")
    question: Text
    text: Text
    route: Text | None = None
    decisions: list[ExportDecision] = Field(default_factory=list, max_length=50)
    facts: dict[str, Any] = Field(
        default_factory=dict,
        description="shown as given; an unpaired surrogate in it is written as U+FFFD in the Markdown",
    )
    missing: list[Text] = Field(default_factory=list, max_length=50)
    citations: list[ExportCitation] = Field(default_factory=list, max_length=50)


class ExportBody(BaseModel):
    """A conversation as Answer JSON objects, in order."""

    model_config = ConfigDict(extra="forbid")
    answers: list[ExportAnswer] = Field(max_length=200)


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: malformed_json, invalid_request, invalid_question, …")
    message: str = Field(description="what was wrong, naming the bad value")


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed request: body not JSON or not UTF-8 (malformed_json), bad Content-Length",
        401: "Authentication required (when auth is on)",
        404: "Not found",
        413: "Request body larger than FAQBOT_MAX_BODY_BYTES (body_too_large)",
        422: "Request well-formed but invalid (invalid_request, invalid_question, invalid_facts, …)",
        503: "The index is still loading (not_ready) or loading failed (load_failed)",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in (*codes, 401)}


class MarkdownResponse(Response):
    media_type = "text/markdown"


# ---- the app ----------------------------------------------------------------------------------------
@dataclass
class LoadState:
    """Background loading of the bot: ``done`` once all of it loaded, ``error`` if it failed; ``ui`` once
    the Gradio UI is mounted, ``ui_error`` if building it failed."""

    error: str | None = None
    thread: threading.Thread | None = None
    done: bool = False
    ui: bool = False
    ui_error: str | None = None


def settle_heap(collect: bool = True) -> None:
    """Issue 9: move what loading built (index records, model session, Gradio's and FastAPI's objects: some
    300k) out of the garbage collector's sight (``gc.freeze``). A full collection then scans only what
    requests allocate: under load it paused every thread for 150–460 ms, as often as every few seconds.
    ``collect``: free loading's garbage first (one full pause: only before serving)."""
    import gc

    if collect:
        gc.collect()
    gc.freeze()


def start_loading(bot: Bot, state: LoadState, on_error: Callable[[], None] | None = None) -> threading.Thread:
    """Load ``bot`` in a daemon thread; /readyz turns 200 when done."""

    def run() -> None:
        try:
            bot.load()
            settle_heap()  # before /readyz turns 200: its one full collection pauses nobody
            state.done = True
            log.info("faqbot: ready")
        except Exception as exc:  # reported on /readyz and by `faqbot serve`
            state.error = f"{type(exc).__name__}: {exc}"
            log.error("faqbot: loading failed: %s", state.error)
            if on_error is not None:
                on_error()

    thread = threading.Thread(target=run, name="faqbot-load", daemon=True)
    state.thread = thread
    thread.start()
    return thread


def create_app(
    bot: Bot,
    settings: Settings | None = None,
    view: Any = None,
    load_state: LoadState | None = None,
    ui_in_background: bool = False,
) -> Any:
    """The FastAPI app with the API and the mounted Gradio UI. ``bot`` may still be loading.

    ``settings`` (default: the bot's) gives the server's own settings: auth, CORS, limits, root path.
    ``view`` (default: read from the bot's corpus) is what the UI shows of the source.
    ``ui_in_background``: build and mount the UI after startup (``faqbot serve``), not before returning.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import asyncio
    import contextlib

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    from bot import __version__, render
    from bot.feedback import Feedback, FeedbackLog

    s = settings or bot.settings
    security = Security.of(s)
    state = load_state or LoadState()
    if view is None:
        view = render.SourceView.from_corpus(bot.settings.corpus_path, bot.settings.root)
    auditor = bot.open_audit()  # AuditStoreError (URL without password) when the store cannot be opened
    feedback = FeedbackLog(s.resolve(s.feedback_path), store=auditor)

    def err(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    def loaded() -> bool:
        # `faqbot serve` loads in the background (state.done); a caller may pass an already loaded bot
        return bot.ready and (state.done or state.thread is None) and not state.error

    def require_ready() -> JSONResponse | None:
        if loaded():
            return None
        if state.error:
            return err(503, "load_failed", state.error)
        return err(503, "not_ready", "the index is still loading; try again in a moment")

    # --- issue 12: the MCP face (streamable HTTP at /mcp); its session manager runs in the app's lifespan.
    # Issue 11: built by the first /mcp request (LazyMcp), not at startup: mcp's import is ~0.6 s and ~20 MB.
    mcp_face = LazyMcp(bot, s, security.origins)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        mcp_task = asyncio.create_task(mcp_face.run())

        async def stop_mcp() -> None:
            mcp_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await mcp_task

        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(stop_mcp)
            task = None
            if ui_in_background and not state.ui:  # issue 11: the UI mounted after startup

                async def mount_later() -> None:
                    # After the bot has loaded: the UI's imports would otherwise compete with it for the
                    # GIL and the cores, and delay /readyz.
                    while state.thread is not None and state.thread.is_alive():
                        await asyncio.sleep(0.05)
                    try:
                        mounted = await asyncio.to_thread(mount_ui)
                        await stack.enter_async_context(mounted.router.lifespan_context(mounted))
                        mounted.get_blocks().run_startup_events()
                        await mounted.get_blocks().run_extra_startup_events()
                        state.ui = True
                        settle_heap(collect=False)  # requests are being served: no full pause now
                    except Exception as exc:  # the API keeps serving; the UI answers 503 naming it
                        state.ui_error = f"{type(exc).__name__}: {exc}"
                        log.exception("faqbot: the UI could not be built")

                task = asyncio.create_task(mount_later())
            try:
                yield
            finally:
                if task is not None and not task.done():
                    task.cancel()
                if auditor is not None:  # issue 13: an orderly stop first writes every queued audit record
                    from bot.audit import DRAIN_S

                    await asyncio.to_thread(auditor.flush, DRAIN_S)

    app = FastAPI(
        lifespan=lifespan,
        title="faqbot",
        version=__version__,
        description="Document-grounded answers with verbatim citations, and dose decisions from the "
        "source's tables. Research use only: the source is not medical advice.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            ctx = bad_json.get("ctx") or {}
            return err(
                400, "malformed_json", f"request body is not valid JSON: {ctx.get('error', 'parse error')}"
            )
        parts = []
        for e in errors[:5]:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        return err(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8 or nests too deeply for the JSON parser
            cause = exc.__cause__
            why = "not valid UTF-8" if isinstance(cause, UnicodeDecodeError) else "not valid JSON"
            if isinstance(cause, RecursionError):
                why = "nested too deeply"
            return err(400, "malformed_json", f"request body is {why}")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = err(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("faqbot: internal error on %s", request.url.path)
        return err(500, "internal_error", "internal error; see the server log")

    @app.get("/healthz", tags=["service"], summary="Alive", responses=_errors())
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def unrecorded(exc: AuditWriteError) -> JSONResponse:
        return err(503, "audit_unavailable", str(exc))

    @app.exception_handler(AuditWriteError)
    async def audit_unavailable(request: Request, exc: AuditWriteError) -> JSONResponse:
        # any face mounted here (CDS Hooks too) answers 503 rather than answer unrecorded
        return unrecorded(exc)

    @app.get(
        "/readyz",
        tags=["service"],
        summary="Ready: corpus, model, index and dose rules all loaded (503 while loading); lists the parts",
        responses=_errors(503),
    )
    def readyz() -> Any:
        parts = {**bot.parts(), "ui": state.ui}
        if not loaded():  # the error shape of every 503, the parts named in the message
            done = ", ".join(k for k, v in parts.items() if v) or "none"
            waiting = ", ".join(k for k, v in parts.items() if not v)
            if state.error:
                return err(503, "load_failed", f"{state.error} (loaded: {done})")
            return err(503, "not_ready", f"still loading: {waiting} (loaded: {done}); try again in a moment")
        body: dict[str, Any] = {
            "status": "ready",
            "chunks": len(bot.index.chunks),
            "ui": state.ui,
            "parts": parts,
        }
        if auditor is not None:
            body["audit"] = auditor.check()
            if auditor.required and not body["audit"]["ok"]:
                return JSONResponse({**body, "status": "audit_unavailable"}, status_code=503)
        return body

    @app.post(
        "/api/ask",
        tags=["api"],
        summary="Answer a question (the Answer JSON)",
        responses=_errors(400, 413, 422, 503),
    )
    def api_ask(body: AskBody, request: Request) -> Any:
        limit = bot.settings.max_question_chars
        try:  # before readiness: a bad question is 422 whether or not the index is loaded
            if len(body.question) > limit:  # the schema's maxLength counts before stripping
                raise QuestionError(f"question is {len(body.question)} characters; the limit is {limit}")
            check_question(body.question, limit)
            check_history(body.history, bot.settings.max_history_turns, limit)
        except QuestionError as exc:
            return err(422, "invalid_question", str(exc))
        not_ready = require_ready()
        if not_ready:
            return not_ready
        try:
            answer = bot.ask(body.question, body.history, caller=request_caller(request, security))
            # Issue 11: the Answer dict holds only JSON types (str, int, float, bool, None, lists, dicts), so
            # it is rendered as it is: the same bytes FastAPI writes after its jsonable_encoder walk
            # (tested), without that walk on the event loop for every answer.
            return JSONResponse(answer.to_dict())
        except AuditWriteError as exc:
            return unrecorded(exc)
        except FaqbotError as exc:
            return err(422, "invalid_question", str(exc))

    @app.post(
        "/api/decide",
        tags=["api"],
        summary="Dose decision from structured facts (the Answer JSON)",
        responses=_errors(400, 413, 422, 503),
    )
    def api_decide(body: DecideBody, request: Request) -> Any:
        try:  # as bot.ui.decide_dict does, without importing the UI (Gradio) on the API's path
            from bot.dose import Facts

            rules = getattr(bot.dose, "rules", None)
            facts = Facts.from_mapping(
                body.model_dump(), rules.reaction_names() if rules is not None else None
            )
            return bot.decide(facts, caller=request_caller(request, security)).to_dict()
        except AuditWriteError as exc:
            return unrecorded(exc)
        except FaqbotError as exc:
            return err(422, "invalid_facts", str(exc))

    @app.get(
        "/api/passages/{passage_id}",
        tags=["api"],
        summary="A source passage by id, verbatim",
        responses=_errors(404, 503),
    )
    def api_passage(passage_id: str) -> Any:
        not_ready = require_ready()
        if not_ready:
            return not_ready
        try:
            return bot.passage(passage_id).to_dict()
        except FaqbotError as exc:
            return err(404, "not_found", str(exc))

    @app.get(
        "/api/notice",
        tags=["api"],
        summary="The source's research-use notice, verbatim",
        responses=_errors(404),
    )
    def api_notice() -> Any:
        return view.notice or err(404, "not_found", "the source has no research-use notice")

    @app.post(
        "/api/feedback",
        tags=["api"],
        summary="Save a thumbs up/down on an answer (to the audit store, linked to its request_id)",
        status_code=201,
        responses=_errors(400, 413, 422, 503),
    )
    def api_feedback(body: FeedbackBody, request: Request) -> Any:
        client = None if request.client is None else (request.client.host, request.client.port)
        user = security.identify(request.headers, client)
        try:
            entry = Feedback(
                body.question,
                body.rating,
                body.route,
                tuple(body.history),
                tuple(body.citations),
                body.comment,
                user or None,
                body.request_id,
                "api",
            )
        except FaqbotError as exc:
            return err(422, "invalid_feedback", str(exc))
        try:
            feedback.append(entry)
        except AuditWriteError as exc:
            return unrecorded(exc)
        return {"status": "saved"}

    @app.post(
        "/api/export",
        tags=["api"],
        summary="A conversation as Markdown with its citations",
        response_class=MarkdownResponse,
        responses={
            200: {
                "description": "The conversation as Markdown",
                "content": {"text/markdown": {"schema": {"type": "string"}}},
            },
            **_errors(400, 413, 422),
        },
    )
    def api_export(body: ExportBody) -> Any:
        answers = [a.model_dump() for a in body.answers]
        md = render.export_markdown(answers, view.notice)
        # free-form facts may carry unpaired surrogates (JSON allows them): written as U+FFFD
        return MarkdownResponse(re.sub("[\ud800-\udfff]", "\ufffd", md))

    def openapi() -> dict[str, Any]:
        """FastAPI's spec with the limits from the settings, errors as JSON on every route (FastAPI gives
        them the route's media type), and a real passage id as the example once the index is loaded."""
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = FastAPI.openapi(app)
        app.openapi_schema = None  # FastAPI.openapi caches; this override decides when to
        ask = spec["components"]["schemas"]["AskBody"]["properties"]
        ask["question"]["maxLength"] = bot.settings.max_question_chars
        ask["history"]["anyOf"][0]["items"]["maxLength"] = bot.settings.max_question_chars
        error_ref = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
        for ops in spec["paths"].values():
            for op in ops.values():
                for status, response in op.get("responses", {}).items():
                    if str(status).startswith(("4", "5")):
                        response["content"] = {"application/json": error_ref}
        if bot.ready and bot.index.chunks:
            for param in spec["paths"]["/api/passages/{passage_id}"]["get"].get("parameters", []):
                if param.get("name") == "passage_id":
                    param["example"] = bot.index.chunks[0].id
            app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi()))

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js() -> Response:
        import gradio as gr

        loader = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"
        return Response(loader.read_text(encoding="utf-8"), media_type="text/javascript")

    # --- issue 12: CDS Hooks (its own JWT verification when configured) and MCP routes
    from bot.cds_auth import JwtVerifier
    from bot.cds_hooks import CdsHooks, create_router

    verifier = JwtVerifier.from_settings(s)
    try:
        cds: CdsHooks | None = CdsHooks(bot, feedback, settings=s)
    except FaqbotError as exc:
        log.warning("faqbot: CDS Hooks not served: %s", exc)
        cds = None
    if cds is not None:

        def cds_user(request: Request) -> str | None:
            client = None if request.client is None else (request.client.host, request.client.port)
            return security.identify(request.headers, client) or None

        app.include_router(create_router(cds, verifier, cds_user))
    app.router.routes.append(Route("/mcp", mcp_face, include_in_schema=False))

    # faqbot's own 404/405 for unknown paths and methods under the API prefix and the service routes
    # (otherwise the UI mounted at / answers them in Gradio's shape).
    def flat(routes: list[Any]) -> list[Any]:
        out = []
        for r in routes:
            inner = getattr(r, "original_router", None)  # FastAPI >= 0.16x keeps an included router whole
            out.extend(flat(inner.routes) if inner is not None else [r])  # (included without a prefix here)
        return out

    api_routes = flat(list(app.routes))

    def not_routed(request: Request) -> JSONResponse:
        path = route_path(request.scope)
        allowed = sorted(
            {
                m
                for r in api_routes
                if isinstance(r, Route) and r.methods and r.path_regex.match(path)
                for m in r.methods
            }
        )
        if allowed:
            response = err(405, "method_not_allowed", f"{request.method} is not allowed here")
            response.headers["allow"] = ", ".join(allowed)
            return response
        return err(404, "not_found", f"no API route {path!r}")

    class NotRouted:
        """An ASGI endpoint, so that its route matches every method (a function endpoint gets GET only)."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await not_routed(Request(scope, receive))(scope, receive, send)

    service_paths = ("/api", "/api/{rest:path}", "/healthz", "/readyz", "/openapi.json", "/docs")
    cds_service_paths = ("/cds-services", "/cds-services/{rest:path}") if cds is not None else ()
    for pattern in (*service_paths, *cds_service_paths):
        app.router.routes.append(Route(pattern, NotRouted(), include_in_schema=False))

    def auth_dependency(request: Request) -> str | None:
        client = None if request.client is None else (request.client.host, request.client.port)
        return security.identify(request.headers, client) or None

    # Inner to outer: body cap, auth, security headers, CORS (Gradio defers to a parent CORSMiddleware).
    app.add_middleware(NoUploads)
    app.add_middleware(BodyLimit, max_bytes=security.max_body_bytes)
    cds_paths = (re.compile(r"/cds-services(?:/[A-Za-z0-9._~-]+(?:/feedback)?)?"),)
    app.add_middleware(Auth, security=security, delegated=cds_paths if verifier is not None else ())
    app.add_middleware(SecurityHeaders, frame_ancestors=security.frame_ancestors)
    app.add_middleware(RequestId)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(security.origins),
        allow_methods=["GET", "POST"],
        expose_headers=["X-Request-ID"],
        allow_headers=["*"],  # only allow-listed origins get this far; Gradio sends its own headers
        allow_credentials="*" not in security.origins,
        max_age=600,
    )

    pending = UiPending(state)

    def mount_ui() -> Any:
        """Import Gradio, build the Blocks and mount them at ``/``; the Gradio app. In the background
        mode the mount is handed to the placeholder that has held ``/`` since startup."""
        import gradio as gr

        from bot.ui import CSS, HEAD, build_ui

        demo = build_ui(
            bot, view, feedback, max_question_chars=bot.settings.max_question_chars, concurrency=s.concurrency
        )
        gr.mount_gradio_app(
            app,
            demo,
            path="/",
            root_path=s.root_path or None,
            auth_dependency=auth_dependency if security.auth_on else None,
            show_error=False,
            enable_monitoring=False,
            footer_links=[],  # no "Use via API" footer for clinicians; the API is documented at /docs
            run_history=False,
            pwa=False,
            mcp_server=False,
            ssr_mode=False,
            max_file_size=0,  # no component takes uploads (NoUploads refuses the routes too)
            allowed_paths=[],  # Gradio serves only its own cache (the export downloads), nothing else
            theme=gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO),  # no web fonts to fetch
            css=CSS,
            head=HEAD,
        )
        mounted: Any = getattr(app.router.routes[-1], "app", None)
        if ui_in_background:
            app.router.routes.pop()  # the placeholder's Mount("/") keeps the place; it delegates now
            pending.target = mounted
        return mounted

    if ui_in_background:
        app.mount("/", pending)
    else:
        mount_ui()
        state.ui = True
    return app


class LazyMcp:
    """``/mcp``, built on first use (issue 11): the first request makes the MCP server (importing ``mcp``)
    in a thread and starts its session manager in a task the app's lifespan owns (:meth:`run`); every
    request then goes to mcp's own streamable-HTTP endpoint. A server that never serves MCP never imports
    it. If building fails, /mcp answers 503 naming the error and the rest of the app keeps serving."""

    BUILD_TIMEOUT_S = 60

    def __init__(self, bot: Bot, settings: Settings, origins: tuple[str, ...]) -> None:
        self.bot, self.settings, self.origins = bot, settings, origins
        self.endpoint: ASGIApp | None = None
        self.error: str | None = None
        self._wanted: Any = None  # asyncio.Event, made in the running loop by run()
        self._ready: Any = None

    def _build(self) -> tuple[Any, ASGIApp]:
        from starlette.routing import Router

        from bot.mcp_server import build_server, http_routes

        server = build_server(self.bot, self.settings)
        routes = http_routes(server, self.settings.mcp_allowed_hosts, self.origins)
        return server, Router(routes=routes)

    async def run(self) -> None:
        """The lifespan's task: wait for the first request, build, run the session manager until cancelled."""
        import asyncio

        self._wanted, self._ready = asyncio.Event(), asyncio.Event()
        await self._wanted.wait()
        try:
            server, endpoint = await asyncio.to_thread(self._build)
            async with server.session_manager.run():
                self.endpoint = endpoint
                self._ready.set()
                await asyncio.Event().wait()  # serve until the app shuts down (cancelled)
        except Exception as exc:  # /mcp answers 503 naming it; everything else keeps serving
            if self.endpoint is None:
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("faqbot: the MCP face could not be started")
            raise
        finally:
            self._ready.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio

        from fastapi.responses import JSONResponse

        if self.endpoint is None and self._wanted is not None and self.error is None:
            self._wanted.set()
            try:
                await asyncio.wait_for(self._ready.wait(), self.BUILD_TIMEOUT_S)
            except TimeoutError:
                pass
        if self.endpoint is None:
            why = self.error or "the MCP face is starting"
            response = JSONResponse(
                {"error": {"code": "mcp_unavailable", "message": why}},
                status_code=503,
                headers={"Retry-After": "2"},
            )
            await response(scope, receive, send)
            return
        await self.endpoint(scope, receive, send)


class UiPending:
    """Holds ``/`` until the UI is mounted: 503 with Retry-After (JSON error) for HTTP, close 1013 (try
    again later) for websockets; then passes everything to the mounted Gradio app."""

    RETRY_AFTER_S = 2

    def __init__(self, state: LoadState) -> None:
        self.state = state
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.target is not None:
            await self.target(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
            return
        if self.state.ui_error:
            message = f"the UI could not be built ({self.state.ui_error}); the JSON API under /api works"
            await send_error(send, 503, "ui_failed", message)
            return
        await send_error(
            send,
            503,
            "ui_not_ready",
            "the UI is still starting; try again in a moment (the JSON API under /api is available)",
            [(b"retry-after", str(self.RETRY_AFTER_S).encode())],
        )


def docs_html(spec: dict[str, Any]) -> str:
    """The OpenAPI spec as one self-contained page (no CDN): endpoints, bodies, schemas."""
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>faqbot API</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "code,pre{background:#f1f5f9;padding:2px 4px;border-radius:4px}pre{padding:8px;overflow:auto}"
        ".m{font-weight:700;font-family:monospace}</style></head><body>",
        f"<h1>{e(spec['info']['title'])} API {e(spec['info'].get('version', ''))}</h1>",
        f"<p>{e(spec['info'].get('description', ''))}</p>",
        "<p>Machine-readable: <a href='openapi.json'>openapi.json</a>. Errors are JSON "
        '<code>{"error": {"code": …, "message": …}}</code>.</p>',
    ]
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            out.append(f"<h2><span class='m'>{e(method.upper())}</span> <code>{e(path)}</code></h2>")
            out.append(f"<p>{e(op.get('summary', ''))}</p>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                out.append(f"<p>Body:</p><pre>{e(json.dumps(body, indent=2))}</pre>")
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out.append("<h2>Schemas</h2>")
        for name, schema in schemas.items():
            out.append(f"<h3>{e(name)}</h3><pre>{e(json.dumps(schema, indent=2))}</pre>")
    out.append("</body></html>")
    return "".join(out)


def cli_serve(args: argparse.Namespace) -> int:
    """``faqbot serve``: bind (127.0.0.1 unless told), answer /healthz at once, load the bot behind it."""
    import uvicorn

    from bot.cli import _settings

    s: Settings = _settings(args)
    s = replace(
        s,
        host=args.host or s.host,
        port=args.port if args.port is not None else s.port,
        root_path=check_root_path(args.root_path if args.root_path is not None else s.root_path),
    )
    bot = Bot(s)
    bot.open_audit()  # fails now, naming the database (without its password), if it is unreachable
    state = LoadState()
    app = create_app(bot, load_state=state, ui_in_background=True)
    config = uvicorn.Config(
        app,
        host=s.host,
        port=s.port,
        root_path=s.root_path,
        proxy_headers=False,  # the client address stays the proxy's: see FAQBOT_TRUSTED_PROXIES
        log_level="info" if getattr(args, "verbose", False) else "warning",
        access_log=bool(getattr(args, "verbose", False)),  # issue 11: no per-request log work unless asked
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    start_loading(bot, state, on_error=stop)
    print(f"faqbot: serving http://{s.host}:{s.port}{s.root_path}/ (loading the index)", flush=True)
    server.run()
    if bot.auditor is not None:  # the lifespan drained the queue (on SIGTERM uvicorn re-raises it after)
        bot.auditor.close()
    if state.error:
        raise FaqbotError(f"loading failed: {state.error}")
    return 0
