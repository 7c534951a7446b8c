"""Schema templates: ten built-in realistic domains (nested objects, arrays, enums,
formats) and the user's own, kept as JSON files in ``templates/`` beside the settings
file. A user template may not take a built-in's name."""

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

TEMPLATES: dict[str, dict[str, Any]] = {
    "customers": {
        "name": {"type": "string", "description": "full name"},
        "email": {"type": "string", "format": "email"},
        "age": {"type": "integer", "minimum": 18, "maximum": 95},
        "plan": {"type": "string", "enum": ["free", "pro", "team", "enterprise"]},
        "signup_date": {"type": "string", "format": "date"},
        "address": {
            "street": {"type": "string"},
            "city": {"type": "string"},
            "country": {"type": "string"},
        },
    },
    "products": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "name": {"type": "string"},
        "category": {"type": "string", "enum": ["books", "garden", "kitchen", "toys", "electronics", "sports"]},
        "price": {"type": "number", "minimum": 0.5, "maximum": 2000},
        "in_stock": {"type": "boolean"},
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
            "order_id": {"type": "string", "format": "uuid"},
            "customer_email": {"type": "string", "format": "email"},
            "placed_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["pending", "paid", "shipped", "delivered", "returned"]},
            "items": {"type": "array", "items": {"$ref": "#/$defs/line_item"}, "minItems": 1, "maxItems": 5},
        },
        "required": ["order_id", "customer_email", "placed_at", "status", "items"],
    },
    "support_tickets": {
        "ticket_id": {"type": "string", "pattern": "^TCK-[0-9]{6}$"},
        "subject": {"type": "string", "maxLength": 80},
        "body": {"type": "string"},
        "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
        "channel": {"type": "string", "enum": ["email", "chat", "phone", "web"]},
        "opened_at": {"type": "string", "format": "date-time"},
        "customer": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
    },
    "events": {
        "timestamp": {"type": "string", "format": "date-time"},
        "level": {"type": "string", "enum": ["DEBUG", "INFO", "WARN", "ERROR"]},
        "service": {"type": "string", "enum": ["api", "auth", "billing", "search", "worker"]},
        "message": {"type": "string"},
        "client_ip": {"type": "string", "format": "ipv4"},
        "latency_ms": {"type": "integer", "minimum": 1, "maximum": 5000},
    },
    "medical_records": {
        "patient_id": {"type": "string", "format": "uuid"},
        "date_of_birth": {"type": "string", "format": "date"},
        "sex": {"type": "string", "enum": ["female", "male", "other", "unknown"]},
        "blood_type": {"type": "string", "enum": ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"]},
        "diagnosis": {"type": "string"},
        "visit": {
            "date": {"type": "string", "format": "date"},
            "department": {"type": "string", "enum": ["cardiology", "neurology", "oncology", "pediatrics", "general"]},
            "heart_rate": {"type": "integer", "minimum": 40, "maximum": 180},
        },
        "medications": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    },
    "employees": {
        "employee_id": {"type": "string", "pattern": "^E[0-9]{5}$"},
        "name": {"type": "string"},
        "department": {"type": "string", "enum": ["engineering", "sales", "finance", "support", "legal"]},
        "title": {"type": "string"},
        "salary": {"type": "integer", "minimum": 30000, "maximum": 250000},
        "start_date": {"type": "string", "format": "date"},
        "skills": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
    },
    "reviews": {
        "product": {"type": "string"},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "title": {"type": "string", "maxLength": 60},
        "text": {"type": "string"},
        "verified_purchase": {"type": "boolean"},
        "reviewed_on": {"type": "string", "format": "date"},
    },
    "transactions": {
        "transaction_id": {"type": "string", "format": "uuid"},
        "account": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{10}$"},
        "amount": {"type": "number", "minimum": -5000, "maximum": 5000},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "JPY"]},
        "merchant": {
            "name": {"type": "string"},
            "category": {"type": "string", "enum": ["grocery", "travel", "dining", "utilities", "retail"]},
        },
        "booked_at": {"type": "string", "format": "date-time"},
    },
    "real_estate": {
        "listing_id": {"type": "string", "pattern": "^L[0-9]{6}$"},
        "kind": {"type": "string", "enum": ["apartment", "house", "studio", "loft"]},
        "bedrooms": {"type": "integer", "minimum": 0, "maximum": 6},
        "area_m2": {"type": "number", "minimum": 15, "maximum": 400},
        "price": {"type": "integer", "minimum": 50000, "maximum": 3000000},
        "address": {"street": {"type": "string"}, "city": {"type": "string"}, "postcode": {"type": "string"}},
        "features": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "listing_url": {"type": "string", "format": "uri"},
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
