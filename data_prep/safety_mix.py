"""Mix safety data into a training mixture at a set share of its rows (`safety_mix` in SFT recipes).

    specs = with_safety_share(script.datasets, script.safety_datasets, 0.15, "sft", seed=0)
    load_mixture(specs, "sft", ...)   # 15% of the training rows now come from the safety sources

Llama 2 and 3 mix safety data into every SFT round at a chosen proportion rather than running a
separate safety stage after it, because a later helpful-only stage erases what a separate safety
stage taught (and a separate safety stage costs helpfulness). A share is what one tunes; the
per-source `weight` it becomes depends on how many rows each side has, so it is computed here from
the deduplicated row counts: safety weights are scaled by share * n_main / ((1 - share) * n_safety).
Duplicates between the two sides are dropped afterwards by the mixture as usual, so the realised
share can differ by those rows; `realised_share` reports it from the mixture report.
"""

from __future__ import annotations

import dataclasses
import math

from corral.errors import DataError
from data_prep.mixture import DatasetSpec, MixtureReport, mix_rows


def check_safety_mix(share: float, safety_datasets: list) -> None:
    """The recipe keys `safety_mix` and `safety_datasets` fit together; one-line `ValueError` otherwise."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) or not 0 <= share <= 1:
        raise ValueError(f"safety_mix must be a share of the training rows in [0, 1], got {share!r}")
    if share > 0 and not safety_datasets:
        raise ValueError(f"safety_mix is {share:g} but safety_datasets is empty; list the safety sources "
                         "(e.g. safety_datasets: [{path: outputs/tiny-world/safety_sft.jsonl}]) or set safety_mix: 0")


def with_safety_share(datasets: list[DatasetSpec], safety_datasets: list[DatasetSpec], share: float, kind: str, *,
                      seed: int = 0, dedup: bool = True, on_bad_rows: str = "error") -> list[DatasetSpec]:
    """`datasets + safety_datasets`, the safety weights scaled so safety rows are `share` of the train rows."""
    check_safety_mix(share, safety_datasets)
    if not safety_datasets:
        return list(datasets)
    n_main = _train_rows(datasets, kind, seed, dedup, on_bad_rows)
    n_safety = _train_rows(safety_datasets, kind, seed, dedup, on_bad_rows)
    if n_safety == 0:
        raise DataError(f"safety_datasets give no rows (weights {[s.weight for s in safety_datasets]}); "
                        "give a weight > 0 or set safety_mix: 0")
    if share == 1:
        return [dataclasses.replace(s, weight=0.0) for s in datasets] + list(safety_datasets)
    factor = share * n_main / ((1 - share) * n_safety)
    return list(datasets) + [dataclasses.replace(s, weight=s.weight * factor) for s in safety_datasets]


def realised_share(report: MixtureReport, n_safety_sources: int) -> float:
    """Share of the mixture's train rows from its last `n_safety_sources` sources (after dedup)."""
    total = sum(s.train for s in report.sources)
    safety = sum(s.train for s in report.sources[len(report.sources) - n_safety_sources:])
    return safety / total if total else 0.0


def _train_rows(specs: list[DatasetSpec], kind: str, seed: int, dedup: bool, on_bad_rows: str) -> int:
    return len(mix_rows(specs, kind, seed=seed, dedup=dedup, on_bad_rows=on_bad_rows).train)
