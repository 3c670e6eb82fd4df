"""Training batches for contrastive fine-tuning on model identity.

A batch is a grid: M models x R prompts, every model answering the same R prompts. With
model identity as the label, an anchor's positives are the same model's answers to the
other R-1 prompts, and its hardest negatives are the other models' answers to the *same*
prompt: telling those apart needs style, not content. ShareGPT ChatGPT answers, when
enabled, add one extra identity row whose answers come from their own prompts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from distillprint.embed.data import (
    DEFAULT_EXCLUDED,
    ModelResponses,
    PromptSplit,
    common_prompts,
    load_responses,
    load_sharegpt_answers,
    model_files,
    split_models,
)
from distillprint.embed.train_config import DataConfig, TrainConfig
from distillprint.errors import InputError


@dataclass(frozen=True)
class Group:
    """Models that answered the same prompts (one response directory)."""

    models: list[str]
    prompts: list[str]
    responses: ModelResponses


@dataclass(frozen=True)
class TrainingData:
    groups: list[Group]
    prompt_split: PromptSplit
    sharegpt: list[str] = field(default_factory=list)
    validation: Group | None = None

    @property
    def train_models(self) -> list[str]:
        return sorted({model for group in self.groups for model in group.models})

    def summary(self) -> dict[str, int]:
        return {
            "train_models": len(self.train_models),
            "train_prompts": sum(len(group.prompts) for group in self.groups),
            "train_responses": sum(len(g.models) * len(g.prompts) for g in self.groups),
            "sharegpt_answers": len(self.sharegpt),
        }


@dataclass(frozen=True)
class Batch:
    texts: list[str]
    labels: list[int]
    # Which grid prompt each text answers; -1 for texts with their own prompt (ShareGPT).
    prompt_ids: list[int]


def _validation_group(group: Group, split: PromptSplit, config: DataConfig) -> Group | None:
    """Some training models on evaluation-split prompts: a progress check, not the benchmark."""
    if config.validation_models == 0 or config.validation_prompts == 0:
        return None
    rng = random.Random(f"{split.salt}/validation")
    models = sorted(rng.sample(group.models, min(config.validation_models, len(group.models))))
    held_out = split.evaluation(common_prompts({m: group.responses[m] for m in models}))
    prompts = sorted(rng.sample(held_out, min(config.validation_prompts, len(held_out))))
    return Group(models, prompts, {m: group.responses[m] for m in models})


def load_training_data(config: DataConfig) -> TrainingData:
    split = PromptSplit(config.train_fraction, config.split_salt)
    groups: list[Group] = []
    validation: Group | None = None
    # a typo would leave the model it meant in the training data (the default names a model
    # of the AlpacaEval folder, which other folders need not hold)
    named = set(model_files(config.response_dirs))
    unknown = sorted(set(config.exclude_models) - named - set(DEFAULT_EXCLUDED))
    if unknown:
        raise InputError(f"exclude_models names no model in the response folders: {unknown}",
                         field="data.exclude_models")
    for directory in config.response_dirs:
        files = model_files([directory])
        models = split_models(
            files,
            lineage_csv=config.lineage_csv,
            holdout=config.holdout_models,
            exclude=config.exclude_models,
            salt=config.split_salt,
        ).train
        if config.max_train_models is not None and config.max_train_models > len(models):
            raise InputError(
                f"max_train_models is {config.max_train_models} but only {len(models)} models "
                f"are left for training (after {config.holdout_models} held out and the "
                "labelled and excluded ones)", path=directory, field="data.max_train_models")
        if config.max_train_models is not None:
            models = sorted(
                random.Random(config.split_salt).sample(models, config.max_train_models)
            )
        responses = load_responses(files, models)
        full = Group(models, common_prompts(responses), responses)
        train_prompts = split.train(full.prompts)
        if len(models) < 2 or len(train_prompts) < 2:
            raise InputError("too few models or training prompts for a batch", path=directory)
        groups.append(Group(models, train_prompts, responses))
        validation = validation or _validation_group(full, split, config)
    sharegpt = load_sharegpt_answers(config.sharegpt_answers) if config.sharegpt_answers else []
    return TrainingData(groups, split, sharegpt, validation)


class GridSampler:
    """Endless grid batches; each process seeds its own stream (distinct batches per rank)."""

    def __init__(
        self, data: TrainingData, models_per_batch: int, prompts_per_batch: int, seed: int
    ) -> None:
        self.data = data
        self.models_per_batch = models_per_batch
        self.prompts_per_batch = prompts_per_batch
        self.rng = random.Random(seed)
        self.weights = [len(group.models) * len(group.prompts) for group in data.groups]

    def next_batch(self) -> Batch:
        group = self.rng.choices(self.data.groups, weights=self.weights)[0]
        models = self.rng.sample(group.models, min(self.models_per_batch, len(group.models)))
        prompts = self.rng.sample(group.prompts, min(self.prompts_per_batch, len(group.prompts)))
        texts = [group.responses[model][prompt] for model in models for prompt in prompts]
        labels = [index for index in range(len(models)) for _ in prompts]
        prompt_ids = [index for _ in models for index in range(len(prompts))]
        if self.data.sharegpt:
            picked = self.rng.sample(self.data.sharegpt, len(prompts))
            texts.extend(picked)
            labels.extend([len(models)] * len(picked))
            prompt_ids.extend([-1] * len(picked))
        return Batch(texts, labels, prompt_ids)


def capped_settings(data: TrainingData, config: TrainConfig) -> list[str]:
    """Settings the data is too small to honour, which the sampler and the validation split
    quietly cap: said, so that a run is not read as the batch or check its config names."""
    asked = [
        ("optim.models_per_batch", config.optim.models_per_batch,
         max((len(g.models) for g in data.groups), default=0),
         "models in its largest training group"),
        ("optim.prompts_per_batch", config.optim.prompts_per_batch,
         max((len(g.prompts) for g in data.groups), default=0),
         "prompts in its largest training group"),
    ]
    if data.validation is not None:
        asked += [
            ("data.validation_models", config.data.validation_models,
             len(data.validation.models), "training models to validate on"),
            ("data.validation_prompts", config.data.validation_prompts,
             len(data.validation.prompts), "held-out prompts to validate on"),
        ]
    return [f"{key} is {wanted}, but the data has {what}: {have}, all used"
            for key, wanted, have, what in asked if wanted > have]
