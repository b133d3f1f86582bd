"""`corral export`: a LoRA run becomes a full model that plain transformers loads and that generates the run's
greedy text, with tokenizer, chat template, eot stop, shards and a model card; bad input is one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apps.export import main as export_main
from corral.run_report import base_license, model_card
from tests.after_training import REPO, heldout_prompts, lora_run


@pytest.fixture(scope="module")
def run_dir(tiny_small, tmp_path_factory):
    return lora_run(tiny_small, tmp_path_factory.getbasetemp() / "after-training")


def greedy(model, tok, messages_list, max_new_tokens=16) -> list[str]:
    import torch

    stop = [tok.convert_tokens_to_ids(t) for t in ("<|eot_id|>", "<|end_of_text|>")]
    out = []
    for messages in messages_list:
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)["input_ids"]
        with torch.no_grad():
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=stop, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    return out


def test_exported_lora_run_loads_with_plain_transformers_and_generates_the_runs_greedy_text(
        run_dir, tiny_small, tmp_path, capsys):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"suite": {"path": "heldout_capitals.jsonl"},
                                   "models": {"base": {"accuracy": 0.1}, "sft": {"accuracy": 0.75}}}))
    out = tmp_path / "exported" / "tiny-sft"
    assert export_main([str(run_dir), "--out", str(out), "--evals", str(results), "--max-shard-size", "200KB"]) == 0
    assert capsys.readouterr().out.startswith(f"exported {run_dir} -> {out} (")
    assert [p.name for p in out.parent.iterdir()] == ["tiny-sft"]  # no temporary directory left

    files = {p.name for p in out.iterdir()}
    assert "model.safetensors.index.json" in files and len([f for f in files if f.endswith(".safetensors")]) >= 2
    assert not any(f.startswith("adapter_") for f in files)
    assert {"README.md", "run_manifest.json", "generation_config.json", "tokenizer.json"} <= files

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert tok.chat_template and "<|start_header_id|>" in tok.chat_template
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert eot in json.loads((out / "generation_config.json").read_text())["eos_token_id"]

    prompts = heldout_prompts(tiny_small, 8)
    run_model = AutoPeftModelForCausalLM.from_pretrained(run_dir).eval()  # the run's own model, unmerged
    run_tok = AutoTokenizer.from_pretrained(run_dir)
    assert greedy(model, tok, prompts) == greedy(run_model, run_tok, prompts)

    card = (out / "README.md").read_text()
    manifest = json.loads((run_dir / "run_manifest.json").read_text())
    assert card.startswith("---\n") and "license: apache-2.0" in card and "licence" not in card
    assert "[None]" not in card and "# tiny-sft" in card
    assert "The LoRA adapter is merged into the base" in card and "embedded tiny model" in card
    assert manifest["data"]["fingerprint"] in card and f"`{manifest['data']['train_rows']}`" in card
    assert "| learning_rate | 0.003 |" in card and "| lora_r | 16 |" in card
    assert f"- trl: {manifest['libraries']['trl']}" in card
    assert "| sft | 0.75 |" in card  # the --evals table


@pytest.mark.parametrize("base, license_id, attribution, policy", [
    ("meta-llama/Meta-Llama-3-8B", "llama3", "Built with Meta Llama 3", "https://www.llama.com/llama3/use-policy/"),
    ("meta-llama/Llama-3.1-8B", "llama3.1", "Built with Llama", "https://www.llama.com/llama3_1/use-policy/"),
    ("/models/Llama-4-Scout-17B-16E", "llama4", "Built with Llama", "https://www.llama.com/llama4/use-policy/"),
])
def test_card_of_a_llama_base_carries_its_license_attribution_and_use_policy(base, license_id, attribution, policy):
    manifest = {"script": "finetune/sft.py", "status": "finished", "libraries": {"trl": "1.16.0"},
                "config": {"ModelConfig": {"model_name_or_path": base, "use_peft": True, "lora_r": 8},
                           "SFTConfig": {"learning_rate": 2e-4}},
                "data": {"fingerprint": "abc123", "train_rows": 10,
                         "sources": [{"path": "data/chat.jsonl", "format": "messages", "rows": 10}]}}
    assert base_license(base).hub_id == license_id
    text = str(model_card(manifest, "Llama-x-chat"))
    assert f"license: {license_id}\n" in text
    assert f"**{attribution}**" in text and f"[Acceptable Use Policy]({policy})" in text
    assert "| data/chat.jsonl | messages | 10 |" in text and "SFT, LoRA" in text
    assert ("base_model: " + base) in text if not base.startswith("/") else "base_model" not in text


def test_card_of_an_unknown_base_asks_for_its_license():
    lic = base_license("someone/mystery-7b")
    assert lic.hub_id == "other" and "did not recognise the license" in lic.note


def test_export_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    assert export_main([str(empty), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {empty}: not a run or model directory (no config.json or "
                                       "adapter_config.json); give a training run's output_dir\n")

    orphan = tmp_path / "orphan"
    shutil.copytree(run_dir, orphan, ignore=shutil.ignore_patterns("merged", "runs"))
    cfg = json.loads((orphan / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "gone-base")
    (orphan / "adapter_config.json").write_text(json.dumps(cfg))
    assert export_main([str(orphan), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {orphan}: base model '{tmp_path / 'gone-base'}'") and err.count("\n") == 1

    assert export_main([str(run_dir), "--out", str(empty)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["empty", "orphan"]


def test_push_to_hub_needs_a_token_before_anything_loads(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored login
    assert export_main([str(run_dir), "--out", str(tmp_path / "out"), "--push-to-hub", "me/tiny"]) == 2
    assert capsys.readouterr().err == ("error: --push-to-hub needs a Hugging Face token: run `hf auth login` "
                                       "or set HF_TOKEN\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a full export in a subprocess
def test_push_to_hub_goes_as_far_as_the_network(run_dir, tmp_path):
    """With a token and an unreachable Hub endpoint, the export completes and the upload fails in one line."""
    out = tmp_path / "out"
    env = {**os.environ, "HF_TOKEN": "hf_not_a_real_token", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": "http://127.0.0.1:9", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-m", "apps.cli", "export", str(run_dir), "--out", str(out),
                           "--push-to-hub", "me/tiny-sft"], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --push-to-hub me/tiny-sft failed (") and done.stderr.count("\n") == 1
    assert f"the export is complete in {out}; retry with `hf upload me/tiny-sft {out}`" in done.stderr
    assert (out / "README.md").is_file() and (out / "model.safetensors").is_file()
