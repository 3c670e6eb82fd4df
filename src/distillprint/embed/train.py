"""Contrastive fine-tuning of a sentence encoder on model identity, with accelerate.

Runs unchanged in one process, under ``accelerate launch --num_processes 2 --cpu`` and on
GPUs: every process draws its own grid batches (seeded by rank) and DDP averages the
gradients. The loss is supervised contrastive (SupCon) over the grid, see ``train_data``.
The main process saves the checkpoint (weights + tokenizer), the training manifest (what
the benchmark must leave out), metrics and a model card. With ``optim.checkpoint_every`` a
stopped run resumes from its latest checkpoint when started again (``checkpoints``).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillprint.embed.checkpoints import (
    Progress,
    agree_on_checkpoint,
    check_resumable,
    config_tree,
    latest_checkpoint,
    remove_checkpoints,
    save_checkpoint,
)
from distillprint.embed.modelcard import write_model_card
from distillprint.embed.train_config import MIN_VALIDATION_PROMPTS, TrainConfig
from distillprint.embed.train_data import (
    Batch,
    GridSampler,
    TrainingData,
    capped_settings,
    load_training_data,
)
from distillprint.errors import InputError
from distillprint.tracking import start_wandb, uses_wandb

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class TrainResult:
    output_dir: Path | None
    losses: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) on L2-normalised embeddings."""
    import torch

    size = embeddings.shape[0]
    self_mask = torch.eye(size, dtype=torch.bool, device=embeddings.device)
    logits = (embeddings @ embeddings.T) / temperature
    # A large finite negative, not -inf: -inf * 0 would turn masked terms into NaN.
    logits = logits.masked_fill(self_mask, -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    per_anchor = -(log_prob * positives).sum(dim=1) / counts.clamp(min=1)
    return per_anchor[counts > 0].mean()


def center_by_prompt(embeddings: torch.Tensor, prompt_ids: torch.Tensor) -> torch.Tensor:
    """Subtract each prompt's mean embedding; texts without a grid prompt (-1) lose the grid
    mean. Returns re-normalised vectors."""
    import torch.nn.functional as functional

    centred = embeddings.clone()
    in_grid = prompt_ids >= 0
    for prompt in prompt_ids[in_grid].unique():
        rows = prompt_ids == prompt
        centred[rows] = embeddings[rows] - embeddings[rows].mean(dim=0)
    if bool((~in_grid).any()) and bool(in_grid.any()):
        centred[~in_grid] = embeddings[~in_grid] - embeddings[in_grid].mean(dim=0)
    return functional.normalize(centred, dim=-1)


def freeze_lower_layers(model: PreTrainedModel, train_layers: int | None) -> int:
    """Freeze embeddings, the pooler and all but the top layers; returns trainable count."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    total = len(layers) if layers is not None else 0
    keep = {f"encoder.layer.{i}." for i in range(max(total - (train_layers or total), 0), total)}
    for name, parameter in model.named_parameters():
        trainable = "pooler" not in name and (
            train_layers is None or any(name.startswith(prefix) for prefix in keep)
        )
        parameter.requires_grad_(trainable)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def embed_batch(
    model: Any, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int, device: Any
) -> torch.Tensor:
    import torch.nn.functional as functional

    from distillprint.embed.encoder import mean_pool

    inputs = tokenizer(
        texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    ).to(device)
    hidden = model(**inputs).last_hidden_state
    return functional.normalize(mean_pool(hidden, inputs["attention_mask"]).float(), dim=-1)


def _refuse_a_trained_output(output_dir: Path) -> None:
    """A finished encoder is minutes to hours of training: never overwritten, nor mixed with a
    new run's files. A folder a stopped run left behind (logs, no manifest) may be reused."""
    from distillprint.embed.manifest import MANIFEST_NAME

    if (output_dir / MANIFEST_NAME).is_file():
        raise InputError(f"holds a trained encoder already ({MANIFEST_NAME}): set another "
                         "output_dir (--set output_dir=...) or delete this one",
                         path=output_dir, field="output_dir")


def _make_accelerator(config: TrainConfig) -> Accelerator:
    from accelerate import Accelerator

    return Accelerator(
        cpu=config.cpu,
        mixed_precision=config.mixed_precision,
        log_with="wandb" if uses_wandb(config.logging.wandb_mode, config.logging.wandb) else None,
        project_dir=str(config.output_dir),
    )


def _start_tracking(accelerator: Accelerator, config: TrainConfig, run_id: str | None) -> None:
    """A wandb run under ``run_id``: a resumed training run continues the same wandb run."""
    if uses_wandb(config.logging.wandb_mode, config.logging.wandb):
        start_wandb(accelerator, config.logging.project, config.logging.wandb_mode,
                    config.output_dir, json.loads(config.model_dump_json()),
                    mode_field="logging.wandb_mode", id=run_id, resume="allow")


def _optimizer_and_schedule(model: Any, config: TrainConfig) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.optim.learning_rate, weight_decay=config.optim.weight_decay
    )
    warmup = math.ceil(config.optim.warmup_ratio * config.optim.steps)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, config.optim.steps)
    return optimizer, schedule


