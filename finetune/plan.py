"""Will this recipe fit? Estimate per-GPU memory before renting the GPUs.

    python -m finetune.plan recipes/llama3.1-8b/sft/qlora.yaml --accelerate-config accelerate_configs/ddp.yaml
    python -m finetune.plan RECIPE.yaml --accelerate-config accelerate_configs/fsdp2.yaml --gpus 8 --gpu-mem 80

prints the per-device split (weights, gradients, optimizer states, activations, overhead), where in
the step the peak falls, and a last line starting with FITS or DOES NOT FIT. Exit status: 0 fits,
1 does not fit, 2 bad input (one-line error on stderr).

The model's size comes from a `config.json`: the recipe's `model_name_or_path` if it is a local
directory, else `recipes/_model_configs/<repo name>/config.json`. The arithmetic lives in
`finetune/memory.py`; this module only reads the recipe and the accelerate config and prints.

The training scripts run the same estimate in every launched process before the model loads
(`check_memory_before_loading`, reading the launch from accelerate's environment variables) and
warn when it does not fit the GPU, or stop with `memory_check: error`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

import yaml

from corral.launch_checks import LaunchConfigError, check_accelerate_config
from finetune.memory import (
    DTYPE_BYTES,
    GIB,
    PlanError,
    Sharding,
    TrainingSetup,
    active_parameter_count,
    estimate_memory,
    model_shape_from_config,
)

logger = logging.getLogger("corral.plan")
MODEL_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "_model_configs")

# The recipe keys the planner reads (TRL/transformers/PEFT names). Anything else in a recipe is
# irrelevant to memory and ignored here; validating it is the recipe parser's job.
RECIPE_KEYS = (
    "model_name_or_path", "dtype", "attn_implementation", "use_peft", "lora_r", "lora_target_modules",
    "use_dora", "load_in_4bit", "load_in_8bit", "use_bnb_nested_quant", "bnb_4bit_quant_storage",
    "bf16", "fp16", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
    "gradient_checkpointing", "activation_checkpointing", "optim", "use_liger_kernel",
)


def _trl_defaults() -> dict:
    """The defaults recipes inherit, read from the pinned TRL dataclasses so they cannot drift."""
    from trl import ModelConfig, SFTConfig

    out = {}
    for cls in (SFTConfig, ModelConfig):
        for f in dataclasses.fields(cls):
            if f.name in RECIPE_KEYS and f.default is not dataclasses.MISSING:
                out[f.name] = f.default
    return out


def read_recipe_fields(path: str) -> dict:
    """The recipe's values for RECIPE_KEYS, TRL's defaults filling the gaps.

    Reads the YAML directly for now; this is the one function to swap for the recipe parser
    (`corral.recipe`), so the planner sees exactly what training will see. Mind that building
    TRL's SFTConfig with bf16 raises on a machine without a GPU, which is where plans are made:
    validate the keys without instantiating it.
    """
    if not os.path.isfile(path):
        raise PlanError(f"{path}: no such recipe file")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise PlanError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{path}: expected a mapping of recipe keys")
    fields = _trl_defaults()
    fields.update({k: raw[k] for k in RECIPE_KEYS if k in raw})
    return _complete_fields(fields, path)


def fields_from_args(*configs) -> dict:
    """RECIPE_KEYS read from parsed config objects (SFTConfig, ModelConfig): what training will see."""
    fields = _trl_defaults()
    for cfg in configs:
        for key in RECIPE_KEYS:
            if hasattr(cfg, key):
                value = getattr(cfg, key)
                fields[key] = getattr(value, "value", value)  # TrainingArguments holds optim as an enum
    return _complete_fields(fields, "recipe")


def _complete_fields(fields: dict, path: str) -> dict:
    if fields.get("bf16") is None:  # SFTConfig: bf16 unless fp16 is set
        fields["bf16"] = not fields.get("fp16")
    if fields.get("activation_checkpointing") is not None:  # transformers 5 name wins over the alias
        fields["gradient_checkpointing"] = fields["activation_checkpointing"]
    if not fields.get("model_name_or_path"):
        raise PlanError(f"{path}: model_name_or_path is not set")
    return fields


def find_model_config(model_name_or_path: str) -> tuple[dict, str]:
    """The config.json of a local checkpoint directory, one shipped in recipes/_model_configs/, or a
    Hub checkpoint's already in the local Hugging Face cache."""
    local = os.path.join(model_name_or_path, "config.json")
    candidates = [local] if os.path.isdir(model_name_or_path) else []
    repo = model_name_or_path.rstrip("/").rsplit("/", 1)[-1]
    for name in (repo, repo.removesuffix("-Instruct")):
        candidates.append(os.path.join(MODEL_CONFIGS, name, "config.json"))
    if "/" in model_name_or_path and not os.path.isdir(model_name_or_path):  # a Hub id fetched before
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_name_or_path, "config.json")
        candidates.append(cached if isinstance(cached, str) else "")
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f), path
    shipped = sorted(os.listdir(MODEL_CONFIGS)) if os.path.isdir(MODEL_CONFIGS) else []
    raise PlanError(f"no config.json for {model_name_or_path!r}: not a local directory and not in "
                    f"recipes/_model_configs/ (has: {', '.join(d for d in shipped if not d.startswith('.'))})")


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")


