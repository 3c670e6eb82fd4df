from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from distillprint.bench.metrics import wilson_interval
from distillprint.embed.combined import CombinedEmbedder, View
from distillprint.embed.data import PromptSplit
from distillprint.embed.identify import (
    SelectionOptions,
    Variant,
    identify,
    make_draws,
    run_identify_benchmark,
    select_benchmark_set,
)
from distillprint.embed.manifest import TrainingManifest
from distillprint.embed.stylometry import StylometricFeatures
from distillprint.errors import InputError

STYLES = {
    "eager": "Certainly! {topic} is great.\n\n- point one\n- point two\n\nI hope this helps!",
    "terse": "{topic}. Done.",
    "formal": "## {topic}\n\n1. First, consider the matter.\n2. Then, conclude; it may vary.",
    "sorry": "I'm sorry, but as an AI language model I cannot discuss {topic} in depth.",
}


def write_logs(directory: Path, prompts: int = 60) -> None:
    rng = random.Random(0)
    directory.mkdir()
    for model, template in STYLES.items():
        rows = []
        for index in range(prompts):
            topic = f"Topic {index} " + " ".join(rng.choice(["x", "yy", "zzz"]) for _ in range(3))
            rows.append({"instruction": f"prompt {index}", "output": template.format(topic=topic)})
        (directory / f"{model}.json").write_text(json.dumps(rows))


def test_identify_on_separable_vectors() -> None:
    rng = np.random.default_rng(0)
    models = ["a", "b", "c"]
    centres = {m: rng.normal(size=8) for m in models}
    reference = {m: (centres[m] + rng.normal(size=(20, 8))).astype(np.float32) for m in models}
    query = {m: (centres[m] + rng.normal(size=(20, 8))).astype(np.float32) for m in models}
    draws = make_draws(20, (1, 8), trials=30, seed=0)
    results = identify(models, reference, query, draws, "global")
    assert results[8].accuracy > results[1].accuracy
    assert results[8].accuracy > 0.9
    assert results[1].trials == 60 and results[8].trials == 90
    # 90 draws of 3 models: the interval is as wide as 3 trials allow, not 90
    assert results[8].ci95 == pytest.approx(wilson_interval(results[8].accuracy * 3, 3))


def test_prompt_centering_removes_shared_content() -> None:
    # Every model's query vectors carry a big shift (other prompts' content) absent from the
    # reference half: only prompt centring survives it.
    rng = np.random.default_rng(1)
    models = ["a", "b", "c", "d"]
    style = {m: rng.normal(scale=0.3, size=16) for m in models}
    shift = rng.normal(scale=5.0, size=(20, 16))
    reference = {m: (style[m] + rng.normal(size=(20, 16))).astype(np.float32) for m in models}
    query = {m: (style[m] + shift + rng.normal(size=(20, 16))).astype(np.float32) for m in models}
    draws = make_draws(20, (8,), trials=40, seed=0)
    prompt = identify(models, reference, query, draws, "prompt")[8].accuracy
    raw = identify(models, reference, query, draws, "none")[8].accuracy
    assert prompt > raw + 0.3


def test_draws_and_interval() -> None:
    draws = make_draws(10, (1, 4), trials=5, seed=3)
    assert draws[1].shape == (10, 1) and draws[4].shape == (5, 4)
    assert all(len(set(row)) == 4 for row in draws[4].tolist())
    with pytest.raises(InputError):
        make_draws(3, (4,), trials=2, seed=0)
    low, high = wilson_interval(95, 100)
    assert low < 0.95 < high and high <= 1.0


