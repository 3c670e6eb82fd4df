"""Local causal language models through transformers: ``hf:<hub-id-or-dir>`` and ``gguf:<file>``.

Requests are rendered with the tokenizer's chat template. A model without one (a base model
such as Gemma-3-270M) gets a plain transcript instead::

    <system text, if any>
    User: <first user turn>
    Assistant: <earlier answer>
    User: <last user turn>
    Assistant:

and its answer is cut where it starts a new turn (``\\nUser:`` or ``\\nAssistant:``).
Generation is batched with left padding and runs in a worker thread, so the event loop stays
responsive; one batch runs at a time (``max_concurrency = 1``) because a batch already uses
every CPU core.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import cast

import torch
from jinja2 import TemplateError
from transformers import (
    GenerationMixin,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
    StoppingCriteriaList,
)

from distillprint.backends.base import Backend, BackendOptions
from distillprint.backends.hf_generation import RowSampler, RowStopper, row_seed
from distillprint.backends.hf_loading import (
    LoadedModel,
    dir_fingerprint,
    file_fingerprint,
    load_gguf,
    load_gguf_tokenizer,
    load_pretrained,
    load_tokenizer,
)
from distillprint.core_types import ChatMessage, Generation, GenerationRequest, ModelIdentity, Usage
from distillprint.errors import InputError, PromptTooLong
from distillprint.locations import written_as_path

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
#: a base model that starts a new transcript turn has finished its answer
TURN_MARKERS = ("\nUser:", "\nAssistant:")
# GGUF metadata sometimes names a different end-of-sequence token than the one that closes a
# chat turn; stopping only at the former would let chat models run on into a new turn
_END_OF_TURN_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")


def render_plain(messages: Sequence[ChatMessage]) -> str:
    """The transcript format for models without a chat template (see the module docstring)."""
    lines = [m.content for m in messages if m.role == "system"]
    for message in messages:
        if message.role != "system":
            speaker = "User" if message.role == "user" else "Assistant"
            lines.append(f"{speaker}: {message.content}")
    lines.append("Assistant:")
    return "\n".join(lines)


def cut_at_turn_marker(text: str) -> str:
    """The answer before the first new transcript turn, if the model started one."""
    cuts = [text.find(marker) for marker in TURN_MARKERS if marker in text]
    return text[: min(cuts)] if cuts else text


def render_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[ChatMessage]) -> str:
    """The chat template's prompt; templates that reject a system turn get it folded into the
    first user turn instead."""
    turns = [{"role": m.role, "content": m.content} for m in messages]
    try:
        return str(tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
    except TemplateError:
        system = "\n\n".join(t["content"] for t in turns if t["role"] == "system")
        rest = [t for t in turns if t["role"] != "system"]
        if not system or not rest:
            raise
        rest[0] = {**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}
        return str(tokenizer.apply_chat_template(rest, tokenize=False, add_generation_prompt=True))


def _end_token_ids(loaded: LoadedModel, templated: bool) -> list[int]:
    configured = loaded.model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(loaded.tokenizer.eos_token_id)
    if templated:
        vocab = loaded.tokenizer.get_vocab()
        ids.update(vocab[token] for token in _END_OF_TURN_TOKENS if token in vocab)
    return sorted(i for i in ids if i is not None)


def context_length(loaded: LoadedModel) -> int | None:
    """Tokens the model attends over (prompt and answer together), from its config; None when
    the config does not say."""
    config = loaded.model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class HFBackend(Backend):
    """A transformers model and tokenizer, loaded on first use (a rerun that finds every answer
    stored never loads it)."""

    max_concurrency = 1

    def __init__(
        self,
        identity: ModelIdentity,
        loader: Callable[[], LoadedModel],
        *,
        max_batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        tokenizer_loader: Callable[[], PreTrainedTokenizerBase] | None = None,
    ) -> None:
        self.identity = identity
        self._tokenizer_loader = tokenizer_loader
        self.max_batch_size = max_batch_size
        self._threads = threads
        self._loader = loader
        self._loaded: LoadedModel | None = None
        self._load_lock = threading.Lock()
        # one batch at a time even if a caller ignores max_concurrency: batches share the model
        self._run_lock = threading.Lock()

    def load(self) -> LoadedModel:
        with self._load_lock:
            if self._loaded is None:
                if self._threads:
                    # process-wide: on a shared or small machine fewer threads than cores can be
                    # several times faster, because idle OpenMP workers spin instead of sleeping
                    torch.set_num_threads(self._threads)
                loaded = self._loader()
                tokenizer = loaded.tokenizer
                tokenizer.padding_side = "left"
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                if tokenizer.chat_template is None:
                    # right for a base model; for a chat model that lost its template, the
                    # answers would measure another format than its users see
                    logger.info("%s has no chat template: probes go to it as a plain "
                                "'User: ... Assistant:' transcript", self.identity.label)
                self._loaded = loaded
            return self._loaded

    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer alone, without loading the weights when they are not loaded yet."""
        if self._loaded is None and self._tokenizer_loader is not None:
            return self._tokenizer_loader()
        return self.load().tokenizer

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if not requests:
            return []
        return await asyncio.to_thread(self.generate_sync, list(requests))

    def generate_sync(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Blocking generation, in request order; batches group similar lengths to cut padding.

        A prompt that leaves no room in the model's context is refused (``PromptTooLong``,
        a per-request ``BackendError``) before anything is generated; an answer that would
        run past the context ends there, with finish reason ``length``."""
        if not requests:
            return []
        for request in requests:
            if request.params.max_tokens < 1:
                raise InputError("max_tokens must be at least 1", field="max_tokens")
        loaded = self.load()
        tokenizer = loaded.tokenizer
        templated = tokenizer.chat_template is not None
        prompts = [
            render_chat(tokenizer, r.messages) if templated else render_plain(r.messages)
            for r in requests
        ]
        # a chat template writes its own special tokens; the plain transcript needs BOS
        lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=not templated)[
            "input_ids"]]
        context = context_length(loaded)
        if context is not None:
            for length in lengths:
                if length >= context:
                    # no model path in the message: `serve` passes it on to its clients
                    raise PromptTooLong(
                        f"a prompt of {length} tokens leaves no room for an answer in the "
                        f"model's {context}-token context: shorten the prompt, or use a model "
                        "with a longer context")
        order = sorted(range(len(requests)),
                       key=lambda i: (requests[i].params.max_tokens, lengths[i]))
        results: dict[int, Generation] = {}
        with self._run_lock:
            for start in range(0, len(order), self.max_batch_size):
                chunk = order[start : start + self.max_batch_size]
                limits = [requests[i].params.max_tokens if context is None
                          else min(requests[i].params.max_tokens, context - lengths[i])
                          for i in chunk]
                batch = self._run_batch(loaded, [requests[i] for i in chunk],
                                        [prompts[i] for i in chunk], limits)
                results.update(zip(chunk, batch, strict=True))
        return [results[i] for i in range(len(requests))]

    def _run_batch(self, loaded: LoadedModel, batch: list[GenerationRequest],
                   prompts: list[str], limits: list[int]) -> list[Generation]:
        tokenizer = loaded.tokenizer
        templated = tokenizer.chat_template is not None
        encoded = tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=not templated
        ).to(loaded.model.device)
        width = int(encoded["input_ids"].shape[1])
        end_ids = _end_token_ids(loaded, templated)
        stopper = RowStopper(
            prompt_width=width,
            limits=limits,
            eos_ids=end_ids,
            markers=() if templated else TURN_MARKERS,
            tokenizer=tokenizer,
        )
        sampler = RowSampler(
            [r.params for r in batch], [row_seed(r.params.seed, r.sample_index) for r in batch]
        )
        started = time.perf_counter()
        with torch.inference_mode():
            output = cast(GenerationMixin, loaded.model).generate(
                **encoded,
                do_sample=False,
                max_new_tokens=max(limits),
                eos_token_id=end_ids,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList([sampler]),
                stopping_criteria=StoppingCriteriaList([stopper]),
            )
        latency = time.perf_counter() - started
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        generated = output[:, width:]
        return [
            self._finish(
                tokenizer, generated[i], stopper, i, int(prompt_tokens[i]), latency, templated
            )
            for i in range(len(batch))
        ]

    @staticmethod
    def _finish(
        tokenizer: PreTrainedTokenizerBase,
        ids: torch.Tensor,
        stopper: RowStopper,
        index: int,
        prompt_tokens: int,
        latency: float,
        templated: bool,
    ) -> Generation:
        outcome = stopper.outcome(index, int(ids.shape[0]))
        kept = ids[: outcome.generated - (1 if outcome.reason == "eos" else 0)]
        text = str(tokenizer.decode(kept, skip_special_tokens=True))
        if outcome.reason == "marker":
            text = cut_at_turn_marker(text)
        if not templated:
            # the transcript puts a space after "Assistant:" that belongs to the format
            text = text.strip()
        return Generation(
            text=text,
            finish_reason="length" if outcome.reason == "length" else "stop",
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=outcome.generated),
            latency_s=latency,
        )

    async def aclose(self) -> None:
        with self._load_lock:
            self._loaded = None

    @classmethod
    def from_options(
        cls,
        identity: ModelIdentity,
        loader: Callable[[], LoadedModel],
        options: BackendOptions,
        tokenizer_loader: Callable[[], PreTrainedTokenizerBase] | None = None,
    ) -> HFBackend:
        """Batch size and torch threads from ``options``."""
        batch = options.batch_size if options.batch_size and options.batch_size > 0 else None
        if options.threads is not None and options.threads < 1:
            raise InputError(f"threads must be at least 1, got {options.threads}", field="threads")
        return cls(
            identity,
            loader,
            max_batch_size=batch or DEFAULT_BATCH_SIZE,
            threads=options.threads,
            tokenizer_loader=tokenizer_loader,
        )


def create_hf_backend(spec_rest: str, options: BackendOptions) -> Backend:
    """``hf:<dir>`` loads a local checkpoint, ``hf:<file.gguf>`` a GGUF file and anything else
    a hub id (pin ``--revision`` for hub ids: the store key then names the exact weights)."""
    path = Path(spec_rest).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return create_gguf_backend(spec_rest, options)
    if path.is_dir():
        resolved = path.resolve()
        identity = ModelIdentity("hf", str(resolved), options.revision or dir_fingerprint(resolved))
        loader = partial(load_pretrained, str(resolved), device=options.device)
        return HFBackend.from_options(identity, loader, options,
                                      partial(load_tokenizer, str(resolved)))
    if written_as_path(spec_rest) or path.exists():
        raise InputError(f"no model directory at '{spec_rest}'", field="model spec")
    identity = ModelIdentity("hf", spec_rest, options.revision or "")
    loader = partial(load_pretrained, spec_rest, revision=options.revision, device=options.device)
    return HFBackend.from_options(identity, loader, options,
                                  partial(load_tokenizer, spec_rest, revision=options.revision))


def create_gguf_backend(spec_rest: str, options: BackendOptions) -> Backend:
    """``gguf:<file.gguf>``; converted once to a cached safetensors checkpoint (hf_loading)."""
    path = Path(spec_rest).expanduser()
    if not path.is_file():
        raise InputError(f"no GGUF file at '{spec_rest}'", field="model spec")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise InputError(f"'{spec_rest}' is not a GGUF file (it does not start with the "
                             "GGUF magic bytes)", field="model spec")
    resolved = path.resolve()
    fingerprint = file_fingerprint(resolved)
    identity = ModelIdentity("gguf", str(resolved), options.revision or fingerprint)
    key = f"{resolved.stem}-{fingerprint}"
    loader = partial(load_gguf, key, lambda _workdir: resolved, device=options.device)
    return HFBackend.from_options(identity, loader, options,
                                  partial(load_gguf_tokenizer, key, lambda _workdir: resolved))