def sharding_from_accelerate(cfg, num_processes: int) -> Sharding:
    """Map accelerate's config (distributed_type, fsdp_config, deepspeed_config) onto a Sharding."""
    dtype = str(getattr(cfg.distributed_type, "value", cfg.distributed_type))
    mixed = str(cfg.mixed_precision or "no")
    if dtype == "NO":
        return Sharding("single", 1, mixed_precision=mixed)
    if dtype == "FSDP":
        f = cfg.fsdp_config or {}
        version = int(f.get("fsdp_version", 1))
        strategy = str(f.get("fsdp_reshard_after_forward", f.get("fsdp_sharding_strategy", "true"))).upper()
        if strategy in ("NO_SHARD", "3"):
            return Sharding("ddp", num_processes, mixed_precision=mixed)
        reshard = strategy in ("TRUE", "1", "FULL_SHARD", "HYBRID_SHARD", "4")
        shards = num_processes // max(cfg.num_machines, 1) if strategy == "HYBRID_SHARD" else num_processes
        return Sharding("fsdp", shards, reshard_after_forward=reshard, fsdp_version=version, mixed_precision=mixed,
                        offload_params=_flag(f.get("fsdp_offload_params", False)),
                        activation_checkpointing=_flag(f.get("fsdp_activation_checkpointing", False)))
    if dtype == "DEEPSPEED":
        d = dict(cfg.deepspeed_config or {})
        if d.get("deepspeed_config_file"):
            if not os.path.isfile(d["deepspeed_config_file"]):
                raise PlanError(f"deepspeed_config_file {d['deepspeed_config_file']!r} does not exist")
            with open(d["deepspeed_config_file"], encoding="utf-8") as fh:
                zero = json.load(fh).get("zero_optimization", {})
            d = {"zero_stage": zero.get("stage", 0),
                 "offload_optimizer_device": zero.get("offload_optimizer", {}).get("device", "none"),
                 "offload_param_device": zero.get("offload_param", {}).get("device", "none")}
        return Sharding("zero", num_processes, zero_stage=int(d.get("zero_stage", 2)), mixed_precision=mixed,
                        offload_optimizer=str(d.get("offload_optimizer_device", "none")) != "none",
                        offload_params=str(d.get("offload_param_device", "none")) != "none")
    return Sharding("ddp", num_processes, mixed_precision=mixed)  # MULTI_GPU, MULTI_CPU, other MULTI_*


def setup_from_recipe(fields: dict, config: dict, sharding: Sharding) -> TrainingSetup:
    """Turn recipe fields into the estimator's input, resolving PEFT's default target modules."""
    shape = model_shape_from_config(config, name=fields["model_name_or_path"])
    targets = fields.get("lora_target_modules")
    if fields.get("use_peft") and targets is None:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_defaults

        model_type = config.get("model_type")
        targets = peft_defaults.get(model_type) or peft_defaults.get(model_type.removesuffix("_text"))
        if targets is None:
            raise PlanError(f"PEFT has no default target modules for {model_type!r}; set lora_target_modules")
    dtype = fields.get("dtype") or "float32"
    if dtype == "auto":
        dtype = config.get("torch_dtype") or config.get("dtype") or "float32"
    if dtype not in DTYPE_BYTES:
        raise PlanError(f"dtype {dtype!r}: expected auto, {', '.join(DTYPE_BYTES)}")
    return TrainingSetup(
        shape=shape,
        per_device_train_batch_size=int(fields["per_device_train_batch_size"]),
        max_length=int(fields["max_length"]),
        gradient_accumulation_steps=int(fields.get("gradient_accumulation_steps") or 1),
        gradient_checkpointing=bool(fields.get("gradient_checkpointing")),
        weights_dtype=dtype,
        bf16=bool(fields.get("bf16")) or bool(fields.get("fp16")),
        use_peft=bool(fields.get("use_peft")),
        lora_r=int(fields.get("lora_r") or 16),
        lora_target_modules=targets if isinstance(targets, str) else tuple(targets or ()),
        use_dora=bool(fields.get("use_dora")),
        load_in_4bit=bool(fields.get("load_in_4bit")),
        load_in_8bit=bool(fields.get("load_in_8bit")),
        double_quant=bool(fields.get("use_bnb_nested_quant")),
        bnb_4bit_quant_storage=fields.get("bnb_4bit_quant_storage"),
        optim=str(fields.get("optim") or "adamw_torch"),
        loss_impl="fused" if fields.get("use_liger_kernel") else "hf",
        attn_implementation=fields.get("attn_implementation") or "sdpa",
        sharding=sharding,
    )


