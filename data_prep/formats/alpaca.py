"""Alpaca rows: `{"instruction", "input"?, "output", "system"?, "history"?}`.

`history` is LLaMA-Factory's list of earlier `[user, assistant]` exchanges, replayed before the
instruction. A non-empty `input` is appended to the instruction after a blank line, as the Alpaca
prompt template separates them.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import turns


def _history(value) -> list[dict]:
    if not value:  # absent, null, or "" from a CSV cell
        return []
    if not isinstance(value, list):
        raise RowError("history is not a list of [user, assistant] pairs")
    out = []
    for n, pair in enumerate(value, 1):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise RowError(f"history entry {n} is not a [user, assistant] pair")
        out += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return out


def convert(row: dict) -> dict:
    instruction = turns.require(row, "instruction")
    output = turns.require(row, "output")
    extra = row.get("input") or ""
    system = row.get("system") or ""
    for key, value in (("instruction", instruction), ("input", extra), ("output", output), ("system", system)):
        if not isinstance(value, str):
            raise RowError(f"{key} is not a string")
    question = "\n\n".join(part for part in (instruction, extra) if part.strip())
    messages = [{"role": "system", "content": system}] if system.strip() else []
    messages += _history(row.get("history"))
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": output}]
    return {"messages": turns.check(messages)}
