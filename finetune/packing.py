"""Packing that stays fast without flash-attention: one packed row per batch item.

Why not TRL's default: with `packing: true` (BFD strategy) TRL forces `padding_free`, and its
collator concatenates the *whole batch* into a single row of `batch_size * max_length` tokens with
restarting `position_ids`. flash-attention's varlen kernel handles that in linear cost per document,
but SDPA/eager (CPU, or GPUs without flash-attn) build a block-diagonal mask over the full row, so
attention costs (B*L)^2 instead of B*L^2. Measured on the tiny Llama, batch 16, L=1024: TRL's packed
run is several times slower than not packing (benchmarks/sft_throughput.py).

`RowPackedCollator` keeps TRL's packed rows (each <= max_length, several documents, with
`seq_lengths`) as separate batch items: `position_ids` restart at each document and at the padding
tail, and no attention mask is passed, so transformers derives a per-row block-diagonal causal mask
(`find_packed_sequence_indices`). Documents never attend to each other; cost is B*L^2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch


@dataclass
class RowPackedCollator:
    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        position_ids = torch.zeros((len(examples), width), dtype=torch.long)
        positions = torch.arange(width)
        for row, e in enumerate(examples):
            n = len(e["input_ids"])
            input_ids[row, :n] = torch.as_tensor(e["input_ids"])
            labels[row, :n] = torch.as_tensor(e["labels"])
            start = 0
            for length in e.get("seq_lengths", [n]):
                position_ids[row, start:start + length] = positions[:length]
                labels[row, start] = -100  # a document's first token has no in-document context to be predicted from
                start += length
            # The padding tail is one more "document": its own positions, never a loss target.
            position_ids[row, n:] = positions[:width - n]
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


def pack_rows(dataset, max_length: int, seed: int = 0):
    """Best-fit-decreasing packing of tokenized samples (`input_ids` + optional `assistant_masks`)
    into rows of <= max_length, with `labels` (-100 outside the loss mask) and `seq_lengths`.

    Uses TRL's own BFD implementation; corral only builds the labels first (TRL builds them inside
    its trainer, which would force its padding-free collator on us)."""
    from trl.data_utils import pack_dataset

    def labels(example):
        mask = example.get("assistant_masks") or [1] * len(example["input_ids"])
        return {"labels": [t if m else -100 for t, m in zip(example["input_ids"], mask)]}

    with_labels = dataset.map(labels, remove_columns=[c for c in dataset.column_names if c != "input_ids"])
    return pack_dataset(with_labels.shuffle(seed=seed), max_length, "bfd", {})


def row_packing(dataset, pad_token_id: int, args, attn_implementation: str | None):
    """(collator, train set) for an SFT run: with `args.packing` and no flash-attention, rows packed here and
    a RowPackedCollator (TRL's own packing is then turned off); otherwise (None, dataset) unchanged."""
    if not args.packing or "flash" in (attn_implementation or ""):
        return None, dataset
    packed = pack_rows(dataset, args.max_length, args.seed)
    args.packing = False
    tokens = sum(len(ids) for ids in packed["input_ids"])
    # TRL logs `num_tokens` as position_ids.size(1) per batch when no attention mask is passed (its
    # padding-free layout), so for these batches of packed rows it counts one row per batch.
    logging.getLogger("corral.sft").info(
        "packed %d samples (%d tokens) into %d rows of <= %d tokens (%.0f%% full); TRL's logged num_tokens counts "
        "one row per batch here", len(dataset), tokens, len(packed), args.max_length,
        100 * tokens / max(len(packed) * args.max_length, 1))
    return RowPackedCollator(pad_token_id), packed
