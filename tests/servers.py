"""Real loopback HTTP servers for tests: ``distillprint serve`` and a small Messages API server.

Import from test modules (``from servers import ...``). Every server binds 127.0.0.1 on a
free port and is stopped when its ``with`` block ends.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from distillprint.backends.echo import EchoBackend
from distillprint.serve import RunningServer, ServeSettings, start_server_in_thread
from distillprint.serve_faults import FaultPlan, parse_script


@contextmanager
def echo_server(
    script: str = "",
    *,
    model: str = "echo-model",
    plan: FaultPlan | None = None,
    settings: ServeSettings | None = None,
    max_batch_size: int = 8,
) -> Iterator[RunningServer]:
    """``distillprint serve`` over an ``EchoBackend``; ``script`` like ``"429x2,reset"``."""
    plan = plan or FaultPlan(script=parse_script(script), retry_after="0", stall_s=2.0)
    server = start_server_in_thread(
        EchoBackend(model, max_batch_size=max_batch_size), plan, settings=settings
    )
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Canned:
    """A fixed reply; ``body`` is JSON-encoded unless it is already bytes."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


@dataclass(frozen=True)
class Seen:
    """A request the scripted server received."""

    path: str
    headers: dict[str, str]
    body: Any


Reply = Canned | Callable[[Seen], Canned]


def messages_reply(seen: Seen) -> Canned:
    """A well-formed Messages API answer that echoes the last user turn."""
    last = seen.body["messages"][-1]["content"]
    return Canned(
        200,
        {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": seen.body["model"],
            "content": [{"type": "text", "text": "echo: "}, {"type": "text", "text": last}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 7, "output_tokens": 3},
        },
    )


def chat_reply(text: str | None = "hello", finish_reason: str = "stop") -> Canned:
    """A well-formed OpenAI chat completion."""
    return Canned(
        200,
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
        },
    )


class ScriptedServer:
    """Answers POSTs from ``script`` in order, then with ``default``; records every request."""

    def __init__(self, script: Sequence[Reply] = (), default: Reply = messages_reply) -> None:
        self.seen: list[Seen] = []
        self._script = list(script)
        self._default = default
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def _next_reply(self, seen: Seen) -> Canned:
        with self._lock:
            self.seen.append(seen)
            reply = self._script.pop(0) if self._script else self._default
        return reply(seen) if callable(reply) else reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen = Seen(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)
                )
                reply = outer._next_reply(seen)
                data = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5.0)


def free_port() -> int:
    """A port free now, for a process that binds it itself (accelerate's rendezvous): a fixed
    one collides with another run on the machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
