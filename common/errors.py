"""The one exception type that means "the user asked for something we cannot do", and the commands'
argument parser, whose usage errors are one line too."""
import argparse


class UserError(Exception):
    """A bad flag, a missing file, an unknown env: `main.py` prints it as one line and exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse for this project's commands (``command``: the script, e.g. "main.py"): a usage error is one
    line (the problem and where to look), exit code 2, instead of argparse's usage block."""

    def __init__(self, command: str, **kwargs):
        super().__init__(formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        self.command = command

    def error(self, message: str):
        self.exit(2, f"error: {message}; see python {self.command} --help\n")
