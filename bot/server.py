"""ASGI app: JSON API + Gradio chat UI mounted in one FastAPI app. A thin face over ``Bot.ask``.

Minimal first version (retrieval core issue); the UI/server issue extends it.
"""

from __future__ import annotations

import argparse
import html
from dataclasses import replace
from typing import Any

from bot.core import Bot
from bot.errors import FaqbotError
from bot.settings import Settings


def create_app(bot: Bot) -> Any:
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    class AskRequest(BaseModel):
        question: str
        history: list[str] | None = None

    app = FastAPI(title="faqbot", docs_url="/docs")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        if bot.ready:
            return {"status": "ready"}
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.post("/api/ask")
    def api_ask(req: AskRequest) -> Any:
        try:
            return bot.ask(req.question, req.history).to_dict()
        except FaqbotError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    def chat(message: str, history: list[Any]) -> str:
        try:
            answer = bot.ask(message)
        except FaqbotError as exc:
            return html.escape(str(exc))
        parts = [html.escape(answer.text)]
        for c in answer.citations:
            parts.append(f"[{c.n}] {html.escape(c.source)}:{c.start}-{c.end} ({html.escape(c.context)})")
        return "\n\n".join(parts)

    ui = gr.ChatInterface(chat, title="faqbot", api_name="chat", analytics_enabled=False)
    return gr.mount_gradio_app(app, ui, path="", show_error=False)


def cli_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.cli import _settings

    s: Settings = _settings(args)
    s = replace(
        s,
        host=args.host or s.host,
        port=args.port or s.port,
        root_path=args.root_path if args.root_path is not None else s.root_path,
    )
    bot = Bot(s).load()
    uvicorn.run(create_app(bot), host=s.host, port=s.port, root_path=s.root_path)
    return 0
