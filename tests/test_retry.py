from __future__ import annotations

import random
from email.utils import formatdate

import httpx
import pytest

from distillprint.errors import BackendError, RetryableError
from distillprint.retry import RetryEvent, RetryPolicy, call_with_retries, parse_retry_after

NO_JITTER = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=30.0, jitter=0.0)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Flaky:
    """Fails with the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_backoff_grows_exponentially_without_jitter() -> None:
    sleep, fn = FakeSleep(), Flaky(*[RetryableError("busy")] * 4)
    assert await call_with_retries(fn, NO_JITTER, sleep=sleep) == "ok"
    assert fn.calls == 5
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


async def test_retry_after_is_a_floor_capped_at_max_delay() -> None:
    sleep = FakeSleep()
    fn = Flaky(
        RetryableError("429", retry_after=3.0),  # above backoff 0.5: wait as asked
        RetryableError("429", retry_after=0.1),  # below backoff 1.0: backoff wins
        RetryableError("429", retry_after=3600.0),  # absurd: capped
    )
    await call_with_retries(fn, NO_JITTER, sleep=sleep)
    assert sleep.delays == [3.0, 1.0, 30.0]


async def test_backoff_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=5.0, jitter=0.0)
    sleep = FakeSleep()
    await call_with_retries(Flaky(*[RetryableError("x")] * 6), policy, sleep=sleep)
    assert sleep.delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


async def test_jitter_only_shrinks_delays_within_the_fraction() -> None:
    policy = RetryPolicy(max_attempts=40, base_delay_s=1.0, max_delay_s=1.0, jitter=0.5)
    sleep = FakeSleep()
    await call_with_retries(
        Flaky(*[RetryableError("x")] * 30), policy, sleep=sleep, rng=random.Random(1)
    )
    assert all(0.5 <= d <= 1.0 for d in sleep.delays)
    assert len(set(sleep.delays)) > 20  # really random, not a constant


async def test_non_retryable_errors_propagate_at_once() -> None:
    for error in (BackendError("401"), ValueError("bug")):
        sleep, fn = FakeSleep(), Flaky(error)
        with pytest.raises(type(error)):
            await call_with_retries(fn, NO_JITTER, sleep=sleep)
        assert fn.calls == 1 and sleep.delays == []


async def test_gives_up_after_max_attempts_with_a_retryable_error() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.0, jitter=0.0)
    busy = RetryableError("still busy", retry_after=2.0, status=429)
    sleep, fn = FakeSleep(), Flaky(*[busy] * 5)
    with pytest.raises(RetryableError, match=r"still busy \(gave up after 3 attempts\)") as info:
        await call_with_retries(fn, policy, sleep=sleep)
    assert fn.calls == 3 and len(sleep.delays) == 2
    assert (info.value.retry_after, info.value.status) == (2.0, 429)


async def test_on_retry_sees_each_failure_and_its_delay() -> None:
    events: list[RetryEvent] = []
    first = RetryableError("a", retry_after=2.0)
    await call_with_retries(
        Flaky(first, RetryableError("b")), NO_JITTER, on_retry=events.append, sleep=FakeSleep()
    )
    assert [(e.attempt, str(e.error), e.delay_s) for e in events] == [(1, "a", 2.0), (2, "b", 1.0)]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError):
        RetryPolicy(multiplier=0.5)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the finer header wins
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    headers = httpx.Headers({"Retry-After": formatdate(now + 42, usegmt=True)})
    assert parse_retry_after(headers, now=now) == pytest.approx(42.0)
    past = httpx.Headers({"Retry-After": formatdate(now - 42, usegmt=True)})
    assert parse_retry_after(past, now=now) == 0.0
