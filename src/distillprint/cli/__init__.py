"""The ``distillprint`` command line: thin wrappers over the library, errors without tracebacks.

Each module holds one family of commands; this one assembles them and is the entry point.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Annotated

import typer

from distillprint import __version__
from distillprint.cli.common import EXIT_CODES, console, out
from distillprint.cli.data import collect, models_app, probes_app, responses_app
from distillprint.cli.research import benchmark_app, embed, zoo_app
from distillprint.cli.scoring import ATTRIBUTE_HELP, attribute, score, verify
from distillprint.cli.serving import serve
from distillprint.errors import (
    EXIT_INPUT,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    DistillprintError,
)

app = typer.Typer(
    help="Decide, with evidence, whether a language model was distilled from a teacher.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog=EXIT_CODES["all"],
)
app.add_typer(probes_app, name="probes")
app.add_typer(models_app, name="models")
app.add_typer(responses_app, name="responses")
app.command(epilog=EXIT_CODES["collect"])(collect)
app.command(epilog=EXIT_CODES["score"])(score)
app.command(help=ATTRIBUTE_HELP, epilog=EXIT_CODES["attribute"])(attribute)
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(zoo_app, name="zoo")
app.command()(embed)
app.command(epilog=EXIT_CODES["verify"])(verify)
app.command()(serve)


def _version(value: bool) -> None:
    if value:
        out.print(f"distillprint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """distillprint: probe, embed, score and report model distillation."""


def _configure_logging() -> None:
    import logging

    from rich.logging import RichHandler

    from distillprint.secrets import RedactingFilter

    handler = RichHandler(console=console, show_path=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s")
    logging.getLogger("distillprint").setLevel(logging.INFO)


def _stop_on_sigterm_as_on_ctrl_c() -> list[bool]:
    """A CI job's timeout sends SIGTERM: stop as Ctrl-C stops a run (claims on the store
    released, the "nothing is lost, rerun to resume" note said), not mid-write. The list
    says whether it happened."""
    terminated: list[bool] = []

    def interrupt(signum: int, frame: object) -> None:
        terminated.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    return terminated


def main() -> None:
    """Console entry point: user errors print one clear line and exit 2, never a traceback."""
    # Before torch loads: busy-waiting OpenMP threads starve each other on shared cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from distillprint.secrets import known_secrets, redact

    _configure_logging()
    terminated = _stop_on_sigterm_as_on_ctrl_c()
    try:
        app()
    except SystemExit as exc:
        # the interrupt's exit status (130) would say Ctrl-C; a CI timeout's SIGTERM is 143
        sys.exit(EXIT_TERMINATED if terminated and exc.code == EXIT_INTERRUPTED else exc.code)
    except KeyboardInterrupt:
        # before the command runs (while the CLI is being built) the framework does not turn
        # the interrupt into its exit status: nothing has started, so there is nothing to say
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except DistillprintError as exc:
        console.print(f"error: {redact(str(exc), known_secrets())}", markup=False, highlight=False)
        sys.exit(EXIT_INPUT)
    except OSError as exc:
        # a path the user named: a folder where a file should be, no permission, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"error: {where}{exc.strerror or exc}"
        console.print(redact(message, known_secrets()), markup=False, highlight=False)
        sys.exit(EXIT_INPUT)
    except Exception:
        # Exit 1 means "above the threshold" to a CI gate, so a bug must not exit 1 as Python
        # would; the traceback is kept (redacted) for the bug report.
        console.print(redact(traceback.format_exc(), known_secrets()), markup=False,
                      highlight=False)
        console.print(f"internal error: please report it with the traceback above; exit code "
                      f"{EXIT_INTERNAL_ERROR}", markup=False)
        sys.exit(EXIT_INTERNAL_ERROR)
