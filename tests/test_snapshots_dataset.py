"""Snapshots of the dataset screens at 80x24 and 120x40: the editor holding a dataset
file (its tables in place of the field sources) and the progress screen of a dataset
run held mid-way (a bar per table, the table being generated marked). As in
test_snapshots.py: a real run against the test server, the engine's clock standing
still, fixed run ids, and waits on what the user would see. Update deliberately with
--snapshot-update."""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.widgets import DataTable, Input, Select, TextArea

from .fake_llm import ModelBehaviour
from .test_snapshots import MODEL, HeldLLM, app_for, sizes
from .test_tui_dataset import SHOP
from .waiting import footer_actions, settle, shown, until

DATASET_ID = "20261106-090000-dddddd"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """The test server, the clocks of the engine and of the dataset run standing still,
    the dataset run's id fixed and its tables' runs numbered."""
    run_module = importlib.import_module("synth_tui.core.engine.run")
    dataset_module = importlib.import_module("synth_tui.core.dataset.run")
    still = SimpleNamespace(monotonic=lambda: 1000.0)
    monkeypatch.setattr(run_module, "time", still)
    monkeypatch.setattr(dataset_module, "time", still)
    monkeypatch.setattr(dataset_module, "new_run_id", lambda: DATASET_ID)
    tables = itertools.count(1)
    monkeypatch.setattr(run_module, "new_run_id", lambda: f"20261106-090000-t{next(tables):05d}")
    srv = HeldLLM(models={MODEL: ModelBehaviour()}).start()
    yield srv
    srv.stop()


async def dataset_in_the_editor(pilot, text: str):
    editor = await shown(pilot, "editor")
    area = editor.query_one("#schema-editor", TextArea)
    area.load_text(text)
    await until(pilot, lambda: editor.checked_text == area.text, "the dataset's check")
    return editor


@sizes
def test_dataset_editor(snap_compare, size):
    async def shop(pilot):
        editor = await shown(pilot, "editor")
        editor.query_one("#template", Select).value = "shop"
        await until(pilot, lambda: editor.dataset is not None and "order_items" in editor.dataset.tables,
                    "the shop dataset in the editor")
        await pilot.press("ctrl+r", "down", "down")  # the orders table's fields
        listing = editor.query_one("#table-list")
        await until(pilot, lambda: listing.cursor_row == 2, "the cursor on the orders table")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=shop)


@sizes
def test_dataset_editor_reference_error(snap_compare, size):
    broken = json.loads(json.dumps(SHOP))
    broken["tables"]["orders"]["schema"]["customer_id"]["x-ref"] = "clients.id"

    async def error(pilot):
        editor = await dataset_in_the_editor(pilot, json.dumps(SHOP, indent=2))
        await until(pilot, lambda: editor.dataset is not None, "the valid dataset")
        editor = await dataset_in_the_editor(pilot, json.dumps(broken, indent=2))
        await until(pilot, lambda: editor.query_one("#schema-status").has_class("error"), "the reference error")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=error)


@sizes
def test_dataset_progress(snap_compare, server, size):
    async def held(pilot):
        app = pilot.app
        await dataset_in_the_editor(pilot, json.dumps(SHOP, indent=2))
        for ident, value in (("batch", 3), ("concurrency", 1), ("seed", 7)):
            app.screen.query_one(f"#{ident}", Input).value = str(value)
        server.hold_after = 3  # customers in two answers, the first three orders, then it waits
        await pilot.press("ctrl+g")
        progress = await shown(pilot, "progress")
        await until(pilot, lambda: server.held == 1 and not app.jobs.events and progress.tables.current == "orders"
                    and progress.tables.lines["orders"].done == 3 and "cancel_run" in footer_actions(app)
                    and progress.query_one("#latest", DataTable).row_count == 3,
                    "the run to wait on the orders' second answer")
        await settle(pilot)

    assert snap_compare(app_for(server), terminal_size=size, run_before=held)
