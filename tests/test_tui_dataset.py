"""Datasets of several tables in the real app (App.run_test()), against the local test
server: the editor's tables, a dataset run with a bar per table, the history's tables,
the SQLite export and the resume of a cancelled dataset run."""

from __future__ import annotations

import copy
import json
import sqlite3

from textual.widgets import DataTable, Input, Select, Static, TextArea

from synth_tui.core.dataset import DatasetResult
from synth_tui.core.dataset.report import dataset_report
from synth_tui.core.engine import RunResult
from synth_tui.core.store import Store
from synth_tui.screens.dataset_export import DatasetExportDialog
from synth_tui.screens.dataset_report import DatasetReportScreen
from synth_tui.screens.run_list import RUN_COLUMNS

from .fake_llm import FakeLLM
from .test_tui import make_app, schema_checked, set_input, started
from .waiting import notifications, shown, until

UUID = {"type": "string", "format": "uuid", "x-generator": "uuid"}
SHOP = {"tables": {
    "customers": {"count": 6, "primary_key": "id",
                  "schema": {"id": UUID, "name": {"type": "string"}, "country": {"type": "string"}}},
    "orders": {"per": {"customers": {"min": 1, "max": 3}}, "primary_key": "id",
               "schema": {"id": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
                          "customer_id": {"type": "string", "x-ref": "customers.id"},
                          "currency": {"type": "string"}}},
    "order_items": {"per": {"orders": {"min": 1, "max": 2}},
                    "schema": {"order_id": {"type": "integer", "x-ref": "orders.id"},
                               "qty": {"type": "integer", "minimum": 1, "maximum": 5}}},
}}


def shop_text(**tables) -> str:
    data = copy.deepcopy(SHOP)
    data["tables"].update(tables)
    return json.dumps(data, indent=2)


def status_line(app) -> str:
    return str(app.get_screen("editor").query_one("#schema-status", Static).render())


async def test_the_editor_lists_a_datasets_tables_and_the_chosen_tables_fields(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        editor = app.screen
        await schema_checked(pilot, app, shop_text())
        assert editor.dataset is not None and editor.has_class("dataset")
        listing = editor.query_one("#table-list", DataTable)
        assert listing.display and not editor.query_one("#field-sources").display
        names = [str(listing.get_cell_at((row, 0))) for row in range(listing.row_count)]
        assert names == ["customers", "orders", "order_items"]
        assert str(listing.get_cell_at((1, 1))) == "1-3 per customers"
        assert "customer_id → customers.id" in str(listing.get_cell_at((1, 3)))
        assert status_line(app).startswith("✓ valid dataset: 3 tables, 8 fields")
        assert "not used: Count, Examples, Enrich, Compare" in status_line(app)
        fields = editor.query_one("#table-fields", Static)
        assert str(fields.render()).startswith("customers: id (key, uuid)")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.focused is listing, "the focus on the table list")
        await pilot.press("down")
        await until(pilot, lambda: str(fields.render()).startswith("orders: id (key, sequence"), "the orders' fields")
        assert "customer_id → customers.id" in str(fields.render())
        await pilot.press("enter")  # the orders table in the file
        area = editor.query_one("#schema-editor", TextArea)
        row = shop_text().splitlines().index('    "orders": {')
        await until(pilot, lambda: app.focused is area and area.cursor_location == (row, 4), "the orders' key")


async def test_a_reference_to_an_unknown_table_is_shown_with_its_path(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        editor = app.screen
        broken = copy.deepcopy(SHOP["tables"]["orders"])
        broken["schema"]["customer_id"]["x-ref"] = "clients.id"
        await schema_checked(pilot, app, shop_text(orders=broken))
        assert editor.dataset is None and editor.query_one("#schema-status").has_class("error")
        assert status_line(app) == ("✗ $.tables.orders.schema.customer_id.x-ref: x-ref names table 'clients', "
                                    "which the dataset does not have (it has: customers, orders, order_items)")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "The schema has an error" in notifications(app), "the refusal")
        assert app.screen.id == "editor" and not app.running


