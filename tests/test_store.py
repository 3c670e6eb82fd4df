from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from distillprint.core_types import (
    ChatMessage,
    Generation,
    GenerationRequest,
    ModelIdentity,
    SamplingParams,
    Usage,
)
from distillprint.errors import InputError
from distillprint.export import export_responses
from distillprint.store import ProbeContext, ResponseStore, public_url, store_key

CTX = ProbeContext("set", "1.0", {"p1": "identity"})


def request(index: int = 0, temperature: float = 0.7, content: str = "hi") -> GenerationRequest:
    return GenerationRequest(
        (ChatMessage("user", content),), SamplingParams(temperature=temperature), index, "p1"
    )


def test_key_covers_everything_that_changes_an_answer() -> None:
    ident = ModelIdentity("openai", "m", "", "http://h/v1")
    base = store_key(ident, request())
    assert base != store_key(ident, request(index=1))
    assert base != store_key(ident, request(temperature=0.0))
    assert base != store_key(ident, request(content="hello"))
    assert base != store_key(ModelIdentity("openai", "m", "r2", "http://h/v1"), request())
    assert base != store_key(ModelIdentity("openai", "m", "", "http://other/v1"), request())
    # Credentials in a URL are not part of what answered.
    assert base == store_key(ModelIdentity("openai", "m", "", "http://user:pw@h/v1?k=1"), request())


def test_an_ipv6_base_url_is_stored_as_a_url() -> None:
    # its port must not read as part of the address: [::1]:8000 is not [::1:8000]
    assert public_url("http://user:pw@[::1]:8000/v1/") == "http://[::1]:8000/v1"
    assert public_url(public_url("http://[::1:8000]/v1")) == "http://[::1:8000]/v1"


def test_append_only_and_idempotent(tmp_path: Path) -> None:
    ident = ModelIdentity("fake", "m")
    generation = Generation("answer", "stop", Usage(1, 2), 0.5)
    with ResponseStore(tmp_path / "s.sqlite") as store:
        assert store.add(ident, request(), generation, CTX)
        assert not store.add(ident, request(), Generation("other"), CTX)
        assert store.count() == 1
        record = next(store.responses(identity=ident))
        assert record.response == "answer" and record.category == "identity"
        assert record.completion_tokens == 2 and record.schema_version == 1
    db = sqlite3.connect(tmp_path / "s.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE responses SET response='forged'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM responses")


def test_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a distillprint response store"):
        ResponseStore(path)


def test_exports(tmp_path: Path) -> None:
    ident = ModelIdentity("fake", "m")
    path = tmp_path / "s.sqlite"
    with ResponseStore(path) as store:
        for index in range(3):
            store.add(ident, request(index), Generation(f"a{index}"), CTX)
        assert export_responses(store.responses(), tmp_path / "out.jsonl", path) == 3
        assert export_responses(store.responses(), tmp_path / "OUT.PARQUET", path) == 3
        assert export_responses(store.responses(probe_set="typo"), tmp_path / "none.parquet",
                                path) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {"model", "probe_id", "prompt", "response", "sample_index"} <= set(rows[0])
    assert rows[0]["model"] == "fake:m" and rows[2]["sample_index"] == 2
    from datasets import load_dataset

    table = load_dataset("parquet", data_files=str(tmp_path / "OUT.PARQUET"), split="train")
    assert table.num_rows == 3 and table[1]["response"] == "a1"
    assert table.features["prompt_tokens"].dtype == "int64"  # integers, missing or not
    import pyarrow.parquet as pq

    empty = pq.read_table(tmp_path / "none.parquet")  # datasets will not load a 0-row split
    assert empty.num_rows == 0 and empty.column_names == table.column_names
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp" in p.name) == []


def test_an_export_to_a_fifo_streams_into_it(tmp_path: Path) -> None:
    import stat
    import threading

    path = tmp_path / "s.sqlite"
    fifo = tmp_path / "answers.jsonl"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    with ResponseStore(path) as store:
        store.add(ModelIdentity("fake", "m"), request(0), Generation("streamed"), CTX)
        assert export_responses(store.responses(), fifo, path) == 1
    reader.join(10)
    assert json.loads(received[0])["response"] == "streamed"
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # not replaced by a file


