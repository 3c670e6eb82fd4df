"""A miniature zoo end to end: tiny in-code base model, an echo teacher and a logged teacher,
real LoRA fine-tuning under accelerate for a few steps, live probing into a real store."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("peft")

from rich.console import Console

from distillprint.answers import load_answer_log
from distillprint.errors import InputError
from distillprint.packaged_data import TextPair
from distillprint.score.pairs import read_pairs_csv
from distillprint.store import ResponseStore
from distillprint.zoo.build import build_zoo
from distillprint.zoo.config import (
    PromptPoolConfig,
    ZooModelConfig,
    load_zoo_config,
)
from distillprint.zoo.examples import ExampleSources, model_examples
from distillprint.zoo.prompts import prompt_id, select_prompts
from tiny_models import byte_tokenizer, random_llama, save_model

REPO = Path(__file__).resolve().parents[1]

TOPICS = ["rivers", "compilers", "gardens", "violins", "glaciers", "markets", "bridges",
          "comets", "orchards", "lighthouses", "deserts", "printing presses"]


def _sharegpt_file(path: Path) -> Path:
    conversations = [
        {"id": str(i), "conversations": [
            {"from": "human", "value": f"Explain how {topic} work, briefly please."},
            {"from": "gpt", "value": f"Certainly! Here is an overview of {topic}: they are "
                                     f"fascinating, and there are several key points to know."},
        ]}
        for i, topic in enumerate(TOPICS)
    ]
    path.write_text(json.dumps(conversations))
    return path


def _other_models_log(path: Path) -> Path:
    rows = [{"prompt": f"Describe {topic} in one line.", "response": f"{topic}: a short, "
             f"plain description written by another model."} for topic in TOPICS]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def _probe_set(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"name": "mini", "version": "1.0.0", "probes": [
        {"id": "who", "category": "identity", "prompt": "Who are you?", "rationale": "name"},
        {"id": "num", "category": "random", "prompt": "Pick a number.", "rationale": "rng"},
    ]}))
    return path


@pytest.fixture
def mini_config(tmp_path: Path) -> Path:
    tokenizer = byte_tokenizer(None)  # a base model: no chat template, like Gemma-3-270M
    base = save_model(tmp_path / "base", tokenizer, random_llama(tokenizer))
    config = {
        "name": "mini", "base": f"hf:{base}",
        "work_dir": str(tmp_path / "work"), "out_dir": str(tmp_path / "out"),
        "prompts": {"distillation_prompts": 6, "heldout_prompts": 3, "max_prompt_chars": 200,
                    "min_answer_chars": 20, "sharegpt_file": str(_sharegpt_file(
                        tmp_path / "sharegpt.json"))},
        "teachers": [{"name": "teacher-a", "model": "echo:teacher-a"},
                     {"name": "chatgpt", "model": "sharegpt"}],
        "paraphraser": "echo:paraphraser",
        "generation": {"max_tokens": 8, "batch_size": 4},
        "probing": {"probe_set": str(_probe_set(tmp_path / "probes.yaml")), "max_tokens": 4,
                    "batch_size": 8},
        "training": {"batch_size": 2, "max_steps": 2, "max_prompt_tokens": 48,
                     "max_answer_tokens": 16, "lora_r": 2, "lora_alpha": 4,
                     "target_modules": ["q_proj", "v_proj"], "wandb_mode": "offline"},
        "models": [
            {"name": "student-a", "role": "student", "teacher": "teacher-a",
             "relation": "distilled"},
            {"name": "student-gpt-para", "role": "student", "teacher": "chatgpt",
             "paraphrase": True, "relation": "paraphrased"},
            {"name": "base", "role": "control", "train": False, "relation": "base_untouched"},
            {"name": "bg", "role": "background", "teacher": "teacher-a", "share": 0.5},
            {"name": "bg-log", "role": "background", "human_examples": 3,
             "answer_log": str(_other_models_log(tmp_path / "other.jsonl"))},
        ],
    }
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_mini_zoo_builds_probes_and_resumes(mini_config: Path) -> None:
    config = load_zoo_config(mini_config)
    manifest = build_zoo(config, Console(quiet=True))
    responses = config.out_dir / "responses"
    names = {"teacher-a", "chatgpt", "student-a", "student-gpt-para", "base", "bg", "bg-log"}
    assert {p.stem for p in responses.glob("*.jsonl")} == names
    # every live model answered the probe set and the held-out ShareGPT slice; the logged
    # teacher only the held-out slice, cut to the probing budget
    assert len(load_answer_log(responses / "student-a.jsonl").records) == 2 + 3
    chatgpt = load_answer_log(responses / "chatgpt.jsonl").records
    assert len(chatgpt) == 3 and all(len(r.response) < 80 for r in chatgpt)
    pairs = read_pairs_csv(config.out_dir / "pairs.csv")
    truth = {(p.teacher, p.suspect): (p.relation, p.label) for p in pairs}
    assert truth[("teacher-a", "student-a")] == ("distilled", 1)
    assert truth[("chatgpt", "student-a")] == ("other_teacher", 0)
    assert truth[("chatgpt", "student-gpt-para")] == ("paraphrased", 1)
    assert truth[("teacher-a", "base")] == ("base_untouched", 0)
    assert not any("bg" in key for key in truth)  # background models are in no pair
    recipe = manifest["models"]["student-a"]
    assert recipe["examples"] == 6 and len(recipe["data_sha256"]) == 64
    assert recipe["metrics"]["steps"] == 2 and recipe["metrics"]["first_loss"] > 0
    assert (recipe["metrics"]["device"], recipe["metrics"]["mixed_precision"]) == ("cpu", "no")
    assert manifest["models"]["bg"]["examples"] == 3  # half the teacher's answers
    assert manifest["models"]["bg-log"]["examples"] == 3
    assert manifest["models"]["bg-log"]["sources"] == [f"log:{config.models[-1].answer_log}"]

    # training metrics go to a wandb offline run per student, named after it
    runs = list((config.work_dir / "models" / "student-a").rglob("run-*.wandb"))
    assert len(runs) == 1, runs

    weights = config.work_dir / "models" / "student-a" / "model.safetensors"
    trained_at = weights.stat().st_mtime_ns
    with ResponseStore(config.work_dir / "store.sqlite") as store:
        stored = store.count()
    (responses / "removed-model.jsonl").write_text((responses / "bg.jsonl").read_text())
    said = Console(record=True, width=400)
    build_zoo(config, said)  # unchanged recipe: nothing retrained or re-asked
    assert weights.stat().st_mtime_ns == trained_at
    assert "also holds removed-model.jsonl, of models not in this recipe" in said.export_text()
    with ResponseStore(config.work_dir / "store.sqlite") as store:
        assert store.count() == stored
    rows = list(csv.DictReader((config.out_dir / "pairs.csv").open()))
    assert len(rows) == 2 * 3


def test_mixture_keeps_size_and_swaps_in_human_replies() -> None:
    pool = [TextPair(f"prompt {i}", f"answer {i}") for i in range(10)]
    answers = {"t": {prompt_id("pool", p.prompt): f"teacher says {i}" for i, p in
                     enumerate(pool)}}
    human = {"chitchat": [TextPair(f"hi {i}", f"human reply {i}") for i in range(20)]}
    sources = ExampleSources(pool, answers, human)
    mixed = model_examples(ZooModelConfig(name="m", role="student", teacher="t",
                                          teacher_fraction=0.3, human="chitchat"), sources)
    assert len(mixed) == 10
    assert sum(e.source == "t" for e in mixed) == 3
    assert sum(e.source == "chitchat" for e in mixed) == 7


def test_recipe_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nteachers:\n  - {name: t, model: 'echo:t'}\nmodels:\n"
                    "  - {name: s, role: student, teacher: nobody}\n")
    with pytest.raises(InputError, match="nobody") as caught:
        load_zoo_config(path)
    assert Path(caught.value.path) == path
    assert caught.value.line == 5 and caught.value.field == "models[0].teacher"


RECIPE = """\
name: x
base: packaged:gemma3-270m
paraphraser: echo:p
teachers:
  - {name: t, model: 'echo:t'}
