"""Periodic training checkpoints, so a stopped fine-tuning run resumes instead of starting over.

A checkpoint is a folder ``<output_dir>/checkpoints/step-<N>`` holding accelerate's state
(weights, optimizer, learning-rate schedule, every process's random generators) and
``progress.json``, written last: a folder without it was cut short and is never resumed from.
The grid sampler is not saved; it is replayed to step N from its seed, which gives the same
batches. A run resumes only under the settings that produced the checkpoint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillprint.embed.train_config import TrainConfig
from distillprint.errors import InputError

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINTS_DIR = "checkpoints"
PROGRESS_NAME = "progress.json"
#: Settings that may change between a run and its resumption without changing what it learns.
RESUMABLE_CHANGES = frozenset({"logging", "num_threads", "optim.checkpoint_every"})


@dataclass(frozen=True)
class Progress:
    step: int
    losses: list[float]
    train_seconds: float
    validation_before: dict[str, float]
    processes: int
    config: dict[str, Any]


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
    tree: dict[str, Any] = json.loads(config.model_dump_json())
    return tree


def changed_settings(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """Dotted names of the settings that differ from the checkpoint's, ignoring harmless ones."""
    before, now = _flatten(saved), _flatten(config_tree(config))
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return [k for k in changed
            if not any(k == name or k.startswith(f"{name}.") for name in RESUMABLE_CHANGES)]


def latest_checkpoint(output_dir: Path) -> tuple[Path, Progress] | None:
    """The complete checkpoint with the highest step, or ``None``."""
    found: list[tuple[int, Path, Progress]] = []
    root = output_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    for folder in root.iterdir():
        path = folder / PROGRESS_NAME
        if not path.is_file():
            continue
        try:
            progress = Progress(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise InputError(f"unreadable checkpoint progress ({exc}): delete the folder to "
                             "start over", path=path) from None
        found.append((progress.step, folder, progress))
    if not found:
        return None
    _, folder, progress = max(found, key=lambda item: item[0])
    return folder, progress


def check_resumable(folder: Path, progress: Progress, config: TrainConfig, processes: int) -> None:
    """A checkpoint resumes only the run that wrote it: other settings, other data order."""
    changed = changed_settings(progress.config, config)
    if changed:
        raise InputError(f"was written under other settings ({', '.join(changed)}): restore "
                         "them to resume, or set another output_dir to start a new run",
                         path=folder)
    if progress.processes != processes:
        raise InputError(f"was written by {progress.processes} process(es), this run has "
                         f"{processes}: each process draws its own batches, so resume with "
                         f"{progress.processes}", path=folder)
    if progress.step > config.optim.steps:
        raise InputError(f"is at step {progress.step}, past this run's {config.optim.steps} "
                         "steps", path=folder)


def save_checkpoint(accelerator: Accelerator, output_dir: Path, progress: Progress) -> Path:
    """Save every process's state, mark it complete, then drop older checkpoints."""
    root = output_dir / CHECKPOINTS_DIR
    folder = root / f"step-{progress.step:06d}"
    accelerator.save_state(str(folder))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp = folder / f"{PROGRESS_NAME}.tmp"
        tmp.write_text(json.dumps(asdict(progress), indent=2) + "\n", encoding="utf-8")
        tmp.replace(folder / PROGRESS_NAME)
        for older in root.iterdir():
            if older != folder:
                shutil.rmtree(older, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def remove_checkpoints(output_dir: Path) -> None:
    """Once the encoder is saved its checkpoints are only disk space (optimizer state included)."""
    shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
