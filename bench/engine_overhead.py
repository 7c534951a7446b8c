"""Engine overhead against a bare asyncio+httpx loop, measured side by side in one run.

A local test server (its own process) answers every request after a fixed delay with
10 records. At each concurrency, the same number of requests goes through:
  bare-httpx    asyncio + plain httpx.AsyncClient, a semaphore, json parse, nothing else,
                sending the engine's requests (same prompt builder, hints and sizes)
  bare-aiohttp  the same loop over httpx with the aiohttp transport (what the engine uses)
  engine        the full engine: prompts, parsing, validation, dedupe, events (no disk)
  engine+store  the same with the history and journal on disk (fsync in groups)
and records/s of each and the ratios are printed. Variants alternate, best of rounds.

    python bench/engine_overhead.py [--delay 0.05] [--rounds 2] [--concurrency 8 64 256]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_tui.core.backends.base import GenerationParams  # noqa: E402
from synth_tui.core.backends.http import make_client  # noqa: E402
from synth_tui.core.backends.openai import OpenAIBackend  # noqa: E402
from synth_tui.core.engine import Run, RunConfig  # noqa: E402
from synth_tui.core.prompts import build_messages  # noqa: E402
from synth_tui.core.schema import batch_schema, check_schema  # noqa: E402
from synth_tui.core.store import Store  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402

SCHEMA = check_schema({
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "email": {"type": "string", "format": "email"}, "city": {"type": "string"},
    "plan": {"type": "string", "enum": ["free", "pro", "team"]},
})
BATCH = 10


def request_bodies(requests: int) -> list[dict]:
    """The requests the engine sends: same prompt builder, hints and avoid-list size."""
    avoid = [f"value {i}" for i in range(12)]
    response_format = {"type": "json_schema", "json_schema": {
        "name": "records", "schema": batch_schema(SCHEMA.schema, BATCH), "strict": False}}
    return [{"model": "test-model", "response_format": response_format,
             "messages": build_messages(SCHEMA.schema, BATCH, rng=random.Random(i), avoid=avoid)}
            for i in range(requests)]


async def bare_loop(url: str, requests: int, concurrency: int, transport: str) -> int:
    bodies = request_bodies(requests)
    client = make_client(url, transport=transport) if transport == "aiohttp" else httpx.AsyncClient(
        base_url=url, timeout=httpx.Timeout(300, pool=None),
        limits=httpx.Limits(max_connections=1024, max_keepalive_connections=1024))
    sem = asyncio.Semaphore(concurrency)
    records = 0

    async def one(body: dict) -> None:
        nonlocal records
        async with sem:
            r = await client.post("/chat/completions", json=body)
            content = r.json()["choices"][0]["message"]["content"]
            records += len(json.loads(content)["records"])

    await asyncio.gather(*(one(b) for b in bodies))
    await client.aclose()
    return records


async def engine_run(url: str, requests: int, concurrency: int, store: Store | None) -> int:
    backend = OpenAIBackend(base_url=url, model="test-model")
    config = RunConfig(count=requests * BATCH, batch_size=BATCH, concurrency=concurrency,
                       params=GenerationParams(), max_retries=5)
    result = await Run(SCHEMA, config, backend, store=store).execute()
    await backend.aclose()
    assert result.success, result.error
    return result.accepted


def timed(coro_factory) -> float:
    gc.collect()
    t0 = time.perf_counter()
    n = asyncio.run(coro_factory())
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 64, 256])
    args = ap.parse_args()
    server = ServerProcess("--delay", str(args.delay))
    url = server.url + "/v1"
    tmp = tempfile.TemporaryDirectory()
    print(f"server delay {args.delay * 1000:.0f} ms, {BATCH} records per request; records/s (best of {args.rounds})")
    print(f"{'conc':>5} {'ideal':>8} {'bare-httpx':>11} {'bare-aiohttp':>13} {'engine':>8} {'engine+store':>13}"
          f" {'engine/bare-aio':>16} {'engine/bare-httpx':>18}")
    try:
        for conc in args.concurrency:
            requests = max(40, conc * 6)
            best = {"httpx": 0.0, "aiohttp": 0.0, "engine": 0.0, "store": 0.0}
            for r in range(args.rounds):
                best["httpx"] = max(best["httpx"], timed(lambda: bare_loop(url, requests, conc, "httpx")))
                best["aiohttp"] = max(best["aiohttp"], timed(lambda: bare_loop(url, requests, conc, "aiohttp")))
                best["engine"] = max(best["engine"], timed(lambda: engine_run(url, requests, conc, None)))
                store = Store(Path(tmp.name) / f"d{conc}-{r}")
                best["store"] = max(best["store"], timed(lambda: engine_run(url, requests, conc, store)))
                store.close()
            ideal = conc / args.delay * BATCH
            print(f"{conc:>5} {ideal:>8.0f} {best['httpx']:>11.0f} {best['aiohttp']:>13.0f} {best['engine']:>8.0f}"
                  f" {best['store']:>13.0f} {best['engine'] / best['aiohttp']:>16.2f}"
                  f" {best['engine'] / best['httpx']:>18.2f}")
    finally:
        server.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
