"""The memory planner's counts against torch/transformers/PEFT, its arithmetic against hand
calculations, and its CLI's verdict line."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    Llama4ForCausalLM,
    Llama4TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

from finetune import plan
from finetune.memory import (
    GIB,
    PlanError,
    Sharding,
    TrainingSetup,
    active_parameter_count,
    estimate_memory,
    layer_activation_bytes_per_token,
    lora_parameter_count,
    model_shape_from_config,
    optimizer_bytes_per_param,
    parameter_count,
    quantized_bytes_per_param,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

TINY = dict(model_type="llama", vocab_size=320, hidden_size=64, intermediate_size=176, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
TINY_L4 = dict(model_type="llama4_text", vocab_size=300, hidden_size=64, intermediate_size=48,
               intermediate_size_mlp=96, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
               head_dim=16, num_local_experts=4, num_experts_per_tok=1, interleave_moe_layer_step=2)


def _llama(**overrides):
    d = {**TINY, **overrides}
    return LlamaForCausalLM(LlamaConfig(**{k: v for k, v in d.items() if k != "model_type"})), d


def _llama4(**overrides):
    d = {**TINY_L4, **overrides}
    return Llama4ForCausalLM(Llama4TextConfig(**{k: v for k, v in d.items() if k != "model_type"})), d


def _numel(model):
    return sum(p.numel() for p in model.parameters())


# --- parameter counts


@pytest.mark.parametrize("overrides", [
    {}, {"tie_word_embeddings": True}, {"num_key_value_heads": 4}, {"head_dim": 8},
    {"attention_bias": True}, {"mlp_bias": True},
])
def test_parameter_count_equals_llama_for_causal_lm(overrides):
    torch.manual_seed(0)
    model, config = _llama(**overrides)
    assert parameter_count(model_shape_from_config(config)) == _numel(model)


def test_parameter_count_equals_llama4_moe():
    model, config = _llama4()
    shape = model_shape_from_config(config)
    assert shape.moe_layers == (1, 3)
    assert parameter_count(shape) == _numel(model)
    # a token skips E - k = 3 of the 4 experts in each of the 2 MoE layers: 3 * 3 * h * ie each
    assert active_parameter_count(shape) == _numel(model) - 2 * 3 * 3 * 64 * 48


PUBLISHED = {  # parameter counts of the released checkpoints
    "Meta-Llama-3-8B": 8_030_261_248,  # Llama 3: same shapes as 3.1 8B, 8k context without RoPE scaling
    "Llama-3.1-8B": 8_030_261_248, "Llama-3.1-70B": 70_553_706_496, "Llama-3.1-405B": 405_853_388_800,
    "Llama-3.2-1B": 1_235_814_400, "Llama-3.2-3B": 3_212_749_824,
    "Llama-4-Scout-17B-16E": 107_769_861_120,  # text model only; the 109B checkpoint adds the vision tower
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_model_configs_build_and_match_the_published_size(name):
    config = json.loads((ROOT / "recipes" / "_model_configs" / name / "config.json").read_text())
    kwargs = {k: v for k, v in config.items() if k != "model_type"}
    with torch.device("meta"):  # no memory: shapes only
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(config["model_type"], **kwargs))
    shape = model_shape_from_config(config)
    assert parameter_count(shape) == _numel(model) == PUBLISHED[name]
    if shape.num_experts:
        assert round(active_parameter_count(shape) / 1e9) == 17  # the "17B" in the name


def test_model_configs_directory_holds_exactly_the_tested_models():
    shipped = {p.parent.name for p in (ROOT / "recipes" / "_model_configs").glob("*/config.json")}
    assert shipped == set(PUBLISHED)


# --- LoRA parameter counts against PEFT


@pytest.mark.parametrize("targets, dora", [
    (["q_proj", "v_proj"], False), ("all-linear", False), (["gate_proj", "o_proj"], False),
    (["q_proj", "lm_head"], False), (["k_proj", "down_proj"], True),
])
def test_lora_parameter_count_equals_peft(targets, dora):
    model, config = _llama()
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets, use_dora=dora))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert lora_parameter_count(model_shape_from_config(config), 4, targets, use_dora=dora) == trainable


@pytest.mark.parametrize("targets", ["all-linear", ["gate_proj", "q_proj"], ["shared_expert.up_proj"]])
def test_lora_parameter_count_equals_peft_for_llama4(targets):
    model, config = _llama4()
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=targets))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert lora_parameter_count(model_shape_from_config(config), 2, targets) == trainable


def test_lora_targets_that_match_nothing_are_an_error():
    with pytest.raises(PlanError, match=r"lora_target_modules \['qproj'\] match no linear layer"):
        lora_parameter_count(model_shape_from_config(TINY), 8, ["qproj"])


# --- bytes per parameter, by hand


def test_bytes_per_param_constants():
    assert quantized_bytes_per_param(4, double_quant=False) == 0.5 + 4 / 64  # NF4 + fp32 absmax per 64
    assert quantized_bytes_per_param(4, double_quant=True) == 0.5 + 1 / 64 + 4 / (64 * 256)
    assert optimizer_bytes_per_param("adamw_torch", 4).fixed_bytes == 8  # two fp32 states
    assert optimizer_bytes_per_param("adamw_torch", 2).fixed_bytes == 4  # states follow bf16 params
    assert optimizer_bytes_per_param("adamw_8bit", 4).fixed_bytes == 2 * (1 + 4 / 256)
    assert optimizer_bytes_per_param("paged_adamw_8bit", 4).paged
    with pytest.raises(PlanError, match="optim 'adamw_tourch' is not modelled"):
        optimizer_bytes_per_param("adamw_tourch", 4)


def _setup(**kw):
    base = dict(shape=model_shape_from_config(TINY), per_device_train_batch_size=2, max_length=16,
                weights_dtype="bfloat16", bf16=True, optim="adamw_torch")
    return TrainingSetup(**{**base, **kw})


def test_full_fine_tune_single_device_by_hand():
    p = _numel(_llama()[0])
    assert p == 3 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 176 + 2 * 64) + 64 + 2 * 320 * 64
    est = estimate_memory(_setup(gradient_accumulation_steps=2))
    assert est.weights == 2 * p  # bf16
    assert est.optimizer == 4 * p  # AdamW states in bf16, like the params
    assert est.gradients == 2 * p  # kept through the forward pass by gradient accumulation
    assert est.peak_phase == "end of forward (loss)"
    # checkpointing: 3 layer inputs of 2*64 bytes per token, cos+sin 2*16*2, loss (2 + 8) * vocab
    tokens = 32
    assert est.activations_detail["saved for backward"] == tokens * (3 * 2 * 64 + 2 * 16 * 2)
    assert est.activations_detail["logits and loss"] == tokens * 10 * 320


def test_qlora_weights_by_hand():
    shape = model_shape_from_config(TINY)
    lora = lora_parameter_count(shape, 8, "all-linear")
    est = estimate_memory(_setup(use_peft=True, lora_r=8, lora_target_modules="all-linear", load_in_4bit=True))
    linear = 3 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 176)
    rest = parameter_count(shape) - linear  # embeddings, lm_head, norms stay bf16
    assert est.weights == pytest.approx(linear * (0.5 + 4 / 64) + rest * 2 + lora * 4)  # adapters fp32
    assert est.optimizer == lora * 8
    assert est.trainable_params == lora


@pytest.mark.parametrize("n", [2, 8])
def test_sharding_divides_by_num_processes(n):
    single = estimate_memory(_setup(optim="adamw_torch"))
    fsdp = estimate_memory(_setup(optim="adamw_torch", sharding=Sharding("fsdp", n)))
    # FSDP2 with mixed precision shards fp32 master weights: 4 bytes instead of 2
    assert fsdp.weights == pytest.approx(single.weights * 2 / n)
    assert fsdp.optimizer == pytest.approx(single.optimizer * 2 / n)
    z = {s: estimate_memory(_setup(gradient_accumulation_steps=2, sharding=Sharding("zero", n, zero_stage=s)))
         for s in (1, 2, 3)}
    p = parameter_count(model_shape_from_config(TINY))
    assert z[1].weights == z[2].weights == 2 * p and z[3].weights == 2 * p / n
    assert z[1].gradients == 2 * p and z[2].gradients == z[3].gradients == 2 * p / n
    assert z[1].optimizer == z[2].optimizer == z[3].optimizer == 12 * p / n  # fp32 master + 2 fp32 states
    assert estimate_memory(_setup(sharding=Sharding("ddp", n))).weights == single.weights  # replicated


def test_fsdp_shards_4bit_weights_only_with_a_float_quant_storage():
    qlora = dict(use_peft=True, load_in_4bit=True, lora_target_modules="all-linear")
    fsdp = Sharding("fsdp", 4)
    bf16 = estimate_memory(_setup(**qlora, bnb_4bit_quant_storage="bfloat16", sharding=fsdp))
    uint8 = estimate_memory(_setup(**qlora, sharding=fsdp))
    whole = estimate_memory(_setup(**qlora))
    linear = 3 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 176) * (0.5 + 4 / 64)
    assert uint8.weights - bf16.weights == pytest.approx(linear * 3 / 4)
    assert bf16.weights == pytest.approx(whole.weights / 4)
    assert any("bnb_4bit_quant_storage" in note for note in uint8.notes)


def test_offload_moves_state_to_cpu():
    offload = Sharding("zero", 4, zero_stage=3, offload_optimizer=True, offload_params=True)
    est = estimate_memory(_setup(sharding=offload))
    p = parameter_count(model_shape_from_config(TINY))
    assert est.weights == est.gradients == est.optimizer == 0
    assert est.cpu_offloaded == pytest.approx((2 + 2 + 12) * p / 4)


def test_paged_optimizer_is_reported_but_not_counted():
    est = estimate_memory(_setup(optim="paged_adamw_8bit"))
    assert est.optimizer == 0 and est.paged_optimizer > 0


# --- activations against what autograd actually saves


def _saved_bytes_per_token(layer, x, position_embeddings, exclude, autocast=False):
    """Bytes of the distinct storages autograd saves in one decoder layer's forward, per token.

    Weights and their bf16 casts under autocast are per layer, not per token (the estimator counts
    them apart), so tensors shaped like a weight are skipped; 40 tokens keep activation shapes
    distinct from the tiny weights' shapes.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    weight_shapes = {tuple(p.shape) for p in layer.parameters()} | {tuple(p.shape)[::-1] for p in layer.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip and tuple(t.shape) not in weight_shapes:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x, position_embeddings=position_embeddings, attention_mask=None,
                  position_ids=torch.arange(x.shape[1]).expand(x.shape[0], -1))
    return sum(seen.values()) / (x.shape[0] * x.shape[1])


