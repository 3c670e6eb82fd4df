from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from distillprint.atomic import replaced_atomically, write_text_atomically


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


def test_a_fifo_is_written_into_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "report.md"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    write_text_atomically(fifo, "# report\n")
    reader.join(10)
    assert received == ["# report\n"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_dev_stdout_appends_to_where_the_shell_sends_it(tmp_path: Path) -> None:
    log = tmp_path / "ci.log"
    log.write_text("earlier step\n")
    script = ("from pathlib import Path; from distillprint.atomic import write_text_atomically; "
              "print('collecting', flush=True); "
              "write_text_atomically(Path('/dev/stdout'), '# report\\n'); print('verdict: x')")
    with log.open("a") as appended:  # as `>> ci.log` opens it
        subprocess.run([sys.executable, "-c", script], stdout=appended, check=True)
    assert log.read_text() == "earlier step\ncollecting\n# report\nverdict: x\n"
    with (tmp_path / "truncated.log").open("w") as replaced:  # as `> ci.log` opens it
        subprocess.run([sys.executable, "-c", script], stdout=replaced, check=True)
    assert (tmp_path / "truncated.log").read_text() == "collecting\n# report\nverdict: x\n"
    ascii_console = {**os.environ, "PYTHONIOENCODING": "ascii"}
    with (tmp_path / "utf8.log").open("w") as plain:  # a report's 🔴 and α on an ASCII stdout
        subprocess.run([sys.executable, "-c", script.replace("# report", "# α 🔴")],
                       stdout=plain, check=True, env=ascii_console)
    assert (tmp_path / "utf8.log").read_text(encoding="utf-8") == (
        "collecting\n# α 🔴\nverdict: x\n")
