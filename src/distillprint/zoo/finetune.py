"""Supervised fine-tuning of a student with LoRA (peft) under accelerate.

The student is trained on exactly the text format it is later probed with: its chat template
when it has one, else (a base model such as Gemma-3-270M) the plain transcript of
``distillprint.backends.hf.render_plain``; the answer ends with the end-of-sequence token
when it was not cut. Only answer tokens carry loss.
The LoRA weights are merged before saving, so the student is an ordinary checkpoint that
``hf:<dir>`` loads and generates from at full speed.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillprint.backends.hf import render_chat, render_plain
from distillprint.core_types import ChatMessage
from distillprint.errors import InputError
from distillprint.tracking import start_wandb, uses_wandb
from distillprint.zoo.config import TrainingConfig
from distillprint.zoo.examples import TrainingExample

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_example(
    tokenizer: PreTrainedTokenizerBase, example: TrainingExample, config: TrainingConfig
) -> Encoded:
    # exactly what ``hf:`` sends the student later: its chat template if it has one (adding
    # no special tokens of its own), else the plain transcript after BOS
    messages = [ChatMessage("user", example.prompt)]
    templated = tokenizer.chat_template is not None
    text = render_chat(tokenizer, messages) if templated else render_plain(messages)
    prompt = tokenizer(text, add_special_tokens=not templated).input_ids
    if len(prompt) > config.max_prompt_tokens:
        # keep BOS and the end of the prompt: the "Assistant:" cue must survive the cut
        prompt = prompt[:1] + prompt[-(config.max_prompt_tokens - 1):]
    answer = tokenizer(" " + example.answer, add_special_tokens=False).input_ids
    if len(answer) < config.max_answer_tokens:
        answer = [*answer, tokenizer.eos_token_id]  # taught to stop only where the text did
    answer = answer[: config.max_answer_tokens]
    return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer)


def _check_target_modules(model: Any, targets: Sequence[str]) -> None:
    """peft refuses a target list that matches nothing but silently drops names that match
    nothing while others match: a typo would train fewer projections than the recipe says."""
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = sorted(set(targets) - present)
    if unknown:
        linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                         if type(module).__name__ == "Linear"})
        raise InputError(f"LoRA target module(s) {unknown} are not in the base model; its "
                         f"linear layers are {linear}", field="training.target_modules")


def _batches(encoded: Sequence[Encoded], size: int, seed: int) -> list[list[Encoded]]:
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    return [[encoded[i] for i in order[s : s + size]] for s in range(0, len(order), size)]


def _collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-padded, so every row's answer ends at the last column: the loss then needs logits
    for the last few columns only (see ``answer_loss``)."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        ids[row, width - n :] = torch.tensor(example.input_ids)
        labels[row, width - n :] = torch.tensor(example.labels)
        mask[row, width - n :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "position_ids": positions}


def answer_loss(student: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy over answer tokens, computing the vocabulary projection only
    for the columns that predict them. The projection dominates a small model with a large
    vocabulary (Gemma-3-270M: 262k entries, 168M of its 268M parameters), and prompt columns
    carry no loss, so this is the same loss at a fraction of the cost."""
    import torch.nn.functional as functional

    labels = inputs["labels"]
    has_label = (labels != IGNORE).any(dim=0).nonzero()
    # logits at column c predict the token at c + 1; keep from one before the first label
    keep = labels.shape[1] - int(has_label.min()) + 1
    logits = student(
        input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
        position_ids=inputs["position_ids"], logits_to_keep=keep,
    ).logits
    targets = labels[:, labels.shape[1] - keep + 1 :]
    return functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
        ignore_index=IGNORE,
    )


def _accelerator(config: TrainingConfig, run_name: str, out_dir: Path, recipe: dict[str, Any]
                 ) -> Accelerator:
    from accelerate import Accelerator

    use_wandb = uses_wandb(config.wandb_mode)
    accelerator = Accelerator(log_with="wandb" if use_wandb else None, project_dir=str(out_dir),
                              mixed_precision=config.mixed_precision)
    if use_wandb:
        start_wandb(accelerator, "distillprint-zoo", config.wandb_mode, out_dir, recipe,
                    name=run_name)
    return accelerator


