"""Preference pairs with an explicit prompt: `{"prompt", "chosen", "rejected", "margin"?}`.

Each part is a string or a list of messages. All strings stay plain text; otherwise a string prompt
becomes a user turn and a string answer an assistant turn (see `turns.prompt_and_answers`).
"""

from __future__ import annotations

import math

from corral.errors import RowError
from data_prep.formats import turns


def pair(prompt, chosen, rejected) -> dict:
    """A checked preference row; also used by the formats that derive pairs from other shapes."""
    row = turns.prompt_and_answers(prompt, chosen=chosen, rejected=rejected)
    if row["chosen"] == row["rejected"]:
        raise RowError("chosen and rejected are identical")
    return row


def margin(row: dict) -> dict:
    """`{"margin": float}` when the row carries one (reward modelling uses it), else `{}`."""
    value = row.get("margin")
    if value is None:
        return {}
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RowError(f"margin is not a number: {value!r}")
    return {"margin": float(value)}


def convert(row: dict) -> dict:
    chosen = turns.require(row, "chosen")
    rejected = turns.require(row, "rejected")
    return {**pair(row.get("prompt"), chosen, rejected), **margin(row)}
