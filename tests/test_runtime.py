"""The ONNX runtime: parity with torch, refusal of bad files, the serving path's import rule, and the
committed index being valid here (not stale) so that using the checkout changes nothing tracked."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelError
from bot.runtime.files import ModelFiles, default_cache, export_dir
from bot.runtime.onnx import META_FILE, ONNX_FILE, OnnxEncoder
from bot.settings import BUNDLED_MODEL
from tests.conftest import ROOT
from tests.serving import free_port

HEAVY = ("torch", "transformers", "sentence_transformers")
DEV = ROOT / "evals" / "dev.jsonl"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture(scope="module")
def files() -> ModelFiles:
    return ModelFiles.of(BUNDLED_MODEL)


@pytest.fixture
def cache_copy(tmp_path: Path, files: ModelFiles) -> Path:
    """A copy of the installed verified export in a throwaway cache folder."""
    src = export_dir(default_cache(), files.weights_sha256)
    dst = export_dir(tmp_path / "cache", files.weights_sha256)
    shutil.copytree(src, dst)
    return tmp_path / "cache"


def test_the_installed_export_loads_and_records_its_verification(files: ModelFiles) -> None:
    enc = OnnxEncoder.load(files, default_cache())
    info = enc.info
    assert info.weights_sha256 == files.weights_sha256 and info.opset == 17
    assert info.verified["passed"] and info.verified["min_cosine"] >= 0.9999
    assert info.verified["same_top_k"] == info.verified["queries"] > 50
    assert enc.dimension == 384 and files.max_seq_length == 256


def test_a_corrupted_onnx_file_is_refused_naming_it(files: ModelFiles, cache_copy: Path) -> None:
    path = export_dir(cache_copy, files.weights_sha256) / ONNX_FILE
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte of one weight: still a loadable graph
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=rf"{path}: sha256 .* is not the verified export's"):
        OnnxEncoder.load(files, cache_copy)


def test_an_export_of_other_weights_or_unverified_is_refused(files: ModelFiles, cache_copy: Path) -> None:
    meta = export_dir(cache_copy, files.weights_sha256) / META_FILE
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "weights_sha256": "0" * 64}))
    with pytest.raises(ModelError, match="exported from other weights"):
        OnnxEncoder.load(files, cache_copy)
    meta.write_text(json.dumps({**data, "verified": {**data["verified"], "passed": False}}))
    with pytest.raises(ModelError, match=rf"{ONNX_FILE}: failed verification"):
        OnnxEncoder.load(files, cache_copy)
    shutil.rmtree(meta.parent)
    with pytest.raises(ModelError, match=r"no verified ONNX export.*faqbot export-onnx"):
        OnnxEncoder.load(files, cache_copy)


@pytest.mark.slow
def test_export_refuses_a_file_that_does_not_match_torch(
    files: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph whose weights were altered (as a bad exporter or a damaged file would) fails the check
    against torch and is not installed."""
    import onnx
    from onnx import numpy_helper

    from bot.runtime import export as ex

    good = export_dir(default_cache(), files.weights_sha256) / ONNX_FILE

    def perturbed_export(_files: ModelFiles, target: Path) -> None:
        model = onnx.load(str(good))
        biggest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        arr = numpy_helper.to_array(biggest).copy()
        arr += np.random.default_rng(0).normal(0, 0.05, arr.shape).astype(arr.dtype)
        biggest.CopyFrom(numpy_helper.from_array(arr, biggest.name))
        onnx.save(model, str(target))

    monkeypatch.setattr(ex, "_export_graph", perturbed_export)
    texts, queries = ex.check_texts(_settings())
    with pytest.raises(ModelError, match=r"model\.onnx: the ONNX export does not match torch"):
        ex.export(files, tmp_path / "cache", texts[:30], queries[:20], force=True)
    assert not export_dir(tmp_path / "cache", files.weights_sha256).exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no temporary left behind


def _settings():  # type: ignore[no-untyped-def]
    from bot.settings import Settings

    return Settings(root=ROOT)


@pytest.mark.slow
def test_onnx_vectors_match_torch_on_the_corpus() -> None:
    from bot.chunking import chunk_documents
    from bot.corpus import load_corpus
    from bot.embedding import Embedder

    docs = load_corpus(ROOT / "corpus", ROOT)
    texts = [c.embed_text() for c in chunk_documents(docs)]
    queries = ["How often are eye exams needed?", "grade 3 rash dose", "Was ist ein Hund?", "\ud800 lone"]
    onnx_e = Embedder().load()
    torch_e = Embedder(runtime="torch", precision="float32").load()
    assert onnx_e.weights_sha256 == torch_e.weights_sha256
    a, b = onnx_e.encode(texts + queries), torch_e.encode(texts + queries)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.9999, cos.min()
    single = np.stack([onnx_e.encode_one(t) for t in texts[:8]])
    assert np.allclose(single, a[:8], atol=1e-5)  # a batch of one and a padded batch agree


