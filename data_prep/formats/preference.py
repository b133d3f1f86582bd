"""Preference pairs with an explicit prompt: `{"prompt", "chosen", "rejected", "margin"?}`.

Each part is a string or a list of messages. All strings stay plain text; otherwise a string prompt
becomes a user turn and a string answer an assistant turn (see `turns.prompt_and_answers`).

Some files (UltraFeedback binarized) carry the prompt twice: as `prompt` and again at the start of
`chosen` and `rejected`, which are whole conversations. Those are split like implicit pairs
(`split_conversations`), and `prompt` must agree with what they share.
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


def _answer_of(conversation: list[dict]) -> tuple[list[dict], list[dict]]:
    if conversation[-1]["role"] != "assistant":
        raise RowError("conversation must end with an assistant turn")
    return conversation[:-1], conversation[-1:]


def split_conversations(chosen: list[dict], rejected: list[dict]) -> dict:
    """Two checked whole conversations as `{"prompt", "chosen", "rejected"}`: the prompt is everything
    before the final assistant turn and must be the same in both (else the pair compares two situations)."""
    with turns.in_field("chosen"):
        prompt, chosen_answer = _answer_of(chosen)
    with turns.in_field("rejected"):
        rejected_prompt, rejected_answer = _answer_of(rejected)
    if prompt != rejected_prompt:
        raise RowError("prompt differs between chosen and rejected")
    if not prompt:
        raise RowError("missing prompt")
    turns.require_user(prompt)
    if chosen_answer == rejected_answer:
        raise RowError("chosen and rejected are identical")
    return {"prompt": prompt, "chosen": chosen_answer, "rejected": rejected_answer}


def _whole_conversation(value) -> bool:
    """A list of messages that starts before the answer (with the prompt), not an answer alone."""
    first = value[0] if isinstance(value, list) and value else None
    return isinstance(first, dict) and first.get("role") != "assistant"


def _same_prompt(given, shared: list[dict]) -> bool:
    if isinstance(given, str):
        users = [m["content"] for m in shared if m["role"] == "user"]
        return given.strip() == users[-1].strip()
    return turns.prompt(given) == shared


def convert(row: dict) -> dict:
    chosen = turns.require(row, "chosen")
    rejected = turns.require(row, "rejected")
    if _whole_conversation(chosen) and _whole_conversation(rejected):
        with turns.in_field("chosen"):
            chosen = turns.messages(chosen)
        with turns.in_field("rejected"):
            rejected = turns.messages(rejected)
        out = split_conversations(chosen, rejected)
        if not _same_prompt(row.get("prompt"), out["prompt"]):
            raise RowError("prompt differs from the conversation in chosen and rejected")
        return {**out, **margin(row)}
    return {**pair(row.get("prompt"), chosen, rejected), **margin(row)}
