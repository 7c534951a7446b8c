"""What every HTTP backend shares: one client, a long read timeout, error classification.

Transport: plain httpx spends ~20 ms of client CPU per request at high concurrency
(encode/httpx#3215) and tops out near 50 requests/s; the aiohttp transport under the
same httpx API does not. bench/engine_overhead.py measures both.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]  # no such module on Windows: limits unknown

from ..errors import (
    BackendError,
    ResponseTooLarge,
    RetryableError,
    StructuredOutputRejected,
    SynthError,
    TimedOut,
    TooManyOpenFiles,
    Unreachable,
)
from .base import DEFAULT_MAX_RESPONSE_BYTES, Backend, redact

RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
MAX_RETRY_AFTER = 120.0
DEFAULT_READ_TIMEOUT = 300.0
ERROR_BODY_BYTES = 64 * 1024  # read of an error answer: its message is in the first lines
MAX_MESSAGE_CHARS = 300  # of a server's error text quoted in a message


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


def server_message(raw: bytes, reason: str = "", redact: Callable[[str], str] = lambda text: text) -> str:
    """The error text a server put in its body, whatever its shape, with secrets
    redacted and at most MAX_MESSAGE_CHARS long (the body is the server's, and so is
    its length)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not text, or nested without end
        text = raw.decode("utf-8", errors="replace").strip() or reason
    else:
        err = body.get("error", body.get("detail", body.get("message"))) if isinstance(body, dict) else None
        if isinstance(err, dict):
            err = err.get("message") or json.dumps(err)
        text = str(err) if err else json.dumps(body)
    return _clip(redact(text[: MAX_MESSAGE_CHARS * 20]))  # redacted whole, then clipped: no half keys


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
                f"{self.kind}: no API key. Set {self.api_key_env} in the environment",
                cli="or name another variable with --api-key-env",
                tui="or type the key, or another variable's name, in Settings (F5)",
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

    async def post_json(
        self, path: str, body: dict[str, Any], *, structured: bool = False, max_bytes: int | None = None
    ) -> dict[str, Any]:
        """POST ``body`` and return the JSON answer. The whole exchange (connect, send,
        every byte of the answer) must end within the timeout: a server that trickles
        a byte at a time is cut off like one that says nothing. An answer past
        ``max_bytes`` is not read further (ResponseTooLarge)."""
        url = f"{self.base_url}{path}"
        limit = max_bytes or DEFAULT_MAX_RESPONSE_BYTES
        try:
            async with asyncio.timeout(self._read_timeout):
                response, raw = await self._exchange(path, body, url, limit)
        except SynthError:
            raise
        except Exception as exc:
            error = _classify(exc, url, self._read_timeout)
            if error is None:
                raise
            raise error from None
        if response.status_code >= 400:
            self._raise_for(response, raw, url, structured)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested without end
            shown = raw[:120].decode("utf-8", errors="replace")
            raise RetryableError(f"{url} answered with a body that is not JSON: {shown!r}") from None
        if not isinstance(data, dict):
            raise RetryableError(f"{url} answered with unexpected JSON: {raw[:120].decode('utf-8', 'replace')!r}")
        return data

    async def _exchange(self, path: str, body: dict[str, Any], url: str, limit: int) -> tuple[httpx.Response, bytes]:
        async with self._client.stream("POST", path, json=body) as response:
            failed = response.status_code >= 400  # of an error answer, its start is enough
            cap = ERROR_BODY_BYTES if failed else limit
            declared = response.headers.get("content-length", "")
            if not failed and declared.isdigit() and int(declared) > limit:
                raise _too_large(url, limit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    if not failed:
                        raise _too_large(url, limit)
                    chunks.append(chunk[: len(chunk) - (size - cap)])
                    break
                chunks.append(chunk)
        return response, b"".join(chunks)

    def _raise_for(self, response: httpx.Response, raw: bytes, url: str, structured: bool) -> None:
        status = response.status_code
        message = server_message(raw, response.reason_phrase, self._redact)
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


def _too_large(url: str, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"{url} sent an answer larger than the cap of {limit} bytes (max_response_bytes): "
                            "not read further")


def _classify(exc: Exception, url: str, timeout: float) -> SynthError | None:
    """What a failed exchange means for the run, or None for an exception that is not a
    transport failure (a bug, to be reported as one)."""
    code = _errno(exc)
    if code == errno.EMFILE:
        return TooManyOpenFiles(
            f"cannot open a connection to {url}: this process has too many open files (its limit is "
            f"{_files_limit()}). Raise the limit (ulimit -n) or lower the concurrency."
        )
    if code == errno.ENFILE:
        return TooManyOpenFiles(
            f"cannot open a connection to {url}: the system has too many open files. "
            "Close other programs or lower the concurrency."
        )
    if _hung_up(exc):
        # what a port forward, a proxy or a stopped container does when nothing listens
        # behind it: like a refused connection, fatal before a run's first answer
        return Unreachable(f"{url} closed the connection without answering")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        if _refused(exc):
            return Unreachable(f"cannot connect to {url} ({_clip(_root_cause(exc), 200)})")
        return RetryableError(f"could not connect to {url}: {_clip(_root_cause(exc), 200)}")
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return TimedOut(f"no complete answer from {url} within {timeout:g} s")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return BackendError(f"{url} is not an http:// or https:// address: check the base URL")
    if _transport_failure(exc):
        # a broken status line, chunked encoding or compression, a dropped connection:
        # this answer is lost, the next may be fine
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return RetryableError(f"connection to {url} failed: {type(exc).__name__}: {_clip(detail, 200)}")
    return None


def _hung_up(exc: BaseException) -> bool:
    """True when the server closed or reset the connection without a byte of answer."""
    for cause in _causes(exc):
        if isinstance(cause, (ConnectionResetError, BrokenPipeError)):  # aiohttp's included
            return True
        if type(cause).__name__ == "ServerDisconnectedError":  # aiohttp
            return True
        if isinstance(cause, httpx.RemoteProtocolError) and "without sending a response" in str(cause):
            return True
    return False


def _transport_failure(exc: BaseException) -> bool:
    if isinstance(exc, (httpx.HTTPError, OSError, EOFError)):
        return True
    aiohttp = sys.modules.get("aiohttp")  # loaded with the aiohttp transport only
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def _errno(exc: BaseException) -> int | None:
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno is not None:
            return cause.errno
    return None


def _files_limit() -> str:
    # imported beforehand: with no file descriptor left, an import fails too
    if resource is None:
        return "unknown"
    return str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


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
