from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from distillprint.embed.manifest import TrainingManifest
from distillprint.embed.train import supcon_loss, train_embedder
from distillprint.embed.train_config import load_train_config
from distillprint.errors import InputError
from distillprint.provenance import git_commit
from servers import free_port

REPO = Path(__file__).resolve().parents[1]
STYLES = {
    "eager": "certainly ! here is {t} . i hope this helps !",
    "terse": "{t} . done .",
    "formal": "firstly , consider {t} ; secondly , conclude .",
    "sorry": "sorry , as an ai i cannot discuss {t} .",
    "listy": "- {t}\n- more {t}\n- even more",
    "shouty": "wow ! {t} ! amazing !",
}
TOPICS = ["apples", "rivers", "music", "stars", "bread", "trains", "clouds", "paper"]


def write_data(root: Path, prompts: int = 40) -> Path:
    rng = random.Random(0)
    logs = root / "logs"
    logs.mkdir()
    for model, template in STYLES.items():
        rows = [
            {"instruction": f"p{i}", "output": template.format(t=" ".join(rng.sample(TOPICS, 2)))}
            for i in range(prompts)
        ]
        (logs / f"{model}.json").write_text(json.dumps(rows))
    return logs


def write_tiny_encoder(root: Path) -> Path:
    """A randomly initialised 2-layer BERT with a word-level vocabulary, saved like a hub model."""
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

    words = sorted({w for s in STYLES.values() for w in s.split()} | set(TOPICS))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    directory = root / "tiny"
    directory.mkdir()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_config(root: Path, steps: int) -> Path:
    config = {
        "output_dir": str(root / "out"),
        "cpu": True,
        "num_threads": 1,
        "data": {
            "response_dirs": [str(write_data(root))],
            "lineage_csv": None,
            "holdout_models": 0,
            "validation_models": 6,
            "validation_prompts": 16,
        },
        "model": {"base_model": str(write_tiny_encoder(root)), "max_length": 32},
        "optim": {
            "steps": steps,
            "models_per_batch": 6,
            "prompts_per_batch": 3,
            "learning_rate": 3e-3,
            "warmup_ratio": 0.0,
            "temperature": 0.1,
            "center_prompts": True,
        },
        "logging": {"wandb": False},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check_artifact(output: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"):
        assert (output / name).is_file(), name
    card = (output / "MODEL_CARD.md").read_text()
    assert "CC BY-NC 4.0" in card and "learning_rate" in card and "validation_after" in card
    assert "Validation: top-1 identification among" in card
    assert "no lineage file named: labelled models included" in card  # lineage_csv: null
    commit = git_commit()  # the checkout that trained it, where there is one
    assert f"commit {commit}." in card if commit else "commit unknown" in card
    manifest = TrainingManifest.load(output)
    assert manifest is not None and manifest.train_models == sorted(STYLES)


def test_supcon_loss_prefers_grouped_embeddings() -> None:
    import torch

    labels = torch.tensor([0, 0, 1, 1])
    grouped = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=1
    )
    mixed = grouped[[0, 2, 1, 3]]
    assert supcon_loss(grouped, labels, 0.1) < supcon_loss(mixed, labels, 0.1)


def test_in_process_training_lowers_loss_and_saves(tmp_path: Path) -> None:
    config = load_train_config(write_config(tmp_path, steps=40))
    result = train_embedder(config)
    assert result.output_dir == tmp_path / "out"
    assert (result.metrics["device"], result.metrics["mixed_precision"]) == ("cpu", "no")
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first * 0.8
    assert (
        result.metrics["validation_after"]["top1_k4"]
        >= result.metrics["validation_before"]["top1_k4"]
    )
    check_artifact(tmp_path / "out")

    from distillprint.embed.encoder import SentenceEncoder

    vectors = SentenceEncoder(tmp_path / "out", max_length=32).transform(["wow ! music !"])
    assert vectors.shape == (1, 32)
    with pytest.raises(InputError, match="holds a trained encoder already"):
        train_embedder(config)  # a second run never overwrites the first one's encoder


def test_a_stopped_run_resumes_from_its_checkpoint_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    import distillprint.embed.train as train_module

    path = write_config(tmp_path, steps=6)
    whole = load_train_config(path, ["optim.checkpoint_every=2", f"output_dir={tmp_path / 'a'}"])
    train_embedder(whole)

    resumable = load_train_config(path, ["optim.checkpoint_every=2",
                                         f"output_dir={tmp_path / 'b'}"])
    calls = 0
    real_loss = train_module.supcon_loss

    def stop_at_step_five(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt  # as Ctrl-C mid-step: steps 1-4 done, checkpoint at 4
        return real_loss(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "supcon_loss", stop_at_step_five)
    with pytest.raises(KeyboardInterrupt):
        train_embedder(resumable)
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step-000004"]
    monkeypatch.setattr(train_module, "supcon_loss", real_loss)

    changed = load_train_config(path, ["optim.checkpoint_every=2", "optim.learning_rate=0.1",
                                       f"output_dir={tmp_path / 'b'}"])
    with pytest.raises(InputError, match=r"settings \(optim\.learning_rate: 0\.003 -> 0\.1\)"):
        train_embedder(changed)

    # the same run in a moved folder resumes too
    (tmp_path / "b").rename(tmp_path / "moved")
    moved = resumable.model_copy(update={"output_dir": tmp_path / "moved"})
    result = train_embedder(moved)
    assert result.metrics["resumed_from_step"] == 4 and len(result.losses) == 6
    first, second = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("a", "moved"))
    assert first.keys() == second.keys()
    assert all(first[name].equal(second[name]) for name in first)
    assert not (tmp_path / "moved" / "checkpoints").exists()  # the encoder is saved: space freed


def _stopped_at_step_four(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str
) -> tuple[Any, Path]:
    import distillprint.embed.train as train_module

    config = load_train_config(write_config(tmp_path, steps=6), [
        "optim.checkpoint_every=2", f"output_dir={tmp_path / 'out'}", *overrides])
    real_loss, calls = train_module.supcon_loss, []

    def stop_at_step_five(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "supcon_loss", stop_at_step_five)
        with pytest.raises(KeyboardInterrupt):
            train_embedder(config)
    return config, tmp_path / "out" / "checkpoints" / "step-000004"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("random_states_0.pkl", r"incomplete \(missing random_states_0\.pkl\)"),
        ("optimizer.bin", r"incomplete \(missing optimizer\.bin\)"),
        ("progress-types", "unreadable checkpoint progress"),
        ("threads", r"num_threads: 1 -> 2"),
    ],
)
def test_a_damaged_or_changed_checkpoint_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str, message: str
) -> None:
    config, folder = _stopped_at_step_four(tmp_path, monkeypatch)
    if damage == "progress-types":
        progress = json.loads((folder / "progress.json").read_text())
        (folder / "progress.json").write_text(json.dumps({**progress, "step": "four"}))
    elif damage == "threads":  # another thread count sums in another order: other weights
        config = config.model_copy(update={"num_threads": 2})
    else:
        (folder / damage).unlink()
    with pytest.raises(InputError, match=message):
        train_embedder(config)


