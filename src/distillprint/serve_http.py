"""The HTTP side of ``distillprint serve``: OpenAI request parsing, responses and faults."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import logging
import math
import re
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from distillprint.backends.base import AnswerNotAvailable
from distillprint.core_types import ChatMessage, Generation, GenerationRequest, Role, SamplingParams
from distillprint.errors import BackendError, InputError, RetryableError
from distillprint.probes import MAX_TOKENS_RANGE
from distillprint.serve_faults import Fault

if TYPE_CHECKING:
    from distillprint.serve import ServeState

logger = logging.getLogger("distillprint.serve")

CHAT_PATH = "/v1/chat/completions"
MAX_BODY_BYTES = 32 * 1024 * 1024
_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
_HTML_ERROR = b"<html><body><h1>502 Bad Gateway</h1>upstream hiccup</body></html>"


class RequestRejected(Exception):
    """A client error, answered with ``status`` and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _content_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        texts = [p for p in parts if isinstance(p, str)]
        if len(texts) == len(parts):
            return "".join(texts)
    raise RequestRejected(400, f"messages[{index}].content must be text")


def _number(payload: dict[str, Any], key: str, default: float) -> float:
    value = payload.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestRejected(400, f"'{key}' must be a number")
    return float(value)


def _integer(payload: dict[str, Any], key: str, default: int) -> int:
    value = payload.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestRejected(400, f"'{key}' must be an integer")
    return value


#: OpenAI options that change what comes back, with the values that ask for nothing
_UNSUPPORTED_UNLESS_DEFAULT: dict[str, tuple[object, ...]] = {
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "response_format": (None, {"type": "text"}),
    "tools": (None, []),
    "functions": (None, []),
}


def _refuse_unsupported(payload: dict[str, Any]) -> None:
    """Options this server cannot honour are refused: ignoring them would answer something
    other than what the client asked for (a stream client gets no stream, text runs past a
    stop sequence) while looking like success."""
    if payload.get("stream"):
        raise RequestRejected(400, "streaming is not supported: send 'stream': false")
    if payload.get("stop") not in (None, [], ""):
        raise RequestRejected(400, "'stop' sequences are not supported")
    for option, defaults in _UNSUPPORTED_UNLESS_DEFAULT.items():
        if payload.get(option) not in defaults:
            raise RequestRejected(400, f"'{option}' is not supported: leave it out")


def parse_chat_request(payload: Any) -> list[GenerationRequest]:
    """One request per choice asked for; absent parameters take OpenAI's defaults."""
    if not isinstance(payload, dict):
        raise RequestRejected(400, "the body must be a JSON object")
    raw = payload.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestRejected(400, "'messages' must be a non-empty list")
    messages = []
    for index, item in enumerate(raw):
        role = _ROLES.get(str(item.get("role"))) if isinstance(item, dict) else None
        if role is None:
            raise RequestRejected(400, f"messages[{index}].role must be one of {sorted(_ROLES)}")
        messages.append(ChatMessage(role, _content_text(item.get("content"), index)))
    _refuse_unsupported(payload)
    # Newer OpenAI clients send max_completion_tokens instead of max_tokens (a null one is
    # absent, not a reason to ignore max_tokens).
    tokens_key = "max_completion_tokens" if payload.get("max_completion_tokens") is not None \
        else "max_tokens"
    params = SamplingParams(
        temperature=_number(payload, "temperature", 1.0),
        top_p=_number(payload, "top_p", 1.0),
        max_tokens=_integer(payload, tokens_key, SamplingParams().max_tokens),
        seed=_integer(payload, "seed", 0),
    )
    if not 0.0 <= params.temperature <= 2.0:  # NaN fails too
        raise RequestRejected(400, "'temperature' must be between 0 and 2")
    if not 0.0 < params.top_p <= 1.0:
        raise RequestRejected(400, "'top_p' must be above 0 and at most 1")
    if not MAX_TOKENS_RANGE[0] <= params.max_tokens <= MAX_TOKENS_RANGE[1]:
        # one huge request would hold the model (and every request queued behind it) for minutes
        raise RequestRejected(400, f"'{tokens_key}' must be between {MAX_TOKENS_RANGE[0]} and "
                                   f"{MAX_TOKENS_RANGE[1]}")
    n = _integer(payload, "n", 1)
    if not 1 <= n <= 128:
        raise RequestRejected(400, "'n' must be between 1 and 128")
    return [GenerationRequest(tuple(messages), params, sample_index=i) for i in range(n)]


def completion_body(state: ServeState, generations: list[Generation]) -> dict[str, Any]:
    def total(field: str) -> int:
        return sum(getattr(g.usage, field) or 0 for g in generations)

    prompt_tokens = generations[0].usage.prompt_tokens or 0
    return {
        "id": state.next_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": state.model_name,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": g.text},
                "finish_reason": g.finish_reason,
            }
            for i, g in enumerate(generations)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": total("completion_tokens"),
            "total_tokens": prompt_tokens + total("completion_tokens"),
        },
    }


_URL = re.compile(r"https?://\S+")


