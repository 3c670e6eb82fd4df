from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from distillprint.backends.base import BackendOptions
from distillprint.backends.echo import EchoBackend, create_echo_backend
from distillprint.backends.files import create_file_backend
from distillprint.backends.openai_compat import create_openai_backend
from distillprint.core_types import ChatMessage, GenerationRequest, SamplingParams
from distillprint.errors import BackendError, InputError, RetryableError
from distillprint.retry import RetryPolicy, call_with_retries
from distillprint.serve import ServeSettings, start_server_in_thread
from distillprint.serve_faults import (
    Fault,
    FaultInjector,
    FaultPlan,
    fault_plan_from_cli,
    parse_rates,
    parse_script,
)
from fakes import FakeBackend
from servers import echo_server

# most tests here talk HTTP to a real server on loopback
pytestmark = pytest.mark.integration


def chat_body(prompt: str = "hello", model: str = "echo-model", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


def test_routes_and_openai_shape() -> None:
    with echo_server(model="tiny") as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/v1/models").json()["data"][0]["id"] == "tiny"
        reply = client.post(
            "/v1/chat/completions", json=chat_body(model="tiny", seed=3, temperature=0.5)
        )
        assert client.get("/nowhere").status_code == 404
        assert client.post("/v1/embeddings", json={}).status_code == 404
    assert reply.status_code == 200
    body = reply.json()
    expected = EchoBackend("tiny").answer(
        GenerationRequest(
            (ChatMessage("user", "hello"),), SamplingParams(temperature=0.5, seed=3, top_p=1.0)
        )
    )
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": expected.text}
    assert body["usage"]["completion_tokens"] == expected.usage.completion_tokens


def test_a_request_for_another_model_is_refused_not_answered() -> None:
    with echo_server(model="tiny") as server, httpx.Client(base_url=server.url) as client:
        other = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o"))
        unnamed = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    assert other.status_code == 404
    message = other.json()["error"]["message"]
    assert "'gpt-4o' is not served here" in message and "'tiny'" in message
    assert unnamed.status_code == 200  # as vLLM: no model named means the served one


def test_n_choices_are_distinct_samples() -> None:
    with echo_server() as server, httpx.Client(base_url=server.url) as client:
        body = client.post("/v1/chat/completions", json=chat_body(n=3)).json()
    texts = [choice["message"]["content"] for choice in body["choices"]]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2] and len(set(texts)) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"messages": []}', "non-empty list"),
        (b'{"messages": [{"role": "robot", "content": "x"}]}', "role must be one of"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "content must be text"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "number"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 0}', "'n'"),
        # options the server cannot honour are refused, not ignored
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": true}', "streaming"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stop": ["\\n"]}', "'stop'"),
        (b'{"messages": [{"role": "user", "content": "x"}], "logprobs": true}', "'logprobs'"),
        (b'{"messages": [{"role": "user", "content": "x"}], "presence_penalty": 1.5}',
         "'presence_penalty' is not supported"),
        (b'{"messages": [{"role": "user", "content": "x"}], '
         b'"response_format": {"type": "json_object"}}', "'response_format'"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "temperature"),
        (b'{"messages": [{"role": "user", "content": "x"}], "top_p": 7}', "top_p"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
         "between 1 and 32768"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000000}',
         "between 1 and 32768"),
    ],
)
def test_bad_requests_get_400_with_a_reason(body: bytes, message: str) -> None:
    with echo_server() as server, httpx.Client(base_url=server.url) as client:
        reply = client.post("/v1/chat/completions", content=body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


def test_content_parts_and_max_completion_tokens_are_understood() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "max_completion_tokens": 1,
    }
    with echo_server() as server, httpx.Client(base_url=server.url) as client:
        choice = client.post("/v1/chat/completions", json=body).json()["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"].split()) == 1
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 1,
            "max_completion_tokens": None,  # a null one does not hide max_tokens
            "frequency_penalty": 0.0, "logprobs": False, "response_format": {"type": "text"}}
    with echo_server() as server, httpx.Client(base_url=server.url) as client:
        choice = client.post("/v1/chat/completions", json=body).json()["choices"][0]
    assert len(choice["message"]["content"].split()) == 1


async def test_concurrent_requests_are_batched() -> None:
    backend = EchoBackend("m", max_batch_size=8, delay_s=0.05)
    settings = ServeSettings(max_batch=4, batch_window_s=0.01)
    server = start_server_in_thread(backend, settings=settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            replies = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=chat_body(f"q{i}", model="m"))
                for i in range(16))
            )
    finally:
        server.stop()
    assert all(r.status_code == 200 for r in replies)
    assert sum(server.batch_sizes) == 16 and max(server.batch_sizes) == 4
    assert len(backend.batch_sizes) <= 8  # batched, not one call per request


