"""A teacher known only by its logged answers (ChatGPT in ShareGPT) as an answer-log file.

Written as the project's JSONL log and collected with ``file:`` like any other model, so its
answers reach the store the same way live teachers' do. Held-out reference answers are cut
to the probing budget in the student tokenizer's tokens: every live model is probed with
that ``max_tokens``, and comparing a 48-token answer with a 600-token one would measure
length, not style.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distillprint.packaged_data import TextPair
from distillprint.zoo.prompts import prompt_id

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def cut_to_tokens(text: str, tokenizer: PreTrainedTokenizerBase, limit: int) -> str:
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return text if len(ids) <= limit else str(tokenizer.decode(ids[:limit])).strip()


def logged_teacher_file(
    work_dir: Path,
    name: str,
    pairs: Sequence[TextPair],
    heldout: bool,
    max_tokens: int | None,
    tokenizer: PreTrainedTokenizerBase | None,
) -> Path:
    prefix, part = ("sharegpt", "heldout") if heldout else ("pool", "pool")
    path = work_dir / "teachers" / f"{name}-{part}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            answer = pair.answer
            if max_tokens is not None and tokenizer is not None:
                answer = cut_to_tokens(answer, tokenizer, max_tokens)
            row = {"model": name, "probe_id": prompt_id(prefix, pair.prompt),
                   "prompt": pair.prompt, "response": answer}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
