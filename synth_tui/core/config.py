"""Settings: one object, from a JSON file, overridden by ``SYNTH_TUI_*`` variables.

Every field remembers where its value came from (:meth:`Settings.source`): the settings
file, an environment variable, a command-line flag (:meth:`Settings.override`), or the
built-in default. :meth:`Settings.save` writes back what the file held plus what was
changed since it was loaded; an override from the environment or a flag stays an
override and never lands in the file.

An API key typed into the settings screen is kept in the settings file, created with
mode 0600; the usual way is an environment variable (OPENAI_API_KEY, HF_TOKEN, or any
variable a backend's ``api_key_env`` names). Keys never go into the history, logs or
exports: :class:`Secret` hides itself from ``repr``/``str`` formatting.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from .backends import KINDS
from .errors import UserInputError
from .fileio import write_atomic

Source = Literal["default", "file", "environment", "flag"]

ENV_PREFIX = "SYNTH_TUI_"
BACKEND_FIELDS = ("base_url", "model", "api_key_env", "api_key")
TOP_FIELDS = ("backend", "data_dir", "concurrency", "prices", "keymap", "confirm_cost_over")
# each backend's defaults, from the one registry of backend kinds
BACKEND_DEFAULTS: dict[str, dict[str, str | None]] = {
    kind.name: {"base_url": kind.default_base_url, "model": kind.default_model, "api_key_env": kind.key_env}
    for kind in KINDS.values()
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
    # several servers of this kind (the file's "base_url" as a list): a run spreads over
    # them. It applies while base_url is still its first: setting base_url alone (the
    # settings screen, $SYNTH_TUI_BASE_URL) replaces the list
    base_urls: tuple[str, ...] = ()

    def endpoint_urls(self) -> tuple[str, ...]:
        """Every base URL a run of this backend uses: several, one, or none (its default)."""
        if len(self.base_urls) > 1 and self.base_url == self.base_urls[0]:
            return self.base_urls
        return (self.base_url,) if self.base_url else ()

    def set_base_urls(self, urls: str | list[str] | tuple[str, ...] | None) -> None:
        """One base URL, several, or none (the default)."""
        several = (urls,) if isinstance(urls, str) else tuple(urls or ())
        self.base_urls = several if len(several) > 1 else ()
        self.base_url = several[0] if several else None

    def to_json(self) -> dict[str, Any]:
        urls = self.endpoint_urls()
        doc: dict[str, Any] = {"base_url": list(urls) if len(urls) > 1 else self.base_url, "model": self.model,
                               "api_key_env": self.api_key_env}
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
    # USD: the TUI asks before a Generate whose estimate (a pilot's) costs more; None: never asks
    confirm_cost_over: float | None = None
    path: Path | None = None
    # where each field's value came from, by path ("data_dir", "backends.openai.model"):
    # "file", "environment" or "flag"; a path not here is a default (or set in code)
    _sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # the variable or flag behind each override, by path
    _override_names: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # each field's value when loaded (or last saved): a value that still equals it was not
    # changed here, so saving leaves the file's own entry (or its absence) as it is
    _baseline: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # the settings file's document as read (or last written), unknown keys included
    _file_doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for kind, defaults in BACKEND_DEFAULTS.items():
            current = self.backends.setdefault(kind, BackendSettings())
            for key, value in defaults.items():
                if getattr(current, key) is None:
                    setattr(current, key, value)
        if not self._baseline:
            # built in code: every value that differs from the built-in default is "set"
            self._baseline = _default_values()

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

    # -- where values come from ------------------------------------------------------------
    def _path(self, name: str) -> str:
        """``name`` as a full path: "model" is the default backend's model."""
        if name in BACKEND_FIELDS:
            return f"backends.{self.backend}.{name}"
        if name in TOP_FIELDS or (name.startswith("backends.") and name.count(".") == 2):
            return name
        raise KeyError(f"no setting {name!r}")

    def source(self, name: str) -> Source:
        """Where the value of setting ``name`` comes from: "environment" or "flag" (an
        override that saving never writes), "file" (the settings file, or a value changed
        here that saving writes there) or "default". ``name`` is a field ("data_dir",
        "backend", "concurrency", ...), a backend field as "backends.<kind>.<field>", or
        "model", "base_url", "api_key_env", "api_key" for the default backend."""
        path = self._path(name)
        values = self._values()
        if path in values and values[path] != self._baseline.get(path, _MISSING):
            return "file"  # changed here: saving writes it
        return cast(Source, self._sources.get(path, "default"))

    def overridden_by(self, name: str) -> str | None:
        """The environment variable or flag whose value setting ``name`` holds, or None."""
        path = self._path(name)
        return self._override_names.get(path) if self.source(path) in ("environment", "flag") else None

    def override(self, name: str, value: Any, *, by: str, source: Source = "flag") -> None:
        """Use ``value`` for setting ``name`` in this process only (a command-line flag, for
        instance ``by="--data-dir"``): it is shown as an override and never saved."""
        path = self._path(name)
        _set_value(self, path, value)
        self._sources[path] = source
        self._override_names[path] = by
        self._baseline[path] = self._values()[path]

    def _values(self) -> dict[str, Any]:
        """Every field's value by path, in the form the settings file holds it."""
        values: dict[str, Any] = {
            "backend": self.backend,
            "data_dir": self.data_dir,
            "concurrency": self.concurrency,
            "prices": {model: list(p) for model, p in self.prices.items()},
            "keymap": dict(self.keymap),
            "confirm_cost_over": self.confirm_cost_over,
        }
        for kind, conf in self.backends.items():
            for key, value in conf.to_json().items():
                values[f"backends.{kind}.{key}"] = value
            values.setdefault(f"backends.{kind}.api_key", None)
        return values

    def save(self, path: Path | None = None) -> Path:
        """Write the settings file: what it holds now, plus every value changed since the
        settings were loaded. A value that came from the environment or a flag, or a
        default, is written only if it was changed here."""
        target = path or self.path or settings_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = _current_file_doc(target, self._file_doc)
        values = self._values()
        changed = {p: v for p, v in values.items() if self._baseline.get(p, _MISSING) != v}
        for p, value in changed.items():
            _put(doc, p, value)
        # it may hold keys: 0o600 from the first byte
        write_atomic(target, json.dumps(doc, indent=2).encode(), perm=0o600)
        self.path = target
        self._file_doc = doc
        for p in changed:
            self._baseline[p] = values[p]
            self._sources[p] = "file" if _get(doc, p) is not None else "default"
            self._override_names.pop(p, None)
        return target


