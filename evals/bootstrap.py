"""Percentile-bootstrap confidence intervals for the rate metrics.

Suites are small (tens to hundreds of prompts), so a rate without an interval invites reading noise
as a difference. We resample the suite's items with replacement `n_resamples` times (seeded, so a
report is reproducible), recompute the statistic, and report the 2.5th and 97.5th percentiles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

N_RESAMPLES = 1000
CONFIDENCE = 0.95


def bootstrap_ci(
    items: Sequence,
    statistic: Callable[[list], float] | None = None,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> list[float] | None:
    """`[lo, hi]` for `statistic(items)` (the mean when None); None when there are no items."""
    if len(items) == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(items), size=(n_resamples, len(items)))
    if statistic is None:
        stats = np.asarray(items, dtype=float)[idx].mean(axis=1)
    else:
        stats = np.array([statistic([items[i] for i in row]) for row in idx])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None
