"""The MCP face: faqbot's engine as Model Context Protocol tools and resources (official ``mcp`` SDK 2.x,
``MCPServer``). A thin adapter over ``Bot``: every tool is one library call.

Tools (read-only, typed output schemas): ``search_source`` (passages with ids and offsets), ``ask`` (the
Answer JSON), ``decide_dose`` (a dose decision from structured facts; no model needed), ``get_passage``
(a passage by id). Resources: ``faqbot://corpus/<file>`` (each source document, verbatim) and
``faqbot://rules`` (the dose rule table, ``corpus/dose_rules.yaml``).

Transports: stdio (``faqbot mcp``) and streamable HTTP at ``/mcp`` inside ``faqbot serve`` (behind the
server's auth; :func:`http_routes`). A tool error (bad arguments, unknown passage, index still loading)
is an MCP tool error result, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from bot.errors import FaqbotError
from bot.records import Answer, Caller, Citation
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core import Bot

log = logging.getLogger("faqbot")

INSTRUCTIONS = (
    "faqbot answers questions about one clinical source document (discontinuation and dose-modification "
    "criteria for avutometinib + defactinib) with verbatim, located citations, and decides dosing questions "
    "with a deterministic rule engine over the source's tables. It abstains when the source does not answer. "
    "The source is for Research Use Only and is not medical advice: quote it, do not extend it."
)
MAX_K = 20
MAX_TEXT = 10_000  # a schema-level cap; Bot.ask enforces FAQBOT_MAX_QUESTION_CHARS

# ---- input types (annotations resolved at module level) ----
QueryText = Annotated[str, Field(description="what to look for", min_length=1, max_length=MAX_TEXT)]
TopK = Annotated[int, Field(ge=1, le=MAX_K, description="how many passages")]
QuestionText = Annotated[str, Field(description="the question", min_length=1, max_length=MAX_TEXT)]
History = Annotated[
    list[Annotated[str, Field(max_length=MAX_TEXT)]] | None,
    Field(description="earlier questions of the conversation, oldest first", max_length=50),
]
Reaction = Annotated[
    str | None,
    Field(description="ocular | skin | hepatotoxicity | rhabdomyolysis (or a synonym)", max_length=100),
]
Grade = Annotated[int | None, Field(description="CTCAE grade 1-4")]
Symptomatic = Annotated[bool | None, Field(description="hepatotoxicity: symptomatic?")]
SuspectedScar = Annotated[
    bool | None, Field(description="skin: severe cutaneous adverse reactions suspected?")
]
CpkUln = Annotated[float | None, Field(description="CPK as a multiple of the upper limit of normal")]
CreatinineBaseline = Annotated[float | None, Field(description="serum creatinine as a multiple of baseline")]
Aki = Annotated[bool | None, Field(description="acute kidney injury?")]
PassageId = Annotated[str, Field(description="passage id", min_length=1, max_length=200)]


# ---- output schemas -----------------------------------------------------------------------------------
class Passage(BaseModel):
    """A verbatim span of a source document: text == document[start:end]."""

    id: str = Field(description="passage id (stable across index rebuilds of the same corpus)")
    source: str = Field(description="document path relative to the project, e.g. corpus/….md")
    start: int = Field(description="start character offset in the document")
    end: int = Field(description="end character offset in the document")
    text: str = Field(description="the passage, verbatim")
    context: str = Field(description="section or table (and row label) the passage belongs to")
    score: float = Field(description="retrieval score (1.0 for a passage fetched by id)")

    @classmethod
    def of(cls, c: Citation) -> Passage:
        d = c.to_dict()
        d.pop("n")
        return cls(**d)


class SearchResult(BaseModel):
    query: str
    passages: list[Passage]


class NumberedPassage(Passage):
    n: int = Field(description="the [n] the answer text uses for this citation")


class DecisionOut(BaseModel):
    """A dose decision: the table's action cell verbatim, with the whole row quoted and located."""

    reaction: str
    severity: str
    action: str
    quote: str
    source: str
    start: int
    end: int


class AnswerOut(BaseModel):
    """faqbot's Answer JSON contract (the same object as POST /api/ask and `faqbot ask --json`)."""

    question: str
    route: Literal["answer", "abstain", "decision", "no_rule", "clarify"]
    text: str = Field(description="markdown; quoted spans are document text")
    abstained: bool
    citations: list[NumberedPassage]
    related: list[NumberedPassage]
    decisions: list[DecisionOut]
    missing: list[str] = Field(description="facts the dose rules need that were not given")
    facts: dict[str, Any] = Field(description="the facts a dose answer used (stated values only)")

    @classmethod
    def of(cls, answer: Answer) -> AnswerOut:
        return cls.model_validate(answer.to_dict())


# ---- the server ---------------------------------------------------------------------------------------
def _user(ctx: Context | None, auth_header: str) -> str:
    """The authenticated user of an HTTP call (the server's auth already checked it); 'local' on stdio."""
    headers: Mapping[str, str] | None = getattr(ctx, "headers", None) if ctx is not None else None
    if not headers:
        return "local"
    lower = {k.lower(): v for k, v in headers.items()}
    if auth_header and lower.get(auth_header.lower()):
        return lower[auth_header.lower()][:200]
    scheme, _, token = lower.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")[0][:200]
        except (binascii.Error, UnicodeDecodeError):
            return "anonymous"
    return "anonymous"


