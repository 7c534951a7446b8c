"""Datasets of several tables in the real app (App.run_test()), against the local test
server: the editor's tables, a dataset run with a bar per table, the history's tables,
the SQLite export and the resume of a cancelled dataset run."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

from textual.widgets import DataTable, Select, Static, TextArea

from synth_tui.core.dataset import DatasetResult
from synth_tui.core.store import Store

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
        assert "valid dataset, 3 tables" in status_line(app) and "Count, Examples, Enrich" in status_line(app)
        fields = editor.query_one("#table-fields", Static)
        assert str(fields.render()).startswith("customers: id (key, uuid)")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.focused is listing, "the focus on the table list")
        await pilot.press("down")
        await until(pilot, lambda: str(fields.render()).startswith("orders: id (key, sequence"), "the orders' fields")
        assert "customer_id → customers.id" in str(fields.render())


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
        assert app.screen.id == "editor" and not app.running
