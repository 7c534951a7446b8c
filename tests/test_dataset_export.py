"""Dataset exports (a folder per format, one SQLite database) and the dataset report,
on datasets generated for real against the local test server and read back from real
files: CSV, JSON Lines, JSON and SQLite opened with sqlite3."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from synth_tui.core.backends.base import GenerationParams
from synth_tui.core.dataset import DatasetRun, check_dataset, tables_dir
from synth_tui.core.dataset.export import (
    DatasetIntegrityError,
    check_dataset_output,
    export_dataset,
)
from synth_tui.core.dataset.report import dataset_report, format_dataset_report
from synth_tui.core.errors import UserInputError
from synth_tui.core.store import Store

from .conftest import cli, fast_config, openai_backend
from .fake_llm import FakeLLM

SHOP: dict[str, Any] = {"tables": {
    "customers": {"count": 20, "primary_key": "id", "schema": {
        "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
        "name": {"type": "string"}, "country": {"type": "string"},
        "active": {"type": "boolean"},
        "address": {"city": {"type": "string"}, "zip": {"type": "string"}}}},
    "products": {"count": 10, "primary_key": "sku", "schema": {
        "sku": {"type": "string", "x-generator": {"fake": "ean13"}},
        "title": {"type": "string"}, "price": {"type": "number", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}},
    "orders": {"per": {"customers": {"min": 0, "max": 5}}, "primary_key": "id", "schema": {
        "id": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
        "customer_id": {"type": "string", "x-ref": "customers.id"}, "currency": {"type": "string"}}},
    "order_items": {"per": {"orders": {"min": 1, "max": 4}}, "schema": {
        "order_id": {"type": "integer", "x-ref": "orders.id"},
        "product_sku": {"type": "string", "x-ref": "products.sku"},
        "qty": {"type": "integer", "minimum": 1, "maximum": 5}}},
}}
COMPANY: dict[str, Any] = {"tables": {
    "departments": {"count": 3, "primary_key": "id", "schema": {
        "id": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
        "name": {"type": "string", "x-generator": {"fake": "company"}}}},
    "employees": {"per": {"departments": {"min": 2, "max": 6}}, "primary_key": "id", "schema": {
        "id": {"type": "integer", "x-generator": {"sequence": {"start": 100}}},
        "department_id": {"type": "integer", "x-ref": "departments.id"},
        "manager_id": {"type": ["integer", "null"], "x-ref": "employees.id"},
        "name": {"type": "string", "x-generator": {"fake": "name"}}}},
}}
SMALL_SHOP: dict[str, Any] = {"tables": {
    **SHOP["tables"], "customers": {**SHOP["tables"]["customers"], "count": 5},
    "products": {**SHOP["tables"]["products"], "count": 3}}}
HOSTILE_FIELD = 'x"); DROP TABLE "select"; --'
HOSTILE: dict[str, Any] = {"tables": {
    "select": {"count": 4, "primary_key": 'the "key"', "schema": {
        'the "key"': {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
        HOSTILE_FIELD: {"type": "string", "x-generator": {"fake": "word"}},
        "two words.and a dot": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 9}}}}},
    "Ärger": {"per": {"select": {"min": 1, "max": 2}}, "schema": {
        "from": {"type": "integer", "x-ref": 'select.the "key"'},
        "größe": {"type": "number", "x-generator": {"uniform": {"min": 0, "max": 1}}}}},
}}


async def generate(data: dict[str, Any], data_dir: Path, llm: FakeLLM) -> str:
    backend = openai_backend(llm)
    try:
        with Store(data_dir) as store:
            run = DatasetRun(check_dataset(data), fast_config(1, params=GenerationParams(seed=5)), backend, store=store)
            result = await run.execute()
    finally:
        await backend.aclose()
    assert result.success, result.error
    return result.run_id


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One shop dataset for the tests that only read it."""
    data_dir = tmp_path_factory.mktemp("shop-data")
    server = FakeLLM().start()
    try:
        return data_dir, asyncio.run(generate(SHOP, data_dir, server))
    finally:
        server.stop()


def export(data_dir: Path, run_id: str, output: Path, fmt: str | None = None, force: bool = False) -> str:
    with Store(data_dir, writable=False) as store:
        return export_dataset(store, run_id, output, fmt, force=force)


def report(data_dir: Path, run_id: str):
    with Store(data_dir, writable=False) as store:
        return dataset_report(store, run_id)


def table_rows(data_dir: Path, run_id: str) -> dict[str, int]:
    return {t.name: t.rows for t in report(data_dir, run_id).tables}


