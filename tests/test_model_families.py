"""Every family recipe (Llama 3.1 8B/70B/405B, Llama 4 Scout) trains a scaled-down model of its family.

For each family the published config.json in recipes/_model_configs/ is shrunk (hidden size, layers,
experts, vocabulary) while what makes the family keep its shape: the model class, the ratio of query
to key/value heads (GQA), the RoPE scaling type and its settings, the MoE layout (every layer MoE,
one routed expert per token, a shared expert, NoPE every 4th layer, QK norm) and tied or untied
embeddings. The model is saved with the tiny world's tokenizer (plus Llama 4's chat tokens for
Scout) and trained a few steps on CPU by `finetune.sft.main` with the family's own recipe; the
command line overrides only the model path, data, length, steps and GPU-only settings (bf16).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finetune.sft import main as sft_main

REPO = Path(__file__).resolve().parent.parent
FAMILIES = {  # recipe directory -> recipes/_model_configs/ entry
    "llama3.1-8b": "Llama-3.1-8B",
    "llama3.1-70b": "Llama-3.1-70B",
    "llama3.1-405b": "Llama-3.1-405B",
    "llama4-scout": "Llama-4-Scout-17B-16E",
}
RECIPES = sorted(p for family in FAMILIES for p in (REPO / "recipes" / family / "sft").glob("*.yaml"))
# Llama 4's chat tokens stand where Llama 3's were: the tiny tokenizer then has Llama 4's chat vocabulary.
LLAMA3_TO_LLAMA4 = {"<|start_header_id|>": "<|header_start|>", "<|end_header_id|>": "<|header_end|>",
                    "<|eot_id|>": "<|eot|>", "<|eom_id|>": "<|eom|>", "<|finetune_right_pad_id|>": "<|finetune_right_pad|>"}
HEAD_DIM = 8


def published(family: str) -> dict:
    return json.loads((REPO / "recipes/_model_configs" / FAMILIES[family] / "config.json").read_text())


def scaled_down(config: dict, vocab_size: int) -> dict:
    """The same family and config shape at a few hundred thousand parameters."""
    small = dict(config)
    ratio = config["num_attention_heads"] // config["num_key_value_heads"]
    kv_heads = 1 if ratio > 8 else 2
    hidden = ratio * kv_heads * HEAD_DIM
    small.update(num_attention_heads=ratio * kv_heads, num_key_value_heads=kv_heads, hidden_size=hidden,
                 vocab_size=vocab_size, torch_dtype="float32", use_cache=False)
    small.pop("eos_token_id"), small.pop("bos_token_id"), small.pop("pad_token_id", None)
    if config["model_type"] == "llama4_text":
        small.update(head_dim=HEAD_DIM, num_hidden_layers=4,  # layer 3 is a NoPE layer, as every 4th in Scout
                     num_local_experts=4, intermediate_size=hidden // 2, intermediate_size_mlp=hidden * 2)
    else:
        mlp_ratio = config["intermediate_size"] / config["hidden_size"]
        small.update(num_hidden_layers=2, intermediate_size=8 * round(hidden * mlp_ratio / 8))
    return small


@pytest.fixture(scope="module")
def family_checkpoints(tiny_small, tmp_path_factory) -> dict[str, Path]:
    """One scaled-down checkpoint per family, with a tokenizer, saved like a Hub download."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("families")
    out = {}
    for family in FAMILIES:
        tok = AutoTokenizer.from_pretrained(_llama4_tokenizer(tiny_small, root) if family.startswith("llama4")
                                            else tiny_small / "tiny-base")
        cfg = scaled_down(published(family), len(tok))
        cfg.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), dtype=torch.float32)
        out[family] = root / family
        model.save_pretrained(out[family])
        tok.chat_template = None  # a base checkpoint: the recipe's template applies
        tok.save_pretrained(out[family])
    return out


def _llama4_tokenizer(tiny_small: Path, root: Path) -> Path:
    """The tiny tokenizer with Llama 4's chat tokens renamed in place and <|eot|> as eos (as in Scout-Instruct)."""
    out = root / "llama4-tokenizer"
    out.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        text = (tiny_small / "tiny-base" / name).read_text()
        for old, new in LLAMA3_TO_LLAMA4.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        (out / name).write_text(text)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config["eos_token"] = "<|eot|>"
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def test_every_family_has_recipes():
    assert {p.parent.parent.name for p in RECIPES} == set(FAMILIES)
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("family", FAMILIES)
def test_scaled_down_config_keeps_the_family_shape(family, family_checkpoints):
    big = published(family)
    small = json.loads((family_checkpoints[family] / "config.json").read_text())
    assert small["architectures"] == big["architectures"]  # LlamaForCausalLM / Llama4ForCausalLM
    assert small["model_type"] == big["model_type"]
    ratio = big["num_attention_heads"] // big["num_key_value_heads"]
    assert small["num_attention_heads"] // small["num_key_value_heads"] == ratio  # GQA groups
    assert small["tie_word_embeddings"] == big["tie_word_embeddings"]
    assert small["rope_parameters"]["rope_type"] == big["rope_scaling"]["rope_type"] == "llama3"
    for key in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
        assert small["rope_parameters"][key] == big["rope_scaling"][key], key
    if family.startswith("llama4"):
        for key in ("interleave_moe_layer_step", "num_experts_per_tok", "use_qk_norm", "attention_chunk_size"):
            assert small[key] == big[key], key
        assert small["no_rope_layers"] == [1, 1, 1, 0]  # NoPE every 4th layer, as in Scout
        assert small["num_local_experts"] > small["num_experts_per_tok"]


