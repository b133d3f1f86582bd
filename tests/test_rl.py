"""finetune/rl.py on the seconds-sized tiny base: GRPO, RLOO and online DPO train (every weight but the frozen
embeddings moves), reward components and KL are logged, held-out evaluation runs, and bad input stops
before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from corral.recipe import run_cli
from finetune.rl import main as rl_main

REPO = Path(__file__).resolve().parent.parent
# Rewards that vary between samples of an untrained chat model (a base model never answers right,
# so exact_answer alone would give every group the same reward and GRPO no gradient).
VARYING = "{length: 1.0, stop: 0.5}"


def rl_args(tiny_small: Path, out: Path, method: str, *extra: str) -> list[str]:
    steps = {"grpo": ["--num_generations", "4", "--max_completion_length", "8"],
             "rloo": ["--num_generations", "4", "--max_completion_length", "8"],
             "online_dpo": ["--max_new_tokens", "8", "--max_length", "64"]}[method]
    return [str(REPO / f"recipes/tiny/rl/{method}.yaml"),
            "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/rl_prompts_train.jsonl'}}}]",
            "--heldout_datasets", "[]", "--output_dir", str(out), "--max_steps", "2", "--logging_steps", "1",
            "--per_device_train_batch_size", "8", "--learning_rate", "1e-2", "--rewards", VARYING,
            "--length_target", "2", "--save_strategy", "no", *steps, *extra]


def log_history(out: Path) -> list[dict]:
    return json.loads((out / "run_manifest.json").read_text())["log_history"]


def assert_every_weight_changed_but_embeddings(tiny_small: Path, out: Path) -> None:
    """freeze_embeddings (default): every weight moves except the (tied) embedding matrix."""
    before = load_file(str(tiny_small / "tiny-base/model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    assert set(before) == set(after)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == ["model.embed_tokens.weight"], unchanged


@pytest.mark.parametrize("method", ["grpo", "rloo", "online_dpo"])
def test_trainer_runs_and_changes_every_weight(tiny_small, tmp_path, method):
    out = tmp_path / method
    rl_main(rl_args(tiny_small, out, method))
    assert_every_weight_changed_but_embeddings(tiny_small, out)
    logs = [e for e in log_history(out) if "loss" in e]
    assert len(logs) == 2
    for name in ("length", "stop"):  # each reward component is logged on its own
        assert all(f"rewards/{name}/mean" in e for e in logs), logs[0].keys()
    kl = "objective/kl" if method == "online_dpo" else "kl"
    assert all(kl in e for e in logs)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["summary"]["steps"] == 2
    assert manifest["data"]["rewards"] == {"length": 1.0, "stop": 0.5}


def test_online_dpo_hands_rewards_unpadded_completion_ids(tiny_small, tmp_path):
    """TRL's online DPO pads completions after their end-of-turn token; rules must see that token last."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from corral.loading import load_tokenizer
    from finetune.online_rl import config_class, trainer_class
    from finetune.rl_rewards import RewardArguments, build_rewards

    tokenizer = load_tokenizer(str(tiny_small / "tiny-base"))  # pad: <|finetune_right_pad_id|>, not an EOS
    eot, pad = tokenizer.convert_tokens_to_ids("<|eot_id|>"), tokenizer.pad_token_id
    components = build_rewards(RewardArguments(rewards={"stop": 1.0, "length": 1.0}, length_target=2), [eot],
                               ["prompt"])
    args = config_class("online_dpo")(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                                      gradient_checkpointing=False)
    trainer = trainer_class("online_dpo")(
        model=AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base"), reward_funcs=components, args=args,
        train_dataset=Dataset.from_list([{"prompt": [{"role": "user", "content": "Hi"}]}]),
        processing_class=tokenizer)
    stop, length = trainer.reward_funcs
    ids = [[5, 6, eot, pad, pad], [5, 6, 7, 8, 9]]
    assert stop(prompts=[[], []], completions=["a", "b"], completion_ids=ids) == [1.0, 0.0]
    assert length(prompts=[[], []], completions=["a", "b"], completion_ids=ids) == [0.0, -1.0]  # 2 and 5 tokens
    assert trainer._component_scores == {"stop": [1.0, 0.0], "length": [0.0, -1.0]}


