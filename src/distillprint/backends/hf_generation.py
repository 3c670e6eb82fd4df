"""Per-request sampling and stopping inside one batched ``model.generate`` call.

transformers samples a whole batch from one global random stream, so a request's answer would
depend on which other requests shared its batch. Instead ``generate`` runs greedily and
``RowSampler`` draws each row's token itself, from a generator seeded only by that request's
``(seed, sample_index)``, then leaves that token as the only candidate. ``RowStopper`` ends each
row at its own ``max_tokens``, at an end-of-sequence token, or at a turn marker, and records
why, so finish reasons and token counts come straight from generation.

Determinism: the same request with the same model, torch version and hardware gives the same
answer whatever else is in its batch, except that padding can change logits in the last bits;
that flips a token only when two candidates are practically tied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase, StoppingCriteria

from distillprint.types import SamplingParams

StopReason = Literal["eos", "marker", "length"]
#: generated tokens decoded when looking for a turn marker; markers are a few tokens long
_MARKER_WINDOW = 12


def row_seed(seed: int, sample_index: int) -> int:
    """A 63-bit seed per (seed, sample_index); hashing keeps (0, 1) and (1, 0) apart."""
    digest = hashlib.sha256(f"{seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> int:
    """One token from ``softmax(logits / temperature)`` restricted to the top-p nucleus."""
    probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
    if top_p >= 1.0:
        return int(torch.multinomial(probs, 1, generator=generator))
    sorted_probs, order = probs.sort(descending=True)
    # keep a token while the mass before it is under top_p: the most likely token always stays
    keep = (sorted_probs.cumsum(0) - sorted_probs) < top_p
    choice = torch.multinomial(sorted_probs * keep, 1, generator=generator)
    return int(order[choice])


class RowSampler(LogitsProcessor):
    """Samples rows with temperature > 0 from their own seeded streams; others stay greedy."""

    def __init__(self, params: Sequence[SamplingParams], seeds: Sequence[int]) -> None:
        self.params = list(params)
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        sampled = [i for i, p in enumerate(self.params) if p.temperature > 0]
        if not sampled:
            return scores
        scores = scores.clone()  # type: ignore[assignment]
        for i in sampled:
            params = self.params[i]
            token = sample_token(scores[i], params.temperature, params.top_p, self.generators[i])
            scores[i].fill_(float("-inf"))
            scores[i, token] = 0.0
        return scores


@dataclass(frozen=True)
class RowOutcome:
    generated: int
    reason: StopReason


class RowStopper(StoppingCriteria):
    """Ends each row at its own limit, an end token or a turn marker, recording which."""

    def __init__(
        self,
        *,
        prompt_width: int,
        limits: Sequence[int],
        eos_ids: Sequence[int],
        markers: Sequence[str],
        tokenizer: PreTrainedTokenizerBase,
    ) -> None:
        self.prompt_width = prompt_width
        self.limits = list(limits)
        self.eos_ids = frozenset(eos_ids)
        self.markers = tuple(markers)
        self.tokenizer = tokenizer
        self.outcomes: list[RowOutcome | None] = [None] * len(limits)

    def _reason(self, row: torch.Tensor, generated: int, limit: int) -> StopReason | None:
        if int(row[-1]) in self.eos_ids:
            return "eos"
        if self.markers:
            tail = self.tokenizer.decode(row[-_MARKER_WINDOW:], skip_special_tokens=True)
            if any(marker in tail for marker in self.markers):
                return "marker"
        return "length" if generated >= limit else None

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_width
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i, limit in enumerate(self.limits):
            if self.outcomes[i] is None:
                row = input_ids[i, self.prompt_width :]
                reason = self._reason(row, generated, limit)
                if reason is not None:
                    self.outcomes[i] = RowOutcome(generated, reason)
            done[i] = self.outcomes[i] is not None
        return done  # type: ignore[return-value]

    def outcome(self, index: int, generated: int) -> RowOutcome:
        """How row ``index`` ended; rows ``generate`` cut off itself count as length-limited."""
        return self.outcomes[index] or RowOutcome(generated, "length")
