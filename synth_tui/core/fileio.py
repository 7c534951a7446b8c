"""Writing files safely: the one temp-file-and-rename helper, and capped reads.

A regular file (or a path that does not exist yet) is replaced atomically: the data goes
to a temp file with a unique name in the same directory, is fsynced, and ``os.replace``
puts it in place, so a reader sees the old file or the new one, never half of either,
and two writers to one path never share a temp file. Anything else is written through
without a rename: a FIFO, a device node (``/dev/null``, ``/dev/full``), ``/dev/stdout``
and the other ``/proc/self/fd`` links. Renaming over those would turn them into regular
files. A directory is an error.

Errors are plain ``OSError`` (a directory: ``IsADirectoryError``); the temp file is gone
whatever failed. :func:`describe_os_error` turns one into a sentence for a person.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

MAX_INPUT_BYTES = 10 * 1024 * 1024  # the most a schema or template file may hold


def describe_os_error(exc: OSError, path: Path | str) -> str:
    """What went wrong writing ``path``, for a person."""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full while writing {path}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"no permission to write {path}"
    if exc.errno == errno.EISDIR:
        return f"{path} is a directory: give a file name"
    if exc.errno == errno.ENOENT:
        return f"cannot write {path}: the folder {Path(path).parent} does not exist"
    if exc.errno == errno.ENOTDIR:
        return f"cannot write {path}: a part of that path is not a folder"
    return f"cannot write {path}: {exc.strerror or exc}"


def _target(path: str | Path) -> tuple[Path, bool, os.stat_result | None]:
    """Where to write ``path``: (the file to create or replace, write through?, its stat)."""
    path = Path(path).expanduser()
    try:
        st = os.stat(path)  # follows links: what a write would reach
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    real = Path(os.path.realpath(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        return path, True, st  # FIFO, device node, socket
    if real.parts[:2] == ("/", "proc"):
        return path, True, st  # /dev/stdout, /dev/fd/N: the file a descriptor already has open
    # a link to a regular file (or a dangling one): replace what it points to, keep the link
    return real, False, st


def is_written_through(path: str | Path) -> bool:
    """Whether :func:`replace_file` would write ``path`` in place (a FIFO, a device,
    ``/dev/stdout``) rather than atomically replace it."""
    return _target(path)[1]


def _unique_temp(folder: Path, name: str, perm: int) -> tuple[int, Path]:
    """A new file ``.<name>.<random>.tmp`` in ``folder``, created exclusively with ``perm``
    (the umask applies, as for any new file)."""
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), perm), tmp
        except FileExistsError:
            continue


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replace_file(
    path: str | Path, *, text: bool = True, encoding: str = "utf-8", newline: str | None = None,
    perm: int | None = None,
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing its new content; on a clean exit of the ``with`` block
    the content is in place. If the block or the write fails, a regular file keeps its
    old content and the temp file is removed; the error propagates.

    ``perm``: the file's mode bits, always; without it a new file gets 0o666 less the
    umask and a replaced one keeps its own. A special file (FIFO, device, ``/dev/stdout``) is opened and written
    in place: no temp file, no rename, no fsync.
    """
    target, through, st = _target(path)
    if through:
        # a regular file reached through /proc (`-o /dev/stdout >> log`): append, as the
        # shell's descriptor does; a FIFO or device is simply opened for writing
        flags = os.O_WRONLY | (os.O_APPEND if st is not None and stat.S_ISREG(st.st_mode) else 0)
        fd = os.open(target, flags | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "w" if text else "wb", encoding=encoding if text else None,
                  newline=newline if text else None) as fh:
            yield fh
        return
    folder = target.parent
    fd, tmp = _unique_temp(folder, target.name, 0o666 if perm is None else perm)
    try:
        if perm is not None:
            os.fchmod(fd, perm)  # exact, whatever the umask (0o600 for a file that holds keys)
        elif st is not None:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))  # a replaced file keeps its mode
        if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(OSError):  # and its owner, where we may
                os.fchown(fd, st.st_uid, st.st_gid)
        with open(fd, "w" if text else "wb", encoding=encoding if text else None,
                  newline=newline if text else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def write_atomic(path: str | Path, data: bytes, *, perm: int | None = None) -> None:
    """Replace ``path`` with ``data`` (see :func:`replace_file`)."""
    with replace_file(path, text=False, perm=perm) as fh:
        fh.write(data)


def check_writable(path: str | Path, *, force: bool = False) -> None:
    """Raise ``OSError`` (or ``FileExistsError`` when ``force`` is off) unless
    :func:`replace_file` could write ``path``: checked before a long job, not after it.
    A missing file is tried for real: a temp file is created beside it and removed."""
    target, through, st = _target(path)
    if through:
        if not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return
    if st is not None and not force:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    fd, tmp = _unique_temp(target.parent, target.name, 0o600)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


class TooLarge(ValueError):
    """A file that holds more than a reader takes."""

    def __init__(self, path: str | Path, limit: int) -> None:
        self.limit = limit
        super().__init__(f"{path}: the file is larger than {limit / (1024 * 1024):g} MB")


def read_capped(path: str | Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path`` (``-``: standard input), or :class:`TooLarge` when it holds
    more than ``limit`` bytes: an endless file (``/dev/zero``) or a huge one is refused
    after reading ``limit`` bytes, not read to the end."""
    if str(path) == "-":
        import sys

        data = sys.stdin.buffer.read(limit + 1)
    else:
        with open(Path(path).expanduser(), "rb") as fh:
            data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(path, limit)
    return data
