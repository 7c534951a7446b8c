"""One tiny request to tell a user whether a backend answers and follows a schema."""

from __future__ import annotations

import time

from .. import prompts
from ..backends.base import Backend, CompletionRequest, GenerationParams
from ..errors import BackendError, RetryableError, UnparseableOutput
from ..parsing import extract_records
from ..schema import check_schema


async def probe_backend(backend: Backend) -> tuple[bool, str]:
    """Send one tiny request. Returns (usable, what happened), saying whether the backend
    answered and whether its answer followed the schema."""
    schema = check_schema({"ok": {"type": "boolean"}, "word": {"type": "string", "maxLength": 20}})
    request = CompletionRequest(
        prompts.build_messages(schema.schema, 1), schema.schema, 1, schema.schema, GenerationParams(max_tokens=64)
    )
    t0 = time.monotonic()
    try:
        completion = await backend.complete(request)
    except (BackendError, RetryableError) as exc:
        return False, f"no usable answer: {exc}"
    ms = (time.monotonic() - t0) * 1000
    where = f"{backend.kind} {backend.model} answered in {ms:.0f} ms"
    note = f" ({completion.notice})" if completion.notice else ""
    try:
        candidates = extract_records(completion.text, frozenset(schema.field_names()))
    except UnparseableOutput:
        return False, f"{where}, but not with JSON: {completion.text[:80]!r}{note}"
    errors = schema.errors(candidates[0]) if candidates else ["no record in the answer"]
    if errors:
        return False, f"{where}, but did not follow the schema: {errors[0]}{note}"
    return True, f"{where} and followed the schema{note}"
