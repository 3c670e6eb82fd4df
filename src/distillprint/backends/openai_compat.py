"""Any OpenAI-compatible ``/chat/completions`` endpoint: OpenAI, vLLM, DeepSeek, Moonshot...

Spec ``openai:<model>``. The base URL comes from ``--base-url``, else ``OPENAI_BASE_URL``,
else ``https://api.openai.com/v1``; a URL with no path gets ``/v1``. The key comes from the
environment only (``OPENAI_API_KEY`` or ``options.api_key_env``); a loopback server may run
without one.

An empty completion is a valid answer, returned with its finish reason: models really do
answer some probes with nothing, and that is part of their fingerprint. A ``null`` content
is a refusal: the message's ``refusal`` text is the answer when the server gives one (OpenAI's
structured refusals), and empty text otherwise (a content filter), for the same reason.
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
from distillprint.errors import BackendError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def sample_seed(request: GenerationRequest) -> int:
    """Seed sent for one sample: servers that honour seeds would otherwise repeat sample 0."""
    return request.params.seed + request.sample_index


class OpenAIBackend(Backend):
    """One request per ``generate`` call; concurrency and retries belong to the collector."""

    max_batch_size = 1

    def __init__(self, model: str, options: BackendOptions) -> None:
        base_url = normalise_base_url(
            # an empty --base-url (an unset shell variable) is a mistake to report, not a
            # request for the default host, which would be sent the key
            options.base_url if options.base_url is not None
            else os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            default_path="/v1",
        )
        key_env = options.api_key_env or DEFAULT_KEY_ENV
        key = resolve_key(key_env, base_url, "openai backend")
        headers = {"Authorization": f"Bearer {key.reveal()}"} if key is not None else {}
        self.sends_key_from = key_env if key is not None else None
        self.identity = ModelIdentity("openai", model, options.revision or "", base_url)
        self._url = f"{base_url}/chat/completions"
        # OpenAI's reasoning models accept only ``max_completion_tokens``, which many other
        # servers do not know: start with the common field, switch when told (see below).
        self._max_tokens_field = "max_tokens"
        self._api = JsonApi(f"openai:{model}", options.timeout_s, headers, key, key_env)

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.identity.model!r}, base_url={self.identity.base_url!r})"

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        params = request.params
        return {
            "model": self.identity.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            self._max_tokens_field: params.max_tokens,
            "seed": sample_seed(request),
        }

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return [await self._generate_one(request) for request in requests]

    async def _generate_one(self, request: GenerationRequest) -> Generation:
        # what this request sent, not what the field holds when its reply comes: concurrent
        # requests sent with max_tokens are refused after the first refusal has switched it
        sent_field = self._max_tokens_field
        try:
            reply = await self._api.post(self._url, self.payload(request))
        except BackendError as exc:
            if not (exc.per_request and sent_field == "max_tokens"
                    and "max_completion_tokens" in str(exc)):
                raise
            # "Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens' instead."
            self._max_tokens_field = "max_completion_tokens"
            reply = await self._api.post(self._url, self.payload(request))
        body = reply.body
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._api.malformed("choices[0]", body)
        message = choices[0].get("message")
        if not isinstance(message, dict) or "content" not in message:
            raise self._api.malformed("choices[0].message.content", body)
        content = message["content"]
        if content is not None and not isinstance(content, str):
            raise self._api.malformed("a text choices[0].message.content", body)
        refusal = message.get("refusal")
        if content is None and isinstance(refusal, str):
            content = refusal  # how the model refuses is as much its style as how it answers
        finish = choices[0].get("finish_reason")
        usage = json_object(body.get("usage"))
        return Generation(
            text=self._api.answer_text(content or ""),
            finish_reason=self._api.stop_reason(finish),
            usage=Usage(
                prompt_tokens=optional_int(usage.get("prompt_tokens")),
                completion_tokens=optional_int(usage.get("completion_tokens")),
            ),
            latency_s=reply.latency_s,
        )

    async def aclose(self) -> None:
        await self._api.aclose()


def create_openai_backend(model: str, options: BackendOptions) -> Backend:
    return OpenAIBackend(model, options)
