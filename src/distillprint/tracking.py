"""Experiment tracking with wandb through accelerate, offline unless a config says otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillprint.errors import InputError

if TYPE_CHECKING:
    from accelerate import Accelerator


def uses_wandb(mode: str, enabled: bool = True) -> bool:
    return enabled and mode != "disabled"


def start_wandb(
    accelerator: Accelerator, project: str, mode: str, out_dir: Path, config: dict[str, Any],
    mode_field: str = "wandb_mode", **run: Any,
) -> None:
    """One wandb run for ``accelerator`` (created with ``log_with="wandb"``), its files under
    ``out_dir``; ``run`` adds wandb.init arguments (a name, an id to resume). ``mode_field``
    names the config setting of ``mode`` in errors."""
    # Environment rather than init arguments: an explicit WANDB_MODE from the user still wins.
    os.environ.setdefault("WANDB_MODE", mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    out_dir.mkdir(parents=True, exist_ok=True)
    from wandb.errors import UsageError

    try:
        accelerator.init_trackers(project, config=config,
                                  init_kwargs={"wandb": {"dir": str(out_dir), **run}})
    except UsageError as exc:  # online without a key (`wandb login`), an unknown entity...
        raise InputError(f"wandb cannot start in mode '{os.environ['WANDB_MODE']}': {exc} "
                         "(offline needs no account)", field=mode_field) from None
