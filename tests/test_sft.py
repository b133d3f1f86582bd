"""finetune/sft.py end to end on the seconds-sized tiny base: full, LoRA, QLoRA, DoRA, resume, manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from corral.checkpoints import COMPLETE_MARKER
from corral.errors import CorralError
from finetune.sft import main as sft_main

REPO = Path(__file__).resolve().parent.parent


def sft_args(tiny_small: Path, recipe: str, out: Path, *extra: str) -> list[str]:
    return [str(REPO / "recipes/tiny/sft" / recipe),
            "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]",
            "--output_dir", str(out), "--num_train_epochs", "1", "--logging_steps", "1",
            "--gradient_checkpointing", "false", *extra]


def base_state(tiny_small: Path) -> dict[str, torch.Tensor]:
    return load_file(str(tiny_small / "tiny-base" / "model.safetensors"))


def losses(out: Path) -> list[float]:
    log = json.loads((out / "run_manifest.json").read_text())["log_history"]
    return [e["loss"] for e in log if "loss" in e]


def test_full_sft_trains_every_layer_and_freezes_embeddings_except_chat_tokens(tiny_small, tiny_tokenizer, tmp_path):
    out = tmp_path / "full"
    sft_main(sft_args(tiny_small, "full.yaml", out, "--learning_rate", "1e-3"))
    before, after = base_state(tiny_small), load_file(str(out / "model.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    frozen = [k for k in before if torch.equal(before[k], after[k])]
    assert all(k in changed for k in before if "layers." in k and k.endswith("weight")), frozen
    emb_before, emb_after = before["model.embed_tokens.weight"], after["model.embed_tokens.weight"]
    chat_ids = [tiny_tokenizer.convert_tokens_to_ids(t) for t in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")]
    rows_changed = (emb_before != emb_after).any(dim=1).nonzero().flatten().tolist()
    assert rows_changed == sorted(chat_ids)  # only the re-initialised chat-token rows moved
    ls = losses(out)
    assert sum(ls[-3:]) / 3 < sum(ls[:3]) / 3  # loss falls

    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["config"]["SFTConfig"]["learning_rate"] == 1e-3  # CLI override wins over the YAML
    assert manifest["libraries"]["trl"] and manifest["data"]["fingerprint"]
    assert manifest["data"]["special_tokens_reinitialised"] == ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    gen = json.loads((out / "generation_config.json").read_text())
    assert tiny_tokenizer.convert_tokens_to_ids("<|eot_id|>") in gen["eos_token_id"]  # chat model stops at <|eot_id|>
    assert any((p / COMPLETE_MARKER).is_file() for p in out.glob("checkpoint-*"))


def _lora_run(tiny_small, tmp_path, recipe, *extra):
    out = tmp_path / recipe.removesuffix(".yaml")
    sft_main(sft_args(tiny_small, recipe, out, *extra))
    adapter = load_file(str(out / "adapter_model.safetensors"))
    return out, adapter


@pytest.mark.parametrize("recipe", ["lora.yaml", "dora.yaml"])
def test_lora_and_dora_train_adapters_and_chat_token_rows_only(tiny_small, tmp_path, recipe):
    out, adapter = _lora_run(tiny_small, tmp_path, recipe, "--merge_adapter", "true")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["use_dora"] is (recipe == "dora.yaml")
    assert cfg["trainable_token_indices"]["embed_tokens"]
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: nonzero means trained
    assert any("trainable_tokens_delta" in k for k in adapter)
    if recipe == "dora.yaml":
        assert any("lora_magnitude_vector" in k for k in adapter)
    # the base checkpoint on disk is untouched, and the merged model differs from it in every layer
    merged = load_file(str(out / "merged" / "model.safetensors"))
    before = base_state(tiny_small)
    assert set(merged) == set(before)
    assert not torch.equal(merged["model.layers.0.self_attn.q_proj.weight"], before["model.layers.0.self_attn.q_proj.weight"])
    ls = losses(out)
    assert ls[-1] < ls[0]


def test_lora_leaves_base_weights_unchanged_in_memory(tiny_small, tmp_path):
    """Within the trained PeftModel itself, the frozen base weights equal the checkpoint's."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out, _ = _lora_run(tiny_small, tmp_path, "lora.yaml")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base"), out)
    before = base_state(tiny_small)
    for name, p in model.base_model.model.named_parameters():
        if "lora_" in name or "token_adapter" in name:
            continue
        key = name.replace(".base_layer", "")
        assert torch.equal(p.detach(), before[key]), name


