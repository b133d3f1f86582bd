"""Plain text rows, `{"text": str}`, for continued pretraining; passed through once checked."""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import turns


def convert(row: dict) -> dict:
    text = turns.require(row, "text")
    if not isinstance(text, str):
        raise RowError("text is not a string")
    if not text.strip():
        raise RowError("text is empty")
    return {"text": text}
