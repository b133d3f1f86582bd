"""ShareGPT rows as LLaMA-Factory reads them: `{"conversations": [{"from", "value"}], "system"?, "tools"?}`.

Roles: human/user, gpt/assistant, system, function_call (an assistant turn that calls tools; the
value is JSON `{"name", "arguments"}` or a list of them) and observation (the tool's answer).
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import turns

ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
}


def turn(raw, n: int) -> dict:
    """One `{from, value}` turn as a standard message."""
    if not isinstance(raw, dict):
        raise RowError(f"turn {n} is not an object")
    source = turns.require(raw, "from", f" in turn {n}")
    value = turns.require(raw, "value", f" in turn {n}")
    if source not in ROLES:
        raise RowError(f"unknown role '{source}' (expected one of {', '.join(ROLES)})")
    if source == "function_call":
        calls = turns.parse_json(value, f"function_call in turn {n} is not valid JSON")
        calls = calls if isinstance(calls, list) else [calls]
        return {"role": "assistant", "content": "", "tool_calls": [turns.tool_call(c, n) for c in calls]}
    if not isinstance(value, str):
        raise RowError(f"content in turn {n} is not a string")
    return {"role": ROLES[source], "content": value}


def conversation(row: dict) -> list[dict]:
    """The checked `conversations` column, after the optional `system` column as a first turn.

    Turn numbers in reasons count positions in `conversations`, where the user will look for them."""
    raw = turns.require(row, "conversations")
    if not isinstance(raw, list):
        raise RowError("conversations is not a list")
    messages = turns.check([turn(t, n) for n, t in enumerate(raw, 1)])
    system = row.get("system")
    return ([{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else []) + messages


def convert(row: dict) -> dict:
    return {"messages": conversation(row), **turns.tools(row)}
