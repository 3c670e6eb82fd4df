from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from distillprint.backends import BackendOptions
from distillprint.backends.files import create_file_backend
from distillprint.collect import REFUSALS_BEFORE_STOP, collect
from distillprint.core_types import Generation, GenerationRequest
from distillprint.errors import BackendError, RetryableError
from distillprint.probes import Probe, ProbeSet
from distillprint.retry import RetryPolicy
from distillprint.store import ResponseStore
from fakes import FakeBackend

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0)


def probe_set(n: int = 5) -> ProbeSet:
    probes = tuple(
        Probe(id=f"p{i}", category="c", prompt=f"prompt {i}", rationale="r") for i in range(n)
    )
    return ProbeSet(name="t", version="1", probes=probes)


async def test_resume_sends_only_what_is_missing(tmp_path: Path) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        first = FakeBackend(batch_size=2)
        summary = await collect(first, probe_set(3), store, samples=2, retry=FAST)
        assert (summary.stored_now, summary.already_stored) == (6, 0)
        assert [len(call) for call in first.calls] == [2, 2, 2]
        again = FakeBackend(batch_size=2)
        summary = await collect(again, probe_set(4), store, samples=2, retry=FAST)
        assert (summary.stored_now, summary.already_stored) == (2, 6)
        assert sorted(r.probe_id for call in again.calls for r in call) == ["p3", "p3"]
        assert store.count() == 8


async def test_transient_failures_are_retried(tmp_path: Path) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(transient_failures=2)
        summary = await collect(backend, probe_set(2), store, retry=FAST, concurrency=1)
        assert summary.stored_now == 2 and summary.failed == 0


async def test_exhausted_retries_are_reported_not_stored(tmp_path: Path) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(transient_failures=100)
        summary = await collect(backend, probe_set(2), store, retry=FAST, concurrency=1)
        assert summary.failed == 2 and not summary.complete
        assert store.count() == 0


async def test_fatal_error_keeps_what_was_stored(tmp_path: Path) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(fatal_after=2)
        with pytest.raises(BackendError):
            await collect(backend, probe_set(5), store, retry=FAST, concurrency=1)
        assert store.count() == 2
        summary = await collect(FakeBackend(), probe_set(5), store, retry=FAST)
        assert (summary.stored_now, summary.already_stored) == (3, 2)


async def test_a_refused_prompt_is_settled_alone(tmp_path: Path) -> None:
    # asking again gets the same refusal: not a failure a rerun fixes, so not "incomplete"
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(refused_prompts=frozenset({"prompt 1"}))
        summary = await collect(backend, probe_set(4), store, retry=FAST, concurrency=2)
        assert (summary.stored_now, summary.refused, summary.failed) == (3, 1, 0)
        assert summary.complete and not summary.errors
        assert summary.refusals == {"p1": "simulated 400: prompt refused"}



async def test_a_refused_prompt_does_not_take_its_batch_mates_with_it(tmp_path: Path) -> None:
    # a local model refuses a prompt longer than its context for the whole batch call
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(batch_size=4, refused_prompts=frozenset({"prompt 1"}))
        summary = await collect(backend, probe_set(4), store, retry=FAST, concurrency=1)
        assert (summary.stored_now, summary.refused) == (3, 1)
        assert summary.refusals == {"p1": "simulated 400: prompt refused"}



async def test_a_probe_refused_for_each_of_its_samples_is_one_refused_probe(
    tmp_path: Path,
) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(refused_prompts=frozenset({"prompt 1"}))
        summary = await collect(backend, probe_set(3), store, samples=3, retry=FAST)
        assert (summary.stored_now, summary.refused) == (6, 3)  # requests
        assert list(summary.refusals) == ["p1"]  # probes



async def test_prompts_too_long_for_the_model_never_read_as_a_refused_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distillprint.collect as collect_module
    from distillprint.errors import PromptTooLong

    class ShortContext(FakeBackend):
        async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
            if any(int(r.prompt.split()[-1]) < 10 for r in requests):  # the long ones first
                raise PromptTooLong("a prompt of 900 tokens leaves no room")
            return await super().generate(requests)

    monkeypatch.setattr(collect_module, "_shuffled_batches",
                        lambda requests, size: iter([[r] for r in requests]))
    with ResponseStore(tmp_path / "s.sqlite") as store:
        summary = await collect(ShortContext(), probe_set(14), store, retry=FAST,
                                concurrency=1)
    assert (summary.refused, summary.stored_now) == (10, 4)  # not stopped after 5


