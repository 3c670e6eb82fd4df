"""Errors that reach users: each names where the problem is, never a secret."""

from __future__ import annotations

from pathlib import Path

# Exit codes (0: done). CI scripts branch on them, so each means one thing only.
EXIT_GATE = 1  # score --fail-above fired, or verify found a change
EXIT_INPUT = 2  # bad input, as the framework's own usage errors
EXIT_INTERNAL_ERROR = 3  # a bug: never 1, which a gate would read as "above the threshold"
# collect, score, attribute: some requests failed or are still pending; a rerun retries them
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class DistillprintError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class InputError(DistillprintError):
    """Bad user input, located by file, line and field where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path if line is None else f"{self.path}:{line}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class BackendError(DistillprintError):
    """A backend failed in a way retries cannot fix; ``per_request`` when the server refused
    this request only (HTTP 400, 413, 422: a prompt it will not take), not the client as a
    whole (a wrong key, an unknown model), so the other requests are still worth sending."""

    def __init__(self, message: str, *, per_request: bool = False) -> None:
        super().__init__(message)
        self.per_request = per_request


class PromptTooLong(BackendError):
    """A prompt that leaves no room for an answer in a local model's context: refused on its
    own, and never evidence that the run's settings are wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message, per_request=True)


class RetryableError(DistillprintError):
    """A transient failure (429, 5xx, timeout, unparseable body); ``retry_after`` in seconds,
    ``status`` the HTTP status when a server answered with one."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class MissingSecretError(DistillprintError):
    """An API key is required but its environment variable is unset."""

    def __init__(self, variable: str, backend: str) -> None:
        super().__init__(
            f"{backend} needs an API key: set the environment variable {variable} "
            "(keys are read from the environment only)"
        )
        self.variable = variable
