"""Hostile input (issue 9): arbitrary Unicode through the dose parser, ``Bot.ask`` and the HTTP boundary
(lone surrogates, NUL and other control characters included), and the work a question can cause, counted
(delete keys, edit-distance cells, allocations), not timed."""

from __future__ import annotations

import json
import random
import string
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.chunking import chunk_documents
from bot.core import Bot
from bot.corpus import load_corpus
from bot.dose import parse
from bot.errors import QuestionError
from bot.retrieval import MAX_TYPO_WORDS, Vocabulary, tokenize
from bot.settings import Settings
from bot.textdist import METER
from tests.conftest import ROOT

ODD = [
    "\ud800",
    "\udfff",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\u200b",
    "\ufeff",
    "\u0301",
    "\u202e",
    "\ufdfa",
    "ﬁ",
]
CHARS = st.one_of(st.characters(), st.sampled_from(ODD))
UNICODE = st.text(CHARS, max_size=400)
WORDISH = st.lists(
    st.one_of(
        st.sampled_from(["grade", "3", "rash", "cpk", "10x", "uln", "ocular", "and", "no", "aki"]), UNICODE
    ),
    max_size=30,
).map(" ".join)
ANY_TEXT = st.one_of(UNICODE, WORDISH)
SUITE = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


# ---- the dose parser ------------------------------------------------------------------------------------
@settings(SUITE, max_examples=300)
@given(question=ANY_TEXT, history=st.lists(ANY_TEXT, max_size=3))
def test_dose_parser_takes_any_unicode(question: str, history: list[str]) -> None:
    result = parse(question, history)
    assert result == parse(question, history)  # total and deterministic
    assert isinstance(result.dosing, bool)


# ---- Bot.ask with the real model ---------------------------------------------------------------------------
@pytest.mark.slow
@settings(SUITE, max_examples=60)
@given(question=ANY_TEXT, history=st.one_of(st.none(), st.lists(ANY_TEXT, max_size=2)))
def test_ask_answers_or_refuses_any_unicode(real_bot: Bot, question: str, history: list[str] | None) -> None:
    texts = {d.source: d.text for d in real_bot.docs}
    try:
        answer = real_bot.ask(question, history)
    except QuestionError as exc:
        assert str(exc)  # a clear refusal: empty, too long, a control character or a lone surrogate
        return
    assert answer.route in ("answer", "abstain", "clarify", "decision", "no_rule")
    for c in answer.citations:
        assert texts[c.source][c.start : c.end] == c.text  # still verbatim
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")  # always encodable


@pytest.mark.slow
def test_surrogate_and_control_characters_are_refused_by_name(real_bot: Bot) -> None:
    with pytest.raises(QuestionError, match=r"unpaired surrogate \(U\+D800\) at character 6"):
        real_bot.ask("grade\ud800 3 rash")
    with pytest.raises(QuestionError, match=r"control character \(U\+0000\)"):
        real_bot.ask("what about\x00 CPK?")
    with pytest.raises(QuestionError, match=r"history\[0\] contains a control character \(U\+001B\)"):
        real_bot.ask("and grade 3?", ["rash \x1b[31m"])
    assert real_bot.ask("When should CPK\tbe measured?\n").route == "answer"  # tab and newline are fine