@pytest.mark.parametrize("out", ["s.sqlite", "s.sqlite-wal", "out.csv"])
def test_an_export_never_overwrites_its_store_or_guesses_a_format(
    tmp_path: Path, out: str
) -> None:
    path = tmp_path / "s.sqlite"
    with ResponseStore(path) as store:
        store.add(ModelIdentity("fake", "m"), request(0), Generation("kept"), CTX)
    before = path.read_bytes()
    with ResponseStore(path, read_only=True) as store, pytest.raises(InputError, match="out"):
        export_responses(store.responses(), tmp_path / out, path)
    assert path.read_bytes() == before and not (tmp_path / "out.csv").exists()


def test_claims_keep_two_collectors_off_each_others_requests(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with ResponseStore(path) as store:
        assert store.claim(["a", "b"]) == {"a", "b"}
        assert store.claim(["a", "b"]) == {"a", "b"}  # a process never races itself
    # another live process holding claims: it gets only what is unclaimed
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from distillprint.store import ResponseStore\n"
        f"s = ResponseStore({str(path)!r}); print(sorted(s.claim(['c', 'd'])), flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "['c', 'd']"
        with ResponseStore(path) as store:
            assert store.claim(["c", "d", "e"]) == {"e"}
            assert store.claim(["c"], lease_s=0.0) == {"c"}  # an expired lease is free
    finally:
        holder.kill()
        holder.wait()
    with ResponseStore(path) as store:  # the holder died: its claims are abandoned
        assert store.claim(["d"]) == {"d"}


def test_hand_written_as_dict_matches_every_field() -> None:
    # ``as_dict`` is spelled out for speed; a field added later must not drop out of store keys.
    message = ChatMessage("user", "hi")
    params = SamplingParams(temperature=0.1, top_p=0.5, max_tokens=9, seed=3)
    assert message.as_dict() == dataclasses.asdict(message)
    assert params.as_dict() == dataclasses.asdict(params)


def test_add_many_stores_a_batch_in_one_commit_and_counts_only_new(tmp_path: Path) -> None:
    ident = ModelIdentity("fake", "m")
    with ResponseStore(tmp_path / "s.sqlite") as store:
        assert store.add(ident, request(content="a"), Generation("first"), CTX)
        batch = [(None, request(content=c), Generation(f"answer {c}")) for c in "abc"]
        commits = []
        store._db.set_trace_callback(commits.append)
        assert store.add_many(ident, batch, CTX) == 2  # "a" was already stored
        store._db.set_trace_callback(None)
        assert sum(statement == "COMMIT" for statement in commits) == 1
        answers = {r.prompt: r.response for r in store.responses(identity=ident)}
    assert answers == {"a": "first", "b": "answer b", "c": "answer c"}


def run_cli(*args: str, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "distillprint.cli", *args],
                          capture_output=True, text=True, timeout=300)


def stored_store(path: Path) -> Path:
    with ResponseStore(path) as store:
        store.add(ModelIdentity("fake", "m"), request(), Generation("answer"), CTX)
    return path


def foreign_database(path: Path) -> bytes:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE people (id INTEGER, name TEXT)")
    db.execute("INSERT INTO people VALUES (1, 'ada')")
    db.commit()
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize(("change", "complaint"), [
    ("ALTER TABLE responses ADD COLUMN extra TEXT", "unexpected column(s) extra"),
    ("ALTER TABLE responses DROP COLUMN package_version", "missing column(s) package_version"),
])
def test_store_with_other_columns_is_refused_at_open(
    tmp_path: Path, change: str, complaint: str
) -> None:
    path = stored_store(tmp_path / "s.sqlite")
    db = sqlite3.connect(path)
    db.execute(change)
    db.commit()
    db.close()
    for read_only in (False, True):
        with pytest.raises(InputError, match=re.escape(complaint)) as caught:
            ResponseStore(path, read_only=read_only)
        assert caught.value.path == str(path)
    # collect stops before it generates (pays for) anything, with one line and no traceback
    result = run_cli("collect", "--model", "echo:m", "--store", str(path))
    assert result.returncode == 2 and complaint in result.stderr
    assert "Traceback" not in result.stderr and "stored" not in result.stderr


