"""Record journals: append-only JSONL, one writer, fsynced in groups; read back page by
page without decoding what comes before."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..fileio import describe_os_error


class Journal:
    """Append-only JSONL of accepted records. One writer; fsync every ``group`` records
    or ``interval`` seconds, whichever comes first, so a kill loses at most that much."""

    def __init__(self, path: Path, *, group: int = 50, interval: float = 0.5) -> None:
        self.path = path
        self.group = group
        self.interval = interval
        try:
            _drop_torn_tail(path)
            self._fh = open(path, "ab")
        except OSError as exc:
            raise StoreError(describe_os_error(exc, path)) from exc
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` to the file (flushed to the OS, so a kill of this process
        loses none of them once this returns; the fsync against power loss is batched)."""
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
        try:
            self._fh.write(data)
            self._fh.flush()
            self._unsynced += len(records)
            if self._unsynced >= self.group or time.monotonic() - self._last_sync >= self.interval:
                self.sync()
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.path)) from exc

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fh.closed:
            return
        try:
            self.sync()
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.path)) from exc
        finally:
            with contextlib.suppress(OSError):  # a flush that failed above fails again here
                self._fh.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left half-written, so appends start on a clean line."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else None)
        if keep is None:  # a torn line longer than 64 KiB: find its start the slow way
            fh.seek(0)
            keep = fh.read().rfind(b"\n") + 1
        fh.truncate(keep)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a journal, skipping a torn last line (and any other unreadable line)."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn by a kill mid-write
            try:
                yield json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue


def _seek_line(fh: Any, index: int) -> int | None:
    """Byte offset where line ``index`` starts, or None past the end."""
    if index == 0:
        return 0
    seen = 0
    pos = 0
    while chunk := fh.read(1 << 20):
        count = chunk.count(b"\n")
        if seen + count >= index:
            cut = -1
            for _ in range(index - seen):
                cut = chunk.index(b"\n", cut + 1)
            return pos + cut + 1
        seen += count
        pos += len(chunk)
    return None




def read_page(path: Path, offset: int, limit: int) -> list[dict[str, Any]]:
    """Records offset..offset+limit of the journal at ``path``, found by counting
    newlines in raw 1 MiB chunks (no decoding of earlier records), so the last page of
    100k is as quick as the first."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return []
    with fh:
        start = _seek_line(fh, offset)
        if start is None:
            return []
        fh.seek(start)
        out: list[dict[str, Any]] = []
        for line in fh:
            if len(out) >= limit or not line.endswith(b"\n"):
                break
            try:
                out.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
        return out