def append_rows(data_dir: Path, run_id: str, table: str, rows: list[dict[str, Any]]) -> None:
    """Add rows to a table's journal through the store, as a hand edit would."""
    with Store(data_dir) as store:
        table_run = store.get_run(run_id)["tables"][table]["run_id"]
        with Store(tables_dir(store, run_id)) as tables:
            journal = tables.open_journal(table_run)
            journal.append(rows)
            journal.close()


# -- folders ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_a_folder_format_writes_a_file_per_table(shop, tmp_path, fmt):
    data_dir, run_id = shop
    out = tmp_path / "out" / "shop"  # made, with its parent
    check_dataset_output(out, fmt, force=False)
    assert not out.exists()  # the check makes nothing
    message = export(data_dir, run_id, out, fmt)
    counts = table_rows(data_dir, run_id)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.{fmt}" for name in SHOP["tables"])
    for name, n in counts.items():
        text = (out / f"{name}.{fmt}").read_text()
        if fmt == "csv":
            rows = list(csv.DictReader(text.splitlines()))
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in text.splitlines()]
        else:
            rows = json.loads(text)
        assert len(rows) == n > 0
        assert f"{name}.{fmt} ({n})" in message
    if fmt == "csv":
        header = (out / "customers.csv").read_text().splitlines()[0]
        assert header == "id,name,country,active,address.city,address.zip"


def test_a_folder_with_files_is_refused_without_force(shop, tmp_path):
    data_dir, run_id = shop
    out = tmp_path / "out"
    export(data_dir, run_id, out, "csv")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserInputError, match="not empty"):
        check_dataset_output(out, "csv", force=False)
    with pytest.raises(UserInputError, match="not empty"):
        export(data_dir, run_id, out, "csv")
    (out / "orders.csv").write_text("stale")
    export(data_dir, run_id, out, "csv", force=True)
    assert (out / "orders.csv").read_text().startswith("id,customer_id,currency\n")
    assert (out / "notes.txt").read_text() == "mine"  # what is not a table's file is left alone


@pytest.mark.parametrize(("name", "fmt", "message"), [
    ("file.txt", "csv", "is a file"),
    ("shop.csv", None, "names a file"),
    ("shop.db", "jsonl", "names a file"),
    ("folder", "sqlite", "is a folder"),
    ("shop.parquet", "parquet", "unknown format"),
])
def test_an_output_that_does_not_fit_the_format_is_refused(tmp_path, name, fmt, message):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserInputError, match=message):
        check_dataset_output(tmp_path / name, fmt, force=True)


def test_a_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        check_dataset_output(tmp_path / "file" / "out", "csv", force=False)


# -- SQLite ----------------------------------------------------------------------------------
def columns(db: sqlite3.Connection, table: str) -> dict[str, tuple[str, int, int]]:
    """name -> (declared type, not null, primary key) of each column."""
    return {row[1]: (row[2], row[3], row[5]) for row in db.execute(f"PRAGMA table_info(\"{table}\")")}


def test_sqlite_holds_every_table_with_its_types_keys_and_references(shop, tmp_path):
    data_dir, run_id = shop
    target = tmp_path / "shop.db"
    check_dataset_output(target, None, force=False)
    message = export(data_dir, run_id, target)
    counts = table_rows(data_dir, run_id)
    assert message == f"{sum(counts.values())} rows in 4 tables to {target}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]  # no temp file left
    db = sqlite3.connect(target)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
    assert names == ["customers", "products", "orders", "order_items"]  # parents first
    for name, n in counts.items():
        assert db.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == n
    assert columns(db, "customers") == {"id": ("TEXT", 1, 1), "name": ("TEXT", 0, 0), "country": ("TEXT", 0, 0),
                                        "active": ("INTEGER", 0, 0), "address": ("TEXT", 0, 0)}
    assert columns(db, "products")["price"] == ("REAL", 0, 0)
    assert columns(db, "orders")["id"] == ("INTEGER", 1, 1)
    refs = {(r[2], r[3], r[4]) for r in db.execute("PRAGMA foreign_key_list(order_items)")}
    assert refs == {("orders", "order_id", "id"), ("products", "product_sku", "sku")}
    assert [(r[2], r[3], r[4]) for r in db.execute("PRAGMA foreign_key_list(orders)")] == \
        [("customers", "customer_id", "id")]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert {r[0] for r in db.execute("SELECT DISTINCT active FROM customers")} <= {0, 1}
    for (address,) in db.execute("SELECT address FROM customers"):
        assert set(json.loads(address)) == {"city", "zip"}
    for (tags,) in db.execute("SELECT tags FROM products"):
        assert all(isinstance(t, str) for t in json.loads(tags))
    joined = db.execute("SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id "
                        "JOIN customers c ON c.id = o.customer_id JOIN products p ON p.sku = i.product_sku")
    assert joined.fetchone()[0] == counts["order_items"]


