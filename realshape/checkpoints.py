"""Scaled-down, randomly initialised checkpoints of real Llama configs, with the real tokenizer.

`scaled_config` keeps what a recipe, the tokenizer and the loaders depend on: the 128,256-token
vocabulary, BOS/EOS ids, RoPE theta and scaling, max_position_embeddings, the query:key-value head
ratio (32:8 -> 4:1), the MLP:hidden ratio (14336:4096 -> 3.5) and embedding tying. Width and depth
shrink (hidden 64, 2 layers: 16.5 M parameters, nearly all of them the two 128k x 64 embeddings), so a
training step takes well under a second on CPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from realshape.tokenizers import derive

REPO = Path(__file__).resolve().parent.parent
MODEL_CONFIGS = REPO / "recipes" / "_model_configs"
# name -> (recipes/_model_configs/<dir>, tokenizer kind, instruct?)
MODELS = {
    "llama3-8b-base": ("Meta-Llama-3-8B", "llama3-base", False),
    "llama3-8b-instruct": ("Meta-Llama-3-8B", "llama3-instruct", True),
    "llama3.1-8b-base": ("Llama-3.1-8B", "llama3.1-base", False),
}
EOT_ID = 128009


def scaled_config(config_dir: str, hidden: int = 64, layers: int = 2) -> LlamaConfig:
    """The published config of `recipes/_model_configs/<config_dir>`, `hidden` wide and `layers` deep."""
    values = json.loads((MODEL_CONFIGS / config_dir / "config.json").read_text())
    ratio = values["num_attention_heads"] // values["num_key_value_heads"]
    heads = 4 if ratio <= 4 else ratio
    values.update(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads // ratio, head_dim=hidden // heads,
        intermediate_size=round(hidden * values["intermediate_size"] / values["hidden_size"]),
        torch_dtype="float32")
    values.pop("dtype", None)
    return LlamaConfig.from_dict(values)


def build_checkpoint(name: str, out: Path, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Write the `name` checkpoint (one of MODELS) to `out`: weights, config, generation config, tokenizer."""
    config_dir, tokenizer_kind, instruct = MODELS[name]
    config = scaled_config(config_dir, hidden, layers)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    eos = [config.eos_token_id, EOT_ID] if instruct else config.eos_token_id  # as Meta's generation_config.json
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=eos)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    derive(tokenizer_kind, tmp)
    (tmp / "REAL_SHAPED.md").write_text(
        f"Random weights (seed {seed}) in the shape of recipes/_model_configs/{config_dir} scaled to hidden "
        f"{hidden}, {layers} layers; tokenizer {tokenizer_kind} (python -m realshape build). A test asset.\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
