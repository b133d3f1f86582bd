"""`train_sampling_strategy: group_by_length` for preference and unpaired trainers (reward, DPO family, KTO).

transformers' length sampler reads an `input_ids` column (or `length_column_name`), which TRL's tokenized
preference rows never have (`prompt_ids` + `chosen_ids` / `rejected_ids`, or `chosen_ids` / `rejected_ids`
alone for the reward model): it stopped at `train()` with a ValueError. `with_pair_sampling(trainer_cls, args)`
returns a subclass whose sampler groups rows by the tokens a batch pads to instead, the way the upstream
sampler groups SFT rows: mega-batches of 50 batches in random order, longest first inside each.

Why: the reward and DPO collators pad every row of a batch to its longest. On the tiny world's safety pairs
(a third carry earlier turns, up to 280 tokens) a random batch of 16 nearly always holds one long pair, so
most of each step computes padding (docs/performance.md, "Preference batches grouped by length").
"""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers.trainer_pt_utils import LengthGroupedSampler

from corral.errors import CorralError

# token columns of TRL's tokenized rows: a prompt and completions without it (reward, DPO, KTO), or whole
# sequences that already hold the prompt (the experimental ORPO and CPO/SimPO trainers)
_PROMPT = "prompt_ids"
_COMPLETIONS = ("chosen_ids", "rejected_ids", "completion_ids")
_SEQUENCES = ("chosen_input_ids", "rejected_input_ids")
COLUMNS = (_PROMPT, *_COMPLETIONS, *_SEQUENCES)


def padded_length(row: dict) -> int:
    """Tokens a batch holding `row` pads to at least: its prompt + its longest completion (TRL's collators
    concatenate them per sequence)."""
    completions = [len(row[k]) for k in _COMPLETIONS if row.get(k) is not None]
    if completions:
        return len(row.get(_PROMPT) or ()) + max(completions)
    sequences = [len(row[k]) for k in _SEQUENCES if row.get(k) is not None]
    if not sequences:
        raise CorralError(f"group_by_length: a tokenized row has none of {', '.join(COLUMNS[1:])} "
                          f"(columns: {', '.join(sorted(row))}); use train_sampling_strategy: random")
    return max(sequences)


def check_pair_sampling(args, method: str) -> None:
    """One line, before the model loads, for samplers these trainers cannot use (`method`: reward, dpo, kto, ...)."""
    strategy = getattr(args, "train_sampling_strategy", "random")
    if strategy == "batch_rebalance":
        raise CorralError("train_sampling_strategy: batch_rebalance reads an input_ids column, which preference "
                          "pairs do not have (transformers would stop at train()); use group_by_length or random")
    loss_type = getattr(args, "loss_type", None)
    if method == "kto" and strategy != "sequential" and loss_type != "apo_zero_unpaired":
        raise CorralError(f"train_sampling_strategy: {strategy} breaks KTO's KL estimate (loss_type: {loss_type} "
                          "pairs each row with its neighbours in a fixed order); use sequential (KTO's default)")


def _grouped_sampler(dataset, batch_size: int, generator=None) -> LengthGroupedSampler:
    columns = [c for c in COLUMNS if c in dataset.column_names]
    lengths = [padded_length(row) for row in dataset.select_columns(columns)]
    return LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)


def padded_tokens(dataset, order: list[int], batch_size: int) -> int:
    """Tokens the collator pads one pass to when rows come in `order`: per batch, its size x its longest row."""
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return sum(len(b) * max(padded_length(dataset[j]) for j in b) for b in batches)


def with_pair_sampling(trainer_cls, args):
    """`trainer_cls` as it is, or, when the recipe asks for `group_by_length`, a subclass whose samplers (training
    and, as transformers does, evaluation) read the lengths of TRL's tokenized pair columns."""
    if args.train_sampling_strategy != "group_by_length":
        return trainer_cls

    class PairsGroupedByLength(trainer_cls):
        def _get_train_sampler(self, train_dataset=None):
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if not isinstance(dataset, Dataset):
                return super()._get_train_sampler(train_dataset)  # an IterableDataset: transformers warns
            return _grouped_sampler(dataset, self.args.train_batch_size * self.args.gradient_accumulation_steps)

        def _get_eval_sampler(self, eval_dataset):
            if not isinstance(eval_dataset, Dataset):
                return super()._get_eval_sampler(eval_dataset)
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return _grouped_sampler(eval_dataset, self.args.eval_batch_size, torch.Generator().manual_seed(seed))

    PairsGroupedByLength.__name__ = PairsGroupedByLength.__qualname__ = f"{trainer_cls.__name__}GroupedByLength"
    return PairsGroupedByLength
