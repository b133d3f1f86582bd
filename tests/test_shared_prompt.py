"""finetune/shared_prompt.py gives exactly TRL's fused-head DPO outputs and gradients, from fewer token-passes."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.utils import add_fused_lm_head

from finetune.shared_prompt import SharedPromptCall, shared_prompt_forward, split_pairs

OUTPUTS = ("log_probs", "entropy", "mean_logits", "is_top1")


def tiny_llama(attn_implementation: str = "sdpa"):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=True, attn_implementation=attn_implementation)
    model = LlamaForCausalLM(config)
    add_fused_lm_head(model, outputs=OUTPUTS)
    return model


def dpo_batch(prompt_lens, chosen_lens, rejected_lens):
    """TRL's DPO layout: rows [prompt + chosen; prompt + rejected], right-padded, labels -100 off the answers."""
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 128, (n,), generator=g) for n in prompt_lens]
    answers = [torch.randint(3, 128, (n,), generator=g) for n in chosen_lens + rejected_lens]
    rows = [torch.cat([p, a]) for p, a in zip(prompts + prompts, answers)]
    width = max(len(r) for r in rows)
    ids, mask, scored = (torch.zeros(len(rows), width, dtype=torch.long) for _ in range(3))
    for i, (row, prompt) in enumerate(zip(rows, prompts + prompts)):
        ids[i, :len(row)], mask[i, :len(row)], scored[i, len(prompt):len(row)] = row, 1, 1
    return ids, mask, ids.masked_fill(scored == 0, -100)


@pytest.mark.parametrize("path", ["packed/sdpa", "packed/eager", "prompt-cache"])
def test_outputs_and_gradients_equal_trls_forward(path):
    """The one-row `[prompt | chosen | rejected]` forward (sdpa and eager masks) and the KV-cache forward
    (other attention implementations) against TRL's: prompts, chosen and rejected answers of unequal lengths."""
    model = tiny_llama("eager" if path == "packed/eager" else "sdpa")
    ids, mask, labels = dpo_batch([5, 9, 3], [4, 2, 6], [7, 3, 1])
    expected = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False)
    expected.log_probs.sum().backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    if path == "prompt-cache":
        got = shared_prompt_forward(model, ids, labels != -100, packed=False)
    else:
        got = SharedPromptCall(model)(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True,
                                      use_cache=False)
    assert type(got) is not type(expected)  # it did not fall back to the model's own forward
    got.log_probs.sum().backward()
    scored = (labels != -100)[:, 1:]
    for name in OUTPUTS:
        torch.testing.assert_close(getattr(got, name), getattr(expected, name).masked_fill(~scored, 0),
                                   atol=1e-5, rtol=1e-4)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected_grads[name], atol=1e-6, rtol=1e-4)


def test_pairs_with_different_prompts_fall_back_to_the_model():
    ids, mask, labels = dpo_batch([5, 4], [2, 2], [3, 1])
    assert split_pairs(ids, labels != -100) is not None
    ids[2, 0] += 1  # rejected row of pair 0 no longer starts with pair 0's prompt
    assert split_pairs(ids, labels != -100) is None
    model = tiny_llama()
    got = SharedPromptCall(model)(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False)
    expected = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False)
    torch.testing.assert_close(got.log_probs, expected.log_probs)