def test_an_existing_database_is_replaced_only_with_force(shop, tmp_path):
    data_dir, run_id = shop
    target = tmp_path / "shop.db"
    target.write_text("not a database")
    target.chmod(0o640)
    with pytest.raises(UserInputError, match="already exists"):
        check_dataset_output(target, "sqlite", force=False)
    with pytest.raises(UserInputError, match="already exists"):
        export(data_dir, run_id, target)
    assert target.read_text() == "not a database"
    export(data_dir, run_id, target, "sqlite", force=True)
    assert target.stat().st_mode & 0o777 == 0o640
    assert sqlite3.connect(target).execute("SELECT count(*) FROM customers").fetchone()[0] == 20


def test_a_link_to_a_database_keeps_pointing_at_the_new_one(shop, tmp_path):
    data_dir, run_id = shop
    (tmp_path / "real.db").write_text("old")
    (tmp_path / "link.db").symlink_to(tmp_path / "real.db")
    export(data_dir, run_id, tmp_path / "link.db", force=True)
    assert (tmp_path / "link.db").is_symlink()
    assert sqlite3.connect(tmp_path / "real.db").execute("SELECT count(*) FROM products").fetchone()[0] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.db", "real.db"]


async def test_hostile_table_and_field_names_are_quoted(tmp_path, llm):
    run_id = await generate(HOSTILE, tmp_path / "data", llm)
    target = tmp_path / "hostile.db"
    export(tmp_path / "data", run_id, target)
    db = sqlite3.connect(target)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["select", "Ärger"]
    assert list(columns(db, "select")) == ['the "key"', HOSTILE_FIELD, "two words.and a dot"]
    assert columns(db, "select")['the "key"'] == ("INTEGER", 1, 1)
    assert [(r[2], r[3], r[4]) for r in db.execute("PRAGMA foreign_key_list(\"Ärger\")")] == \
        [("select", "from", 'the "key"')]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute('SELECT count(*) FROM "select"').fetchone()[0] == 4
    assert all(isinstance(v, str) for (v,) in db.execute(f'SELECT "{HOSTILE_FIELD.replace(chr(34), 2 * chr(34))}" '
                                                          'FROM "select"'))
    export(tmp_path / "data", run_id, tmp_path / "folder", "csv")
    assert (tmp_path / "folder" / "Ärger.csv").read_text().startswith("from,größe\n")


async def test_names_sqlite_cannot_tell_apart_are_refused_for_sqlite_only(tmp_path, llm):
    data = {"tables": {"people": {"count": 2, "schema": {
        "Name": {"type": "string", "x-generator": {"fake": "name"}},
        "name": {"type": "string", "x-generator": {"fake": "name"}}}}}}
    run_id = await generate(data, tmp_path / "data", llm)
    with pytest.raises(UserInputError, match="'Name' and 'name' are one column"):
        export(tmp_path / "data", run_id, tmp_path / "people.db")
    assert list(tmp_path.iterdir()) == [tmp_path / "data"]
    export(tmp_path / "data", run_id, tmp_path / "folder", "jsonl")
    assert len((tmp_path / "folder" / "people.jsonl").read_text().splitlines()) == 2


async def test_a_self_reference_is_a_foreign_key_to_the_table_itself(tmp_path, llm):
    run_id = await generate(COMPANY, tmp_path / "data", llm)
    export(tmp_path / "data", run_id, tmp_path / "company.db")
    db = sqlite3.connect(tmp_path / "company.db")
    assert ("employees", "manager_id", "id") in {(r[2], r[3], r[4]) for r in
                                                 db.execute("PRAGMA foreign_key_list(employees)")}
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    roots = db.execute("SELECT count(*) FROM employees WHERE manager_id IS NULL").fetchone()[0]
    assert roots >= 1
    result = report(tmp_path / "data", run_id)
    manager = result.tables[1].references[1]
    assert (manager.field, manager.dangling, manager.nulls) == ("manager_id", 0, roots)
    assert result.consistent


