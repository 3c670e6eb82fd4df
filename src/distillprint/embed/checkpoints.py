"""Periodic training checkpoints, so a stopped fine-tuning run resumes instead of starting over.

A checkpoint is a folder ``<output_dir>/checkpoints/step-<N>`` holding accelerate's state
(weights, optimizer, learning-rate schedule, every process's random generators) and
``progress.json``, written last: a folder without it was cut short and is never resumed from.
The grid sampler is not saved; it is replayed to step N from its seed, which gives the same
batches. A run resumes only under the settings that produced the checkpoint (the thread count
included: it changes the floating-point sums), and then reaches the same weights as a run
that was never stopped. Every process must see the same checkpoints: on several machines,
``output_dir`` has to be on a shared file system.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from distillprint.atomic import replaced_atomically
from distillprint.embed.train_config import CHECKPOINTS_DIR, TrainConfig
from distillprint.errors import InputError

if TYPE_CHECKING:
    from accelerate import Accelerator

PROGRESS_NAME = "progress.json"
#: Settings that may change between a run and its resumption without changing what it learns
#: (a moved output folder is the same run).
RESUMABLE_CHANGES = frozenset({"logging", "output_dir", "optim.checkpoint_every"})


class Progress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: int
    losses: list[float]
    train_seconds: float
    validation_before: dict[str, float]
    processes: int
    config: dict[str, Any]
    #: the wandb run a resumed run continues, so its curves stay one run after ``wandb sync``
    tracker_run_id: str | None = None


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def config_tree(config: TrainConfig) -> dict[str, Any]:
    # A JSON round trip, not ``model_dump(mode="json")``: it must equal the tree as saved in a
    # checkpoint, where an infinite float (``max_grad_norm: .inf``) is written as null.
    tree: dict[str, Any] = json.loads(config.model_dump_json())
    return tree


def changed_settings(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """``name: old -> new`` for each setting that differs from the checkpoint's, ignoring
    the harmless ones."""
    before, now = _flatten(saved), _flatten(config_tree(config))
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed
            if not any(k == name or k.startswith(f"{name}.") for name in RESUMABLE_CHANGES)]


def latest_checkpoint(output_dir: Path) -> tuple[Path, Progress] | None:
    """The complete checkpoint with the highest step, or ``None``."""
    found: list[tuple[Path, Progress]] = []
    root = output_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    for folder in root.iterdir():
        path = folder / PROGRESS_NAME
        if not path.is_file():
            continue
        try:
            found.append((folder, Progress.model_validate_json(path.read_bytes())))
        except (ValidationError, OSError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc
            raise InputError(f"unreadable checkpoint progress ({reason}): delete the folder to "
                             "start over", path=path) from None
    if not found:
        return None
    return max(found, key=lambda item: item[1].step)


def _missing_files(folder: Path, processes: int) -> list[str]:
    """accelerate loads a folder missing its random states without a word, and then the
    resumed run silently differs; anything else missing fails deep inside it."""
    wanted = ["optimizer.bin", "custom_checkpoint_0.pkl",
              *(f"random_states_{rank}.pkl" for rank in range(processes))]
    missing = [name for name in wanted if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        missing.insert(0, "model.safetensors")
    return missing


def check_resumable(folder: Path, progress: Progress, config: TrainConfig, processes: int) -> None:
    """A checkpoint resumes only the run that wrote it: other settings, other data order."""
    changed = changed_settings(progress.config, config)
    if changed:
        raise InputError(f"was written under other settings ({'; '.join(changed)}): restore "
                         "them to resume, or set another output_dir to start a new run",
                         path=folder)
    if progress.processes != processes:
        raise InputError(f"was written by {progress.processes} process(es), this run has "
                         f"{processes}: each process draws its own batches, so resume with "
                         f"{progress.processes}", path=folder)
    missing = _missing_files(folder, processes)
    if missing:
        raise InputError(f"is incomplete (missing {', '.join(missing)}): delete it to resume "
                         "from the checkpoint before, or the whole folder to start over",
                         path=folder)


def agree_on_checkpoint(accelerator: Accelerator, found: tuple[Path, Progress] | None) -> None:
    """Every process must resume from the same step: on machines that do not share
    ``output_dir`` the others would start from scratch beside a resumed main process."""
    import torch

    step = torch.tensor([found[1].step if found else -1], device=accelerator.device)
    steps = accelerator.gather(step)
    if bool((steps != step).any()):
        raise InputError(f"the processes see different checkpoints (steps {steps.tolist()}, "
                         "-1: none): put output_dir on a file system every machine shares",
                         field="output_dir")


def save_checkpoint(accelerator: Accelerator, output_dir: Path, progress: Progress) -> Path:
    """Save every process's state, mark it complete, then drop older checkpoints."""
    root = output_dir / CHECKPOINTS_DIR
    folder = root / f"step-{progress.step:06d}"
    accelerator.save_state(str(folder))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with replaced_atomically(folder / PROGRESS_NAME) as tmp:
            tmp.write_text(progress.model_dump_json(indent=2) + "\n", encoding="utf-8")
        for older in root.iterdir():
            if older != folder:
                shutil.rmtree(older, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def remove_checkpoints(output_dir: Path) -> None:
    """Once the encoder is saved its checkpoints are only disk space (optimizer state included)."""
    shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
