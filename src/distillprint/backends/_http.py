"""HTTP plumbing shared by the API backends: base URLs, keys, one JSON POST, error mapping.

Every failure becomes either ``RetryableError`` (429, 5xx, timeouts, dropped connections,
bodies that are not a JSON object) or ``BackendError`` (other 4xx); both carry a short,
redacted excerpt of what the server said and never the key.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from distillprint.errors import BackendError, InputError, MissingSecretError, RetryableError
from distillprint.retry import parse_retry_after
from distillprint.secrets import Secret, read_secret, redact

# 408/409/425 are transient by definition; 529 is Anthropic's "overloaded".
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 529})
_EXCERPT_CHARS = 300


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms; every client in the process can share one context.
    return httpx.create_ssl_context()


def normalise_base_url(url: str, *, default_path: str = "") -> str:
    """``scheme://host[:port]/path`` without a trailing slash; credentials are refused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"expected an http(s) URL, got '{redact(url)}'", field="base_url")
    if parts.username or parts.password:
        raise InputError(
            "the base URL must not carry credentials; put the key in an environment variable",
            field="base_url",
        )
    path = parts.path.rstrip("/") or default_path
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, parts.query, ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_key(variable: str, base_url: str, backend: str) -> Secret | None:
    """The key from ``variable``; only a loopback server may be used without one."""
    secret = read_secret(variable)
    if secret is None and not is_loopback(base_url):
        raise MissingSecretError(variable, backend)
    return secret


def excerpt(text: str, secrets: list[Secret]) -> str:
    flat = " ".join(text.split())
    if len(flat) > _EXCERPT_CHARS:
        flat = flat[:_EXCERPT_CHARS] + "..."
    return redact(flat, secrets)


def json_object(value: Any) -> dict[str, Any]:
    """A nested object such as ``usage``; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def optional_int(value: Any) -> int | None:
    """Token counts from a reply; anything but a plain integer counts as unknown."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class JsonReply:
    body: dict[str, Any]
    latency_s: float


#: concurrent requests one ``httpx.AsyncClient`` carries before another client is opened.
REQUESTS_PER_CLIENT = 2


class JsonApi:
    """``httpx`` clients for one backend; headers may hold the key, messages never do.

    The collector's semaphore bounds concurrency. One client would not do at high
    concurrency: httpcore's pool scans every connection (and polls every idle socket) each
    time a request starts or ends, which is quadratic in the pool size (at 64 connections
    the scans cost more than the requests), and its default limits open and close a
    connection per request above 20. So requests go to the least busy client, and a new
    client is opened only when every client already carries ``REQUESTS_PER_CLIENT``.
    """

    def __init__(
        self, label: str, timeout_s: float, headers: Mapping[str, str], key: Secret | None
    ) -> None:
        self.label = label
        self.timeout_s = timeout_s
        self._secrets = [key] if key is not None else []
        self._headers = dict(headers)
        self._clients: list[httpx.AsyncClient] = []
        self._in_flight: list[int] = []

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            headers=self._headers,
            verify=_tls_context(),
            limits=httpx.Limits(
                max_connections=REQUESTS_PER_CLIENT, max_keepalive_connections=REQUESTS_PER_CLIENT
            ),
        )

    def _lease(self) -> int:
        """The index of the least busy client, opening one when all are full."""
        loads = self._in_flight
        index = min(range(len(loads)), key=loads.__getitem__, default=-1)
        if index < 0 or loads[index] >= REQUESTS_PER_CLIENT:
            self._clients.append(self._new_client())
            loads.append(0)
            index = len(loads) - 1
        loads[index] += 1
        return index

    def clean(self, text: str) -> str:
        return excerpt(text, self._secrets)

    async def post(self, url: str, payload: dict[str, Any]) -> JsonReply:
        index = self._lease()
        started = time.perf_counter()
        try:
            response = await self._clients[index].post(url, json=payload)
        except httpx.TimeoutException:
            raise RetryableError(
                f"{self.label}: no answer from {self.clean(url)} within {self.timeout_s:g} s"
            ) from None
        except httpx.RequestError as exc:
            # Resets, refused connections and bodies cut short; ``from None`` because the
            # httpx exception holds the request, headers (and so the key) included.
            raise RetryableError(
                self.clean(f"{self.label}: request to {url} failed ({type(exc).__name__}: {exc})")
            ) from None
        finally:
            self._in_flight[index] -= 1
        latency = time.perf_counter() - started
        if not 200 <= response.status_code < 300:
            raise self._status_error(url, response)
        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError(
                f"{self.label}: unparseable body from {self.clean(url)}: "
                f"{self.clean(response.text)!r}"
            ) from None
        if not isinstance(body, dict):
            raise RetryableError(
                f"{self.label}: expected a JSON object, got {self.clean(str(body))}"
            )
        return JsonReply(body=body, latency_s=latency)

    def malformed(self, what: str, body: Mapping[str, Any]) -> RetryableError:
        """A 2xx body that lacks what we need: proxies and overloaded servers send these."""
        return RetryableError(
            f"{self.label}: response lacks {what}: {self.clean(json.dumps(body))}"
        )

    def _status_error(self, url: str, response: httpx.Response) -> BackendError | RetryableError:
        status = response.status_code
        message = f"{self.label}: HTTP {status} from {self.clean(url)}: {self.clean(response.text)}"
        if status in RETRYABLE_STATUS or status >= 500:
            return RetryableError(message, retry_after=parse_retry_after(response.headers))
        return BackendError(message)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
