from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from bot import index as ix
from bot.chunking import chunk_documents
from bot.chunkstore import ChunkStore
from bot.corpus import load_corpus
from bot.errors import IndexCorruptError, IndexMissingError, StaleIndexError
from bot.lexical import LexicalTables
from bot.records import Chunk
from tests.conftest import hash_encoder

MODEL = "test-model"


def _build(project: Path, directory: Path | None = None, **kw: int) -> ix.IndexData:
    docs = load_corpus(project / "corpus", project)
    chunks = chunk_documents(docs)
    return ix.build(docs, chunks, hash_encoder(), MODEL, directory or project / "index", **kw)


def test_round_trip(project: Path) -> None:
    built = _build(project)
    loaded = ix.read_index(project / "index")
    assert loaded.chunks == built.chunks
    assert loaded.manifest == built.manifest
    assert loaded.faiss_index.ntotal == len(built.chunks)
    m = loaded.manifest
    assert (m.model, m.dimension, m.normalized, m.index_type) == (MODEL, 64, True, "flat_ip")
    assert set(m.corpus) == {"corpus/avutometinib_dose_modification.md"}
    assert {"faiss-cpu", "sentence-transformers"} <= set(m.libraries)
    first = loaded.faiss_index.reconstruct(0)
    assert np.allclose(first, hash_encoder()([built.chunks[0].embed_text()])[0])


FILES = ["chunks.bin", "chunks.npz", "index.faiss", "lexical.npz", "manifest.json"]


def test_files_are_plain_json_numpy_and_native_faiss(project: Path) -> None:
    built = _build(project)
    d = project / "index"
    assert sorted(p.name for p in d.iterdir()) == FILES
    json.loads((d / "manifest.json").read_text())
    for name in ("chunks.npz", "lexical.npz"):
        with np.load(d / name, allow_pickle=False) as npz:  # no object arrays: nothing to unpickle
            assert all(npz[a].dtype != object for a in npz.files)
    # the text blob is the chunks' own strings, UTF-8, one after another
    assert built.chunks[0].text.encode() in (d / "chunks.bin").read_bytes()
    assert not (d / "index.faiss").read_bytes().startswith(b"\x80")  # not a pickle stream


def test_no_pickle_anywhere_in_the_package() -> None:
    for path in Path(ix.__file__).parent.rglob("*.py"):
        source = path.read_text()
        assert "import pickle" not in source and "joblib" not in source, path


def test_stale_detection(project: Path) -> None:
    built = _build(project)
    docs = load_corpus(project / "corpus", project)
    assert ix.stale_reasons(built.manifest, docs, MODEL) == []
    assert "model changed" in ix.stale_reasons(built.manifest, docs, "other-model")[0]
    (project / "corpus" / "avutometinib_dose_modification.md").write_text("changed\n", encoding="utf-8")
    changed = load_corpus(project / "corpus", project)
    assert ix.stale_reasons(built.manifest, changed, MODEL) == [
        "corpus changed: corpus/avutometinib_dose_modification.md"
    ]
    (project / "corpus" / "new.md").write_text("New doc\n\nText.\n", encoding="utf-8")
    more = load_corpus(project / "corpus", project)
    assert "corpus/new.md" in ix.stale_reasons(built.manifest, more, MODEL)[0]
    old_chunker = replace(built.manifest, chunker_version="0")
    assert "chunker changed" in ix.stale_reasons(old_chunker, docs, MODEL)[0]


def test_missing_index_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="faqbot build"):
        ix.read_index(tmp_path / "index")


@pytest.mark.parametrize(
    ("victim", "damage", "error", "message"),
    [
        ("manifest.json", "{not json", IndexCorruptError, "manifest.json"),
        ("manifest.json", '{"model": "x"}', IndexCorruptError, "missing or invalid field"),
        ("manifest.json", "[1, 2]", IndexCorruptError, "not a JSON object"),
        ("index.faiss", "garbage", IndexCorruptError, "cannot be read by faiss"),
        ("chunks.npz", "garbage", IndexCorruptError, r"chunks\.npz: unreadable"),
        ("lexical.npz", "garbage", IndexCorruptError, r"lexical\.npz: unreadable"),
    ],
)
def test_corrupt_files_raise_clear_errors(
    project: Path, victim: str, damage: str, error: type, message: str
) -> None:
    _build(project)
    (project / "index" / victim).write_text(damage)
    if victim != "manifest.json":
        with pytest.raises(IndexCorruptError, match=rf"{victim}: sha256 .* does not match the manifest"):
            ix.read_index(project / "index")
        _rehash(project / "index")  # damage that also rewrote the checksum: the parsers still catch it
    with pytest.raises(error, match=message):
        ix.read_index(project / "index")


