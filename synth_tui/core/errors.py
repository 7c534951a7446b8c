"""Exceptions a user can cause or act on, and every exception the engine reacts to.
Each message says what and where."""

from __future__ import annotations


class SynthError(Exception):
    """Base class for errors with a message meant for a person.

    The message says what happened and why, in words both interfaces can show. How to fix
    it often depends on where the person is: ``cli`` and ``tui`` are that advice in each
    one's terms (a flag to pass, a field to change); ``remedy(where)`` gives it."""

    def __init__(self, message: str = "", *, cli: str = "", tui: str = "") -> None:
        super().__init__(message)
        self.advice = {"cli": cli, "tui": tui}

    def remedy(self, where: str) -> str:
        """The message, then the advice for ``where`` ("cli" or "tui"), if any."""
        advice = getattr(self, "advice", {}).get(where, "")
        text = str(self)
        return f"{text.rstrip('.')}: {advice}" if advice else text


class UserInputError(SynthError):
    """Bad input: a schema, an argument, a path. The CLI exits 2 on these."""


class SchemaError(UserInputError):
    """A schema that cannot be used. ``where`` names the file/line/column or JSON path."""

    def __init__(self, message: str, where: str = "") -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
        self.detail = message


class BackendError(SynthError):
    """A backend failure that retries cannot mend (bad key, unknown model, no server)."""


class RetryableError(SynthError):
    """A transient backend failure: rate limit, server error, timeout, dropped connection."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        """429, or 503 (an overloaded server, e.g. Ollama's full queue): fewer requests at once."""
        return self.status in (429, 503)


class Unreachable(RetryableError):
    """No connection could be made (refused, DNS, hung up before a byte). Fatal before a
    run's first answer: nothing listens there."""


class TimedOut(RetryableError):
    """No complete answer within the read timeout: the server may be stuck or overloaded.
    Retried like any transient failure; a pool of endpoints sets such a one aside."""


class BackendDown(BackendError):
    """The scheduler stopped sending: the backend is unreachable before its first answer,
    a request failed past its retries, or most recent requests failed."""


class ResponseTooLarge(SynthError):
    """An answer past the run's size cap: read no further, counted as a rejection."""


class TooManyOpenFiles(BackendError):
    """The process ran out of file descriptors opening a connection (EMFILE/ENFILE)."""


class StructuredOutputRejected(SynthError):
    """The server refused the structured-output parameter; the caller may fall back."""


class UnparseableOutput(SynthError, ValueError):
    """A model's answer holds no JSON value at all: a rejection, not a failure of the run."""


class TooDeep(UnparseableOutput):
    """A model's answer nests objects and arrays deeper than the parser takes."""


class StoreError(SynthError):
    """The data directory cannot be read or written."""


class DataDirLocked(StoreError):
    """Another process writes this data directory."""
