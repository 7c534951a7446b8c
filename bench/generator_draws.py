"""How fast field generators draw, without the engine: records/s per generator kind and for
a record whose every field has a generator, then Faker and Mimesis side by side.

  per kind      one field of each kind, ``--records`` values from one seeded rng
  whole record  uuid, sequence, fake first_name/last_name/email/city, normal age, weights
                plan, date, bool and a template email: draw() + fill() per record
  libraries     each provider the issue names, in en_US and de_DE: microseconds per value
                with every value drawn from the run's rng (Faker: the rng handed to its
                generator, weighted and unweighted; Mimesis: its Random reseeded from the
                rng for each value, as a reproducible run would need), the share of distinct
                values and of the most common value over ``--values`` draws, and the
                number of locales. Mimesis is optional: pip install mimesis to compare.

    python bench/generator_draws.py [--records 100000] [--values 10000] [--no-libraries]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_tui.core.generators import Generated, compile_generators  # noqa: E402
from synth_tui.core.schema import check_schema  # noqa: E402

KINDS: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "x-generator": "uuid"},
    "sequence": {"type": "integer", "x-generator": {"sequence": {"start": 1000}}},
    "uniform": {"type": "integer", "x-generator": {"uniform": {"min": 0, "max": 10}}},
    "normal": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
    "lognormal": {"type": "number", "minimum": 0, "multipleOf": 0.01,
                  "x-generator": {"lognormal": {"mean": 3.5, "sigma": 0.6}}},
    "weights": {"enum": ["free", "pro", "team"], "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}},
    "date": {"type": "string", "format": "date", "x-generator": {"date": {"from": "2020-01-01", "to": "2025-12-31"}}},
    "datetime": {"type": "string", "format": "date-time",
                 "x-generator": {"datetime": {"from": "2020-01-01", "to": "2025-12-31"}}},
    "bool": {"type": "boolean", "x-generator": {"bool": 0.3}},
    "fake city": {"type": "string", "x-generator": {"fake": "city"}},
    "fake email": {"type": "string", "x-generator": {"fake": "email"}},
    "fake de_DE street": {"type": "string", "x-generator": {"fake": "street_address", "locale": "de_DE"}},
}
RECORD: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
    "no": {"type": "integer", "x-generator": {"sequence": {"start": 1000}}},
    "first_name": {"type": "string", "x-generator": {"fake": "first_name"}},
    "last_name": {"type": "string", "x-generator": {"fake": "last_name"}},
    "contact": {"type": "string", "format": "email", "x-generator": {"fake": "email"}},
    "city": {"type": "string", "x-generator": {"fake": "city"}},
    "age": KINDS["normal"],
    "plan": KINDS["weights"],
    "signup": KINDS["date"],
    "active": KINDS["bool"],
    "email": {"type": "string", "format": "email",
              "x-generator": {"template": "{first_name}.{last_name}.{no}@example.com"}},
}
PROVIDERS = ("first_name", "last_name", "email", "phone_number", "street_address", "city", "country", "postcode",
             "company", "job", "url", "ipv4")
MIMESIS_NAMES = {"first_name": ("Person", "first_name"), "last_name": ("Person", "last_name"),
                 "email": ("Person", "email"), "phone_number": ("Person", "phone_number"),
                 "street_address": ("Address", "address"), "city": ("Address", "city"),
                 "country": ("Address", "country"), "postcode": ("Address", "postal_code"),
                 "company": ("Finance", "company"), "job": ("Person", "occupation"), "url": ("Internet", "url"),
                 "ipv4": ("Internet", "ip_v4")}


def compiled(fields: dict[str, Any]) -> Generated:
    return compile_generators(check_schema(fields, "bench").schema, "bench")


def records_per_second(generated: Generated, count: int) -> float:
    rng = random.Random(1)
    draw, fill = generated.draw, generated.fill
    started = time.perf_counter()
    for position in range(count):
        fill(draw(rng), position)
    return count / (time.perf_counter() - started)


def per_kind(count: int) -> None:
    print(f"per kind: {count:,} values from one field")
    for kind, field in KINDS.items():
        print(f"  {kind:<18} {records_per_second(compiled({'f': field}), count):>12,.0f} values/s")
    template = {"first_name": {"type": "string"}, "last_name": {"type": "string"},
                "email": RECORD["email"] | {"x-generator": {"template": "{first_name}.{last_name}@example.com"}}}
    generated = compiled(template)
    record = {"first_name": "Jürgen", "last_name": "Groß-Müller"}
    started = time.perf_counter()
    for position in range(count):
        generated.fill(record, position)
    print(f"  {'template':<18} {count / (time.perf_counter() - started):>12,.0f} values/s  (non-ASCII names)")


def whole_record(count: int) -> None:
    generated = compiled(RECORD)
    started = time.perf_counter()
    rate = records_per_second(generated, count)
    print(f"\nwhole record ({len(RECORD)} fields, every one generated): {count:,} records in "
          f"{time.perf_counter() - started:.2f} s = {rate:,.0f} records/s")


def measure(draw: Callable[[random.Random], Any], count: int) -> tuple[float, float, float]:
    """(microseconds per value, share of distinct values, share of the most common value)."""
    rng = random.Random(7)
    started = time.perf_counter()
    values = [draw(rng) for _ in range(count)]
    elapsed = time.perf_counter() - started
    top = Counter(values).most_common(1)[0][1]
    return elapsed / count * 1e6, len(set(values)) / count, top / count


def faker_draws(locale: str, weighted: bool) -> dict[str, Callable[[random.Random], Any]]:
    from faker import Factory

    generator = Factory.create(locale, use_weighting=weighted)

    def one(name: str) -> Callable[[random.Random], Any]:
        method = getattr(generator, name)

        def draw(rng: random.Random) -> Any:
            generator.random = rng
            return method()
        return draw
    return {name: one(name) for name in PROVIDERS}


def mimesis_draws(locale: str) -> dict[str, Callable[[random.Random], Any]] | None:
    try:
        import mimesis
        from mimesis.random import Random as MimesisRandom
    except ImportError:
        return None
    shared = MimesisRandom()
    language = {"en_US": mimesis.Locale.EN, "de_DE": mimesis.Locale.DE}[locale]
    providers = {name: getattr(mimesis, name)(language, random=shared) for name in ("Person", "Address", "Finance")}
    providers["Internet"] = mimesis.Internet(random=shared)

    def one(provider: str, method_name: str) -> Callable[[random.Random], Any]:
        method = getattr(providers[provider], method_name)

        def draw(rng: random.Random) -> Any:
            shared.seed(rng.getrandbits(64))
            return method()
        return draw
    return {name: one(*MIMESIS_NAMES[name]) for name in PROVIDERS}


def libraries(count: int) -> None:
    from faker.config import AVAILABLE_LOCALES

    print(f"\nlibraries: us/value, distinct share, most common value's share over {count:,} draws")
    for locale in ("en_US", "de_DE"):
        columns = {"faker": faker_draws(locale, False), "faker weighted": faker_draws(locale, True)}
        mimesis = mimesis_draws(locale)
        if mimesis is not None:
            columns["mimesis"] = mimesis
        print(f"  {locale:<15}" + "".join(f"{name:>24}" for name in columns))
        for provider in PROVIDERS:
            cells = [measure(column[provider], count) for column in columns.values()]
            row = "".join(f"{us:>8.1f} {distinct:>6.3f} {top:>6.3f}  " for us, distinct, top in cells)
            print(f"  {provider:<15}{row}")
    try:
        import mimesis

        others = f"mimesis {mimesis.__version__}: {len(list(mimesis.Locale))}"
    except ImportError:
        others = "mimesis not installed (pip install mimesis to compare)"
    print(f"  locales: faker: {len(AVAILABLE_LOCALES)}, {others}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--values", type=int, default=10_000)
    parser.add_argument("--no-libraries", action="store_true")
    args = parser.parse_args()
    per_kind(args.records)
    whole_record(args.records)
    if not args.no_libraries:
        libraries(args.values)


if __name__ == "__main__":
    main()
