"""Settings: one object, from a JSON file, overridden by ``SYNTH_TUI_*`` variables.

An API key typed into the settings screen is kept in the settings file, created with
mode 0600; the usual way is an environment variable (OPENAI_API_KEY, HF_TOKEN, or any
variable a backend's ``api_key_env`` names). Keys never go into the history, logs or
exports: :class:`Secret` hides itself from ``repr``/``str`` formatting.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserInputError
from .fileio import write_atomic

ENV_PREFIX = "SYNTH_TUI_"
BACKEND_DEFAULTS: dict[str, dict[str, str | None]] = {
    "local": {"base_url": None, "model": "smollm2", "api_key_env": None},
    "openai": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    "hf": {
        "base_url": "https://router.huggingface.co/v1",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "api_key_env": "HF_TOKEN",
    },
    "ollama": {"base_url": "http://localhost:11434", "model": "llama3.2", "api_key_env": None},
}


class Secret:
    """A value that prints as *** so it cannot leak through a log line or a repr."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass
class BackendSettings:
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    api_key: Secret | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env}
        if self.api_key:
            doc["api_key"] = self.api_key.get()
        return doc


@dataclass
class Settings:
    backend: str = "local"
    backends: dict[str, BackendSettings] = field(default_factory=dict)
    data_dir: str | None = None
    concurrency: int = 4
    # price per million (prompt, completion) tokens by model name, for cost estimates
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    # key bindings to change, by binding id: {"editor.generate": "ctrl+r"} (F1 lists keys)
    keymap: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        for kind, defaults in BACKEND_DEFAULTS.items():
            current = self.backends.setdefault(kind, BackendSettings())
            for key, value in defaults.items():
                if getattr(current, key) is None:
                    setattr(current, key, value)

    def for_backend(self, kind: str) -> BackendSettings:
        if kind not in self.backends:
            raise UserInputError(f"unknown backend {kind!r}: choose one of {', '.join(self.backends)}")
        return self.backends[kind]

    def api_key(self, kind: str, env_name: str | None = None) -> str | None:
        """The key for a backend: the named variable, then the settings file."""
        conf = self.for_backend(kind)
        name = env_name or conf.api_key_env
        if name and os.environ.get(name):
            return os.environ[name]
        return conf.api_key.get() if conf.api_key else None

    def save(self, path: Path | None = None) -> Path:
        target = path or self.path or settings_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "backend": self.backend,
            "data_dir": self.data_dir,
            "concurrency": self.concurrency,
            "prices": {model: list(p) for model, p in self.prices.items()},
            "keymap": self.keymap,
            "backends": {k: v.to_json() for k, v in self.backends.items()},
        }
        # it may hold keys: 0o600 from the first byte
        write_atomic(target, json.dumps(doc, indent=2).encode(), perm=0o600)
        self.path = target
        return target


def settings_path() -> Path:
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("synth-tui", appauthor=False)) / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    target = path or settings_path()
    doc: dict[str, Any] = {}
    if target.exists():
        try:
            doc = json.loads(target.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{target}:{exc.lineno}:{exc.colno}: invalid JSON in settings: {exc.msg}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserInputError(f"cannot read settings {target}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(doc, dict):
        raise UserInputError(f"{target}: the settings must be a JSON object, not {type(doc).__name__}")
    try:
        return _settings_from(doc, target)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserInputError(f"{target}: a setting has the wrong type ({exc}): correct it or delete the file") from None


def _settings_from(doc: dict[str, Any], target: Path) -> Settings:
    backends = {}
    for kind, conf in (doc.get("backends") or {}).items():
        if isinstance(conf, dict):
            key = conf.get("api_key")
            backends[kind] = BackendSettings(
                base_url=conf.get("base_url"), model=conf.get("model"), api_key_env=conf.get("api_key_env"),
                api_key=Secret(key) if key else None,
            )
    settings = Settings(
        backend=doc.get("backend") or "local",
        backends=backends,
        data_dir=doc.get("data_dir"),
        concurrency=_positive_int(doc.get("concurrency"), "concurrency", 4),
        prices={m: (float(p[0]), float(p[1])) for m, p in (doc.get("prices") or {}).items()
                if isinstance(p, list) and len(p) == 2},
        keymap={k: v for k, v in (doc.get("keymap") or {}).items() if isinstance(k, str) and isinstance(v, str)},
        path=target,
    )
    env = os.environ
    if env.get(f"{ENV_PREFIX}BACKEND"):
        settings.backend = env[f"{ENV_PREFIX}BACKEND"]
    if env.get(f"{ENV_PREFIX}DATA_DIR"):
        settings.data_dir = env[f"{ENV_PREFIX}DATA_DIR"]
    conf = settings.backends.get(settings.backend)
    if conf is not None:
        conf.model = env.get(f"{ENV_PREFIX}MODEL") or conf.model
        conf.base_url = env.get(f"{ENV_PREFIX}BASE_URL") or conf.base_url
    return settings


def _positive_int(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value
