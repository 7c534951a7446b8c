"""Backends: one module per protocol behind :class:`Backend`, and one entry per kind in
``KINDS``, the registry every other part reads: the CLI's choices, the settings and their
defaults, the editor and settings screens, resume. Adding a backend is one module and
one entry here."""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import UserInputError
from .base import Backend, BackendSpec, Completion, CompletionRequest, GenerationParams


@dataclass(frozen=True)
class BackendKind:
    """What the rest of the app knows of one kind of backend."""

    name: str
    label: str  # for people: the editor's and settings' choices
    factory: str  # "module:Class", imported only when a backend of this kind is made
    default_model: str
    default_base_url: str | None = None  # None: it has no base URL (it runs here)
    key_env: str | None = None  # the variable its key is read from; None: it takes no key
    needs_key: bool = False  # refuses to run without one at its default URL

    @property
    def takes_base_url(self) -> bool:
        return self.default_base_url is not None

    @property
    def takes_key(self) -> bool:
        return self.key_env is not None

    def make(self, **kw: Any) -> Backend:
        module, _, name = self.factory.partition(":")
        cls = getattr(importlib.import_module(module, __package__), name)
        if not self.takes_base_url:
            kw = {"model": kw.get("model")}  # runs in a local process: no HTTP options
        elif not self.takes_key:
            kw.pop("api_key", None)
            kw.pop("api_key_env", None)
        backend: Backend = cls(**kw)
        return backend


KINDS: dict[str, BackendKind] = {kind.name: kind for kind in (
    BackendKind("local", "local (offline)", ".local:LocalBackend", "smollm2"),
    BackendKind("openai", "OpenAI-compatible", ".openai:OpenAIBackend", "gpt-4o-mini",
                "https://api.openai.com/v1", "OPENAI_API_KEY", needs_key=True),
    BackendKind("hf", "Hugging Face", ".openai:HuggingFaceBackend", "meta-llama/Llama-3.1-8B-Instruct",
                "https://router.huggingface.co/v1", "HF_TOKEN", needs_key=True),
    BackendKind("ollama", "Ollama", ".ollama:OllamaBackend", "llama3.2", "http://localhost:11434"),
)}
BACKENDS = tuple(KINDS)  # the names, in the order people see them


