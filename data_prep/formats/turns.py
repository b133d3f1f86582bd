"""Normalising and checking chat messages, shared by every conversational format.

Every format ends in the same message shape, `{"role", "content", optional "tool_calls", optional
"name"}`, so the rules live here once. Turn numbers in reasons are 1-based, as a person counts turns
when looking at the file. Tool calls are normalised to the shape transformers chat templates render,
`{"type": "function", "function": {"name": str, "arguments": dict}}`, because OpenAI files carry the
arguments as a JSON string and templates expect a mapping.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

from corral.errors import RowError

ROLES = ("system", "user", "assistant", "tool")
# Llama 3.1+ templates render tool results under the header `ipython`; files written from them say so.
# The standard schema keeps OpenAI's `tool`, which those templates map back to `ipython`.
ROLE_ALIASES = {"ipython": "tool"}


def require(row: dict, key: str, where: str = ""):
    """`row[key]`, treating null as absent (Arrow and parquet fill absent keys with null)."""
    if row.get(key) is None:
        raise RowError(f"missing key '{key}'{where}")
    return row[key]


@contextmanager
def in_field(name: str):
    """Prefix reasons raised inside with the column they concern, e.g. `chosen: empty content in turn 1`."""
    try:
        yield
    except RowError as e:
        raise RowError(f"{name}: {e.reason}") from None


def parse_json(value, reason: str):
    """Decode a JSON string, raising `RowError(reason)` if it is not JSON; other values pass through."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise RowError(reason) from None


def tool_call(call, turn: int) -> dict:
    """One tool call in the template shape; accepts OpenAI `{"function": {...}}` and flat `{"name", "arguments"}`."""
    fn = call.get("function", call) if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise RowError(f"malformed tool call in turn {turn} (expected a function name and arguments)")
    arguments = parse_json(fn.get("arguments", {}), f"tool call arguments in turn {turn} are not valid JSON")
    if not isinstance(arguments, dict):
        raise RowError(f"tool call arguments in turn {turn} are not an object")
    return {"type": "function", "function": {"name": fn["name"], "arguments": arguments}}


def message(raw, turn: int) -> dict:
    """One message in the standard shape. Content may be null only on an assistant turn that calls tools."""
    if not isinstance(raw, dict):
        raise RowError(f"turn {turn} is not an object")
    role = require(raw, "role", f" in turn {turn}")
    role = ROLE_ALIASES.get(role, role) if isinstance(role, str) else role
    if role not in ROLES:
        raise RowError(f"unknown role '{role}' (expected one of {', '.join(ROLES)})")
    calls = raw.get("tool_calls") or []
    if calls and role != "assistant":
        raise RowError(f"tool calls on a {role} turn at {turn}")
    content = raw.get("content")
    if content is None and not calls:
        raise RowError(f"missing key 'content' in turn {turn}")
    if content is not None and not isinstance(content, str):
        raise RowError(f"content in turn {turn} is not a string")
    out = {"role": role, "content": content or ""}
    if calls:
        if not isinstance(calls, list):
            raise RowError(f"tool_calls in turn {turn} is not a list")
        out["tool_calls"] = [tool_call(c, turn) for c in calls]
    if isinstance(raw.get("name"), str):
        out["name"] = raw["name"]
    return out


def check(messages: list[dict]) -> list[dict]:
    """Rules every conversation obeys: no empty turn (unless it calls tools), no two assistant turns in a row."""
    if not messages:
        raise RowError("empty conversation")
    for turn, m in enumerate(messages, 1):
        if not m["content"].strip() and not m.get("tool_calls"):
            raise RowError(f"empty content in turn {turn}")
        if turn > 1 and m["role"] == "assistant" and messages[turn - 2]["role"] == "assistant":
            raise RowError(f"two consecutive assistant turns at {turn}")
    return messages


def require_user(messages: list[dict]) -> list[dict]:
    """`messages` unchanged if it holds a user turn. A conversation without one (assistant-only, or a
    system prompt and an answer) would teach the model to speak unprompted, so it is a bad row."""
    if not any(m["role"] == "user" for m in messages):
        raise RowError("no user turn")
    return messages


def messages(value) -> list[dict]:
    """A checked list of standard messages from a list of OpenAI-style messages."""
    if not isinstance(value, list):
        raise RowError("messages is not a list")
    return check([message(m, turn) for turn, m in enumerate(value, 1)])


def as_messages(value, role: str) -> list[dict]:
    """A string becomes one `role` turn; a list is parsed as messages."""
    if isinstance(value, str):
        return check([{"role": role, "content": value}])
    if isinstance(value, list):
        return messages(value)
    raise RowError(f"expected a string or a list of messages, got {type(value).__name__}")


def prompt(value) -> list[dict]:
    """A prompt: a string (one user turn) or messages that do not end with the assistant's answer."""
    if value is None or value == "" or value == []:
        raise RowError("missing prompt")
    with in_field("prompt"):
        msgs = as_messages(value, "user")
    if msgs[-1]["role"] == "assistant":
        raise RowError("prompt ends with an assistant turn")
    return require_user(msgs)


def completion(value) -> list[dict]:
    """An answer: a string (one assistant turn) or messages that start and end with an assistant turn."""
    msgs = as_messages(value, "assistant")
    if msgs[0]["role"] != "assistant":
        raise RowError("answer must start with an assistant turn")
    if msgs[-1]["role"] != "assistant":
        raise RowError("conversation must end with an assistant turn")
    return msgs


def tools(row: dict) -> dict:
    """`{"tools": [...]}` when the row declares tools (a list or a JSON string of one), else `{}`."""
    value = row.get("tools")
    if value in (None, "", []):
        return {}
    value = parse_json(value, "tools is not valid JSON")
    if not isinstance(value, list):
        raise RowError("tools is not a list")
    return {"tools": value}


def prompt_and_answers(prompt_value, **answers) -> dict:
    """`{"prompt", **answers}`: kept as plain strings when every part is a string (TRL's standard
    format, for non-chat data), else all made messages (TRL's conversational format)."""
    if isinstance(prompt_value, str) and all(isinstance(a, str) for a in answers.values()):
        if not prompt_value.strip():
            raise RowError("missing prompt")
        for name, answer in answers.items():
            if not answer.strip():
                raise RowError(f"{name} is empty")
        return {"prompt": prompt_value, **answers}
    out = {"prompt": prompt(prompt_value)}
    for name, answer in answers.items():
        with in_field(name):
            out[name] = completion(answer)
    return out
