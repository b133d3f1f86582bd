"""finetune/dpo.py on the seconds-sized tiny world: every loss type and method trains, LoRA keeps the base frozen,
the reference is the start model, and the DPO losses equal a hand computation on fixed log-probs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from finetune.dpo import main as dpo_main

REPO = Path(__file__).resolve().parent.parent


def dpo_args(tiny_small: Path, recipe: str, out: Path, *extra: str, model: Path | None = None) -> list[str]:
    return [str(REPO / "recipes/tiny" / recipe),
            "--model_name_or_path", str(model or tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/pref_train.jsonl'}}}]",
            "--eval_datasets", "[]", "--output_dir", str(out), "--max_steps", "3",
            "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--warmup_steps", "0",
            "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no", *extra]


def base_state(tiny_small: Path) -> dict[str, torch.Tensor]:
    return load_file(str(tiny_small / "tiny-base" / "model.safetensors"))


def assert_every_layer_changed(tiny_small: Path, out: Path, embeddings_frozen: bool = True) -> None:
    before, after = base_state(tiny_small), load_file(str(out / "model.safetensors"))
    layers = [k for k in before if k.startswith("model.layers.") and k.endswith("proj.weight")]
    unchanged = [k for k in layers if torch.equal(before[k], after[k])]
    assert layers and not unchanged, unchanged
    # freeze_embeddings (default true): the tied embedding/output matrix stays as it was
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"]) is embeddings_frozen


LOSSES = {  # name: (loss_type, extra options)
    "sigmoid": (["sigmoid"], []),
    "ipo": (["ipo"], []),
    "hinge": (["hinge"], []),
    "robust": (["robust"], ["--label_smoothing", "0.1"]),
    "sigmoid+sft": (["sigmoid", "sft"], ["--loss_weights", "1.0", "0.5"]),  # RPO-style: DPO plus NLL on chosen
    "sigmoid, embeddings trained": (["sigmoid"], ["--freeze_embeddings", "false"]),
}


@pytest.mark.parametrize("loss", LOSSES)
def test_every_dpo_loss_type_trains_every_layer(tiny_small, tmp_path, loss):
    loss_types, extra = LOSSES[loss]
    out = tmp_path / loss
    trainer = dpo_main(dpo_args(tiny_small, "dpo/full.yaml", out, "--loss_type", *loss_types, *extra))
    assert trainer.loss_types == loss_types
    assert_every_layer_changed(tiny_small, out, embeddings_frozen="--freeze_embeddings" not in extra)
    log = [e for e in trainer.state.log_history if "loss" in e]
    assert len(log) == 3 and all("rewards/accuracies" in e for e in log)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["config"]["DPOConfig"]["loss_type"] == loss_types


@pytest.mark.parametrize("recipe, method", [("kto/full.yaml", "kto"), ("orpo/full.yaml", "orpo"),
                                            ("simpo/full.yaml", "simpo")])
def test_kto_orpo_and_simpo_train_every_layer(tiny_small, tmp_path, recipe, method):
    out = tmp_path / method
    trainer = dpo_main(dpo_args(tiny_small, recipe, out))
    assert type(trainer).__name__ == {"kto": "KTOTrainer", "orpo": "ORPOTrainer", "simpo": "CPOTrainer"}[method]
    assert_every_layer_changed(tiny_small, out)
    if method == "kto":  # pairs became unpaired rows, both labels present, shuffled for TRL's sequential sampler
        labels = trainer.train_dataset["label"]
        assert set(labels) == {True, False} and labels[:6] != [True, False] * 3
    else:
        assert getattr(trainer, "ref_model", None) is None  # reference-free


@pytest.mark.parametrize("precompute", [False, True])
def test_lora_dpo_trains_adapters_only_against_the_adapter_disabled_model(tiny_small, tmp_path, precompute):
    out = tmp_path / "lora"
    trainer = dpo_main(dpo_args(tiny_small, "dpo/lora.yaml", out, "--precompute_ref_log_probs", str(precompute).lower()))
    assert trainer.ref_model is None  # the reference is the model with its adapter disabled
    assert ("ref_chosen_logps" in trainer.train_dataset.column_names) is precompute
    before = base_state(tiny_small)
    model = trainer.accelerator.unwrap_model(trainer.model)
    for name, p in model.base_model.model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p.detach(), before[name.replace(".base_layer", "")]), name
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)


def test_full_dpo_reference_is_the_untouched_start_model(tiny_small, tmp_path):
    trainer = dpo_main(dpo_args(tiny_small, "dpo/full.yaml", tmp_path / "full", "--precompute_ref_log_probs", "false"))
    before = base_state(tiny_small)
    ref = trainer.accelerator.unwrap_model(trainer.ref_model)
    for name, p in ref.named_parameters():
        assert torch.equal(p.detach(), before[name]), name


def test_an_sft_lora_adapter_is_merged_and_the_result_saved_as_a_full_model(tiny_small, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sft = tmp_path / "sft-adapter"
    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base"),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(sft)
    AutoTokenizer.from_pretrained(tiny_small / "tiny-base").save_pretrained(sft)
    merged_sft = peft_model.merge_and_unload().state_dict()

    full = dpo_main(dpo_args(tiny_small, "dpo/full.yaml", tmp_path / "full", "--precompute_ref_log_probs", "false",
                             model=sft))
    ref = full.accelerator.unwrap_model(full.ref_model)  # an explicit frozen copy of the merged SFT model
    assert all(torch.equal(p, merged_sft[n]) for n, p in ref.state_dict().items())

    out = tmp_path / "lora"
    dpo_main(dpo_args(tiny_small, "dpo/lora.yaml", out, model=sft))
    assert not (out / "adapter_config.json").exists()  # an adapter on an in-memory base would mislead
    saved = load_file(str(out / "model.safetensors"))
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(saved[q], merged_sft[q]) and not torch.equal(saved[q], base_state(tiny_small)[q])


def test_heldout_metrics_are_recorded_before_and_after_training(tiny_small, tmp_path):
    out = tmp_path / "eval"
    dpo_main(dpo_args(tiny_small, "dpo/full.yaml", out, "--eval_datasets",
                      f"[{{path: {tiny_small / 'tiny-world/pref_heldout.jsonl'}}}]", "--per_device_eval_batch_size", "64"))
    heldout = json.loads((out / "run_manifest.json").read_text())["heldout"]
    assert heldout["before"]["eval_rewards/accuracies"] == 0.0  # policy == reference: every reward is 0
    assert heldout["before"]["eval_rewards/margins"] == 0.0
    assert heldout["after"]["eval_rewards/margins"] != 0.0


# --- the loss itself: TRL's DPO path, as corral builds it, against the formulas -----------------------------


def _hand_loss(loss_types, weights, beta, eps, chosen, rejected, ref_chosen, ref_rejected, lengths, sft_nll):
    """DPO-family losses from summed completion log-probs, written from the papers."""
    delta = (chosen - ref_chosen) - (rejected - ref_rejected)
    total = 0.0
    for loss_type, w in zip(loss_types, weights):
        if loss_type == "sigmoid":  # DPO, Rafailov et al. 2023, eq. 7
            per = -F.logsigmoid(beta * delta)
        elif loss_type == "hinge":  # SLiC
            per = torch.relu(1 - beta * delta)
        elif loss_type == "ipo":  # IPO, Azar et al. 2023, eq. 17, with log-ratios averaged per token (as TRL)
            avg = (chosen - ref_chosen) / lengths[0] - (rejected - ref_rejected) / lengths[1]
            per = (avg - 1 / (2 * beta)) ** 2
        elif loss_type == "robust":  # rDPO, Chowdhury et al. 2024: unbiased under label flips with rate eps
            per = ((1 - eps) * -F.logsigmoid(beta * delta) - eps * -F.logsigmoid(-beta * delta)) / (1 - 2 * eps)
        elif loss_type == "sft":
            per = sft_nll.expand_as(delta)
        total = total + w * per.mean()
    return total


@pytest.mark.parametrize("loss_types, weights, eps", [
    (["sigmoid"], [1.0], 0.0), (["ipo"], [1.0], 0.0), (["hinge"], [1.0], 0.0), (["robust"], [1.0], 0.2),
    (["sigmoid", "sft"], [1.0, 0.3], 0.0), (["ipo", "hinge"], [0.5, 2.0], 0.0),
])
def test_dpo_loss_equals_hand_computation_on_fixed_log_probs(tiny_small, tiny_tokenizer, tmp_path, loss_types, weights, eps):
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

    from data_prep.mixture import DatasetSpec
    from data_prep.preference_data import PreferenceDataArguments, load_preference_data
    from finetune.preference import build_trainer

    data = load_preference_data(PreferenceDataArguments(
        datasets=[DatasetSpec(str(tiny_small / "tiny-world/pref_train.jsonl"))]), "preference", seed=0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base")
    args = DPOConfig(output_dir=str(tmp_path), loss_type=loss_types, loss_weights=weights, beta=0.3,
                     label_smoothing=eps, precompute_ref_log_probs=True, use_cpu=True, bf16=False,
                     gradient_checkpointing=False, report_to="none", per_device_train_batch_size=4)
    trainer = build_trainer("dpo", model, None, args, data.train.select(range(8)), None, tiny_tokenizer, None, [])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    batch["ref_chosen_logps"] = torch.tensor([-9.0, -4.5, -12.25, -7.0])  # fixed reference log-probs
    batch["ref_rejected_logps"] = torch.tensor([-10.0, -3.0, -20.5, -6.0])
    with torch.no_grad():
        corral = trainer.compute_loss(trainer.model, dict(batch))
        # By hand: per-token log-probs of the completion tokens from plain logits, summed per sequence.
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        token_logps = logits[:, :-1].log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        mask = batch["completion_mask"][:, 1:].float()
        logps = (token_logps * mask).sum(1)
        lengths = mask.sum(1)
    chosen, rejected = logps.chunk(2)
    sft_nll = -(token_logps[:4] * mask[:4]).sum() / mask[:4].sum()
    expected = _hand_loss(loss_types, weights, 0.3, eps, chosen, rejected, batch["ref_chosen_logps"],
                          batch["ref_rejected_logps"], lengths.chunk(2), sft_nll)
    torch.testing.assert_close(corral, expected, rtol=1e-5, atol=1e-5)
