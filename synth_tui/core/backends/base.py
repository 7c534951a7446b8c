"""The one small interface every backend implements."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

# the most bytes of one answer a run reads by default (RunConfig.max_response_bytes)
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


@dataclass
class GenerationParams:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class CompletionRequest:
    messages: list[dict[str, str]]
    record_schema: dict[str, Any]
    count: int
    response_schema: dict[str, Any] | None = None  # what structured output should follow
    params: GenerationParams = field(default_factory=GenerationParams)
    # variation a backend may enforce rather than ask for (one-record requests):
    # {"field": name, "letter": "K", "enums": {field: value}}
    variation: dict[str, Any] | None = None
    # the most bytes of answer to read; past it the backend raises ResponseTooLarge
    max_response_bytes: int | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    refusal: str | None = None
    notice: str | None = None  # said once to the user, e.g. a structured-output fallback


@dataclass
class BackendSpec:
    """What a user chose: which backend, where, which model. Never holds the key itself."""

    kind: str = "local"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    # several servers of one kind, the run spread over them: every base URL, in order;
    # base_url is its first. One given here is just base_url: a spec of one server is the
    # same whichever way it was made
    base_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        urls = tuple(self.base_urls)
        if urls:
            self.base_url = urls[0]
        self.base_urls = urls if len(urls) > 1 else ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Every base URL this spec names: none, one, or several (a pool of endpoints)."""
        return self.base_urls or ((self.base_url,) if self.base_url else ())

    @classmethod
    def from_described(cls, described: dict[str, Any]) -> BackendSpec:
        """The spec of a past run, from what its backend's describe() saved in history."""
        several = described.get("base_urls")
        urls = tuple(several) if isinstance(several, list) and all(isinstance(u, str) for u in several) else ()
        return cls(kind=described.get("backend") or "local", model=described.get("model"),
                   base_url=described.get("base_url"), api_key_env=described.get("api_key_env"), base_urls=urls)


class Backend(abc.ABC):
    """Sends one request for records and returns the model's text.

    Raises RetryableError for transient failures, BackendError for ones retries cannot
    mend. The engine owns retries, validation and everything else.

    A backend holds a client (or a process) until closed: ``async with backend:`` closes
    it on the way out, whatever happens inside.
    """

    kind: str = ""
    # records per request that work well for this backend when the user does not say
    preferred_batch_size: int = 10
    # the most requests this backend can usefully take at once (None: no limit of its own)
    max_concurrency: int | None = None
    # whether the model sees the schema through constrained decoding only (no prompt copy)
    schema_in_prompt: bool = True
    # whether prompts list values already used; tiny models copy them instead of avoiding
    # them (bench/local_model.py), so the embedded model turns this off
    avoid_list: bool = True
    # whether prompts carry the place/persona hint text; a model that copies it (the
    # embedded one puts the place into the name) gets its variation from the grammar
    hint_text: bool = True

    def __init__(self, model: str, base_url: str = "") -> None:
        self.model = model
        self.base_url = base_url

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "base_url": self.base_url}

    def endpoint_counts(self) -> list[dict[str, Any]]:
        """What each endpoint of a pool did (requests, answers, failures, set-asides), for
        progress and history; [] for a backend of one endpoint."""
        return []


SECRET_PATTERNS = re.compile(r"\b(sk-[A-Za-z0-9_*\-]{6,}|hf_[A-Za-z0-9*]{6,}|Bearer\s+\S+)")


def redact(text: str, *secrets: str | None) -> str:
    """Remove keys, and anything shaped like one, from text bound for a person or a file."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return SECRET_PATTERNS.sub("***", text)
