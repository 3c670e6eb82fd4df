from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from distillprint.backends.base import BackendOptions
from distillprint.backends.echo import EchoBackend
from distillprint.backends.openai_compat import OpenAIBackend, create_openai_backend
from distillprint.core_types import ChatMessage, Generation, GenerationRequest, SamplingParams
from distillprint.errors import BackendError, InputError, MissingSecretError, RetryableError
from distillprint.retry import RetryPolicy, call_with_retries
from servers import Canned, Reply, ScriptedServer, Seen, chat_reply, echo_server

FAST = RetryPolicy(max_attempts=12, base_delay_s=0.0, max_delay_s=0.0, jitter=0.0)
REQUEST = GenerationRequest(
    (ChatMessage("system", "Be brief."), ChatMessage("user", "Who made you?")),
    SamplingParams(temperature=0.3, top_p=0.9, max_tokens=64, seed=5),
    sample_index=2,
    probe_id="identity-1",
)

# most tests here talk HTTP to a real server on loopback
pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CANARY_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def backend_for() -> AsyncIterator[list[OpenAIBackend]]:
    """Backends created by a test, closed after it."""
    made: list[OpenAIBackend] = []
    yield made
    for backend in made:
        await backend.aclose()


def make(
    made: list[OpenAIBackend],
    base_url: str,
    timeout_s: float = 10.0,
    api_key_env: str | None = None,
) -> OpenAIBackend:
    options = BackendOptions(base_url=base_url, timeout_s=timeout_s, api_key_env=api_key_env)
    backend = create_openai_backend("test-model", options)
    assert isinstance(backend, OpenAIBackend)
    made.append(backend)
    return backend


async def generate(backend: OpenAIBackend, request: GenerationRequest = REQUEST) -> Generation:
    return (await backend.generate([request]))[0]


async def test_every_fault_is_survived_through_retries(backend_for: list[OpenAIBackend]) -> None:
    script = "429,500,502,503,truncated,cut,non-json,reset,stall"
    with echo_server(script, model="test-model") as server:
        backend = make(backend_for, server.base_url, timeout_s=0.4)
        retried: list[str] = []
        generation = await call_with_retries(
            lambda: generate(backend), FAST, on_retry=lambda e: retried.append(str(e.error))
        )
        chat = server.chat_requests()
    assert [r.fault for r in chat] == [*script.split(","), None]
    assert len(retried) == 9 and "HTTP 429" in retried[0] and "within 0.4 s" in retried[-1]
    # The answer is exactly what the echo model gives for the seed the backend sent.
    sent = replace(REQUEST, params=replace(REQUEST.params, seed=5 + 2), sample_index=0)
    assert generation.text == EchoBackend("test-model").answer(sent).text
    assert generation.usage.completion_tokens == len(generation.text.split())


async def test_retry_after_reaches_the_retry_loop(backend_for: list[OpenAIBackend]) -> None:
    script = [Canned(429, {"error": "slow down"}, {"Retry-After": "3"})]
    with ScriptedServer(script, default=chat_reply("fine")) as server:
        backend = make(backend_for, server.url + "/v1")
        delays: list[float] = []

        async def sleep(delay: float) -> None:
            delays.append(delay)

        generation = await call_with_retries(
            lambda: generate(backend), RetryPolicy(jitter=0.0), sleep=sleep
        )
    assert generation.text == "fine" and delays == [3.0] and len(server.seen) == 2


