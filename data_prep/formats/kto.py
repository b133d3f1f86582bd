"""Unpaired labelled completions for KTO: `{"prompt", "completion", "label": bool}`.

`label` must be a real boolean: a string such as "false" is truthy in Python, and silently training
toward an answer marked bad is the worst outcome here.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import turns


def convert(row: dict) -> dict:
    completion = turns.require(row, "completion")
    label = turns.require(row, "label")
    if not isinstance(label, bool):
        raise RowError(f"label is not a boolean: {label!r}")
    return {**turns.prompt_and_answers(row.get("prompt"), completion=completion), "label": label}