def load_base(
    source: str | Path | Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base encoder and tokenizer: a name/path, or an already-built (model, tokenizer) pair."""
    if isinstance(source, tuple):
        return source[0], source[1]
    from transformers import AutoModel, AutoTokenizer

    from distillprint.embed.encoder import resolve_model_source

    path = resolve_model_source(str(source))
    try:
        return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the base encoder '{source}': {exc}",
                         field="model.base_model") from None


def _check_max_length(model: PreTrainedModel, max_length: int) -> None:
    """A window past the model's position embeddings fails at the first long text."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise InputError(f"max_length {max_length} exceeds the base encoder's {limit} positions",
                         field="model.max_length")


def train_embedder(
    config: TrainConfig,
    *,
    base: tuple[PreTrainedModel, PreTrainedTokenizerBase] | None = None,
    data: TrainingData | None = None,
) -> TrainResult:
    """Fine-tune, evaluate before/after on the validation grid, save the artifact."""
    import torch
    from accelerate.utils import set_seed

    _refuse_a_trained_output(config.output_dir)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    accelerator = _make_accelerator(config)
    # Whether and where to resume is settled before anything slow is loaded or logged.
    found = latest_checkpoint(config.output_dir)
    agree_on_checkpoint(accelerator, found)
    if found is not None:
        check_resumable(*found, config, accelerator.num_processes)
    run_id = found[1].tracker_run_id if found is not None else None
    run_id = run_id or uuid.uuid4().hex[:12]
    _start_tracking(accelerator, config, run_id)
    set_seed(config.optim.seed)
    data = data or load_training_data(config.data)
    for note in capped_settings(data, config):
        accelerator.print(f"note: {note}")
    model, tokenizer = load_base(base or config.model.base_model)
    _check_max_length(model, config.model.max_length)
    trainable = freeze_lower_layers(model, config.model.train_layers)
    optimizer, schedule = _optimizer_and_schedule(model, config)
    # The schedule stays unprepared: a prepared one advances once per process per step, which
    # would end warm-up and decay early on N processes; ``steps`` counts optimizer steps.
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(schedule)
    if found is not None:
        folder, resumed = found
        accelerator.load_state(str(folder))
        accelerator.print(f"resuming from {folder} (step {resumed.step} of {config.optim.steps})")
    else:
        resumed = Progress(
            step=0, losses=[], train_seconds=0.0,
            validation_before=_validate(accelerator, model, tokenizer, data, config),
            processes=accelerator.num_processes, config=config_tree(config),
            tracker_run_id=run_id,
        )
    losses, seconds = _loop(accelerator, model, tokenizer, optimizer, schedule, data, config,
                            resumed)
    after = _validate(accelerator, model, tokenizer, data, config)
    metrics = {
        "trainable_parameters": trainable,
        "steps": config.optim.steps,
        "processes": accelerator.num_processes,
        "device": accelerator.device.type,
        "mixed_precision": accelerator.mixed_precision,
        "train_seconds": round(seconds, 1),
        "resumed_from_step": resumed.step,
        "first_loss": losses[0],
        "final_loss": sum(losses[-10:]) / len(losses[-10:]),
        "validation_before": resumed.validation_before,
        "validation_after": after,
        **data.summary(),
    }
    accelerator.log({f"validation/{k}": v for k, v in after.items()}, step=config.optim.steps)
    output = None
    if accelerator.is_main_process:
        output = _save(accelerator.unwrap_model(model), tokenizer, data, config, metrics)
    accelerator.wait_for_everyone()
    if accelerator.is_local_main_process:  # each machine's own, where output_dir is not shared
        remove_checkpoints(config.output_dir)
    accelerator.end_training()
    _destroy_process_group()
    return TrainResult(output, losses, metrics)


