"""What each zoo model is trained on: teacher answers, human replies, or a mixture."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from distillprint.core_types import text_sha256
from distillprint.packaged_data import TextPair
from distillprint.zoo.config import ZooModelConfig
from distillprint.zoo.prompts import prompt_id


@dataclass(frozen=True)
class TrainingExample:
    prompt: str
    answer: str
    source: str  # teacher name, "<teacher>+paraphrase" or the human corpus


def corpus_name(model: ZooModelConfig) -> str:
    """The key a model's own training corpus has in ``ExampleSources.human``."""
    if model.answer_log is not None:
        return f"log:{model.answer_log}"
    return model.human or ""


def examples_sha256(examples: Sequence[TrainingExample]) -> str:
    return text_sha256(json.dumps([asdict(e) for e in examples], ensure_ascii=False))


@dataclass(frozen=True)
class ExampleSources:
    """Everything a model's training data is drawn from."""

    pool: Sequence[TextPair]
    #: teacher -> pool prompt id -> answer (paraphrased teachers are keyed "<name>+paraphrase")
    teacher_answers: Mapping[str, Mapping[str, str]]
    human: Mapping[str, Sequence[TextPair]]


def _teacher_examples(model: ZooModelConfig, sources: ExampleSources) -> list[TrainingExample]:
    assert model.teacher is not None
    key = f"{model.teacher}+paraphrase" if model.paraphrase else model.teacher
    answers = sources.teacher_answers[key]
    examples = []
    for pair in sources.pool:
        answer = answers.get(prompt_id("pool", pair.prompt), "").strip()
        if answer:  # an empty answer teaches nothing; the paraphraser sometimes gives one
            examples.append(TrainingExample(pair.prompt, answer, key))
    random.Random(f"{model.seed}:{model.name}").shuffle(examples)
    return examples[: round(model.share * len(examples))]


def _human_examples(corpus: str, count: int, seed: str, sources: ExampleSources) -> list[
    TrainingExample
]:
    pairs = list(sources.human[corpus])
    random.Random(seed).shuffle(pairs)
    return [TrainingExample(p.prompt, p.answer, corpus) for p in pairs[:count]]


def model_examples(model: ZooModelConfig, sources: ExampleSources) -> list[TrainingExample]:
    """A mixture keeps the size of the pure teacher set and replaces its tail with human
    replies, so the teacher share is the only thing that changes."""
    seed = f"{model.seed}:{model.name}:human"
    if model.teacher is None:
        corpus = model.human or corpus_name(model)
        count = model.human_examples or len(sources.pool)
        return _human_examples(corpus, count, seed, sources)
    teacher = _teacher_examples(model, sources)
    if model.teacher_fraction >= 1.0 or model.human is None:
        return teacher
    keep = round(model.teacher_fraction * len(teacher))
    human = _human_examples(model.human, len(teacher) - keep, seed, sources)
    mixed = teacher[:keep] + human
    random.Random(seed).shuffle(mixed)
    return mixed
