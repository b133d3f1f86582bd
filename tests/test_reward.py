"""reward/train.py and reward.score on the seconds-sized tiny world: training, held-out report, scoring API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from eval_fixtures import random_reward_model
from safetensors.torch import load_file

import reward
from evals.reward_model import RewardModelError, conversation_ids
from reward.train import main as reward_main

REPO = Path(__file__).resolve().parent.parent


def rm_args(tiny_small: Path, recipe: str, out: Path, *extra: str) -> list[str]:
    world = tiny_small / "tiny-world"
    return [str(REPO / "recipes/tiny/reward" / recipe),
            "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {world / 'pref_train.jsonl'}}}]",
            "--eval_datasets", f"[{{path: {world / 'pref_heldout.jsonl'}}}]",
            "--output_dir", str(out), "--max_steps", "6", "--per_device_train_batch_size", "8",
            "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no", *extra]


def test_full_reward_model_trains_and_reports_heldout_accuracy(tiny_small, tmp_path):
    out = tmp_path / "rm"
    trainer = reward_main(rm_args(tiny_small, "full.yaml", out, "--learning_rate", "1e-3"))
    log = [e for e in trainer.state.log_history if "loss" in e]
    assert len(log) == 6 and all(0 <= e["accuracy"] <= 1 and "margin" in e for e in log)

    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"] and len(config["id2label"]) == 1
    assert config["pad_token_id"] == trainer.processing_class.pad_token_id  # the head needs it to find the last token
    before, after = load_file(str(tiny_small / "tiny-base/model.safetensors")), load_file(str(out / "model.safetensors"))
    assert "score.weight" in after and "lm_head.weight" not in after
    layers = [k for k in before if k.startswith("model.layers.")]
    assert layers and all(not torch.equal(before[k], after[k]) for k in layers)

    report = json.loads((out / "heldout_accuracy.json").read_text())
    rows = [json.loads(line) for line in (tiny_small / "tiny-world/pref_heldout.jsonl").read_text().splitlines()]
    assert report["pairs"] == len(rows) and report["source"] == "eval_datasets"
    chosen, rejected = reward.pairwise(out, rows, batch_size=64)  # the report is what the scoring API says
    assert report["accuracy"] == sum(c > r for c, r in zip(chosen, rejected)) / len(rows)
    assert (out / "reward_margins.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["heldout"]["accuracy"] == report["accuracy"]


def test_lora_reward_model_keeps_base_frozen_and_saves_a_merged_scorer(tiny_small, tmp_path, monkeypatch):
    import corral.checkpoints as checkpoints
    import reward.train as train

    frozen = {}
    real_save = checkpoints.save_atomically

    def spy(save, out):  # the first save is the adapter, before the LoRA delta is merged into the base
        if not frozen:
            model = save.__self__.model
            frozen.update({n.replace("base_model.model.", "").replace(".base_layer", ""): p.detach().clone()
                           for n, p in model.named_parameters() if "lora_" not in n and "score" not in n})
        real_save(save, out)

    monkeypatch.setattr(checkpoints, "save_atomically", spy)
    out = tmp_path / "rm-lora"
    train.main(rm_args(tiny_small, "lora.yaml", out, "--eval_datasets", "[]"))
    before = load_file(str(tiny_small / "tiny-base/model.safetensors"))
    assert frozen and all(torch.equal(p, before[n]) for n, p in frozen.items())
    adapter = load_file(str(out / "adapter/adapter_model.safetensors"))
    assert any("score" in k for k in adapter), "the new head is trained in full and saved with the adapter"
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    merged = load_file(str(out / "model.safetensors"))
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[q], before[q])  # the LoRA delta is merged in
    assert not (out / "heldout_accuracy.json").exists()  # no held-out data, no report
    assert len(reward.score(out, ["What is 2 + 3?"], ["2 + 3 = 5."])) == 1


def test_margin_column_enters_the_loss(tiny_small, tmp_path):
    rows = [json.loads(line) for line in (tiny_small / "tiny-world/pref_train.jsonl").read_text().splitlines()[:32]]
    data = tmp_path / "margins.jsonl"
    data.write_text("".join(json.dumps({**r, "margin": 3.0}) + "\n" for r in rows))
    out = tmp_path / "rm-margin"
    trainer = reward_main(rm_args(tiny_small, "full.yaml", out, "--datasets", f"[{{path: {data}}}]",
                                  "--eval_datasets", "[]", "--max_steps", "1", "--learning_rate", "0"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert torch.equal(batch["margin"], torch.full((4,), 3.0))
    with torch.no_grad():
        loss_with = trainer.compute_loss(trainer.model, dict(batch))
        batch.pop("margin")
        loss_without = trainer.compute_loss(trainer.model, dict(batch))
    assert loss_with > loss_without  # -log sigmoid(r_c - r_r - 3) > -log sigmoid(r_c - r_r)


def test_score_reads_the_head_at_the_last_token_whatever_the_batch(tiny_tokenizer):
    model = random_reward_model(tiny_tokenizer)
    prompts = ["What is 2 + 3?", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "x"]
    responses = ["2 + 3 = 5.", "Hello! How can I help you today?", "The capital of Ka is Lo."]
    # By hand: the decoder's last hidden state at the final token, times the head.
    expected = []
    for p, r in zip(prompts, responses):
        ids = torch.tensor([conversation_ids(tiny_tokenizer, p, r, 10_000)])
        with torch.no_grad():
            hidden = model.model(input_ids=ids).last_hidden_state[0, -1]
        expected.append((hidden @ model.score.weight[0]).item())
    text = tiny_tokenizer.decode(conversation_ids(tiny_tokenizer, prompts[0], responses[0], 10_000))
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n2 + 3 = 5.<|eot_id|>")
    for batch_size in (1, 2, 3):
        got = reward.score(model, prompts, responses, tokenizer=tiny_tokenizer, batch_size=batch_size)
        torch.testing.assert_close(torch.tensor(got), torch.tensor(expected), rtol=1e-5, atol=1e-5)
    as_messages = reward.score(model, [[{"role": "user", "content": "What is 2 + 3?"}]], ["2 + 3 = 5."],
                               tokenizer=tiny_tokenizer)
    assert as_messages == pytest.approx(expected[:1], abs=1e-5)


def test_a_checkpoint_that_is_not_a_reward_model_is_one_line(tiny_small, tiny_tokenizer, tmp_path):
    base = tiny_small / "tiny-base"
    with pytest.raises(RewardModelError) as err:
        reward.score(base, ["hi"], ["hello"])
    assert str(err.value) == (f"{base}: not a reward model (architectures ['LlamaForCausalLM']); "
                              "expected an AutoModelForSequenceClassification checkpoint with num_labels=1")
    two = random_reward_model(tiny_tokenizer)
    two.config.num_labels = 2
    two.save_pretrained(tmp_path / "cls2")
    with pytest.raises(RewardModelError, match=r"not a reward model \(num_labels=2\)"):
        reward.score(tmp_path / "cls2", ["hi"], ["hello"])
    with pytest.raises(RewardModelError, match="^score: 2 prompts but 1 responses$"):
        reward.score(random_reward_model(tiny_tokenizer), ["a", "b"], ["c"], tokenizer=tiny_tokenizer)
