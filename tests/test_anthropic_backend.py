from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from distillprint.backends.anthropic import AnthropicBackend, create_anthropic_backend
from distillprint.backends.base import BackendOptions
from distillprint.core_types import ChatMessage, Generation, GenerationRequest, SamplingParams
from distillprint.errors import BackendError, InputError, MissingSecretError, RetryableError
from distillprint.retry import RetryPolicy, call_with_retries
from servers import Canned, ScriptedServer, Seen, messages_reply

FAST = RetryPolicy(max_attempts=5, base_delay_s=0.0, max_delay_s=0.0, jitter=0.0)
REQUEST = GenerationRequest(
    (
        ChatMessage("system", "You are terse."),
        ChatMessage("system", "Answer in English."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Who made you?"),
    ),
    SamplingParams(temperature=0.2, top_p=1.0, max_tokens=50, seed=9),
)

# most tests here talk HTTP to a real server on loopback
pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def made() -> AsyncIterator[list[AnthropicBackend]]:
    backends: list[AnthropicBackend] = []
    yield backends
    for backend in backends:
        await backend.aclose()


def make(made: list[AnthropicBackend], base_url: str | None = None) -> AnthropicBackend:
    backend = create_anthropic_backend("claude-test", BackendOptions(base_url=base_url))
    assert isinstance(backend, AnthropicBackend)
    made.append(backend)
    return backend


async def generate(backend: AnthropicBackend, request: GenerationRequest = REQUEST) -> Generation:
    return (await backend.generate([request]))[0]


async def test_messages_api_request_and_reply(
    made: list[AnthropicBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-000000")
    with ScriptedServer() as server:
        generation = await generate(make(made, server.url))
        seen = server.seen[0]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-test-key-000000"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert seen.body == {
        "model": "claude-test",
        "max_tokens": 50,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Who made you?"},
        ],
        "temperature": 0.2,  # no top_p: recent models refuse both, and 1.0 is the default
    }
    assert generation.text == "echo: Who made you?"  # text blocks joined
    assert generation.finish_reason == "stop"
    assert (generation.usage.prompt_tokens, generation.usage.completion_tokens) == (7, 3)


async def test_top_p_sent_when_not_default_and_no_system(made: list[AnthropicBackend]) -> None:
    request = GenerationRequest((ChatMessage("user", "x"),), SamplingParams(top_p=0.8))
    with ScriptedServer() as server:
        await generate(make(made, server.url), request)
    assert server.seen[0].body["top_p"] == 0.8 and "system" not in server.seen[0].body


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "refusal"),
        (None, "unknown"),
        ("\ud800" + "x" * 99, "\ufffd" + "x" * 39),  # what the store can encode, label-sized
    ],
)
async def test_stop_reasons_and_non_text_blocks(
    made: list[AnthropicBackend], stop_reason: str | None, expected: str
) -> None:
    body = {
        "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Done"}],
        "stop_reason": stop_reason,
    }
    with ScriptedServer([Canned(200, body)]) as server:
        generation = await generate(make(made, server.url))
    assert (generation.text, generation.finish_reason) == ("Done", expected)
    assert generation.usage.prompt_tokens is None


async def test_overloaded_and_rate_limited_are_retried(made: list[AnthropicBackend]) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    script = [
        Canned(529, overloaded),
        Canned(429, {"type": "error"}, {"retry-after": "2"}),
        Canned(500, b"oops"),
        Canned(200, {"content": "not a list"}),
    ]
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    with ScriptedServer(script) as server:
        backend = make(made, server.url)
        policy = RetryPolicy(base_delay_s=0.0, jitter=0.0)  # delays only from Retry-After
        generation = await call_with_retries(lambda: generate(backend), policy, sleep=sleep)
    assert generation.text == "echo: Who made you?"
    assert len(server.seen) == 5 and delays == [0.0, 2.0, 0.0, 0.0]


def reflect_key(seen: Seen) -> Canned:
    return Canned(401, {"error": {"message": f"invalid x-api-key {seen.headers['x-api-key']}"}})


async def test_auth_error_is_final_and_redacted(
    made: list[AnthropicBackend],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "canary-anthropic-key-31337"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    with ScriptedServer([reflect_key]) as server:
        backend = make(made, server.url)
        with pytest.raises(BackendError, match="HTTP 401") as info:
            await call_with_retries(lambda: generate(backend), FAST)
    assert len(server.seen) == 1
    assert key not in str(info.value) and key not in caplog.text and key not in repr(backend)


async def test_base_url_from_env_with_or_without_v1(
    made: list[AnthropicBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9999/v1/")
    assert make(made).identity.base_url == "http://127.0.0.1:9999"
    assert make(made, "http://localhost:1/proxy").identity.base_url == "http://localhost:1/proxy"


def test_remote_server_needs_the_key() -> None:
    with pytest.raises(MissingSecretError, match="ANTHROPIC_API_KEY"):
        create_anthropic_backend("claude-x", BackendOptions())


async def test_malformed_success_is_retryable(made: list[AnthropicBackend]) -> None:
    script = [Canned(200, {"type": "message"})]
    with ScriptedServer(script) as server, pytest.raises(RetryableError, match="content list"):
        await generate(make(made, server.url))
    empty = [Canned(200, {"type": "message", "content": []})]
    with ScriptedServer(empty) as server, pytest.raises(RetryableError, match="stop_reason"):
        await generate(make(made, server.url))


async def test_an_empty_answer_that_says_why_it_stopped_is_an_answer(
    made: list[AnthropicBackend],
) -> None:
    body = {"type": "message", "content": [], "stop_reason": "end_turn"}
    with ScriptedServer([Canned(200, body)]) as server:
        generation = await generate(make(made, server.url))
    assert (generation.text, generation.finish_reason) == ("", "stop")


async def test_redirects_are_not_followed_so_the_key_stays_home(
    made: list[AnthropicBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp drops Authorization on a cross-origin redirect but keeps x-api-key.
    key = "canary-anthropic-key-42424"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with ScriptedServer() as elsewhere:
        away = Canned(307, {}, headers={"Location": f"{elsewhere.url}/v1/messages?t={key}"})
        with ScriptedServer([away]) as server:
            backend = make(made, server.url)
            with pytest.raises(BackendError, match=r"HTTP 307 redirect .* not followed") as info:
                await call_with_retries(lambda: generate(backend), FAST)
        assert elsewhere.seen == []
    assert elsewhere.url in str(info.value) and key not in str(info.value)


def echo_key_in_answer(seen: Seen) -> Canned:
    reply = messages_reply(seen)
    reply.body["content"] = [{"type": "text", "text": f"your key is {seen.headers['x-api-key']}"}]
    return reply


async def test_a_key_echoed_in_an_answer_is_not_stored(
    made: list[AnthropicBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "canary-anthropic-key-777777")
    with ScriptedServer([echo_key_in_answer]) as server:
        generation = await generate(make(made, server.url))
    assert generation.text == "your key is [REDACTED]"


def test_a_key_with_a_line_break_or_a_non_ascii_character_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "canary-first-line\ncanary-second-line")
    with pytest.raises(InputError, match=r"ANTHROPIC_API_KEY.*control character") as info:
        create_anthropic_backend("claude-x", BackendOptions())
    assert "canary" not in str(info.value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "canary\u2013dash-123456")  # an en dash
    with pytest.raises(InputError, match=r"ANTHROPIC_API_KEY.*outside ASCII") as info:
        create_anthropic_backend("claude-x", BackendOptions())
    assert "canary" not in str(info.value)
