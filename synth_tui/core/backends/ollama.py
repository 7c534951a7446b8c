"""Ollama's native ``/api/chat`` with ``format: <schema>``.

Ollama serves one request per model at a time by default and answers 503 when its
queue is full; the engine's retries and adaptive concurrency take care of that.
"""

from __future__ import annotations

from typing import Any

from ..errors import RetryableError
from .base import Completion, CompletionRequest
from .http import HTTPBackend


class OllamaBackend(HTTPBackend):
    kind = "ollama"
    default_base_url = "http://localhost:11434"
    default_model = "llama3.2"
    key_env = None
    preferred_batch_size = 5

    def __init__(self, model: str | None = None, base_url: str | None = None, **kwargs: Any) -> None:
        if base_url:
            base_url = base_url.rstrip("/").removesuffix("/api").removesuffix("/v1")
        super().__init__(model, base_url, **kwargs)

    async def complete(self, request: CompletionRequest) -> Completion:
        params = request.params
        options = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "num_predict": params.max_tokens,
        }
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "stream": False,
            "options": {k: v for k, v in options.items() if v is not None},
        }
        if request.response_schema is not None:
            body["format"] = request.response_schema
        data = await self.post_json("/api/chat", body, max_bytes=request.max_response_bytes)
        if "message" not in data:
            raise RetryableError(f"{self.base_url} answered without a message: {str(data)[:120]}")
        return Completion(
            text=(data.get("message") or {}).get("content") or "",
            prompt_tokens=int(data.get("prompt_eval_count") or 0),
            completion_tokens=int(data.get("eval_count") or 0),
            finish_reason=data.get("done_reason"),
        )
