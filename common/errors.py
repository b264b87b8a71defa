"""The one exception type that means "the user asked for something we cannot do"."""


class UserError(Exception):
    """A bad flag, a missing file, an unknown env: `main.py` prints it as one line and exits 2."""