def build_server(bot: Bot, settings: Settings | None = None) -> MCPServer:
    """The MCP server over ``bot`` (loaded or loading: tools that need the index say when it is not ready).
    ``settings`` (default: the bot's) gives the server-side ones (auth header naming the user)."""
    from bot import __version__

    s = settings or bot.settings
    server: MCPServer = MCPServer(
        name="faqbot",
        title="faqbot: avutometinib + defactinib dose-modification source",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    read_only = ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )

    def caller(ctx: Context | None) -> Caller:
        request_id = ""
        if ctx is not None:
            try:
                request_id = str(ctx.request_id)
            except (AttributeError, LookupError, ValueError):
                request_id = ""
        return Caller(face="mcp", user=_user(ctx, s.auth_header), request_id=request_id)

    def ready() -> None:
        if not bot.ready:
            raise ToolError("faqbot's index is still loading; try again in a moment")

    @server.tool(
        title="Search the source",
        description="Passages of the source document most relevant to a query (hybrid dense + BM25 "
        "retrieval), each verbatim with its id and character offsets. Does not answer: use `ask` for that.",
        annotations=read_only,
    )
    def search_source(query: QueryText, k: TopK = 5) -> SearchResult:
        ready()
        try:
            hits = bot.search(query, k=k)
        except FaqbotError as exc:
            raise ToolError(str(exc)) from None
        return SearchResult(
            query=query, passages=[Passage.of(Citation.of(0, h.chunk, h.score)) for h in hits]
        )

    @server.tool(
        title="Ask the source",
        description="Answer a question from the source with numbered verbatim citations, decide a dosing "
        "question with the rule engine, ask for a missing fact (route clarify) or abstain when the source "
        "does not answer. Returns faqbot's Answer JSON.",
        annotations=read_only,
    )
    def ask(ctx: Context, question: QuestionText, history: History = None) -> AnswerOut:
        ready()
        try:
            return AnswerOut.of(bot.ask(question, history, caller=caller(ctx)))
        except FaqbotError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        title="Decide a dose modification",
        description="Deterministic dose decision from structured facts over the source's Tables 1 and 2: "
        "route decision (the row's action verbatim), no_rule (the source has no criterion) or clarify "
        "(`missing` names the facts to give). Omitted facts are unknown, never assumed.",
        annotations=read_only,
    )
    def decide_dose(
        ctx: Context,
        reaction: Reaction = None,
        grade: Grade = None,
        symptomatic: Symptomatic = None,
        suspected_scar: SuspectedScar = None,
        cpk_uln: CpkUln = None,
        creatinine_baseline: CreatinineBaseline = None,
        aki: Aki = None,
    ) -> AnswerOut:
        from bot.dose import Facts

        values = {
            "reaction": reaction,
            "grade": grade,
            "symptomatic": symptomatic,
            "suspected_scar": suspected_scar,
            "cpk_uln": cpk_uln,
            "creatinine_baseline": creatinine_baseline,
            "aki": aki,
        }
        try:
            rules = bot.dose.rules if bot.dose is not None else None
            facts = Facts.from_mapping(values, rules.reaction_names() if rules is not None else None)
            return AnswerOut.of(bot.decide(facts, caller=caller(ctx)))
        except FaqbotError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        title="Get a passage",
        description="A passage of the source by id (from a search result or a citation), verbatim with its "
        "offsets.",
        annotations=read_only,
    )
    def get_passage(id: PassageId) -> Passage:
        ready()
        try:
            return Passage.of(bot.passage(id))
        except FaqbotError as exc:
            raise ToolError(str(exc)) from None

    from bot.corpus import load_corpus

    for doc in load_corpus(s.corpus_path, s.root):
        name = doc.source.rsplit("/", 1)[-1]
        mime = "text/markdown" if name.endswith(".md") else "text/plain"

        server.resource(
            f"faqbot://corpus/{name}",
            name=name,
            title=f"Source document {doc.source}",
            description=f"The whole source document, verbatim (sha256 {doc.sha256}).",
            mime_type=mime,
        )(_constant(doc.text))

    from bot.dose.rules import RULES_FILENAME

    rules_path = s.corpus_path / RULES_FILENAME
    if rules_path.exists():

        def read_rules() -> str:
            return rules_path.read_text(encoding="utf-8")

        server.resource(
            "faqbot://rules",
            name="dose_rules.yaml",
            title="Dose rule table",
            description="The dose engine's rules: one per row of the source's Tables 1 and 2, each quoting the "
            "row verbatim with its offsets.",
            mime_type="application/yaml",
        )(read_rules)
    return server


def _constant(text: str) -> Any:
    def read() -> str:
        return text

    return read


# ---- HTTP (inside `faqbot serve`) ---------------------------------------------------------------------
def http_routes(server: MCPServer, allowed_hosts: str = "", origins: tuple[str, ...] = ()) -> list[Any]:
    """Starlette routes serving streamable HTTP at ``/mcp`` (stateless, JSON responses). The caller runs
    ``server.session_manager.run()`` in its lifespan. Host and Origin are checked (DNS rebinding)."""
    from mcp.server.transport_security import TransportSecuritySettings

    extra = [h.strip() for h in allowed_hosts.split(",") if h.strip()]
    if "*" in extra:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    else:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", *extra],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *origins],
        )
    app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, transport_security=security
    )
    return list(app.routes)


# ---- stdio (`faqbot mcp`) -----------------------------------------------------------------------------
def serve_stdio(settings: Settings) -> int:
    """``faqbot mcp``: load the bot, then serve MCP over stdin/stdout (logs go to stderr)."""
    from bot.core import Bot

    bot = Bot(settings).load()
    build_server(bot).run("stdio")
    return 0
