"""The history's preview pane: the selected run's details, and its records a page at a
time (read from its journal by counting lines, so the last page is as quick as the first).
"""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from ..core.store import Store
from ..core.textsafe import plain
from .progress import short
from .tables import fill_table

PAGE_SIZE = 20
RECORD_COLUMN_WIDTH = 20  # every records column as wide: they do not jump between pages


def preview_lines(doc: dict[str, Any]) -> list[str]:
    """What the preview says of a run (plain text: the caller makes it harmless)."""
    counts = doc.get("counts", {})
    config = doc.get("config", {})
    params = config.get("params", {})
    backend = doc.get("backend", {})
    lines = [
        f"Run {doc['id']} · {doc.get('status')}",
        f"{backend.get('backend')} {backend.get('model') or ''} {backend.get('base_url') or ''}".rstrip(),
        f"accepted {counts.get('accepted', 0)}/{counts.get('requested', 0)} · rejected {counts.get('rejected', 0)}"
        f" · duplicates {counts.get('duplicates', 0)} · retries {counts.get('retries', 0)}",
        f"tokens {counts.get('prompt_tokens', 0) + counts.get('completion_tokens', 0):,} · "
        f"per request {config.get('batch_size') or 'auto'} · concurrency {config.get('concurrency')} · "
        f"temperature {params.get('temperature', '-')} · seed {params.get('seed', '-')}",
    ]
    if doc.get("error"):
        lines.append(f"error: {doc['error']}")
    lines.append("Enter: quality report · m: mark for comparison")
    lines.append("schema: " + json.dumps(doc.get("schema"), ensure_ascii=False))
    return lines


class RunPreview(Vertical):
    """The selected run's details and page ``page`` of its records."""

    def __init__(self) -> None:
        super().__init__(id="preview-pane")
        self.page = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="preview-scroll"):
            yield Static("", id="preview")
        yield Static("", id="page-line")
        yield DataTable(id="records", zebra_stripes=True, cursor_type="row")

    def show(self, doc: dict[str, Any] | None, store: Store | None, empty: str) -> None:
        """Show run ``doc`` (None: the text ``empty``) and its page of records."""
        preview = self.query_one("#preview", Static)
        records = self.query_one("#records", DataTable)
        records.clear(columns=True)
        if doc is None:
            preview.update(plain(empty))
            self.query_one("#page-line", Static).update("")
            return
        preview.update(plain("\n".join(preview_lines(doc))))
        page = store.read_page(doc["id"], self.page * PAGE_SIZE, PAGE_SIZE) if store else []
        first = self.page * PAGE_SIZE + 1
        # a running run saves its count every few seconds: never show fewer than are on screen
        total = max(doc.get("counts", {}).get("accepted", 0), first + len(page) - 1)
        self.query_one("#page-line", Static).update(
            f"records {first}-{first + len(page) - 1} of {total} ([ ])" if page else "no records")
        if page:
            columns = list((doc.get("schema") or {}).get("properties") or page[0])[:6]
            fill_table(records, [plain(c, one_line=True) for c in columns],
                       [[short(r.get(c), RECORD_COLUMN_WIDTH) for c in columns] for r in page],
                       fixed_width=RECORD_COLUMN_WIDTH)

    def turn(self, doc: dict[str, Any], step: int) -> None:
        """The next (``step`` 1) or previous (-1) page of ``doc``'s records, within them."""
        pages = max(1, -(-doc.get("counts", {}).get("accepted", 0) // PAGE_SIZE))
        self.page = max(0, min(pages - 1, self.page + step))