_MISSING = object()


def _default_values() -> dict[str, Any]:
    """Every field's built-in default by path, as :meth:`Settings._values` spells it."""
    values: dict[str, Any] = {"backend": "local", "data_dir": None, "concurrency": 4, "prices": {}, "keymap": {},
                              "confirm_cost_over": None}
    for kind, defaults in BACKEND_DEFAULTS.items():
        for key in BACKEND_FIELDS:
            values[f"backends.{kind}.{key}"] = defaults.get(key)
    return values


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in a settings document; None removes the entry (a default)."""
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        if not isinstance(node.get(part), dict):
            if value is None:
                return
            node[part] = {}
        node = node[part]
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def _set_value(settings: Settings, path: str, value: Any) -> None:
    parts = path.split(".")
    if parts[0] == "backends":
        conf = settings.backends.setdefault(parts[1], BackendSettings())
        if parts[2] == "base_url":
            conf.set_base_urls(value)
        else:
            setattr(conf, parts[2], Secret(value) if parts[2] == "api_key" and value else value)
    else:
        setattr(settings, parts[0], value)


def _current_file_doc(target: Path, loaded: dict[str, Any]) -> dict[str, Any]:
    """The settings file as it is now (another process may have saved it since it was
    loaded); what was loaded when it cannot be read as a JSON object."""
    try:
        doc = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return copy.deepcopy(loaded)
    return doc if isinstance(doc, dict) else copy.deepcopy(loaded)


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
            backends[kind] = BackendSettings(model=conf.get("model"), api_key_env=conf.get("api_key_env"),
                                             api_key=Secret(key) if key else None)
            backends[kind].set_base_urls(_base_urls(conf.get("base_url"), f"backends.{kind}.base_url"))
    settings = Settings(
        backend=doc.get("backend") or "local",
        backends=backends,
        data_dir=doc.get("data_dir"),
        concurrency=_positive_int(doc.get("concurrency"), "concurrency", 4),
        prices={m: (float(p[0]), float(p[1])) for m, p in (doc.get("prices") or {}).items()
                if isinstance(p, list) and len(p) == 2},
        keymap={k: v for k, v in (doc.get("keymap") or {}).items() if isinstance(k, str) and isinstance(v, str)},
        confirm_cost_over=usd_threshold(doc.get("confirm_cost_over"), "confirm_cost_over"),
        path=target,
    )
    settings._file_doc = copy.deepcopy(doc)
    settings._sources = {p: "file" for p in settings._values() if _get(doc, p) is not None}
    env = os.environ

    def from_env(name: str, path: str) -> None:
        value = env.get(f"{ENV_PREFIX}{name}")
        if value:
            # several base URLs, separated by spaces, are a pool of endpoints
            _set_value(settings, path, value.split() if name == "BASE_URL" else value)
            settings._sources[path] = "environment"
            settings._override_names[path] = f"{ENV_PREFIX}{name}"

    from_env("BACKEND", "backend")
    from_env("DATA_DIR", "data_dir")
    if settings.backend in settings.backends:
        from_env("MODEL", f"backends.{settings.backend}.model")
        from_env("BASE_URL", f"backends.{settings.backend}.base_url")
    settings._baseline = settings._values()
    return settings


def _base_urls(value: Any, name: str) -> str | list[str] | None:
    """A backend's "base_url" in the settings file: an address, a list of them, or absent."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, list) and all(isinstance(url, str) and url for url in value):
        return value
    raise ValueError(f"{name} must be a base URL or a list of base URLs, not {json.dumps(value)[:80]}")


def usd_threshold(value: Any, name: str) -> float | None:
    """A positive, finite amount of USD, or None (absent: no threshold)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number of USD, not {value!r:.40}")
    return float(value)


def _positive_int(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value
