"""Prompt-only rows for RL and evaluation: `{"prompt", ...}`; every other column (e.g. `reference`)
is kept, since reward functions and scorers read them."""

from __future__ import annotations

from data_prep.formats import turns


def convert(row: dict) -> dict:
    extras = {k: v for k, v in row.items() if k != "prompt"}
    return {"prompt": turns.prompt(row.get("prompt")), **extras}
