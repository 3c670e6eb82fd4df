from __future__ import annotations

import os
from pathlib import Path

import pytest

from distillprint.embed.command import default_cache_path
from distillprint.errors import InputError
from distillprint.locations import cache_root, check_result_path
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


def test_an_output_is_refused_before_any_work_where_it_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distillprint import locations

    fifo = tmp_path / "stream.md"
    os.mkfifo(fifo)
    check_result_path(fifo, "--markdown")  # a stream is written into, where it is
    # as a user without write permission sees it (root, which runs CI here, is never denied)
    monkeypatch.setattr(locations.os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="its folder is not writable") as info:
        check_result_path(tmp_path / "report.md", "--markdown")
    assert info.value.field == "--markdown"
    with pytest.raises(InputError, match="permission denied"):
        check_result_path(fifo, "--markdown")