def _rehash(directory: Path) -> None:
    """Recompute the manifest's file checksums (as a careless edit or a bad build would)."""
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    data["files"] = {name: ix.sha256_file(directory / name) for name in data["files"]}
    path.write_text(json.dumps(data))


def test_count_mismatch_is_corrupt(project: Path) -> None:
    built = _build(project)
    fewer = ChunkStore.from_chunks(list(built.chunks)[:-1])
    fewer.write(project / "index")
    LexicalTables.compute(fewer).write(project / "index")
    _rehash(project / "index")
    with pytest.raises(IndexCorruptError, match="vectors"):
        ix.read_index(project / "index")


def test_manifest_carries_the_sha256_of_every_index_file(project: Path) -> None:
    built = _build(project)
    d = project / "index"
    assert built.manifest.files == {n: ix.sha256_file(d / n) for n in FILES if n != "manifest.json"}
    assert ix.read_manifest(d).files == built.manifest.files
    # one flipped byte anywhere in any file is caught, naming the file
    for name in built.manifest.files:
        _build(project)
        raw = bytearray((d / name).read_bytes())
        raw[len(raw) // 2] ^= 0x01
        (d / name).write_bytes(bytes(raw))
        with pytest.raises(IndexCorruptError, match=rf"{name.replace('.', '[.]')}: sha256"):
            ix.read_index(d)
        with pytest.raises(IndexCorruptError, match=rf"{name.replace('.', '[.]')}: sha256"):
            ix.verify_files(d, built.manifest)
    # a manifest without checksums (hand-edited) is refused too
    _build(project)
    data = json.loads((d / "manifest.json").read_text())
    del data["files"]["index.faiss"]
    (d / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match=r"no checksum for index\.faiss"):
        ix.read_index(d)


@pytest.mark.parametrize(("fill", "message"), [(np.nan, "is not finite"), (7.0, "has length")])
def test_damaged_vectors_with_an_intact_header_are_refused(project: Path, fill: float, message: str) -> None:
    built = _build(project)
    vecs = built.faiss_index.reconstruct_n(0, built.faiss_index.ntotal)
    # NaN in one row, or a random vector of the right shape (not unit length)
    vecs[3] = fill if np.isnan(fill) else np.random.default_rng(1).standard_normal(vecs.shape[1]) * fill
    damaged = faiss.IndexFlatIP(vecs.shape[1])
    damaged.add(vecs)
    faiss.write_index(damaged, str(project / "index" / "index.faiss"))
    _rehash(project / "index")
    with pytest.raises(IndexCorruptError, match=rf"index\.faiss: vector 3 {message}"):
        ix.read_index(project / "index")


def test_stale_by_weights_not_by_runtime(project: Path) -> None:
    docs = load_corpus(project / "corpus", project)
    built = ix.build(
        docs,
        chunk_documents(docs),
        hash_encoder(),
        "m (pkg 1)",
        project / "index",
        model_sha256="a" * 64,
        runtime="onnxruntime 1.0 float32",
    )
    m = built.manifest
    assert (m.model_sha256, m.runtime) == ("a" * 64, "onnxruntime 1.0 float32")
    assert ix.stale_reasons(m, docs, "m (pkg 1)", "a" * 64) == []
    assert ix.stale_reasons(m, docs, "m (pkg 2)", "a" * 64) == []  # same weights, another package version
    assert "model weights changed" in ix.stale_reasons(m, docs, "m (pkg 1)", "b" * 64)[0]
    assert "model changed" in ix.stale_reasons(m, docs, "m (pkg 1) +int8-dynamic", "a" * 64)[0]


def test_deleted_file_is_missing(project: Path) -> None:
    _build(project)
    (project / "index" / "index.faiss").unlink()
    with pytest.raises(IndexMissingError, match=r"index\.faiss"):
        ix.read_index(project / "index")


def test_old_format_is_stale(project: Path) -> None:
    _build(project)
    path = project / "index" / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(StaleIndexError, match="faqbot build"):
        ix.read_index(project / "index")


def test_interrupted_build_leaves_previous_index_intact(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build(project)
    before = {p.name: p.read_bytes() for p in (project / "index").iterdir()}

    def boom(*args: object) -> None:
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(ix.faiss, "write_index", boom)
    with pytest.raises(KeyboardInterrupt):
        _build(project)
    after = {p.name: p.read_bytes() for p in (project / "index").iterdir()}
    assert after == before
    assert [p.name for p in project.iterdir() if p.name.startswith(".index")] == []


def test_large_collections_switch_to_ivf_with_recorded_settings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((20, 32)).astype(np.float32)
    vecs = centers[rng.integers(0, 20, 2000)] + 0.1 * rng.standard_normal((2000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    flat, kind, params = ix.make_faiss_index(vecs, ann_threshold=5000)
    assert kind == "flat_ip" and params == {}
    ivf, kind, params = ix.make_faiss_index(vecs, ann_threshold=1000)
    assert kind == "ivf_flat_ip" and params["nlist"] == 45 and params["nprobe"] == ix.IVF_NPROBE
    _, exact = flat.search(vecs[:50], 1)
    _, approx = ivf.search(vecs[:50], 1)
    assert (exact[:, 0] == approx[:, 0]).all()
    # Written and read back, the approximate index keeps its search settings and can reconstruct.
    chunks = [Chunk(f"id{i}", "corpus/x.md", i, i + 1, "x", "", "paragraph") for i in range(len(vecs))]
    manifest = ix.Manifest("m", 32, True, {}, "4", len(vecs), kind, params)
    ix.write_index(tmp_path / "index", manifest, ivf, chunks)
    loaded = ix.read_index(tmp_path / "index")
    assert faiss.extract_index_ivf(loaded.faiss_index).nprobe == ix.IVF_NPROBE
    assert np.allclose(loaded.faiss_index.reconstruct(7), vecs[7])
    _, again = loaded.faiss_index.search(vecs[:50], 1)
    assert (again[:, 0] == exact[:, 0]).all()


def test_approximate_index_returns_the_same_top_hit_as_exact_on_the_seed(project: Path) -> None:
    from bot.retrieval import HybridSearcher

    exact = _build(project, project / "exact")
    approx = _build(project, project / "approx", ann_threshold=1)
    assert approx.manifest.index_type == "ivf_flat_ip" and exact.manifest.index_type == "flat_ip"
    loaded = ix.read_index(project / "approx")
    a, b = HybridSearcher(exact.chunks, exact.faiss_index), HybridSearcher(loaded.chunks, loaded.faiss_index)
    encode = hash_encoder()
    for question in (
        "eye exam schedule",
        "CPK 10x ULN creatinine",
        "skin rash grade 3",
        "RAMP-201 rate",
        "CAS number",
    ):
        vec = encode([question])[0]
        assert a.search(question, vec, 1)[0].chunk.id == b.search(question, vec, 1)[0].chunk.id


def test_damaged_vector_in_an_ivf_index_is_named_by_its_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs[1234] *= 7.0  # finite, but not unit length: read in place from its inverted list
    ivf, kind, params = ix.make_faiss_index(vecs, ann_threshold=1000)
    chunks = [Chunk(f"id{i}", "corpus/x.md", i, i + 1, "x", "", "paragraph") for i in range(len(vecs))]
    ix.write_index(
        tmp_path / "index", ix.Manifest("m", 32, True, {}, "4", len(vecs), kind, params), ivf, chunks
    )
    with pytest.raises(IndexCorruptError, match=r"index\.faiss: vector 1234 has length 7\.0000"):
        ix.read_index(tmp_path / "index")


def test_the_committed_index_stores_the_lexical_tables_this_code_computes() -> None:
    """Editing the retrieval code or its data files changes the lexical tables' key: then `faqbot build`
    and commit index/ (otherwise every load recomputes them, with a warning)."""
    from pathlib import Path

    from bot.index import read_index
    from bot.lexical import fingerprint

    data = read_index(Path(__file__).resolve().parent.parent / "index")
    assert data.lexical is not None
    assert data.lexical.fingerprint == fingerprint(), "run `faqbot build` and commit index/"