@pytest.mark.parametrize("mode", ["full_bf16", "frozen_bf16", "full_fp32_autocast", "lora_bf16_autocast",
                                  "full_bf16_eager", "frozen_bf16_eager"])
def test_llama_layer_activations_match_autograd(mode):
    torch.manual_seed(0)
    eager = mode.endswith("eager")
    model, config = _llama(**({"attn_implementation": "eager"} if eager else {}))
    shape = model_shape_from_config(config)
    fp32 = mode == "full_fp32_autocast"
    if not fp32:
        model = model.to(torch.bfloat16)
    lora_in = []
    if mode.startswith("frozen"):
        model.requires_grad_(False)
    if mode == "lora_bf16_autocast":
        lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"])
        model = get_peft_model(model, lora).base_model.model
        lora_in = [64, 64, 176]
    x = torch.randn(2, 20, 64, dtype=torch.float32 if fp32 else torch.bfloat16, requires_grad=True)
    pe = model.model.rotary_emb(x, torch.arange(20)[None])
    exclude = list(model.parameters()) + list(pe)  # weights are counted as weights; cos/sin once per model
    measured = _saved_bytes_per_token(model.model.layers[0], x, pe, exclude, autocast=mode.endswith("autocast"))
    expected = layer_activation_bytes_per_token(
        shape, 0, base_trainable=mode.startswith("full"), lora_in_features=lora_in, lora_r=4,
        fp32_weights_autocast=fp32, eager_attention_seq=20 if eager else 0)
    assert measured == expected


