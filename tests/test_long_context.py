"""Context extension: RoPE scaling from the recipe, applied right, trained past the base's length, saved.

The tiny base has max_position_embeddings 512 (and saw 128-token blocks in pretraining). The
long-context recipe (recipes/tiny/long_context/sft.yaml) raises it to 2048 with "llama3" RoPE
scaling; the test trains on notes-and-question conversations of ~800 tokens and checks that the
scaling reached the model, the loss is finite and the saved config.json carries the scaling.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from corral.loading import CheckpointError, extend_context
from finetune.sft import main as sft_main

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes/tiny/long_context/sft.yaml"


@pytest.fixture(scope="module")
def base_config(tiny_small):
    return AutoConfig.from_pretrained(tiny_small / "tiny-base")


def test_linear_scaling_divides_every_frequency(tiny_small, base_config):
    config = extend_context(base_config, {"rope_parameters": {"rope_type": "linear", "factor": 4.0},
                                          "max_position_embeddings": 2048})
    assert config.max_position_embeddings == 2048 and base_config.max_position_embeddings == 512  # a new config
    assert config.rope_parameters == {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0}
    scaled = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base", config=config).model.rotary_emb
    plain = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base").model.rotary_emb
    torch.testing.assert_close(scaled.inv_freq, plain.inv_freq / 4)


def test_llama3_scaling_keeps_the_checkpoints_length_as_the_original(base_config):
    config = extend_context(base_config, {"rope_parameters": {"rope_type": "llama3", "factor": 4.0,
                                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0},
                                          "max_position_embeddings": 2048})
    # Passed to from_pretrained as kwargs instead, transformers would take 2048 as the original length.
    assert config.rope_parameters["original_max_position_embeddings"] == 512
    assert config.rope_parameters["rope_theta"] == base_config.rope_parameters["rope_theta"]


def test_old_name_rope_scaling_and_its_type_key_are_read(base_config):
    config = extend_context(base_config, {"rope_scaling": {"type": "yarn", "factor": 2.0}})
    assert config.rope_parameters["rope_type"] == "yarn"
    assert config.rope_parameters["original_max_position_embeddings"] == 512


@pytest.mark.parametrize("kwargs, message", [
    ({"device_map": "auto"}, "model_init_kwargs: 'device_map' is not supported; corral reads only rope_parameters, "
                             "rope_scaling, max_position_embeddings from it"),
    ({"rope_parameters": {"rope_type": "ntk", "factor": 2.0}},
     "model_init_kwargs.rope_parameters: rope_type 'ntk' is unknown (transformers has: default, dynamic, linear, "),
    ({"rope_parameters": {"rope_type": "llama3", "factor": 2.0}},
     "does not fit LlamaConfig (\"Missing required keys in `rope_parameters` for 'rope_type'='llama3'"),
    ({"rope_parameters": {"rope_type": "linear", "factor": 2.0}, "rope_scaling": {"rope_type": "linear"}},
     "model_init_kwargs: set rope_parameters or its old name rope_scaling, not both"),
])
def test_bad_context_settings_are_one_line_errors(base_config, kwargs, message):
    with pytest.raises(CheckpointError) as info:
        extend_context(base_config, kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_long_context_recipe_trains_past_the_base_length_and_saves_the_scaling(tiny_small, tmp_path):
    from tinyworld.long_context import long_context_conversations
    from tinyworld.world import WorldConfig, make_world

    data = tmp_path / "long.jsonl"
    rows = long_context_conversations(make_world(WorldConfig.small()), rows=4, chars=1600)  # ~850 tokens
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = AutoTokenizer.from_pretrained(tiny_small / "tiny-base")
    lengths = [len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) for r in rows]
    base_length = AutoConfig.from_pretrained(tiny_small / "tiny-base").max_position_embeddings
    assert min(lengths) > base_length  # every conversation runs past the base's positions

    out = tmp_path / "out"
    sft_main([str(RECIPE), "--model_name_or_path", str(tiny_small / "tiny-base"), "--datasets", f"[{{path: {data}}}]",
              "--output_dir", str(out), "--special_token_init", "related", "--max_steps", "2",
              "--per_device_train_batch_size", "2", "--max_length", "1024", "--warmup_steps", "0",
              "--logging_steps", "1", "--save_strategy", "no"])

    manifest = json.loads((out / "run_manifest.json").read_text())
    losses = [e["loss"] for e in manifest["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert manifest["data"]["long_samples"] == 0  # nothing cut: each sample fits max_length whole
    saved = json.loads((out / "config.json").read_text())
    assert saved["max_position_embeddings"] == 2048
    assert saved["rope_parameters"] == {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 512,
                                        "rope_theta": 500000.0}
    reloaded = AutoModelForCausalLM.from_pretrained(out)  # loads with the longer context as is
    assert reloaded.model.rotary_emb.rope_type == "llama3"
