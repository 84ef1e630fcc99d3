"""Errors that the CLI reports as one line, without a traceback."""


class UserError(Exception):
    """Bad input from the user: an unknown name, a bad config value, an impossible task."""

    exit_code = 2


class DataError(UserError):
    """Data that is missing, incomplete or corrupt."""

    exit_code = 3


class StorageError(UserError):
    """The operating system refused a read or a write: a full disk, a folder made unwritable, a
    path too long for the filesystem."""

    exit_code = 3


def os_error_line(exc: OSError) -> str:
    """An ``OSError`` as one line: what the system said, its errno name and the file."""
    import errno

    name = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    what = exc.strerror or first_line(exc)
    return f"{what}{f' ({name})' if name else ''}{f': {exc.filename}' if exc.filename else ''}"


class RunFailed(UserError):
    """A run that had to stop (a NaN loss, an interruption)."""

    exit_code = 4


class CheckFailed(UserError):
    """A method that breaks a rule of ``check-method``: like a failed test, exit 1."""

    exit_code = 1


class RunInterrupted(RunFailed):
    """A run stopped by SIGINT or SIGTERM, resumable from its last checkpoint."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (or its type), for a one-line error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]
