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

from .base import FieldGenerator, FieldShape, SpecProblem, shown

DEFAULT_LOCALE = "en_US"


class Fake(FieldGenerator):
    """One Faker provider in one locale.

    The generator draws each element uniformly (``use_weighting=False``): en_US's weighted
    first names cost 33 us a value against 0.9 us unweighted, and spread over the same
    names. A provider relative to today (``date_this_year``) depends on the day it runs.
    Not for drawing from two threads at once: the rng is handed to the shared generator
    just before each value."""

    kind = "fake"

    def __init__(self, provider: Any, locale: Any, shape: FieldShape, library: FakerLibrary) -> None:
        if not isinstance(provider, str) or not provider:
            raise SpecProblem(f'fake takes the name of a Faker provider, like "email", not {shown(provider)}')
        self.provider = provider
        self.locale = library.locale_name(locale)
        self.generator = library.generator(self.locale)
        self.method = library.provider(self.generator, provider, self.locale)
        del shape  # the sample check compares values with the field

    def draw(self, rng: random.Random) -> Any:
        self.generator.random = rng
        value = self.method()
        return value if type(value) is str else jsonable(value, self.provider)

    def describe(self) -> str:
        return f"fake {self.provider!r}" + (f" ({self.locale})" if self.locale != DEFAULT_LOCALE else "")


class FakerLibrary:
    """Faker generators for one compiled schema, one per locale (each takes ~20 ms to build),
    and the names of their providers."""

    def __init__(self) -> None:
        self._generators: dict[str, Any] = {}
        self._providers: dict[str, dict[str, Any]] = {}

    def locale_name(self, locale: Any) -> str:
        if locale is None:
            return DEFAULT_LOCALE
        known = available_locales()
        if not isinstance(locale, str):
            raise SpecProblem(f'"locale" must be a locale name like "de_DE", not {shown(locale)}')
        name = locale.replace("-", "_")
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else (
                f"; Faker has {len(known)}, like de_DE, fr_FR, ja_JP")
            raise SpecProblem(f"Faker has no locale {locale[:40]!r}{hint}")
        return name

    def generator(self, locale: str) -> Any:
        if locale not in self._generators:
            from faker import Factory

            self._generators[locale] = Factory.create(locale, use_weighting=False)
        return self._generators[locale]

    def provider(self, generator: Any, name: str, locale: str) -> Any:
        """The bound method of provider ``name``, or SpecProblem naming the nearest names."""
        providers = self._providers.get(locale)
        if providers is None:
            providers = self._providers[locale] = _providers_of(generator)
        if name not in providers:
            near = difflib.get_close_matches(name, sorted(providers), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(near)}?" if near else (
                "; it has first_name, last_name, email, phone_number, street_address, city, country, postcode, "
                "company, job, url, ipv4 and more")
            raise SpecProblem(f"Faker has no provider {name[:60]!r}{hint}")
        return providers[name]


_locales: frozenset[str] | None = None
_lock = threading.Lock()


def available_locales() -> frozenset[str]:
    global _locales
    with _lock:
        if _locales is None:
            from faker.config import AVAILABLE_LOCALES

            _locales = frozenset(AVAILABLE_LOCALES)
        return _locales


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
