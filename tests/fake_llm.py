"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions and Ollama
``/api/chat`` protocols, answers with records that fit the schema it is sent, and
injects faults on request. Used by the tests and the benchmarks; also runs on its own:

    python -m tests.fake_llm --port 8765 [--delay 0.05] [--api-key KEY] [--models test-model,flaky]

It serves the model ``test-model`` unless --models names others; any other model name
is answered 404, as a real server does. Point synth-tui at it with
``--backend openai --base-url http://127.0.0.1:8765/v1 --model test-model``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


# -- records that fit a schema -------------------------------------------------------
class RecordMaker:
    """Makes values that satisfy the JSON Schema features the tests use; every string
    carries a counter, so records are unique unless a fault asks otherwise."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.counter = itertools.count(1)

    def record(self, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
        root = root or schema
        if "$ref" in schema:
            target: Any = root
            for part in schema["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return self.record(target, root)
        if "examples" in schema and schema["examples"]:
            return self.rng.choice(schema["examples"])
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.record(schema[key][0], root)
        kind = schema.get("type", "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        n = next(self.counter)
        if kind == "object":
            return {name: self.record(spec, root) for name, spec in (schema.get("properties") or {}).items()}
        if kind == "array":
            lo, hi = schema.get("minItems", 1), schema.get("maxItems", max(schema.get("minItems", 1), 3))
            return [self.record(schema.get("items", {}), root) for _ in range(self.rng.randint(lo, hi))]
        if kind == "integer":
            lo, hi = schema.get("minimum", 0), schema.get("maximum", 10_000)
            return self.rng.randint(lo, hi)
        if kind == "number":
            lo, hi = schema.get("minimum", 0.0), schema.get("maximum", 1000.0)
            return round(self.rng.uniform(lo, hi), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema, n)

    def string(self, schema: dict[str, Any], n: int) -> str:
        if "pattern" in schema:
            return self.from_pattern(schema["pattern"])
        fmt = schema.get("format")
        if fmt == "email":
            return f"user{n}@example.com"
        if fmt == "date":
            return f"20{10 + n % 15:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}"
        if fmt == "date-time":
            return f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
        if fmt == "uuid":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if fmt == "uri":
            return f"https://example.com/item/{n}"
        if fmt == "ipv4":
            return f"10.{n % 250}.{(n // 250) % 250}.{1 + n % 200}"
        text = f"value {n}"
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        text = text.ljust(lo, "x")
        return text[:hi] if hi else text


    def from_pattern(self, pattern: str) -> str:
        """A string matching a simple regex (classes, quantifiers, groups, alternation)."""
        import re._parser as sre  # the stdlib's own regex parser

        return "".join(self._emit(sre.parse(pattern)))

    def _emit(self, items: Any) -> list[str]:
        import re._constants as c

        out: list[str] = []
        for op, arg in items:
            if op == c.LITERAL:
                out.append(chr(arg))
            elif op == c.IN:
                chars: list[str] = []
                for kind, val in arg:
                    if kind == c.LITERAL:
                        chars.append(chr(val))
                    elif kind == c.RANGE:
                        chars.extend(chr(x) for x in range(val[0], val[1] + 1))
                    elif kind == c.CATEGORY:
                        chars.extend("0123456789" if val == c.CATEGORY_DIGIT else "abcxyz")
                out.append(self.rng.choice(chars or ["a"]))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                lo, hi, sub = arg
                for _ in range(self.rng.randint(lo, min(hi, lo + 5))):
                    out.extend(self._emit(sub))
            elif op == c.SUBPATTERN:
                out.extend(self._emit(arg[-1]))
            elif op == c.BRANCH:
                out.extend(self._emit(self.rng.choice(arg[1])))
            elif op == c.ANY:
                out.append("x")
        return out


# -- faults --------------------------------------------------------------------------
# Whole HTTP responses, written to the socket as they are (Fault(raw=...)).
BAD_STATUS_LINE = b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}"
NOT_HTTP = b"\x1b]52;c;aGk=\x07\x1b[2J not HTTP at all\r\n\r\n"
BROKEN_CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\n{\"a\":\r\nZZ\r\nbroken\r\n")
SHORT_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"choices\":"
BAD_GZIP = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: 10\r\n\r\nnot gzip!!")
HANG_UP = b""  # close the connection without a word


def nested(depth: int) -> str:
    """A JSON answer nested ``depth`` arrays deep."""
    return "[" * depth + "]" * depth


@dataclass
class Fault:
    """One injected behaviour for one request. Fields left as None do nothing."""

    status: int | None = None  # answer with this HTTP status and an error body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None  # sleep before answering
    body: str | None = None  # raw body text instead of a completion (or of the error, with status)
    raw: bytes | None = None  # write these bytes to the socket instead of an HTTP response, then close
    trickle: float | None = None  # send the answer one byte every this many seconds
    pad: int = 0  # spaces after the answer's JSON, to make it this many bytes larger
    content: str | None = None  # the completion's message content, verbatim
    invalid: int = 0  # make this many records break the schema
    duplicate: bool = False  # repeat the first record of the previous answer
    fewer: int = 0  # return this many records fewer than asked
    finish_reason: str | None = None
    reject_structured: bool = False  # 400 if response_format/format is present


@dataclass
class ModelBehaviour:
    invalid_share: float = 0.0  # share of records that break the schema
    delay: float = 0.0
    follows_instructions: bool = True  # applies "field=value" asked for each record


class FakeLLM:
    """The server. ``faults`` is consumed one per request; ``always`` applies to all."""

    def __init__(self, *, delay: float = 0.0, api_key: str | None = None, seed: int = 0,
                 models: dict[str, ModelBehaviour] | None = None, reject_structured: bool = False,
                 json_object_only: bool = False) -> None:
        self.delay = delay
        self.api_key = api_key
        self.models = models if models is not None else {"test-model": ModelBehaviour()}
        self.faults: deque[Fault] = deque()
        self.always: Fault | None = None
        self.reject_structured = reject_structured
        # as llama-cpp-python's server: json_schema refused with a 500, json_object + schema taken
        self.json_object_only = json_object_only
        self.maker = RecordMaker(seed)
        self.requests: list[dict[str, Any]] = []
        self.count_requests = 0
        self._last_records: list[Any] = []
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.keep_bodies = True

    # -- lifecycle -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.openai)
        app.router.add_post("/api/chat", self.ollama)
        return app

    async def start_async(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=2048)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop_async(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def start(self) -> "FakeLLM":
        """Serve from a background thread (its own event loop)."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start_async())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop:
            asyncio.run_coroutine_threadsafe(self.stop_async(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- protocol --------------------------------------------------------------------
    async def _common(self, request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None, Fault]:
        self.count_requests += 1
        fault = self.faults.popleft() if self.faults else (self.always or Fault())
        body = await request.json()
        if self.keep_bodies:
            self.requests.append(body)
        delay = fault.delay if fault.delay is not None else self.delay
        model = self.models.get(body.get("model"))
        if model and model.delay:
            delay += model.delay
        if delay:
            await asyncio.sleep(delay)
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return None, _error(401, "Incorrect API key provided: " + request.headers.get("Authorization", "")[7:]), fault
        if fault.raw is not None:
            assert request.transport is not None
            request.transport.write(fault.raw)
            request.transport.close()
            return None, web.Response(), fault  # goes nowhere: the connection is closed
        if fault.status:
            if fault.body is not None:
                return None, web.Response(status=fault.status, text=fault.body, headers=fault.headers), fault
            return None, _error(fault.status, f"injected {fault.status}", fault.headers), fault
        if fault.body is not None:
            return None, web.Response(text=fault.body, content_type="application/json"), fault
        if model is None:
            return None, _error(404, f"The model `{body.get('model')}` does not exist", code="model_not_found"), fault
        return body, None, fault

    def _records(self, schema: dict[str, Any] | None, count: int, fault: Fault, model: str,
                 prompt: str = "") -> list[Any]:
        record_schema = schema or {"type": "object", "properties": {"name": {"type": "string"}}}
        records = [self.maker.record(record_schema) for _ in range(max(0, count - fault.fewer))]
        behaviour = self.models.get(model, ModelBehaviour())
        if behaviour.follows_instructions:
            for record, asked in zip(records, _instructions(prompt, count)):
                for name, value in asked.items():
                    if isinstance(record, dict) and name in record:
                        record[name] = value
        for i, record in enumerate(records):
            if i < fault.invalid or self.maker.rng.random() < behaviour.invalid_share:
                if isinstance(record, dict) and record:
                    record.pop(next(iter(record)))  # drop a required field
        if fault.duplicate and self._last_records and records:
            records[0] = self._last_records[0]
        self._last_records = records
        return records

    async def openai(self, request: web.Request) -> web.Response:
        body, error, fault = await self._common(request)
        if error is not None:
            return error
        assert body is not None
        rf = body.get("response_format")
        if rf is not None and (fault.reject_structured or self.reject_structured):
            return _error(400, "response_format json_schema is not supported by this server")
        if rf is not None and self.json_object_only and rf.get("type") != "json_object":
            return web.Response(status=500, text=json.dumps({"detail": (
                "1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                "'msg': \"Input should be 'text' or 'json_object'\"}")}), content_type="application/json")
        structured = None
        if rf is not None:
            structured = rf["json_schema"]["schema"] if rf.get("type") == "json_schema" else rf.get("schema")
        schema, count = _schema_and_count(body, structured)
        content = fault.content
        if content is None:
            records = self._records(schema, count, fault, body["model"], body["messages"][-1]["content"])
            content = json.dumps({"records": records} if count != 1 else records[0] if records else {})
        return await _answer(request, fault, {
            "id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": fault.finish_reason or "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20 * max(1, count),
                      "total_tokens": 100 + 20 * max(1, count)},
        })

    async def ollama(self, request: web.Request) -> web.Response:
        body, error, fault = await self._common(request)
        if error is not None:
            if error.status == 404:
                return web.json_response({"error": f"model \"{body and body.get('model')}\" not found, try pulling it first"}, status=404)
            return error
        assert body is not None
        schema, count = _schema_and_count(body, body.get("format") if isinstance(body.get("format"), dict) else None)
        content = fault.content
        if content is None:
            records = self._records(schema, count, fault, body["model"], body["messages"][-1]["content"])
            content = json.dumps({"records": records} if count != 1 else records[0])
        return await _answer(request, fault, {
            "model": body["model"], "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content}, "done": True,
            "done_reason": fault.finish_reason or "stop", "prompt_eval_count": 100, "eval_count": 20 * count,
        })


async def _answer(request: web.Request, fault: Fault, data: dict[str, Any]) -> web.StreamResponse:
    """The JSON answer, padded and trickled as the fault asks."""
    text = json.dumps(data) + " " * fault.pad
    if fault.trickle is None:
        return web.Response(text=text, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(text.encode())
    await response.prepare(request)
    try:
        for byte in text.encode():
            await response.write(bytes([byte]))
            await asyncio.sleep(fault.trickle)
    except (ConnectionError, RuntimeError):  # the client gave up: so do we
        pass
    return response


def _schema_and_count(body: dict[str, Any], structured: dict[str, Any] | None) -> tuple[dict[str, Any] | None, int]:
    """The record schema and the count asked for, from structured output or the prompt."""
    prompt = body["messages"][-1]["content"]
    m = re.search(r"Generate (\d+)", prompt)
    count = int(m.group(1)) if m else 1
    if structured is not None:
        records = structured.get("properties", {}).get("records")
        if records:
            item = dict(records["items"])
            for key in ("$defs", "definitions"):
                if key in structured:
                    item[key] = structured[key]
            return item, count
        return structured, count
    m = re.search(r"JSON Schema of one record:\n(.*)", prompt)
    return (json.loads(m.group(1)) if m else None), count


_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)')


def _instructions(prompt: str, count: int) -> list[dict[str, Any]]:
    """The "field=value" pairs asked for each record, as an obedient model reads them."""
    if count == 1:
        lines = [ln for ln in prompt.splitlines() if ln.startswith("Make this record distinct:")]
    else:
        lines = [m.group(1) for m in (re.match(r"^\d+\. (.*)$", ln) for ln in prompt.splitlines()) if m]
    return [{k: json.loads(v) for k, v in _PAIR.findall(line)} for line in lines]


def _error(status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "error", "code": code}}, status=status,
                             headers=headers or {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--api-key")
    parser.add_argument("--models", default="test-model",
                        help="comma-separated names of the models served (default: test-model)")
    parser.add_argument("--invalid-share", action="append", default=[], metavar="MODEL=SHARE",
                        help="a model whose records break the schema this often, e.g. flaky=0.3")
    args = parser.parse_args()
    models = {m: ModelBehaviour() for m in args.models.split(",")}
    for item in args.invalid_share:
        name, _, share = item.partition("=")
        models[name] = ModelBehaviour(invalid_share=float(share))
    server = FakeLLM(delay=args.delay, api_key=args.api_key, models=models)
    server.keep_bodies = False
    print(f"serving {', '.join(models)} on http://127.0.0.1:{args.port} (OpenAI: /v1, Ollama: /api/chat)",
          flush=True)
    web.run_app(server.app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
