"""Retries with exponential backoff and jitter that honour a server's ``Retry-After``.

Backends raise ``RetryableError`` for transient failures and never retry themselves; the
collector wraps each backend call in ``call_with_retries``. Anything else propagates at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from distillprint.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first call; ``jitter`` is the fraction a delay may shrink by."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.multiplier < 1:
            raise ValueError("delays must be non-negative and multiplier at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be a fraction between 0 and 1")

    def delay_s(
        self, retry_number: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry).

        Backoff shrinks by a random fraction up to ``jitter`` so clients that failed together
        spread out. A server's ``Retry-After`` is a floor up to ``max_delay_s``: a wait asked
        for beyond that is cut to it, so one bad header cannot stall a run for hours.
        """
        backoff = min(self.max_delay_s, self.base_delay_s * self.multiplier ** (retry_number - 1))
        backoff *= 1.0 - self.jitter * (rng or random).random()
        if retry_after is None:
            return backoff
        return max(backoff, min(self.max_delay_s, max(0.0, retry_after)))


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each wait: which attempt failed, why, how long we wait."""

    attempt: int
    error: RetryableError
    delay_s: float


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy | None = None,
    *,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Await ``fn()`` until it succeeds, retrying only on ``RetryableError``.

    When every attempt fails, the last error is raised again as a ``RetryableError`` whose
    message says how many attempts were made and which keeps the server's status and
    ``Retry-After``, so callers can still tell "transient, gave up" from a hard failure, and
    a rate limit from an outage.
    """
    policy = policy or RetryPolicy()
    attempt = 1
    while True:
        try:
            return await fn()
        except RetryableError as error:
            if attempt >= policy.max_attempts:
                raise RetryableError(
                    f"{error} (gave up after {attempt} attempts)",
                    retry_after=error.retry_after, status=error.status,
                ) from None
            delay = policy.delay_s(attempt, error.retry_after, rng)
            if on_retry is not None:
                on_retry(RetryEvent(attempt=attempt, error=error, delay_s=delay))
            await sleep(delay)
        attempt += 1


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` is either delta-seconds or an HTTP date; unparseable values are ignored
    rather than trusted. ``headers`` must be case-insensitive (aiohttp's and httpx's are).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
