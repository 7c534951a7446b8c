"""Realistic values from Faker: names, addresses, companies, ids, any of its providers by name.

Faker, over Mimesis (bench/generator_draws.py measures both): its generator takes a
``random.Random`` as it is, so every value comes from the run's own rng with no reseeding
(Mimesis keeps a Random per provider and has to be reseeded for each value); its provider
names are one flat namespace (``{"fake": "iban"}``), 282 of them, the issue's names
verbatim; it has 111 locales to Mimesis's 48. Mimesis is faster per value, but both are
far inside the speed target once Faker's frequency weighting is off (below).

Faker is imported only when a schema asks for it: the CLI and the TUI start without it."""

from __future__ import annotations

import difflib
import inspect
import random
import threading
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from .base import FieldGenerator, SpecProblem, shown

DEFAULT_LOCALE = "en_US"


class Fake(FieldGenerator):
    """One Faker provider in one locale.

    The generator draws each element uniformly (``use_weighting=False``): en_US's weighted
    first names cost 33 us a value against 0.9 us unweighted, and spread over the same
    names. A provider relative to today (``date_this_year``) depends on the day it runs.
    One Faker generator per locale serves every schema and run; each value is drawn under
    its lock, with the caller's rng handed to it, so runs in threads do not share draws."""

    kind = "fake"

    def __init__(self, provider: Any, locale: Any) -> None:
        if not isinstance(provider, str) or not provider:
            raise SpecProblem(f'fake takes the name of a Faker provider, like "email", not {shown(provider)}')
        self.provider = provider
        self.locale = locale_name(locale)
        self.faker = FakerLocale.of(self.locale)
        self.method = self.faker.provider(provider)

    def draw(self, rng: random.Random) -> Any:
        with self.faker.lock:
            self.faker.generator.random = rng
            value = self.method()
        return value if type(value) is str else jsonable(value, self.provider)

    def describe(self) -> str:
        return f"fake {self.provider!r}" + (f" ({self.locale})" if self.locale != DEFAULT_LOCALE else "")


def locale_name(locale: Any) -> str:
    """Faker's name for ``locale`` ("de-DE" -> "de_DE"), or SpecProblem naming the nearest."""
    if locale is None:
        return DEFAULT_LOCALE
    if not isinstance(locale, str):
        raise SpecProblem(f'"locale" must be a locale name like "de_DE", not {shown(locale)}')
    from faker.config import AVAILABLE_LOCALES

    name = locale.replace("-", "_")
    if name not in AVAILABLE_LOCALES:
        near = difflib.get_close_matches(name, sorted(AVAILABLE_LOCALES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else (
            f"; Faker has {len(AVAILABLE_LOCALES)}, like de_DE, fr_FR, ja_JP")
        raise SpecProblem(f"Faker has no locale {locale[:40]!r}{hint}")
    return name


class FakerLocale:
    """A Faker generator for one locale (~20 ms to build: built once per process), the lock
    its draws take, and its providers by name."""

    _built: dict[str, FakerLocale] = {}
    _building = threading.Lock()

    def __init__(self, locale: str) -> None:
        from faker import Factory

        self.generator = Factory.create(locale, use_weighting=False)
        self.lock = threading.Lock()
        self.providers = _providers_of(self.generator)

    @classmethod
    def of(cls, locale: str) -> FakerLocale:
        with cls._building:
            if locale not in cls._built:
                cls._built[locale] = cls(locale)
            return cls._built[locale]

    def provider(self, name: str) -> Any:
        """The bound method of provider ``name``, or SpecProblem naming the nearest names."""
        if name not in self.providers:
            near = difflib.get_close_matches(name, sorted(self.providers), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(near)}?" if near else (
                "; it has first_name, last_name, email, phone_number, street_address, city, country, postcode, "
                "company, job, url, ipv4 and more")
            raise SpecProblem(f"Faker has no provider {name[:60]!r}{hint}")
        return self.providers[name]


def _providers_of(generator: Any) -> dict[str, Any]:
    """Every public provider method that can be called without arguments, by name."""
    found: dict[str, Any] = {}
    for provider in generator.get_providers():
        for name in dir(provider):
            if name.startswith("_") or name in found:
                continue
            method = getattr(provider, name, None)
            if callable(method) and _takes_no_arguments(method):
                found[name] = getattr(generator, name, method)
    return found


def _takes_no_arguments(method: Any) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def jsonable(value: Any, provider: str) -> Any:
    """A provider's value as JSON: dates and times in ISO 8601, Decimal as float, tuples as
    lists. Anything else (bytes, sets, objects) is refused: JSON cannot hold it."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SpecProblem(f"fake {provider!r} gave {value}, which JSON cannot hold")
        return value
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return jsonable(float(value), provider)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, provider) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: jsonable(v, provider) for k, v in value.items()}
    raise SpecProblem(f"fake {provider!r} gives {type(value).__name__} values, which JSON cannot hold")
