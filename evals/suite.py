"""Read and check an eval suite (JSONL; the format is in `evals/SUITE_FORMAT.md`).

A suite mistake should cost the user one line of reading, so every problem is a `SuiteError` whose
message starts with `file:line:` and says what was expected.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralDataError

KINDS = ("task", "harmful", "benign")
ROLES = ("system", "user", "assistant")
KEYS = {"id", "kind", "category", "prompt", "messages", "reference"}


class SuiteError(CorralDataError):
    """A malformed suite line; the message is one line naming the file and line number."""


@dataclass(frozen=True)
class SuiteItem:
    id: str
    kind: str
    category: str
    messages: tuple[dict, ...]
    reference: str | None = None

    @property
    def prompt(self) -> str:
        """The last user turn: what the item asks."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


def load_suite(path: str | Path) -> list[SuiteItem]:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file")
    items, seen = [], {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = parse_line(line, f"{path.name}:{lineno}", default_id=f"{path.stem}-{lineno}")
        if item.id in seen:
            raise SuiteError(f"{path.name}:{lineno}: duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise SuiteError(f"{path}: the suite is empty")
    return items


def parse_line(line: str, where: str, default_id: str) -> SuiteItem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise SuiteError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(row, dict):
        raise SuiteError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - KEYS)
    if unknown:
        raise SuiteError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(KEYS))})")
    kind = row.get("kind")
    if kind not in KINDS:
        got = "missing kind" if kind is None else f"unknown kind {kind!r}"
        raise SuiteError(f"{where}: {got} (expected {', '.join(KINDS)})")
    messages = _messages(row, where)
    reference = row.get("reference")
    if kind == "task" and (not isinstance(reference, str) or not reference.strip()):
        raise SuiteError(f"{where}: task item needs a non-empty 'reference' string")
    category = row.get("category", kind)
    if not isinstance(category, str) or not category:
        raise SuiteError(f"{where}: 'category' must be a non-empty string")
    return SuiteItem(
        id=str(row.get("id", default_id)),
        kind=kind,
        category=category,
        messages=tuple(messages),
        reference=reference.strip() if isinstance(reference, str) else None,
    )


def _messages(row: dict, where: str) -> list[dict]:
    if ("prompt" in row) == ("messages" in row):
        raise SuiteError(f"{where}: give exactly one of 'prompt' (string) or 'messages' (list)")
    if "prompt" in row:
        prompt = row["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise SuiteError(f"{where}: empty prompt")
        return [{"role": "user", "content": prompt}]
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise SuiteError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise SuiteError(f"{where}: messages[{i}] must be {{role: {'|'.join(ROLES)}, content: string}}")
    if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
        raise SuiteError(f"{where}: empty prompt (the last message must be a non-empty user turn)")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def describe(path: str | Path, items: list[SuiteItem]) -> dict:
    """The `suite` block of results.json."""
    return {
        "path": str(path),
        "n_items": len(items),
        "counts_by_kind": {k: sum(i.kind == k for i in items) for k in KINDS},
        "counts_by_category": dict(sorted(Counter(f"{i.kind}/{i.category}" for i in items).items())),
    }
