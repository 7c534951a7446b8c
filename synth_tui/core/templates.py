"""Schema templates: ten built-in realistic domains (generators for structured fields,
the model for language, rules, arrays, enums, formats) and the user's own, kept as JSON
files in ``templates/`` beside the settings file. A user template may not take a
built-in's name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import UserInputError
from .fileio import describe_os_error, write_atomic
from .schema import parse_schema

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
NAME_RULES = "letters, digits, '-' and '_', starting with a letter or digit, up to 64 characters"

def _fake(provider: str, **spec: Any) -> dict[str, Any]:
    return {"type": "string", "x-generator": {"fake": provider, **spec}}


def _date(start: str, end: str, fmt: str = "date") -> dict[str, Any]:
    kind = "date" if fmt == "date" else "datetime"
    return {"type": "string", "format": fmt, "x-generator": {kind: {"from": start, "to": end}}}


def _weights_int(values: dict[int, float]) -> dict[str, Any]:
    return {"type": "integer", "enum": list(values), "x-generator": {"weights": {str(k): v for k, v in values.items()}}}


def _weights(values: dict[str, float]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "x-generator": {"weights": values}}


UUID = {"type": "string", "format": "uuid", "x-generator": "uuid"}

# Generators fill the structured fields (names, addresses, ids, dates, amounts), fast and
# varied; the model writes what needs language, consistent with them. Each template keeps
# at least one field for the model.
TEMPLATES: dict[str, dict[str, Any]] = {
    "customers": {
        "id": UUID,
        "first_name": _fake("first_name"),
        "last_name": _fake("last_name"),
        "email": {"type": "string", "format": "email",
                  "x-generator": {"template": "{first_name}.{last_name}@example.com"}},
        "age": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
        "plan": _weights({"free": 0.55, "pro": 0.3, "team": 0.1, "enterprise": 0.05}),
        "signup_date": _date("2019-01-01", "2025-12-31"),
        "street": _fake("street_address"),
        "city": _fake("city"),
        "postcode": _fake("postcode"),
        "country": _fake("country"),
        "notes": {"type": "string", "description": "one or two sentences an account manager wrote about this customer"},
    },
    "products": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "name": {"type": "string", "description": "the product's name as a shop lists it"},
        "category": _weights({"books": 0.2, "garden": 0.15, "kitchen": 0.2, "toys": 0.15, "electronics": 0.15,
                              "sports": 0.15}),
        "price": {"type": "number", "minimum": 0.5, "maximum": 2000,
                  "x-generator": {"lognormal": {"mean": 3.4, "sigma": 0.9}}},
        "in_stock": {"type": "boolean", "x-generator": {"bool": 0.85}},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
    },
    "orders": {
        "type": "object",
        "$defs": {
            "line_item": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 20},
                    "unit_price": {"type": "number", "minimum": 0.5, "maximum": 500},
                },
                "required": ["sku", "quantity", "unit_price"],
            }
        },
        "properties": {
            "order_id": UUID,
            "customer_email": {"type": "string", "format": "email", "x-generator": {"fake": "email"}},
            "placed_at": _date("2024-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "date-time"),
            "status": _weights({"pending": 0.1, "paid": 0.2, "shipped": 0.25, "delivered": 0.4, "returned": 0.05}),
            "items": {"type": "array", "items": {"$ref": "#/$defs/line_item"}, "minItems": 1, "maxItems": 5},
        },
        "required": ["order_id", "customer_email", "placed_at", "status", "items"],
    },
    "support_tickets": {
        "ticket_id": {"type": "integer", "minimum": 100000, "x-generator": {"sequence": {"start": 100000}}},
        "customer_name": _fake("name"),
        "customer_email": {"type": "string", "format": "email", "x-generator": {"fake": "email"}},
        "priority": _weights({"low": 0.3, "normal": 0.45, "high": 0.2, "urgent": 0.05}),
        "channel": _weights({"email": 0.4, "chat": 0.3, "phone": 0.2, "web": 0.1}),
        "opened_at": _date("2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "date-time"),
        "subject": {"type": "string", "maxLength": 80},
        "body": {"type": "string", "description": "the customer's message, matching the subject and priority"},
    },
    "events": {
        "timestamp": _date("2025-06-01T00:00:00Z", "2025-06-30T23:59:59Z", "date-time"),
        "level": _weights({"DEBUG": 0.2, "INFO": 0.6, "WARN": 0.15, "ERROR": 0.05}),
        "service": _weights({"api": 0.35, "auth": 0.15, "billing": 0.1, "search": 0.25, "worker": 0.15}),
        "client_ip": {"type": "string", "format": "ipv4", "x-generator": {"fake": "ipv4"}},
        "latency_ms": {"type": "integer", "minimum": 1, "maximum": 5000,
                       "x-generator": {"lognormal": {"mean": 4.0, "sigma": 1.0}}},
        "message": {"type": "string", "description": "the log line, fitting the level and the service"},
    },
    "medical_records": {
        "patient_id": UUID,
        "date_of_birth": _date("1930-01-01", "2024-12-31"),
        "sex": _weights({"female": 0.49, "male": 0.49, "other": 0.01, "unknown": 0.01}),
        "blood_type": _weights({"O+": 0.37, "A+": 0.36, "B+": 0.09, "AB+": 0.03, "O-": 0.07, "A-": 0.06,
                                "B-": 0.015, "AB-": 0.005}),
        "department": _weights({"cardiology": 0.2, "neurology": 0.15, "oncology": 0.15, "pediatrics": 0.2,
                                "general": 0.3}),
        "visit_date": _date("2024-01-01", "2025-12-31"),
        "heart_rate": {"type": "integer", "minimum": 40, "maximum": 180,
                       "x-generator": {"normal": {"mean": 76, "stdev": 12}}},
        "diagnosis": {"type": "string", "description": "a plausible diagnosis for the department and age"},
        "medications": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "x-rules": ["visit_date > date_of_birth"],
    },
    "employees": {
        "employee_id": {"type": "integer", "minimum": 10000, "x-generator": {"sequence": {"start": 10000}}},
        "name": _fake("name"),
        "department": _weights({"engineering": 0.35, "sales": 0.25, "finance": 0.1, "support": 0.2, "legal": 0.1}),
        "salary": {"type": "integer", "minimum": 30000, "maximum": 250000,
                   "x-generator": {"lognormal": {"mean": 11.1, "sigma": 0.35}}},
        "start_date": _date("2010-01-01", "2025-12-31"),
        "title": {"type": "string", "description": "a job title that fits the department and salary"},
        "skills": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
    },
    "reviews": {
        "product": {"type": "string"},
        "rating": _weights_int({1: 0.08, 2: 0.07, 3: 0.15, 4: 0.3, 5: 0.4}),
        "verified_purchase": {"type": "boolean", "x-generator": {"bool": 0.8}},
        "reviewed_on": _date("2023-01-01", "2025-12-31"),
        "title": {"type": "string", "maxLength": 60},
        "text": {"type": "string", "description": "the review, in the tone its rating suggests"},
    },
    "transactions": {
        "transaction_id": UUID,
        "account": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{10}$"},
        "amount": {"type": "number", "minimum": -5000, "maximum": 5000,
                   "x-generator": {"normal": {"mean": -40, "stdev": 400}}},
        "currency": _weights({"EUR": 0.45, "USD": 0.35, "GBP": 0.15, "JPY": 0.05}),
        "merchant_category": _weights({"grocery": 0.35, "travel": 0.1, "dining": 0.2, "utilities": 0.15,
                                       "retail": 0.2}),
        "booked_at": _date("2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "date-time"),
        "merchant": {"type": "string", "description": "the merchant's name, fitting its category"},
    },
    "real_estate": {
        "listing_id": {"type": "integer", "minimum": 100000, "x-generator": {"sequence": {"start": 100000}}},
        "kind": _weights({"apartment": 0.5, "house": 0.3, "studio": 0.12, "loft": 0.08}),
        "bedrooms": {"type": "integer", "minimum": 0, "maximum": 6, "x-generator": {"uniform": {"min": 0, "max": 6}}},
        "area_m2": {"type": "number", "minimum": 15, "maximum": 400,
                    "x-generator": {"lognormal": {"mean": 4.4, "sigma": 0.45}}},
        "price": {"type": "integer", "minimum": 50000, "maximum": 3000000,
                  "x-generator": {"lognormal": {"mean": 12.9, "sigma": 0.6}}},
        "street": _fake("street_address"),
        "city": _fake("city"),
        "postcode": _fake("postcode"),
        "description": {"type": "string", "description": "the listing's text, fitting its kind, size and price"},
        "features": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "x-rules": ["kind != 'studio' or bedrooms <= 1"],
    },
}


def user_templates_dir() -> Path:
    from .config import settings_path

    return settings_path().parent / "templates"


def user_template_names() -> list[str]:
    folder = user_templates_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if NAME.match(p.stem))  # only names save() gives


def template_names() -> list[str]:
    """Built-in templates first, then the user's."""
    return list(TEMPLATES) + [n for n in user_template_names() if n not in TEMPLATES]


