"""An estimate's projection for people, the same words in the CLI and the TUI: the pilot's
figures, then tokens, cost (with its range) and time. Plain text: no markup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .estimate import Pilot, Projection, Span, project
from .pricing import usd

NO_PRICE_HINT = {
    "cli": "pass --price INPUT,OUTPUT in USD per million tokens, or set \"prices\" in the settings file",
    "tui": "set the model's price under \"prices\" in the settings file",
}


def pilot_projection(pilot: Any, result: Any, answers: Any, config: Any) -> Projection:
    """What ``config.count`` records take, from a finished pilot ``Run``, its result and
    the answers its AnswerLog kept."""
    limit = pilot.backend.max_concurrency or config.concurrency
    measured = Pilot(result.run_id, result.accepted, result.prompt_tokens, result.completion_tokens, result.elapsed)
    return project(answers, measured, count=config.count, batch_size=pilot.planner.batch_size,
                   concurrency=min(config.concurrency, limit), price=pilot.price)


def projection_text(p: Projection, kind: str, surface: str = "cli") -> str:
    """The projection: the pilot's figures, then tokens, cost and time. ``surface`` ("cli"
    or "tui") picks the hint for a missing price."""
    requests = round(p.requests.mid)
    lines = [
        f"pilot {p.pilot.run_id}: {p.pilot.accepted} records from {plural(p.answers, 'answer')}, "
        f"{p.tokens_per_record:,.0f} tokens a record, {p.records_per_s:.2f} records/s",
        f"{p.count} records ({requests} more {'request' if requests == 1 else 'requests'} of up to "
        f"{plural(p.batch_size, 'record')}, {p.concurrency} at once):",
    ]
    if kind != "local" or surface == "cli":  # the TUI's estimate of the embedded model: time only
        lines.append(f"  tokens  {span_text(p.tokens, lambda v: f'{v:,.0f}')}")
        lines.append(f"  cost    {cost_line(p, kind, surface)}")
    lines.append(f"  time    {span_text(p.seconds, duration)} to finish")
    if (p.answers < 3 or p.pilot.accepted < 20) and requests:
        more = "a larger --pilot narrows it" if surface == "cli" else "a larger pilot narrows it"
        lines.append(f"  (a pilot of {plural(p.pilot.accepted, 'record')} from {plural(p.answers, 'answer')} measures "
                     f"little, so the range is wide: {more})")
    return "\n".join(lines)


def cost_line(p: Projection, kind: str, surface: str = "cli") -> str:
    if p.cost is not None and p.price is not None:
        return f"{span_text(p.cost, usd)}  at {p.price.text()}"
    if kind == "local":
        return "none: the embedded model runs here"
    return f"unknown: no price ({NO_PRICE_HINT[surface]})"


def span_text(span: Span, fmt: Callable[[float], str]) -> str:
    if fmt(span.low) == fmt(span.high):
        return fmt(span.mid)
    return f"{fmt(span.mid)}  ({fmt(span.low)} to {fmt(span.high)})"


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if m else f"{hours} h"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
