"""The OpenAI Files and Batches APIs over an OpenAIBackend's own client: upload a JSONL
file of requests (purpose=batch), create a batch on /v1/chat/completions, retrieve and
cancel it, and read its output and error files line by line.

Errors are the backend's: a 401 is a BackendError naming the key's variable, a 5xx or a
dropped connection a RetryableError. The body of one batch line is built here as
OpenAIBackend.complete would send it with json_schema structured output.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from ..errors import BackendError, RetryableError, SynthError
from .base import CompletionRequest
from .http import _classify
from .openai import OpenAIBackend

CHAT_URL = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def chat_body(model: str, request: CompletionRequest) -> dict[str, Any]:
    """The chat completion body of ``request``, as OpenAIBackend sends it."""
    body: dict[str, Any] = {"model": model, "messages": request.messages, **request.params.as_dict()}
    if request.response_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "records", "schema": request.response_schema, "strict": False},
        }
    return body


def batch_line(custom_id: str, model: str, request: CompletionRequest) -> bytes:
    """One line of a batch's input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": chat_body(model, request)}
    return json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n"


class BatchClient:
    """Files and Batches calls through ``backend``'s client (its base URL ends in /v1)."""

    def __init__(self, backend: OpenAIBackend) -> None:
        self.backend = backend
        self._client = backend._client

    async def upload(self, data: bytes, name: str) -> str:
        """Upload an input file; its id."""
        files = {"file": (name, data, "application/jsonl")}
        answer = await self._call("POST", "/files", files=files, data={"purpose": "batch"})
        return _text(answer, "id", "/files")

    async def create(self, input_file_id: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"input_file_id": input_file_id, "endpoint": CHAT_URL, "completion_window": COMPLETION_WINDOW,
                "metadata": metadata or {}}
        answer = await self._call("POST", "/batches", json=body)
        _text(answer, "id", "/batches")
        return answer

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        answer = await self._call("GET", f"/batches/{batch_id}")
        _text(answer, "status", f"/batches/{batch_id}")
        return answer

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/batches/{batch_id}/cancel")

    async def lines(self, file_id: str, max_line: int) -> AsyncIterator[bytes | None]:
        """The lines of a file's content; None for a line longer than ``max_line``
        bytes (not kept: a hostile file cannot fill the memory)."""
        path = f"/files/{file_id}/content"
        url = f"{self.backend.base_url}{path}"
        try:
            async with self._client.stream("GET", path) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    self.backend._raise_for(response, raw[:65536], url, False)
                buffer = b""
                skipping = False
                async for chunk in response.aiter_bytes():
                    buffer += chunk
                    *whole, buffer = buffer.split(b"\n")
                    for line in whole:
                        if skipping:
                            skipping = False
                        elif line.strip():
                            yield line if len(line) <= max_line else None
                    if len(buffer) > max_line:
                        if not skipping:
                            yield None
                        buffer, skipping = b"", True
                if buffer.strip() and not skipping:
                    yield buffer
        except SynthError:
            raise
        except Exception as exc:
            raise _transport(exc, url, self.backend._read_timeout) from None

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        url = f"{self.backend.base_url}{path}"
        timeout = self.backend._read_timeout
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.request(method, path, **kw)
                raw = await response.aread()
        except Exception as exc:
            raise _transport(exc, url, timeout) from None
        if response.status_code >= 400:
            self.backend._raise_for(response, raw[:65536], url, False)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise RetryableError(f"{url} answered with a body that is not JSON: {raw[:120]!r}") from None
        if not isinstance(data, dict):
            raise RetryableError(f"{url} answered with unexpected JSON: {raw[:120]!r}")
        return data


def _transport(exc: Exception, url: str, timeout: float) -> Exception:
    error = _classify(exc, url, timeout)
    return error if error is not None else exc


def _text(answer: dict[str, Any], key: str, where: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise BackendError(f"{where} answered without {key!r}: {json.dumps(answer)[:160]}")
    return value