@dataclass(frozen=True)
class FinetuneResult:
    metrics: dict[str, Any]


def finetune_student(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[TrainingExample],
    config: TrainingConfig,
    out_dir: Path,
    *,
    run_name: str,
    seed: int,
    recipe: dict[str, Any],
) -> FinetuneResult:
    """Train LoRA adapters, merge them and save the student checkpoint to ``out_dir``."""
    import torch
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model
    from transformers import get_linear_schedule_with_warmup

    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator = _accelerator(config, run_name, out_dir, recipe)
    set_seed(seed)
    _check_target_modules(model, config.target_modules)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=config.target_modules,
                      task_type="CAUSAL_LM")
    student = get_peft_model(model, lora)
    student.train()
    encoded = [encode_example(tokenizer, e, config) for e in examples]
    steps_per_epoch = shared_steps(math.ceil(len(encoded) / config.batch_size),
                                   accelerator.num_processes)
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad],
                                  lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(0.1 * total), total)
    student, optimizer = accelerator.prepare(student, optimizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses, tokens, started = _loop(accelerator, student, optimizer, schedule, encoded, config,
                                    pad_id, total, seed, steps_per_epoch)
    seconds = time.perf_counter() - started
    metrics = {
        "examples": len(examples),
        "steps": len(losses),
        "epochs": config.epochs,
        "first_loss": round(losses[0], 4) if losses else None,
        "final_loss": round(sum(losses[-5:]) / len(losses[-5:]), 4) if losses else None,
        "train_seconds": round(seconds, 1),
        "train_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "processes": accelerator.num_processes,
        "device": accelerator.device.type,
        "mixed_precision": accelerator.mixed_precision,
    }
    accelerator.log({f"final/{k}": v for k, v in metrics.items() if v is not None})
    if accelerator.is_main_process:
        merged = accelerator.unwrap_model(student).merge_and_unload()
        merged.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        (out_dir / "training-metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return FinetuneResult(metrics)


def shared_steps(batches: int, processes: int) -> int:
    """Steps per epoch for each process: the same on all of them, because every step waits
    for all processes' gradients (one extra step on one process would hang the others). The
    batches left over are dropped, as a distributed sampler with ``drop_last`` does."""
    if batches < processes:
        raise InputError(f"{batches} batch(es) per epoch cannot be shared among {processes} "
                         "processes: use fewer processes or a smaller batch size",
                         field="training.batch_size")
    return batches // processes


def _loop(
    accelerator: Accelerator,
    student: Any,
    optimizer: Any,
    schedule: Any,
    encoded: Sequence[Encoded],
    config: TrainingConfig,
    pad_id: int,
    total: int,
    seed: int,
    steps_per_epoch: int,
) -> tuple[list[float], int, float]:
    from tqdm.auto import tqdm

    losses: list[float] = []
    tokens = 0
    started = time.perf_counter()
    bar = tqdm(total=total, desc="fine-tune", unit="step", disable=not accelerator.is_main_process)
    for epoch in range(config.epochs):
        batches = _batches(encoded, config.batch_size, seed + epoch)
        # each process takes its own share of the batches; DDP averages their gradients
        mine = batches[accelerator.process_index :: accelerator.num_processes]
        for batch in mine[:steps_per_epoch]:
            if len(losses) >= total:
                break
            inputs = {k: v.to(accelerator.device) for k, v in _collate(batch, pad_id).items()}
            loss = answer_loss(student, inputs)
            accelerator.backward(loss)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            tokens += int(inputs["attention_mask"].sum())
            accelerator.log({"train/loss": losses[-1], "train/lr": schedule.get_last_lr()[0]},
                            step=len(losses))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    return losses, tokens, started