# -- the report ------------------------------------------------------------------------------
def test_the_report_finds_every_reference_resolved_and_children_within_range(shop):
    data_dir, run_id = shop
    result = report(data_dir, run_id)
    assert result.integrity == 1.0 and result.dangling == 0 and result.keys_unique and result.consistent
    tables = {t.name: t for t in result.tables}
    assert [t.status for t in result.tables] == ["done"] * 4
    assert tables["customers"].rows == 20 and tables["customers"].quality.accepted == 20
    items = tables["order_items"]
    assert {r.field: (r.references, r.resolved) for r in items.references} == \
        {"order_id": (items.rows, 1.0), "product_sku": (items.rows, 1.0)}
    for child, parent, (low, high) in (("orders", "customers", (0, 5)), ("order_items", "orders", (1, 4))):
        spread = tables[child].children
        assert spread is not None and spread.parent == parent
        assert spread.parents == tables[parent].rows and spread.outside == 0
        assert low <= spread.min <= spread.max <= high
        assert sum(n * times for n, times in spread.spread) == tables[child].rows
    text = format_dataset_report(result)
    assert "referential integrity 100.0%" in text and "primary keys unique" in text
    assert "children per orders row (allowed 1-4)" in text and "all within" in text
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["integrity"] == 1.0 and doc["tables"][3]["references"][0]["resolved"] == 1.0
    assert doc["tables"][0]["quality"]["accepted"] == 20


async def test_a_dangling_reference_is_reported_and_stops_the_sqlite_export(tmp_path, llm):
    data_dir = tmp_path / "data"
    run_id = await generate(SMALL_SHOP, data_dir, llm)
    append_rows(data_dir, run_id, "order_items", [{"order_id": 99_999, "product_sku": "\x1b[31mred", "qty": 1}])
    result = report(data_dir, run_id)
    items = result.tables[3]
    assert {r.field: (r.dangling, r.examples) for r in items.references} == \
        {"order_id": (1, [99_999]), "product_sku": (1, ["\x1b[31mred"])}
    assert result.dangling == 2 and result.integrity < 1.0 and not result.consistent
    text = format_dataset_report(result)
    assert "1 dangling" in text and "99999" in text and "\x1b" not in text
    target = tmp_path / "shop.db"
    with pytest.raises(DatasetIntegrityError, match="reference rows that do not exist.*order_items"):
        export(data_dir, run_id, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # neither the database nor its temp file


async def test_a_repeated_primary_key_is_reported_and_stops_the_sqlite_export(tmp_path, llm):
    data_dir = tmp_path / "data"
    run_id = await generate(SMALL_SHOP, data_dir, llm)
    with Store(data_dir, writable=False) as store:
        first = next(iter(dataset_records(store, run_id, "customers")))
    append_rows(data_dir, run_id, "customers", [first])
    result = report(data_dir, run_id)
    assert result.tables[0].key_duplicates == 1 and not result.keys_unique and not result.consistent
    assert "primary key id: 1 repeated" in format_dataset_report(result)
    with pytest.raises(DatasetIntegrityError, match="UNIQUE"):
        export(data_dir, run_id, tmp_path / "shop.db")
    assert not (tmp_path / "shop.db").exists()


def dataset_records(store: Store, run_id: str, table: str):
    with Store(tables_dir(store, run_id), writable=False) as tables:
        yield from tables.iter_records(store.get_run(run_id)["tables"][table]["run_id"])


def test_a_run_that_is_not_a_dataset_is_named(tmp_path):
    with Store(tmp_path) as store:
        store.create_run({"id": "20260101-000000-abcdef", "schema": {"type": "object"}})
        with pytest.raises(UserInputError, match="not a dataset run"):
            dataset_report(store, "20260101-000000-abcdef")


# -- through the CLI ---------------------------------------------------------------------------
def test_generate_writes_the_database_and_a_folder_at_the_end(tmp_path, llm):
    (tmp_path / "shop.json").write_text(json.dumps(SMALL_SHOP))
    backend = ("--backend", "openai", "--base-url", llm.url + "/v1", "--model", "test-model", "--seed", "2", "-q")
    done = cli("generate", str(tmp_path / "shop.json"), *backend, "-o", str(tmp_path / "shop.db"))
    assert done.returncode == 0, done.stderr
    assert f"to {tmp_path / 'shop.db'}" in done.stdout + done.stderr
    db = sqlite3.connect(tmp_path / "shop.db")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 5
    requests = llm.count_requests
    again = cli("generate", str(tmp_path / "shop.json"), *backend, "-o", str(tmp_path / "shop.db"))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert llm.count_requests == requests  # refused before the first request
    folder = cli("generate", str(tmp_path / "shop.json"), *backend, "-o", str(tmp_path / "csv"), "--format", "csv")
    assert folder.returncode == 0, folder.stderr
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == \
        ["customers.csv", "order_items.csv", "orders.csv", "products.csv"]
