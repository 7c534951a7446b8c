"""What the TUI costs a fast run, side by side in one run.

The same generation (local test server in its own process, 10 records per request)
goes through the engine alone, then through the app (a worker thread posting events
to the progress screen, headless). Prints records/s of both and the ratio.

    python bench/tui_overhead.py [-n 20000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.widgets import Input  # noqa: E402

from synth_tui.app import SynthApp  # noqa: E402
from synth_tui.core.backends.openai import OpenAIBackend  # noqa: E402
from synth_tui.core.config import Settings  # noqa: E402
from synth_tui.core.engine import Run, RunConfig  # noqa: E402
from synth_tui.core.schema import check_schema  # noqa: E402
from synth_tui.core.store import Store  # noqa: E402
from synth_tui.core.templates import TEMPLATES  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402


async def engine_alone(url: str, n: int, concurrency: int, data_dir: Path) -> float:
    backend = OpenAIBackend(base_url=url, model="test-model")
    store = Store(data_dir)
    config = RunConfig(count=n, batch_size=10, concurrency=concurrency)
    t0 = time.perf_counter()
    result = await Run(check_schema(TEMPLATES["customers"]), config, backend, store=store,
                       on_event=lambda e: None).execute()
    elapsed = time.perf_counter() - t0
    await backend.aclose()
    store.close()
    assert result.accepted == n, result.error
    return n / elapsed


async def through_tui(url: str, n: int, concurrency: int, data_dir: Path) -> float:
    settings = Settings(backend="openai", path=data_dir / "settings.json")
    settings.backends["openai"].base_url = url
    settings.backends["openai"].model = "test-model"
    app = SynthApp(data_dir=data_dir, settings=settings, blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for ident, value in (("count", n), ("batch", 10), ("concurrency", concurrency)):
            app.screen.query_one(f"#{ident}", Input).value = str(value)
        await pilot.pause()
        t0 = time.perf_counter()
        await pilot.press("ctrl+g")
        while app.last_result is None:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        assert app.last_result.accepted == n, app.last_result.error
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    server = ServerProcess("--delay", "0.02")
    url = server.url + "/v1"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            alone = asyncio.run(engine_alone(url, args.n, args.concurrency, Path(tmp) / "a"))
            tui = asyncio.run(through_tui(url, args.n, args.concurrency, Path(tmp) / "b"))
    finally:
        server.stop()
    print(f"{args.n:,} records, 10 per request, concurrency {args.concurrency}, server delay 20 ms:")
    print(f"  engine alone      {alone:8.0f} records/s")
    print(f"  through the TUI   {tui:8.0f} records/s   ({tui / alone:.2f}x)")


if __name__ == "__main__":
    main()