async def test_a_cycle_is_named_under_the_editor(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        customers = copy.deepcopy(SHOP["tables"]["customers"])
        customers["schema"]["last_order"] = {"type": "integer", "x-ref": "orders.id"}
        await schema_checked(pilot, app, shop_text(customers=customers))
        assert status_line(app).startswith("✗ $.tables: the tables reference each other in a cycle: ")
        assert "customers -> orders -> customers" in status_line(app) or "orders -> customers -> orders" \
            in status_line(app)


async def test_the_template_list_offers_the_built_in_datasets(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        editor = app.screen
        editor.query_one("#template", Select).value = "shop"
        await until(pilot, lambda: editor.dataset is not None and list(editor.dataset.tables)
                    == ["customers", "products", "orders", "order_items"], "the shop dataset in the editor")
        assert "shop" in editor.query_one("#template", Select).value


async def test_seed_files_and_compare_are_refused_for_a_dataset(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, shop_text())
        await set_input(pilot, app, "examples", str(tmp_path / "examples.jsonl"))
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "Examples and Enrich take one table's rows" in notifications(app),
                    "the refusal of a seed file")
        await set_input(pilot, app, "examples", "")
        await set_input(pilot, app, "compare-models", "openai:other")
        await pilot.press("ctrl+k")
        await until(pilot, lambda: "not a dataset of tables" in notifications(app),
                    "the refusal of a comparison")
        await set_input(pilot, app, "compare-models", "")
        await set_input(pilot, app, "budget", "0.5")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "Budget and the Batch API work on one schema's runs" in notifications(app),
                    "the refusal of a budget")
        await pilot.press("f6")
        await until(pilot, lambda: "a dataset's tables have none yet" in notifications(app), "the refusal of F6")
        assert "schema has an error" not in notifications(app)
        assert app.screen.id == "editor" and not app.running


async def run_dataset_from_the_editor(pilot, app) -> DatasetResult:
    """The small shop dataset, generated from the editor as a user does: ctrl+g."""
    await schema_checked(pilot, app, shop_text())
    for ident, value in (("batch", "4"), ("concurrency", "2"), ("seed", "7")):
        await set_input(pilot, app, ident, value)
    await pilot.press("ctrl+g")
    await shown(pilot, "progress")
    await until(pilot, lambda: isinstance(app.last_result, DatasetResult) and not app.running, "the dataset's end")
    return app.last_result


async def test_a_dataset_run_from_the_editor_shows_a_bar_per_table(tmp_path, llm):
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        result = await run_dataset_from_the_editor(pilot, app)
        assert result.status == "done" and [t.name for t in result.tables] == ["customers", "orders", "order_items"]
        counts = {t.name: t.accepted for t in result.tables}
        assert counts["customers"] == 6 and 6 <= counts["orders"] <= 18 and counts["orders"] <= counts["order_items"]
        progress = app.screen
        lines = str(progress.query_one("#table-progress", Static).render()).splitlines()
        assert [line.split()[0] for line in lines] == ["customers", "orders", "order_items"]
        for line, table in zip(lines, result.tables):
            assert f" {table.accepted}/{table.requested} done" in line
        title = str(progress.query_one("#run-title", Static).render())
        assert title.startswith(f"Run {result.run_id} done: {result.accepted}/{result.accepted} rows in 3 tables")
        await until(pilot, lambda: f"rows in 3 tables (customers 6, orders {counts['orders']}" in notifications(app),
                    "the notice of the rows per table")
        with Store(tmp_path / "data") as store:
            doc = store.get_run(result.run_id)
        assert doc.extra["kind"] == "dataset" and doc.status == "done"
        assert app.sub_title.startswith("last run done")
        assert "cost" not in str(progress.query_one("#run-cost", Static).render())  # no price reaches a dataset

        # marked for a comparison, a dataset run is left out, saying why
        await pilot.press("f2")
        await shown(pilot, "editor")
        await set_input(pilot, app, "count", "3")
        await schema_checked(pilot, app, '{"name": {"type": "string"}}')
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.last_result, RunResult) and not app.running, "a plain run")
        await pilot.press("f4")
        history = await shown(pilot, "history")
        runs = history.query_one("#runs", DataTable)
        runs.focus()
        await until(pilot, lambda: len(history.runs) == 2 and app.focused is runs, "both runs listed")
        await pilot.press("home", "m", "down", "m", "c")
        await until(pilot, lambda: "1 of the marked runs is a dataset" in notifications(app), "the dataset left out")
        assert "Mark two or more runs" in notifications(app)


def preview_text(app) -> str:
    return str(app.screen.query_one("#preview", Static).render())


def page_line(app) -> str:
    return str(app.screen.query_one("#page-line", Static).render())


