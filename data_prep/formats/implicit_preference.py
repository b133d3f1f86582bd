"""Preference pairs without a prompt column: `{"chosen": [messages], "rejected": [messages]}`, each
a whole conversation, as in many chat preference sets.

The prompt is everything before the final assistant turn, and it must be the same in both: a pair
whose histories differ compares two different situations, not two answers.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import preference, turns


def _split(conversation: list[dict]) -> tuple[list[dict], list[dict]]:
    if conversation[-1]["role"] != "assistant":
        raise RowError("conversation must end with an assistant turn")
    return conversation[:-1], conversation[-1:]


def from_conversations(chosen: list[dict], rejected: list[dict]) -> dict:
    """Split two checked conversations into `{"prompt", "chosen", "rejected"}`."""
    with turns.in_field("chosen"):
        prompt, chosen_answer = _split(chosen)
    with turns.in_field("rejected"):
        rejected_prompt, rejected_answer = _split(rejected)
    if prompt != rejected_prompt:
        raise RowError("prompt differs between chosen and rejected")
    if not prompt:
        raise RowError("missing prompt")
    if chosen_answer == rejected_answer:
        raise RowError("chosen and rejected are identical")
    return {"prompt": prompt, "chosen": chosen_answer, "rejected": rejected_answer}


def convert(row: dict) -> dict:
    chosen = turns.require(row, "chosen")
    rejected = turns.require(row, "rejected")
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise RowError("missing prompt")  # two bare strings: nothing to split a prompt from
    with turns.in_field("chosen"):
        chosen = turns.messages(chosen)
    with turns.in_field("rejected"):
        rejected = turns.messages(rejected)
    return {**from_conversations(chosen, rejected), **preference.margin(row)}
