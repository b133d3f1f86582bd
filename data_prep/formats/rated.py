"""Rated responses, UltraFeedback-like: `{"prompt", "completions": [{"response", "score"}, ...]}`.

Binarised into preference pairs: `convert` takes the best against the worst (the usual recipe, one
pair per prompt); `convert_all_pairs` takes every pair whose scores differ, the higher as chosen.
Ties go to the earlier completion, so the result does not depend on anything but the row.
"""

from __future__ import annotations

import math
from itertools import combinations

from corral.errors import RowError
from data_prep.formats import preference, turns


def _scored(row: dict) -> list[tuple[float, object]]:
    completions = turns.require(row, "completions")
    if not isinstance(completions, list):
        raise RowError("completions is not a list")
    if len(completions) < 2:
        raise RowError(f"need at least two completions, got {len(completions)}")
    scored = []
    for n, c in enumerate(completions, 1):
        if not isinstance(c, dict):
            raise RowError(f"completion {n} is not an object")
        response = turns.require(c, "response", f" in completion {n}")
        score = turns.require(c, "score", f" in completion {n}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise RowError(f"score is not a number: {score!r}")
        scored.append((score, response))
    if len({s for s, _ in scored}) == 1:
        raise RowError("all completions have the same score")
    return scored


def convert(row: dict) -> dict:
    scored = _scored(row)
    best = max(scored, key=lambda s: s[0])
    worst = min(scored, key=lambda s: s[0])
    return preference.pair(row.get("prompt"), best[1], worst[1])


def convert_all_pairs(row: dict) -> list[dict]:
    prompt = row.get("prompt")
    return [
        preference.pair(prompt, a[1], b[1]) if a[0] > b[0] else preference.pair(prompt, b[1], a[1])
        for a, b in combinations(_scored(row), 2)
        if a[0] != b[0]
    ]
