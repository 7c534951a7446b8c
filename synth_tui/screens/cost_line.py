"""The progress screen's spending line: what the run has spent (of its budget), what each
server of a pool did, and a Batch API run's batch: its status and request counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.widgets import Static

from ..core.events import BatchPolled, Event, Progress
from ..core.spending import endpoint_lines, progress_spent
from ..core.textsafe import plain


def batch_text(event: BatchPolled) -> str:
    total = event.total or "?"
    return (f"batch {event.batch_id}: {event.status}, {event.completed} of {total} requests done, "
            f"{event.failed} failed")


class RunCostLine(Static):
    """Lines under the run's figures; blank for a run that has none of them to say."""

    def __init__(self) -> None:
        super().__init__("", id="run-cost")
        self.kind = ""
        self.progress: Progress | None = None  # the latest: its spending is drawn
        self.batch_status = ""
        self.endpoint_rows: Sequence[Mapping[str, Any]] = ()  # a pool's servers: what each did
        self.costed = True  # False for a dataset run: no price reaches its tables yet

    def reset(self, kind: str) -> None:
        self.kind, self.progress, self.batch_status, self.endpoint_rows = kind, None, "", ()
        self.costed = True
        self.draw()

    def take(self, event: Event) -> None:
        """Keep what an event says of spending or of the batch; draw() shows it (an
        event costs a fast run little: the text is made when drawn)."""
        self.progress = event.progress
        if event.progress.endpoints:
            self.endpoint_rows = event.progress.endpoints
        if isinstance(event, BatchPolled):
            self.batch_status = batch_text(event)

    def spent(self) -> str:
        if self.progress is None or not self.costed:
            return ""
        spent = progress_spent(self.progress, self.kind)
        return f"spent {spent}" if spent and spent != "cost unknown" else spent

    def lines(self) -> list[str]:
        return [line for line in (self.spent(), self.batch_status, *endpoint_lines(self.endpoint_rows)) if line]

    def draw(self) -> None:
        lines = self.lines()
        self.display = bool(lines)
        if self.is_mounted:
            self.update(plain("\n".join(lines)))  # base URLs and batch ids come from outside
