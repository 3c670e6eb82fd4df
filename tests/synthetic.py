"""A tiny synthetic lineage zoo: teachers, their students, unrelated models, a background.

Deterministic given a seed, small enough for unit tests and smoke runs of the benchmark. Each
model has a style (openers, connectives, list markers, closers, sentence length); a student
copies its teacher's style most of the time and otherwise uses its own, so students sit
closer to their teacher than to anyone else, as distilled models do. Every model answers
the same prompts with the same topic words, so content alone separates nobody.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from distillprint.score.answers import ModelAnswers
from distillprint.score.pairs import LabelledPair

_OPENERS = [
    "Certainly!",
    "Sure thing.",
    "Great question.",
    "Here is the answer.",
    "Okay,",
    "Well,",
    "Absolutely.",
    "Let me explain.",
    "In short,",
    "Good point.",
]
_CONNECTIVES = [
    "moreover",
    "also",
    "however",
    "in addition",
    "furthermore",
    "besides",
    "notably",
    "importantly",
    "then",
    "so",
]
_CLOSERS = [
    "I hope this helps!",
    "Let me know if you need more.",
    "Good luck!",
    "Cheers.",
    "That is all.",
    "Feel free to ask.",
    "Happy to help.",
    "Thanks for asking.",
]
_MARKERS = ["-", "*", "1.", "+", "•"]
_TOPICS = [f"topic{i}" for i in range(400)]


@dataclass(frozen=True)
class Style:
    opener: str
    connectives: tuple[str, str]
    closer: str
    marker: str
    sentences: int


def _random_style(rng: random.Random) -> Style:
    return Style(
        rng.choice(_OPENERS),
        (rng.choice(_CONNECTIVES), rng.choice(_CONNECTIVES)),
        rng.choice(_CLOSERS),
        rng.choice(_MARKERS),
        rng.randint(2, 5),
    )


def _answer(style: Style, topics: list[str], rng: random.Random) -> str:
    lines = [style.opener]
    for i in range(style.sentences):
        word = style.connectives[i % 2]
        lines.append(
            f"{style.marker} {word.capitalize()}, the {topics[i % len(topics)]} "
            f"matters for {topics[(i + 1) % len(topics)]}."
        )
    lines.append(style.closer)
    return "\n".join(lines)


def _model(
    name: str,
    own: Style,
    copied: Style | None,
    copy_rate: float,
    prompts: dict[str, list[str]],
    rng: random.Random,
) -> ModelAnswers:
    responses = {}
    for key, topics in prompts.items():
        style = copied if copied is not None and rng.random() < copy_rate else own
        responses[key] = [_answer(style, topics, rng)]
    return ModelAnswers(
        name=name,
        responses=responses,
        categories={k: f"cat{int(k[1:]) % 3}" for k in prompts},
        prompts={k: f"Tell me about {' and '.join(v[:2])}." for k, v in prompts.items()},
    )


def synthetic_zoo(
    n_prompts: int = 60, n_background: int = 8, seed: int = 0, copy_rate: float = 0.7
) -> tuple[dict[str, ModelAnswers], list[LabelledPair]]:
    """Three teachers (two with two students each), two unrelated suspects, a background."""
    rng = random.Random(seed)
    prompts = {f"p{i:04d}": rng.sample(_TOPICS, 3) for i in range(n_prompts)}
    styles = {name: _random_style(rng) for name in ["teacher_a", "teacher_b", "teacher_c"]}
    models = {n: _model(n, s, None, 0.0, prompts, rng) for n, s in styles.items()}
    lineage = {
        "student_a1": "teacher_a",
        "student_a2": "teacher_a",
        "student_b1": "teacher_b",
        "student_b2": "teacher_b",
    }
    for student, teacher in lineage.items():
        models[student] = _model(
            student, _random_style(rng), styles[teacher], copy_rate, prompts, rng
        )
    others = ["human_1", "human_2"] + [f"background_{i}" for i in range(n_background)]
    for name in others:
        models[name] = _model(name, _random_style(rng), None, 0.0, prompts, rng)
    pairs = []
    for teacher in styles:
        for student, true_teacher in lineage.items():
            label, relation = (1, "primary") if teacher == true_teacher else (0, "other_vendor")
            pairs.append(LabelledPair(teacher, student, relation, label))
        for human in ("human_1", "human_2"):
            pairs.append(LabelledPair(teacher, human, "human_data", 0))
    return models, pairs
