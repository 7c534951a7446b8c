"""The history's preview pane: the selected run's details, and its records a page at a
time (read from its journal by counting lines, so the last page is as quick as the first).
"""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from ..core.spending import run_endpoint_lines, run_spent_line
from ..core.store import RunDoc, Store
from ..core.textsafe import plain
from ..table_events import is_dataset_doc
from .dataset_history import DatasetPages, dataset_preview_lines
from .progress import short
from .tables import fill_table

PAGE_SIZE = 20
RECORD_COLUMN_WIDTH = 20  # every records column as wide: they do not jump between pages


def preview_lines(doc: RunDoc) -> list[str]:
    """What the preview says of a run (plain text: the caller makes it harmless)."""
    counts, backend = doc.counts, doc.backend
    temperature, seed = doc.param("temperature"), doc.param("seed")
    lines = [
        f"Run {doc.id} · {doc.status}",
        f"{backend.kind} {backend.model or ''} {_urls(doc)}".rstrip(),
        f"accepted {counts.accepted}/{counts.requested} · rejected {counts.rejected}"
        f" · duplicates {counts.duplicates} · retries {counts.retries}",
        f"tokens {counts.tokens:,} · per request {doc.batch_size or 'auto'} · concurrency {doc.concurrency} · "
        f"temperature {'-' if temperature is None else temperature} · seed {'-' if seed is None else seed}",
    ]
    as_dict = doc.to_dict()
    lines += [line for line in (run_spent_line(as_dict), *run_endpoint_lines(as_dict)) if line]
    if doc.error:
        lines.append(f"error: {doc.error}")
    lines.append("Enter: quality report · m: mark (c compares the marked, x removes them)")
    lines.append("schema: " + json.dumps(doc.schema, ensure_ascii=False))
    return lines


class RunPreview(Vertical):
    """The selected run's details and page ``page`` of its records."""

    def __init__(self) -> None:
        super().__init__(id="preview-pane")
        self.page = 0
        self.datasets = DatasetPages()  # a dataset run's tables: which one is shown

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="preview-scroll"):
            yield Static("", id="preview")
        yield Static("", id="page-line")
        yield DataTable(id="records", zebra_stripes=True, cursor_type="row")

    def show(self, doc: RunDoc | None, store: Store | None, empty: str) -> None:
        """Show run ``doc`` (None: the text ``empty``) and its page of records."""
        preview = self.query_one("#preview", Static)
        records = self.query_one("#records", DataTable)
        records.clear(columns=True)
        if doc is None:
            preview.update(plain(empty))
            self.query_one("#page-line", Static).update("")
            return
        if is_dataset_doc(doc):
            table = self.datasets.shown(doc)
            preview.update(plain("\n".join(dataset_preview_lines(doc, table))))
            page, columns = self.datasets.page(doc, store, self.page * PAGE_SIZE, PAGE_SIZE)
            accepted, label = self.datasets.accepted(doc), f"{table}: "
        else:
            self.datasets.close()  # a dataset run's tables, read-only, are open only while it is shown
            preview.update(plain("\n".join(preview_lines(doc))))
            page = store.read_page(doc.id, self.page * PAGE_SIZE, PAGE_SIZE) if store else []
            properties = doc.schema.get("properties")
            columns = list(properties if isinstance(properties, dict) and properties else page[0] if page else [])
            accepted, label = doc.counts.accepted, ""
        first = self.page * PAGE_SIZE + 1
        # a running run saves its count every few seconds: never show fewer than are on screen
        total = max(accepted, first + len(page) - 1)
        self.query_one("#page-line", Static).update(plain(
            f"{label}records {first}-{first + len(page) - 1} of {total} ([ ])" if page else f"{label}no records",
            one_line=True))
        if page:
            columns = columns[:6]
            fill_table(records, [plain(c, one_line=True) for c in columns],
                       [[short(r.get(c), RECORD_COLUMN_WIDTH) for c in columns] for r in page],
                       fixed_width=RECORD_COLUMN_WIDTH)

    def turn(self, doc: RunDoc, step: int) -> None:
        """The next (``step`` 1) or previous (-1) page of ``doc``'s records, within them."""
        accepted = self.datasets.accepted(doc) if is_dataset_doc(doc) else doc.counts.accepted
        pages = max(1, -(-accepted // PAGE_SIZE))
        self.page = max(0, min(pages - 1, self.page + step))

    def next_table(self, doc: RunDoc) -> bool:
        """A dataset run's next table's records, from their first page; False for a run of
        one table."""
        if not is_dataset_doc(doc):
            return False
        self.datasets.next_table(doc)
        self.page = 0
        return True


def _urls(doc: RunDoc) -> str:
    """The run's base URL, or its several (a pool's), comma-separated."""
    several = doc.backend.extra.get("base_urls")
    if isinstance(several, list) and len(several) > 1:
        return ", ".join(str(url) for url in several)
    return doc.backend.base_url or ""
