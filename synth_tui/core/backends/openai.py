"""OpenAI-compatible chat completions: OpenAI, vLLM, llama.cpp server, LM Studio,
OpenRouter, and Hugging Face's router (the ``hf`` backend)."""

from __future__ import annotations

from typing import Any

from ..errors import BackendError, RetryableError, StructuredOutputRejected
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
            raise BackendError(
                f"{self.kind}: no API key for {self.base_url}. Set {self.api_key_env}",
                cli="or point --base-url at an OpenAI-compatible server that needs none",
                tui="or type the key in Settings (F5), or a base URL of a server that needs none",
            )
        # the structured-output form this server accepts: json_schema (OpenAI, vLLM, LM
        # Studio, OpenRouter), json_object with the schema beside it (llama-cpp-python's
        # server, JSON mode elsewhere), or none (JSON described in the prompt only)
        self.structured_modes = ["json_schema", "json_object", None]

    @property
    def structured_output(self) -> str | None:
        return self.structured_modes[0]

    async def complete(self, request: CompletionRequest) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages}
        body.update(request.params.as_dict())
        notices = []
        while True:
            mode = self.structured_output if request.response_schema is not None else None
            if mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "records", "schema": request.response_schema, "strict": False},
                }
            elif mode == "json_object":
                body["response_format"] = {"type": "json_object", "schema": request.response_schema}
            else:
                body.pop("response_format", None)
            try:
                data = await self.post_json(
                    "/chat/completions", body, structured=mode is not None, max_bytes=request.max_response_bytes
                )
                break
            except StructuredOutputRejected as exc:
                if self.structured_modes[0] == mode:  # another request may have stepped down already
                    self.structured_modes.pop(0)
                after = self.structured_output
                notices.append(
                    f"{self.base_url} does not accept response_format {mode} ({' '.join(str(exc).split())[:160]}); "
                    + (f"using {after} instead." if after else "asking for JSON described in the prompt instead.")
                    + " Every record is still validated."
                )
        return self._completion(data, " ".join(notices) or None)

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