async def test_payload_and_parsing(
    backend_for: list[OpenAIBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-payload-0000")
    with ScriptedServer([chat_reply("Hi there", "length")]) as server:
        backend = make(backend_for, server.url + "/v1/")
        generation = await generate(backend)
        seen = server.seen[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test-payload-0000"
    assert seen.body == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Who made you?"},
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 64,
        "seed": 7,  # seed + sample_index, so samples differ on seed-honouring servers
    }
    assert (generation.text, generation.finish_reason) == ("Hi there", "length")
    assert (generation.usage.prompt_tokens, generation.usage.completion_tokens) == (11, 2)
    assert generation.latency_s > 0


async def test_empty_and_null_completions_are_answers(backend_for: list[OpenAIBackend]) -> None:
    with echo_server("empty", model="test-model") as server:
        generation = await generate(make(backend_for, server.base_url))
    assert (generation.text, generation.finish_reason) == ("", "stop")
    with ScriptedServer([chat_reply(None, "content_filter")]) as scripted:
        generation = await generate(make(backend_for, scripted.url))
    assert (generation.text, generation.finish_reason) == ("", "content_filter")
    refused = chat_reply(None)
    refused.body["choices"][0]["message"]["refusal"] = "I can't help with that."
    with ScriptedServer([refused]) as scripted:
        generation = await generate(make(backend_for, scripted.url))
    assert (generation.text, generation.finish_reason) == ("I can't help with that.", "stop")


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"error": {"message": "upstream overloaded"}},
        {"choices": [{"message": {"role": "assistant"}}]},
        {"choices": [{"message": {"content": ["not", "text"]}}]},
        [1, 2, 3],
    ],
)
async def test_bodies_missing_fields_are_retryable(
    backend_for: list[OpenAIBackend], body: object
) -> None:
    with ScriptedServer([Canned(200, body)]) as server, pytest.raises(RetryableError):
        await generate(make(backend_for, server.url))


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_not_retried(backend_for: list[OpenAIBackend], status: int) -> None:
    with ScriptedServer([Canned(status, {"error": {"message": "model does not exist"}})]) as server:
        backend = make(backend_for, server.url)
        with pytest.raises(BackendError, match=rf"HTTP {status} .*model does not exist") as info:
            await call_with_retries(lambda: generate(backend), FAST)
        assert len(server.seen) == 1
    # a 400 refuses this request only, so a collection goes on; 403/404 refuse them all
    assert info.value.per_request is (status == 400)


def echo_key_401(seen: Seen) -> Canned:
    """Some APIs quote the rejected key back; the worst case for a leak."""
    key = seen.headers.get("authorization", "").removeprefix("Bearer ")
    return Canned(401, {"error": {"message": f"Incorrect API key provided: {key}"}})


@pytest.mark.parametrize("key", ["sk-canary-XXXX-1234567890", "plain-canary-value-77"])
async def test_401_never_shows_the_key(
    backend_for: list[OpenAIBackend],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    key: str,
) -> None:
    monkeypatch.setenv("CANARY_KEY", key)
    caplog.set_level(logging.DEBUG)
    with ScriptedServer([echo_key_401]) as server:
        backend = make(backend_for, server.url, api_key_env="CANARY_KEY")
        with pytest.raises(BackendError) as info:
            await call_with_retries(lambda: generate(backend), FAST)
        assert server.seen[0].headers["authorization"] == f"Bearer {key}"  # it was sent
    error = info.value
    assert "HTTP 401" in str(error) and "[REDACTED]" in str(error)
    traceback_text = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), repr(backend), caplog.text, traceback_text):
        assert key not in text


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(MissingSecretError, match="OPENAI_API_KEY"):
        create_openai_backend("gpt-4o", BackendOptions())
    with pytest.raises(MissingSecretError, match="MY_VLLM_KEY") as info:
        create_openai_backend(
            "m", BackendOptions(base_url="https://vllm.example/v1", api_key_env="MY_VLLM_KEY")
        )
    assert info.value.variable == "MY_VLLM_KEY"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("http://LOCALHOST:8000", "http://localhost:8000/v1"),  # no path: /v1 as vLLM serves
        ("http://[::1]:9/custom/api", "http://[::1]:9/custom/api"),
    ],
)
async def test_loopback_runs_without_key_and_url_is_normalised(
    backend_for: list[OpenAIBackend], url: str, expected: str
) -> None:
    backend = make(backend_for, url)
    assert backend.identity.base_url == expected
    assert (backend.identity.backend, backend.identity.model) == ("openai", "test-model")


