"""`train_sampling_strategy: group_by_length` trains the reward model and the DPO family on batches of similar
length (transformers' own sampler cannot: it reads an input_ids column pairs lack), and pads less for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.trainer_pt_utils import LengthGroupedSampler

from corral.pair_sampling import padded_length, padded_tokens
from finetune.dpo import main as dpo_main
from reward.train import main as reward_main

REPO = Path(__file__).resolve().parent.parent
TRAINERS = {"reward": (reward_main, "reward/full.yaml"), "dpo": (dpo_main, "dpo/full.yaml")}


def _train(tiny_small: Path, out: Path, name: str, strategy: str):
    main, recipe = TRAINERS[name]
    return main([str(REPO / "recipes/tiny" / recipe), "--model_name_or_path", str(tiny_small / "tiny-base"),
                 "--datasets", f"[{{path: {tiny_small / 'tiny-world/safety_pref_train.jsonl'}}}]",
                 "--eval_datasets", f"[{{path: {tiny_small / 'tiny-world/pref_heldout.jsonl'}}}]",
                 "--output_dir", str(out / strategy), "--max_steps", "2",
                 "--max_length", "512", "--per_device_train_batch_size", "8", "--eval_strategy", "no",
                 "--save_strategy", "no", "--train_sampling_strategy", strategy, "--seed", "0"])


def _padded_tokens(trainer) -> int:
    return padded_tokens(trainer.train_dataset, list(trainer._get_train_sampler()), trainer.args.train_batch_size)


@pytest.mark.parametrize("name", TRAINERS)
def test_group_by_length_trains_and_pads_less(tiny_small, tmp_path, name):
    grouped = _train(tiny_small, tmp_path, name, "group_by_length")
    assert grouped.state.global_step == 2
    sampler = grouped._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    # held-out pairs are evaluated in length groups too (DPO evaluates before and after training)
    assert isinstance(grouped._get_eval_sampler(grouped.eval_dataset), LengthGroupedSampler)
    assert "eval_loss" in grouped.evaluate()
    assert sorted(sampler) == list(range(len(grouped.train_dataset)))  # every row once per epoch
    shuffled = _train(tiny_small, tmp_path, name, "random")
    # the same rows, fewer pad tokens: a third of the safety pairs carry earlier turns
    assert len(shuffled.train_dataset) == len(grouped.train_dataset)
    assert _padded_tokens(grouped) < 0.8 * _padded_tokens(shuffled)


def test_padded_length_reads_every_trl_layout():
    assert padded_length({"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5, 6]}) == 5  # DPO
    assert padded_length({"chosen_ids": [1, 2, 3], "rejected_ids": [1]}) == 3  # reward (prompt inside)
    assert padded_length({"prompt_ids": [1], "completion_ids": [2, 3]}) == 3  # KTO
    assert padded_length({"prompt_input_ids": [1], "chosen_input_ids": [1, 2], "rejected_input_ids": [1]}) == 2
