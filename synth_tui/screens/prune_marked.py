"""Removing the runs marked in the history: a question that says how many records and how
much space they take, then the removal in a thread (many runs take a while, and other
processes' writes go first between its batches). A running run is left alone."""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget

from ..core.errors import SynthError
from ..core.store import PruneResult, Store


def size_text(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n //= 1024
    return f"{n} bytes"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def ask_to_prune(node: Widget, store: Store, run_ids: list[str], done: Callable[[PruneResult], None]) -> None:
    """Ask whether to remove ``run_ids`` (saying what that frees); on yes, remove them in
    a worker of ``node`` and call ``done`` with what went, on the UI thread."""
    from .dialogs import ConfirmDialog

    try:
        preview = store.prune(run_ids=run_ids, dry_run=True)
    except SynthError as exc:
        node.notify(str(exc), severity="error")
        return
    if not preview.ids:
        node.notify("The marked runs are still running: cancel them first.", severity="warning")
        return
    n, skipped = len(preview.ids), len(preview.skipped)
    question = (f"Remove {n} marked run{_s(n)} and {preview.records:,} records? "
                f"That frees about {size_text(preview.freed)}.")
    if skipped:
        question += f" {skipped} running run{_s(skipped)} stay."

    def prune() -> None:
        try:
            result = store.prune(run_ids=preview.ids)
        except SynthError as exc:
            node.app.call_from_thread(node.notify, str(exc), severity="error")
            return
        node.app.call_from_thread(done, result)

    def answered(yes: bool | None) -> None:
        if yes:
            node.run_worker(prune, thread=True, exclusive=True, group="history-prune", exit_on_error=False)

    node.app.push_screen(ConfirmDialog(question), answered)


def pruned_message(result: PruneResult) -> str:
    n, skipped = len(result.ids), len(result.skipped)
    message = f"Removed {n} run{_s(n)} ({result.records:,} records), freed {size_text(result.freed)}."
    if skipped:
        message += f" Left {skipped} running run{_s(skipped)} alone."
    return message