def _gib(x: float) -> str:
    return f"{x / GIB:8.2f}"


def _describe_sharding(sh: Sharding) -> str:
    if sh.kind == "single":
        return "one device"
    if sh.kind == "ddp":
        return f"data parallel over {sh.num_processes} processes (every device holds everything)"
    if sh.kind == "fsdp":
        how = "full shard" if sh.reshard_after_forward else "shard grads/optimizer (weights kept gathered)"
        off = ", params offloaded to CPU" if sh.offload_params else ""
        return f"FSDP{sh.fsdp_version} {how} over {sh.num_processes} processes{off}"
    off = "".join([", optimizer offloaded to CPU" if sh.offload_optimizer else "",
                   ", params offloaded to CPU" if sh.offload_params else ""])
    return f"DeepSpeed ZeRO-{sh.zero_stage} over {sh.num_processes} processes{off}"


def format_plan(setup: TrainingSetup, est, gpu_mem_gib: float, model_source: str, use_cpu: bool = False) -> str:
    """The report printed by the CLI; its last line starts with FITS or DOES NOT FIT."""
    shape = setup.shape
    params = f"{est.params / 1e9:.2f}B params"
    if shape.num_experts:
        params += f" ({active_parameter_count(shape) / 1e9:.1f}B active, {shape.num_experts} experts)"
    if setup.use_peft:
        quant = " on a 4-bit base" if setup.load_in_4bit else " on an 8-bit base" if setup.load_in_8bit else ""
        method = f"LoRA r={setup.lora_r}{quant}, {est.trainable_params / 1e6:.1f}M trainable"
    else:
        method = "full fine-tune"
    detail = ", ".join(f"{k} {v / GIB:.2f}" for k, v in est.activations_detail.items())
    ckpt = "on" if setup.gradient_checkpointing or setup.sharding.activation_checkpointing else "off"
    lines = [
        f"model       {shape.name} ({model_source}): {params}, {shape.num_layers} layers",
        f"training    {method}; weights {setup.weights_dtype}{', bf16 autocast' if setup.bf16 else ''}; "
        f"optim {setup.optim}",
        f"batch       {setup.per_device_train_batch_size} x {setup.max_length} tokens per device, "
        f"gradient accumulation {setup.gradient_accumulation_steps}, activation checkpointing {ckpt}",
        f"sharding    {_describe_sharding(setup.sharding)}",
        f"per device (GiB), at the {est.peak_phase}:",
        f"  weights           {_gib(est.weights)}",
        f"  gradients         {_gib(est.gradients)}",
        f"  optimizer states  {_gib(est.optimizer)}",
        f"  activations       {_gib(est.activations)}  ({detail})",
        f"  overhead          {_gib(est.overhead)}  (CUDA context, allocator slack, gather/dequant buffers)",
        f"  total             {_gib(est.total)}",
    ]
    if est.cpu_offloaded:
        lines.append(f"CPU RAM per process for offloaded state: {est.cpu_offloaded / GIB:.2f} GiB")
    lines += [f"note: {n}" for n in est.notes]
    if use_cpu:
        lines.append("note: this accelerate config runs on the CPU; the total is RAM per process, not GPU memory")
    share = est.total / (gpu_mem_gib * GIB)
    verdict = "FITS" if share <= 1 else "DOES NOT FIT"
    lines.append(f"{verdict}: {est.total / GIB:.1f} GiB of {gpu_mem_gib:g} GiB per device ({share:.0%})")
    return "\n".join(lines)


