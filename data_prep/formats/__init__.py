"""Every input format corral reads: how it is recognised, what kind of standard row it gives, and
the function that converts one raw row.

Each format is a module with a pure `convert(row)` that returns a standard row (or, for formats that
fan out, a list of them) and raises `RowError(reason)` for a malformed row. The standard schemas are
described in `kinds`. Detection only looks at keys (and, for HH text, at one value), so a file can
always be forced to a format with `format:` in the recipe.
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


@dataclass(frozen=True)
class Format:
    name: str
    gives: str  # the kind of standard row `convert` returns
    convert: Callable[[dict], dict | list[dict]]
    keys: tuple[str, ...]  # detection: every one present and non-null; () = never auto-detected
    hint: Callable[[dict], bool] | None = None  # detection: an extra look at a value


def _format_list(*formats: Format) -> dict[str, Format]:
    return {f.name: f for f in formats}


# In detection order: formats whose keys are a superset of another's come first.
FORMATS = _format_list(
    Format("sharegpt_pairs", "preference", sharegpt_pairs.convert, ("conversations", "chosen", "rejected")),
    Format("preference", "preference", preference.convert, ("prompt", "chosen", "rejected")),
    Format("hh", "preference", hh.convert, ("chosen", "rejected"), lambda row: hh.looks_like(row["chosen"])),
    Format("implicit_preference", "preference", implicit_preference.convert, ("chosen", "rejected")),
    Format("rated", "preference", rated.convert, ("prompt", "completions")),
    Format("rated_all_pairs", "preference", rated.convert_all_pairs, ()),
    Format("kto", "unpaired", kto.convert, ("prompt", "completion", "label")),
    Format("prompt_completion", "sft", prompt_completion.convert, ("prompt", "completion")),
    Format("messages", "sft", messages.convert, ("messages",)),
    Format("sharegpt", "sft", sharegpt.convert, ("conversations",)),
    Format("alpaca", "sft", alpaca.convert, ("instruction", "output")),
    Format("text", "text", text.convert, ("text",)),
    Format("prompt", "prompt", prompt.convert, ("prompt",)),
)


def _matches(fmt: Format, row: dict) -> bool:
    if not fmt.keys or any(row.get(k) is None for k in fmt.keys):
        return False
    return fmt.hint is None or fmt.hint(row)


def detect_format(rows: list[dict], source: str = "<rows>") -> str:
    """The format most sample rows match (earlier in `FORMATS` on ties), so a few malformed rows do
    not change the answer; they are then reported by the converter with a precise reason."""
    counts = {name: sum(_matches(fmt, row) for row in rows) for name, fmt in FORMATS.items()}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        keys = sorted({k for row in rows for k in row})
        tried = ", ".join(name for name, fmt in FORMATS.items() if fmt.keys)
        raise DataError(f"{source}: no known format matches keys {keys} (tried: {tried}); set format: in the recipe")
    return best


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


__all__ = ["FORMATS", "FEEDS", "KINDS", "Format", "check_format", "convert_row", "detect_format"]
