"""Replay plain text (e.g. the base model's pretraining corpus) beside the conversations of an SFT run.

    replay = load_replay(specs, 0.2, n_conversations=1600, seed=0)   # 400 text rows: a fifth of the training rows

Fine-tuning makes a model forget some of what it read in pretraining; mixing some of that text back in, every
token trained, is the usual remedy (InstructGPT's PPO-ptx mixes pretraining gradients into RL; continual-learning
"replay"). On the tiny world it kept the base's text (tests/test_sft.py) but did not raise held-out capital
accuracy in unseen wordings, which the wording, not forgetting, limits (docs/safety.md, session 10).
`replay_mix` is the share of the training rows that are replayed text; as with `safety_mix` the source weights
are scaled from the deduplicated row counts to reach it (weight < 1 subsamples, seeded).
"""

from __future__ import annotations

import dataclasses
import math

from corral.errors import DataError
from data_prep.mixture import DatasetSpec, MixtureResult, load_mixture, mix_rows


def check_replay_mix(share: float, replay_datasets: list, dataset_kind: str = "sft") -> None:
    """The recipe keys `replay_mix` and `replay_datasets` fit together; one-line `ValueError` otherwise."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) or not 0 <= share < 1:
        raise ValueError(f"replay_mix must be a share of the training rows in [0, 1), got {share!r}")
    if share > 0 and not replay_datasets:
        raise ValueError(f"replay_mix is {share:g} but replay_datasets is empty; list plain-text sources "
                         "(e.g. replay_datasets: [{path: outputs/tiny-world/pretrain.jsonl}]) or set replay_mix: 0")
    if replay_datasets and share == 0:
        raise ValueError("replay_datasets is set but replay_mix is 0, so none of it would be trained; "
                         "set replay_mix (e.g. 0.2) or remove replay_datasets")
    if replay_datasets and dataset_kind != "sft":
        raise ValueError(f"replay_datasets mixes plain text into conversations, but dataset_kind is {dataset_kind!r}; "
                         "with dataset_kind: text list the text sources under datasets instead")


def load_replay(specs: list[DatasetSpec], share: float, n_conversations: int, *, seed: int = 0, dedup: bool = True,
                on_bad_rows: str = "error") -> MixtureResult | None:
    """`text` rows from `specs`, as many as make them `share` of `n_conversations` + themselves (None for share 0)."""
    check_replay_mix(share, specs)
    if share == 0:
        return None
    available = len(mix_rows(specs, "text", seed=seed, dedup=dedup, on_bad_rows=on_bad_rows).train)
    if available == 0:
        raise DataError(f"replay_datasets give no text rows (weights {[s.weight for s in specs]}); "
                        "give a weight > 0 or set replay_mix: 0")
    factor = share * n_conversations / ((1 - share) * available)
    scaled = [dataclasses.replace(s, weight=s.weight * factor) for s in specs]
    return load_mixture(scaled, "text", seed=seed, dedup=dedup, on_bad_rows=on_bad_rows)