def is_builtin(name: str) -> bool:
    return name in TEMPLATES


def _user_path(name: str) -> Path:
    """The file of the user's template ``name``; a name that is not one (``../x``) is refused."""
    if not NAME.match(name):
        raise UserInputError(f"no template named {name!r}: `synth-tui templates` lists them")
    return user_templates_dir() / f"{name}.json"


def template_text(name: str) -> str:
    if name in TEMPLATES:
        return json.dumps(TEMPLATES[name], indent=2, ensure_ascii=False)
    path = _user_path(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"no template named {name!r}: `synth-tui templates` lists them") from None


def save_template(name: str, text: str, *, force: bool = False) -> Path:
    """Check the schema, then keep it as the user's template ``name``."""
    if not NAME.match(name):
        raise UserInputError(f"template name {name!r}: use {NAME_RULES}")
    if name in TEMPLATES:
        raise UserInputError(f"{name!r} is a built-in template: choose another name")
    from .dataset.templates import dataset_names  # (the dataset package is heavier: only when saving)

    if name in dataset_names():
        raise UserInputError(f"{name!r} is a built-in dataset template: choose another name")
    parse_schema(text, f"template {name}")
    folder = user_templates_dir()
    path = folder / f"{name}.json"
    if path.exists() and not force:
        raise UserInputError(f"template {name!r} exists", cli="use --force to replace it",
                             tui="choose another name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    except OSError as exc:
        raise UserInputError(describe_os_error(exc, path)) from None
    return path


def delete_template(name: str) -> None:
    if name in TEMPLATES:
        raise UserInputError(f"{name!r} is a built-in template and cannot be deleted")
    path = _user_path(name)
    try:
        path.unlink()
    except FileNotFoundError:
        raise UserInputError(f"no template of yours named {name!r}") from None
