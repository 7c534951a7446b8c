"""Field generators: values drawn without the model, from ``"x-generator"`` on a top-level
field of a record schema.

    "id":    {"type": "string", "x-generator": "uuid"}
    "no":    {"type": "integer", "x-generator": {"sequence": {"start": 1000, "step": 1}}}
    "age":   {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}}
    "plan":  {"enum": ["free", "pro", "team"], "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}}
    "city":  {"type": "string", "x-generator": {"fake": "city", "locale": "de_DE"}}
    "email": {"type": "string", "x-generator": {"template": "{first_name}.{last_name}@example.com"}}

compile_generators() checks a schema's specs and returns a Generated; the engine draws
from its ``generators``, numbers records with its ``sequences``, renders its ``templates``
and fills ``from_seed`` fields from the seed data. See compile.py for the checks,
numeric.py for how numbers meet the field's bounds, fake.py for the library."""

from .base import FieldGenerator
from .compile import Generated, Sequence, compile_generators
from .template import Template, slugify

__all__ = ["FieldGenerator", "Generated", "Sequence", "Template", "compile_generators", "slugify"]
