"""``distillprint serve``: any backend as an OpenAI-compatible HTTP endpoint.

Routes: ``POST /v1/chat/completions`` (non-streaming, ``n`` > 1 gives sample indices
0..n-1), ``GET /v1/models``, ``GET /health``. Concurrent requests are micro-batched into
one ``backend.generate`` call (``serve_batching``), so a local model serves like a small vLLM.
A ``FaultPlan`` (``serve_faults``) makes the server misbehave on purpose for tests and
benchmarks. The server is the stdlib ``ThreadingHTTPServer``: one thread per connection,
which lets a stalled or dropped request fail alone.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from distillprint.backends import create_backend
from distillprint.backends._http import is_loopback
from distillprint.backends.base import Backend, BackendOptions
from distillprint.errors import InputError
from distillprint.secrets import Secret, read_secret
from distillprint.serve_batching import MicroBatcher
from distillprint.serve_faults import FaultInjector, FaultPlan
from distillprint.serve_http import CHAT_PATH, ChatHandler

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and presents itself; host and port are passed separately."""

    max_batch: int | None = None  # None: the backend's own max_batch_size
    batch_window_s: float = 0.005
    concurrency: int | None = None  # concurrent generate calls; None: see MicroBatcher
    served_model_name: str | None = None  # None: the backend's model name
    api_key_env: str | None = None  # when set, clients must send this key as a Bearer token


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request as the server saw it, numbered in arrival order.

    ``status`` is None when no response was sent (an injected reset, a client that hung up,
    or a request still in progress); ``duration_s`` is None while it is in progress.
    """

    index: int
    method: str
    path: str
    fault: str | None
    status: int | None
    started_s: float
    duration_s: float | None
    body_sha256: str


@dataclass
class LogEntry:
    """The mutable record a handler fills in while it works."""

    index: int
    method: str
    path: str
    started_s: float = field(default_factory=time.monotonic)
    fault: str | None = None
    status: int | None = None
    finished_s: float | None = None
    body_sha256: str = ""

    def finish(self, status: int | None) -> None:
        self.status = status
        self.finished_s = time.monotonic()


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def begin(self, method: str, path: str) -> LogEntry:
        with self._lock:
            entry = LogEntry(index=len(self._entries), method=method, path=path)
            self._entries.append(entry)
            return entry

    def snapshot(self) -> tuple[RequestRecord, ...]:
        with self._lock:
            return tuple(
                RequestRecord(
                    index=e.index,
                    method=e.method,
                    path=e.path,
                    fault=e.fault,
                    status=e.status,
                    started_s=e.started_s,
                    duration_s=None if e.finished_s is None else e.finished_s - e.started_s,
                    body_sha256=e.body_sha256,
                )
                for e in self._entries
            )


class ServeState:
    """Everything a handler thread needs; one per server."""

    def __init__(
        self, batcher: MicroBatcher, fault_plan: FaultPlan, model_name: str, api_key: Secret | None
    ) -> None:
        self.batcher = batcher
        self.faults = FaultInjector(fault_plan)
        self.model_name = model_name
        self.api_key = api_key
        self.log = RequestLog()
        self.stopping = threading.Event()
        self._ids = 0
        self._ids_lock = threading.Lock()

    def next_id(self) -> str:
        with self._ids_lock:
            self._ids += 1
            return f"chatcmpl-{self._ids}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib default backlog of 5 resets connections when many clients connect at once.
    request_queue_size = 256

    def __init__(self, host: str, port: int, state: ServeState) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.state = state
        super().__init__((host, port), ChatHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that gave up (timeouts in fault tests) are expected, not worth a traceback.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


@dataclass
class RunningServer:
    """A server on a background thread; ``url`` has no path, ``base_url`` ends in ``/v1``."""

    url: str
    state: ServeState
    _server: _Server
    _thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def request_log(self) -> tuple[RequestRecord, ...]:
        return self.state.log.snapshot()

    def chat_requests(self) -> tuple[RequestRecord, ...]:
        return tuple(r for r in self.request_log if r.path == CHAT_PATH)

    @property
    def batch_sizes(self) -> list[int]:
        return list(self.state.batcher.batch_sizes)

    def stop(self) -> None:
        self.state.stopping.set()  # wakes stalled handlers so shutdown is prompt
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
        self.state.batcher.stop()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _build(
    backend: Backend, fault_plan: FaultPlan | None, host: str, port: int, settings: ServeSettings
) -> _Server:
    batcher = MicroBatcher(
        backend,
        max_batch=settings.max_batch,
        window_s=settings.batch_window_s,
        concurrency=settings.concurrency,
    )
    name = settings.served_model_name or backend.identity.model
    try:
        state = ServeState(batcher, fault_plan or FaultPlan(), name, _api_key(settings))
        server = _bind(host, port, state)
    except BaseException:
        batcher.stop()  # it owns the backend: a server that never ran still closes it
        raise
    batcher.start()
    return server


def _api_key(settings: ServeSettings) -> Secret | None:
    if not settings.api_key_env:
        return None
    api_key = read_secret(settings.api_key_env)
    if api_key is None:
        raise InputError(
            f"environment variable {settings.api_key_env} is unset or empty", field="api_key_env"
        )
    return api_key


def _bind(host: str, port: int, state: ServeState) -> _Server:
    try:
        return _Server(host, port, state)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})", field="port") from None


def _url(server: _Server) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    host_text = f"[{host}]" if ":" in host else host
    return f"http://{host_text}:{port}"


def start_server_in_thread(
    backend: Backend,
    fault_plan: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    settings: ServeSettings | None = None,
) -> RunningServer:
    """Serve ``backend`` until ``stop()``; port 0 picks a free port (see ``url``)."""
    server = _build(backend, fault_plan, host, port, settings or ServeSettings())
    # A short poll interval: shutdown() waits for it, and tests start and stop many servers.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="distillprint-serve", daemon=True
    )
    thread.start()
    return RunningServer(url=_url(server), state=server.state, _server=server, _thread=thread)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_server(
    spec: str,
    *,
    backend_options: BackendOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    fault_plan: FaultPlan | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Blocking entry point for the CLI: create the backend from ``spec``, serve until Ctrl-C."""
    settings = settings or ServeSettings()
    backend = create_backend(spec, backend_options)
    server = _build(backend, fault_plan, host, port, settings)
    if settings.api_key_env is None and not is_loopback(_url(server)):
        announce(
            "warning: not on loopback and no --api-key-env: anyone who can reach it can use it"
        )
    announce(
        f"serving {backend.identity.label} as '{server.state.model_name}' "
        f"at {_url(server)}/v1 (Ctrl-C to stop)"
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop as gracefully as on Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        announce("stopping")
    finally:
        server.state.stopping.set()
        server.server_close()
        server.state.batcher.stop()