# ---- the HTTP boundary -------------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | UNICODE,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(UNICODE, kids, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "question",
    "history",
    "answers",
    "reaction",
    "grade",
    "aki",
    "rating",
    "text",
    "facts",
    "citations",
]
BODIES = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4),
    st.fixed_dictionaries({"question": ANY_TEXT}),
    st.fixed_dictionaries(
        {"answers": st.lists(st.fixed_dictionaries({"question": ANY_TEXT, "text": ANY_TEXT}))}
    ),
)
POSTS = ["/api/ask", "/api/decide", "/api/feedback", "/api/export"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import shutil

    from fastapi.testclient import TestClient

    from bot.server import create_app

    root = tmp_path_factory.mktemp("fuzzhttp")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    bot = Bot(Settings(root=root, feedback_path=root / "feedback.jsonl"))  # not loaded: no model needed
    with TestClient(create_app(bot), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def live_client(real_bot: Bot) -> Any:
    from fastapi.testclient import TestClient

    from bot.server import create_app

    with TestClient(create_app(real_bot), raise_server_exceptions=False) as c:
        yield c


def _check(r: Any) -> None:
    if r.status_code == 503:  # only the unloaded bot's "not ready"
        assert r.json()["error"]["code"] == "not_ready"
        return
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


@pytest.mark.slow
@settings(SUITE, max_examples=250)
@given(path=st.sampled_from(POSTS), body=BODIES)
def test_http_boundary_never_fails_with_5xx(live_client: Any, path: str, body: Any) -> None:
    raw = json.dumps(body, ensure_ascii=True).encode()  # \ud800 travels as a JSON escape, as clients send it
    r = live_client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text
    _check(r)


@settings(SUITE, max_examples=150)
@given(
    path=st.sampled_from([*POSTS, "/api/passages/x", "/api/nope", "/healthz"]), raw=st.binary(max_size=300)
)
def test_http_boundary_takes_any_bytes(client: Any, path: str, raw: bytes) -> None:
    _check(client.post(path, content=raw, headers={"content-type": "application/json"}))


def test_http_error_shapes_for_hostile_bodies(client: Any) -> None:
    h = {"content-type": "application/json"}
    cases = [
        ("/api/ask", b'{"question": "\\ud800"}', 422, "invalid_request"),
        ("/api/export", b'{"answers": [{"question": "q\\udc00", "text": "t"}]}', 422, "invalid_request"),
        ("/api/ask", b'{"question": "caf\xe9"}', 400, "malformed_json"),  # not UTF-8
        ("/api/ask", b"[" * 100_00 + b"]" * 100_00, 400, "malformed_json"),  # nested too deeply
        ("/api/decide", b'{"aki": 0}', 422, "invalid_request"),  # strict booleans
        ("/api/decide", b'{"grade": "3"}', 422, "invalid_request"),
        ("/api/decide", b'{"cpk_uln": "5"}', 422, "invalid_request"),
    ]
    for path, raw, status, code in cases:
        r = client.post(path, content=raw, headers=h)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (path, raw[:40], r.text)
    free = b'{"answers": [{"question": "q", "text": "t", "facts": {"x": "a\\ud800b"}}]}'
    r = client.post("/api/export", content=free, headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert "x = a\ufffdb" in r.text  # a surrogate in free-form facts is written as U+FFFD
    for method, path, status in [
        ("GET", "/api/ask", 405),
        ("QUERY", "/healthz", 405),
        ("GET", "/api/x", 404),
    ]:
        r = client.request(method, path)
        assert r.status_code == status and r.json()["error"]["code"] in ("method_not_allowed", "not_found")
        if status == 405:
            assert r.headers["allow"]


def test_uploads_are_refused(client: Any) -> None:
    for path in ("/gradio_api/upload", "/gradio_api/upload/", "/gradio_api/process_recording"):
        r = client.post(path, files={"files": ("x.txt", b"hello")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "uploads_disabled", path


# ---- work, counted -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocabulary_tokens() -> list[str]:
    chunks = chunk_documents(load_corpus(ROOT / "corpus", ROOT))
    return [t for c in chunks for t in tokenize(c.embed_text())]


def _work(vocabulary_tokens: list[str], question: str) -> tuple[int, int, int]:
    """(delete keys, edit-distance cells, peak bytes allocated) for everything the text side does with a
    question: corpus support, typo correction for embedding, BM25 query terms, dose parsing. A fresh
    vocabulary and cleared caches, so nothing is remembered from earlier questions."""
    from bot.dose import parse as parse_module  # noqa: F401 - the package re-exports the function
    from bot.dose.parse import _correct_word
    from bot.retrieval import expand

    vocab = Vocabulary(vocabulary_tokens)
    vocab.support("qzxwvk")  # builds the lazy tables outside the measurement
    _correct_word.cache_clear()
    parse("qzxwvk grade")
    _correct_word.cache_clear()
    before = METER.snapshot()
    tracemalloc.start()
    vocab.support(question)
    vocab.corrected(question)
    terms = expand(tokenize(question))
    fuzzy = vocab.fuzzy_terms(terms)
    for t in dict.fromkeys(terms):
        vocab.prefix_matches(t)
        if t in fuzzy:
            vocab.corrections(t)
    parse(question)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    done = METER.since(before)
    return done.delete_keys, done.osa_cells, peak


def _random_words(n_chars: int, length: int, seed: int) -> str:
    rnd = random.Random(seed)
    words = []
    while sum(len(w) + 1 for w in words) < n_chars:
        words.append("".join(rnd.choice(string.ascii_lowercase) for _ in range(length)))
    return " ".join(words)[:n_chars]


PATHOLOGICAL = {
    "one 2000-letter word": "a" * 2000,
    "one 2000-letter random word": _random_words(2000, 2000, 1),
    "three 660-letter words": " ".join(_random_words(660, 660, k) for k in range(3)),
    "2000 chars of distinct 8-letter words": _random_words(2000, 8, 2),
    "2000 chars of distinct 12-letter words": _random_words(2000, 12, 3),
    "one word repeated": ("hepatotoxicity " * 200)[:2000],
    "dose-term soup": ("grade 3 rash and cpk 10x uln but no aki; ocular " * 50)[:2000],
    "mixed scripts": ("Грейд 3 сыпь 皮疹 三级 طفح جلدي 😀 ﬁ ＣＰＫ १२३ e\u0301 " * 40)[:2000],
    "ligature expansion": ("\ufdfa" * 2000),
    "separators only": ("-./%" * 500),
    "numbers": ("12345.678-90/1% " * 125)[:2000],
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_work_per_question_is_bounded(vocabulary_tokens: list[str], name: str) -> None:
    keys, cells, peak = _work(vocabulary_tokens, PATHOLOGICAL[name])
    # the delete keys of one capped word: at most 1 + L + L(L-1)/2 for the longest word anything can reach
    longest = max(len(t) for t in vocabulary_tokens) + 2
    per_word = 1 + longest + longest * (longest - 1) // 2
    # typo lookups: MAX_TYPO_WORDS per call site (support, corrected, query terms), each for retrieval and
    # for synonyms; the dose parser's per-word work is capped at 30 letters by its own rule
    assert keys <= 6 * MAX_TYPO_WORDS * per_word + 400 * 500, (name, keys)
    assert cells <= 2_000_000, (name, cells)
    assert peak <= 8 * 1024 * 1024, (name, peak)  # bytes allocated at once, not gigabytes


def test_a_long_word_costs_nothing_to_correct(vocabulary_tokens: list[str]) -> None:
    keys, cells, _ = _work(vocabulary_tokens, "x" * 2000)
    assert keys == 0 and cells == 0  # refused by length before any delete key is made
    short_keys, _, _ = _work(vocabulary_tokens, "mechansim")
    assert short_keys > 0  # a real typo still gets corrected


def test_work_grows_at_most_linearly_then_stops(vocabulary_tokens: list[str]) -> None:
    small = _work(vocabulary_tokens, _random_words(200, 8, 5))[0]
    large = _work(vocabulary_tokens, _random_words(2000, 8, 5))[0]
    assert large <= 10 * small + 1000  # 10x the text: at most ~10x the work (the caps make it far less)


def test_corrections_unchanged_by_the_caps(vocabulary_tokens: list[str]) -> None:
    vocab = Vocabulary(vocabulary_tokens)
    assert vocab.corrections("mechansim") == ("mechanism",)
    assert vocab.corrected("when shoud CPK be mesured") == "when should CPK be measured"
    assert vocab.covers("hepatotoxicty")


def test_settings_questions_limit_is_the_schema_limit() -> None:
    assert Settings().max_question_chars == 2000  # bot/server.py's AskBody says 2000 in its description


def test_api_reaction_enum_is_the_rule_files(tmp_path: Path) -> None:
    from typing import get_args

    from bot.dose import load_rules
    from bot.dose.rules import RULES_FILENAME
    from bot.server import REACTIONS, DecideBody

    rules = load_rules(ROOT / "corpus" / RULES_FILENAME)
    assert set(REACTIONS) == {r.id for r in rules.reactions}
    literal = DecideBody.model_fields["reaction"].annotation
    assert set(get_args(get_args(literal)[0])) == set(REACTIONS)