async def test_base_url_from_environment(
    backend_for: list[OpenAIBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")
    backend = create_openai_backend("m", BackendOptions())
    backend_for.append(backend)  # type: ignore[arg-type]
    assert backend.identity.base_url == "http://127.0.0.1:1234/v1"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/v1",
        "http://user:sk-secret-123456@host/v1",
        "http://host/v1?api_key=sk-secret-123456",
        "http://127.0.0.1:8000/v1#sk-secret-123456",
    ],
)
def test_bad_base_urls_are_refused_without_echoing_credentials(url: str) -> None:
    with pytest.raises(InputError) as info:
        create_openai_backend("m", BackendOptions(base_url=url))
    assert "sk-secret" not in str(info.value)


def test_an_empty_base_url_is_refused_not_read_as_the_default_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--base-url "$UNSET"`: the default host would be sent the key."""
    from distillprint.backends.anthropic import create_anthropic_backend

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")
    for create in (create_openai_backend, create_anthropic_backend):
        with pytest.raises(InputError, match="expected an http"):
            create("m", BackendOptions(base_url=""))


async def test_unreachable_server_is_retryable(backend_for: list[OpenAIBackend]) -> None:
    with ScriptedServer() as server:
        url = server.url
    with pytest.raises(RetryableError, match="Cannot connect"):
        await generate(make(backend_for, url))


async def test_environment_proxy_is_used_unless_bypassed(
    backend_for: list[OpenAIBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scripted server plays the proxy: a proxied plain-HTTP request names the absolute URL.
    monkeypatch.setenv("CANARY_KEY", "sk-proxy-test-0000")
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer(default=chat_reply("via proxy")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        remote = "http://api.example.invalid/v1"
        generation = await generate(make(backend_for, remote, api_key_env="CANARY_KEY"))
        assert generation.text == "via proxy"
        assert [seen.path for seen in proxy.seen] == [f"{remote}/chat/completions"]

        monkeypatch.setenv("NO_PROXY", "api.example.invalid")
        with pytest.raises(RetryableError):
            await generate(make(backend_for, remote, timeout_s=5.0, api_key_env="CANARY_KEY"))
        assert len(proxy.seen) == 1


def key_split_by_the_excerpt_cut(seen: Seen) -> Canned:
    key = seen.headers["authorization"].removeprefix("Bearer ")
    return Canned(401, {"error": {"message": "x" * 260 + f" key={key}"}})


def key_escaped_in_json(seen: Seen) -> Canned:
    key = seen.headers["authorization"].removeprefix("Bearer ")
    escaped = "".join(f"\\u{ord(c):04x}" for c in key)
    return Canned(401, ('{"error": "bad key ' + escaped + '"}').encode())


@pytest.mark.parametrize("reply", [key_split_by_the_excerpt_cut, key_escaped_in_json])
async def test_no_part_of_the_key_survives_cut_or_escaped(
    backend_for: list[OpenAIBackend], monkeypatch: pytest.MonkeyPatch, reply: Reply
) -> None:
    monkeypatch.setenv("CANARY_KEY", "plain-canary-value-0123456789")
    with ScriptedServer([reply]) as server:
        backend = make(backend_for, server.url, api_key_env="CANARY_KEY")
        with pytest.raises(BackendError, match="HTTP 401") as info:
            await generate(backend)
    assert "plain-canary" not in str(info.value) and "[REDACTED]" in str(info.value)


async def test_a_key_echoed_in_an_answer_is_not_stored(
    backend_for: list[OpenAIBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY_KEY", "plain-canary-value-0123456789")
    answer = ("the key was plain-canary-value-0123456789 (PLAIN-CANARY-VALUE-0123456789 in an "
              "uppercasing proxy's echo); a key looks like sk-abcdefgh12")
    with ScriptedServer([chat_reply(answer)]) as server:
        generation = await generate(make(backend_for, server.url, api_key_env="CANARY_KEY"))
    # only our own key is removed: key-shaped text a model writes is part of its answer
    assert generation.text == ("the key was [REDACTED] ([REDACTED] in an uppercasing proxy's "
                               "echo); a key looks like sk-abcdefgh12")


async def test_a_lone_surrogate_in_an_answer_is_stored_as_a_replacement_character(
    backend_for: list[OpenAIBackend],
) -> None:
    # valid JSON, but UTF-8 (and so the store) cannot encode it; a pair stays one character
    with ScriptedServer([chat_reply("a \ud800 b \ud83d\ude00")]) as server:
        generation = await generate(make(backend_for, server.url))
    assert generation.text == "a \ufffd b \U0001f600"
    generation.text.encode("utf-8")
    with ScriptedServer([chat_reply("a", finish_reason="\ud800")]) as server:
        assert (await generate(make(backend_for, server.url))).finish_reason == "\ufffd"


async def test_a_server_that_wants_max_completion_tokens_gets_it(
    backend_for: list[OpenAIBackend],
) -> None:
    # OpenAI's reasoning models refuse max_tokens; the backend switches once and stays switched
    refusal = Canned(400, {"error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                   "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens"}})
    with ScriptedServer([refusal], default=chat_reply("fine")) as server:
        backend = make(backend_for, server.url)
        first, second = await generate(backend), await generate(backend)
    assert first.text == second.text == "fine"
    bodies = [seen.body for seen in server.seen]
    assert [("max_tokens" in b, b.get("max_completion_tokens")) for b in bodies] == [
        (True, None), (False, 64), (False, 64)]


async def test_requests_in_flight_when_the_field_switches_are_sent_again(
    backend_for: list[OpenAIBackend],
) -> None:
    def refuse_max_tokens(seen: Seen) -> Canned:
        if "max_tokens" not in seen.body:
            return chat_reply("fine")
        time.sleep(0.2)  # every request is sent before the first refusal comes back
        return Canned(400, {"error": {"message": "Unsupported parameter: 'max_tokens'. Use "
                                                 "'max_completion_tokens' instead."}})

    with ScriptedServer(default=refuse_max_tokens) as server:
        backend = make(backend_for, server.url)
        answers = await asyncio.gather(*(generate(backend) for _ in range(4)))
    assert [answer.text for answer in answers] == ["fine"] * 4
    assert sum("max_tokens" in seen.body for seen in server.seen) == 4


async def test_a_refused_request_sent_without_a_key_says_which_variable_is_unset(
    backend_for: list[OpenAIBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a loopback server may need none
    refusal = Canned(401, {"error": {"message": "invalid API key"}})
    with ScriptedServer([refusal]) as server, pytest.raises(BackendError) as info:
        await generate(make(backend_for, server.url))
    assert "HTTP 401" in str(info.value)
    assert "(no key was sent: OPENAI_API_KEY is unset or empty)" in str(info.value)


async def test_other_refusals_are_not_retried_with_another_field(
    backend_for: list[OpenAIBackend],
) -> None:
    refusal = Canned(400, {"error": {"message": "temperature must be 1 for this model"}})
    with ScriptedServer([refusal]) as server, pytest.raises(BackendError, match="must be 1"):
        await generate(make(backend_for, server.url))
    assert len(server.seen) == 1


async def test_tls_to_a_plain_http_server_fails_at_once_not_after_retries(
    backend_for: list[OpenAIBackend],
) -> None:
    with echo_server("", model="test-model") as server:
        backend = make(backend_for, server.base_url.replace("http://", "https://", 1))
        with pytest.raises(BackendError, match="is it an http:// server") as caught:
            await generate(backend)
    assert not caught.value.per_request  # every request would fail alike: stop asking
