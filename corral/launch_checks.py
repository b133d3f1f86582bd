"""Checks on an accelerate config file before anything is launched, each failing with one line.

`accelerate launch` reports a bad config late or not at all: a misspelled key inside `fsdp_config`
is copied onto the launcher's namespace and silently ignored, a process count that does not match
the machine shows up as a hang or a torchrun traceback, and `distributed_type: MULTI_CPU` starts a
single process without mpirun. `check_accelerate_config` loads the file with accelerate's own loader
and turns those cases into one readable line naming the file, the key and the fix.

`check_processes` runs inside each launched process, before the model loads, and catches what the
config file cannot show: a launcher that started more processes than the Trainer joined (on a CPU
without `use_cpu: true` every rank then trains alone on all the data, silently), more processes
than GPUs on a machine, and an FSDP or DeepSpeed config that accelerate quietly runs as plain data
parallelism because there is no GPU. An FSDP2 config on CPU processes is let through to accelerate's
FSDP2 path instead (`shard_on_cpu` below; accelerate_configs/fsdp2_cpu.yaml).
"""

from __future__ import annotations

import difflib
import logging
import os
import sys

import yaml

from corral.errors import CorralError

logger = logging.getLogger("corral.launch")

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "accelerate_configs")

# Sections whose keys accelerate copies onto `accelerate launch`'s arguments, with the prefix it
# adds to a key that lacks one (see `_validate_launch_command` in accelerate/commands/launch.py).
_NESTED_PREFIX = {"fsdp_config": "fsdp_", "deepspeed_config": "", "fp8_config": "fp8_", "dynamo_config": "dynamo_"}


class LaunchConfigError(CorralError, ValueError):
    """An accelerate config that cannot work as given; the message is one line."""


def _shipped() -> str:
    names = sorted(f for f in os.listdir(SHIPPED_DIR) if f.endswith(".yaml")) if os.path.isdir(SHIPPED_DIR) else []
    return ", ".join(names) or "none"


def _launch_arguments() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {action.dest for action in launch_command_parser()._actions}


