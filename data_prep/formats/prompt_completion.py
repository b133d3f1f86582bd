"""Prompt/completion rows, `{"prompt", "completion", "tools"?}`, each a string or a list of messages.

For SFT they become one conversation: the prompt (a string is a user turn) followed by the
completion (a string is an assistant turn).
"""

from __future__ import annotations

from data_prep.formats import turns


def convert(row: dict) -> dict:
    prompt = turns.prompt(row.get("prompt"))
    with turns.in_field("completion"):
        answer = turns.completion(turns.require(row, "completion"))
    return {"messages": turns.check(prompt + answer), **turns.tools(row)}
