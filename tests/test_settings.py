from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import BUNDLED_MODEL, Settings


def test_defaults_are_safe() -> None:
    s = Settings()
    assert s.host == "127.0.0.1"
    assert s.model == BUNDLED_MODEL
    assert s.cors_origins == "" and s.auth_users == ""


def test_env_overrides_are_typed() -> None:
    s = Settings.from_env(
        {
            "FAQBOT_PORT": "8080",
            "FAQBOT_REBUILD": "no",
            "FAQBOT_INDEX_DIR": "/tmp/x",
            "FAQBOT_ABSTAIN_MIN_DENSE": "0.3",
        }
    )
    assert (s.port, s.rebuild, s.index_dir, s.abstain_min_dense) == (8080, False, Path("/tmp/x"), 0.3)


def test_keyword_overrides_win_over_env() -> None:
    assert Settings.from_env({"FAQBOT_PORT": "8080"}, port=9000).port == 9000


@pytest.mark.parametrize(
    ("var", "value"), [("FAQBOT_PORT", "http"), ("FAQBOT_REBUILD", "maybe"), ("FAQBOT_TOP_K", "1.5")]
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{var}='{value}'"):
        Settings.from_env({var: value})


def test_every_setting_is_documented() -> None:
    rows = Settings.describe()
    assert rows and all(var.startswith("FAQBOT_") and doc for var, _default, doc in rows)