async def test_a_dataset_run_in_the_history_pages_its_tables_reports_and_exports_to_sqlite_and_csv(tmp_path, llm):
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        result = await run_dataset_from_the_editor(pilot, app)
        counts = {t.name: t.accepted for t in result.tables}
        await pilot.press("f4")
        history = await shown(pilot, "history")
        await until(pilot, lambda: history.selected_id() == result.run_id, "the dataset run selected")
        runs = history.query_one("#runs", DataTable)
        model = RUN_COLUMNS.index("Model")
        assert str(runs.get_cell_at((runs.cursor_row, model))) == "3 tables · openai:test-model"
        assert str(runs.get_cell_at((runs.cursor_row, RUN_COLUMNS.index("Cost")))) == "-"  # no cost for a dataset yet
        assert f"Dataset run {result.run_id} · done · 3 tables" in preview_text(app)
        for name, n in counts.items():
            assert f"{name}: {n}/{n} done" in preview_text(app)
        assert page_line(app) == "customers: records 1-6 of 6 ([ ])"
        records = history.query_one("#records", DataTable)
        assert [str(c.label) for c in records.columns.values()] == ["id", "name", "country"]
        await pilot.press("t")
        await until(pilot, lambda: page_line(app).startswith(f"orders: records 1-{counts['orders']} of"),
                    "the orders' records")
        assert [str(c.label) for c in records.columns.values()] == ["id", "customer_id", "currency"]
        assert f"▶ orders: {counts['orders']}" in preview_text(app)
        customer_ids = {str(records.get_cell_at((row, 1))) for row in range(records.row_count)}
        await pilot.press("t", "t")
        await until(pilot, lambda: page_line(app).startswith("customers: records"), "back to the first table")
        assert customer_ids <= {str(records.get_cell_at((row, 0))) for row in range(records.row_count)}

        await pilot.press("enter")
        report = await shown(pilot, DatasetReportScreen)
        body = report.query_one("#text-body Static", Static)
        await until(pilot, lambda: "referential integrity 100" in str(body.render()), "the dataset's report")
        assert "table order_items (done)" in str(body.render())
        await pilot.press("escape")
        await shown(pilot, "history")

        target = tmp_path / "out" / "shop.db"
        await pilot.press("e")
        dialog = await shown(pilot, DatasetExportDialog)
        assert dialog.query_one("#format", Select).value == "sqlite"
        await set_input(pilot, app, "path", str(target))
        await pilot.press("enter")
        problem = dialog.query_one("#export-problem", Static)
        await until(pilot, lambda: "does not exist. Create it?" in str(problem.render()), "the question")
        await pilot.press("enter")
        await until(pilot, lambda: "Wrote " in notifications(app) and target.exists(), "the SQLite export")
        with sqlite3.connect(target) as db:
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            for name, n in counts.items():
                assert db.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == n
            orphans = db.execute("SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT id FROM customers)")
            assert orphans.fetchone()[0] == 0

        folder = tmp_path / "csv"
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
        app.clear_notifications()
        await pilot.press("e")
        dialog = await shown(pilot, DatasetExportDialog)
        dialog.query_one("#format", Select).value = "csv"
        path = dialog.query_one("#path", Input)
        await until(pilot, lambda: not path.value.endswith(".db"), "a folder for the csv files")
        await set_input(pilot, app, "path", str(folder))
        await pilot.press("enter")
        problem = dialog.query_one("#export-problem", Static)
        await until(pilot, lambda: "holds files. Replace the tables' files in it?" in str(problem.render()),
                    "the question about the folder's files")
        await pilot.press("enter")
        await until(pilot, lambda: "Wrote " in notifications(app), "the csv export")
        assert sorted(p.name for p in folder.iterdir()) == ["customers.csv", "notes.txt", "order_items.csv",
                                                             "orders.csv"]
        assert len((folder / "orders.csv").read_text().splitlines()) == counts["orders"] + 1

        await pilot.press("r")  # re-run: the dataset and its parameters back in the editor
        editor = await shown(pilot, "editor")
        await until(pilot, lambda: editor.dataset is not None and list(editor.dataset.tables) == list(counts),
                    "the dataset in the editor")
        assert editor.query_one("#seed", Input).value == "7" and editor.query_one("#batch", Input).value == "4"
        assert editor.query_one("#count", Input).value == "20"  # the form's own: a dataset has none


