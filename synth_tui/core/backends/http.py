"""What every HTTP backend shares: one client, a long read timeout, error classification.

Transport: plain httpx spends ~20 ms of client CPU per request at high concurrency
(encode/httpx#3215) and tops out near 50 requests/s; the aiohttp transport under the
same httpx API does not. bench/engine_overhead.py measures both.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from typing import Any

import httpx

from ..errors import BackendError, RetryableError, StructuredOutputRejected
from .base import Backend, redact

RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
MAX_RETRY_AFTER = 120.0
DEFAULT_READ_TIMEOUT = 300.0


class Unreachable(RetryableError):
    """No connection could be made (refused, DNS). Fatal before a run's first success."""


def make_client(
    base_url: str,
    headers: dict[str, str] | None = None,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    transport: str = "aiohttp",
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(connect=10.0, read=read_timeout, write=30.0, pool=None)
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=AiohttpTransport(limits=limits)
        )
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, limits=limits)


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return min(MAX_RETRY_AFTER, max(0.0, float(ms) / 1000))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, when - (now if now is not None else time.time())))


def server_message(response: httpx.Response) -> str:
    """The error text a server put in its body, whatever its shape."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or json.dumps(err)
        if err:
            return str(err)[:300]
    return json.dumps(body)[:300]


class HTTPBackend(Backend):
    """A backend that speaks JSON over HTTP through one reused AsyncClient."""

    default_base_url: str = ""
    default_model: str = ""
    key_env: str | None = None
    key_required: bool = False

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        transport: str = "aiohttp",
    ) -> None:
        super().__init__(model or self.default_model, (base_url or self.default_base_url).rstrip("/"))
        self.api_key_env = api_key_env or self.key_env
        self._api_key = api_key if api_key is not None else (os.environ.get(self.api_key_env or "") or None)
        if self.key_required and not self._api_key:
            raise BackendError(
                f"{self.kind}: no API key. Set {self.api_key_env} in the environment "
                f"(or name another variable with --api-key-env)."
            )
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._read_timeout = read_timeout
        self._client = make_client(self.base_url, headers, read_timeout=read_timeout, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    def describe(self) -> dict[str, Any]:
        # the variable's name, never its value: resume reads the key from it again
        return {**super().describe(), "api_key_env": self.api_key_env}

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    async def post_json(self, path: str, body: dict[str, Any], *, structured: bool = False) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            response = await self._client.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if _refused(exc):
                raise Unreachable(f"cannot connect to {url} ({_root_cause(exc)})") from None
            raise RetryableError(f"could not connect to {url}: {_root_cause(exc)}") from None
        except httpx.TimeoutException:
            raise RetryableError(f"no answer from {url} within {self._read_timeout:g} s") from None
        except httpx.UnsupportedProtocol:
            raise BackendError(f"{url} is not an http:// or https:// address: check the base URL") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"connection to {url} failed: {type(exc).__name__} {exc}") from None
        if response.status_code >= 400:
            self._raise_for(response, url, structured)
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError(f"{url} answered with a body that is not JSON: {response.text[:120]!r}") from None
        if not isinstance(data, dict):
            raise RetryableError(f"{url} answered with unexpected JSON: {response.text[:120]!r}")
        return data

    def _raise_for(self, response: httpx.Response, url: str, structured: bool) -> None:
        status = response.status_code
        message = self._redact(server_message(response))
        if structured and _refuses_structured(status, message):
            raise StructuredOutputRejected(message)
        if status in RETRYABLE_STATUS:
            raise RetryableError(
                f"HTTP {status} from {url}: {message}", status=status, retry_after=parse_retry_after(response.headers)
            )
        if status in (401, 403):
            where = f"${self.api_key_env}" if self.api_key_env else "the API key"
            raise BackendError(
                f"{self.kind} refused the API key (HTTP {status} from {url}): {message}. Check {where}."
            )
        if status == 404:
            raise BackendError(
                f"HTTP 404 from {url}: {message}. Check the model name ({self.model!r}) and the base URL."
            )
        raise BackendError(f"{self.kind} rejected the request (HTTP {status} from {url}): {message}")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in chain:
        chain.append(node)
        node = node.__cause__ or node.__context__
    return chain


def _refused(exc: BaseException) -> bool:
    """True when no server listens there (refused, unknown host), whatever the transport
    called it: httpx-aiohttp reports a refused connection as ConnectTimeout."""
    import socket

    for cause in _causes(exc):
        if isinstance(cause, (ConnectionRefusedError, socket.gaierror)):
            return True
        if type(cause).__name__ == "ClientConnectorError" and not isinstance(cause, TimeoutError):
            return True
    return isinstance(exc, httpx.ConnectError)


def _root_cause(exc: BaseException) -> str:
    last = _causes(exc)[-1]
    return str(last) or type(last).__name__


def _refuses_structured(status: int, message: str) -> bool:
    """Whether an error answer refuses the structured-output parameter. Most servers say
    so with 400/422; llama-cpp-python's server answers 500 with a validation error that
    names response_format, so a 5xx counts only when it names the parameter."""
    text = message.lower()
    if status in (400, 422):
        return any(word in text for word in ("response_format", "json_schema", "schema", "format", "grammar"))
    return status >= 500 and ("response_format" in text or "json_schema" in text)
