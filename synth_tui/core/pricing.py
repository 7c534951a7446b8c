"""Prices of models, and what a run's tokens cost.

A price is USD per million prompt (input) and completion (output) tokens, as providers
quote them. Prices come from the user: ``--price IN,OUT`` for a run's model,
``--price MODEL=IN,OUT`` for ``compare``, or ``"prices": {"MODEL": [IN, OUT]}`` in the
settings file (a key may also be ``backend:model``). No price table ships with synth-tui:
prices change often and differ by provider, and a stale built-in price would show a wrong
cost as if it were right. Without a price a cost is unknown (None, shown as "unknown"),
never 0.

A run keeps the price it used in its config (``config.price``) and its cost in its counts
(``counts.cost_usd``): :func:`run_cost` and :func:`cost_text` read them back from a run's
document for history, show, report and compare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UserInputError

MAX_PRICE = 1_000_000.0  # USD per million tokens: past any real model, and keeps costs finite
PRICE_FORM = "INPUT,OUTPUT in USD per million tokens, e.g. 0.15,0.6"


@dataclass(frozen=True)
class Price:
    """USD per million prompt (``input``) and completion (``output``) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for these tokens."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6

    def as_list(self) -> list[float]:
        """The form a run's config and the settings file hold."""
        return [self.input, self.output]

    def text(self) -> str:
        return f"${self.input:g} in / ${self.output:g} out per million tokens"


def checked_price(value: Any, where: str = "price") -> Price:
    """A Price from ``[input, output]``: two finite numbers from 0 to MAX_PRICE, else a
    UserInputError that says where."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserInputError(f"{where}: expected [input, output] USD per million tokens, not {value!r:.80}")
    numbers = []
    for part in value:
        if isinstance(part, bool) or not isinstance(part, (int, float)) or not math.isfinite(part):
            raise UserInputError(f"{where}: {part!r:.40} is not a finite number of USD per million tokens")
        if not 0 <= part <= MAX_PRICE:
            raise UserInputError(f"{where}: {part:g} USD per million tokens is out of range (0 to {MAX_PRICE:g})")
        numbers.append(float(part))
    return Price(numbers[0], numbers[1])


def parse_price(text: str) -> tuple[str | None, Price]:
    """``INPUT,OUTPUT`` or ``MODEL=INPUT,OUTPUT`` (USD per million tokens): the model the
    price names (None when it names none) and the price."""
    model, sep, numbers = text.rpartition("=")
    if sep and not model:
        raise UserInputError(f"price {text!r}: the model name before '=' is empty; write MODEL=INPUT,OUTPUT")
    try:
        parts = [float(x) for x in numbers.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 2:
        raise UserInputError(f"price {text!r}: write {PRICE_FORM} (or MODEL=INPUT,OUTPUT)")
    return (model if sep else None), checked_price(parts, f"price {text!r}")


def price_for(prices: Mapping[str, Any], kind: str, model: str | None) -> Price | None:
    """The settings' price of ``model`` of backend ``kind``: under ``kind:model``, else
    under ``model``; None when there is none (or it is not two numbers)."""
    for key in (f"{kind}:{model}", model or ""):
        if key in prices:
            try:
                return checked_price(list(prices[key]) if isinstance(prices[key], tuple) else prices[key])
            except UserInputError:
                return None
    return None


def run_price(doc: Mapping[str, Any]) -> Price | None:
    """The price a run's document says it was costed at, or None (none, or not valid)."""
    config = doc.get("config")
    value = config.get("price") if isinstance(config, Mapping) else None
    if value is None:
        return None
    try:
        return checked_price(value)
    except UserInputError:
        return None


MAX_TOKENS = 10**15  # tokens a run could count: more is not a count


def run_cost(doc: Mapping[str, Any]) -> float | None:
    """What a run has cost so far in USD (every session, retries and rejected answers
    included), from its tokens at its price; None when it has no price."""
    price = run_price(doc)
    counts = doc.get("counts")
    if price is None or not isinstance(counts, Mapping):
        return None
    return price.cost(_count(counts, "prompt_tokens"), _count(counts, "completion_tokens"))


def cost_text(doc: Mapping[str, Any]) -> str:
    """A run's cost for a table or a line: "$0.0123", "unknown" without a price, "-" for
    a run of the embedded model given no price (it runs here: no price per token)."""
    backend = doc.get("backend")
    kind = backend.get("backend") if isinstance(backend, Mapping) else None
    return cost_word(run_cost(doc), kind)


def cost_word(cost: float | None, kind: Any) -> str:
    """A cost for a table cell: "$0.0123", "-" for the embedded model given no price,
    "unknown" for any other backend without one."""
    if cost is not None:
        return usd(cost)
    return "-" if kind == "local" else "unknown"


def usd(amount: float) -> str:
    """Money for people: cents above a dollar, four decimals above a cent, else six;
    "$?" for what is no amount (a hand-edited history can hold any number)."""
    try:
        amount = float(amount)
    except (OverflowError, TypeError, ValueError):
        return "$?"
    if not math.isfinite(amount) or amount < 0:
        return "$?"
    if amount >= 1:
        return f"${amount:,.2f}"
    if amount >= 0.01:
        return f"${amount:.4f}"
    return f"${amount:.6f}"


def _count(counts: Mapping[str, Any], name: str) -> int:
    value = counts.get(name)
    # a hand-edited history can hold any integer: past MAX_TOKENS it is no count of tokens
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TOKENS else 0
