"""The errors a user can fix by editing a data file or a recipe, each with a one-line message.

Everything here subclasses `CorralError`; data problems subclass `CorralDataError` (also a `ValueError`), so entry points can catch one class
and print the message instead of a traceback.
"""

from __future__ import annotations

USER_ERROR_EXIT = 2
"""The exit code of every corral entry point (training scripts, data_prep, evals.compare, inspect,
`python -m corral.launch`) when it stops on a `CorralError`; 1 stays Python's code for a crash."""


class CorralError(Exception):
    """A mistake the user can fix (recipe, data file, checkpoint...), with a one-line message.

    Entry scripts (`corral.recipe.run_cli`) print these without a traceback; any other exception is
    a bug and keeps its traceback. It lives here, in the lowest layer, so every package can raise it.
    """


class CorralDataError(CorralError, ValueError):
    """Base class of every data problem the user can fix; the message is one line."""


class RowError(CorralDataError):
    """One raw row cannot become a standard row. `reason` is short and lower-case, without location;
    the caller knows the file and row number and prefixes them (see `DataError`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DataError(CorralDataError):
    """A problem with a source, located as `file: reason` or `file:row: reason`."""
