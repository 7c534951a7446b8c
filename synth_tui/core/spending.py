"""A run's spending and its servers, in words for a progress line, a header or a history
preview: "$0.0123 of $0.0500 budget", "cost unknown", nothing for the embedded model
given no price; and what each endpoint of a pool did. Plain text: callers make it
harmless to show (it may quote a base URL read from the history)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .events import Progress
from .pricing import cost_word, usd


def spent_text(cost: float | None, budget: float | None, kind: str) -> str:
    """"$0.0123", "$0.0123 of $0.0500 budget", "cost unknown" (no price), or "" for the
    embedded model (it runs here: no price per token)."""
    if cost is None:
        return "" if kind == "local" else "cost unknown"
    return usd(cost) + (f" of {usd(budget)} budget" if budget is not None else "")


def progress_spent(progress: Progress, kind: str) -> str:
    return spent_text(progress.cost_usd, progress.budget_usd, kind)


def cost_cell(progress: Progress, kind: str) -> str:
    """A running run's Cost cell in the history, as ``pricing.cost_text`` writes a past run's."""
    return cost_word(progress.cost_usd, kind)


def header_line(progress: Progress, kind: str) -> str:
    """The header's subtitle while a run goes: done, spent (of the budget), rate, rejected."""
    p = progress
    spent = progress_spent(p, kind)  # early in the line: a narrow header cuts its end
    return f"running {p.done}/{p.total}{' · ' + spent if spent else ''} · {p.rate:.1f} rec/s · rejected {p.rejected}"


def endpoint_lines(endpoints: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """One line per server of a pool: its address, requests, answers and failures, and
    its state when it is not up. None or one endpoint: no lines."""
    rows = [e for e in endpoints or () if isinstance(e, Mapping)]
    if len(rows) < 2:
        return []
    lines = []
    for e in rows:
        line = (f"{e.get('base_url') or '?'}: {_n(e, 'requests')} requests, {_n(e, 'answers')} answers, "
                f"{_n(e, 'failures')} failed")
        if _n(e, "set_aside"):
            line += f", set aside {_n(e, 'set_aside')}x"
        state = e.get("state")
        if isinstance(state, str) and state and state != "up":
            line += f" ({state})"
        lines.append(line)
    return lines


def _n(row: Mapping[str, Any], name: str) -> int:
    value = row.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_spent_line(doc: Mapping[str, Any]) -> str:
    """A past run's cost for its preview: "cost $0.0123 of $0.0500 budget", "cost
    unknown (no price)", or "" for the embedded model given no price."""
    from .pricing import cost_text

    text = cost_text(doc)
    if text == "-":
        return ""
    if text == "unknown":
        return "cost unknown (no price)"
    config = doc.get("config")
    budget = config.get("budget") if isinstance(config, Mapping) else None
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        return f"cost {text} of {usd(budget)} budget"
    return f"cost {text}"


def run_endpoint_lines(doc: Mapping[str, Any]) -> list[str]:
    """What each server of a past run's pool did (its counts' ``endpoints``)."""
    counts = doc.get("counts")
    endpoints = counts.get("endpoints") if isinstance(counts, Mapping) else None
    return endpoint_lines(endpoints) if isinstance(endpoints, list) else []
