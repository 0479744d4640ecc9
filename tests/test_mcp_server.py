"""The MCP face: tools and resources through the official SDK's client — in memory, over stdio in a
subprocess (`faqbot mcp`), and over streamable HTTP at /mcp inside the server app. Tool outputs are
validated against the output schemas the server publishes; bad arguments are tool errors, not crashes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import jsonschema
import pytest

from bot.core import Bot
from bot.dose import Facts
from bot.mcp_server import build_server
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"search_source", "ask", "decide_dose", "get_passage"}


def run(fn: Callable[[Any], Awaitable[Any]], server: Any) -> Any:
    from mcp import Client

    async def main() -> Any:
        async with Client(server) as client:
            return await fn(client)

    return anyio.run(main)


async def schemas_of(client: Any) -> dict[str, dict[str, Any]]:
    tools = (await client.list_tools()).tools
    return {t.name: t.output_schema for t in tools}


def check_output(result: Any, schema: dict[str, Any]) -> dict[str, Any]:
    assert not result.is_error, result.content
    jsonschema.Draft202012Validator(schema).validate(result.structured_content)
    return dict(result.structured_content)


@pytest.fixture(scope="module")
def unloaded(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    root = tmp_path_factory.mktemp("mcp")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    return Bot(Settings(root=root))  # not loaded: decide_dose and the resources need no index


def test_lists_read_only_tools_with_output_schemas(unloaded: Bot) -> None:
    async def go(client: Any) -> Any:
        return (await client.list_tools()).tools

    tools = run(go, build_server(unloaded))
    assert {t.name for t in tools} == TOOLS
    for t in tools:
        assert t.output_schema and t.output_schema.get("type") == "object", t.name
        assert t.annotations is not None and t.annotations.read_only_hint is True
        assert t.description
    by = {t.name: t for t in tools}
    assert set(by["decide_dose"].input_schema["properties"]) == {
        "reaction",
        "grade",
        "symptomatic",
        "suspected_scar",
        "cpk_uln",
        "creatinine_baseline",
        "aki",
    }
    assert {"route", "decisions", "citations", "missing", "facts"} <= set(
        by["ask"].output_schema["properties"]
    )


def test_decide_dose_equals_bot_decide(unloaded: Bot) -> None:
    async def go(client: Any) -> Any:
        schemas = await schemas_of(client)
        a = await client.call_tool("decide_dose", {"reaction": "eye", "grade": 4})
        b = await client.call_tool(
            "decide_dose", {"reaction": "rhabdomyolysis", "cpk_uln": 15, "creatinine_baseline": 1.2}
        )
        return schemas, a, b

    schemas, a, b = run(go, build_server(unloaded))
    out = check_output(a, schemas["decide_dose"])
    assert out == Bot(unloaded.settings).decide(Facts(reaction="ocular", grade=4)).to_dict()
    assert out["route"] == "decision" and out["decisions"][0]["action"] == "Permanently discontinue."
    clarify = check_output(b, schemas["decide_dose"])
    assert clarify["route"] == "clarify" and clarify["missing"] == ["aki"]


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("decide_dose", {"reaction": "liverx"}, "unknown reaction"),
        ("decide_dose", {"grade": "abc"}, "grade"),
        ("decide_dose", {"cpk_uln": "lots"}, "cpk_uln"),
        ("search_source", {"query": "eye exams", "k": 0}, "k"),
        ("search_source", {}, "query"),
        ("get_passage", {"id": "x"}, "still loading"),
        ("ask", {"question": "How often are eye exams needed?"}, "still loading"),
        ("no_such_tool", {}, "no_such_tool"),
    ],
)
def test_bad_arguments_are_tool_errors(unloaded: Bot, tool: str, args: dict[str, Any], message: str) -> None:
    async def go(client: Any) -> Any:
        r = await client.call_tool(tool, args)
        ok = await client.call_tool("decide_dose", {"reaction": "skin", "grade": 4})  # still serving
        return r, ok

    r, ok = run(go, build_server(unloaded))
    assert r.is_error
    assert message in r.content[0].text
    assert not ok.is_error


def test_resources_are_the_source_and_the_rule_table(unloaded: Bot) -> None:
    async def go(client: Any) -> Any:
        listed = (await client.list_resources()).resources
        doc = await client.read_resource("faqbot://corpus/avutometinib_dose_modification.md")
        rules = await client.read_resource("faqbot://rules")
        return listed, doc, rules

    listed, doc, rules = run(go, build_server(unloaded))
    uris = {str(r.uri): r for r in listed}
    assert set(uris) == {"faqbot://corpus/avutometinib_dose_modification.md", "faqbot://rules"}
    assert uris["faqbot://rules"].mime_type == "application/yaml"
    text = (ROOT / "corpus" / "avutometinib_dose_modification.md").read_text(encoding="utf-8")
    assert doc.contents[0].text == text
    assert rules.contents[0].text == (ROOT / "corpus" / "dose_rules.yaml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_search_ask_and_passage_with_the_real_model(real_bot: Bot) -> None:
    async def go(client: Any) -> Any:
        schemas = await schemas_of(client)
        s = await client.call_tool("search_source", {"query": "How often are eye exams needed?", "k": 3})
        a = await client.call_tool("ask", {"question": "How often are eye exams needed?"})
        first_id = s.structured_content["passages"][0]["id"]
        p = await client.call_tool("get_passage", {"id": first_id})
        q = await client.call_tool("ask", {"question": "What is the half-life of avutometinib?"})
        return schemas, s, a, p, q

    schemas, s, a, p, q = run(go, build_server(real_bot))
    search = check_output(s, schemas["search_source"])
    assert len(search["passages"]) == 3
    text = (real_bot.settings.corpus_path / "avutometinib_dose_modification.md").read_text(encoding="utf-8")
    for passage in search["passages"]:
        assert text[passage["start"] : passage["end"]] == passage["text"]
    answer = check_output(a, schemas["ask"])
    assert answer == real_bot.ask("How often are eye exams needed?").to_dict()
    assert answer["route"] == "answer" and "every three cycles" in answer["text"]
    passage = check_output(p, schemas["get_passage"])
    assert passage["id"] == search["passages"][0]["id"] and passage["score"] == 1.0
    assert check_output(q, schemas["ask"])["route"] == "abstain"


@pytest.mark.slow
def test_stdio_subprocess(tmp_path: Path) -> None:
    """`faqbot mcp` as a desktop assistant launches it: a subprocess speaking MCP on stdin/stdout."""
    from mcp import Client, StdioServerParameters

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    shutil.copytree(ROOT / "index", tmp_path / "index")  # rebuilt there if stale on this CPU
    faqbot = Path(sys.executable).with_name("faqbot")
    env = {**os.environ, "FAQBOT_ROOT": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    params = StdioServerParameters(command=str(faqbot), args=["mcp"], env=env, cwd=str(tmp_path))

    async def main() -> Any:
        async with Client(params, read_timeout_seconds=300) as client:
            schemas = await schemas_of(client)
            d = await client.call_tool("decide_dose", {"reaction": "ocular", "grade": 3})
            s = await client.call_tool("search_source", {"query": "CPK monitoring", "k": 2})
            bad = await client.call_tool("get_passage", {"id": "not-a-passage"})
            return schemas, d, s, bad

    schemas, d, s, bad = anyio.run(main)
    assert set(schemas) == TOOLS
    assert check_output(d, schemas["decide_dose"])["route"] == "decision"
    assert len(check_output(s, schemas["search_source"])["passages"]) == 2
    assert bad.is_error and "no passage with id 'not-a-passage'" in bad.content[0].text


@pytest.mark.slow
def test_streamable_http_at_mcp_inside_the_server(unloaded: Bot) -> None:
    from mcp import Client

    from bot.server import create_app
    from tests.serving import running

    app = create_app(unloaded)
    with running(app) as base:

        async def main() -> Any:
            async with Client(f"{base}/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                r = await client.call_tool("decide_dose", {"reaction": "hepatotoxicity", "grade": 4})
                return names, r

        names, r = anyio.run(main)
        assert names == TOOLS
        assert r.structured_content["route"] == "decision"
        evil = httpx.post(f"{base}/mcp", json={}, headers={"Host": "evil.example"})
        assert evil.status_code in (400, 421)  # DNS-rebinding protection: unknown Host refused

    locked = create_app(unloaded, Settings(root=unloaded.settings.root, auth_users="agent:pw"))
    with running(locked) as base:
        assert httpx.post(f"{base}/mcp", json={}).status_code == 401  # behind the server's auth


def test_the_server_app_builds_mcp_on_first_use_only(unloaded: Bot) -> None:
    """Issue 11: creating the app does not build the MCP server (mcp's import is ~0.6 s at startup); the
    first /mcp request does, and it then serves like the eager one (test above)."""
    code = (
        "import sys\n"
        "from bot.core import Bot\n"
        "from bot.server import create_app\n"
        "from pathlib import Path\n"
        "from bot.settings import Settings\n"
        f"create_app(Bot(Settings(root=Path({str(unloaded.settings.root)!r}))), ui_in_background=True)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'jwt', 'gradio')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1:] == ["[]"], proc.stderr[-2000:]
