"""Per-request sampling and stopping inside one batched ``model.generate`` call.

transformers samples a whole batch from one global random stream, so a request's answer would
depend on which other requests shared its batch. Instead ``generate`` runs greedily and
``RowSampler`` draws each row's token itself (inverse CDF, vectorised over the batch) with a
uniform from a generator seeded only by that request's ``(seed, sample_index)``, then leaves
that token as the only candidate. ``RowStopper`` ends each row at its own ``max_tokens``, at an
end-of-sequence token, or at a turn marker, and records why, so finish reasons and token counts
come straight from generation.

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

from distillprint.core_types import SamplingParams

StopReason = Literal["eos", "marker", "length"]
#: generated tokens decoded when looking for a turn marker; markers are a few tokens long
_MARKER_WINDOW = 12


def row_seed(seed: int, sample_index: int) -> int:
    """A 63-bit seed per (seed, sample_index); hashing keeps (0, 1) and (1, 0) apart."""
    digest = hashlib.sha256(f"{seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


_BLOCK = 512
_TINY = torch.finfo(torch.float64).tiny


def _first_reaching(cumulative: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per row, the first index whose running total reaches the target. Targets are clamped
    into ``(0, total]``, so the index always lands on an entry with positive weight."""
    total = cumulative[:, -1:]
    targets = torch.minimum(targets.unsqueeze(1), total).clamp_(min=_TINY)
    return torch.searchsorted(cumulative, targets).squeeze(1)


def _inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the token where the cumulative weight first reaches ``u * total``.

    Two levels, blocks of ``_BLOCK`` tokens then tokens inside the chosen block, because a
    running sum over a 262k-token vocabulary costs more than the rest of the sampling step.
    """
    rows, vocab = weights.shape
    if vocab % _BLOCK:
        weights = torch.nn.functional.pad(weights, (0, -vocab % _BLOCK))
    padded = weights.view(rows, -1, _BLOCK)
    block_cdf = padded.sum(dim=-1).double().cumsum(dim=-1)
    targets = uniforms.double() * block_cdf[:, -1]
    block = _first_reaching(block_cdf, targets)
    index = torch.arange(rows, device=weights.device)
    before = torch.where(block > 0, block_cdf[index, (block - 1).clamp(min=0)], 0.0)
    inner_cdf = padded[index, block].double().cumsum(dim=-1)
    return block * _BLOCK + _first_reaching(inner_cdf, targets - before)


def sample_rows(
    logits: torch.Tensor, temperatures: torch.Tensor, top_p: torch.Tensor, uniforms: torch.Tensor
) -> torch.Tensor:
    """One token per row from ``softmax(logits / temperature)`` within the row's top-p nucleus,
    chosen by the row's own uniform draw. Rows are computed independently of each other, and
    rows with ``top_p >= 1`` skip the sort, so neither depends on what else is in the batch."""
    probs = torch.softmax(logits.float() / temperatures.unsqueeze(1), dim=-1)
    tokens = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    full = top_p >= 1.0
    if bool(full.any()):
        tokens[full] = _inverse_cdf(probs[full], uniforms[full])
    nucleus = ~full
    if bool(nucleus.any()):
        sorted_probs, order = probs[nucleus].sort(dim=-1, descending=True)
        mass = sorted_probs.cumsum(dim=-1)
        # keep a token while the mass before it is under top_p: the most likely always stays
        inside = (mass - sorted_probs) < top_p[nucleus].unsqueeze(1) * mass[:, -1:]
        sorted_probs = sorted_probs * inside
        choice = _inverse_cdf(sorted_probs, uniforms[nucleus])
        tokens[nucleus] = order.gather(1, choice.unsqueeze(1)).squeeze(1)
    return tokens


class RowSampler(LogitsProcessor):
    """Samples rows with temperature > 0 from their own seeded streams; others stay greedy."""

    def __init__(self, params: Sequence[SamplingParams], seeds: Sequence[int]) -> None:
        sampled = [i for i, p in enumerate(params) if p.temperature > 0]
        self.rows = torch.tensor(sampled, dtype=torch.long)
        self.temperatures = torch.tensor([params[i].temperature for i in sampled])
        self.top_p = torch.tensor([params[i].top_p for i in sampled])
        # one generator per request: a row's draws never depend on its batch neighbours
        self.generators = [torch.Generator().manual_seed(seeds[i]) for i in sampled]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.generators:
            return scores
        uniforms = torch.cat([torch.rand(1, generator=g) for g in self.generators])
        device = scores.device
        rows = self.rows.to(device)
        tokens = sample_rows(
            scores.index_select(0, rows),
            self.temperatures.to(device),
            self.top_p.to(device),
            uniforms.to(device),
        )
        scores = scores.clone()  # type: ignore[assignment]
        scores[rows] = float("-inf")
        scores[rows, tokens] = 0.0
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
