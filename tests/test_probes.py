from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from distillprint.core_types import SamplingParams
from distillprint.errors import InputError
from distillprint.probes import load_probe_set

VALID = """\
name: mini
version: "1.0.0"
defaults:
  temperature: 0.5
  max_tokens: 64
probes:
  - id: identity-who
    category: identity
    prompt: Who are you?
    rationale: self-description
  - id: persona-sys
    category: persona
    messages:
      - {role: system, content: "You are Bob."}
      - {role: user, content: "What is your name?"}
    rationale: persona resistance
    sampling: {temperature: 1.0}
"""


def write(tmp_path: Path, text: str, name: str = "set.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_set_and_sampling_precedence(tmp_path: Path) -> None:
    probe_set = load_probe_set(write(tmp_path, VALID))
    assert [p.id for p in probe_set.probes] == ["identity-who", "persona-sys"]
    requests = list(probe_set.requests(samples=2, base=SamplingParams(max_tokens=256)))
    assert len(requests) == 4
    assert requests[0].params.temperature == 0.5 and requests[0].params.max_tokens == 64
    assert requests[2].params.temperature == 1.0
    assert requests[2].messages[0].role == "system"
    assert [r.sample_index for r in requests] == [0, 1, 0, 1]


def test_cli_overrides_win(tmp_path: Path) -> None:
    probe_set = load_probe_set(write(tmp_path, VALID)).with_sampling(temperature=0.0)
    assert all(r.params.temperature == 0.0 for r in probe_set.requests(1))


@pytest.mark.parametrize(
    ("mutation", "line", "field"),
    [
        ("    prompt: Who are you?\n", 7, "probes.0"),  # neither prompt nor messages
        ("    category: identity\n", 7, "probes.0.category"),  # missing: the probe's own line
    ],
)
def test_invalid_probe_names_line_and_field(
    tmp_path: Path, mutation: str, line: int, field: str
) -> None:
    path = write(tmp_path, VALID.replace(mutation, "", 1))
    with pytest.raises(InputError) as info:
        load_probe_set(path)
    assert info.value.path == str(path)
    assert info.value.field == field
    assert info.value.line == line


@pytest.mark.parametrize(
    ("original", "mutation", "field"),
    [
        ("max_tokens: 64", "max_tokens: true", "defaults.max_tokens"),  # not 1
        ("max_tokens: 64", "max_tokens: '64'", "defaults.max_tokens"),
        ("max_tokens: 64", "seed: -1", "defaults.seed"),
        ("prompt: Who are you?", "prompt: '   '", "probes.0.prompt"),
        ('content: "You are Bob."', 'content: " "', "probes.1.messages.0.content"),
    ],
)
def test_values_that_would_be_read_as_something_else_are_refused(
    tmp_path: Path, original: str, mutation: str, field: str
) -> None:
    with pytest.raises(InputError) as info:
        load_probe_set(write(tmp_path, VALID.replace(original, mutation, 1)))
    assert info.value.field == field


def test_unknown_key_and_duplicate_id(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        unknown_key = VALID.replace("rationale: self", "colour: red\n    rationale: self")
        load_probe_set(write(tmp_path, unknown_key))
    assert info.value.field == "probes.0.colour"
    assert info.value.line == 10
    dup = VALID.replace("id: persona-sys", "id: identity-who")
    with pytest.raises(InputError, match="duplicate probe id") as info:
        load_probe_set(write(tmp_path, dup))
    # the second occurrence, not the top of the file
    assert (info.value.line, info.value.field) == (11, "probes.1.id")


def test_duplicate_keys_name_line_and_key(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: the first prompt would vanish unnoticed."""
    twice = VALID.replace("prompt: Who are you?", "prompt: Who are you?\n    prompt: Other?")
    path = write(tmp_path, twice)
    with pytest.raises(InputError, match="duplicate key 'prompt' \\(first on line 9\\)") as info:
        load_probe_set(path)
    assert (info.value.path, info.value.line) == (str(path), 10)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_probe_set(write(tmp_path, VALID + "  - id: [unclosed\n"))
    assert info.value.line is not None and info.value.line == 19


def test_messages_must_end_with_user(tmp_path: Path) -> None:
    last_turn = '{role: user, content: "What is your name?"}'
    bad = VALID.replace(last_turn, "{role: assistant, content: Hi}")
    with pytest.raises(InputError, match="end with a user turn"):
        load_probe_set(write(tmp_path, bad))


def test_alpaca_json_is_a_probe_set(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[{"instruction": "Say hi", "dataset": "x"}, {"instruction": "Count", "output": "1 2"}]',
        "prompts.json",
    )
    probe_set = load_probe_set(path)
    assert [p.id for p in probe_set.probes] == ["alpaca-0", "alpaca-1"]
    assert probe_set.probes[0].category == "x"
    assert probe_set.name == "prompts"  # a valid name stays as it is


def test_alpaca_json_of_two_generators_asks_each_instruction_once(tmp_path: Path) -> None:
    answered = [{"instruction": prompt, "output": "o", "generator": generator}
                for generator in ("a", "b") for prompt in ("Say hi", "Count")]
    probe_set = load_probe_set(write(tmp_path, json.dumps(answered), "two.json"))
    assert [(p.id, p.prompt) for p in probe_set.probes] == [("alpaca-0", "Say hi"),
                                                            ("alpaca-1", "Count")]


def test_answer_logs_named_like_real_models_are_probe_sets(tmp_path: Path) -> None:
    """AlpacaEval log names and model labels hold '+' or ':', which set names may not."""
    answered = [{"instruction": "Say hi", "output": "hi", "generator": "x"}]
    path = tmp_path / "Mistral-7B+RAHF-DUAL+LoRA.json.gz"
    path.write_bytes(gzip.compress(json.dumps(answered).encode()))
    assert load_probe_set(path).name == "Mistral-7B-RAHF-DUAL-LoRA"
    exported = [{"prompt": p, "response": "r", "model": "echo:alpha", "probe_id": i}
                for p, i in [("Who?", "who"), ("Why?", "why"), ("Who?", "who")]]
    log = write(tmp_path, "".join(json.dumps(row) + "\n" for row in exported), "export.jsonl")
    probe_set = load_probe_set(log)
    assert probe_set.name == "echo-alpha"
    assert [p.id for p in probe_set.probes] == ["why", "who"]  # a prompt sits at its last record


@pytest.mark.parametrize(
    ("rows", "line", "field", "message"),
    [
        ([{"probe_id": "BAD ID!"}], 3, "probe_id", "should match pattern"),
        ([{"probe_id": "p0"}], 3, "probe_id", "duplicate probe id 'p0'.*line 1"),
        ([{"prompt": ""}], 3, "prompt", "at least 1 character"),
    ],
)
def test_answer_log_probe_errors_name_the_line(
    tmp_path: Path, rows: list[dict[str, str]], line: int, field: str, message: str
) -> None:
    good = {"prompt": "Who?", "response": "r", "probe_id": "p0"}
    bad = {"prompt": "Why?", "response": "r", **rows[0]}
    path = write(tmp_path, f"{json.dumps(good)}\n\n{json.dumps(bad)}\n", "log.jsonl")
    with pytest.raises(InputError, match=message) as info:
        load_probe_set(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, field)


def test_prompt_list_probe_errors_name_the_item(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"instruction": "Say hi"}, {"instruction": ""}]', "prompts.json")
    with pytest.raises(InputError, match=r"item 1: .*at least 1 character") as info:
        load_probe_set(path)
    assert info.value.field == "instruction"


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(InputError, match="no probe set named 'nope'"):
        load_probe_set("nope")


def test_core_v1_meets_the_brief() -> None:
    probe_set = load_probe_set("core-v1")
    assert len(probe_set.probes) >= 150
    assert len(probe_set.categories) >= 10
    assert sum(1 for p in probe_set.probes if p.messages) >= 10


def test_sample_is_stratified_deterministic_and_keeps_every_request(tmp_path: Path) -> None:
    from distillprint.probes import sample_probe_set, write_probe_set

    full = load_probe_set("core-v1")
    subset = sample_probe_set(full, 64, seed=0)
    ids = [p.id for p in subset.probes]
    assert len(ids) == 64 and (subset.name, subset.version) == (full.name, full.version)
    assert "sample of 64 of the 179 probes" in subset.description
    assert subset.categories == full.categories  # every habit still probed
    order = [p.id for p in full.probes if p.id in set(ids)]
    assert ids == order
    for category in full.categories:
        share = 64 * sum(p.category == category for p in full.probes) / len(full.probes)
        assert abs(sum(p.category == category for p in subset.probes) - share) <= 1.5
    assert [p.id for p in sample_probe_set(full, 64, seed=0).probes] == ids
    # a larger budget with the same seed contains the smaller one: growing it sends only new
    sizes = [1, 5, 11, 12, 32, 63, 64, 65, 100, 150, 179]
    drawn = [{p.id for p in sample_probe_set(full, n, seed=0).probes} for n in sizes]
    assert all(small < large for small, large in itertools.pairwise(drawn))
    assert drawn[-1] == {p.id for p in full.probes}
    assert [p.id for p in sample_probe_set(full, 64, seed=1).probes] != ids
    # the same requests as the full set's, so answers stored for it are reused
    assert set(subset.requests(1)) <= set(full.requests(1))
    path = tmp_path / "budget.yaml"
    write_probe_set(subset, path)
    loaded = load_probe_set(path)
    assert loaded == subset and list(loaded.requests(1)) == list(subset.requests(1))


def test_sample_rejects_impossible_sizes() -> None:
    from distillprint.probes import sample_probe_set

    full = load_probe_set("core-v1")
    for n in (0, len(full.probes) + 1):
        with pytest.raises(InputError, match="cannot draw") as info:
            sample_probe_set(full, n)
        assert info.value.field == "n"
    assert len(sample_probe_set(full, 3).probes) == 3  # fewer than categories: still n


def test_two_probes_asking_the_same_are_refused_by_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: dup\nversion: '1'\nprobes:\n"
        "  - {id: a, category: c, prompt: hi, rationale: r}\n"
        "  - {id: b, category: c, prompt: hi, rationale: r}\n"
        "  - {id: c, category: c, prompt: hi, rationale: r, sampling: {temperature: 0.5}}\n"
    )
    with pytest.raises(InputError, match=r"'b' asks exactly what 'a' \(line 4\)") as info:
        load_probe_set(path)
    assert info.value.line == 5
    path.write_text(path.read_text().replace("  - {id: b, category: c, prompt: hi, rationale: r}\n",
                                             ""))
    probes = load_probe_set(path)
    assert len(probes.probes) == 2  # other sampling: another request
    assert len(probes.with_sampling(max_tokens=32).probes) == 2
    with pytest.raises(InputError, match=r"'a' and 'c' of dup differ only in the sampling this "
                       r"run sets for every probe \(temperature 0\.5, max_tokens 9\)") as info:
        probes.with_sampling(temperature=0.5, max_tokens=9)  # the store would keep one answer
    assert info.value.field == "temperature, max-tokens"
