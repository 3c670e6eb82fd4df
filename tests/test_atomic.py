from __future__ import annotations

from pathlib import Path

import pytest

from distillprint.atomic import replaced_atomically


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), replaced_atomically(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_two_writers_of_one_target_get_their_own_files(tmp_path: Path) -> None:
    target = tmp_path / "cube.npz"
    with replaced_atomically(target) as first, replaced_atomically(target) as second:
        assert first != second and first.name.startswith(".")
        first.write_text("a")
        second.write_text("b")
    assert target.read_text() == "a"  # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["cube.npz"]


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path: Path) -> None:
    """mkstemp's temporary file is private; an export is a file like any other."""
    import os

    previous = os.umask(0o022)
    try:
        fresh = tmp_path / "export.jsonl"
        with replaced_atomically(fresh) as tmp:
            tmp.write_text("{}\n")
        assert fresh.stat().st_mode & 0o777 == 0o644
        fresh.chmod(0o600)
        with replaced_atomically(fresh) as tmp:
            tmp.write_text("{}\n")
        assert fresh.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)


def test_an_unwritable_folder_names_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "export.jsonl"
    with pytest.raises(OSError) as info, replaced_atomically(target):
        pass
    assert info.value.filename == str(target)