def test_store_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = stored_store(tmp_path / "s.sqlite")
    db = sqlite3.connect(path)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('record_schema_version', '99')")
    db.commit()
    db.close()
    for read_only in (False, True):
        with pytest.raises(InputError, match=r"written by a newer distillprint.*version 99"):
            ResponseStore(path, read_only=read_only)


def test_foreign_database_is_never_modified(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    before = foreign_database(path)
    for read_only in (False, True):
        with pytest.raises(InputError, match=r"not a distillprint response store.*people"):
            ResponseStore(path, read_only=read_only)
    assert path.read_bytes() == before  # no meta table added, still a rollback-journal file
    assert not Path(f"{path}-wal").exists()


def test_read_only_commands_refuse_a_missing_store_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(InputError, match="no such distillprint response store"):
        ResponseStore(path, read_only=True)
    result = run_cli("responses", "models", "--store", str(path))
    assert result.returncode == 2 and f"{path}: no such" in result.stderr
    assert not path.exists()


def test_read_only_open_never_writes(tmp_path: Path) -> None:
    path = stored_store(tmp_path / "s.sqlite")
    with ResponseStore(path, read_only=True) as store, pytest.raises(sqlite3.OperationalError):
        store.add(ModelIdentity("fake", "m"), request(index=1), Generation("more"), CTX)
    with ResponseStore(path) as store:
        assert store.count() == 1


def test_a_foreign_wal_database_with_pending_pages_is_not_changed_by_a_read(
    tmp_path: Path,
) -> None:
    # as a writer that crashed leaves one: pages in its -wal file, no connection open
    source = tmp_path / "source.sqlite"
    writer = sqlite3.connect(source)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE people (id INTEGER, name TEXT)")
    writer.execute("INSERT INTO people VALUES (1, 'ada')")
    writer.commit()
    path = tmp_path / "other.sqlite"
    shutil.copy(source, path)
    shutil.copy(f"{source}-wal", f"{path}-wal")
    writer.close()
    before = (path.read_bytes(), Path(f"{path}-wal").read_bytes())
    with pytest.raises(InputError, match="not a distillprint response store"):
        ResponseStore(path, read_only=True)
    assert (path.read_bytes(), Path(f"{path}-wal").read_bytes()) == before


def test_reading_leaves_no_side_files_where_it_could_remove_them(tmp_path: Path) -> None:
    # a read-only SQLite connection cannot remove the -wal and -shm files it makes; a store
    # that was clean before `responses models` or `export` should be clean after them
    path = stored_store(tmp_path / "s.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]
    with ResponseStore(path, read_only=True) as store:
        assert store.count() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]


def without_write_access() -> list[str]:
    """A command prefix under which a file mode without ``w`` really prevents writing."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: write protection cannot be tested")
    return ["setpriv", "--bounding-set=-dac_override"]  # root without its permission bypass


def test_write_protected_store_is_readable_and_names_itself_to_writers(tmp_path: Path) -> None:
    prefix = without_write_access()
    folder = tmp_path / "shared"
    folder.mkdir()
    path = stored_store(folder / "s.sqlite")
    path.chmod(0o444)
    models = run_cli("responses", "models", "--store", str(path), prefix=prefix)
    assert models.returncode == 0, models.stderr
    assert "fake:m" in models.stdout
    collect = run_cli("collect", "--model", "echo:m", "--store", str(path), prefix=prefix)
    assert collect.returncode == 2 and f"{path}: " in collect.stderr
    assert "is read-only" in collect.stderr and "Traceback" not in collect.stderr
    folder.chmod(0o555)  # as on a read-only mount: not even SQLite's side files can be made
    try:
        out = tmp_path / "out.jsonl"
        export = run_cli("responses", "export", "--store", str(path), "--out", str(out),
                         prefix=prefix)
        assert export.returncode == 0, export.stderr
        assert json.loads(out.read_text())["response"] == "answer"
    finally:
        folder.chmod(0o755)


def test_a_claim_is_taken_over_only_when_its_holder_is_known_to_be_gone() -> None:
    import socket

    from distillprint.store import _claim_is_free

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid, me, host = int(done.stdout), os.getpid(), socket.gethostname()
    now, lease = 1000.0, 900.0
    assert _claim_is_free((host, me, now), host, me, now, lease)  # our own claim
    assert _claim_is_free((host, dead_pid, now), host, me, now, lease)  # abandoned here
    assert not _claim_is_free((host, os.getppid(), now), host, me, now, lease)  # alive here
    # another machine's processes cannot be checked from here: its claims wait for the lease
    assert not _claim_is_free(("elsewhere", dead_pid, now), host, me, now, lease)
    assert not _claim_is_free(("elsewhere", me, now), host, me, now, lease)
    assert _claim_is_free(("elsewhere", me, now - lease - 1), host, me, now, lease)


def test_one_endpoints_answers_are_exported_alone(tmp_path: Path) -> None:
    from distillprint.export import one_models_answers

    path = tmp_path / "s.sqlite"
    with ResponseStore(path) as store:
        for url in ("http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"):
            store.add(ModelIdentity("openai", "m", "", url), request(), Generation(url), CTX)
        rows = list(store.responses())
    with pytest.raises(InputError, match="pick one with --base-url"):
        one_models_answers(rows, "openai:m")
    picked = one_models_answers(rows, "openai:m", base_url="http://127.0.0.1:8002/v1/")
    assert [row.response for row in picked] == ["http://127.0.0.1:8002/v1"]


def test_a_model_answering_one_probe_twice_is_told_what_differs_and_how_to_pick(
    tmp_path: Path,
) -> None:
    from distillprint.export import one_models_answers

    ident = ModelIdentity("fake", "m")
    with ResponseStore(tmp_path / "s.sqlite") as store:
        store.add(ident, request(), Generation("plain"), CTX)
        other_top_p = dataclasses.replace(request(), params=SamplingParams(top_p=0.5))
        store.add(ident, other_top_p, Generation("nucleus"), CTX)
        system = dataclasses.replace(request(), messages=(
            ChatMessage("system", "Be brief."), ChatMessage("user", "hi")))
        store.add(ident, system, Generation("brief"), CTX)
        rows = list(store.responses())
    with pytest.raises(InputError, match=r"top_p 1\.0 and 0\.5: no export option picks by that"):
        one_models_answers(rows[:2], "fake:m")
    with pytest.raises(InputError, match="their messages differ"):
        one_models_answers([rows[0], rows[2]], "fake:m")


def test_picking_a_setting_says_which_probes_it_leaves_out(tmp_path: Path) -> None:
    from distillprint.export import SamplingChoice, one_models_answers

    ident = ModelIdentity("fake", "m")
    short = SamplingParams(max_tokens=16)
    with ResponseStore(tmp_path / "s.sqlite") as store:
        store.add(ident, request(), Generation("default"), CTX)
        store.add(ident, dataclasses.replace(request(), params=short), Generation("short"), CTX)
        own = dataclasses.replace(request(content="other"), probe_id="p2", params=short)
        store.add(ident, own, Generation("p2"), CTX)
        rows = list(store.responses())
    said: list[str] = []
    kept = one_models_answers(rows, "fake:m", sampling=SamplingChoice(max_tokens=256),
                              say=said.append)
    assert [row.response for row in kept] == ["default"]
    assert said == ["note: 1 probe(s) of 'fake:m' have answers only under other settings and "
                    "are left out: p2"]


def test_a_store_damaged_past_its_first_pages_is_named_by_every_query(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    ident = ModelIdentity("fake", "m")
    with ResponseStore(path) as store:
        batch = [(None, request(content=f"prompt {i}"), Generation("answer " * 200))
                 for i in range(200)]
        store.add_many(ident, batch, CTX)
    with path.open("r+b") as handle:  # pages of answers overwritten, the schema intact
        handle.seek(50_000)
        handle.write(b"\xff" * 30_000)
    with ResponseStore(path, read_only=True) as store, pytest.raises(
            InputError, match="the distillprint response store is damaged") as caught:
        list(store.responses())
    assert caught.value.path == str(path)
    result = run_cli("responses", "export", "--store", str(path), "--out",
                     str(tmp_path / "out.jsonl"))
    assert result.returncode == 2, result.stderr
    assert "damaged" in result.stderr and "Traceback" not in result.stderr
