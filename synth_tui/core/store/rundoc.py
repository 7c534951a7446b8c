"""A run's document as one typed record: what the store writes (:meth:`RunDoc.to_dict`) and
what every reader gets back (:meth:`RunDoc.from_dict`), never a dict read with
``doc.get("counts", {}).get(...)``.

A run file is outside input: a person or a program may have edited it. Reading one never
fails on a field: a value of the wrong type, a count that is negative or absurdly large,
a time that is not finite becomes the field's empty value (0, "", None), so that no
reader has to check. Only a document without an id is refused (:class:`CorruptHistory`):
the files and the index check that shape before a document gets here.

``version`` is the layout a document was written in: 1 for every document written before
documents had one (history.json, and the run files of the first per-run history), 2 for
this one. Version 1 documents could hold a top-level ``accepted`` (the records a run left
behind when its process died); it is read into ``counts.accepted`` and not written again.
Keys this version does not know are kept in ``extra`` and written back as they were, so a
document of a later version keeps them when this one updates it (a count it does not know
is dropped).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .documents import CorruptHistory

VERSION = 2  # the layout of the documents this version writes
MAX_COUNT = 10**15  # a count beyond this is nonsense: shown as this
MAX_ELAPSED = 1e9  # seconds (about 31 years): a longer time is nonsense, shown as unknown


def _count(value: Any) -> int:
    if type(value) is not int:  # bool is no count; JSON gives no int subclass
        return 0
    return value if 0 <= value <= MAX_COUNT else (0 if value < 0 else MAX_COUNT)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int past any float
        return None
    return value if math.isfinite(value) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class RunCounts:
    """What a run has done, over all its sessions."""

    requested: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    retries: int = 0
    requests: int = 0  # sent, retries included
    rate_limited: int = 0
    answers: int = 0  # requests that got an answer
    latency_ms: int = 0  # summed over the answers
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # what other parts count and this record does not type (cost_usd, endpoints): kept as written
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_dict(cls, value: Any) -> RunCounts:
        counts = _dict(value)
        extra = {k: v for k, v in counts.items() if k not in COUNT_NAMES and isinstance(k, str)}
        return cls(**{name: _count(counts.get(name)) for name in COUNT_NAMES}, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **{name: getattr(self, name) for name in COUNT_NAMES}}


COUNT_NAMES = tuple(f.name for f in fields(RunCounts) if f.name != "extra")


@dataclass(slots=True)
class RunBackend:
    """Which backend and model made a run, and where it sent its requests: the key
    variable's name, never a key."""

    kind: str = ""
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what a backend adds (a pool's base_urls), as written

    @property
    def label(self) -> str:
        """``kind:model`` as the history shows it."""
        return f"{self.kind}:{self.model or ''}"

    @classmethod
    def from_dict(cls, value: Any) -> RunBackend:
        """A kind that is no string is kept as its JSON text, so that a resume refuses it
        (an empty kind would mean the embedded model)."""
        backend = _dict(value)
        kind = backend.get("backend")
        if kind is not None and not isinstance(kind, str):
            kind = json.dumps(kind)[:80]
        extra = {k: v for k, v in backend.items() if k not in BACKEND_KEYS and isinstance(k, str)}
        return cls(kind or "", _text(backend.get("model")), _text(backend.get("base_url")),
                   _text(backend.get("api_key_env")), extra)

    def to_dict(self) -> dict[str, Any]:
        """As the backend describes itself (``resume_spec`` reads this)."""
        described: dict[str, Any] = {**self.extra, "backend": self.kind, "model": self.model,
                                     "base_url": self.base_url}
        if self.api_key_env is not None:
            described["api_key_env"] = self.api_key_env
        return described


BACKEND_KEYS = frozenset(("backend", "model", "base_url", "api_key_env"))
# the document's keys (``backend`` and ``counts`` are typed above); any other is kept in ``extra``
KEYS = frozenset(("id", "version", "status", "created", "finished", "elapsed", "error", "backend", "counts",
                  "config", "schema", "records_path"))


@dataclass(slots=True)
class RunDoc:
    """One run's document. ``schema`` is the run's JSON Schema and ``config`` its
    parameters as the engine wrote them (``RunConfig.to_doc``): both given back to the
    engine as they are on a resume, so they stay dicts here."""

    id: str
    status: str = ""
    created: str = ""  # ISO time, UTC
    finished: str | None = None
    elapsed: float | None = None  # seconds spent generating, over all sessions
    error: str | None = None
    backend: RunBackend = field(default_factory=RunBackend)
    counts: RunCounts = field(default_factory=RunCounts)
    config: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)
    records_path: str | None = None
    version: int = VERSION  # the layout it was read in; to_dict writes VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, doc: Any) -> RunDoc:
        """The record of a stored document, whatever its version; :class:`CorruptHistory`
        only for one that is no run at all (not an object, or no id)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
            raise CorruptHistory(f"not a run document (no id): {str(doc)[:80]}")
        version = doc.get("version")
        version = version if isinstance(version, int) and not isinstance(version, bool) and version >= 1 else 1
        counts = RunCounts.from_dict(doc.get("counts"))
        extra = {k: v for k, v in doc.items() if k not in KEYS}
        if version < 2 and "accepted" in extra:  # version 1's count of a run its process left behind
            counts = replace(counts, accepted=max(counts.accepted, _count(extra.pop("accepted"))))
        elapsed = _number(doc.get("elapsed"))
        return cls(
            id=doc["id"], status=_text(doc.get("status")) or "", created=_text(doc.get("created")) or "",
            finished=_text(doc.get("finished")),
            elapsed=elapsed if elapsed is not None and 0 <= elapsed <= MAX_ELAPSED else None,
            error=_text(doc.get("error")), backend=RunBackend.from_dict(doc.get("backend")), counts=counts,
            config=_dict(doc.get("config")), schema=_dict(doc.get("schema")),
            records_path=_text(doc.get("records_path")), version=version, extra=extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """The document as the store writes it (and ``--json`` prints it)."""
        doc: dict[str, Any] = {
            "id": self.id, "version": VERSION, "status": self.status, "created": self.created,
            "finished": self.finished, "elapsed": self.elapsed, "error": self.error,
            "backend": self.backend.to_dict(), "counts": self.counts.to_dict(), "config": self.config,
            "schema": self.schema, "records_path": self.records_path,
        }
        return {**doc, **self.extra}

    def with_fields(self, changes: dict[str, Any]) -> RunDoc:
        """This run with the document's fields in ``changes`` set (by their document
        keys, read as :meth:`from_dict` reads them)."""
        return RunDoc.from_dict({**self.to_dict(), **changes})

    # -- what readers ask of the parameters ----------------------------------------------
    @property
    def count(self) -> int:
        """The records the run was asked for."""
        return _count(self.config.get("count")) or self.counts.requested

    @property
    def batch_size(self) -> int | None:
        return _count(self.config.get("batch_size")) or None

    @property
    def concurrency(self) -> int | None:
        return _count(self.config.get("concurrency")) or None

    def param(self, name: str) -> Any:
        """A generation parameter (``temperature``, ``seed``, ...), None when unset."""
        params = _dict(self.config.get("params"))
        value = params.get(name)
        return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None

    # -- the dict it was, for callers not moved to the attributes yet ----------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)