def _family_args(recipe: Path, checkpoint: Path, data: Path, out: Path) -> list[str]:
    args = [str(recipe), "--model_name_or_path", str(checkpoint), "--datasets", f"[{{path: {data}}}]",
            "--output_dir", str(out), "--max_steps", "3", "--max_length", "256", "--per_device_train_batch_size", "4",
            "--gradient_accumulation_steps", "1", "--learning_rate", "1e-3", "--warmup_steps", "0",
            "--logging_steps", "1", "--save_strategy", "no", "--eval_strategy", "no", "--test_split_size", "0",
            "--dtype", "float32", "--bf16", "false", "--use_cpu", "true"]
    if recipe.parent.parent.name.startswith("llama4"):  # the recipe's path is relative to the repo root
        args += ["--chat_template", str(REPO / "recipes/llama4-scout/chat_template.jinja")]
    return args


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(REPO / "recipes")))
def test_family_recipe_trains_a_scaled_down_model(recipe, family_checkpoints, tiny_small, tmp_path):
    family = recipe.parent.parent.name
    out = tmp_path / "out"
    sft_main(_family_args(recipe, family_checkpoints[family], tiny_small / "tiny-world/sft_train.jsonl", out))

    manifest = json.loads((out / "run_manifest.json").read_text())
    losses = [e["loss"] for e in manifest["log_history"] if "loss" in e]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    saved = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else None
    before = load_file(str(family_checkpoints[family] / "model.safetensors"))
    if (out / "adapter_model.safetensors").is_file():  # LoRA / QLoRA
        adapter = load_file(str(out / "adapter_model.safetensors"))
        lora_b = {k: v for k, v in adapter.items() if "lora_B" in k}
        assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero: trained
        targets = json.loads((out / "adapter_config.json").read_text())["target_modules"]
        if family.startswith("llama4"):  # attention and shared expert; never the router
            assert any("shared_expert" in k for k in lora_b) and not any("router" in k for k in adapter)
        else:  # all-linear: attention and MLP of every layer
            assert {t.rsplit(".", 1)[-1] for t in targets} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                              "up_proj", "down_proj"}
    else:  # full fine-tuning: every decoder weight moved, architecture unchanged
        after = load_file(str(out / "model.safetensors"))
        moved = [k for k in before if "layers." in k and not torch.equal(before[k], after[k])]
        assert len(moved) >= len([k for k in before if "layers." in k and "norm" not in k])
        assert saved["architectures"] == published(family)["architectures"]
        if family.startswith("llama4"):
            assert any("experts.gate_up_proj" in k for k in moved)  # routed experts train in full FT


def _load_args(path: Path, router_aux_loss_coef):
    from types import SimpleNamespace

    from trl import ModelConfig

    return (ModelConfig(model_name_or_path=str(path), dtype="float32"),
            SimpleNamespace(bf16=False, model_init_kwargs=None, max_length=256, router_aux_loss_coef=router_aux_loss_coef))


def test_scouts_multimodal_checkpoint_loads_as_its_text_model(tmp_path):
    """The Scout recipes name Meta's multimodal checkpoint; corral's loader must yield the text model, weights intact."""
    from transformers import Llama4Config, Llama4ForConditionalGeneration

    from corral.loading import CheckpointError, load_causal_lm

    text = scaled_down(published("llama4-scout"), 300)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=56,
                  patch_size=14, vision_output_dim=32, projector_input_dim=32, projector_output_dim=32)
    torch.manual_seed(0)
    multimodal = Llama4ForConditionalGeneration(Llama4Config(text_config=text, vision_config=vision))
    multimodal.save_pretrained(tmp_path / "scout")

    with pytest.raises(CheckpointError) as info:  # TRL 1.16 would fail deep in its first step
        load_causal_lm(*_load_args(tmp_path / "scout", None))
    assert str(info.value) == (f"{tmp_path / 'scout'}: set router_aux_loss_coef: 0.0 in the recipe; TRL would add "
                               "Mixtral's load-balancing loss with coefficient 0.001 from the config and fail reading "
                               "config.num_experts, which Llama4TextConfig lacks (transformers' own model adds no such loss)")
    model = load_causal_lm(*_load_args(tmp_path / "scout", 0.0))
    assert type(model).__name__ == "Llama4ForCausalLM"
    assert model.base_model is model.model  # what TRL's fused LM head calls
    full = multimodal.state_dict()
    text_weights = model.state_dict()
    assert len(text_weights) == len([k for k in full if k.startswith("language_model.")])
    for key, value in text_weights.items():
        torch.testing.assert_close(value, full[f"language_model.{key}"])