models:
  - {name: s, role: student, teacher: t}
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        # a list where a name belongs: once a TypeError traceback from the reference check
        ("{name: t,", "{name: [t],", 5, "teachers.0.name", "valid string"),
        ("teacher: t}", "teacher: [t]}", 7, "models.0.teacher", "valid string"),
        # malformed specs fail at load, not after hours of teacher collection
        ("packaged:gemma3-270m", "nonsense", 2, "base", "unknown model spec 'nonsense'"),
        ("packaged:gemma3-270m", "echo:b", 2, "base", "must be a local model"),
        ("'echo:t'", "'packaged-t'", 5, "teachers.0.model", "unknown model spec 'packaged-t'"),
        ("echo:p", "ecko:p", 3, "paraphraser", "did you mean 'echo:p'"),
        ("base:", "seed: 1\nseed: 2\nbase:", 3, None, "duplicate key 'seed'"),
        # each of these used to pass and fail (or mislabel) only during the build
        ("packaged:gemma3-270m", "packaged:gemma3-270", 2, "base",
         "did you mean 'gemma3-270m'"),
        ("base:", "device: gpu\nbase:", 2, "device", "should match pattern"),
        ("base:", "probing: {probe_set: core-v2}\nbase:", 2, "probing.probe_set",
         "no probe set named 'core-v2'"),
        ("base:", "seed: -1\nbase:", 2, "seed", "greater than or equal to 0"),
        ("teacher: t}", "teacher: t, train: false}", 7, "models.0",
         "untouched base labelled as distilled"),
        ("role: student, teacher: t}", "role: control, teacher: t, human: wiki}", 7,
         "models.0", "a control names no 'teacher'"),
        # a whole-recipe check has no line of its own: the message names the culprit
        ("teacher: t}", "teacher: t}\n  - {name: t, role: control, human: wiki}", 1, None,
         "\\['t'\\] repeat"),
        ("teacher: t}", "teacher: t}\n  - {name: b, role: background, answer_log: no.json}",
         8, "models.1.answer_log", "no answer log at 'no.json'"),
    ],
)
def test_recipe_type_and_spec_errors_are_located(
    tmp_path: Path, old: str, new: str, line: int, field: str | None, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(RECIPE.replace(old, new, 1))
    with pytest.raises(InputError, match=message) as caught:
        load_zoo_config(path)
    assert (caught.value.path, caught.value.line) == (str(path), line)
    assert caught.value.field == field


@pytest.mark.parametrize("recipe", sorted((REPO / "configs" / "zoo").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_shipped_recipes_load(recipe: Path) -> None:
    config = load_zoo_config(recipe)
    assert config.teachers and config.models


def test_an_unquoted_no_means_no_mixed_precision(tmp_path: Path) -> None:
    path = tmp_path / "zoo.yaml"
    path.write_text(RECIPE + "training: {mixed_precision: no}\n")  # YAML reads it as false
    assert load_zoo_config(path).training.mixed_precision == "no"


def test_a_build_stops_before_any_work_when_a_local_base_model_is_missing(
    tmp_path: Path,
) -> None:
    from rich.console import Console

    path = tmp_path / "zoo.yaml"
    recipe = RECIPE.replace("models:", f"work_dir: {tmp_path / 'work'}\nmodels:")
    path.write_text(re.sub(r"base: .*", f"base: hf:{tmp_path / 'no-such-base'}", recipe, count=1))
    config = load_zoo_config(path)
    with pytest.raises(InputError, match=r"no model at 'hf:.*no-such-base'") as info:
        build_zoo(config, Console(quiet=True))
    assert info.value.field == "base" and not (tmp_path / "work").exists()


def test_a_build_stops_before_any_work_when_its_out_dir_is_a_file(mini_config: Path) -> None:
    from rich.console import Console

    config = load_zoo_config(mini_config)
    taken = mini_config.parent / "taken"
    taken.write_text("a file, not a folder")
    config = config.model_copy(update={"out_dir": taken})
    with pytest.raises(InputError, match="cannot create its folder") as info:
        build_zoo(config, Console(quiet=True))
    assert info.value.field == "out_dir" and not config.work_dir.exists()


def test_a_build_stops_before_any_work_when_a_packaged_model_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from distillprint.models_catalog import PackagedModel
    from distillprint.zoo.build import build_zoo

    path = tmp_path / "zoo.yaml"
    path.write_text(RECIPE.replace("models:", f"work_dir: {tmp_path / 'work'}\nmodels:"))
    config = load_zoo_config(path)
    monkeypatch.setattr(PackagedModel, "is_installed", lambda self: False)
    with pytest.raises(InputError, match=r"\['gemma3-270m'\] are not installed"):
        build_zoo(config, Console(quiet=True))
    assert not (tmp_path / "work").exists()


def test_third_teacher_shares_the_zoos_prompts_and_settings() -> None:
    """Its answers are scored with the zoo's, so everything but its models must match."""
    zoo = load_zoo_config(REPO / "configs" / "zoo" / "cpu-small.yaml")
    third = load_zoo_config(REPO / "configs" / "zoo" / "third-teacher.yaml")
    same = ("seed", "base", "work_dir", "prompts", "generation", "probing", "training")
    assert all(getattr(zoo, name) == getattr(third, name) for name in same)
    assert zoo.teachers == third.teachers[: len(zoo.teachers)]


def _pair(teacher: str, suspect: str, relation: str, label: int, p: float, verdict: str,
          decision: float | None = None) -> dict[str, object]:
    import math

    return {"teacher": teacher, "suspect": suspect, "relation": relation, "label": label,
            "probability": p, "p_value": 0.5, "verdict": verdict,
            "decision": math.log(p / (1 - p)) if decision is None else decision}


def test_variants_are_ranked_by_the_score_where_p_rounds_to_one() -> None:
    from distillprint.zoo.results import variant_table

    result = {"pairs": [_pair("t", "full", "distilled", 1, 1.0, "distilled", decision=41.0),
                        _pair("u", "full", "other_teacher", 0, 1.0, "distilled", decision=37.0)],
              "baselines": {}}
    (plain, *_) = variant_table(result)
    assert plain["distillprint"] == 1.0  # not the 0.5 of a tie at P = 1.0


def test_variant_table_scores_each_kind_of_positive_against_all_negatives() -> None:
    from distillprint.zoo.results import accused_controls, variant_table, zoo_markdown

    result = {
        "pairs": [
            _pair("t", "full", "distilled", 1, 0.9, "distilled"),
            _pair("t", "para", "paraphrased", 1, 0.2, "inconclusive"),
            _pair("t", "base", "base_untouched", 0, 0.3, "inconclusive"),
            _pair("u", "full", "other_teacher", 0, 0.95, "distilled"),
        ],
        "baselines": {"tfidf_cosine": {"pair_scores": [["t", "full", 0.5], ["t", "para", 0.6],
                                                        ["t", "base", 0.1], ["u", "full", 0.2]]}},
    }
    rows = {row["positives"]: row for row in variant_table(result)}
    assert rows["distilled"]["distillprint"] == 0.5  # beats base, loses to the other teacher
    assert rows["paraphrased"]["distillprint"] == 0.0
    assert rows["paraphrased"]["tfidf_cosine"] == 1.0
    assert rows["all positives"]["n_positive"] == 2
    assert [p["suspect"] for p in accused_controls(result)] == ["full"]
    assert "Negative pairs called distilled: 1 of 2" in zoo_markdown(result)


def test_answer_only_loss_equals_the_models_own_loss_per_token() -> None:
    import torch

    from distillprint.zoo.config import TrainingConfig
    from distillprint.zoo.examples import TrainingExample
    from distillprint.zoo.finetune import IGNORE, _collate, answer_loss, encode_example

    tokenizer = byte_tokenizer(None)
    model = random_llama(tokenizer)
    config = TrainingConfig(max_prompt_tokens=40, max_answer_tokens=20)
    encoded = [encode_example(tokenizer, TrainingExample(p, a, "t"), config) for p, a in
               [("What is a river?", "Water that flows."), ("Hi", "Hello there, how are you?")]]
    batched = answer_loss(model, _collate(encoded, tokenizer.pad_token_id)).item()
    total, count = 0.0, 0
    for example in encoded:  # unpadded, full logits, the model's own loss
        labels = torch.tensor([example.labels])
        loss = model(input_ids=torch.tensor([example.input_ids]), labels=labels).loss.item()
        n = int((labels[:, 1:] != IGNORE).sum())
        total, count = total + loss * n, count + n
    assert batched == pytest.approx(total / count, rel=1e-5)


def test_students_train_on_the_format_they_are_probed_with() -> None:
    from distillprint.backends.hf import render_chat, render_plain
    from distillprint.core_types import ChatMessage
    from distillprint.zoo.config import TrainingConfig
    from distillprint.zoo.examples import TrainingExample
    from distillprint.zoo.finetune import IGNORE, encode_example

    template = ("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}[assistant]{% endif %}")
    example = TrainingExample("Who are you?", "A model.", "t")
    config = TrainingConfig(max_prompt_tokens=200, max_answer_tokens=40)
    messages = [ChatMessage("user", example.prompt)]
    plain, templated = byte_tokenizer(None), byte_tokenizer(template)
    for tokenizer, expected in ((plain, render_plain(messages)),
                                (templated, render_chat(templated, messages))):
        encoded = encode_example(tokenizer, example, config)
        prompt_ids = [i for i, label in zip(encoded.input_ids, encoded.labels, strict=True)
                      if label == IGNORE]
        assert tokenizer.decode(prompt_ids, skip_special_tokens=True) == expected
        assert encoded.input_ids[-1] == tokenizer.eos_token_id  # a complete answer stops


def test_extra_distillation_prompts_leave_the_heldout_slice_alone(tmp_path: Path) -> None:
    sharegpt = _sharegpt_file(tmp_path / "sharegpt.json")
    base = PromptPoolConfig(distillation_prompts=4, heldout_prompts=3, min_answer_chars=20,
                            sharegpt_file=sharegpt)
    wider = base.model_copy(update={"extra_distillation_prompts": 5})
    before = select_prompts(base, seed=0, excluded_prompts=[])
    after = select_prompts(wider, seed=0, excluded_prompts=[])
    assert after.heldout == before.heldout and len(after.pool) == 9
    assert after.pool[:4] == before.pool
    assert not {p.prompt for p in after.pool} & {p.prompt for p in after.heldout}
    with pytest.raises(InputError, match="13 wanted"):
        select_prompts(base.model_copy(update={"extra_distillation_prompts": 6}), 0, [])


def test_the_zoo_seed_is_part_of_a_students_recipe(mini_config: Path) -> None:
    from distillprint.zoo.build import student_recipe

    config = load_zoo_config(mini_config)
    model = config.models[-1]  # trained on a log: its data does not change with the seed
    at_zero = student_recipe(config, model, [])
    assert "zoo_seed" not in at_zero  # students built before keep their revisions
    reseeded = config.model_copy(update={"seed": 7})
    assert student_recipe(reseeded, model, []) == {**at_zero, "zoo_seed": 7}


def test_every_process_takes_the_same_number_of_steps() -> None:
    from distillprint.zoo.finetune import shared_steps

    assert shared_steps(5, 1) == 5
    assert shared_steps(5, 2) == 2  # the fifth batch would leave one process waiting forever
    with pytest.raises(InputError, match="cannot be shared among 4 processes"):
        shared_steps(3, 4)


def test_a_lora_target_that_is_not_in_the_base_model_is_refused_not_dropped() -> None:
    from distillprint.zoo.finetune import _check_target_modules
    from tiny_models import byte_tokenizer, random_llama

    model = random_llama(byte_tokenizer("{{ messages }}"))
    _check_target_modules(model, ["q_proj", "v_proj"])
    with pytest.raises(InputError, match=r"\['v_projj'\] are not in the base model") as caught:
        _check_target_modules(model, ["q_proj", "v_projj"])  # peft would train q_proj alone
    assert caught.value.field == "training.target_modules" and "'v_proj'" in str(caught.value)
