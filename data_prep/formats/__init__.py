"""Every input format corral reads: how it is recognised, what kind of standard row it gives, and
the function that converts one raw row.

Each format is a module with a pure `convert(row)` that returns a standard row (or, for formats that
fan out, a list of them) and raises `RowError(reason)` for a malformed row. The standard schemas are
described in `kinds`. Detection only looks at keys (and, for HH text, at one value), so a file can
always be forced to a format with `format:` in the recipe.

Two rules keep a conversion from silently losing meaning:

- detection takes the most specific format any row has (the first in `FORMATS`), so a preference
  file with one row lacking `rejected` is not read as prompts; a row that reads as another format
  is an error naming it and what it lacks;
- a column that carries meaning (`is_signal`: a label, a score, an answer) that the chosen format does not read
  stops the conversion (`column_use`), unless the user drops it knowingly; other unused columns
  are only listed in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from corral.errors import CorralDataError, DataError
from data_prep.formats import (
    alpaca,
    hh,
    implicit_preference,
    kinds,
    kto,
    messages,
    preference,
    prompt,
    prompt_completion,
    rated,
    sharegpt,
    sharegpt_pairs,
    text,
)
from data_prep.formats.kinds import FEEDS, KINDS


class FormatDisagreement(DataError):
    """Rows of one file read as different formats (a malformed row, usually): skippable as a bad row."""


@dataclass(frozen=True)
class Format:
    name: str
    gives: str  # the kind of standard row `convert` returns
    convert: Callable[[dict], dict | list[dict]]
    keys: tuple[str, ...]  # detection: every one present and non-null; () = never auto-detected
    hint: Callable[[dict], bool] | None = None  # detection: an extra look at a value
    reads: tuple[str, ...] = ()  # optional columns `convert` uses besides `keys`
    keeps_all: bool = False  # every other column is passed through (nothing is unused)

    def columns(self) -> tuple[str, ...]:
        return self.keys + self.reads


def _format_list(*formats: Format) -> dict[str, Format]:
    return {f.name: f for f in formats}


# In detection order: formats whose keys are a superset of another's come first.
FORMATS = _format_list(
    Format("sharegpt_pairs", "preference", sharegpt_pairs.convert, ("conversations", "chosen", "rejected"),
           reads=("system",)),
    Format("preference", "preference", preference.convert, ("prompt", "chosen", "rejected"), reads=("margin",)),
    Format("hh", "preference", hh.convert, ("chosen", "rejected"), lambda row: hh.looks_like(row["chosen"])),
    Format("implicit_preference", "preference", implicit_preference.convert, ("chosen", "rejected"),
           reads=("margin",)),
    Format("rated", "preference", rated.convert, ("prompt", "completions")),
    Format("rated_all_pairs", "preference", rated.convert_all_pairs, (), reads=("prompt", "completions")),
    Format("kto", "unpaired", kto.convert, ("prompt", "completion", "label"), reads=("messages",)),
    Format("kto_messages", "unpaired", kto.convert_messages, ("messages", "label")),
    Format("prompt_completion", "sft", prompt_completion.convert, ("prompt", "completion"), reads=("tools",)),
    Format("messages", "sft", messages.convert, ("messages",), reads=("tools",)),
    Format("sharegpt", "sft", sharegpt.convert, ("conversations",), reads=("system", "tools")),
    Format("alpaca", "sft", alpaca.convert, ("instruction", "output"), reads=("input", "system", "history")),
    Format("text", "text", text.convert, ("text",)),
    Format("prompt", "prompt", prompt.convert, ("prompt",), keeps_all=True),
)

# Columns whose loss changes what is learned (which answer is good, how good, what the model may do,
# what it was told): one the chosen format does not read stops the conversion. Besides these names,
# any column whose name contains a SIGNAL_WORDS word (`score_chosen`, `helpfulness_rating`). Other
# unused columns (ids, sources, languages, a rendered copy of the conversation) are listed in the summary.
SIGNAL_COLUMNS = (
    "kto_tag", "margin", "winner", "chosen", "rejected", "completion", "completions", "output", "response",
    "system", "tools", "history",
)
SIGNAL_WORDS = ("label", "score", "rating", "reward", "preference")


def is_signal(column: str) -> bool:
    """Whether dropping `column` could change what a model learns from the row."""
    return column in SIGNAL_COLUMNS or any(word in column.lower() for word in SIGNAL_WORDS)


def _matches(fmt: Format, row: dict) -> bool:
    if not fmt.keys or any(row.get(k) is None for k in fmt.keys):
        return False
    return fmt.hint is None or fmt.hint(row)


def row_format(row: dict) -> str | None:
    """The most specific format whose keys `row` has (first in `FORMATS`), or None."""
    return next((name for name, fmt in FORMATS.items() if _matches(fmt, row)), None)


def detect_format(rows: list[dict], source: str = "<rows>", lines: list[int] | None = None,
                  strict: bool = True, choose: str = "set format: in the recipe") -> str:
    """The most specific format any row has, so no row's columns are read by a format that would drop
    some of them. With `strict`, a row that reads as another (less specific) format is an error naming
    its line (`lines[i]`, else its 1-based position) and what it lacks. Rows that match no format
    are left to the converter, which names their missing key. `choose` tells the user how to name a
    format when none matches (spelled for where the file came from: a recipe, a command line)."""
    found = [row_format(row) for row in rows]
    names = [name for name in FORMATS if name in found]
    if not names:
        keys = sorted({k for row in rows for k in row})
        tried = ", ".join(name for name, fmt in FORMATS.items() if fmt.keys)
        raise DataError(f"{source}: no known format matches keys {keys} (tried: {tried}); {choose}")
    best = names[0]
    if strict and len(names) > 1:
        line = lines or range(1, len(rows) + 1)
        i = next(i for i, name in enumerate(found) if name not in (None, best))
        lacks = [k for k in FORMATS[best].keys if rows[i].get(k) is None]
        what = f"lacks {', '.join(repr(k) for k in lacks)}" if lacks else f"does not look like '{best}' data"
        raise FormatDisagreement(
            f"{source}:{line[i]}: rows disagree about the format: this row {what} and reads as '{found[i]}', "
            f"while line {line[found.index(best)]} reads as '{best}'"
        )
    return best


def column_use(rows: list[dict], format: str) -> tuple[list[str], list[str]]:
    """(unused, lost): the columns with a value in some row that `format` does not read, and those of
    them that carry meaning (`is_signal`), which must not be dropped without a word."""
    fmt = FORMATS[format]
    if fmt.keeps_all:
        return [], []
    present = dict.fromkeys(k for row in rows for k, v in row.items() if v is not None)
    unused = [k for k in present if k not in fmt.columns()]
    return unused, [k for k in unused if is_signal(k)]


def formats_reading(column: str) -> list[str]:
    """The formats that read `column` (for error messages)."""
    return [name for name, fmt in FORMATS.items() if column in fmt.columns()]


def check_format(format: str, kind: str) -> Format:
    """The named format, after checking that its rows can feed `kind`."""
    if kind not in KINDS:
        raise CorralDataError(f"unknown kind '{kind}' (expected one of {', '.join(KINDS)})")
    if format not in FORMATS:
        raise CorralDataError(f"unknown format '{format}' (expected auto or one of {', '.join(FORMATS)})")
    fmt = FORMATS[format]
    if kind not in FEEDS[fmt.gives]:
        raise CorralDataError(
            f"format '{format}' cannot feed kind '{kind}' (it can feed: {', '.join(FEEDS[fmt.gives])})"
        )
    return fmt


def convert_row(row: dict, format: str, kind: str) -> list[dict]:
    """One raw row as standard rows of `kind` (usually one; rated_all_pairs and unpairing give more)."""
    fmt = check_format(format, kind)
    out = fmt.convert(row)
    return [r for one in (out if isinstance(out, list) else [out]) for r in kinds.adapt(one, fmt.gives, kind)]


__all__ = [
    "FEEDS", "FORMATS", "KINDS", "SIGNAL_COLUMNS", "SIGNAL_WORDS", "Format", "FormatDisagreement", "check_format",
    "column_use", "convert_row", "detect_format", "formats_reading", "is_signal", "row_format",
]
