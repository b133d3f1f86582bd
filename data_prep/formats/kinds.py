"""The kinds of rows trainers consume, and the two conversions between kinds that are worth having.

A format gives rows of one kind; `FEEDS` lists the kinds those rows can feed:

- sft rows (`messages`) also feed `prompt` (RL, evaluation): the prompt is the conversation before
  the final answer, and that answer is kept as `reference` for scorers;
- preference rows also feed `unpaired` (KTO): each pair becomes one desirable and one undesirable
  example, as TRL's `unpair_preference_dataset` does.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import turns

KINDS = ("sft", "preference", "unpaired", "prompt", "text")
FEEDS = {
    "sft": ("sft", "prompt"),
    "preference": ("preference", "unpaired"),
    "unpaired": ("unpaired",),
    "prompt": ("prompt",),
    "text": ("text",),
}


def adapt(row: dict, gives: str, kind: str) -> list[dict]:
    """`row` (of kind `gives`) as rows of `kind`; `kind` must be in `FEEDS[gives]`."""
    if gives == "sft" and kind == "sft":
        if row["messages"][-1]["role"] != "assistant":
            raise RowError("conversation must end with an assistant turn")
        turns.require_user(row["messages"])
        return [row]
    if gives == "sft" and kind == "prompt":
        return [_prompt_of(row)]
    if gives == "preference" and kind == "unpaired":
        extras = {k: v for k, v in row.items() if k not in ("chosen", "rejected", "margin")}
        return [
            {**extras, "completion": row["chosen"], "label": True},
            {**extras, "completion": row["rejected"], "label": False},
        ]
    if gives == kind:
        return [row]
    raise ValueError(f"rows of kind '{gives}' cannot feed '{kind}'")


def _prompt_of(row: dict) -> dict:
    messages = row["messages"]
    extras = {k: v for k, v in row.items() if k != "messages"}
    if messages[-1]["role"] == "assistant":
        extras["reference"] = messages[-1]["content"]
        messages = messages[:-1]
    if not messages:
        raise RowError("missing prompt")
    return {"prompt": turns.require_user(messages), **extras}


def with_system_prompt(row: dict, kind: str, system: str) -> dict:
    """Prepend a system turn to the conversation or prompt, unless it already opens with one."""
    key = "messages" if kind == "sft" else "prompt"
    messages = row.get(key)
    if not isinstance(messages, list):
        raise RowError("system_prompt needs conversational rows, this one is plain text")
    if messages[0]["role"] == "system":
        return row
    return {**row, key: [{"role": "system", "content": system}, *messages]}


def is_plain(row: dict) -> bool:
    """A plain-text preference/unpaired row (string prompt), which cannot share a dataset with chat rows."""
    return isinstance(row.get("prompt"), str)
