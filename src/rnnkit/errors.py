"""The one error type users see.

Any module may raise `UsageError` for a bad input (a missing file, a corrupt checkpoint, an unknown
config key); the CLI prints its message as one line on stderr and exits with code 2. It lives here,
not in cli.py, so library modules can raise it without importing the command line.
"""


class UsageError(Exception):
    """A bad input from the user: printed as one line on stderr, exit code 2."""