@pytest.mark.slow
def test_dev_set_answers_are_identical_between_runtimes(tmp_path: Path) -> None:
    from bot import Settings, load_bot

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    onnx_bot = load_bot(Settings(root=tmp_path, cache_size=0))
    torch_bot = load_bot(Settings(root=tmp_path, cache_size=0, runtime="torch", rebuild=False))
    assert torch_bot.index.manifest == onnx_bot.index.manifest  # one index serves both runtimes
    cases = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    questions = [c["question"] for c in cases if "question" in c]
    assert len(questions) > 100
    for q in questions:
        a, b = onnx_bot.ask(q), torch_bot.ask(q)
        assert (a.route, [(c.source, c.start, c.end) for c in a.citations]) == (
            b.route,
            [(c.source, c.start, c.end) for c in b.citations],
        ), q


@pytest.mark.slow
def test_ask_and_decide_never_import_torch_and_the_committed_index_is_fresh() -> None:
    code = (
        "import sys, io\n"
        "from bot.cli import main\n"
        "rc = main(['ask', 'How often are eye exams needed?', '--json', '--no-rebuild'], out=io.StringIO())\n"
        "rc2 = main(['decide', '--reaction', 'ocular', '--grade', '3', '--json'], out=io.StringIO())\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(rc, rc2, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1:] == ["0 0 []"], proc.stderr[-2000:]


@pytest.mark.slow
def test_serve_never_imports_torch() -> None:
    """The real `faqbot serve` (committed index, no rebuild): every face used, then its import log read."""
    port = free_port()
    log = ROOT / ".pytest_cache" / f"serve-importtime-{port}.txt"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "bot.cli",
                "serve",
                "--port",
                str(port),
                "--no-rebuild",
            ],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                    ready = json.loads(r.read())
                if ready.get("status") == "ready" and ready.get("ui"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.2)
        for path, body in (
            ("/api/ask", {"question": "How often are eye exams needed?"}),
            ("/api/decide", {"reaction": "ocular", "grade": 3}),
        ):
            req = urllib.request.Request(
                base + path, json.dumps(body).encode(), {"content-type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
        with urllib.request.urlopen(base + "/", timeout=30) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    log.unlink()
    imported = {ln.split("|")[-1].strip().split(".")[0] for ln in lines if ln.startswith("import time:")}
    assert {"bot", "onnxruntime", "tokenizers", "gradio"} <= imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    # issue 11: JWT checks are imported only when a CDS Hooks key is configured (none here). (MCP is built
    # by the first /mcp request, but Gradio imports the mcp package itself once the UI is mounted.)
    assert "jwt" not in imported


@pytest.mark.slow
def test_bad_characters_are_refused_at_the_boundary_and_fail_only_themselves(real_bot) -> None:  # type: ignore[no-untyped-def]
    """A lone surrogate made the tokenizer raise (and failed its whole micro-batch) and the JSON response
    unencodable; now the question is refused at the boundary with an error naming the character (issue 9),
    the encoder cleans whatever reaches it, and the questions asked beside it are answered."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.errors import QuestionError

    bad = ["\ud800 How often are eye exams needed?", "eye\x00exams\x07 schedule", "\udfff"]
    good = [f"How often are eye exams needed, case {i}?" for i in range(12)]

    def ask(q: str) -> object:
        try:
            return real_bot.ask(q)
        except QuestionError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, bad + good))
    for r in results[: len(bad)]:
        assert isinstance(r, QuestionError) and "U+" in str(r)
    for a in results[len(bad) :]:
        assert not isinstance(a, Exception)
        assert json.dumps(a.to_dict(), ensure_ascii=False).encode("utf-8")  # type: ignore[attr-defined]
        assert a.route == results[len(bad)].route  # type: ignore[attr-defined]
    # the encoder's own boundary: a surrogate reaching it is cleaned, not a failed batch
    vec = real_bot.embedder.encode(["\ud800 eye exams", "eye exams"])
    assert vec.shape[0] == 2


@pytest.mark.slow
def test_the_onnx_session_does_not_keep_a_copy_of_the_model(real_bot) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 (server RSS): ORT's Python wrapper would hold the 90 MB of model bytes it was loaded from
    for the life of the session; the encoder drops them and gives the arena back after each run."""
    encoder = real_bot.embedder._encoder if hasattr(real_bot.embedder, "_encoder") else None
    if encoder is None or not hasattr(encoder, "session"):
        pytest.skip("not the ONNX runtime")
    assert getattr(encoder.session, "_model_bytes", None) is None
    assert encoder.run_options.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    vec = encoder.encode(["How often are eye exams needed?"])
    assert vec.shape == (1, encoder.dimension) and abs(float((vec**2).sum()) - 1.0) < 1e-4
