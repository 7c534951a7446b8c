"""Backends: one module per protocol behind :class:`Backend`. Adding one is one module
and one line in ``BACKENDS``."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import UserInputError
from .base import Backend, BackendSpec, Completion, CompletionRequest, GenerationParams


def _openai(**kw: Any) -> Backend:
    from .openai import OpenAIBackend

    return OpenAIBackend(**kw)


def _hf(**kw: Any) -> Backend:
    from .openai import HuggingFaceBackend

    return HuggingFaceBackend(**kw)


def _ollama(**kw: Any) -> Backend:
    from .ollama import OllamaBackend

    kw.pop("api_key", None)
    kw.pop("api_key_env", None)
    return OllamaBackend(**kw)


def _local(**kw: Any) -> Backend:
    from .local import LocalBackend

    return LocalBackend(model=kw.get("model"))  # no HTTP options: it runs in a local process


BACKENDS: dict[str, Callable[..., Backend]] = {
    "local": _local,
    "openai": _openai,
    "hf": _hf,
    "ollama": _ollama,
}


def create_backend(spec: BackendSpec, *, api_key: str | None = None, **options: Any) -> Backend:
    """Build the backend a spec names. ``api_key`` overrides the environment variable."""
    try:
        factory = BACKENDS[spec.kind]
    except KeyError:
        raise UserInputError(f"unknown backend {spec.kind!r}: choose one of {', '.join(BACKENDS)}") from None
    kwargs: dict[str, Any] = {"model": spec.model, **options}
    if spec.kind != "local":
        kwargs.update(base_url=spec.base_url, api_key=api_key, api_key_env=spec.api_key_env)
    return factory(**kwargs)


def backend_from_settings(spec: BackendSpec, settings: Any, **options: Any) -> Backend:
    """The backend a spec names, its blanks (model, base URL, key variable) filled from
    the settings, its key from that variable or the settings file."""
    conf = settings.for_backend(spec.kind)
    spec = BackendSpec(
        kind=spec.kind, model=spec.model or conf.model, base_url=spec.base_url or conf.base_url,
        api_key_env=spec.api_key_env or conf.api_key_env,
    )
    return create_backend(spec, api_key=settings.api_key(spec.kind, spec.api_key_env), **options)


__all__ = [
    "BACKENDS", "Backend", "BackendSpec", "Completion", "CompletionRequest", "GenerationParams",
    "backend_from_settings", "create_backend",
]
