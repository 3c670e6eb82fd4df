"""ModelAnswers: one model's responses keyed by prompt id, the unit every scorer consumes."""

from __future__ import annotations

import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from distillprint.answers import AnswerLog, load_answer_log, prompt_join_key


@dataclass(frozen=True)
class ModelAnswers:
    """A model's answers: prompt id -> samples, plus optional category and prompt text.

    Prompt ids are how models are joined; for answer logs without probe ids the prompt text
    itself is the id (AlpacaEval logs are joined on the instruction, as ``prompt_join_key``
    writes it; ``prompts`` keeps the text as logged).
    """

    name: str
    responses: Mapping[str, Sequence[str]]
    categories: Mapping[str, str] = field(default_factory=dict)
    prompts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_log(cls, log: AnswerLog, name: str | None = None) -> ModelAnswers:
        responses: dict[str, list[str]] = {}
        categories: dict[str, str] = {}
        prompts: dict[str, str] = {}
        seen: set[tuple[str, int]] = set()
        for record in sorted(log.records, key=lambda r: r.sample_index):
            key = record.probe_id or prompt_join_key(record.prompt)
            if (key, record.sample_index) in seen:
                continue  # a repeated record is no second sample: the first answer counts
            seen.add((key, record.sample_index))
            responses.setdefault(key, []).append(record.response)
            prompts.setdefault(key, record.prompt)
            if record.category:
                categories.setdefault(key, record.category)
        return cls(name or log.model, responses, categories, prompts)

    def restricted(self, prompt_ids: Sequence[str]) -> ModelAnswers:
        """The same model on a subset of prompts (query-budget experiments)."""
        keep = [p for p in prompt_ids if p in self.responses]
        return ModelAnswers(
            self.name,
            {p: self.responses[p] for p in keep},
            {p: self.categories[p] for p in keep if p in self.categories},
            {p: self.prompts[p] for p in keep if p in self.prompts},
        )

    def identical_answers(self, other: ModelAnswers) -> tuple[int, int]:
        """(identical, shared): answers to the same prompt and sample, and how many of them
        are the same text in both, as a reader sees it (``shown_text``)."""
        shared = [(key, i) for key, samples in self.responses.items() if key in other.responses
                  for i in range(min(len(samples), len(other.responses[key])))]
        mine, theirs = self.shown_responses, other.shown_responses
        same = sum(mine[key][i] == theirs[key][i] for key, i in shared)
        return same, len(shared)

    @cached_property
    def shown_responses(self) -> dict[str, list[str]]:
        """Every answer as ``shown_text`` gives it, worked out once per model: copy checks
        compare each model with many others."""
        return {key: [shown_text(text) for text in samples]
                for key, samples in self.responses.items()}

    def copy_of(self, other: ModelAnswers) -> tuple[int, int] | None:
        """(identical, shared) when this model gives ``other``'s very answers to at least
        ``DUPLICATE_SHARE`` of their shared prompts: it is that model, or a copy of its log."""
        same, shared = self.identical_answers(other)
        return (same, shared) if shared > 0 and same >= DUPLICATE_SHARE * shared else None

    @property
    def keyed_by_text(self) -> bool:
        """Joined on prompt text (a log without probe ids, such as AlpacaEval's)."""
        return all(prompt_join_key(self.prompts.get(key, key)) == key for key in self.responses)

    def by_prompt_text(self) -> ModelAnswers:
        """The same answers keyed by prompt text; probes that share a text keep the first."""
        responses: dict[str, Sequence[str]] = {}
        categories: dict[str, str] = {}
        prompts: dict[str, str] = {}
        for key, samples in self.responses.items():
            text = self.prompts.get(key, key)
            joined = prompt_join_key(text)
            if joined in responses:
                continue
            responses[joined] = samples
            prompts[joined] = text
            if key in self.categories:
                categories[joined] = self.categories[key]
        return ModelAnswers(self.name, responses, categories, prompts)


