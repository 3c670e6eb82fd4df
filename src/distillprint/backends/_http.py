"""HTTP plumbing shared by the API backends: base URLs, keys, one JSON POST, error mapping.

Every failure becomes either ``RetryableError`` (429, 5xx, timeouts, dropped connections,
bodies that are not a JSON object) or ``BackendError`` (other 4xx, and redirects, which are
never followed: aiohttp keeps custom key headers such as Anthropic's ``x-api-key`` on a
redirect to another host); both carry a short, redacted excerpt of what the server said and
never the key.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from distillprint.errors import BackendError, InputError, MissingSecretError, RetryableError
from distillprint.retry import parse_retry_after
from distillprint.secrets import Secret, known_secrets, read_secret, redact, redact_values
from distillprint.textio import LONE_SURROGATE

# 408/409/425 are transient by definition; 529 is Anthropic's "overloaded".
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 529})
# Refusals of one request (its prompt, its size): the collection goes on without it.
REQUEST_STATUS = frozenset({400, 413, 422})
_AUTH_STATUS = frozenset({401, 403})
_EXCERPT_CHARS = 300
#: longer than any stop reason an API defines ("content_filter", "tool_calls")
_STOP_REASON_CHARS = 40


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms; every session in the process can share one context.
    return ssl.create_default_context()


def normalise_base_url(url: str, *, default_path: str = "") -> str:
    """``scheme://host[:port]/path`` without a trailing slash; credentials are refused."""
    secrets = known_secrets()
    shown = redact(url, secrets)
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError as exc:  # a bad port, an unclosed IPv6 bracket
        raise InputError(f"{redact(str(exc), secrets)} in '{shown}'", field="base_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"expected an http(s) URL, got '{shown}'", field="base_url")
    if parts.username or parts.password:
        raise InputError(
            "the base URL must not carry credentials; put the key in an environment variable",
            field="base_url",
        )
    if parts.query or parts.fragment:
        # The API path is appended to the base URL, so a query would end up inside the path;
        # and a key in a query string would be shown wherever the URL is.
        raise InputError(
            "the base URL must not carry a query string or fragment; put a key in an "
            "environment variable",
            field="base_url",
        )
    if redact_values(url, secrets) != url or redact(parts.path) != parts.path:
        # the base URL is stored, listed and shown in errors: a key in it would be too (a host
        # named like a key, sk-gateway.example, is a host)
        raise InputError("the base URL carries a key (the value of a key variable, or "
                         "text shaped like one); keys go in environment variables only",
                         field="base_url")
    path = parts.path.rstrip("/") or default_path
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, "", ""))


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
    if secret is not None and any(ord(c) < 32 or ord(c) == 127 for c in secret.reveal()):
        raise InputError(
            "the key contains a line break or another control character (a copy-paste "
            "error?); HTTP headers cannot carry it",
            field=variable,
        )
    if secret is not None and not secret.reveal().isascii():
        # sent as UTF-8, a server may read it as Latin-1 and echo a form no redaction knows
        raise InputError(
            "the key holds a character outside ASCII (a copy-paste error, such as a "
            "typographic dash?); API keys are ASCII",
            field=variable,
        )
    return secret


def excerpt(text: str, secrets: list[Secret]) -> str:
    # Redacted before it is cut: a key split by the cut would no longer be recognised.
    flat = redact(" ".join(text.split()), secrets)
    if len(flat) > _EXCERPT_CHARS:
        flat = flat[:_EXCERPT_CHARS] + "..."
    return flat


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