def _destroy_process_group() -> None:
    """Tear the process group down before exit, as PyTorch asks: a Gloo group left to the
    interpreter's shutdown can abort a rank (SIGABRT) after training has finished."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _loop(
    accelerator: Accelerator,
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    optimizer: Any,
    schedule: Any,
    data: TrainingData,
    config: TrainConfig,
    resumed: Progress,
) -> tuple[list[float], float]:
    """Steps ``resumed.step`` to the end; the losses of every step and the seconds they took."""
    import torch
    from tqdm.auto import tqdm

    optim = config.optim
    seed = optim.seed * 1000 + accelerator.process_index
    sampler = GridSampler(data, optim.models_per_batch, optim.prompts_per_batch, seed)
    for _ in range(resumed.step):
        sampler.next_batch()  # replay the draws the checkpoint's steps consumed
    losses = list(resumed.losses)
    started = time.perf_counter()
    model.train()
    bar = tqdm(range(resumed.step, optim.steps), desc="train", initial=resumed.step,
               total=optim.steps, disable=not accelerator.is_local_main_process)
    for step in bar:
        batch: Batch = sampler.next_batch()
        with accelerator.autocast():
            embeddings = embed_batch(
                model, tokenizer, batch.texts, config.model.max_length, accelerator.device
            )
            labels = torch.tensor(batch.labels, device=accelerator.device)
            if optim.center_prompts:
                prompt_ids = torch.tensor(batch.prompt_ids, device=accelerator.device)
                embeddings = center_by_prompt(embeddings, prompt_ids)
            loss = supcon_loss(embeddings, labels, optim.temperature)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), optim.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        mean_loss = accelerator.gather(loss.detach()[None]).mean().item()
        losses.append(mean_loss)
        bar.set_postfix(loss=f"{mean_loss:.3f}")
        if (step + 1) % config.logging.log_every == 0 or step == 0:
            accelerator.log({"loss": mean_loss, "lr": schedule.get_last_lr()[0]}, step=step)
        done = step + 1
        if optim.checkpoint_every and done % optim.checkpoint_every == 0 and done < optim.steps:
            seconds = resumed.train_seconds + time.perf_counter() - started
            save_checkpoint(accelerator, config.output_dir, resumed.model_copy(update={
                "step": done, "losses": list(losses), "train_seconds": round(seconds, 1)}))
    return losses, resumed.train_seconds + time.perf_counter() - started


def _validate(
    accelerator: Accelerator,
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    config: TrainConfig,
) -> dict[str, float]:
    """Identification accuracy (k=1, k=4) on held-out prompts of some training models."""
    import numpy as np
    import torch

    from distillprint.embed.identify import identify, make_draws

    group = data.validation
    if group is None or not accelerator.is_main_process or (
            len(group.prompts) < MIN_VALIDATION_PROMPTS):
        return {}
    half = len(group.prompts) // 2
    # The bare module: a DDP wrapper would wait for a collective the other ranks never join.
    model = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    vectors: dict[str, Any] = {}
    with torch.inference_mode():
        for name in group.models:
            texts = [group.responses[name][p] for p in group.prompts]
            chunks = [texts[i : i + 32] for i in range(0, len(texts), 32)]
            vectors[name] = np.concatenate(
                [embed_batch(model, tokenizer, c, config.model.max_length, accelerator.device)
                 .cpu().numpy() for c in chunks]
            )  # fmt: skip
    model.train(was_training)
    draws = make_draws(len(group.prompts) - half, (1, 4), 50, config.optim.seed)
    reference = {m: v[:half] for m, v in vectors.items()}
    query = {m: v[half:] for m, v in vectors.items()}
    results = identify(group.models, reference, query, draws, "prompt")
    return {f"top1_k{k}": round(r.accuracy, 4) for k, r in results.items()}


def _save(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    config: TrainConfig,
    metrics: dict[str, Any],
) -> Path:
    from distillprint.embed.manifest import TrainingManifest

    output = config.output_dir
    output.mkdir(parents=True, exist_ok=True)
    # First: it marks the folder as a run's (RUN_MARKERS), so a run stopped while saving
    # can be rerun into it.
    (output / "train_config.json").write_text(config.model_dump_json(indent=2) + "\n")
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_model_card(output, config, data, metrics)
    # Last: its presence marks the encoder finished (a rerun then refuses to overwrite it),
    # so a run stopped while saving resumes from its checkpoint instead.
    TrainingManifest(
        base_model=config.model.base_model,
        train_models=data.train_models,
        prompt_split=data.prompt_split,
        sharegpt_answers=len(data.sharegpt),
    ).save(output)
    return output
