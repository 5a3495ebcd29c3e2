"""Errors shared by every stage.

`InputError` marks bad user input (a wrong file, shape, value or option). The command line turns
it into one line on stderr and exit status 2; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the file or argument, what was expected and what arrived."""