#: a model whose answers are this much identical to another's is that model (or a copy of it)
DUPLICATE_SHARE = 0.5


def shown_text(text: str) -> str:
    """The text without what a reader cannot see: runs of white space as one space, none at
    the ends, no control or format characters (NUL, zero-width space). A proxy that appends a
    newline to every answer of the model behind it gives that model's answers."""
    return " ".join(text.translate(_invisible_characters()).split())


@cache
def _invisible_characters() -> dict[int, None]:
    # Unicode's control and format characters, white space aside (0.1 s, once)
    return {code: None for code in range(sys.maxunicode + 1)
            if unicodedata.category(chr(code)) in ("Cc", "Cf") and not chr(code).isspace()}


def copy_caveat(first: ModelAnswers, second: ModelAnswers) -> str | None:
    """A model that gives another's very answers is that model (the same weights behind
    another name or endpoint, or a copy of its log), which no score of style can tell from a
    student: the reason said beside the verdict."""
    copied = first.copy_of(second)
    if copied is None:
        return None
    same, shared = copied
    return (f"{same} of {shared} of {first.name}'s answers are word for word {second.name}'s: "
            f"it may be {second.name} itself (the same model behind another name or endpoint, "
            "or a copy of its answers) rather than a student of it")


# Above this share of blank or identical answers a model has no style left to compare.
DEGENERATE_SHARE = 0.5


def degenerate_answers(model: ModelAnswers, prompt_ids: Iterable[str]) -> str | None:
    """Why the model's answers to these prompts carry no style to measure, or None: most of
    them blank (no letter or digit: "...", emoji, whitespace) or one and the same text (an
    error message, a canned refusal). Such a model is far from every other, which reads as
    "unrelated" and would acquit a broken or evasive endpoint."""
    texts = [samples[0] for key in prompt_ids if (samples := model.responses.get(key))]
    if not texts:
        return None
    blank = sum(1 for text in texts if not any(ch.isalnum() for ch in text))
    if blank > DEGENERATE_SHARE * len(texts):
        return f"{blank} of {len(texts)} of {model.name}'s answers have no words in them"
    _, repeats = Counter(shown_text(text) for text in texts).most_common(1)[0]
    if repeats > DEGENERATE_SHARE * len(texts):
        return f"{repeats} of {len(texts)} of {model.name}'s answers are one and the same text"
    return None


def shared_prompt_ids(models: Sequence[ModelAnswers], min_models: int = 2) -> list[str]:
    """Prompt ids answered (non-empty) by at least ``min_models`` of the models, sorted."""
    counts: dict[str, int] = {}
    for model in models:
        for key, samples in model.responses.items():
            if any(s.strip() for s in samples):
                counts[key] = counts.get(key, 0) + 1
    return sorted(k for k, n in counts.items() if n >= min_models)


def load_model_answers(files: Mapping[str, Path]) -> dict[str, ModelAnswers]:
    """Parse the given answer files (only those: parsing is the slow part of a benchmark).

    Logs join on probe ids when they all have them and on prompt text otherwise: a log with
    probe ids (the project's JSONL) next to one without (AlpacaEval's) would share no key."""
    answers = {
        name: ModelAnswers.from_log(load_answer_log(path, model=name), name)
        for name, path in files.items()
    }
    if any(a.keyed_by_text for a in answers.values()):
        answers = {n: a if a.keyed_by_text else a.by_prompt_text() for n, a in answers.items()}
    return answers


def copy_of_any(model: ModelAnswers, others: Sequence[ModelAnswers]) -> str | None:
    """Why ``model`` is no model of its own but a copy of one of ``others`` (the one it
    copies most), or None: a background that holds the teacher's or suspect's very answers
    would hide the similarity a score measures."""
    copies = [(copied[0] / copied[1], copied, other.name) for other in others
              if (copied := model.copy_of(other))]
    if not copies:
        return None
    _, (same, shared), name = max(copies, key=lambda c: c[0])
    return f"{same} of {shared} answers are identical to {name}'s"
