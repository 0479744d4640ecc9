"""Shared fixtures. Fixtures are small and real: the seed document, the real bundled model (slow tests)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SEED_NAME = "avutometinib_dose_modification.md"
SEED_PATH = ROOT / "corpus" / SEED_NAME


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_PATH.read_text(encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway project root with a copy of corpus/ (documents and rule data) and no index."""
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    return tmp_path


def hash_encoder(dim: int = 64):
    """A deterministic stand-in encoder (bag of hashed words, normalised) for tests that need no model."""

    def encode(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                h = int(hashlib.md5(word.encode()).hexdigest(), 16)
                out[row, h % dim] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out

    return encode


@pytest.fixture(scope="session")
def real_bot(tmp_path_factory: pytest.TempPathFactory):
    """A Bot with the real bundled model over a copy of corpus/, its index built once per session."""
    from bot import Settings, load_bot

    root = tmp_path_factory.mktemp("realbot")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    return load_bot(Settings(root=root))
