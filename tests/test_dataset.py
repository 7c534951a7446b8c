"""Relational datasets: the file's checks, and whole datasets generated against a real
local server, in the engine and through the CLI (a SIGKILL mid-dataset, then resume)."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from synth_tui.core.backends.base import GenerationParams
from synth_tui.core.dataset import DatasetRun, check_dataset, tables_dir
from synth_tui.core.errors import SchemaError
from synth_tui.core.store import Store

from .conftest import ROOT, ServerProcess, cli, fast_config, openai_backend

UUID = {"type": "string", "format": "uuid", "x-generator": "uuid"}
SHOP = {"tables": {
    "customers": {"count": 12, "primary_key": "id",
                  "schema": {"id": UUID, "name": {"type": "string"}, "country": {"type": "string"}}},
    "products": {"count": 6, "primary_key": "sku",
                 "schema": {"sku": {"type": "string"}, "title": {"type": "string"},
                            "price": {"type": "number", "minimum": 1}}},
    "orders": {"per": {"customers": {"min": 0, "max": 3}}, "primary_key": "id",
               "schema": {"id": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
                          "customer_id": {"type": "string", "x-ref": "customers.id"},
                          "currency": {"type": "string"}}},
    "order_items": {"per": {"orders": {"min": 1, "max": 4}},
                    "schema": {"order_id": {"type": "integer", "x-ref": "orders.id"},
                               "product_sku": {"type": "string", "x-ref": "products.sku"},
                               "qty": {"type": "integer", "minimum": 1, "maximum": 5}}},
}}
COMPANY = {"tables": {
    "employees": {"count": 40, "primary_key": "id",
                  "schema": {"id": {"type": "integer"}, "name": {"type": "string"},
                             "manager_id": {"type": ["integer", "null"], "x-ref": "employees.id"}}},
}}


def shop(**changes) -> dict:
    data = copy.deepcopy(SHOP)
    for path, value in changes.items():
        node = data["tables"]
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return data


# -- the file's checks ----------------------------------------------------------------------
@pytest.mark.parametrize("changes,where,words", [
    ({"orders__schema__customer_id__x-ref": "clients.id"}, "orders.schema.customer_id.x-ref", "table 'clients'"),
    ({"orders__schema__customer_id__x-ref": "customers.ident"}, "customer_id.x-ref", "column 'ident'"),
    ({"orders__schema__customer_id__x-ref": "customers.name"}, "customer_id.x-ref", "primary key"),
    ({"orders__per": {"products": {"min": 0, "max": 1}}}, "orders.per", "no field of this table references"),
    ({"products__count": None}, "tables.products", 'either "count"'),
    ({"orders__per__customers": {"min": 3, "max": 1}}, "orders.per.customers", "less than min"),
])
def test_a_wrong_dataset_is_refused_with_its_path(changes, where, words):
    with pytest.raises(SchemaError) as exc:
        check_dataset(shop(**changes), "shop.json")
    assert where in exc.value.where and words in exc.value.detail


def test_a_cycle_is_refused_naming_it():
    data = shop(customers__schema__last_order={"type": "integer", "x-ref": "orders.id"})
    with pytest.raises(SchemaError) as exc:
        check_dataset(data, "shop.json")
    assert "customers -> orders -> customers" in exc.value.detail or "orders -> customers -> orders" in exc.value.detail


def test_a_self_reference_must_be_nullable():
    data = copy.deepcopy(COMPANY)
    data["tables"]["employees"]["schema"]["manager_id"]["type"] = "integer"
    with pytest.raises(SchemaError) as exc:
        check_dataset(data, "company.json")
    assert "nullable" in exc.value.detail


# -- whole datasets -------------------------------------------------------------------------
async def generate(llm, data, seed=3, **config):
    backend = openai_backend(llm)
    try:
        with Store() as store:
            run = DatasetRun(check_dataset(data), fast_config(1, params=GenerationParams(seed=seed), **config),
                             backend, store=store)
            result = await run.execute()
            with Store(tables_dir(store, result.run_id)) as tables:
                rows = {t.name: list(tables.iter_records(t.run_id)) if t.run_id else [] for t in result.tables}
    finally:
        await backend.aclose()
    return result, rows


def assert_consistent(rows: dict[str, list[dict]]) -> None:
    customers = {r["id"] for r in rows["customers"]}
    products = {r["sku"] for r in rows["products"]}
    orders = [r["id"] for r in rows["orders"]]
    assert len(customers) == len(rows["customers"]) and len(set(orders)) == len(orders)  # unique keys
    assert all(r["customer_id"] in customers for r in rows["orders"])
    assert all(r["order_id"] in set(orders) and r["product_sku"] in products for r in rows["order_items"])
    per_customer = Counter(r["customer_id"] for r in rows["orders"])
    assert max(per_customer.values(), default=0) <= 3
    per_order = Counter(r["order_id"] for r in rows["order_items"])
    assert set(per_order) == set(orders) and all(1 <= n <= 4 for n in per_order.values())


async def test_a_shop_is_complete_and_every_reference_resolves(llm):
    result, rows = await generate(llm, SHOP, batch_size=5)
    assert result.success, result.error
    assert [t.name for t in result.tables] == ["customers", "products", "orders", "order_items"]
    assert len(rows["customers"]) == 12 and len(rows["products"]) == 6
    assert_consistent(rows)
    assert sorted(r["id"] for r in rows["orders"]) == list(range(1, len(rows["orders"]) + 1))


async def test_a_child_request_carries_its_parent_row(llm):
    result, rows = await generate(llm, SHOP, batch_size=1)
    assert result.success
    prompts = [body["messages"][-1]["content"] for body in llm.requests]
    item = rows["order_items"][0]
    parent = next(r for r in rows["orders"] if r["id"] == item["order_id"])
    assert any('"its orders row"' in p and parent["currency"] in p for p in prompts)


async def test_keys_and_references_never_come_from_the_model(llm):
    result, rows = await generate(llm, SHOP, batch_size=3)
    for body in llm.requests:
        schema = body["response_format"]["json_schema"]["schema"]
        fields = set((schema["properties"].get("records", {}).get("items") or schema)["properties"])
        assert not fields & {"id", "sku", "customer_id", "order_id", "product_sku"}


async def test_a_self_reference_makes_a_forest(llm):
    result, rows = await generate(llm, COMPANY)
    assert result.success
    employees = rows["employees"]
    position = {r["id"]: i for i, r in enumerate(employees)}
    assert employees[0]["manager_id"] is None
    assert all(r["manager_id"] is None or position[r["manager_id"]] < position[r["id"]] for r in employees)
    assert any(r["manager_id"] is not None for r in employees)


async def test_the_same_seed_gives_the_same_keys_and_references(llm):
    first = await generate(llm, SHOP, seed=9)
    second = await generate(llm, SHOP, seed=9)
    keys = lambda rows: [(r["customer_id"], r["id"]) for r in rows["orders"]]  # noqa: E731
    assert keys(first[1]) == keys(second[1])


# -- the command line -----------------------------------------------------------------------
def dataset_file(tmp_path, data=SHOP):
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(data))
    return path


def test_cli_generates_a_dataset(tmp_path, server_process):
    done = cli("generate", str(dataset_file(tmp_path)), "--backend", "openai", "--model", "test-model",
               "--base-url", server_process.url + "/v1", "--seed", "1", "-q")
    assert done.returncode == 0, done.stderr
    assert "done" in done.stderr and "order_items" in done.stderr
    cycle = shop(customers__schema__last_order={"type": "integer", "x-ref": "orders.id"})
    refused = cli("generate", str(dataset_file(tmp_path, cycle)))
    assert refused.returncode == 2 and "cycle" in refused.stderr


def test_sigkill_mid_dataset_then_resume_ends_complete_and_consistent(tmp_path):
    slow = ServerProcess("--delay", "0.05")
    try:
        url = slow.url + "/v1"
        data_dir = tmp_path / "data"
        args = ["generate", str(dataset_file(tmp_path)), "--backend", "openai", "--model", "test-model",
                "--base-url", url, "--batch-size", "1", "--concurrency", "2", "--data-dir", str(data_dir), "-q"]
        child = subprocess.Popen([sys.executable, "-m", "synth_tui", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:  # killed part way through the third table (orders): two done, one begun
            poll(lambda: tables_with_records(data_dir) >= 3, timeout=60, what="the orders table to begin")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        with Store(data_dir) as store:
            [doc] = store.list_runs()
            assert store.get_run(doc["id"])["status"] == "interrupted"
        resumed = cli("resume", doc["id"], "--data-dir", str(data_dir), "--base-url", url, "-q", timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        with Store(data_dir) as store:
            doc = store.get_run(doc["id"])
            assert doc["status"] == "done"
            with Store(tables_dir(store, doc["id"])) as tables:
                rows = {name: list(tables.iter_records(t["run_id"])) if t["run_id"] else []
                        for name, t in doc["tables"].items()}
        assert_consistent(rows)
        assert len(rows["customers"]) == 12 and len(rows["products"]) == 6
        assert sum(t["accepted"] for t in doc["tables"].values()) == sum(len(r) for r in rows.values())
    finally:
        slow.stop()


def tables_with_records(data_dir) -> int:
    """Table runs of the dataset that have journalled a record."""
    return sum(1 for path in data_dir.glob("runs/*/tables/runs/*/records.jsonl") if path.stat().st_size > 0)


def poll(condition, *, timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds (checked every 20 ms), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


async def test_a_generator_only_table_whose_rows_repeat_draws_them_again(llm):
    data = {"tables": {
        "products": {"count": 2, "primary_key": "sku", "schema": {"sku": {"type": "integer"}}},
        "orders": {"count": 30, "primary_key": "id", "schema": {"id": {"type": "integer"}}},
        "order_items": {"per": {"orders": {"min": 3, "max": 6}}, "schema": {
            "order_id": {"type": "integer", "x-ref": "orders.id"},
            "product_sku": {"type": "integer", "x-ref": "products.sku"},
            "qty": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 3}}}}},
    }}
    result, rows = await generate(llm, data)
    assert result.success, result.error
    assert llm.count_requests == 0
    assert len(rows["order_items"]) == result.tables[-1].requested


def test_cli_export_and_report_of_a_dataset_run(tmp_path, server_process):
    import sqlite3

    data_dir = str(tmp_path / "data")
    done = cli("generate", str(dataset_file(tmp_path)), "--backend", "openai", "--model", "test-model",
               "--base-url", server_process.url + "/v1", "--seed", "2", "-q", "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    with Store(data_dir) as store:
        [doc] = store.list_runs()
    db = tmp_path / "shop.db"
    exported = cli("--data-dir", data_dir, "export", doc.id, "-o", str(db))
    assert exported.returncode == 0, exported.stderr
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from customers").fetchone()[0] == 12
        assert con.execute("pragma foreign_key_check").fetchall() == []
    folder = cli("--data-dir", data_dir, "export", doc.id, "-o", str(tmp_path / "csv"), "--format", "csv")
    assert folder.returncode == 0 and (tmp_path / "csv" / "order_items.csv").exists()
    report = cli("--data-dir", data_dir, "report", doc.id, "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)


def test_a_deeply_nested_file_naming_tables_is_exit_2_not_a_traceback(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"tables": ' + "[" * 100_000 + "]" * 100_000 + "}")
    done = cli("generate", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "deep" in done.stderr


@pytest.mark.parametrize("edit", [{"dataset_seed": "x"}, {"tables": {"customers": {"requested": "many"}}},
                                  {"config": {"count": "lots"}}])
def test_a_hand_edited_dataset_run_resumes_or_says_why_never_a_traceback(tmp_path, edit):
    data_dir = tmp_path / "data"
    with Store(data_dir) as store:
        store.create_run({"kind": "dataset", "schema": SHOP, "config": {"count": 1}, "backend": {"backend": "openai",
                          "model": "test-model", "base_url": "http://127.0.0.1:9/v1"}, "dataset_seed": 4, **edit})
        [doc] = store.list_runs()
        store.update_run(doc.id, status="failed")
    done = cli("resume", doc.id, "--data-dir", str(data_dir), "--base-url", "http://127.0.0.1:9/v1", "-q")
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert done.returncode == 2 or "connect" in done.stderr.lower() or "reach" in done.stderr.lower(), done.stderr
