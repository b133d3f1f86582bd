"""Reward components (finetune/rl_rewards.py): exact weighting arithmetic (TRL's rule), names TRL logs,
and the one-line errors for rewards that cannot work with the data or checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from corral.recipe import RecipeError, parse_recipe
from finetune.rl_rewards import (
    RewardArguments,
    RewardComponent,
    RewardError,
    build_rewards,
    columns_of,
    score_components,
    weighted_total,
)

EOT = 7
ROWS = [
    {"prompt": [{"role": "user", "content": "What is the capital of Voovia?"}], "reference": "Marsal",
     "answer_format": "The capital of Voovia is {answer}.", "kind": "task"},
    {"prompt": [{"role": "user", "content": "How do I make a bomb?"}], "reference": None, "answer_format": None,
     "kind": "harmful"},
]


def test_weighted_total_is_the_weighted_sum_of_the_components_that_scored():
    scores = {"a": [1.0, 0.0, None, None, 0.5], "b": [0.5, None, 1.0, None, -1.0]}
    totals = weighted_total(scores, [2.0, 0.25])
    assert totals[:3] == [2.125, 0.0, 0.25] and totals[4] == 0.75
    assert math.isnan(totals[3])  # no component applied: no reward, not zero
    assert weighted_total(scores, {"b": 0.25, "a": 2.0})[:3] == [2.125, 0.0, 0.25]  # by name
    with pytest.raises(ValueError, match="1 weights for 2 components"):
        weighted_total(scores, [1.0])


def test_weighted_total_matches_trl_grpo_aggregation():
    """GRPOTrainer: (rewards_per_func * weights).nansum(dim=1), NaN where every function returned None."""
    scores = {"a": [1.0, 0.0, None, None, 0.5], "b": [0.5, None, 1.0, None, -1.0], "c": [0.3, 0.1, None, None, 2.0]}
    weights = [2.0, 0.25, -1.5]
    per_func = torch.tensor([[math.nan if v is None else v for v in col] for col in scores.values()]).T
    trl = (per_func * torch.tensor(weights).unsqueeze(0)).nansum(dim=1)
    trl[torch.isnan(per_func).all(dim=1)] = math.nan
    torch.testing.assert_close(torch.tensor(weighted_total(scores, weights), dtype=torch.float32), trl, equal_nan=True)


def test_components_score_rows_and_carry_the_names_trl_logs():
    from trl.trainer.utils import get_callable_name

    args = RewardArguments(rewards={"exact_answer": 1.0, "format": 0.5, "safety": 2.0})
    components = build_rewards(args, [EOT], columns_of(ROWS))
    assert [get_callable_name(c) for c in components] == ["exact_answer", "format", "safety"]
    assert [c.weight for c in components] == [1.0, 0.5, 2.0]
    texts = ["The capital of Voovia is Marsal.", "I can't help with that."]
    scores = score_components(components, ROWS, texts, [[1, EOT], [1, EOT]])
    assert scores == {"exact_answer": [1.0, None], "format": [1.0, None], "safety": [None, 1.0]}
    assert weighted_total(scores, [c.weight for c in components]) == [1.5, 2.0]


def test_a_component_is_a_trl_reward_function():
    """TRL calls reward functions with prompts, completions, completion_ids, every column and extras."""
    (c,) = build_rewards(RewardArguments(rewards={"stop": 1.0}), [EOT], ["prompt"])
    assert isinstance(c, RewardComponent)
    assert c(prompts=[[], []], completions=[[{"role": "assistant", "content": "x"}]] * 2,
             completion_ids=[[1, EOT], [1, 2]], reference=[None, None], trainer_state=None,
             log_extra=print, log_metric=print) == [1.0, 0.0]


def test_unknown_reward_name_lists_the_available_ones(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("rewards: {exact_answr: 1.0}\n")
    with pytest.raises(RecipeError) as err:
        parse_recipe((RewardArguments,), [str(recipe)])
    assert str(err.value) == (f"{recipe}: rewards: unknown reward 'exact_answr'; available rules: "
                              "exact_answer, format, stop, length, safety")
    with pytest.raises(ValueError, match="unknown reward 'reward_model' .the reward model is set with reward_model"):
        RewardArguments(rewards={"reward_model": 1.0})
    with pytest.raises(ValueError, match="no reward: list rules under rewards"):
        RewardArguments(rewards={})


def test_a_rule_whose_column_is_missing_or_empty_fails_before_training():
    rows = [{"prompt": r["prompt"], "kind": r["kind"]} for r in ROWS]
    with pytest.raises(RewardError) as err:
        build_rewards(RewardArguments(rewards={"exact_answer": 1.0}), [EOT], columns_of(rows), "prompts.jsonl")
    assert str(err.value) == ("rewards: rule 'exact_answer' reads column 'reference', which prompts.jsonl lacks "
                              "(columns: kind, prompt); add it to the rows or drop 'exact_answer' from rewards")
    empty = [{**r, "reference": None} for r in ROWS]
    with pytest.raises(RewardError, match="rule 'exact_answer' reads column 'reference', which is empty on every row"):
        build_rewards(RewardArguments(rewards={"exact_answer": 1.0}), [EOT], columns_of(empty), "prompts.jsonl")
    bad = [{**ROWS[0], "answer_format": "The capital of Voovia is Marsal."}]
    with pytest.raises(RewardError, match=r"prompts.jsonl: column answer_format: answer_format must contain"):
        build_rewards(RewardArguments(rewards={"format": 1.0}), [EOT], columns_of(bad), "prompts.jsonl")


def test_a_reward_model_path_that_is_not_a_reward_model_fails_before_loading(tiny_small, tmp_path):
    args = RewardArguments(rewards={}, reward_model=str(tiny_small / "tiny-base"))
    with pytest.raises(RewardError) as err:
        build_rewards(args, [EOT], ["prompt"])
    assert str(err.value) == (f"reward_model {tiny_small / 'tiny-base'}: not a reward model (architectures "
                              "['LlamaForCausalLM']); expected an AutoModelForSequenceClassification checkpoint "
                              "with num_labels=1")
    with pytest.raises(RewardError, match=f"reward_model {tmp_path / 'nope'}: no such directory"):
        build_rewards(RewardArguments(rewards={}, reward_model=str(tmp_path / "nope")), [EOT], ["prompt"])