def test_qlora_trains_on_cpu_with_4bit_base(tiny_small, tmp_path):
    out, adapter = _lora_run(tiny_small, tmp_path, "qlora.yaml")
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["config"]["ModelConfig"]["load_in_4bit"] is True
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    ls = losses(out)
    assert ls[-1] < ls[0]


def test_resume_on_other_data_or_a_rebuilt_start_model_stops_before_the_model_loads(tiny_small, tmp_path):
    """Session 9: a killed run's checkpoint was resumed on a rebuilt base (another tokenizer) and trained garbage."""
    out = tmp_path / "resume-inputs"
    args = sft_args(tiny_small, "lora.yaml", out, "--save_strategy", "steps", "--save_steps", "4")
    sft_main(args + ["--max_steps", "4"])
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["data"]["start_model_fingerprint"]
    rows = (tiny_small / "tiny-world/sft_train.jsonl").read_text().splitlines()
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("\n".join(rows[: len(rows) // 2]) + "\n")
    other_data = [a if "sft_train.jsonl" not in a else f"[{{path: {fewer}}}]" for a in args]
    with pytest.raises(CorralError, match=r"holds checkpoint-4 of a run on other inputs \(data fingerprint "):
        sft_main(other_data + ["--max_steps", "8"])
    rebuilt = tmp_path / "rebuilt-base"  # the same weights under a changed tokenizer file
    shutil.copytree(tiny_small / "tiny-base", rebuilt)
    tok = json.loads((rebuilt / "tokenizer.json").read_text())
    tok["added_tokens"] = tok["added_tokens"][::-1]
    (rebuilt / "tokenizer.json").write_text(json.dumps(tok))
    moved = [str(rebuilt) if a == str(tiny_small / "tiny-base") else a for a in args]
    with pytest.raises(CorralError, match=f"start model {rebuilt} fingerprint "):
        sft_main(moved + ["--max_steps", "8"])
    sft_main(args + ["--max_steps", "8"])  # the same inputs resume
    assert json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())["global_step"] == 8


def test_resume_skips_a_checkpoint_killed_mid_save(tiny_small, tmp_path):
    out = tmp_path / "resume"
    args = sft_args(tiny_small, "lora.yaml", out, "--save_strategy", "steps", "--save_steps", "4",
                    "--save_total_limit", "5")
    sft_main(args + ["--max_steps", "4"])
    assert (out / "checkpoint-4" / COMPLETE_MARKER).is_file()
    # A kill during the next save leaves a directory without the marker (and a truncated file).
    broken = out / "checkpoint-6"
    broken.mkdir()
    (broken / "adapter_model.safetensors").write_bytes(b"\x00" * 10)
    sft_main(args + ["--max_steps", "8", "--resume_from_checkpoint", "true"])
    assert not list(out.glob("checkpoint-6*"))  # removed on start: it was never marked complete
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    steps = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps[0] == 1 and 5 in steps  # continued from step 4, not from 0 and not from the broken 6


def _text_nll(model_dir: Path, texts: list[str]) -> float:
    """Mean next-token loss of `model_dir` on plain `texts` (BOS + text + EOS, as replay trains them)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        return sum(model(ids, labels=ids).loss.item() for ids in
                   (torch.tensor([tok(t)["input_ids"] + [tok.eos_token_id]]) for t in texts)) / len(texts)


def test_replayed_pretraining_text_is_trained_beside_the_conversations(tiny_small, tmp_path):
    pretrain = tiny_small / "tiny-world/pretrain.jsonl"
    runs = {}
    for name, extra in (("plain", ()), ("replay", ("--replay_datasets", f"[{{path: {pretrain}}}]", "--replay_mix", "0.5"))):
        runs[name] = tmp_path / name
        sft_main(sft_args(tiny_small, "full.yaml", runs[name], "--learning_rate", "3e-3", "--max_steps", "12", *extra))
    data = json.loads((runs["replay"] / "run_manifest.json").read_text())["data"]
    plain = json.loads((runs["plain"] / "run_manifest.json").read_text())["data"]
    assert data["train_rows"] == plain["train_rows"]  # the conversations are all still there
    assert data["replay_rows"] == pytest.approx(data["train_rows"], rel=0.05)  # half of the rows are replayed text
    assert data["replay_sources"][0]["path"] == str(pretrain) and data["fingerprint"] != plain["fingerprint"]
    texts = [json.loads(line)["text"] for line in pretrain.read_text().splitlines()[:40]]
    # the run that replays the base's text forgets less of it than the same run without
    nll = {name: _text_nll(out, texts) for name, out in runs.items()}
    assert nll["replay"] < nll["plain"]
