"""The shipped embedded model on a fixed schema, side by side in one run: one slot, the
default number of slots, and (when llama-cpp-python's server is installed here) the same
model behind llama-cpp-python's OpenAI-compatible server, driven through the `openai`
backend, which is what a user would run instead. Records/s, tokens/s, validity, and how
varied the records are.

    python bench/local_model.py [-n 32] [--seed 1] [--layout PROCESSES/THREADS/SLOTS] [--tui]

--tui also measures key-to-paint latency in the app (headless) while a run goes, idle
against one request at a time against the default.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_tui.core.backends.base import Backend, GenerationParams  # noqa: E402
from synth_tui.core.backends.local import (  # noqa: E402
    Layout,
    LocalBackend,
    close_model_processes,
    default_layout,
    resolve_model,
)
from synth_tui.core.engine import Run, RunConfig  # noqa: E402
from synth_tui.core.schema import canonical_json, check_schema  # noqa: E402

SCHEMA = check_schema(
    {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 18, "maximum": 90},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["free", "pro", "team"]},
        "address": {"city": {"type": "string"}, "country": {"type": "string"}},
    }
)
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


async def one(backend: Backend, n: int, concurrency: int, seed: int) -> dict:
    config = RunConfig(
        count=n, batch_size=1, concurrency=concurrency, params=GenerationParams(seed=seed), max_attempts=3
    )
    t0 = time.perf_counter()
    result = await Run(SCHEMA, config, backend).execute()
    elapsed = time.perf_counter() - t0
    await backend.aclose()
    records = result.records
    return {
        "accepted": result.accepted,
        "valid_first": result.accepted / max(1, result.accepted + result.rejected),
        "rps": result.accepted / elapsed,
        "tps": result.completion_tokens / elapsed,
        "dup_rate": result.duplicates / max(1, result.accepted + result.duplicates),
        "unique_names": len({r["name"] for r in records}),
        "unique_emails": len({r["email"] for r in records}),
        "unique_records": len({canonical_json(r) for r in records}),
        "error": result.error,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppPythonServer:
    """`python -m llama_cpp.server` on the shipped model, in its own process."""

    def __init__(self, model: Path, threads: int) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--n_threads",
                str(threads),
                "--n_threads_batch",
                str(threads),
                "--n_ctx",
                "4096",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.log.seek(0)
        raise RuntimeError(f"llama_cpp.server did not start: {self.log.read()[-500:].decode(errors='replace')}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def row(label: str, r: dict, base: float | None) -> str:
    ratio = f"{r['rps'] / base:5.2f}x" if base else "     "
    return (
        f"{label:<44} {r['rps']:>9.2f} {ratio} {r['tps']:>9.1f} {r['valid_first']:>6.0%} {r['dup_rate']:>5.0%}"
        f" {r['unique_names']:>6}/{r['accepted']:<3} {r['unique_emails']:>6}/{r['accepted']:<3}"
        + (f"  {r['error'][:90]}..." if r["error"] else "")
    )


async def key_latencies(concurrency: int | None, n: int, presses: int = 40) -> list[float]:
    """Milliseconds from a key press to the app having handled it and repainted, in the
    headless app, while a local run of ``n`` records goes (None: no run)."""
    from textual.widgets import Input

    from synth_tui.app import SynthApp
    from synth_tui.core.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(backend="local", path=Path(tmp) / "settings.json")
        app = SynthApp(data_dir=Path(tmp), settings=settings, blink=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            if concurrency is not None:
                for ident, value in (("count", n), ("batch", 1), ("concurrency", concurrency)):
                    app.screen.query_one(f"#{ident}", Input).value = str(value)
                await pilot.pause()
                await pilot.press("ctrl+g")
                while app.jobs.current is None:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(2)  # past the model's start, into steady decoding
            out = []
            for _ in range(presses):
                if concurrency is not None and app.last_result is not None:
                    break
                t0 = time.perf_counter()
                await pilot.press("tab")
                out.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.05)
            if concurrency is not None:
                if app.jobs.current is not None:
                    app.jobs.current.cancel()
                while app.last_result is None:
                    await asyncio.sleep(0.05)
        return out


def describe(layout: Layout) -> str:
    return (
        f"{layout.processes} process{'es' if layout.processes > 1 else ''} x {layout.threads} thread"
        f"{'s' if layout.threads > 1 else ''} x {layout.slots} slot{'s' if layout.slots > 1 else ''}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layout", help="processes/threads/slots to compare with one slot (default: the default)")
    ap.add_argument("--tui", action="store_true", help="also measure key-to-paint latency during a run")
    args = ap.parse_args()
    model = resolve_model(None)
    default = default_layout(model)
    layout = Layout(*map(int, args.layout.split("/"))) if args.layout else default
    single = Layout(processes=1, threads=1, slots=1)
    print(
        f"SmolLM2-135M-Instruct Q4_1, {args.n} records, 1 per request, {os.cpu_count()} cores, seed {args.seed}; "
        f"as many requests in flight as slots"
    )
    print(
        f"{'':<44} {'records/s':>9} {'':>6} {'tokens/s':>9} {'valid':>6} {'dups':>5}"
        f" {'unique names':>12} {'unique emails':>12}"
    )
    rows = {}
    for label, lay in (
        ("one slot: " + describe(single), single),
        (("default: " if layout == default else "") + describe(layout), layout),
    ):
        backend = LocalBackend(layout=lay)
        asyncio.run(one(backend, lay.capacity, lay.capacity, 0))  # load the model, fill each slot's cache
        rows[lay] = r = asyncio.run(one(backend, args.n, lay.capacity, args.seed))
        print(row(label, r, rows[single]["rps"] if lay != single else None), flush=True)
        close_model_processes()
    r1, rn = rows[single], rows[layout]

    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"{'llama-cpp-python server':<44} skipped: not installed here ({', '.join(missing)} missing); "
            "pip install 'llama-cpp-python[server]' into this environment to compare"
        )
    else:
        from synth_tui.core.backends.openai import OpenAIBackend

        server = LlamaCppPythonServer(model, layout.processes * layout.threads)
        try:
            url = f"http://127.0.0.1:{server.port}/v1"
            asyncio.run(one(OpenAIBackend(base_url=url, model="smollm2"), 2, 1, 0))
            rs = asyncio.run(one(OpenAIBackend(base_url=url, model="smollm2"), args.n, layout.capacity, args.seed))
        finally:
            server.stop()
        print(row(f"llama-cpp-python server, {layout.processes * layout.threads} threads", rs, r1["rps"]))
        print(
            f"{describe(layout)} / llama-cpp-python server: {rn['rps'] / rs['rps']:.2f}x records/s, "
            f"{rn['tps'] / rs['tps']:.2f}x tokens/s; the server took json_object + schema, which leaves "
            f"formats and ranges to chance ({rs['valid_first']:.0%} of its records valid)"
        )

    if args.tui:
        print("\nkey-to-paint latency in the app (headless), ms: median / 95th percentile / max")
        for label, concurrency in (
            ("idle", None),
            ("run, 1 request at a time", 1),
            (f"run, {default.capacity} at a time", default.capacity),
        ):
            lat = sorted(asyncio.run(key_latencies(concurrency, 400)))
            p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
            print(f"  {label:<44} {statistics.median(lat):6.1f} / {p95:6.1f} / {lat[-1]:6.1f}  ({len(lat)} keys)")
            close_model_processes()


if __name__ == "__main__":
    main()
