"""Best-of-n selection for rejection sampling: which sampled response of each prompt becomes SFT data.

As in Llama 2/3 post-training: sample n responses per prompt from the current policy, score them,
keep the highest-scoring one, and drop the prompt when even its best response scores below
`min_score` (a best-of-n of bad answers is still a bad answer to imitate). Pure functions of the
scores, so the rule is tested on fixed numbers.
"""

from __future__ import annotations

import math


def select_best(totals: list[float], num_samples: int, min_score: float | None = None) -> list[int | None]:
    """For each prompt (its `num_samples` consecutive totals), the index into `totals` of its best
    response, or None when it has no scored response or its best is below `min_score`.

    Ties go to the earliest sample; NaN (no reward applied) never wins.
    """
    if num_samples < 1 or len(totals) % num_samples:
        raise ValueError(f"{len(totals)} scores do not split into groups of num_samples={num_samples}")
    picks = []
    for start in range(0, len(totals), num_samples):
        group = [(t, start + j) for j, t in enumerate(totals[start:start + num_samples]) if not math.isnan(t)]
        best = max(group, key=lambda tj: (tj[0], -tj[1]), default=None)
        picks.append(None if best is None or (min_score is not None and best[0] < min_score) else best[1])
    return picks


def without_empty(totals: list[float], texts: list[str]) -> list[float]:
    """`totals` with empty (whitespace-only) responses set to NaN: nothing to imitate, and SFT data
    refuses empty assistant turns, however well an empty answer scores (e.g. on length alone)."""
    return [t if text.strip() else math.nan for t, text in zip(totals, texts, strict=True)]


def sft_rows(rows: list[dict], texts: list[str], picks: list[int | None]) -> list[dict]:
    """`messages` conversations (the prompt, then the picked response) for the prompts that kept one."""
    return [{"messages": list(row["prompt"]) + [{"role": "assistant", "content": texts[pick]}]}
            for row, pick in zip(rows, picks, strict=True) if pick is not None]