async def test_answers_claimed_by_a_stalled_collector_are_not_reported_as_done(
    tmp_path: Path,
) -> None:
    from distillprint.store import store_key

    probes = probe_set(4)
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend()
        held = [store_key(backend.identity, r) for r in list(probes.requests(1))[:2]]
        # another live process (here: a fake host name) holds two requests and stores nothing
        store._db.executemany("INSERT INTO claims (key, host, pid, claimed_at) VALUES (?,?,?,?)",
                              [(key, "other-host", 1, 1e12) for key in held])
        summary = await collect(backend, probes, store, retry=FAST, wait_for_others_s=0.3)
        counts = (summary.stored_now, summary.stored_elsewhere, summary.pending_elsewhere)
        assert counts == (2, 0, 2)
        assert not summary.complete


async def test_a_request_another_collector_gave_up_unstored_is_asked_here(
    tmp_path: Path,
) -> None:
    """Two runs on one store: the other one's log lacked an answer (or its request failed);
    it released the claim, so this run asks itself instead of reporting it pending."""
    import asyncio

    from distillprint.store import store_key

    probes = probe_set(4)
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend()
        held = store_key(backend.identity, next(iter(probes.requests(1))))
        store._db.execute("INSERT INTO claims (key, host, pid, claimed_at) VALUES (?,?,?,?)",
                          (held, "other-host", 1, 1e12))

        async def other_collector_gives_up() -> None:
            await asyncio.sleep(0.3)
            store._db.execute("DELETE FROM claims WHERE host='other-host'")

        summary, _ = await asyncio.gather(
            collect(backend, probes, store, retry=FAST, wait_for_others_s=5.0),
            other_collector_gives_up())
        counts = (summary.stored_now, summary.stored_elsewhere, summary.pending_elsewhere)
        assert counts == (4, 0, 0) and summary.complete
        claims = store._db.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
    assert claims == 0  # a finished run leaves no claims behind


async def test_a_failure_that_another_collector_then_answered_is_not_missing(
    tmp_path: Path,
) -> None:
    from distillprint.store import ProbeContext, store_key

    probes = probe_set(3)
    with ResponseStore(tmp_path / "s.sqlite") as store:

        class AnsweredElsewhere(FakeBackend):
            """Fails one prompt here; meanwhile another collector stores its answer."""

            async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
                if requests[0].prompt == "prompt 1":
                    store.add(self.identity, requests[0], Generation("from elsewhere"),
                              ProbeContext(probes.name, probes.version, {}),
                              key=store_key(self.identity, requests[0]))
                    raise RetryableError("simulated 503")
                return await super().generate(requests)

        summary = await collect(AnsweredElsewhere(), probes, store, retry=FAST)
    assert (summary.stored_now, summary.failed, summary.stored_elsewhere) == (2, 0, 1)
    assert summary.complete


async def test_a_log_with_gaps_stores_every_answer_it_has(tmp_path: Path) -> None:
    log = tmp_path / "teacher.jsonl"
    logged = [0, 1, 3, 4]  # prompt 2 was never answered
    log.write_text("".join(json.dumps({"prompt": f"prompt {i}", "response": f"answer {i}"}) + "\n"
                           for i in logged), encoding="utf-8")
    backend = create_file_backend(str(log), BackendOptions())
    assert backend.max_batch_size >= 5  # one batch: the gap must not cost its batch mates
    with ResponseStore(tmp_path / "s.sqlite") as store:
        summary = await collect(backend, probe_set(5), store, retry=FAST)
        stored = {r.probe_id: r.response for r in store.responses()}
    assert (summary.stored_now, summary.unavailable, summary.failed) == (4, 1, 0)
    assert stored == {f"p{i}": f"answer {i}" for i in logged}


def test_an_interrupted_collection_says_that_nothing_is_lost() -> None:
    import io

    from rich.console import Console

    from distillprint.collect_run import resumable

    printed = io.StringIO()
    with pytest.raises(KeyboardInterrupt), resumable(Console(file=printed)):
        raise KeyboardInterrupt
    assert "everything answered so far is stored" in printed.getvalue()


async def test_a_setting_refused_on_every_request_stops_the_run(tmp_path: Path) -> None:
    # every prompt refused (as a model that rejects the sampling settings does): stop early
    # with the server's reason instead of sending all 40 requests
    refused = frozenset(f"prompt {i}" for i in range(40))
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(refused_prompts=refused)
        with pytest.raises(BackendError, match=r"first 5 requests were all refused.*refused"):
            await collect(backend, probe_set(40), store, retry=FAST, concurrency=1)
        assert store.count() == 0