def encode_json_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes a request carries: compact UTF-8 JSON, no NaN (APIs reject it)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class JsonApi:
    """One ``aiohttp`` session for one backend; headers may hold the key, messages never do.

    aiohttp rather than httpx because the collector's own CPU per request is what limits it
    at high concurrency on small machines: with aiohttp's C HTTP parser and a pool that does
    not scan every connection per request, the collector's CPU per request fell from 1.13 to
    0.49 ms at concurrency 64 (``evaluation/perf/README.md``). The collector's workers bound
    concurrency, so the pool itself is unbounded. Timeouts mean what they meant
    before: ``timeout_s`` to connect and ``timeout_s`` between bytes of the reply.
    """

    def __init__(
        self, label: str, timeout_s: float, headers: Mapping[str, str], key: Secret | None,
        key_env: str,
    ) -> None:
        self.label = label
        self._key_env = key_env
        self.timeout_s = timeout_s
        self._secrets = [key] if key is not None else []
        self._headers = {**headers, "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the event loop that is running then.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
                ),
                connector=aiohttp.TCPConnector(limit=0, ssl=_tls_context()),
                raise_for_status=False,
            )
        return self._session

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``...),
        looked up once per URL: aiohttp's ``trust_env`` looks it up in a worker thread on
        every request, a thread hop that cost more CPU than the request's own parsing."""
        if url not in self._proxies:
            parts = urlsplit(url)
            bypass = urllib.request.proxy_bypass(parts.netloc)
            self._proxies[url] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[url]

    def clean(self, text: str) -> str:
        return excerpt(text, self._secrets)

    def answer_text(self, text: str) -> str:
        """A model's answer as it can be stored and shared: without our own key (a hostile or
        misconfigured server may echo it) and with lone UTF-16 surrogates, which JSON allows
        (``"\\ud800"``) but UTF-8 cannot encode, replaced by U+FFFD."""
        return LONE_SURROGATE.sub("\ufffd", redact_values(text, self._secrets))

    def stop_reason(self, value: object) -> str:
        """A short word the server chose (why it stopped), as it can be stored: cleaned as an
        answer is, cut to a label's length; ``unknown`` when the server gave no text."""
        if not isinstance(value, str):
            return "unknown"
        return self.answer_text(value)[:_STOP_REASON_CHARS]

    async def post(self, url: str, payload: dict[str, Any]) -> JsonReply:
        data = encode_json_body(payload)
        started = time.perf_counter()
        try:
            async with self._client().post(
                url, data=data, proxy=self._proxy(url), allow_redirects=False
            ) as response:
                status, headers = response.status, response.headers
                content = await response.read()
        except TimeoutError:
            raise RetryableError(
                f"{self.label}: no answer from {self.clean(url)} within {self.timeout_s:g} s"
            ) from None
        except aiohttp.ClientSSLError as exc:
            # A TLS handshake that fails (https:// to a plain-HTTP port, a certificate for
            # another name) fails the same way on every retry and every request.
            raise BackendError(self.clean(
                f"{self.label}: TLS with {url} failed ({type(exc).__name__}: {exc}); is it an "
                "http:// server, or does its certificate name another host?")) from None
        except aiohttp.ClientError as exc:
            # Resets, refused connections and bodies cut short; ``from None`` because the
            # aiohttp exception can hold the request, headers (and so the key) included.
            raise RetryableError(
                self.clean(f"{self.label}: request to {url} failed ({type(exc).__name__}: {exc})")
            ) from None
        latency = time.perf_counter() - started
        if not 200 <= status < 300:
            raise self._status_error(url, status, headers, content)
        try:
            body = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError(
                f"{self.label}: unparseable body from {self.clean(url)}: "
                f"{self.clean(_text(content))!r}"
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

    def _status_error(
        self, url: str, status: int, headers: Mapping[str, str], content: bytes
    ) -> BackendError | RetryableError:
        said = self.clean(_readable(content))
        message = f"{self.label}: HTTP {status} from {self.clean(url)}: {said}"
        if status in _AUTH_STATUS and not self._secrets:
            # a loopback server may run without a key, so none was required: the likeliest
            # cause is a variable the CI job did not pass on
            message += f" (no key was sent: {self._key_env} is unset or empty)"
        if status in RETRYABLE_STATUS or status >= 500:
            return RetryableError(message, retry_after=parse_retry_after(headers), status=status)
        if 300 <= status < 400:
            target = urlsplit(headers.get("Location", ""))
            shown = urlunsplit((target.scheme, target.netloc, target.path, "", ""))
            return BackendError(
                f"{self.label}: HTTP {status} redirect from {self.clean(url)} to "
                f"{self.clean(shown) or 'an unnamed location'}, not followed because the request "
                "carries the API key; set the base URL to the final address"
            )
        return BackendError(message, per_request=status in REQUEST_STATUS)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _text(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")


def _readable(content: bytes) -> str:
    """An error body as text; JSON is re-encoded without escapes so that a key the server
    escaped (``\\u0073k-...``) is still recognised and redacted."""
    text = _text(content)
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except json.JSONDecodeError:
        return text