def test_required_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE_TEST_KEY", "serve-secret-123")
    settings = ServeSettings(api_key_env="SERVE_TEST_KEY")
    with echo_server(settings=settings) as server, httpx.Client(base_url=server.url) as client:
        denied = client.post("/v1/chat/completions", json=chat_body())
        wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        allowed = client.post(
            "/v1/chat/completions",
            json=chat_body(),
            headers={"Authorization": "Bearer serve-secret-123"},
        )
        health = client.get("/health")
        schemes = [client.get("/v1/models", headers={"Authorization": value}).status_code
                   for value in ("bearer serve-secret-123", "serve-secret-123")]
    assert (denied.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
    assert schemes == [200, 401]  # the scheme in any case, but a scheme it must be
    assert health.status_code == 200 and "serve-secret-123" not in denied.text


def test_required_api_key_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_SERVE_KEY", raising=False)
    with pytest.raises(InputError, match="UNSET_SERVE_KEY"):
        start_server_in_thread(
            EchoBackend("m"), settings=ServeSettings(api_key_env="UNSET_SERVE_KEY")
        )


class ClosingEcho(EchoBackend):
    closed = False

    async def aclose(self) -> None:
        self.closed = True


def test_a_server_that_cannot_start_says_why_and_closes_its_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UNSET_SERVE_KEY", raising=False)
    unkeyed = ClosingEcho("m")
    with pytest.raises(InputError, match="UNSET_SERVE_KEY"):
        start_server_in_thread(unkeyed, settings=ServeSettings(api_key_env="UNSET_SERVE_KEY"))
    taken = ClosingEcho("m")
    with echo_server() as running:
        port = int(running.url.rsplit(":", 1)[1])
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_server_in_thread(taken, port=port)
    assert unkeyed.closed and taken.closed


def test_latency_and_stall_and_prompt_stop() -> None:
    plan = FaultPlan(script=(Fault.STALL,), stall_s=30.0, latency_s=0.05)
    with echo_server(plan=plan) as server, httpx.Client(base_url=server.url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/chat/completions", json=chat_body())
        client.post("/v1/chat/completions", json=chat_body())
        # the server closes its record after the response is sent, so the client can read
        # the reply first; wait for the record rather than race it
        deadline = time.monotonic() + 5.0
        while (records := server.chat_requests())[1].duration_s is None:
            assert time.monotonic() < deadline, records
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0  # stop() woke the 30 s stall
    assert records[0].fault == "stall" and records[0].duration_s is None
    assert records[1].status == 200 and (records[1].duration_s or 0) >= 0.05


def test_rate_faults_are_reproducible_from_the_seed() -> None:
    def faults(seed: int) -> list[str | None]:
        plan = FaultPlan(rates={Fault.RATE_LIMIT: 0.3, Fault.ERROR_503: 0.3}, seed=seed)
        injector = FaultInjector(plan)
        return [f.value if f else None for f in (injector.decide(b"x%d" % i) for i in range(40))]

    assert faults(1) == faults(1)
    assert faults(1) != faults(2)
    assert {"429", "503", None} == set(faults(1))
    # A retried body gets a fresh draw: with p=0.5 twenty retries are not all faulted.
    injector = FaultInjector(FaultPlan(rates={Fault.RESET: 0.5}))
    assert len({injector.decide(b"same") for _ in range(20)}) == 2


def test_cli_fault_options() -> None:
    plan = fault_plan_from_cli("429x2, reset", ["500=0.25"], latency_ms=50, retry_after="")
    assert plan.script == (Fault.RATE_LIMIT, Fault.RATE_LIMIT, Fault.RESET)
    assert plan.rates == {Fault.ERROR_500: 0.25}
    assert (plan.latency_s, plan.retry_after) == (0.05, None)
    assert parse_script("") == ()
    with pytest.raises(InputError, match="valid: 429, 500"):
        parse_script("418")
    with pytest.raises(InputError, match="repeat count"):
        parse_script("429xmany")
    with pytest.raises(InputError, match="FAULT=RATE"):
        parse_rates(["429"])
    with pytest.raises(InputError, match="sum to at most 1"):
        fault_plan_from_cli(rates=["429=0.7", "500=0.7"])


async def test_file_backend_served_over_http(tmp_path: Path) -> None:
    log = tmp_path / "teacher.jsonl"
    log.write_text('{"prompt": "hello", "response": "Hi! I am Teacher."}\n', encoding="utf-8")
    server = start_server_in_thread(create_file_backend(str(log), BackendOptions()))
    client = create_openai_backend("teacher", BackendOptions(base_url=server.base_url))
    params = SamplingParams()
    try:
        known = await client.generate([GenerationRequest((ChatMessage("user", "hello"),), params)])
        with pytest.raises(BackendError, match=r"HTTP 404 .*no logged answer"):
            unknown = GenerationRequest((ChatMessage("user", "bye"),), params)
            await call_with_retries(lambda: client.generate([unknown]), RetryPolicy(jitter=0))
    finally:
        await client.aclose()
        server.stop()
    assert known[0].text == "Hi! I am Teacher."
    assert len(server.chat_requests()) == 2  # the 404 was not retried


def test_echo_backend_is_deterministic_and_sensitive() -> None:
    backend = create_echo_backend("m", BackendOptions(batch_size=3))
    assert isinstance(backend, EchoBackend) and backend.max_batch_size == 3
    base = GenerationRequest((ChatMessage("user", "q"),), SamplingParams())
    variants = [
        base,
        GenerationRequest(base.messages, SamplingParams(temperature=0.1)),
        GenerationRequest(base.messages, base.params, sample_index=1),
        GenerationRequest((ChatMessage("user", "q2"),), base.params),
    ]
    texts = [backend.answer(r).text for r in variants]
    assert backend.answer(base).text == texts[0] and len(set(texts)) == 4


def test_ipv6_loopback() -> None:
    try:
        server = start_server_in_thread(EchoBackend("m"), host="::1")
    except InputError:
        pytest.skip("no IPv6 loopback here")
    with server, httpx.Client() as client:
        assert server.url.startswith("http://[::1]:")
        assert client.get(f"{server.url}/health").status_code == 200


async def test_a_missing_logged_answer_fails_only_its_own_client(tmp_path: Path) -> None:
    log = tmp_path / "teacher.jsonl"
    log.write_text("".join(f'{{"prompt": "q{i}", "response": "a{i}"}}\n' for i in range(3)),
                   encoding="utf-8")
    settings = ServeSettings(batch_window_s=0.2)  # wide window: the requests share a batch
    server = start_server_in_thread(create_file_backend(str(log), BackendOptions()),
                                    settings=settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            replies = await asyncio.gather(*(
                client.post("/v1/chat/completions", json=chat_body(prompt, model="teacher"))
                for prompt in ("q0", "unknown", "q1", "q2")
            ))
    finally:
        server.stop()
    assert max(server.batch_sizes) > 1
    assert [r.status_code for r in replies] == [200, 404, 200, 200]
    assert replies[2].json()["choices"][0]["message"]["content"] == "a1"



async def test_a_refused_prompt_fails_only_its_own_client() -> None:
    backend = FakeBackend("m", batch_size=4, refused_prompts=frozenset({"too long"}))
    server = start_server_in_thread(backend, settings=ServeSettings(batch_window_s=0.2))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            replies = await asyncio.gather(*(
                client.post("/v1/chat/completions", json=chat_body(prompt, model="m"))
                for prompt in ("q0", "too long", "q1")
            ))
    finally:
        server.stop()
    assert max(server.batch_sizes) > 1
    assert [r.status_code for r in replies] == [200, 400, 200]
    assert "prompt refused" in replies[1].json()["error"]["message"]


def test_upstream_refusals_keep_their_kind_and_hide_the_upstream_address() -> None:
    from distillprint.serve_http import _error_for

    auth = _error_for(BackendError("openai:m: HTTP 401 from http://10.0.0.5:8000/v1/chat: bad key"))
    assert auth.status == 502 and "10.0.0.5" not in str(auth) and "HTTP 401" in str(auth)
    prompt = _error_for(BackendError("openai:m: HTTP 400 from https://up.example/v1: too long",
                                     per_request=True))
    assert prompt.status == 400 and "up.example" not in str(prompt)
    busy = _error_for(RetryableError("openai:m: HTTP 500 from http://10.0.0.5:8000/v1/chat"))
    assert busy.status == 503 and "10.0.0.5" not in str(busy) and "HTTP 500" in str(busy)
    limited = _error_for(RetryableError("openai:m: HTTP 429 from http://10.0.0.5:8000/v1/chat",
                                        retry_after=7.0, status=429))
    assert (limited.status, limited.kind) == (429, "rate_limit_error")


def test_the_serve_command_serves_with_its_options_until_terminated() -> None:
    """The README's `distillprint serve`, as a process: the options reach the server."""
    command = [sys.executable, "-m", "distillprint", "serve", "--model", "echo:x", "--port", "0",
               "--served-model-name", "suspect", "--fault-script", "503",
               "--batch-window-ms", "400"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the server did not announce itself within 60 s"
        announced = process.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+)/v1", announced)
        assert found, announced
        with httpx.Client(base_url=found.group(1), timeout=10) as client:
            assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["suspect"]
            assert client.post("/v1/chat/completions",
                               json=chat_body(model="suspect")).status_code == 503
            started = time.perf_counter()
            answered = client.post("/v1/chat/completions", json=chat_body(model="suspect"))
            assert answered.status_code == 200
            # a lone request waits out the window for company: 400 ms, not the default 5 ms
            assert 0.35 < time.perf_counter() - started < 5
    finally:
        process.send_signal(signal.SIGTERM)
        remaining, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "stopping" in remaining
