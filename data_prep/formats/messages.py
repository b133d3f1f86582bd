"""OpenAI chat rows: `{"messages": [{"role", "content", "tool_calls"?, "name"?}], "tools"?}`.

The standard conversational schema is this format, so conversion is normalisation (tool-call
arguments decoded, content of tool-calling turns made a string) plus the shared checks. Whether the
conversation must end with an answer depends on what it feeds, so that is checked in `kinds`.
"""

from __future__ import annotations

from data_prep.formats import turns


def convert(row: dict) -> dict:
    return {"messages": turns.messages(turns.require(row, "messages")), **turns.tools(row)}
