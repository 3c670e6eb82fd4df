"""Where a result came from: the commit of the distillprint checkout and the command that
produced it."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path


def git_commit() -> str | None:
    """HEAD of the repository holding this package (not of the working directory, which may
    be another repository or none); None for an installed package outside any checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def command_line(script: str | Path, argv: Sequence[str]) -> str:
    """The command that reproduces a result, as typed from the checkout's root: what a
    committed table prints under "Regenerate with", so that it names the options it ran with."""
    path = Path(script).resolve()
    root = Path(__file__).resolve().parents[2]
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    return shlex.join(["python", str(shown), *argv])
