from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from distillprint.errors import InputError
from distillprint.export import write_jsonl, write_parquet
from distillprint.store import ProbeContext, ResponseStore, store_key
from distillprint.types import (
    ChatMessage,
    Generation,
    GenerationRequest,
    ModelIdentity,
    SamplingParams,
    Usage,
)

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
    with ResponseStore(tmp_path / "s.sqlite") as store:
        for index in range(3):
            store.add(ident, request(index), Generation(f"a{index}"), CTX)
        assert write_jsonl(store.responses(), tmp_path / "out.jsonl") == 3
        assert write_parquet(store.responses(), tmp_path / "out.parquet") == 3
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {"model", "probe_id", "prompt", "response", "sample_index"} <= set(rows[0])
    assert rows[0]["model"] == "fake:m" and rows[2]["sample_index"] == 2
    from datasets import Dataset

    table = Dataset.from_parquet(str(tmp_path / "out.parquet"))
    assert table.num_rows == 3 and table[1]["response"] == "a1"


def test_claims_keep_two_collectors_off_each_others_requests(tmp_path: Path) -> None:
    import subprocess
    import sys

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