async def test_refusals_after_an_answer_fail_alone(tmp_path: Path) -> None:
    # once the model has answered, refusals are the prompts' own: the run goes on
    refused = frozenset(f"prompt {i}" for i in range(1, 40))
    with ResponseStore(tmp_path / "s.sqlite") as store:
        await collect(FakeBackend(), probe_set(1), store, retry=FAST)
        summary = await collect(FakeBackend(refused_prompts=refused), probe_set(40), store,
                                retry=FAST, concurrency=1)
    assert (summary.already_stored, summary.stored_now, summary.refused) == (1, 0, 39)



async def test_fast_refusals_do_not_stop_a_server_that_answers_the_rest(tmp_path: Path) -> None:
    # 10 prompts refused at once, 30 answered slowly: at 16 requests at a time the refusals
    # returning first are fewer than the requests in flight, so the run goes on
    refused = frozenset(f"prompt {i}" for i in range(10))
    backend = FakeBackend(refused_prompts=refused, answer_delay_s=0.05)
    with ResponseStore(tmp_path / "s.sqlite") as store:
        summary = await collect(backend, probe_set(40), store, retry=FAST, concurrency=16)
    assert (summary.stored_now, summary.refused) == (30, 10)


async def test_an_answer_in_flight_when_refusals_reach_the_stop_resumes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import distillprint.collect as collect_module

    # one slow answer first, then 9 refusals return while it is in flight: the workers
    # drain, the answer lands, and the run goes on instead of stopping
    order = [5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]

    def in_order(requests, size):  # type: ignore[no-untyped-def]
        return iter([[requests[i]] for i in order])

    monkeypatch.setattr(collect_module, "_shuffled_batches", in_order)
    refused = frozenset(f"prompt {i}" for i in range(10) if i != 5)
    backend = FakeBackend(refused_prompts=refused, answer_delay_s=0.2)
    with ResponseStore(tmp_path / "s.sqlite") as store:
        summary = await collect(backend, probe_set(12), store, retry=FAST, concurrency=2)
    assert (summary.stored_now, summary.refused) == (3, 9)


async def test_a_server_that_never_answers_is_given_up_on_not_retried_for_every_probe(
    tmp_path: Path,
) -> None:
    """Unreachable (retries spent) is not refused (a wrong request, exit 2): the run stops
    early and reports the failures, so a rerun sends the rest once the server is back."""
    with ResponseStore(tmp_path / "s.sqlite") as store:
        backend = FakeBackend(transient_failures=1000)
        summary = await collect(backend, probe_set(40), store, retry=FAST, concurrency=1)
    assert (summary.stored_now, summary.failed) == (0, REFUSALS_BEFORE_STOP)
    assert not summary.complete and "unreachable or fails every request" in summary.errors[0]
    assert f"{40 - REFUSALS_BEFORE_STOP} requests were not sent" in summary.errors[0]
    attempts = 1000 - backend._transient_failures
    assert attempts == REFUSALS_BEFORE_STOP * FAST.max_attempts  # not 40 rounds of retries


class GoesAway(FakeBackend):
    """Answers the first ``answers`` calls, then finds no server for good."""

    def __init__(self, answers: int) -> None:
        super().__init__()
        self.left = answers

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if self.left <= 0:
            raise RetryableError("simulated: connection refused")
        self.left -= 1
        return await super().generate(requests)


async def test_a_server_that_goes_away_mid_run_is_given_up_on_too(tmp_path: Path) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        summary = await collect(GoesAway(answers=3), probe_set(40), store, retry=FAST,
                                concurrency=1)
    assert (summary.stored_now, summary.failed) == (3, REFUSALS_BEFORE_STOP)
    unsent = 40 - 3 - REFUSALS_BEFORE_STOP
    assert "after earlier answers" in summary.errors[0]
    assert f"{unsent} requests were not sent" in summary.errors[0]


async def test_a_server_that_recovers_is_not_given_up_on(tmp_path: Path) -> None:
    with ResponseStore(tmp_path / "s.sqlite") as store:
        # the first 3 requests fail for good (3 attempts each), then it answers
        backend = FakeBackend(transient_failures=3 * FAST.max_attempts)
        summary = await collect(backend, probe_set(12), store, retry=FAST, concurrency=1)
    assert (summary.stored_now, summary.failed) == (9, 3)


def test_a_shortened_retry_after_is_said(caplog: pytest.LogCaptureFixture) -> None:
    from distillprint.collect import _log_retry
    from distillprint.retry import RetryEvent

    with caplog.at_level("WARNING", logger="distillprint"):
        _log_retry(RetryEvent(1, RetryableError("429", retry_after=86400.0), 30.0))
        _log_retry(RetryEvent(1, RetryableError("429", retry_after=2.0), 2.0))
    lines = caplog.text.splitlines()
    assert "retrying in 30.0 s (the server asked for 86400 s; waits are capped)" in lines[0]
    assert "asked for" not in lines[1]