async def test_a_cancelled_dataset_run_resumes_from_the_history(tmp_path):
    server = FakeLLM(delay=0.05).start()
    try:
        app = make_app(tmp_path, server)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await started(pilot, app)
            await schema_checked(pilot, app, shop_text())
            for ident, value in (("batch", "1"), ("concurrency", "1"), ("seed", "7")):
                await set_input(pilot, app, ident, value)
            await pilot.press("ctrl+g")
            progress = await shown(pilot, "progress")
            tables = progress.tables
            await until(pilot, lambda: tables.current == "orders" and tables.lines["orders"].done >= 2,
                        "the orders table under way")
            assert "▶ orders" in str(progress.query_one("#table-progress", Static).render())
            assert "table orders, 2 of 3" in str(progress.query_one("#run-title", Static).render())
            await pilot.press("f8")
            await until(pilot, lambda: isinstance(app.last_result, DatasetResult) and not app.running,
                        "the cancelled run's end")
            cancelled = app.last_result
            assert cancelled.status == "cancelled"
            kept = {t.name: t.accepted for t in cancelled.tables}
            assert kept["customers"] == 6 and 2 <= kept["orders"] < cancelled.tables[1].requested
            assert cancelled.tables[2].status == "pending"
            lines = str(progress.query_one("#table-progress", Static).render()).splitlines()
            assert "cancelled" in lines[1] and "pending" in lines[2]

            await pilot.press("f4")
            history = await shown(pilot, "history")
            await until(pilot, lambda: history.selected_id() == cancelled.run_id, "the cancelled run selected")
            assert f"orders: {kept['orders']}/" in preview_text(app) and "cancelled" in preview_text(app)
            app.last_result = None
            await pilot.press("u")
            await shown(pilot, "progress")
            await until(pilot, lambda: isinstance(app.last_result, DatasetResult) and not app.running,
                        "the resumed run's end", timeout=60)
            result = app.last_result
            assert result.run_id == cancelled.run_id and result.status == "done"
            assert [t.accepted for t in result.tables] == [t.requested for t in result.tables]
            assert result.tables[1].requested == cancelled.tables[1].requested  # the same rows, not drawn again
        with Store(tmp_path / "data") as store:
            report = dataset_report(store, result.run_id)
        assert report.integrity == 1.0 and report.keys_unique
    finally:
        server.stop()


async def test_hostile_field_names_of_a_dataset_reach_no_screen_as_control_or_markup(tmp_path, llm):
    from .test_hostile_tui import HOSTILE, assert_clean

    customers = copy.deepcopy(SHOP["tables"]["customers"])
    customers["schema"][HOSTILE] = {"type": "string"}
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, shop_text(customers=customers))
        editor = app.screen
        assert editor.dataset is not None
        fields = editor.query_one("#table-fields", Static)
        await until(pilot, lambda: "[/nope][bold red]loud[/bold red]" in str(fields.render()), "the field's name")
        assert_clean(app, "editor")
        for ident, value in (("batch", "6"), ("seed", "7")):
            await set_input(pilot, app, ident, value)
        await pilot.press("ctrl+g")
        await shown(pilot, "progress")
        await until(pilot, lambda: isinstance(app.last_result, DatasetResult) and not app.running, "the dataset's end")
        assert app.last_result.status == "done"
        assert_clean(app, "progress")
        await pilot.press("f4")
        history = await shown(pilot, "history")
        await until(pilot, lambda: history.selected_id() == app.last_result.run_id, "the dataset run selected")
        records = history.query_one("#records", DataTable)
        await until(pilot, lambda: records.row_count == 6, "the customers' records")
        assert any("[/nope]" in str(column.label) for column in records.columns.values())
        assert_clean(app, "history")


async def test_quitting_during_a_dataset_run_stops_it_resumable(tmp_path, llm, capsys):
    from synth_tui.screens.dialogs import ChoiceDialog

    llm.delay = 0.2  # a row every 0.2 s: the run goes on while the question is asked
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, shop_text())
        for ident, value in (("batch", "1"), ("concurrency", "1")):
            await set_input(pilot, app, ident, value)
        await pilot.press("ctrl+g")
        progress = await shown(pilot, "progress")
        await until(pilot, lambda: progress.tables.current == "orders", "the orders table under way")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the question")
        await pilot.press("s")
        await until(pilot, lambda: not app.is_running, "the app to quit")
    with Store(tmp_path / "data", writable=False) as store:
        [doc] = store.list_runs()
    assert doc["status"] == "cancelled" and doc["tables"]["order_items"]["status"] == "pending"
    said = " ".join(capsys.readouterr().err.split())
    assert f"continue it with: synth-tui resume {doc['id']}" in said