def make_reward_model(tiny_small: Path, out: Path) -> Path:
    """A one-label sequence classifier on the tiny base: what reward/ trains, untrained here."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_small / "tiny-base", num_labels=1)
    rm.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_small / "tiny-base").save_pretrained(out)
    return out


def test_grpo_with_reward_model_and_heldout_evaluation(tiny_small, tmp_path):
    rm = make_reward_model(tiny_small, tmp_path / "rm")
    out = tmp_path / "grpo-rm"
    rl_main(rl_args(tiny_small, out, "grpo", "--reward_model", str(rm), "--reward_model_weight", "0.5",
                    "--heldout_datasets", f"[{{path: {tiny_small / 'tiny-world/rl_prompts_heldout.jsonl'}}}]",
                    "--heldout_samples", "2", "--max_steps", "1"))
    (log,) = [e for e in log_history(out) if "loss" in e]
    assert {"rewards/length/mean", "rewards/stop/mean", "rewards/reward_model/mean", "reward", "kl"} <= set(log)
    held = json.loads((out / "heldout_rewards.json").read_text())
    for mode in ("greedy", "sampled"):
        assert set(held[f"heldout_{mode}"]["before"]) == {"length", "stop", "reward_model", "reward"}
        change = held[f"heldout_{mode}"]["change"]
        after, before = held[f"heldout_{mode}"]["after"]["reward"], held[f"heldout_{mode}"]["before"]["reward"]
        assert change["mean"] == pytest.approx(after - before)  # every prompt is scored: mean of diffs = diff of means
        assert change["ci95"][0] <= change["mean"] <= change["ci95"][1]
    assert held["heldout_kl"] > 0  # the policy moved away from where it started
    n_prompts = len((tiny_small / "tiny-world/rl_prompts_heldout.jsonl").read_text().splitlines())
    responses = [json.loads(line) for line in (out / "heldout_responses.jsonl").read_text().splitlines()]
    assert [r["mode"] for r in responses] == ["greedy"] * n_prompts + ["sampled"] * 2 * n_prompts


def run_error(argv, capsys, monkeypatch) -> str:
    """The one-line `error: ...` a bad input gives, checked to come before any model is loaded."""
    import finetune.rl

    def no_model(*a, **k):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(finetune.rl, "load_causal_lm", no_model)
    with pytest.raises(SystemExit) as exit_:
        run_cli(rl_main, argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0].removeprefix("error: ")


def test_unknown_reward_name(tiny_small, tmp_path, capsys, monkeypatch):
    msg = run_error(rl_args(tiny_small, tmp_path / "x", "grpo", "--rewards", "{exact: 1.0}"), capsys, monkeypatch)
    assert msg == (f"{REPO / 'recipes/tiny/rl/grpo.yaml'}: rewards: unknown reward 'exact'; available rules: "
                   "exact_answer, format, stop, length, safety")


def test_reward_model_that_is_not_a_reward_model(tiny_small, tmp_path, capsys, monkeypatch):
    msg = run_error(rl_args(tiny_small, tmp_path / "x", "grpo", "--reward_model", str(tiny_small / "tiny-base")),
                    capsys, monkeypatch)
    assert msg.startswith(f"reward_model {tiny_small / 'tiny-base'}: not a reward model (architectures "
                          "['LlamaForCausalLM'])")


def test_prompt_data_without_prompt_column(tiny_small, tmp_path, capsys, monkeypatch):
    data = tmp_path / "questions.jsonl"
    data.write_text(json.dumps({"question": "What is the capital of Voovia?", "reference": "Marsal"}) + "\n")
    msg = run_error(rl_args(tiny_small, tmp_path / "x", "grpo", "--datasets", f"[{{path: {data}}}]"),
                    capsys, monkeypatch)
    assert msg.startswith(f"datasets: {data}: no known format matches keys ['question', 'reference']")
    assert msg.endswith("online RL needs prompt rows: a `prompt` column (rename yours with columns: "
                        "{your_column: prompt}) or `messages` conversations")


def test_rule_whose_reference_column_is_missing(tiny_small, tmp_path, capsys, monkeypatch):
    data = tmp_path / "prompts.jsonl"
    data.write_text(json.dumps({"prompt": "What is the capital of Voovia?"}) + "\n")
    msg = run_error(rl_args(tiny_small, tmp_path / "x", "grpo", "--datasets", f"[{{path: {data}}}]",
                            "--rewards", "{exact_answer: 1.0}"), capsys, monkeypatch)
    assert msg == ("rewards: rule 'exact_answer' reads column 'reference', which the prompt data (datasets) lacks "
                   "(columns: prompt); add it to the rows or drop 'exact_answer' from rewards")


def test_trl_reward_weights_are_refused(tiny_small, tmp_path, capsys, monkeypatch):
    msg = run_error(rl_args(tiny_small, tmp_path / "x", "grpo", "--reward_weights", "1.0", "2.0"), capsys, monkeypatch)
    assert msg.startswith("reward_weights: set weights in `rewards: {name: weight}`")


def test_grpo_from_a_lora_sft_adapter_with_a_new_lora(tiny_small, tmp_path):
    """An adapter policy is merged first (the KL reference must be the SFT model, not the base under it);
    with use_peft a fresh adapter trains on top and the merged policy stays untouched."""
    from finetune.sft import main as sft_main

    sft = tmp_path / "sft-lora"
    sft_main([str(REPO / "recipes/tiny/sft/lora.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
              "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]", "--output_dir", str(sft),
              "--max_steps", "2", "--save_strategy", "no", "--gradient_checkpointing", "false"])
    out = tmp_path / "rl-lora"
    rl_main(rl_args(tiny_small, out, "grpo", "--model_name_or_path", str(sft), "--use_peft", "true",
                    "--lora_r", "4", "--lora_target_modules", "all-linear"))
    init = out / "policy-init"
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(init)
    merged = load_file(str(init / "model.safetensors"))
    base = load_file(str(tiny_small / "tiny-base/model.safetensors"))
    assert any(not torch.equal(merged[k], base[k]) for k in base)  # the SFT adapter is in the starting policy
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at zero: it trained


def test_fast_grpo_in_a_recipe_of_another_method_is_an_error(tiny_small, tmp_path, capsys, monkeypatch):
    msg = run_error(rl_args(tiny_small, tmp_path / "x", "rloo", "--fast_grpo", "true"), capsys, monkeypatch)
    assert msg.endswith("fast_grpo applies to method grpo only; remove it from this rloo recipe"), msg
