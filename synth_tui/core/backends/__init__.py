"""Backends: one module per protocol behind :class:`Backend`. Adding one is one module
and one line in ``BACKENDS``."""

from __future__ import annotations

import shlex
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


class ResumeNeedsConsent(UserInputError):
    """A run's history names a base URL or key variable other than the user's settings
    would use. The history file is not trusted with where a key goes: resuming needs the
    user to name them. ``differences`` lists (what, the run's value, the settings' value,
    the flag that names it), e.g. ("base URL", "http://host/v1", "https://api.openai.com/v1",
    "--base-url")."""

    def __init__(self, run: str, differences: list[tuple[str, str | None, str | None, str]]) -> None:
        self.differences = differences
        said = "; ".join(f"its {what} is {recorded!r}, your settings use {expected!r}"
                         for what, recorded, expected, _ in differences)
        flags = " ".join(f"{flag} {shlex.quote(recorded or '')}" for _, recorded, _, flag in differences)
        super().__init__(
            f"{run} did not use the endpoint your settings name ({said}). The history file alone does not "
            f"choose where a key is sent: to resume with the run's values, pass {flags}"
        )


def _same_url(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def resume_spec(described: dict[str, Any], settings: Any, base_url: str | None = None,
                api_key_env: str | None = None, *, run: str = "this run") -> BackendSpec:
    """The backend to resume a past run with, from what its history says (``described``:
    the run document's ``backend``) and the user's settings.

    The backend kind and model are the run's. The base URL and the key variable decide
    where which secret goes, so the history file alone cannot choose them: where the run's
    values differ from the user's settings (or defaults), the caller must pass them
    (``base_url``/``api_key_env``, the user's explicit choice, taken as given); otherwise
    :class:`ResumeNeedsConsent` lists what differs. Blank values fall back to the settings.
    """
    if not isinstance(described, dict):
        described = {}
    kind = described.get("backend") or "local"
    if not isinstance(kind, str) or kind not in BACKENDS:
        raise UserInputError(f"{run} used the backend {kind!r}, which this version does not know: "
                             f"choose one of {', '.join(BACKENDS)}")
    model = described.get("model") if isinstance(described.get("model"), str) else None
    if kind == "local":
        return BackendSpec(kind=kind, model=model)
    conf = settings.for_backend(kind)
    recorded_url = described.get("base_url") if isinstance(described.get("base_url"), str) else None
    recorded_env = described.get("api_key_env") if isinstance(described.get("api_key_env"), str) else None
    differences: list[tuple[str, str | None, str | None, str]] = []
    url = base_url or conf.base_url
    if base_url is None and recorded_url and not _same_url(recorded_url, conf.base_url):
        differences.append(("base URL", recorded_url, conf.base_url, "--base-url"))
    env = api_key_env or conf.api_key_env
    if api_key_env is None and recorded_env and recorded_env != conf.api_key_env and kind != "ollama":
        differences.append(("key variable", recorded_env, conf.api_key_env, "--api-key-env"))
    if differences:
        raise ResumeNeedsConsent(run, differences)
    return BackendSpec(kind=kind, model=model, base_url=url, api_key_env=env)


__all__ = [
    "BACKENDS", "Backend", "BackendSpec", "Completion", "CompletionRequest", "GenerationParams",
    "ResumeNeedsConsent", "backend_from_settings", "create_backend", "resume_spec",
]
