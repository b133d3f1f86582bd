"""Preference data for reward models and the DPO family: the recipe keys and the loader both share."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from corral.loading import CHAT_TEMPLATE_HELP
from data_prep.mixture import DatasetSpec, MixtureArguments, load_mixture

logger = logging.getLogger(__name__)


@dataclass
class PreferenceDataArguments(MixtureArguments):
    """Where the preference data is and how conversations are rendered (shared by reward and DPO-family
    recipes); `datasets` rows are preference pairs in any preference format."""

    eval_datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Held-out preference sources for evaluation (instead of test_split_size)."})
    test_split_size: float = field(
        default=0.0, metadata={"help": "Held-out eval rows cut from datasets: a share (< 1) or a count (>= 1); 0 = none."})
    chat_template: str = field(default="llama3", metadata={"help": CHAT_TEMPLATE_HELP})

    def __post_init__(self):
        super().__post_init__()
        if self.eval_datasets and self.test_split_size:
            raise ValueError("set eval_datasets or test_split_size, not both (both would be evaluation data)")


@dataclass
class PreferenceData:
    train: object  # datasets.Dataset
    eval: object | None
    eval_rows: list[dict]
    report: object  # MixtureReport


def load_preference_data(script: PreferenceDataArguments, kind: str, seed: int) -> PreferenceData:
    """Training rows of `kind` (preference or unpaired) and held-out rows, validated and reported."""
    data = load_mixture(script.datasets, kind=kind, seed=seed, test_split_size=script.test_split_size,
                        dedup=script.dedup, on_bad_rows=script.on_bad_rows)
    for line in data.report.summary_lines():
        logger.info(line)
    evaluation = data.test
    if script.eval_datasets:
        held = load_mixture(script.eval_datasets, kind=kind, seed=seed, dedup=script.dedup, on_bad_rows=script.on_bad_rows)
        for line in held.report.summary_lines():
            logger.info("eval: %s", line)
        evaluation = held.train
    train = data.train
    if kind == "unpaired":
        # KTO estimates its KL term from neighbours in a fixed-order batch (TRL samples sequentially),
        # so rows must not stay grouped as the mixture keeps them (a pair's two halves side by side).
        train = train.shuffle(seed=seed).flatten_indices()
    return PreferenceData(train, evaluation, evaluation.to_list() if evaluation is not None else [], data.report)
