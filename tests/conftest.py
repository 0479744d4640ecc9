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


# ---- PostgreSQL (issue 13): the throwaway cluster scripts/test.sh starts, or one started here -----------
@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """The URL of a running PostgreSQL: FAQBOT_TEST_DATABASE_URL (scripts/test.sh starts one with
    scripts/services.sh), else a throwaway cluster started here with the same script (stopped at the end)."""
    import subprocess

    url = os.environ.get("FAQBOT_TEST_DATABASE_URL")
    if url:
        yield url
        return
    folder = tmp_path_factory.mktemp("postgres") / "cluster"
    script = str(ROOT / "scripts" / "services.sh")
    done = subprocess.run(["bash", script, "start", str(folder)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"scripts/services.sh start failed:\n{done.stderr}"
    env = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    os.environ.setdefault("FAQBOT_TEST_NGINX", env.get("FAQBOT_TEST_NGINX", ""))
    try:
        yield env["FAQBOT_TEST_DATABASE_URL"]
    finally:
        subprocess.run(["bash", script, "stop", str(folder)], capture_output=True, timeout=120)


@pytest.fixture
def pg_url(postgres_server: str):
    """A fresh, empty database on the test cluster for one test (dropped afterwards)."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
