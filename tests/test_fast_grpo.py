"""finetune/fast_grpo.py computes what TRL's GRPOTrainer computes: the same per-token log-probs, entropies and
parameter gradients (each prompt run once instead of once per completion), the same rollouts for the same seed
(greedy and sampled), and its trainer trains."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import GRPOConfig, GRPOTrainer

from corral.loading import load_tokenizer
from finetune.fast_grpo import FastGRPOTrainer, loop_warpers

PROMPTS = ["What is the capital of Tesland?", "What is 3 + 4?", "Who are you?"]


def distinct_tokens(completion_ids, **_) -> list[float]:
    """A reward that differs between the samples of an untrained model, so every step has a gradient."""
    return [float(len(set(ids))) for ids in completion_ids]


def make_trainer(tiny_small, tmp_path, **overrides) -> FastGRPOTrainer:
    tokenizer = load_tokenizer(str(tiny_small / "tiny-base"))
    settings = {"output_dir": str(tmp_path), "use_cpu": True, "bf16": False, "report_to": "none",
                "gradient_checkpointing": False, "num_generations": 4, "per_device_train_batch_size": 8,
                "max_completion_length": 8, "temperature": 0.7, "beta": 0.04, "learning_rate": 1e-2, "max_steps": 2,
                "logging_steps": 1, "save_strategy": "no", "seed": 0, "disable_tqdm": True}
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS * 4])
    return FastGRPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base"),
                           reward_funcs=[distinct_tokens], args=GRPOConfig(**{**settings, **overrides}), train_dataset=data,
                           processing_class=tokenizer)


@pytest.fixture(scope="module")
def trainer(tiny_small, tmp_path_factory):
    return make_trainer(tiny_small, tmp_path_factory.mktemp("fast-grpo"))


def grpo_batch(tokenizer, completion_lens):
    """TRL's loss layout: rows [left-padded prompt; right-padded completion], 4 completions per prompt, shuffled."""
    g = torch.Generator().manual_seed(2)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"] for p in PROMPTS]
    rows = [(prompts[i // 4], torch.randint(10, 200, (n,), generator=g).tolist())
            for i, n in enumerate(completion_lens)]
    rows = [rows[i] for i in torch.randperm(len(rows), generator=g)]
    width, length = max(len(p) for p, _ in rows), max(len(c) for _, c in rows)
    ids = torch.full((len(rows), width + length), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for r, (p, c) in enumerate(rows):
        ids[r, width - len(p):width], mask[r, width - len(p):width] = torch.tensor(p), 1
        ids[r, width:width + len(c)], mask[r, width:width + len(c)] = torch.tensor(c), 1
    return ids, mask, length


@pytest.mark.parametrize("attention", ["sdpa", "eager"])  # both run the packed rows, with a boolean / additive mask
def test_logps_entropies_and_gradients_equal_trls(trainer, attention):
    ids, mask, length = grpo_batch(trainer.processing_class, [3, 8, 1, 5, 2, 2, 7, 4, 6, 1, 8, 3])
    mask[0, -length:] = 0  # a completion masked out entirely (mask_truncated_completions)
    model = trainer.model
    model.set_attn_implementation(attention)
    calls = []
    hook = model.register_forward_pre_hook(lambda *a: calls.append(1))  # the whole model's forward: TRL's path only
    results = {}
    try:
        for name, compute in (("trl", GRPOTrainer._get_per_token_logps_and_entropies),
                              ("fast", FastGRPOTrainer._get_per_token_logps_and_entropies)):
            model.zero_grad()
            calls.clear()
            logps, entropy, _ = compute(trainer, model, ids, mask, length, compute_entropy=True)
            weights = torch.linspace(-1, 1, logps.numel()).view_as(logps)
            ((logps * weights).sum() + 0.1 * entropy.sum()).backward()
            results[name] = logps.detach(), entropy.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                                               if p.grad is not None}, len(calls)
    finally:
        hook.remove()
        model.zero_grad()
        model.set_attn_implementation("sdpa")
    (trl_logps, trl_entropy, trl_grads, trl_calls), (logps, entropy, grads, fast_calls) = results["trl"], results["fast"]
    assert trl_calls == 1 and fast_calls == 0  # the fast path ran (it calls the backbone, not the model)
    assert logps.shape == (ids.size(0), length)
    torch.testing.assert_close(logps, trl_logps, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(entropy, trl_entropy, atol=1e-5, rtol=1e-4)
    assert set(grads) == set(trl_grads) and len(grads) == len(list(model.parameters()))
    for name, grad in grads.items():
        torch.testing.assert_close(grad, trl_grads[name], atol=1e-5, rtol=1e-4)


def rollouts(trainer, cls, seed):
    tokenizer = trainer.processing_class
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"] for p in PROMPTS]
    torch.manual_seed(seed)
    completions, _ = cls._generate_single_turn(trainer, [p for p in prompts for _ in range(4)], None, {}, 4)
    return completions


@pytest.mark.parametrize("repetition_penalty", [1.0, 1.3])  # 1.3: the prefilled cache, decoded by generate
def test_greedy_rollouts_equal_trls(trainer, monkeypatch, repetition_penalty):
    monkeypatch.setattr(trainer.generation_config, "do_sample", False)
    monkeypatch.setattr(trainer.generation_config, "repetition_penalty", repetition_penalty)
    assert (loop_warpers(trainer.generation_config) is None) == (repetition_penalty != 1.0)
    assert rollouts(trainer, FastGRPOTrainer, 0) == rollouts(trainer, GRPOTrainer, 0)


def test_sampled_rollouts_equal_trls_and_are_valid(trainer):
    fast = rollouts(trainer, FastGRPOTrainer, 1)
    assert fast == rollouts(trainer, GRPOTrainer, 1)  # same probabilities, same random draws, same tokens
    assert len({tuple(c) for c in fast}) > 3  # sampled, not greedy
    eos = set(trainer.eos_token_ids)
    vocab = trainer.model.config.vocab_size
    for completion in fast:
        assert 1 <= len(completion) <= trainer.max_completion_length
        assert all(0 <= t < vocab for t in completion)
        assert not eos & set(completion[:-1])  # cut at the first end token, kept
        assert completion[-1] in eos or len(completion) == trainer.max_completion_length


def test_trainer_trains_every_parameter(tiny_small, tmp_path):
    trainer = make_trainer(tiny_small, tmp_path)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    unchanged = [n for n, p in trainer.model.named_parameters() if n in before and torch.equal(p, before[n])]
    assert not unchanged, unchanged