def check_base_url(url: str) -> str:
    """``url`` if it can be a server's address (http or https, with a host); else a
    UserInputError that says so, before any run starts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserInputError(f"the base URL {url!r} is not an http:// or https:// address with a host "
                             "(for example http://localhost:8000/v1)")
    return url


def kind_of(name: str) -> BackendKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserInputError(f"unknown backend {name!r}: choose one of {', '.join(KINDS)}") from None


def create_backend(spec: BackendSpec, *, api_key: str | None = None, **options: Any) -> Backend:
    """Build the backend a spec names. ``api_key`` overrides the environment variable.
    Several base URLs make a pool of endpoints (pool.py); one, the backend alone."""
    kind = kind_of(spec.kind)
    urls = spec.urls if kind.takes_base_url else ()
    for url in urls:
        check_base_url(url)
    if len(urls) > 1:
        from .pool import EndpointPool

        check_distinct(urls)
        return EndpointPool([kind.make(model=spec.model, base_url=url, api_key=api_key,
                                       api_key_env=spec.api_key_env, **options) for url in urls])
    return kind.make(model=spec.model, base_url=spec.base_url, api_key=api_key, api_key_env=spec.api_key_env,
                     **options)


def check_distinct(urls: tuple[str, ...]) -> None:
    """Each endpoint of a pool once: the same server twice is a slip, not a second server."""
    seen: set[str] = set()
    for url in urls:
        if _normal(url) in seen:
            raise UserInputError(f"the base URL {url!r} is given twice: give each server once")
        seen.add(_normal(url))


def backend_from_settings(spec: BackendSpec, settings: Any, **options: Any) -> Backend:
    """The backend a spec names, its blanks (model, base URLs, key variable) filled from
    the settings, its key from that variable or the settings file."""
    conf = settings.for_backend(spec.kind)
    spec = BackendSpec(
        kind=spec.kind, model=spec.model or conf.model, base_urls=spec.urls or conf.endpoint_urls(),
        api_key_env=spec.api_key_env or conf.api_key_env,
    )
    return create_backend(spec, api_key=settings.api_key(spec.kind, spec.api_key_env), **options)


class ResumeNeedsConsent(UserInputError):
    """A run's history names a base URL or key variable other than the user's settings
    would use. The history file is not trusted with where a key goes: resuming needs the
    user to name them. ``differences`` lists (what, the run's value, the settings' value,
    the flag that names it), e.g. ("base URL", "http://host/v1", "https://api.openai.com/v1",
    "--base-url")."""

    def __init__(self, run: str, differences: list[tuple[str, Shown, Shown, str]]) -> None:
        self.differences = differences
        said = "; ".join(f"{_its(what, recorded)} {_quoted(recorded)}, your settings use {_quoted(expected)}"
                         for what, recorded, expected, _ in differences)
        flags = " ".join(_flags(flag, recorded) for _, recorded, _, flag in differences)
        super().__init__(
            f"{run} did not use the endpoint your settings name ({said}). The history file alone does not "
            "choose where a key is sent", cli=f"to resume with the run's values, pass {flags}",
            tui="resume it from the history, which asks first")


class BaseUrls(tuple[str, ...]):
    """Several base URLs (a pool's), shown as a list a person reads."""

    def __str__(self) -> str:
        return ", ".join(self)


Shown = str | BaseUrls | None  # a value a ResumeNeedsConsent difference names


def _its(what: str, value: Shown) -> str:
    return f"its {what}s are" if isinstance(value, BaseUrls) else f"its {what} is"


def _quoted(value: Shown) -> str:
    return ", ".join(repr(url) for url in value) if isinstance(value, BaseUrls) else repr(value)


def _flags(flag: str, value: Shown) -> str:
    """The flags that name ``value`` again: one per URL of several."""
    values = value if isinstance(value, BaseUrls) else [value or ""]
    return " ".join(f"{flag} {shlex.quote(v)}" for v in values)


def _normal(url: str | None) -> str:
    return (url or "").rstrip("/")


def _same_urls(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return sorted(map(_normal, a)) == sorted(map(_normal, b))


def _shown(urls: tuple[str, ...]) -> Shown:
    """URLs as a ResumeNeedsConsent difference holds them: one as itself, several as BaseUrls."""
    return BaseUrls(urls) if len(urls) > 1 else urls[0] if urls else None


def _recorded_urls(described: dict[str, Any]) -> tuple[str, ...]:
    """The base URLs a run's history names: its pool's list, else its one base URL."""
    several = described.get("base_urls")
    if isinstance(several, list) and several and all(isinstance(u, str) for u in several):
        return tuple(several)
    one = described.get("base_url")
    return (one,) if isinstance(one, str) and one else ()


def resume_spec(described: dict[str, Any], settings: Any, base_url: str | Sequence[str] | None = None,
                api_key_env: str | None = None, *, run: str = "this run") -> BackendSpec:
    """The backend to resume a past run with, from what its history says (``described``:
    the run document's ``backend``) and the user's settings.

    The backend kind and model are the run's. The base URL and the key variable decide
    where which secret goes, so the history file alone cannot choose them: where the run's
    values differ from the user's settings (or defaults), the caller must pass them
    (``base_url``/``api_key_env``, the user's explicit choice, taken as given); otherwise
    :class:`ResumeNeedsConsent` lists what differs. Blank values fall back to the settings.
    ``base_url`` may be several (a pool's endpoints), as may the run's and the settings'.
    """
    if not isinstance(described, dict):
        described = {}
    kind = described.get("backend") or "local"
    if not isinstance(kind, str) or kind not in KINDS:
        raise UserInputError(f"{run} used the backend {kind!r}, which this version does not know: "
                             f"choose one of {', '.join(KINDS)}")
    model = described.get("model") if isinstance(described.get("model"), str) else None
    if not KINDS[kind].takes_base_url:
        return BackendSpec(kind=kind, model=model)
    conf = settings.for_backend(kind)
    recorded_urls = _recorded_urls(described)
    recorded_env = described.get("api_key_env") if isinstance(described.get("api_key_env"), str) else None
    differences: list[tuple[str, Shown, Shown, str]] = []
    given = (base_url,) if isinstance(base_url, str) else tuple(base_url or ())
    mine = conf.endpoint_urls()
    if not given and recorded_urls and not _same_urls(recorded_urls, mine):
        differences.append(("base URL", _shown(recorded_urls), _shown(mine), "--base-url"))
    env = api_key_env or conf.api_key_env
    if api_key_env is None and recorded_env and recorded_env != conf.api_key_env and KINDS[kind].takes_key:
        differences.append(("key variable", recorded_env, conf.api_key_env, "--api-key-env"))
    if differences:
        raise ResumeNeedsConsent(run, differences)
    return BackendSpec(kind=kind, model=model, base_urls=given or mine, api_key_env=env)


__all__ = [
    "BACKENDS", "KINDS", "Backend", "BackendKind", "BaseUrls", "kind_of", "BackendSpec", "Completion",
    "CompletionRequest", "GenerationParams",
    "ResumeNeedsConsent", "backend_from_settings", "create_backend", "resume_spec",
]
