from __future__ import annotations

from pathlib import Path

import pytest

from distillprint.embed.command import default_cache_path
from distillprint.locations import cache_root
from distillprint.models_catalog import model_cache_dir


@pytest.fixture(autouse=True)
def _no_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLPRINT_CACHE_DIR", raising=False)
    monkeypatch.delenv("DISTILLPRINT_CACHE", raising=False)


def test_default_cache_root_is_under_home() -> None:
    root = Path.home() / ".cache" / "distillprint"
    assert cache_root() == root
    assert model_cache_dir() == root / "models"
    assert default_cache_path() == root / "embeddings.sqlite"


def test_documented_variable_wins_and_the_old_one_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLPRINT_CACHE", str(tmp_path / "old"))
    assert model_cache_dir() == tmp_path / "old" / "models"
    assert default_cache_path() == tmp_path / "old" / "embeddings.sqlite"
    monkeypatch.setenv("DISTILLPRINT_CACHE_DIR", str(tmp_path / "new"))
    assert model_cache_dir() == tmp_path / "new" / "models"
    assert default_cache_path() == tmp_path / "new" / "embeddings.sqlite"


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLPRINT_CACHE_DIR", "")
    assert cache_root() == Path.home() / ".cache" / "distillprint"
