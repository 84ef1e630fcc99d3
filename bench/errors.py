"""Errors that the CLI reports as one line, without a traceback."""


class UserError(Exception):
    """Bad input from the user: an unknown name, a bad config value, an impossible task."""

    exit_code = 2


class DataError(UserError):
    """Data that is missing, incomplete or corrupt."""

    exit_code = 3


class RunFailed(UserError):
    """A run that had to stop (a NaN loss, an interruption)."""

    exit_code = 4
