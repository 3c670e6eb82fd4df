"""Anthropic's Messages API (``POST {base}/v1/messages``), spec ``anthropic:<model>``.

The base URL comes from ``--base-url``, else ``ANTHROPIC_BASE_URL``, else
``https://api.anthropic.com`` (a trailing ``/v1`` is accepted too). The key comes from the
environment only (``ANTHROPIC_API_KEY`` or ``options.api_key_env``); a loopback server may run
without one. System turns go to the top-level ``system`` field; the text blocks of the reply
are joined. Stop reasons are mapped to the OpenAI vocabulary the rest of distillprint uses
(``end_turn``/``stop_sequence`` -> ``stop``, ``max_tokens`` -> ``length``); others are kept.
The Messages API has no seed, so samples differ only through sampling itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from distillprint.backends._http import (
    JsonApi,
    json_object,
    normalise_base_url,
    optional_int,
    resolve_key,
)
from distillprint.backends.base import Backend, BackendOptions
from distillprint.core_types import Generation, GenerationRequest, ModelIdentity, Usage

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
API_VERSION = "2023-06-01"
_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicBackend(Backend):
    """One request per ``generate`` call; concurrency and retries belong to the collector."""

    max_batch_size = 1

    def __init__(self, model: str, options: BackendOptions) -> None:
        base_url = normalise_base_url(
            options.base_url if options.base_url is not None  # empty: refused, see openai_compat
            else os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        ).removesuffix("/v1")
        key_env = options.api_key_env or DEFAULT_KEY_ENV
        key = resolve_key(key_env, base_url, "anthropic backend")
        headers = {"anthropic-version": API_VERSION}
        self.sends_key_from = key_env if key is not None else None
        if key is not None:
            headers["x-api-key"] = key.reveal()
        self.identity = ModelIdentity("anthropic", model, options.revision or "", base_url)
        self._url = f"{base_url}/v1/messages"
        self._api = JsonApi(f"anthropic:{model}", options.timeout_s, headers, key, key_env)

    def __repr__(self) -> str:
        return f"AnthropicBackend({self.identity.model!r}, base_url={self.identity.base_url!r})"

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        params = request.params
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        payload: dict[str, Any] = {
            "model": self.identity.model,
            "max_tokens": params.max_tokens,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
            "temperature": params.temperature,
        }
        if system:
            payload["system"] = system
        # Recent Claude models reject temperature and top_p together; 1.0 is the default.
        if params.top_p != 1.0:
            payload["top_p"] = params.top_p
        return payload

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return [await self._generate_one(request) for request in requests]

    async def _generate_one(self, request: GenerationRequest) -> Generation:
        reply = await self._api.post(self._url, self.payload(request))
        body = reply.body
        blocks = body.get("content")
        if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
            raise self._api.malformed("a content list", body)
        stop = body.get("stop_reason")
        if not blocks and not isinstance(stop, str):
            # the API sends an empty list for an empty answer, always with why it stopped:
            # without that it is a broken reply (a proxy's), worth asking again
            raise self._api.malformed("content or a stop_reason", body)
        text = "".join(
            b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        usage = json_object(body.get("usage"))
        return Generation(
            text=self._api.answer_text(text),
            finish_reason=self._api.stop_reason(
                _STOP_REASONS.get(stop, stop) if isinstance(stop, str) else None),
            usage=Usage(
                prompt_tokens=optional_int(usage.get("input_tokens")),
                completion_tokens=optional_int(usage.get("output_tokens")),
            ),
            latency_s=reply.latency_s,
        )

    async def aclose(self) -> None:
        await self._api.aclose()


def create_anthropic_backend(model: str, options: BackendOptions) -> Backend:
    return AnthropicBackend(model, options)