def test_selection_leaves_out_trained_models_and_prompts(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs")
    manifest = TrainingManifest("base", ["eager"], PromptSplit(0.3, salt="other"))
    options = SelectionOptions(models=3, prompts=10, prompt_split=PromptSplit(0.2))
    data = select_benchmark_set([tmp_path / "logs"], options, [manifest])
    assert data.models == ["formal", "sorry", "terse"]
    used = data.reference_prompts + data.query_prompts
    assert len(used) == 10 and not set(data.reference_prompts) & set(data.query_prompts)
    assert not any(PromptSplit(0.2).is_train(p) or manifest.prompt_split.is_train(p) for p in used)
    with pytest.raises(InputError, match="untrained models"):
        select_benchmark_set([tmp_path / "logs"], SelectionOptions(models=4), [manifest])


def test_benchmark_end_to_end_with_stylometry(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs")
    style = CombinedEmbedder([View(StylometricFeatures(), scaling="standard")], name="stylo")
    report = run_identify_benchmark(
        [tmp_path / "logs"],
        variants=[Variant("stylometry", style)],
        models=4,
        prompts=24,
        ks=(1, 4),
        trials=10,
    )
    result = report["results"]["stylometry"]
    assert report["n_models"] == 4 and report["query_prompts_per_model"] == 12
    assert result["prompt"]["accuracy"]["4"] == 1.0
    assert set(result) >= {"prompt", "global", "none", "version", "dim"}
    json.dumps(report)  # JSON-serialisable as written


def test_selection_can_leave_out_lineage_models(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs")
    lineage = tmp_path / "lineage.csv"
    lineage.write_text("teacher,suspect,relation,label\nsorry,terse,primary,1\n")
    options = SelectionOptions(models=2, prompts=10, exclude_lineage=lineage)
    data = select_benchmark_set([tmp_path / "logs"], options)
    assert data.models == ["eager", "formal"]


def test_unasked_sizes_use_what_a_small_folder_has(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs")
    manifest = TrainingManifest("base", ["eager"], PromptSplit(0.3, salt="other"))
    data = select_benchmark_set([tmp_path / "logs"], SelectionOptions(), [manifest])
    assert data.models == ["formal", "sorry", "terse"]  # every untrained model, fewer than 32
    usable = len(data.reference_prompts) + len(data.query_prompts)
    assert 0 < usable < 256
    with pytest.raises(InputError, match="held-out prompts shared"):
        select_benchmark_set([tmp_path / "logs"], SelectionOptions(prompts=usable + 1), [manifest])
    lone = TrainingManifest("base", ["eager", "formal", "sorry"], PromptSplit(0.3, salt="other"))
    with pytest.raises(InputError, match="only 1 untrained models available, 2 needed"):
        select_benchmark_set([tmp_path / "logs"], SelectionOptions(), [lone])


@pytest.mark.integration
def test_identify_command_on_short_answers_with_the_packaged_encoder(tmp_path: Path) -> None:
    """Every variant side by side through the CLI; no answer fills the encoder's window, so
    the speed test is skipped with a reason instead of dividing by zero."""
    from typer.testing import CliRunner

    from distillprint.cli import app

    write_logs(tmp_path / "logs", prompts=16)
    out = tmp_path / "identify.json"
    runner = CliRunner()
    one = runner.invoke(app, ["benchmark", "identify", "--responses", str(tmp_path / "logs"),
                              "--out", str(out), "--models", "1"])
    assert one.exit_code == 2 and not out.exists()  # one candidate identifies trivially
    lineage = tmp_path / "lineage.csv"  # a labelled model is left out of identification
    lineage.write_text("teacher,suspect,relation,label\neager,sorry,primary,1\n")
    result = runner.invoke(app, ["benchmark", "identify", "--responses", str(tmp_path / "logs"),
                                 "--out", str(out), "--k", "1", "--k", "4", "--prompts", "8",
                                 "--exclude-lineage", str(lineage)],
                           env={"DISTILLPRINT_CACHE_DIR": str(tmp_path / "cache")})
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(out.read_text())
    assert sorted(report["models"]) == ["formal", "terse"]
    assert (report["reference_prompts_per_model"], report["query_prompts_per_model"]) == (4, 4)
    assert set(report["results"]) == {"tfidf", "minilm-base", "stylometry+pos", "combined"}
    assert "skipped" in report["throughput"]
    assert report["command"].startswith("distillprint ")
    assert report["git_commit"] is None or len(report["git_commit"]) == 40


def test_a_missing_finetuned_folder_says_how_to_make_one(tmp_path: Path) -> None:
    from distillprint.embed.identify_command import IdentifyOptions, standard_variants

    missing = tmp_path / "artifacts" / "embedder" / "cpu-small"
    with pytest.raises(InputError, match="train the encoder first") as info:
        standard_variants(IdentifyOptions(finetuned=missing))
    assert info.value.field == "finetuned" and str(missing) in str(info.value)


def test_unit_mean_norm_evens_out_views_and_keeps_each_rows_length() -> None:
    import numpy as np

    from distillprint.embed.base import unit_mean_norm

    small = np.array([[3.0, 4.0], [0.0, 10.0]])  # lengths 5 and 10
    scaled = unit_mean_norm(small)
    lengths = np.linalg.norm(scaled, axis=1)
    assert np.allclose(lengths.mean(), 1.0) and np.allclose(lengths[1] / lengths[0], 2.0)
    assert np.allclose(unit_mean_norm(1000 * small), scaled)
