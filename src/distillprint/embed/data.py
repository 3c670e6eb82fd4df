"""Development responses for training and benchmarking, and the splits that keep them apart.

Prompts are split by a salted hash of their text, so every model file agrees on the split
whatever its order, and the benchmark can rebuild exactly the split a checkpoint was trained
with. Models are split the same way: labelled models (lineage_dev.csv) never train the
embedder, and a hash-chosen set of unlabelled models is held out for evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distillprint.answers import answer_log_paths, load_answer_log
from distillprint.errors import InputError
from distillprint.packaged_data import iter_sharegpt_records

DEFAULT_SALT = "distillprint-embedder-v1"
# Adversarial gibberish that is trivially identifiable and would only add noise.
DEFAULT_EXCLUDED = ("NullModel",)

ModelResponses = dict[str, dict[str, str]]  # model -> prompt -> response


def hash_fraction(text: str, salt: str) -> float:
    """A stable number in [0, 1) for ``text``."""
    digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class PromptSplit:
    """Prompts with ``hash_fraction < train_fraction`` may train an embedder; the rest evaluate."""

    train_fraction: float = 0.5
    salt: str = DEFAULT_SALT

    def is_train(self, prompt: str) -> bool:
        return hash_fraction(prompt, self.salt) < self.train_fraction

    def train(self, prompts: Iterable[str]) -> list[str]:
        return sorted(prompt for prompt in prompts if self.is_train(prompt))

    def evaluation(self, prompts: Iterable[str]) -> list[str]:
        return sorted(prompt for prompt in prompts if not self.is_train(prompt))


def model_files(directories: Sequence[Path]) -> dict[str, Path]:
    for directory in directories:
        if not directory.exists():
            raise InputError("no such file or directory", path=directory)
    files = answer_log_paths(directories)
    if not files:
        raise InputError("no answer logs found", path=", ".join(map(str, directories)))
    return files


def load_responses(files: dict[str, Path], models: Iterable[str]) -> ModelResponses:
    """First answer per prompt for each model, as prompt -> response."""
    loaded: ModelResponses = {}
    for model in models:
        log = load_answer_log(files[model], model=model)
        loaded[model] = {prompt: record.response for prompt, record in log.by_prompt().items()}
    return loaded


def labelled_models(lineage_csv: Path | None) -> set[str]:
    """Every teacher and suspect named in a lineage file: never training data."""
    if lineage_csv is None:
        return set()
    # the benchmark's own reader: a bad file fails with its line, not a KeyError
    from distillprint.score.pairs import pair_models, read_pairs_csv

    return pair_models(read_pairs_csv(lineage_csv))


@dataclass(frozen=True)
class ModelSplit:
    train: list[str]
    holdout: list[str]
    labelled: list[str]


def split_models(
    available: Iterable[str],
    *,
    lineage_csv: Path | None,
    holdout: int,
    exclude: Iterable[str] = DEFAULT_EXCLUDED,
    salt: str = DEFAULT_SALT,
) -> ModelSplit:
    excluded = set(exclude)
    labelled = labelled_models(lineage_csv)
    candidates = sorted(set(available) - excluded - labelled)
    ranked = sorted(candidates, key=lambda model: hash_fraction(model, salt + "/models"))
    return ModelSplit(
        train=sorted(ranked[holdout:]),
        holdout=sorted(ranked[:holdout]),
        labelled=sorted(set(available) & labelled),
    )


def common_prompts(responses: ModelResponses) -> list[str]:
    """Prompts every model answered: the join key across models."""
    sets = [set(answers) for answers in responses.values()]
    return sorted(set.intersection(*sets)) if sets else []


def load_sharegpt_answers(
    limit: int, *, min_chars: int = 50, path: Path | None = None
) -> list[str]:
    """ChatGPT turns from ShareGPT, first ``limit`` of them in file order."""
    answers: list[str] = []
    for record in iter_sharegpt_records(path):
        for turn in record.get("conversations", []):
            value = turn.get("value")
            if turn.get("from") == "gpt" and isinstance(value, str) and len(value) >= min_chars:
                answers.append(value)
        if len(answers) >= limit:
            break
    return answers[:limit]
