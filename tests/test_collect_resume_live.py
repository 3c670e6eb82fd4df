"""Collection against a real misbehaving OpenAI-compatible server on loopback.

The collector runs as a real ``distillprint collect`` process; it is killed with SIGKILL
mid-run and rerun. Every probe must end up stored exactly once and nothing already stored
may be requested again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from distillprint.backends.echo import EchoBackend
from distillprint.core_types import Generation, GenerationRequest
from distillprint.probes import load_probe_set
from distillprint.serve import RunningServer, start_server_in_thread
from distillprint.serve_faults import FaultPlan

pytestmark = pytest.mark.integration

PROBES = load_probe_set("core-v1")


STALL_S = 3.0


class RecordingEcho(EchoBackend):
    """Remembers every prompt that reached the model, across server threads."""

    def __init__(self) -> None:
        super().__init__("suspect", max_batch_size=1)
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        with self._lock:
            self.prompts.extend(request.prompt for request in requests)
        return await super().generate(requests)


@pytest.fixture
def flaky_server() -> Iterator[tuple[RunningServer, RecordingEcho]]:
    backend = RecordingEcho()
    plan = FaultPlan(
        script=("429", "429", "500", "truncated", "reset"),
        rates={"429": 0.05, "500": 0.03, "502": 0.02, "truncated": 0.03, "non-json": 0.02,
               "reset": 0.02, "stall": 0.01},
        retry_after="0", stall_s=STALL_S, latency_s=0.03, seed=7,
    )
    server = start_server_in_thread(backend, plan)
    try:
        yield server, backend
    finally:
        server.stop()


def collect_command(server: RunningServer, store: Path) -> list[str]:
    return [
        sys.executable, "-m", "distillprint.cli", "collect", "--model", "openai:suspect",
        "--base-url", server.base_url, "--probes", "core-v1", "--store", str(store),
        "--concurrency", "3", "--timeout", "1",
    ]


def stored_prompts(store: Path) -> list[str]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return [row[0] for row in db.execute("SELECT prompt FROM responses")]
        except sqlite3.OperationalError:  # the collector has not created its tables yet
            return []


def test_sigkill_mid_run_then_resume(
    tmp_path: Path, flaky_server: tuple[RunningServer, RecordingEcho]
) -> None:
    server, backend = flaky_server
    store = tmp_path / "store.sqlite"
    env = {**os.environ, "OPENAI_API_KEY": "sk-canary-never-stored-0000"}
    first = subprocess.Popen(collect_command(server, store), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(stored_prompts(store)) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # A stalled request the killed client had already retried is still answered (and
    # recorded) by the server up to STALL_S later: let it land before counting, or it would
    # look like a request sent after its answer was stored.
    time.sleep(STALL_S + 0.5)
    before = set(stored_prompts(store))
    assert 30 <= len(before) < len(PROBES.probes), "the kill must land mid-run"
    sent_before = len(backend.prompts)

    rerun = subprocess.run(collect_command(server, store), env=env, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    after = stored_prompts(store)
    assert sorted(after) == sorted(p.user_prompt for p in PROBES.probes)  # each exactly once
    resent = before & set(backend.prompts[sent_before:])
    assert resent == set(), f"{len(resent)} stored prompts were requested again"
    assert "sk-canary" not in store.read_bytes().decode("latin-1")


def test_two_collectors_on_one_store(
    tmp_path: Path, flaky_server: tuple[RunningServer, RecordingEcho]
) -> None:
    server, backend = flaky_server
    store = tmp_path / "store.sqlite"
    procs = [subprocess.Popen(collect_command(server, store), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    after = stored_prompts(store)
    assert len(after) == len(PROBES.probes) == len(set(after))
    # they split the work: without the per-batch store check each asked for all of it
    assert len(backend.prompts) < 1.5 * len(PROBES.probes)
