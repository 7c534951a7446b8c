"""A local server speaking the OpenAI Files and Batches APIs (and chat completions, from
FakeLLM): multipart upload, content download, create / retrieve / cancel, the statuses
validating, in_progress, completed, failed, expired, cancelling and cancelled, request
counts, output and error files. Each input line is answered as FakeLLM answers a chat
completion (RecordMaker's records). ``fault`` injects what a test wants to see.

A batch moves one step each time it is retrieved: validating, then in_progress for
``fault.polls`` retrievals, then its end.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .fake_llm import FakeLLM, Fault, _error, _schema_and_count


@dataclass
class BatchFault:
    """How batches behave. Fields left as they are do nothing."""

    polls: int = 1  # retrievals a batch stays in_progress
    end: str = "completed"  # completed | failed | expired
    failed_lines: set[int] = field(default_factory=set)  # input lines (0-based) that go to the error file
    invalid_lines: set[int] = field(default_factory=set)  # lines whose records break the schema
    answered: int | None = None  # an expired batch answered only this many lines
    garbage_output: bool = False  # the output file is not JSON Lines
    unauthorized_after: int | None = None  # retrievals answered before every call is a 401
    batches: int = 1  # the batches (the first ones) that end, fail lines or expire as above; the rest complete


class FakeBatchAPI(FakeLLM):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.fault = BatchFault()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.uploads = 0
        self.retrievals = 0
        self.cancels = 0
        self._ids = itertools.count(1)
        self._steps: dict[str, int] = {}
        self._faulted_last = 10**9  # the number in the id of the last batch the fault applies to

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{id}/content", self.content)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches/{id}", self.retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self.cancel)
        return app

    def _refused(self, request: web.Request) -> web.Response | None:
        limit = self.fault.unauthorized_after
        if limit is not None and self.retrievals > limit:
            return _error(401, "Incorrect API key provided: sk-bad***")
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided")
        return None

    async def upload(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or not hasattr(upload, "file"):
            return _error(400, "expected multipart with purpose=batch and a file")
        self.uploads += 1
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = upload.file.read()  # type: ignore[union-attr]
        return web.json_response({"id": file_id, "object": "file", "purpose": "batch",
                                  "bytes": len(self.files[file_id]), "filename": upload.filename})  # type: ignore[union-attr]

    async def content(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        data = self.files.get(request.match_info["id"])
        if data is None:
            return _error(404, "No such file")
        return web.Response(body=data, content_type="application/octet-stream")

    async def create(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        lines = self.files.get(body.get("input_file_id", ""))
        if lines is None or body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "bad batch request")
        self.creates += 1
        batch_id = f"batch_{next(self._ids)}"
        total = len(lines.splitlines())
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "status": "validating",
            "input_file_id": body["input_file_id"], "output_file_id": None, "error_file_id": None,
            "request_counts": {"total": total, "completed": 0, "failed": 0}, "errors": None,
        }
        self._steps[batch_id] = 0
        if self.creates == self.fault.batches:
            self._faulted_last = int(batch_id.split("_")[1])
        return web.json_response(self.batches[batch_id])

    async def retrieve(self, request: web.Request) -> web.Response:
        self.retrievals += 1
        if (refused := self._refused(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, "No such batch")
        self._step(batch)
        return web.json_response(batch)

    async def cancel(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, "No such batch")
        self.cancels += 1
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelling"
        return web.json_response(batch)

    # -- a batch's life --------------------------------------------------------------
    def _step(self, batch: dict[str, Any]) -> None:
        status = batch["status"]
        if status == "cancelling":
            batch["status"] = "cancelled"
        elif status == "validating":
            batch["status"] = "in_progress"
        elif status == "in_progress":
            self._steps[batch["id"]] += 1
            if self._steps[batch["id"]] > self.fault.polls:
                self._end(batch)

    def _end(self, batch: dict[str, Any]) -> None:
        fault = self.fault if int(batch["id"].split("_")[1]) <= self._faulted_last else BatchFault()
        if fault.end == "failed":
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "injected failure"}]}
            return
        lines = self.files[batch["input_file_id"]].splitlines()
        if fault.end == "expired" and fault.answered is not None:
            lines = lines[: fault.answered]
        out: list[bytes] = []
        errors: list[bytes] = []
        for i, line in enumerate(lines):
            request = json.loads(line)
            if i in fault.failed_lines:
                errors.append(_line(request["custom_id"], 500, {"error": {"message": "injected server error"}}))
            else:
                answer = self._completion(request["body"], i in fault.invalid_lines)
                out.append(_line(request["custom_id"], 200, answer))
        batch["status"] = fault.end
        batch["request_counts"] = {"total": batch["request_counts"]["total"], "completed": len(out),
                                   "failed": len(errors)}
        if fault.garbage_output:
            out = [b"this is not {json\n", b"nor this\n"]
        batch["output_file_id"] = self._store(b"".join(out)) if out else None
        batch["error_file_id"] = self._store(b"".join(errors)) if errors else None

    def _store(self, data: bytes) -> str:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = data
        return file_id

    def _completion(self, body: dict[str, Any], invalid: bool) -> dict[str, Any]:
        if self.keep_bodies:
            self.requests.append(body)
        rf = body.get("response_format") or {}
        structured = rf.get("json_schema", {}).get("schema") if rf.get("type") == "json_schema" else None
        schema, count = _schema_and_count(body, structured)
        records = self._records(schema, count, Fault(invalid=count if invalid else 0), body["model"],
                                body["messages"][-1]["content"])
        content = json.dumps({"records": records} if count != 1 else records[0] if records else {})
        return {
            "id": "chatcmpl-batch", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20 * max(1, count)},
        }


def _line(custom_id: str, status: int, body: dict[str, Any]) -> bytes:
    line = {"id": f"batch_req_{custom_id}", "custom_id": custom_id,
            "response": {"status_code": status, "request_id": "req", "body": body}, "error": None}
    return json.dumps(line).encode() + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--polls", type=int, default=1, help="retrievals a batch stays in_progress")
    parser.add_argument("--failed-every", type=int, default=0, help="every N-th line of the first batch fails")
    parser.add_argument("--invalid-every", type=int, default=0, help="every N-th line of the first batch: invalid")
    args = parser.parse_args()
    server = FakeBatchAPI()
    server.keep_bodies = False
    server.fault.polls = args.polls
    if args.failed_every:
        server.fault.failed_lines = set(range(0, 1_000_000, args.failed_every))
    if args.invalid_every:
        server.fault.invalid_lines = set(range(1, 1_000_000, args.invalid_every))
    print(f"serving the Batch API on http://127.0.0.1:{args.port}/v1", flush=True)
    web.run_app(server.app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
