"""What every command shares: the consoles, option types, their checks and exit codes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from distillprint.errors import (
    EXIT_GATE,
    EXIT_INCOMPLETE,
    EXIT_INPUT,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    InputError,
)
from distillprint.probes import MAX_TOKENS_RANGE, TEMPERATURE_RANGE
from distillprint.retry import RetryPolicy
from distillprint.score_run import RunSettings

# emoji off: model labels such as ``echo:a:b`` hold ``:a:``, which rich would draw as an emoji
console = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(soft_wrap=True, emoji=False)

_INPUT_AND_BUGS = (f"{EXIT_INPUT} bad input, named by file, line or field; "
                   f"{EXIT_INTERNAL_ERROR} an internal error (a bug, traceback printed)")


def _incomplete(commands: str = "") -> str:
    return (f"{EXIT_INCOMPLETE}{commands} some requests failed or are pending: the result uses "
            "what arrived, and a rerun asks only for the rest; "
            f"{EXIT_INTERRUPTED} interrupted, {EXIT_TERMINATED} terminated (SIGTERM): what "
            "arrived is stored")


#: each command's exit codes, for its --help (the README lists them all)
EXIT_CODES = {
    "score": f"Exit codes: 0 done; {EXIT_GATE} the --fail-above gate fired; {_INPUT_AND_BUGS}; "
             f"{_incomplete()}.",
    "collect": f"Exit codes: 0 done; {_INPUT_AND_BUGS}; {_incomplete()}.",
    "verify": f"Exit codes: 0 the report matches its store; {EXIT_GATE} something changed, or "
              f"the report holds no hash to check; {_INPUT_AND_BUGS}.",
    "all": f"Exit codes: 0 done; {EXIT_GATE} a gate fired (score --fail-above) or a check "
           f"failed (verify); {_INPUT_AND_BUGS}; {_incomplete(' (collect, score, attribute)')}.",
}
EXIT_CODES["attribute"] = EXIT_CODES["collect"]

StoreOption = Annotated[Path, typer.Option("--store", help="SQLite response store.")]
DefaultStoreOption = Annotated[Path, typer.Option(help="SQLite response store.")]
DEFAULT_STORE = Path("distillprint.sqlite")


def probability_option(value: float | None, name: str) -> float | None:
    # NaN or a number outside [0, 1] would silently switch a CI gate off (or always on)
    if value is not None and not 0.0 <= value <= 1.0:
        raise typer.BadParameter(f"must be a probability from 0 to 1, got {value}",
                                 param_hint=name)
    return value


def alpha_option(value: float) -> float:
    # checked before any model is asked: the run would otherwise fail after paying for it
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"must be between 0 and 1 (exclusive), got {value}",
                                 param_hint="--alpha")
    return value


def max_background_option(value: str | None) -> int | str | None:
    """``--max-background``: a count, or ``all`` (kept as a word for the config to read)."""
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'all', got '{value}'",
                                 param_hint="--max-background") from None


ProbesOption = Annotated[str, typer.Option(help="Probe set name or file.")]
BackgroundOption = Annotated[
    list[str] | None,
    typer.Option("--background", help=(
        "Background model spec (repeatable): unrelated models answering the same probes. A "
        "probability needs 3, a verdict 4 (it must hold with any one left out); with fewer "
        "than 15 verdicts often rest on single models and read inconclusive.")),
]
BackgroundDirOption = Annotated[
    list[Path] | None,
    typer.Option("--background-dir", help="Folder of answer logs used as background (repeatable)."),
]
SamplesOption = Annotated[int, typer.Option(min=1, help="Samples per probe.")]
ConcurrencyOption = Annotated[int, typer.Option(min=1, help="Concurrent requests.")]
TemperatureOption = Annotated[float | None, typer.Option(
    min=TEMPERATURE_RANGE[0], max=TEMPERATURE_RANGE[1], help="Override temperature.")]
MaxTokensOption = Annotated[int | None, typer.Option(
    min=MAX_TOKENS_RANGE[0], max=MAX_TOKENS_RANGE[1], help="Override max tokens.")]
ScoringModelOption = Annotated[
    Path | None, typer.Option("--scoring-model", help="Scoring model JSON (default: shipped).")
]


MaxBackgroundOption = Annotated[
    int | None,
    typer.Option(min=0, help="Draw this many logs from --background-dir (seeded)."),
]
SeedOption = Annotated[int, typer.Option(min=0, help="Seed for drawing background logs.")]
SuspectBaseUrlOption = Annotated[
    str | None, typer.Option("--base-url", help="Suspect's base URL (openai:, anthropic:).")
]
SuspectKeyEnvOption = Annotated[
    str | None,
    typer.Option("--api-key-env", help=(
        "Environment variable holding the suspect's API key (default: OPENAI_API_KEY or "
        "ANTHROPIC_API_KEY, by the spec's prefix). A key is sent to one host only: a run "
        "that would send one variable's key to several hosts is refused.")),
]
TeacherKeyEnvOption = Annotated[
    str | None,
    typer.Option("--teacher-api-key-env",
                 help="Environment variable holding the teacher's API key (as --api-key-env)."),
]


def seconds_option(value: float) -> float:
    # 0 and NaN would read as "no timeout" to the HTTP client; a negative one fails every request
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"must be a positive number of seconds, got {value}")
    return value


TimeoutOption = Annotated[float, typer.Option(
    help="Request timeout, seconds: a server that takes connections but never answers costs "
         f"this times the {RetryPolicy().max_attempts} attempts per request.",
    callback=seconds_option)]


def run_settings(
    probes: str, store: Path, samples: int, concurrency: int, temperature: float | None,
    max_tokens: int | None, background_dirs: list[Path] | None, max_background: int | None,
    seed: int, timeout_s: float,
) -> RunSettings:
    if max_background is not None and not background_dirs:
        # it draws from the folders; models named with --background are all used
        raise InputError("--max-background draws from --background-dir folders, and none is "
                         "given", field="max-background")
    return RunSettings(
        probes=probes, store=store, samples=samples, concurrency=concurrency,
        temperature=temperature, max_tokens=max_tokens,
        background_dirs=tuple(background_dirs or ()), max_background=max_background, seed=seed,
        timeout_s=timeout_s,
    )