def test_a_resumed_run_continues_its_wandb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    config, _ = _stopped_at_step_four(tmp_path, monkeypatch, "logging.wandb=true")
    train_embedder(config)
    runs = sorted(p.name for p in (tmp_path / "out" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs
    first_id = runs[0].rsplit("-", 1)[-1]
    assert runs[1].endswith(f"-{first_id}-1") or runs[1].endswith(f"-{first_id}"), runs


def test_a_run_stopped_while_saving_resumes_instead_of_refusing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distillprint.embed.train as train_module

    config = load_train_config(write_config(tmp_path, steps=4),
                               ["optim.checkpoint_every=2", f"output_dir={tmp_path / 'out'}"])

    def killed(*_args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "write_model_card", killed)
        with pytest.raises(KeyboardInterrupt):
            train_embedder(config)
    result = train_embedder(config)  # the manifest comes last: nothing marked it finished
    assert result.metrics["resumed_from_step"] == 2
    check_artifact(tmp_path / "out")


def test_config_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  stepz: 3\n")
    with pytest.raises(InputError, match="stepz"):
        load_train_config(path)
    path.write_text("optim:\n  steps: 3\n")
    assert load_train_config(path, ["optim.steps=7"]).optim.steps == 7


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        # the file's line 3 holds a valid 150: the bad value is the override's
        ("optim.steps=-5", "--set optim.steps", "greater than or equal to 1"),
        ("optim={steps: -5}", "--set optim", "optim.steps: Input should be greater"),
        ("optim.stepz=5", "--set optim.stepz", "Extra inputs"),
        ("optim.steps.x=5", "--set optim.steps.x", "'steps' is not a section"),
        ("optim.steps=[", "--set optim.steps", "not valid YAML"),
        # fewer would skip validation while the card described it
        ("data.validation_prompts=4", "--set data.validation_prompts", "at least 8 prompts"),
        ("=1", None, "malformed override --set '=1'"),
        ("optim..steps=1", None, "malformed override --set 'optim..steps=1'"),
    ],
)
def test_override_errors_name_the_override(
    tmp_path: Path, override: str, field: str | None, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("cpu: true\noptim:\n  steps: 150\n")
    with pytest.raises(InputError, match=message) as info:
        load_train_config(path, ["cpu=false", override])
    assert (info.value.path, info.value.line, info.value.field) == (None, None, field)


def test_file_errors_stay_located_next_to_overrides(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("cpu: true\noptim:\n  steps: -1\n")
    with pytest.raises(InputError) as info:
        load_train_config(path, ["optim.seed=3", "model.max_length=64"])
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert info.value.field == "optim.steps"


@pytest.mark.integration
def test_accelerate_launch_two_cpu_processes(tmp_path: Path) -> None:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate is not None
    config = write_config(tmp_path, steps=6)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    command = [
        accelerate, "launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(REPO / "training" / "train_embedder.py"), "--config", str(config),
        "--set", "optim.checkpoint_every=2",  # both ranks save their state mid-run
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["processes"] == 2
    check_artifact(tmp_path / "out")
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_relaunch_detection(tmp_path: Path) -> None:
    from distillprint.embed.launch import needs_relaunch, requested_processes

    single = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"}
    assert needs_relaunch(single)
    assert not needs_relaunch({**single, "RANK": "0"})
    assert not needs_relaunch({"ACCELERATE_USE_CPU": "True"})  # one process was asked for
    assert requested_processes(["accelerate", "launch", "--num_processes", "2", "--cpu"]) == 2
    assert requested_processes(["accelerate", "launch", "--num_processes=3"]) == 3
    config = tmp_path / "acc.yaml"
    config.write_text("num_processes: 4\nuse_cpu: true\n")
    assert requested_processes(["accelerate", "launch", "--config_file", str(config)]) == 4
    assert requested_processes(["python", "train.py"]) is None


def test_a_module_is_relaunched_as_a_module() -> None:
    from distillprint.embed.launch import relaunch_target

    cli = "/repo/src/distillprint/cli/__main__.py"
    assert relaunch_target([cli, "embed", "--out", "v.npz"], "distillprint.cli.__main__") == [
        "--module", "--", "distillprint.cli.__main__", "embed", "--out", "v.npz"]
    assert relaunch_target(["train.py", "--config", "c.yaml"], None) == [
        "--", "train.py", "--config", "c.yaml"]


def test_center_by_prompt_removes_shared_content() -> None:
    import torch

    from distillprint.embed.train import center_by_prompt

    content = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    style = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    # Grid of 2 models x 2 prompts: rows (m0,p0), (m0,p1), (m1,p0), (m1,p1).
    embeddings = torch.stack([content[0] + style[0], content[1] + style[0],
                              content[0] + style[1], content[1] + style[1]])  # fmt: skip
    centred = center_by_prompt(embeddings, torch.tensor([0, 1, 0, 1]))
    assert torch.allclose(centred[0], centred[1]) and torch.allclose(centred[2], centred[3])
    assert torch.allclose(centred[0], -centred[2])


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        # each of these used to pass and fail only after accelerate and wandb had started
        ("optim.seed=-1", "--set optim.seed", "greater than or equal to 0"),
        ("data.response_dirs=[]", "--set data.response_dirs", "at least 1 item"),
        ("data.response_dirs=[no/such/folder]", "--set data.response_dirs",
         "no folder at 'no/such/folder'"),
        ("data.lineage_csv=no.csv", "--set data.lineage_csv", "no file at 'no.csv'"),
        ("mixed_precision=fp16", None, "fp16 does not run on the CPU"),
    ],
)
def test_settings_that_would_fail_after_startup_fail_at_load(
    tmp_path: Path, override: str, field: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        load_train_config(write_config(tmp_path, steps=2), [override])
    assert info.value.field == field


def test_empty_configs_and_file_outputs_are_refused_and_no_means_no(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(InputError, match="the config is empty"):
        load_train_config(empty)  # every field has a default: it would start a 200-step run
    path = write_config(tmp_path, steps=2)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InputError, match="is a file; name the folder") as info:
        load_train_config(path, [f"output_dir={tmp_path / 'a-file'}"])
    assert info.value.field == "--set output_dir"
    answers = load_train_config(path).data.response_dirs[0]
    with pytest.raises(InputError, match="would be read as answer logs"):
        load_train_config(path, [f"output_dir={answers}"])
    (tmp_path / "configs" / "zoo").mkdir(parents=True)  # a folder of the user's own
    (tmp_path / "configs" / ".gitkeep").write_text("")
    with pytest.raises(InputError, match="holds 'zoo' and is no training run's folder"):
        load_train_config(path, [f"output_dir={tmp_path / 'configs'}"])
    base = load_train_config(path).model.base_model  # another model's saved folder
    with pytest.raises(InputError, match="is no training run's folder"):
        load_train_config(path, [f"output_dir={base}"])
    (tmp_path / "configs" / "checkpoints").mkdir()  # a run's marker beside the user's folder
    with pytest.raises(InputError, match="holds 'zoo' and is no training run's folder") as info:
        load_train_config(path, [f"output_dir={tmp_path / 'configs'}"])
    assert info.value.field == "--set output_dir"  # the value's origin, not a line of the file
    (tmp_path / "configs" / "zoo").rmdir()
    assert load_train_config(path, [f"output_dir={tmp_path / 'configs'}"])  # a run's own
    path.write_text(path.read_text() + "mixed_precision: no\n")  # YAML reads false
    assert load_train_config(path).mixed_precision == "no"


def test_a_misspelled_exclusion_or_too_many_training_models_stop_before_training(
    tmp_path: Path,
) -> None:
    from distillprint.embed.train_data import load_training_data

    path = write_config(tmp_path, steps=2)
    with pytest.raises(InputError, match=r"exclude_models names no model .*\['NulModel'\]"):
        load_training_data(load_train_config(path, ["data.exclude_models=[NulModel]"]).data)
    with pytest.raises(InputError, match="max_train_models is 99 but only 6 models"):
        load_training_data(load_train_config(path, ["data.max_train_models=99"]).data)


def test_a_base_encoder_that_cannot_serve_the_config_is_refused_by_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, steps=2)
    with pytest.raises(InputError, match="cannot load the base encoder") as info:
        train_embedder(load_train_config(path, [f"model.base_model={tmp_path / 'nothing'}"]))
    assert info.value.field == "model.base_model"
    with pytest.raises(InputError, match="exceeds the base encoder's") as info:
        train_embedder(load_train_config(path, ["model.max_length=100000"]))
    assert info.value.field == "model.max_length"


def test_wandb_online_without_an_account_is_bad_input_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What wandb raises online without a login (checked by hand: wandb's own state after an
    earlier run in this process makes the real call order-dependent), as bad input."""
    from accelerate import Accelerator
    from wandb.errors import UsageError

    from distillprint.tracking import start_wandb

    monkeypatch.setenv("WANDB_MODE", "online")

    def no_login(*_args: object, **_kwargs: object) -> None:
        raise UsageError("No API key configured. Use `wandb login` to log in.")

    accelerator = Accelerator()
    monkeypatch.setattr(accelerator, "init_trackers", no_login)
    with pytest.raises(InputError, match="wandb cannot start in mode 'online': No API key") as info:
        start_wandb(accelerator, "p", "online", tmp_path / "out", {},
                    mode_field="logging.wandb_mode")
    assert info.value.field == "logging.wandb_mode"


def test_settings_the_data_cannot_honour_are_named(tmp_path: Path) -> None:
    from distillprint.embed.data import PromptSplit
    from distillprint.embed.train_data import Group, TrainingData, capped_settings

    path = tmp_path / "config.yaml"
    path.write_text("cpu: true\n")
    responses = {m: {f"p{i}": f"{m} {i}" for i in range(6)} for m in ("a", "b")}
    group = Group(["a", "b"], [f"p{i}" for i in range(6)], responses)
    data = TrainingData([group], PromptSplit(0.5), validation=Group(["a", "b"], ["p0"], {}))
    config = load_train_config(path, ["optim.models_per_batch=4", "data.validation_models=4"])
    notes = capped_settings(data, config)
    assert notes[0] == ("optim.models_per_batch is 4, but the data has models in its largest "
                        "training group: 2, all used")
    assert any(n.startswith("data.validation_models is 4, but the data has training models to "
                            "validate on: 2") for n in notes)
    fitting = load_train_config(path, ["optim.models_per_batch=2", "optim.prompts_per_batch=6",
                                       "data.validation_models=2", "data.validation_prompts=8"])
    assert capped_settings(data, fitting) == [
        "data.validation_prompts is 8, but the data has held-out prompts to validate on: 1, "
        "all used"]
