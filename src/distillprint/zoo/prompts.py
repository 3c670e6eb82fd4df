"""Prompts of the zoo: a ShareGPT distillation pool and a disjoint held-out probe slice.

Both come from first turns of real ShareGPT conversations, so ChatGPT's answer to each is
known. The pool trains students; the held-out slice probes every zoo model, which lets
students be scored against ChatGPT on prompts none of them was trained on. Prompts that also
appear in a probe set are dropped, so no probe is ever a training prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from distillprint.core_types import text_sha256
from distillprint.errors import InputError
from distillprint.packaged_data import TextPair, sharegpt_first_turns
from distillprint.probes import Probe, ProbeSet
from distillprint.zoo.config import PromptPoolConfig


@dataclass(frozen=True)
class ZooPrompts:
    pool: list[TextPair]
    heldout: list[TextPair]

    def pool_probes(self) -> ProbeSet:
        return _probe_set("zoo-pool", "pool", "sharegpt-pool", self.pool)

    def heldout_probes(self) -> ProbeSet:
        return _probe_set("zoo-heldout", "sharegpt", "sharegpt-heldout", self.heldout)


def prompt_id(prefix: str, prompt: str) -> str:
    return f"{prefix}-{text_sha256(prompt)[:12]}"


def _probe_set(name: str, prefix: str, category: str, pairs: list[TextPair]) -> ProbeSet:
    probes = tuple(
        Probe(
            id=prompt_id(prefix, pair.prompt),
            category=category,
            prompt=pair.prompt,
            rationale="first turn of a real ShareGPT conversation (ChatGPT's answer is known)",
        )
        for pair in pairs
    )
    # Like any prompt list, the set is versioned by the hash of exactly which prompts it holds.
    digest = text_sha256(json.dumps([p.prompt for p in pairs], ensure_ascii=False))
    return ProbeSet(name=name, version=f"sha256-{digest[:12]}", probes=probes)


def _usable(pair: TextPair, config: PromptPoolConfig, excluded: set[str]) -> bool:
    text = pair.prompt
    if not 10 <= len(text) <= config.max_prompt_chars or len(pair.answer) < config.min_answer_chars:
        return False
    # English prose only: the probe set and every packaged model are English.
    ascii_share = sum(ch.isascii() for ch in text + pair.answer) / len(text + pair.answer)
    return ascii_share > 0.97 and " ".join(text.lower().split()) not in excluded


def select_prompts(
    config: PromptPoolConfig, seed: int, excluded_prompts: Iterable[str]
) -> ZooPrompts:
    """Deterministic: the order is a seeded hash of each prompt, not the file's order."""
    excluded = {" ".join(p.lower().split()) for p in excluded_prompts}
    unique: dict[str, TextPair] = {}
    for pair in sharegpt_first_turns(config.scan_conversations, config.sharegpt_file):
        if _usable(pair, config, excluded):
            unique.setdefault(pair.prompt, pair)
    ordered = sorted(unique.values(), key=lambda p: text_sha256(f"{seed}:{p.prompt}"))
    first, heldout = config.distillation_prompts, config.heldout_prompts
    wanted = first + heldout + config.extra_distillation_prompts
    if len(ordered) < wanted:
        raise InputError(
            f"only {len(ordered)} usable ShareGPT prompts in the first "
            f"{config.scan_conversations} conversations; {wanted} wanted (distillation, "
            "held-out and extra prompts): raise scan_conversations or ask for fewer",
            field="prompts.scan_conversations",
        )
    pool = ordered[:first] + ordered[first + heldout : wanted]
    return ZooPrompts(pool=pool, heldout=ordered[first : first + heldout])
