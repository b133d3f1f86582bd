"""Row packing: exact tensors, and the same loss as training the samples one by one."""

import torch
from datasets import Dataset

from finetune.packing import RowPackedCollator, pack_rows


def test_collator_builds_per_document_positions_and_masks_boundaries():
    batch = RowPackedCollator(pad_token_id=0)([
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "seq_lengths": [3, 2]},
        {"input_ids": [1, 2, 3], "labels": [1, 2, 3], "seq_lengths": [3]},
    ])
    torch.testing.assert_close(batch["input_ids"], torch.tensor([[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]]))
    torch.testing.assert_close(batch["position_ids"], torch.tensor([[0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]))
    torch.testing.assert_close(batch["labels"], torch.tensor([[-100, 6, 7, -100, 9], [-100, 2, 3, -100, -100]]))
    assert "attention_mask" not in batch  # transformers then derives the block-diagonal mask from position_ids


def test_pack_rows_keeps_every_token_and_label():
    ds = Dataset.from_list([
        {"input_ids": [1, 2, 3, 4], "assistant_masks": [0, 0, 1, 1]},
        {"input_ids": [5, 6], "assistant_masks": [0, 1]},
        {"input_ids": [7, 8, 9], "assistant_masks": [0, 1, 1]},
    ])
    packed = pack_rows(ds, max_length=6).to_list()
    assert all(len(r["input_ids"]) <= 6 and sum(r["seq_lengths"]) == len(r["input_ids"]) for r in packed)
    pairs = sorted((t, l) for r in packed for t, l in zip(r["input_ids"], r["labels"]))
    assert pairs == [(1, -100), (2, -100), (3, 3), (4, 4), (5, -100), (6, 6), (7, -100), (8, 8), (9, 9)]


def test_packed_loss_equals_loss_of_separate_documents():
    """The packed row must not let documents attend to each other: per-document logits are identical."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1)).eval()
    docs = [[3, 4, 5, 6], [7, 8, 9]]
    # use_cache=False as SFTTrainer passes it: with a KV cache transformers skips packed-sequence detection.
    batch = RowPackedCollator(0)([{"input_ids": docs[0] + docs[1], "labels": docs[0] + docs[1], "seq_lengths": [4, 3]}])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        separate = torch.cat([model(input_ids=torch.tensor([d])).logits[0] for d in docs])
    torch.testing.assert_close(packed, separate, rtol=1e-4, atol=1e-5)
