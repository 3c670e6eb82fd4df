"""Make ``accelerate launch --cpu --num_processes N`` really start N processes.

Without an MPI hostfile, accelerate's simple launcher starts a single process for a
multi-process CPU run (huggingface/accelerate#2741): it sets MASTER_ADDR (it does so only
when more than one process was asked for) but no RANK. Training would then run on one
process while the user believes it runs on N. ``relaunch_multi_cpu`` detects exactly that
case, recovers N from the launcher's command line (or its config file), and re-executes the
script under ``torch.distributed.run``, which Accelerate picks up as a gloo MULTI_CPU run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from distillprint.errors import InputError

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_RANK")


def needs_relaunch(env: Mapping[str, str]) -> bool:
    """True when accelerate's CPU launcher was asked for several processes but started one."""
    on_cpu = env.get("ACCELERATE_USE_CPU", "").lower() in {"true", "1"}
    return on_cpu and "MASTER_ADDR" in env and not any(key in env for key in RANK_VARIABLES)


def requested_processes(launcher_argv: Sequence[str]) -> int | None:
    """``--num_processes`` from an ``accelerate launch`` command line, else its config file's."""
    values: dict[str, str] = {}
    for index, arg in enumerate(launcher_argv):
        for flag in ("--num_processes", "--config_file"):
            if arg == flag and index + 1 < len(launcher_argv):
                values.setdefault(flag, launcher_argv[index + 1])
            elif arg.startswith(flag + "="):
                values.setdefault(flag, arg.split("=", 1)[1])
    if "--num_processes" in values:
        return int(values["--num_processes"])
    if "--config_file" in values:
        config = yaml.safe_load(Path(values["--config_file"]).read_text(encoding="utf-8")) or {}
        return int(config.get("num_processes", 1))
    return None


def _parent_argv() -> list[str]:
    raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def relaunch_multi_cpu(argv: Sequence[str]) -> None:
    """Re-exec ``argv`` (a script and its arguments) under torchrun when needed; else return."""
    if not needs_relaunch(os.environ):
        return
    try:
        processes = requested_processes(_parent_argv())
    except (OSError, ValueError, yaml.YAMLError):
        processes = None
    if processes is None:
        raise InputError(
            "accelerate started one CPU process for a multi-process run and the process count "
            "could not be recovered; use `accelerate launch --multi_gpu --num_processes N` "
            "with `cpu: true` in the training config"
        )
    if processes <= 1:
        return
    command = [
        sys.executable, "-m", "torch.distributed.run",
        f"--nproc_per_node={processes}",
        f"--master_addr={os.environ['MASTER_ADDR']}",
        f"--master_port={os.environ.get('MASTER_PORT', '29500')}",
        *relaunch_target(argv, main_module_name()),
    ]  # fmt: skip
    sys.stdout.flush()
    os.execv(sys.executable, command)


def main_module_name() -> str | None:
    """The module run with ``python -m``, None for a script run by path."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else None


def relaunch_target(argv: Sequence[str], module: str | None) -> list[str]:
    """torchrun's arguments for the same program. A module started with ``-m`` is restarted
    with ``--module``: run by its path, ``distillprint/cli/__main__.py`` would put its own folder
    first on ``sys.path``, where any package module named like a standard one would hide it,
    and its relative position in the package would be lost."""
    # "--": torchrun would otherwise take a program option that abbreviates one of its own
    if module is not None:
        return ["--module", "--", module, *argv[1:]]
    return ["--", *argv]
