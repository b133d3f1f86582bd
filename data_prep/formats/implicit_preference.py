"""Preference pairs without a prompt column: `{"chosen": [messages], "rejected": [messages]}`, each
a whole conversation, as in many chat preference sets.

The prompt is everything before the final assistant turn, and it must be the same in both: a pair
whose histories differ compares two different situations, not two answers.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import preference, turns


def convert(row: dict) -> dict:
    chosen = turns.require(row, "chosen")
    rejected = turns.require(row, "rejected")
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise RowError("missing prompt")  # two bare strings: nothing to split a prompt from
    with turns.in_field("chosen"):
        chosen = turns.messages(chosen)
    with turns.in_field("rejected"):
        rejected = turns.messages(rejected)
    return {**preference.split_conversations(chosen, rejected), **preference.margin(row)}
