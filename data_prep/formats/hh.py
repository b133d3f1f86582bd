"""Anthropic HH-RLHF rows: `chosen`/`rejected` are whole dialogues as text,
`"\n\nHuman: ...\n\nAssistant: ..."`, sharing every turn but the last answer.

Each text is parsed into turns, then split like any implicit-prompt pair.
"""

from __future__ import annotations

import re

from corral.errors import RowError
from data_prep.formats import preference, turns

_MARKER = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse(text) -> list[dict]:
    """`"\n\nHuman: hi\n\nAssistant: hello"` -> checked user/assistant messages."""
    if not isinstance(text, str):
        raise RowError("expected Human:/Assistant: text")
    parts = _MARKER.split(text)
    if parts[0].strip():
        raise RowError("text before the first Human: turn")
    if len(parts) < 3:
        raise RowError("no Human:/Assistant: turns")
    return turns.check([{"role": _ROLES[r], "content": c.strip()} for r, c in zip(parts[1::2], parts[2::2])])


def looks_like(value) -> bool:
    """Detection hint: HH text rather than a plain answer string."""
    return isinstance(value, str) and bool(_MARKER.search(value)) and "Assistant:" in value


def convert(row: dict) -> dict:
    with turns.in_field("chosen"):
        chosen = parse(turns.require(row, "chosen"))
    with turns.in_field("rejected"):
        rejected = parse(turns.require(row, "rejected"))
    return preference.split_conversations(chosen, rejected)
