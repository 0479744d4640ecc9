from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.corpus import corpus_files, load_corpus, load_document
from bot.errors import CorpusError
from tests.conftest import ROOT, SEED_NAME

SHARED_SEED = ROOT.parent / "shared" / "seed" / SEED_NAME


def test_seed_is_a_byte_for_byte_copy_of_the_shared_source() -> None:
    ours = (ROOT / "corpus" / SEED_NAME).read_bytes()
    if SHARED_SEED.exists():
        assert ours == SHARED_SEED.read_bytes()
    assert (
        hashlib.sha256(ours).hexdigest() == "59e2886d9a72e2ab946774182c853d17906c16dce49a2a7890b17c313646f27d"
    )


def test_load_corpus_cites_paths_relative_to_root(project: Path) -> None:
    docs = load_corpus(project / "corpus", project)
    assert [d.source for d in docs] == [f"corpus/{SEED_NAME}"]
    assert docs[0].sha256 == hashlib.sha256((project / "corpus" / SEED_NAME).read_bytes()).hexdigest()
    assert docs[0].text.startswith("\n\nOfficial Discontinuation")


def test_rule_data_files_are_not_documents(project: Path) -> None:
    (project / "corpus" / "extra.json").write_text("{}")
    assert [p.name for p in corpus_files(project / "corpus")] == [SEED_NAME]


def test_hidden_files_are_ignored(project: Path) -> None:
    (project / "corpus" / ".gitkeep").write_text("")
    assert [p.name for p in corpus_files(project / "corpus")] == [SEED_NAME]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
        ("bin.md", b"abc\x00def", "binary"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not valid UTF-8"),
        ("bom.md", b"\xef\xbb\xbfhello", "byte-order mark"),
        ("rules2.json", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),  # data files beside documents too
        ("extra.yaml", b"\x00\x01\x02", "binary"),
        ("latin1.yml", "name: caf\xe9".encode("latin-1"), "not valid UTF-8"),
    ],
)
def test_bad_files_raise_naming_the_file(project: Path, name: str, data: bytes, message: str) -> None:
    bad = project / "corpus" / name
    bad.write_bytes(data)
    with pytest.raises(CorpusError) as err:
        load_corpus(project / "corpus", project)
    assert name in str(err.value)
    assert message in str(err.value)


def test_missing_or_empty_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        corpus_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no documents"):
        corpus_files(tmp_path / "empty")


def test_unreadable_document(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read"):
        load_document(tmp_path / "missing.md", tmp_path)


def test_unreadable_data_file_raises(project: Path) -> None:
    (project / "corpus" / "broken.json").mkdir()  # a folder is skipped; a dangling link is unreadable
    (project / "corpus" / "gone.yaml").symlink_to(project / "nowhere.yaml")
    with pytest.raises(CorpusError, match=r"gone\.yaml: cannot read"):
        corpus_files(project / "corpus")
