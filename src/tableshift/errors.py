"""The one error type that reaches the user as a one-line message and exit status 2."""


class UsageError(Exception):
    """Bad input from the user: a path, a flag, a rules file. Shown as one line, exit 2."""
