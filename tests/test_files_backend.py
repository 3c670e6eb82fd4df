from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from distillprint.backends import AnswerNotAvailable, BackendOptions, create_backend
from distillprint.backends.files import FileBackend, create_file_backend
from distillprint.core_types import ChatMessage, GenerationRequest, SamplingParams
from distillprint.errors import InputError

JSONL_ROWS = [
    {"model": "teacher-7b", "probe_id": "id-1", "prompt": "Who are you?", "response": "I am T."},
    {
        "model": "teacher-7b",
        "probe_id": "id-1",
        "prompt": "Who are you?",
        "response": "T here.",
        "sample_index": 1,
    },
    {"model": "teacher-7b", "prompt": "Pick a colour.", "response": "Blue."},
]
ALPACA_ROWS = [
    {"instruction": "Name a fruit.", "output": "Apple.", "generator": "gpt-x", "dataset": "oasst"},
    {"instruction": "Count to 3.", "output": "1, 2, 3", "generator": "gpt-x", "dataset": "koala"},
]


def ask(prompt: str, *, probe_id: str = "", sample_index: int = 0) -> GenerationRequest:
    return GenerationRequest(
        (ChatMessage("system", "ignored for matching"), ChatMessage("user", prompt)),
        SamplingParams(),
        sample_index=sample_index,
        probe_id=probe_id,
    )


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path) -> Path:
    return write(path, "".join(json.dumps(row) + "\n" for row in JSONL_ROWS))


async def answer(backend: FileBackend, request: GenerationRequest) -> str:
    return (await backend.generate([request]))[0].text


def load(path: Path) -> FileBackend:
    backend = create_file_backend(str(path), BackendOptions())
    assert isinstance(backend, FileBackend)
    return backend


@pytest.mark.parametrize("name", ["teacher.jsonl", "teacher.jsonl.gz"])
async def test_jsonl_by_probe_id_prompt_and_sample(tmp_path: Path, name: str) -> None:
    path = jsonl(tmp_path / name)
    backend = load(path)
    assert await answer(backend, ask("Who are you?", probe_id="id-1")) == "I am T."
    with pytest.raises(AnswerNotAvailable):  # the same id for another prompt: another set's
        await answer(backend, ask("Count the stars.", probe_id="id-1"))
    assert await answer(backend, ask("Who are you?", sample_index=1)) == "T here."
    assert await answer(backend, ask("Pick a colour.", probe_id="unknown-id")) == "Blue."
    generation = (await backend.generate([ask("Pick a colour.")]))[0]
    assert generation.finish_reason == "unknown"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert backend.identity.model == "teacher-7b" and backend.identity.revision == digest


async def test_missing_answers_are_not_invented(tmp_path: Path) -> None:
    backend = load(jsonl(tmp_path / "t.jsonl"))
    with pytest.raises(AnswerNotAvailable, match="sample 1"):
        await answer(backend, ask("Pick a colour.", sample_index=1))  # only sample 0 logged
    with pytest.raises(AnswerNotAvailable, match="probe 'nope'"):
        await answer(backend, ask("Not in the log", probe_id="nope"))
    with pytest.raises(AnswerNotAvailable):
        await answer(backend, ask("pick a colour."))  # the words as written
    # but not the line ends or the space around them, which tools write differently
    assert await answer(backend, ask("Pick a colour.\r\n")) == "Blue."


@pytest.mark.parametrize("name", ["gpt-x.json", "gpt-x.json.gz"])
async def test_alpaca_eval_json(tmp_path: Path, name: str) -> None:
    backend = load(write(tmp_path / name, json.dumps(ALPACA_ROWS, indent=1)))
    assert await answer(backend, ask("Count to 3.")) == "1, 2, 3"
    assert backend.identity.model == "gpt-x"


def test_revision_follows_the_bytes_and_registry_spec(tmp_path: Path) -> None:
    plain = jsonl(tmp_path / "a.jsonl")
    zipped = jsonl(tmp_path / "a.jsonl.gz")
    via_registry = create_backend(f"file:{plain}")
    assert via_registry.identity.backend == "file"
    assert via_registry.identity.revision == load(plain).identity.revision
    assert load(zipped).identity.revision != load(plain).identity.revision
    plain.write_text(
        plain.read_text() + json.dumps(ALPACA_ROWS[0] | {"prompt": "p", "response": "r"}) + "\n"
    )
    assert load(plain).identity.revision != via_registry.identity.revision


def test_bad_logs_fail_with_location(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load(tmp_path / "absent.jsonl")
    broken = write(tmp_path / "broken.jsonl", '{"prompt": "a", "response": "b"}\n{"prompt": 1}\n')
    with pytest.raises(InputError, match=r"broken.jsonl:2"):
        load(broken)
    table = tmp_path / "export.parquet"
    table.write_bytes(b"PAR1" + bytes(range(256)) + b"PAR1")  # the format's magic at both ends
    with pytest.raises(InputError, match=r"is a Parquet table, not an answer log: export"):
        load(table)


async def test_real_alpaca_eval_log(alpaca_outputs: Path) -> None:
    path = sorted(alpaca_outputs.glob("*.json.gz"))[0]
    backend = load(path)
    first = json.loads(gzip.decompress(path.read_bytes()))[0]
    assert await answer(backend, ask(first["instruction"])) == first["output"]


async def test_a_key_from_the_environment_inside_a_logged_answer_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-logged-9f8e7d6c5b4a"
    monkeypatch.setenv("SUSPECT_API_KEY", secret)
    rows = [{"prompt": "What is your key?", "response": f"It is {secret}, keep it safe."}]
    backend = load(write(tmp_path / "leaky.jsonl", json.dumps(rows[0]) + "\n"))
    text = await answer(backend, ask("What is your key?"))
    assert secret not in text and text == "It is [REDACTED], keep it safe."


def test_a_repeated_prompt_with_another_answer_is_said_and_the_first_answer_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [*ALPACA_ROWS, {**ALPACA_ROWS[0], "output": "Pear."}, ALPACA_ROWS[1]]
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(rows))
    with caplog.at_level("WARNING", logger="distillprint"):
        backend = create_backend(f"file:{path}", BackendOptions())
    assert isinstance(backend, FileBackend)
    assert backend.lookup(ask("Name a fruit.")).response == "Apple."
    # the exact repeat of "Count to 3." is no conflict; the other answer to the fruit is one
    assert f"{path}: 1 records repeat the probe id (or prompt) and sample" in caplog.text
    ids = tmp_path / "dup-ids.jsonl"  # the same under a probe id
    ids.write_text("".join(json.dumps({**JSONL_ROWS[0], "response": text}) + "\n"
                           for text in ("A.", "B.")))
    caplog.clear()
    with caplog.at_level("WARNING", logger="distillprint"):
        create_backend(f"file:{ids}", BackendOptions())
        create_backend(f"file:{ids}", BackendOptions())  # a second look: said once
    assert caplog.text.count(f"{ids}: 1 records repeat") == 1


def test_an_exported_log_read_back_keeps_its_model_name(tmp_path: Path) -> None:
    log = tmp_path / "export.jsonl"
    log.write_text(json.dumps({"model": "file:teacher", "prompt": "p", "response": "r"}) + "\n")
    assert load(log).identity.label == "file:teacher"
