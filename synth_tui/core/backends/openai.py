"""OpenAI-compatible chat completions: OpenAI, vLLM, llama.cpp server, LM Studio,
OpenRouter, and Hugging Face's router (the ``hf`` backend)."""

from __future__ import annotations

from typing import Any

from ..errors import RetryableError, StructuredOutputRejected
from .base import Completion, CompletionRequest
from .http import HTTPBackend


class OpenAIBackend(HTTPBackend):
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_model = "gpt-4o-mini"
    key_env = "OPENAI_API_KEY"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the hosted API needs a key; a local server (vLLM, LM Studio, ...) usually does not
        if self.base_url == self.default_base_url and not self._api_key:
            from ..errors import BackendError

            raise BackendError(
                f"{self.kind}: no API key for {self.base_url}. Set {self.api_key_env}, or point "
                "--base-url at an OpenAI-compatible server that needs none."
            )
        self.structured_output = True

    async def complete(self, request: CompletionRequest) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages}
        body.update(request.params.as_dict())
        notice = None
        if self.structured_output and request.response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "records", "schema": request.response_schema, "strict": False},
            }
            try:
                data = await self.post_json("/chat/completions", body, structured=True)
            except StructuredOutputRejected as exc:
                self.structured_output = False
                notice = (
                    f"{self.base_url} does not accept response_format json_schema ({exc}); "
                    "asking for JSON described in the prompt instead. Every record is still validated."
                )
                body.pop("response_format")
                data = await self.post_json("/chat/completions", body)
        else:
            data = await self.post_json("/chat/completions", body)
        return self._completion(data, notice)

    def _completion(self, data: dict[str, Any], notice: str | None) -> Completion:
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise RetryableError(f"{self.base_url} answered without choices: {str(data)[:120]}") from None
        usage = data.get("usage") or {}
        return Completion(
            text=message.get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
            refusal=message.get("refusal"),
            notice=notice,
        )


class HuggingFaceBackend(OpenAIBackend):
    """Hugging Face's OpenAI-compatible router. ``model:provider`` pins one provider."""

    kind = "hf"
    default_base_url = "https://router.huggingface.co/v1"
    default_model = "meta-llama/Llama-3.1-8B-Instruct"
    key_env = "HF_TOKEN"
    key_required = True