def _error_for(exc: BaseException) -> RequestRejected:
    """Backend failures as HTTP errors a client's retry logic understands."""
    if isinstance(exc, AnswerNotAvailable):
        return RequestRejected(404, str(exc), "not_found_error")
    if isinstance(exc, InputError):
        return RequestRejected(400, str(exc))
    # the upstream's address is this server's business, not its clients'
    said = _URL.sub("<upstream>", str(exc))
    if isinstance(exc, concurrent.futures.CancelledError):
        return RequestRejected(503, "server stopping", "overloaded_error")
    if isinstance(exc, RetryableError):
        logger.warning("upstream failed, retryable: %s", said)
        if exc.status == 429:  # a client backs off from a rate limit as from the upstream's
            return RequestRejected(429, said, "rate_limit_error")
        return RequestRejected(503, said, "overloaded_error")
    if isinstance(exc, BackendError):
        logger.warning("upstream failed: %s", said)
        if exc.per_request:  # the upstream refused this prompt: so does this server
            return RequestRejected(400, said)
        return RequestRejected(502, said, "upstream_error")
    logger.exception("backend failed", exc_info=exc)
    return RequestRejected(500, f"internal error ({type(exc).__name__})", "server_error")


def _retry_after_header(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, RetryableError):
        return {"Retry-After": str(math.ceil(exc.retry_after or 1.0))}
    return None


class ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients' connection pools expect
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux), which doubled a 50 ms round trip.
    disable_nagle_algorithm = True
    timeout = 60  # seconds a socket may sit idle; each open connection holds a thread
    server_version = "distillprint-serve"

    @property
    def state(self) -> ServeState:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    # -- plumbing -------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        declared_length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header(
            "Content-Length", str(len(body) if declared_length is None else declared_length)
        )
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> int:
        self._send(status, json.dumps(obj).encode("utf-8"), headers=headers)
        return status

    def _reject(self, error: RequestRejected, headers: dict[str, str] | None = None) -> int:
        body = {"error": {"message": str(error), "type": error.kind, "code": error.status}}
        return self._send_json(error.status, body, headers)

    def _drop_connection(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees a reset, not a clean close.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _authorised(self) -> bool:
        key = self.state.api_key
        if key is None:
            return True
        # "Bearer KEY", the scheme in any case (RFC 7235); nothing else carries a key
        scheme, _, sent = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(sent.strip().encode(), key.reveal().encode())

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestRejected(411, "a Content-Length header is required")
        if int(length) > MAX_BODY_BYTES:
            raise RequestRejected(413, "request body too large")
        return self.rfile.read(int(length))

    # -- routes ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        entry = self.state.log.begin("GET", self.path)
        if self.path == "/health":
            status = self._send_json(200, {"status": "ok"})
        elif not self._authorised():
            status = self._reject(RequestRejected(401, "invalid API key", "authentication_error"))
        elif self.path == "/v1/models":
            model = {"id": self.state.model_name, "object": "model", "owned_by": "distillprint"}
            status = self._send_json(200, {"object": "list", "data": [model]})
        else:
            status = self._reject(RequestRejected(404, f"no route {self.path}", "not_found_error"))
        entry.finish(status)

    def do_POST(self) -> None:
        entry = self.state.log.begin("POST", self.path)
        status = None
        try:
            body = self._read_body()
            entry.body_sha256 = hashlib.sha256(body).hexdigest()
            if self.path != CHAT_PATH:
                raise RequestRejected(404, f"no route {self.path}", "not_found_error")
            if not self._authorised():
                raise RequestRejected(401, "invalid API key", "authentication_error")
            fault = self.state.faults.decide(body)
            entry.fault = fault.value if fault else None
            status = self._chat(body, fault)
        except RequestRejected as error:
            # The body may be unread: never reuse this socket, and say so, or a keep-alive
            # client sends its next request into a connection the server is closing.
            self.close_connection = True
            status = self._reject(error, {"Connection": "close"})
        finally:
            entry.finish(status)

    def _check_model(self, payload: dict[str, Any]) -> None:
        """A request for another model is refused as vLLM and OpenAI refuse it: answering it
        would store this model's answers under the name the client asked for."""
        requested = payload.get("model")
        if requested is not None and requested != self.state.model_name:
            raise RequestRejected(
                404,
                f"the model '{requested}' is not served here; this server serves "
                f"'{self.state.model_name}'",
                "not_found_error",
            )

    def _chat(self, body: bytes, fault: Fault | None) -> int | None:
        plan = self.state.faults.plan
        if self.state.stopping.wait(plan.latency_s) or fault is Fault.RESET:
            self._drop_connection()
            return None
        if fault is Fault.RATE_LIMIT:
            headers = {"Retry-After": plan.retry_after} if plan.retry_after else {}
            error = RequestRejected(429, "rate limit reached (injected)", "rate_limit_error")
            return self._reject(error, headers)
        if fault in (Fault.ERROR_500, Fault.ERROR_502, Fault.ERROR_503):
            return self._reject(RequestRejected(int(fault), "injected failure", "server_error"))
        if fault is Fault.NON_JSON:
            self._send(200, _HTML_ERROR, content_type="text/html")
            return 200
        if fault is Fault.STALL and self.state.stopping.wait(plan.stall_s):
            self._drop_connection()
            return None
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestRejected(400, "the body is not valid JSON") from None
        requests = parse_chat_request(payload)
        self._check_model(payload)
        try:
            generations = self.state.batcher.generate(requests)
        except Exception as exc:
            return self._reject(_error_for(exc), _retry_after_header(exc))
        if fault is Fault.EMPTY:
            generations = [Generation("", "stop", g.usage, g.latency_s) for g in generations]
        return self._answer(completion_body(self.state, generations), fault)

    def _answer(self, response: dict[str, Any], fault: Fault | None) -> int:
        data = json.dumps(response).encode("utf-8")
        if fault is Fault.TRUNCATED:
            self._send(200, data[: len(data) // 2])
        elif fault is Fault.CUT:
            self._send(200, data[: len(data) // 2], declared_length=len(data))
            self.close_connection = True
        else:
            self._send(200, data)
        return 200