@pytest.mark.parametrize("trainable", [True, False])
def test_llama4_moe_layer_activations_match_autograd(trainable):
    torch.manual_seed(0)
    model, config = _llama4()
    model = model.to(torch.bfloat16).requires_grad_(trainable)
    shape = model_shape_from_config(config)
    x = torch.randn(2, 20, 64, dtype=torch.bfloat16, requires_grad=True)
    freqs = model.model.rotary_emb(x, torch.arange(20)[None])
    for i in (0, 1):  # a dense and an MoE layer, both with RoPE + QK-norm
        measured = _saved_bytes_per_token(model.model.layers[i], x, freqs, list(model.parameters()) + [freqs])
        assert measured == layer_activation_bytes_per_token(shape, i, base_trainable=trainable)


# --- the CLI


def _recipe(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


QLORA_8B = """\
model_name_or_path: meta-llama/Llama-3.1-8B-Instruct
dtype: bfloat16
use_peft: true
load_in_4bit: true
lora_target_modules: all-linear
per_device_train_batch_size: 1
max_length: 1024
"""


def test_cli_prints_the_split_and_a_fits_line(tmp_path, capsys):
    code = plan.main([_recipe(tmp_path, QLORA_8B), "--accelerate-config", str(ROOT / "accelerate_configs" / "ddp.yaml"),
                      "--gpu-mem", "24"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    for part in ("weights", "gradients", "optimizer states", "activations", "overhead", "total"):
        assert any(line.strip().startswith(part) for line in out), part
    assert re.fullmatch(r"FITS: \d+\.\d GiB of 24 GiB per device \(\d+%\)", out[-1]), out[-1]


def test_cli_does_not_fit_line_and_exit_code(tmp_path, capsys):
    recipe = _recipe(tmp_path, "model_name_or_path: meta-llama/Llama-3.1-70B\nmax_length: 4096\n")
    code = plan.main([recipe, "--accelerate-config", str(ROOT / "accelerate_configs" / "ddp.yaml")])
    assert code == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("DOES NOT FIT: ")


def test_cli_one_line_errors(tmp_path, capsys):
    recipe = _recipe(tmp_path, QLORA_8B)
    fsdp2 = str(ROOT / "accelerate_configs" / "fsdp2.yaml")
    assert plan.main([recipe, "--accelerate-config", fsdp2, "--gpus", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "num_processes is 8 but 2 were asked for" in err
    bad = _recipe(tmp_path, QLORA_8B.replace("Llama-3.1-8B-Instruct", "Llama-9-1T"))
    assert plan.main([bad, "--accelerate-config", str(ROOT / "accelerate_configs" / "ddp.yaml")]) == 2
    assert "no config.json for 'meta-llama/Llama-9-1T'" in capsys.readouterr().err


def test_recipe_defaults_come_from_trl(tmp_path):
    fields = plan.read_recipe_fields(_recipe(tmp_path, "model_name_or_path: x\n"))
    assert fields["per_device_train_batch_size"] == 8 and fields["max_length"] == 1024  # SFTConfig
    assert fields["gradient_checkpointing"] is True and fields["bf16"] is True
    assert fields["dtype"] == "float32"  # ModelConfig: fp32 weights unless the recipe says otherwise


def test_local_checkpoint_config_is_preferred(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(TINY))
    config, source = plan.find_model_config(str(tmp_path / "ckpt"))
    assert config == TINY and source == str(tmp_path / "ckpt" / "config.json")


# --- published figures


def test_estimates_stay_within_tolerance_of_published_figures():
    from memory_plan_vs_published import TOLERANCE, run

    rows = [row for row in run() if row[0].asserted]
    assert {case.source for case, _, _ in rows} == {"torchtune", "LLaMA-Factory"} and len(rows) == 9
    for case, estimate, error in rows:
        assert abs(error) < TOLERANCE, f"{case.source} {case.label}: {estimate:.1f} vs {case.published_gib} GiB"


# --- the same estimate inside a launched process, before the model loads (finetune/sft.py)


def test_missing_deepspeed_config_file_is_one_line(tmp_path, capsys):
    config = tmp_path / "zero.yaml"
    config.write_text("distributed_type: DEEPSPEED\nnum_processes: 8\n"
                      "deepspeed_config:\n  deepspeed_config_file: ds_missing.json\n")
    assert plan.main([_recipe(tmp_path, QLORA_8B), "--accelerate-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {config}: deepspeed_config.deepspeed_config_file ds_missing.json does not exist "
                   "(relative paths are read from the directory you launch in)\n")
    assert plan.main([_recipe(tmp_path, QLORA_8B), "--accelerate-config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such accelerate config file (shipped in accelerate_configs/: " in capsys.readouterr().err


@pytest.mark.parametrize("env, kind, n", [
    ({}, "single", 1),
    ({"WORLD_SIZE": "4"}, "ddp", 4),
    ({"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8", "ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2",
      "FSDP_RESHARD_AFTER_FORWARD": "true", "FSDP_OFFLOAD_PARAMS": "true", "ACCELERATE_MIXED_PRECISION": "bf16"},
     "fsdp", 16),
    ({"WORLD_SIZE": "8", "ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3",
      "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE": "cpu"}, "zero", 8),
])
def test_sharding_is_read_from_the_launchers_environment(env, kind, n):
    sh = plan.sharding_from_environment(env)
    assert (sh.kind, sh.num_processes) == (kind, n)
    if kind == "fsdp":
        assert sh.fsdp_version == 2 and sh.reshard_after_forward and sh.offload_params and sh.mixed_precision == "bf16"
    if kind == "zero":
        assert sh.zero_stage == 3 and sh.offload_optimizer and not sh.offload_params


def test_environment_and_config_file_give_the_same_plan():
    """What `accelerate launch --config_file fsdp2.yaml` exports plans like the file itself."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    path = str(ROOT / "accelerate_configs" / "fsdp2.yaml")
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(["--config_file", path, "x.py"]))
    env = {**prepare_multi_gpu_env(args), "WORLD_SIZE": "8"}
    from_file = plan.sharding_from_accelerate(plan.check_accelerate_config(path), 8)
    assert plan.sharding_from_environment(env) == from_file


def _parsed(recipe: str, *overrides: str):
    from trl import ModelConfig, SFTConfig

    from corral.recipe import parse_recipe
    from finetune.sft import SFTScriptArguments

    return parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig),
                        [str(ROOT / recipe), "--bf16", "false", "--use_cpu", "true", *overrides],
                        required=("model_name_or_path", "output_dir"))


def test_memory_check_warns_before_loading_when_the_recipe_does_not_fit(caplog):
    _, args, model_args = _parsed("recipes/llama3.1-8b/sft/full.yaml")
    with caplog.at_level("INFO", logger="corral.plan"):
        assert plan.check_memory_before_loading(args, model_args, "warn", None, {}) is None  # CPU: skipped
        verdict = plan.check_memory_before_loading(args, model_args, "warn", 24.0, {})
    assert verdict.startswith("memory plan: ") and verdict.endswith("GiB of 24 GiB per device (one device, "
                                                                    "end of forward (loss)): DOES NOT FIT")
    assert "memory check skipped: no GPU" in caplog.text
    assert "DOES NOT FIT; python -m finetune.plan RECIPE --accelerate-config CONFIG prints the split" in caplog.text
    sharded = plan.check_memory_before_loading(args, model_args, "warn", 80.0, {
        "WORLD_SIZE": "8", "ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "ACCELERATE_MIXED_PRECISION": "bf16"})
    assert sharded.endswith("(FSDP2 full shard over 8 processes, end of forward (loss)): fits")
    assert plan.check_memory_before_loading(args, model_args, "off", 1.0, {}) is None


def test_memory_check_error_stops_sft_before_the_model_loads(tiny_small, tmp_path, monkeypatch):
    from finetune import sft
    from finetune.memory import PlanError

    loaded = []
    monkeypatch.setattr(sft, "load_causal_lm", lambda *a: loaded.append(a))
    with pytest.raises(PlanError) as info:
        sft.main([str(ROOT / "recipes/tiny/sft/full.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
                  "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]",
                  "--output_dir", str(tmp_path / "out"), "--memory_check", "error", "--memory_check_gib", "0.001"])
    message = str(info.value)
    assert message.startswith("memory plan: ") and "GiB of 0.001 GiB per device" in message
    assert message.endswith("does not fit; python -m finetune.plan RECIPE --accelerate-config CONFIG prints the split; "
                            "shard with accelerate_configs/fsdp2.yaml, use LoRA/QLoRA, or lower "
                            "per_device_train_batch_size/max_length (memory_check: warn to try anyway)")
    assert loaded == []


GPU_RECIPES = sorted(p for p in (ROOT / "recipes").glob("*/sft/*.yaml") if p.parts[-3] != "tiny")


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_every_gpu_recipe_fits_the_launch_its_first_line_names(recipe):
    """The planner's estimate for the recipe's own command (its --num_processes, its --gpu-mem or 80 GiB) fits."""
    text = recipe.read_text()
    first = text.splitlines()[0]
    config = re.search(r"--config_file (\S+)", first).group(1)
    processes = re.search(r"--num_processes (\d+)", first)
    gpu_mem = re.search(r"--gpu-mem (\d+)", text)
    cfg = plan.check_accelerate_config(str(ROOT / config), for_launch=False)
    fields = plan.read_recipe_fields(str(recipe))
    model_config, _ = plan.find_model_config(fields["model_name_or_path"])
    n = int(processes.group(1)) if processes else cfg.num_processes
    setup = plan.setup_from_recipe(fields, model_config, plan.sharding_from_accelerate(cfg, n))
    total = estimate_memory(setup).total / GIB
    assert total <= (int(gpu_mem.group(1)) if gpu_mem else 80), f"{total:.1f} GiB per GPU"
