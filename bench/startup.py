"""Startup to first screen: synth-tui against a bare Textual app, in one run.

Each start is a fresh interpreter (imports included) that runs the app headless and
exits as soon as its first screen is mounted and painted; the two alternate, and the
median of each is printed with their ratio.

    python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys
kind, data_dir = sys.argv[1], sys.argv[2]
if kind == "bare":
    from textual.app import App
    from textual.widgets import Footer, Header, Static

    class Bare(App):
        def compose(self):
            yield Header()
            yield Static("hello")
            yield Footer()

    app = Bare()
else:
    from synth_tui.app import SynthApp

    app = SynthApp(data_dir=data_dir)

async def first_screen(pilot):
    await pilot.pause()
    assert app.screen is not None
    app.exit()

app.run(headless=True, auto_pilot=first_screen, size=(120, 40))
"""


def start(kind: str, data_dir: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, kind, data_dir], cwd=ROOT, check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": data_dir, "SYNTH_TUI_CONFIG": f"{data_dir}/s.json"})
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"bare": [], "synth": []}
    with tempfile.TemporaryDirectory() as tmp:
        start("synth", tmp)  # warm the OS file cache and .pyc files for both
        start("bare", tmp)
        for _ in range(args.runs):
            for kind in ("bare", "synth"):
                times[kind].append(start(kind, tmp))
    bare, synth = statistics.median(times["bare"]), statistics.median(times["synth"])
    print(f"startup to first screen, median of {args.runs} fresh processes:")
    print(f"  bare Textual app  {bare * 1000:6.0f} ms")
    print(f"  synth-tui         {synth * 1000:6.0f} ms")
    print(f"  synth-tui / bare  {synth / bare:6.2f}x   (target: synth-tui under 1000 ms)")


if __name__ == "__main__":
    main()
