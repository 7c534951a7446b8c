"""Built-in datasets: shop, company and helpdesk. Keys and references are the engine's,
structured fields are drawn by generators, and the model writes the language, each
record with its parent row in view (an order's currency fits its customer's country)."""

from __future__ import annotations

import json
from typing import Any

UUID = {"type": "string", "format": "uuid", "x-generator": "uuid"}


def _fake(provider: str) -> dict[str, Any]:
    return {"type": "string", "x-generator": {"fake": provider}}


def _seq(start: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": start, "x-generator": {"sequence": {"start": start}}}


def _date(start: str, end: str, fmt: str = "date") -> dict[str, Any]:
    kind = "date" if fmt == "date" else "datetime"
    return {"type": "string", "format": fmt, "x-generator": {kind: {"from": start, "to": end}}}


def _pick(values: dict[str, float]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "x-generator": {"weights": values}}


DATASETS: dict[str, dict[str, Any]] = {
    "shop": {"tables": {
        "customers": {"count": 200, "primary_key": "id", "schema": {
            "id": UUID, "name": _fake("name"), "email": {"type": "string", "format": "email",
                                                        "x-generator": {"fake": "email"}},
            "country": _fake("country"), "since": _date("2019-01-01", "2025-12-31")}},
        "products": {"count": 50, "primary_key": "sku", "schema": {
            "sku": {"type": "string", "x-generator": {"fake": "ean13"}},
            "category": _pick({"books": 0.25, "kitchen": 0.25, "garden": 0.2, "toys": 0.15, "sports": 0.15}),
            "price": {"type": "number", "minimum": 1, "maximum": 2000, "multipleOf": 0.01,
                      "x-generator": {"lognormal": {"mean": 3.3, "sigma": 0.8}}},
            "title": {"type": "string", "description": "its name as the shop lists it, fitting its category"}}},
        "orders": {"per": {"customers": {"min": 0, "max": 5}}, "primary_key": "id", "schema": {
            "id": _seq(1), "customer_id": {"type": "string", "x-ref": "customers.id"},
            "placed_at": _date("2024-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "date-time"),
            "status": _pick({"paid": 0.2, "shipped": 0.3, "delivered": 0.45, "returned": 0.05}),
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "JPY", "CAD", "AUD", "CHF"],
                         "description": "the currency of the customer's country"}}},
        "order_items": {"per": {"orders": {"min": 1, "max": 4}}, "schema": {
            "order_id": {"type": "integer", "x-ref": "orders.id"},
            "product_sku": {"type": "string", "x-ref": "products.sku"},
            "qty": {"type": "integer", "minimum": 1, "maximum": 5, "x-generator": {"uniform": {"min": 1, "max": 5}}},
            "gift_note": {"type": "string", "maxLength": 120, "description": "a short note, or empty"}}},
    }},
    "company": {"tables": {
        "departments": {"count": 8, "primary_key": "id", "schema": {
            "id": _seq(1), "name": {"type": "string", "description": "a department of a mid-sized company"},
            "budget": {"type": "integer", "minimum": 100000, "maximum": 20000000,
                       "x-generator": {"lognormal": {"mean": 14.5, "sigma": 0.7}}}}},
        "employees": {"per": {"departments": {"min": 5, "max": 25}}, "primary_key": "id", "schema": {
            "id": _seq(1000), "department_id": {"type": "integer", "x-ref": "departments.id"},
            "manager_id": {"type": ["integer", "null"], "x-ref": "employees.id"},
            "name": _fake("name"), "email": {"type": "string", "format": "email", "x-generator": {"fake": "email"}},
            "hired": _date("2010-01-01", "2025-12-31"),
            "title": {"type": "string", "description": "a job title that fits the department"}}},
    }},
    "helpdesk": {"tables": {
        "customers": {"count": 100, "primary_key": "id", "schema": {
            "id": UUID, "name": _fake("name"), "company": _fake("company"),
            "plan": _pick({"free": 0.5, "pro": 0.35, "enterprise": 0.15})}},
        "tickets": {"per": {"customers": {"min": 0, "max": 4}}, "primary_key": "id", "schema": {
            "id": _seq(10000), "customer_id": {"type": "string", "x-ref": "customers.id"},
            "opened_at": _date("2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "date-time"),
            "priority": _pick({"low": 0.3, "normal": 0.45, "high": 0.2, "urgent": 0.05}),
            "subject": {"type": "string", "maxLength": 80}}},
        "messages": {"per": {"tickets": {"min": 1, "max": 5}}, "schema": {
            "ticket_id": {"type": "integer", "x-ref": "tickets.id"},
            "author": _pick({"customer": 0.55, "agent": 0.45}),
            "body": {"type": "string", "description": "the message, continuing the ticket's subject"}}},
    }},
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def dataset_text(name: str) -> str:
    return json.dumps(DATASETS[name], indent=2, ensure_ascii=False)
