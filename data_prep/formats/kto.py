"""Unpaired labelled completions for KTO, in the two shapes public files use:

- TRL's: `{"prompt", "completion", "label": bool}` (strings, or lists of messages);
- LLaMA-Factory's: `{"messages": [...], "label": bool}`, where the last assistant turn is the
  completion being judged and everything before it is the prompt.

Both give `{"prompt", "completion", "label"}`. `label` must be a real boolean: a string such as
"false" is truthy in Python, and silently training toward an answer marked bad is the worst outcome here.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import turns


def _label(row: dict) -> bool:
    label = turns.require(row, "label")
    if not isinstance(label, bool):
        raise RowError(f"label is not a boolean: {label!r}")
    return label


def convert_messages(row: dict) -> dict:
    """LLaMA-Factory's form: the conversation's final assistant turn is the labelled completion."""
    label = _label(row)
    conversation = turns.messages(turns.require(row, "messages"))
    if conversation[-1]["role"] != "assistant":
        raise RowError("conversation must end with an assistant turn")
    prompt = conversation[:-1]
    if not prompt:
        raise RowError("missing prompt")
    turns.require_user(prompt)
    return {"prompt": prompt, "completion": conversation[-1:], "label": label}


def convert(row: dict) -> dict:
    """TRL's form; a row in LLaMA-Factory's form (messages, no completion) is read as that."""
    if row.get("completion") is None and row.get("messages") is not None:
        return convert_messages(row)
    completion = turns.require(row, "completion")
    label = _label(row)
    return {**turns.prompt_and_answers(row.get("prompt"), completion=completion), "label": label}
