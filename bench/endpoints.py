"""Records/s with one endpoint against two, side by side in one run, against slow local
servers (tests/fake_llm.py, each its own process, answering after --delay).

The test server sleeps per request, so it serves any number at once: there, a second
endpoint adds nothing that a higher --concurrency on one would not. A real server (vLLM,
llama.cpp's -np slots, Ollama's OLLAMA_NUM_PARALLEL) serves a fixed number at once and
queues the rest, which is what a second server relieves. So each figure is taken twice:
against the plain test server, and against the same server holding --slots requests at
once (the rest wait in its queue). Three runs each, taken in turn, best of --rounds:

  one@C     one endpoint, --concurrency C
  one@2C    one endpoint, --concurrency 2C
  two@2C    two endpoints, --concurrency 2C (C per endpoint)

    python bench/endpoints.py [--delay 0.2] [--concurrency 8] [--slots 8] [--records 1200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth_tui.core.backends import BackendSpec, create_backend  # noqa: E402
from synth_tui.core.backends.base import GenerationParams  # noqa: E402
from synth_tui.core.engine import Run, RunConfig  # noqa: E402
from synth_tui.core.schema import check_schema  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402

SCHEMA = check_schema({
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "email": {"type": "string", "format": "email"}, "city": {"type": "string"},
    "plan": {"type": "string", "enum": ["free", "pro", "team"]},
})
BATCH = 5


def start_server(delay: float, slots: int) -> ServerProcess:
    """The test server in its own process; with ``slots``, at most that many requests
    are served at once and the rest wait, as on a real server."""
    if slots:
        return ServerProcess("--delay", str(delay), "--slots", str(slots), program=(__file__, "--serve"))
    return ServerProcess("--delay", str(delay))


def serve(port: int, delay: float, slots: int) -> None:
    """tests/fake_llm.py's server, its chat completions behind a queue of ``slots``."""
    from aiohttp import web

    from tests.fake_llm import FakeLLM

    server = FakeLLM(delay=delay)
    server.keep_bodies = False
    answer = server.openai
    gate = asyncio.Semaphore(slots)

    async def in_a_slot(request: web.Request) -> web.StreamResponse:
        async with gate:
            return await answer(request)

    server.openai = in_a_slot  # type: ignore[method-assign]
    web.run_app(server.app(), host="127.0.0.1", port=port, access_log=None, print=None)


async def engine_run(urls: list[str], records: int, concurrency: int) -> tuple[int, list[int]]:
    backend = create_backend(BackendSpec("openai", "test-model", base_urls=tuple(urls)))
    config = RunConfig(count=records, batch_size=BATCH, concurrency=concurrency, params=GenerationParams())
    async with backend:
        result = await Run(SCHEMA, config, backend).execute()
    assert result.success, result.error
    return result.accepted, [c["answers"] for c in backend.endpoint_counts()]


def timed(urls: list[str], records: int, concurrency: int) -> tuple[float, list[int]]:
    gc.collect()
    t0 = time.perf_counter()
    accepted, answers = asyncio.run(engine_run(urls, records, concurrency))
    return accepted / (time.perf_counter() - t0), answers


def measure(args: argparse.Namespace, slots: int) -> None:
    servers = [start_server(args.delay, slots), start_server(args.delay, slots)]
    urls = [s.url + "/v1" for s in servers]
    c = args.concurrency
    runs = {"one@C": ([urls[0]], c), "one@2C": ([urls[0]], 2 * c), "two@2C": (urls, 2 * c)}
    best = dict.fromkeys(runs, 0.0)
    spread: list[int] = []
    try:
        for _ in range(args.rounds):
            for name, (urls, concurrency) in runs.items():
                rate, answers = timed(urls, args.records, concurrency)
                best[name] = max(best[name], rate)
                spread = answers or spread
    finally:
        for server in servers:
            server.stop()
    held = f"{slots} at once per server" if slots else "any number at once"
    ideal = c / args.delay * BATCH
    print(f"servers serving {held}: " + "  ".join(f"{n} {best[n]:,.0f}" for n in runs)
          + f"  (two@2C / one@C {best['two@2C'] / best['one@C']:.2f}x, two@2C / one@2C "
          f"{best['two@2C'] / best['one@2C']:.2f}x; ideal one@C {ideal:,.0f}; last two@2C answers per endpoint "
          f"{spread})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.2, help="seconds each server takes per request")
    ap.add_argument("--concurrency", type=int, default=8, help="C: requests in flight for one endpoint")
    ap.add_argument("--slots", type=int, default=8, help="requests a slot-bound server serves at once")
    ap.add_argument("--records", type=int, default=1200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.port, args.delay, args.slots)
        return
    print(f"server delay {args.delay * 1000:.0f} ms, {BATCH} records per request, {args.records} records per run; "
          f"records/s, best of {args.rounds}")
    measure(args, 0)
    measure(args, args.slots)


if __name__ == "__main__":
    main()
