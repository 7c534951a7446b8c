"""The embedded model's process: llama.cpp's server (xllamacpp) behind a JSON-lines pipe.

llama.cpp kills its process on some inputs (a grammar nested deeply enough overflows its
parser's stack), so the model lives here, in a child process, and the app turns a crash
into an error for that run. Inside, llama.cpp's own server decodes up to ``--slots``
requests at once (continuous batching); each request runs on a thread of its own.

Protocol (one JSON object per line). The parent writes requests
``{"id", "messages", "schema" | "grammar", "max_tokens", "temperature", "top_p", "seed"}``
and cancellations ``{"cancel": id}`` to stdin, and reads
``{"id", "text", "prompt_tokens", "completion_tokens", "finish_reason", "span"}`` or
``{"id", "error"}`` from the protocol pipe, in the order the requests finish (``span``:
when its first and last tokens came, in seconds on this process's monotonic clock).
The first line out is ``{"ready": true, "slots": N, "threads": N}``.

    python -m synth_tui.core.backends.local_worker MODEL.gguf --threads N --slots N
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
GRAMMARS_KEPT = 512  # one per schema variation (first letter, enum values) in use


def server_params(args: argparse.Namespace, sock_dir: str) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_parallel = args.slots
    # each slot gets ctx / slots tokens of KV cache: a request too long for it is refused
    # with a message (a pool shared by the slots fails every slot once it fills up)
    params.n_ctx = args.ctx
    params.kv_unified = False
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.verbosity = 1  # errors only: an info line per request would pile up
    # The server always listens too. Requests come through the Python API; the listener
    # gets a socket file in a private directory and a key nobody is told.
    params.n_threads_http = 1
    params.api_keys = [secrets.token_hex(24)]
    if os.name == "posix":
        params.hostnames = [os.path.join(sock_dir, "model.sock")]
    return params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=2048, help="KV cache tokens, shared out among the slots")
    ap.add_argument("--nice", type=int, default=0, help="lower this process's priority by this much")
    args = ap.parse_args()

    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so that
    # anything llama.cpp prints cannot corrupt the protocol stream.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)  # before llama.cpp starts its threads, so they inherit it

    import xllamacpp

    sock_dir = tempfile.mkdtemp(prefix="synth-tui-model-")
    try:
        try:
            server = xllamacpp.Server(server_params(args, sock_dir))
        except Exception as exc:
            print(f"error: llama.cpp could not load {args.model}: {exc}", file=sys.stderr, flush=True)
            sys.exit(3)
        Worker(server, proto, args).serve(sys.stdin)
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


class Worker:
    def __init__(self, server: Any, proto: Any, args: argparse.Namespace) -> None:
        self.server = server
        self.proto = proto
        self.slots = args.slots
        self.write_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.active: set[Any] = set()  # ids taken and not yet answered
        self.cancelled: set[Any] = set()
        self.grammars: dict[str, str] = {}
        # one thread per slot; more requests than slots wait here, in order
        self.pool = ThreadPoolExecutor(max_workers=args.slots, thread_name_prefix="slot")
        self.send({"ready": True, "slots": args.slots, "threads": args.threads})

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message) + "\n"
        with self.write_lock:
            self.proto.write(line)

    def serve(self, lines: Any) -> None:
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "cancel" in msg:
                with self.state_lock:
                    if msg["cancel"] in self.active:
                        self.cancelled.add(msg["cancel"])
                continue
            with self.state_lock:
                self.active.add(msg.get("id"))
            self.pool.submit(self.answer, msg)
        # the parent closed the pipe: stop at once rather than finish work nobody awaits
        os._exit(0)

    def answer(self, req: dict[str, Any]) -> None:
        rid = req.get("id")
        try:
            reply = self.complete(req)
        except Exception as exc:  # a bad request must not end the process
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        with self.state_lock:
            self.active.discard(rid)
            self.cancelled.discard(rid)
        self.send({"id": rid, **reply})

    def grammar(self, schema: dict[str, Any]) -> str:
        """The schema as a grammar for llama.cpp's LLGuidance sampler, which writes compact
        JSON: no whitespace, so fewer tokens per record (44 against 67 for the bench's
        schema with the server's own json_schema, which allows newlines and indents)."""
        key = json.dumps(schema, sort_keys=True)
        with self.state_lock:
            grammar = self.grammars.get(key)
        if grammar is None:
            import xllamacpp

            compact = {
                **schema,
                "x-guidance": {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"},
            }
            grammar = xllamacpp.json_schema_to_grammar(compact)
            with self.state_lock:
                if len(self.grammars) >= GRAMMARS_KEPT:
                    self.grammars.pop(next(iter(self.grammars)))
                self.grammars[key] = grammar
        return grammar

    def complete(self, req: dict[str, Any]) -> dict[str, Any]:
        rid = req.get("id")
        if rid in self.cancelled:  # cancelled while it waited for a slot
            return {"error": "cancelled"}
        body: dict[str, Any] = {
            "messages": req["messages"],
            "max_tokens": req.get("max_tokens") or 512,
            "temperature": req["temperature"] if req.get("temperature") is not None else DEFAULT_TEMPERATURE,
            "top_p": req["top_p"] if req.get("top_p") is not None else DEFAULT_TOP_P,
            "stream": True,  # streamed so that a cancelled request stops decoding at once
        }
        if req.get("seed") is not None:
            body["seed"] = req["seed"]
        if req.get("grammar") is not None:
            body["grammar"] = req["grammar"]
        elif req.get("schema") is not None:
            body["grammar"] = self.grammar(req["schema"])
        parts: list[str] = []
        span: list[float] = []
        out: dict[str, Any] = {"finish_reason": None, "prompt_tokens": 0, "completion_tokens": 0}
        errors: list[str] = []

        def on_chunk(chunk: Any) -> bool:
            now = time.monotonic()
            if span:
                span[1] = now
            else:
                span.extend((now, now))
            if isinstance(chunk, dict) and "error" in chunk:
                err = chunk["error"]
                errors.append(err.get("message", str(err)) if isinstance(err, dict) else str(err))
                return True
            for choice in (chunk.get("choices") or []) if isinstance(chunk, dict) else ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
                if choice.get("finish_reason"):
                    out["finish_reason"] = choice["finish_reason"]
            timings = chunk.get("timings") if isinstance(chunk, dict) else None
            if timings:
                out["prompt_tokens"] = int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
                out["completion_tokens"] = int(timings.get("predicted_n", 0))
            return rid in self.cancelled  # True stops decoding and frees the slot

        self.server.handle_chat_completions(body, on_chunk)
        if errors:
            return {"error": errors[0]}
        if rid in self.cancelled:
            return {"error": "cancelled"}
        return {"text": "".join(parts), **out, "span": span}


if __name__ == "__main__":
    main()