def sharding_from_environment(environ=os.environ) -> Sharding:
    """The Sharding of the running launch, from the variables `accelerate launch` sets for each process.

    Those variables carry the accelerate config and any command-line overrides, so a process can
    plan its own memory without knowing which config file was used.
    """
    world = int(environ.get("WORLD_SIZE") or 1)
    per_machine = int(environ.get("LOCAL_WORLD_SIZE") or world)

    def env(name, default="false"):
        return environ.get(name, default)

    if _flag(env("ACCELERATE_USE_FSDP")):
        fsdp = {"fsdp_version": env("FSDP_VERSION", "1"),
                "fsdp_reshard_after_forward": env("FSDP_RESHARD_AFTER_FORWARD", env("FSDP_SHARDING_STRATEGY", "true")),
                "fsdp_offload_params": env("FSDP_OFFLOAD_PARAMS"),
                "fsdp_activation_checkpointing": env("FSDP_ACTIVATION_CHECKPOINTING")}
        dtype, ds = "FSDP", None
    elif _flag(env("ACCELERATE_USE_DEEPSPEED")):
        ds = {"zero_stage": env("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"),
              "offload_optimizer_device": env("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none"),
              "offload_param_device": env("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "none"),
              "deepspeed_config_file": environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")}
        dtype, fsdp = "DEEPSPEED", None
    else:
        dtype, fsdp, ds = ("MULTI_GPU" if world > 1 else "NO"), None, None
    launch = argparse.Namespace(distributed_type=dtype, mixed_precision=env("ACCELERATE_MIXED_PRECISION", "no"),
                                fsdp_config=fsdp, deepspeed_config=ds, num_machines=max(world // per_machine, 1))
    return sharding_from_accelerate(launch, world)


def check_memory_before_loading(args, model_args, mode: str = "warn", gpu_mem_gib: float | None = None,
                                environ=os.environ) -> str | None:
    """Plan this process's memory before the model loads; warn (or raise, mode "error") if it does not fit.

    `args`/`model_args` are the parsed SFTConfig and ModelConfig. The device memory is `gpu_mem_gib`,
    else the first GPU's; with neither (a CPU run) nothing is checked. Returns the one-line verdict,
    or None when no check ran. A model the planner cannot size is reported and skipped, never fatal.
    """
    if mode == "off":
        return None
    if gpu_mem_gib is None:
        import torch

        if not torch.cuda.is_available() or getattr(args, "use_cpu", False):
            logger.info("memory check skipped: no GPU (set memory_check_gib to check against a GPU size)")
            return None
        gpu_mem_gib = torch.cuda.get_device_properties(0).total_memory / GIB
    try:
        fields = fields_from_args(args, model_args)
        config, _ = find_model_config(fields["model_name_or_path"])
        setup = setup_from_recipe(fields, config, sharding_from_environment(environ))
        est = estimate_memory(setup)
    except PlanError as e:
        logger.info("memory check skipped: %s", e)
        return None
    verdict = (f"memory plan: {est.total / GIB:.1f} GiB of {gpu_mem_gib:g} GiB per device "
               f"({_describe_sharding(setup.sharding)}, {est.peak_phase})")
    if est.total <= gpu_mem_gib * GIB:
        logger.info("%s: fits", verdict)
        return f"{verdict}: fits"
    hint = ("python -m finetune.plan RECIPE --accelerate-config CONFIG prints the split; shard with "
            "accelerate_configs/fsdp2.yaml, use LoRA/QLoRA, or lower per_device_train_batch_size/max_length")
    if mode == "error":
        raise PlanError(f"{verdict}: does not fit; {hint} (memory_check: warn to try anyway)")
    logger.warning("%s: DOES NOT FIT; %s", verdict, hint)
    return f"{verdict}: DOES NOT FIT"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="recipe YAML (TRL field names)")
    parser.add_argument("--accelerate-config", required=True, help="file from accelerate_configs/")
    parser.add_argument("--gpus", type=int, help="total processes/GPUs; must match the config's num_processes")
    parser.add_argument("--gpu-mem", type=float, default=80.0, help="memory per GPU in GiB (default 80)")
    args = parser.parse_args(argv)
    try:
        cfg = check_accelerate_config(args.accelerate_config, args.gpus, for_launch=False)
        n = args.gpus or cfg.num_processes
        if not n or n < 1:
            raise PlanError(f"{args.accelerate_config}: num_processes is not set; pass --gpus")
        fields = read_recipe_fields(args.recipe)
        config, source = find_model_config(fields["model_name_or_path"])
        setup = setup_from_recipe(fields, config, sharding_from_accelerate(cfg, n))
        est = estimate_memory(setup)
    except (PlanError, LaunchConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"memory plan for {args.recipe} with {args.accelerate_config}")
    print(format_plan(setup, est, args.gpu_mem, os.path.relpath(source), use_cpu=bool(cfg.use_cpu)))
    return 0 if est.total <= args.gpu_mem * GIB else 1


if __name__ == "__main__":
    sys.exit(main())