def load_accelerate_config(path: str):
    """Load `path` through accelerate's `load_config_from_file`, with one-line errors."""
    from accelerate.commands.config.config_args import load_config_from_file

    if not os.path.isfile(path):
        raise LaunchConfigError(f"{path}: no such accelerate config file "
                                f"(shipped in accelerate_configs/: {_shipped()})")
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LaunchConfigError(f"{path}:{where} is not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise LaunchConfigError(f"{path}: expected a mapping of accelerate settings, got {type(raw).__name__}")
    if raw.get("distributed_type") is False:
        # YAML 1.1 reads a bare NO as the boolean false.
        raise LaunchConfigError(f"{path}: distributed_type is the boolean false; quote it: distributed_type: 'NO'")
    try:
        return load_config_from_file(path)
    except ValueError as e:
        raise LaunchConfigError(f"{path}: {_one_line(e)}") from None


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    marker = "had unknown keys ("
    if marker in text:  # accelerate lists them; add the nearest valid spelling
        from accelerate.commands.config.config_args import ClusterConfig

        unknown = text.split(marker, 1)[1].split(")", 1)[0]
        valid = list(ClusterConfig.__dataclass_fields__)
        hints = []
        for key in yaml.safe_load(unknown) or []:
            near = difflib.get_close_matches(key, valid, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        return f"unknown top-level key {', '.join(hints)}"
    return text


def check_accelerate_config(path: str, num_processes: int | None = None, for_launch: bool = True):
    """Load and check an accelerate config; return accelerate's config object.

    `num_processes` is the total number of processes the caller intends (e.g. `--gpus`); it must
    equal the file's `num_processes`, which accelerate reads as the total over all machines.
    Raises LaunchConfigError with one line for: a missing or unparsable file, unknown keys at the
    top level or inside fsdp_config/deepspeed_config, a process-count mismatch, a multi-machine
    config without `main_process_ip` (skipped when `for_launch` is False, as for the memory planner,
    which does not need it), and MULTI_CPU with several processes but no mpirun hostfile.
    """
    cfg = load_accelerate_config(path)
    known = _launch_arguments()
    for section, prefix in _NESTED_PREFIX.items():
        for key in getattr(cfg, section, None) or {}:
            name = key if key.startswith(prefix) else prefix + key
            if name not in known:
                near = difflib.get_close_matches(name, sorted(k for k in known if k.startswith(prefix)), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise LaunchConfigError(
                    f"{path}: {section}.{key} is not an accelerate launch setting and would be ignored{hint}")
    dtype = str(getattr(cfg.distributed_type, "value", cfg.distributed_type))
    configured = cfg.num_processes
    if num_processes is not None:
        if configured in (None, -1):
            pass  # the file leaves it to the command line
        elif configured != num_processes:
            raise LaunchConfigError(
                f"{path}: num_processes is {configured} but {num_processes} were asked for; "
                f"edit num_processes or pass --num_processes {num_processes} to accelerate launch")
    if for_launch and cfg.num_machines > 1 and not cfg.main_process_ip:
        raise LaunchConfigError(
            f"{path}: num_machines is {cfg.num_machines} but main_process_ip is empty; set it to the IP of the "
            "machine with machine_rank 0, or pass --main_process_ip to accelerate launch")
    ds_file = (cfg.deepspeed_config or {}).get("deepspeed_config_file")
    if ds_file and not os.path.isfile(ds_file):
        raise LaunchConfigError(f"{path}: deepspeed_config.deepspeed_config_file {ds_file} does not exist "
                                "(relative paths are read from the directory you launch in)")
    if dtype == "MULTI_CPU" and (configured or 1) > 1 and not (cfg.mpirun_config or {}).get("mpirun_hostfile"):
        raise LaunchConfigError(
            f"{path}: distributed_type MULTI_CPU without an mpirun hostfile starts one process, not {configured}; "
            "use distributed_type: MULTI_GPU with use_cpu: true (see accelerate_configs/cpu_ddp_2proc.yaml)")
    return cfg


def check_local_processes(environ=os.environ, gpu_count: int | None = None) -> None:
    """No more processes on this machine than GPUs; run before anything touches a CUDA device.

    torchrun starts num_processes / num_machines workers per machine; with the 8 of a shipped config
    on a 2-GPU machine, worker 2 fails deep inside `torch.cuda.set_device` with "invalid device ordinal".
    """
    local = int(environ.get("LOCAL_WORLD_SIZE") or 1)
    if gpu_count is None:
        gpu_count = _gpu_count()
    use_cpu = str(environ.get("ACCELERATE_USE_CPU", "false")).lower() in ("true", "1")
    if gpu_count and not use_cpu and local > gpu_count:
        raise LaunchConfigError(
            f"the launcher started {local} processes on this machine but it has {gpu_count} GPUs; set num_processes "
            f"to {gpu_count} x num_machines in the accelerate config, or pass --num_processes to accelerate launch")


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def shard_on_cpu(state, environ=os.environ) -> bool:
    """Let accelerate's FSDP2 path shard over CPU processes; True if it will.

    `state` is the process's accelerate `PartialState` (a Trainer's `args.distributed_state`, set up
    by reading `args.world_size`); call this before the Trainer is built. Only FSDP version 2:
    FSDP1 wants a device.
    """
    from accelerate.utils import DistributedType

    wants_fsdp2 = (str(environ.get("ACCELERATE_USE_FSDP", "false")).lower() == "true"
                   and str(environ.get("FSDP_VERSION", "1")) == "2")
    if not wants_fsdp2 or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    # AcceleratorState reads this label only to decide on FSDP, then stores FSDP in its place.
    # PartialState is a singleton: every instance shares one __dict__, so this relabels the process.
    state.distributed_type = DistributedType.MULTI_GPU
    logger.info("FSDP2 on %d CPU processes (%s): parameters, gradients and optimizer states are sharded",
                state.num_processes, state.backend)
    return True


def check_processes(args, environ=os.environ) -> None:
    """Inside a launched process: every process the launcher started joined the Trainer's group.

    `args` is the TrainingArguments (or a TRL config) of the run; reading its `world_size` sets up
    accelerate's process group. Logs what this process sees, e.g. "process 1 of 2 (MULTI_CPU)".
    """
    gpu_count = _gpu_count()
    check_local_processes(environ, gpu_count)
    launched = int(environ.get("WORLD_SIZE") or 1)
    dtype = args.distributed_state.distributed_type.value
    logger.info("process %d of %d (%s; the launcher started %d)", args.process_index, args.world_size, dtype, launched)
    if launched > 1 and args.world_size != launched:
        hint = ("set use_cpu: true in the recipe (or export ACCELERATE_USE_CPU=true): torchrun does not pass the "
                "accelerate config's use_cpu on") if not gpu_count else "check CUDA_VISIBLE_DEVICES"
        raise LaunchConfigError(
            f"the launcher started {launched} processes but the Trainer runs {args.world_size} ({dtype}), so each "
            f"process would train alone on all the data; {hint}")
    if shard_on_cpu(args.distributed_state, environ):
        return  # FSDP2 over CPU processes (accelerate_configs/fsdp2_cpu.yaml)
    for variable, wanted in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")):
        if str(environ.get(variable, "false")).lower() == "true" and dtype != wanted:
            logger.warning("the accelerate config asks for %s but accelerate runs %s: every process holds the whole "
                           "model, gradients and optimizer states (on CPU: FSDP needs fsdp_version 2, DeepSpeed needs "
                           "--use_cpu false --ddp_backend gloo; see accelerate_configs/fsdp2_cpu.yaml, zero3_cpu.yaml)",
                           wanted, dtype)


def wraps_with_fsdp(args, environ=os.environ) -> bool:
    """Will the Trainer's accelerator wrap the model with FSDP? Call after `check_processes`.

    accelerate turns an FSDP config into FSDP only on a multi-accelerator group (a CPU group once
    `shard_on_cpu` relabelled it); elsewhere the config trains as data parallel. Under FSDP only the
    whole model's forward gathers the root's parameters (embeddings, final norm, LM head): code that
    calls the inner model directly (finetune/shared_prompt.py, finetune/fast_grpo.py) fails there.
    """
    dtype = args.distributed_state.distributed_type.value
    return dtype == "FSDP" or (str(environ.get("ACCELERATE_USE_FSDP", "false")).lower() == "true"
                               and dtype.startswith("MULTI_") and dtype != "MULTI_CPU")


def main(argv: list[str] | None = None) -> int:
    """`python -m corral.launch_checks CONFIG.yaml [NUM_PROCESSES]`: print OK or the one-line error."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or len(argv) > 2:
        print("usage: python -m corral.launch_checks CONFIG.yaml [NUM_PROCESSES]", file=sys.stderr)
        return 2
    try:
        cfg = check_accelerate_config(argv[0], int(argv[1]) if len(argv) == 2 else None)
    except LaunchConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2  # corral.errors.USER_ERROR_EXIT, as every entry point
    print(f"{argv[0]}: OK ({cfg.distributed_type}, num_processes {cfg.num_processes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
