from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distillprint.core_types import (
    ChatMessage,
    Generation,
    GenerationRequest,
    ModelIdentity,
    SamplingParams,
)
from distillprint.embed.command import rows_from_answer_logs, rows_from_store, run_embed
from distillprint.errors import InputError

ANSWERS = {
    "eager": ["Certainly! Here you go.", "Sure! Happy to help.", "Certainly! Done."],
    "terse": ["Done.", "Yes.", "No."],
}


def write_logs(directory: Path) -> Path:
    directory.mkdir()
    for model, answers in ANSWERS.items():
        lines = [
            json.dumps({"prompt": f"q{i}", "response": text, "probe_id": f"p{i}"})
            for i, text in enumerate(answers)
        ]
        (directory / f"{model}.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_embed_answer_logs_then_rerun_hits_cache(tmp_path: Path) -> None:
    rows = rows_from_answer_logs([write_logs(tmp_path / "logs")])
    assert [row.model for row in rows] == ["eager"] * 3 + ["terse"] * 3
    cache = tmp_path / "cache.sqlite"
    first = run_embed(
        rows, embedder="stylometry", out=tmp_path / "v.npz", cache_path=cache, progress=False
    )
    assert first.responses == 6 and first.models == 2 and first.cache_misses == 6
    second = run_embed(
        rows, embedder="stylometry", out=tmp_path / "v2.npz", cache_path=cache, progress=False
    )
    assert second.cache_misses == 0 and second.cache_hits == 6
    saved = np.load(tmp_path / "v.npz")
    assert saved["vectors"].shape == (6, first.dim)
    assert list(saved["model_names"]) == ["eager", "terse"]
    np.testing.assert_allclose(saved["model_vectors"][0], saved["vectors"][:3].mean(axis=0))
    assert list(saved["probe_id"][:2]) == ["p0", "p1"]
    assert json.loads(str(saved["metadata"]))["embedder"] == "stylometry"


def test_rows_of_one_prompt_join_across_models_without_probe_ids(tmp_path: Path) -> None:
    logs = tmp_path / "alpaca"
    logs.mkdir()
    for model, outputs in ANSWERS.items():
        rows = [{"instruction": f"q{i}", "output": text} for i, text in enumerate(outputs)]
        (logs / f"{model}.json").write_text(json.dumps(rows[::-1] if model == "terse" else rows))
    run_embed(rows_from_answer_logs([logs]), embedder="stylometry", out=tmp_path / "v.npz",
              cache_path=tmp_path / "cache.sqlite", progress=False)
    saved = np.load(tmp_path / "v.npz")
    assert set(saved["probe_id"]) == {""}
    by_model = {
        name: list(saved["prompt_sha256"][saved["model"] == name]) for name in ANSWERS
    }
    assert len(set(by_model["eager"])) == 3
    assert by_model["terse"] == by_model["eager"][::-1]


def test_embed_rejects_bad_output_and_embedder(tmp_path: Path) -> None:
    rows = rows_from_answer_logs([write_logs(tmp_path / "logs")])
    with pytest.raises(InputError, match=r"\.npz"):
        run_embed(rows, embedder="stylometry", out=tmp_path / "v.csv")
    with pytest.raises(InputError, match="did you mean 'stylometry'"):
        run_embed(rows, embedder="stylometri", out=tmp_path / "v.npz", cache_path=tmp_path / "c")
    with pytest.raises(InputError, match="no such file"):
        rows_from_answer_logs([tmp_path / "missing"])


def test_rows_from_store(tmp_path: Path) -> None:
    from distillprint.store import ProbeContext, ResponseStore

    path = tmp_path / "store.sqlite"
    with ResponseStore(path) as store:
        for index, text in enumerate(["Certainly!", "Sure!"]):
            request = GenerationRequest(
                messages=(ChatMessage("user", f"q{index}"),),
                params=SamplingParams(),
                probe_id=f"p{index}",
            )
            store.add(
                ModelIdentity("file", "m1"), request, Generation(text), ProbeContext("s", "1", {})
            )
    rows = rows_from_store(path)
    assert [(row.model, row.text, row.probe_id) for row in rows] == [
        ("file:m1", "Certainly!", "p0"),
        ("file:m1", "Sure!", "p1"),
    ]
    with pytest.raises(InputError, match="no such distillprint response store"):
        rows_from_store(tmp_path / "none.sqlite")
    # a second revision under the same label is another model, not more answers of the first
    with ResponseStore(path) as store:
        request = GenerationRequest(messages=(ChatMessage("user", "q0"),),
                                    params=SamplingParams(), probe_id="p0")
        store.add(ModelIdentity("file", "m1", "v2"), request, Generation("Hi"),
                  ProbeContext("s", "1", {}))
    assert sorted({row.model for row in rows_from_store(path)}) == [
        "file:m1 (revision none)", "file:m1 (revision v2)"]


def test_answer_logs_are_named_by_their_files_as_in_the_benchmarks(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    rows = [{"instruction": "p", "output": "an answer", "generator": "vendor/long-name-v2"}]
    (logs / "short-name.json").write_text(json.dumps(rows))
    assert {row.model for row in rows_from_answer_logs([logs])} == {"short-name"}
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "short-name.json").write_text(json.dumps([{**rows[0], "output": "another"}]))
    with pytest.raises(InputError, match="two answer files with different answers"):
        rows_from_answer_logs([logs, copy])


def test_an_unusable_device_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    import torch

    rows = rows_from_answer_logs([write_logs(tmp_path / "logs")])
    with pytest.raises(InputError, match="not a torch device") as bad:
        run_embed(rows, embedder="minilm", out=tmp_path / "v.npz", device="gpu0")
    assert bad.value.field == "device"
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, none on a CPU host
    with pytest.raises(InputError, match="not available on this machine"):
        run_embed(rows, embedder="minilm", out=tmp_path / "v.npz", device=missing)
