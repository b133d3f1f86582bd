"""The shipped accelerate configs load with accelerate's own code; the CPU ones really run 2 processes,
and fsdp2_cpu.yaml really shards a model over them.

DeepSpeed is an optional extra (`pip install -e '.[deepspeed]'`), so the ZeRO configs are checked
here as far as accelerate goes without it: its config loader, the environment its launcher prepares,
and its DeepSpeedPlugin built from that environment (which is what the training process would do).
tests/test_distributed.py trains through zero2_cpu.yaml and zero3_cpu.yaml when DeepSpeed is installed.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from corral.launch_checks import LaunchConfigError, check_accelerate_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "accelerate_configs").glob("*.yaml"))
EXPECTED = {"cpu", "cpu_ddp_2proc", "single_gpu", "ddp", "fsdp2", "fsdp2_qlora", "zero2", "zero3", "zero3_offload",
            "multinode_fsdp2", "fsdp2_cpu", "zero2_cpu", "zero3_cpu"}


def test_every_expected_config_is_shipped():
    assert len(CONFIGS) > 0
    assert EXPECTED <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_with_accelerates_loader_and_opens_with_its_launch_command(path):
    cfg = load_config_from_file(str(path))
    assert cfg.num_processes >= 1
    first_lines = path.read_text().splitlines()[:6]
    assert first_lines[0].startswith("# ")
    command = f"accelerate launch --config_file accelerate_configs/{path.name} "
    commands = [line.lstrip("# ") for line in first_lines if command in line]
    assert any(c.startswith(command) and " finetune/sft.py recipes/" in c for c in commands), path
    for c in commands:  # the example recipe exists
        assert (ROOT / c.split(" finetune/sft.py ", 1)[1].split()[0]).is_file(), c


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_passes_corrals_checks(path):
    if path.stem == "multinode_fsdp2":  # a template: main_process_ip must be filled in before launching
        with pytest.raises(LaunchConfigError, match="main_process_ip is empty"):
            check_accelerate_config(str(path))
        check_accelerate_config(str(path), for_launch=False)
    else:
        check_accelerate_config(str(path))


def _launcher_args(path):
    """What `accelerate launch --config_file path script.py` decides before starting processes."""
    args = launch_command_parser().parse_args(["--config_file", str(path), "script.py"])
    return _validate_launch_command(args)


@pytest.mark.parametrize("name", ["fsdp2", "fsdp2_qlora", "multinode_fsdp2"])
def test_fsdp_configs_build_accelerates_fsdp_plugin(name):
    args, _, _ = _launcher_args(ROOT / "accelerate_configs" / f"{name}.yaml")
    args.main_process_ip = args.main_process_ip or "127.0.0.1"
    assert args.use_fsdp
    env = prepare_multi_gpu_env(args)
    with mock.patch.dict(os.environ, env, clear=True):
        plugin = FullyShardedDataParallelPlugin()  # reads the FSDP_* variables, as the trainer's process does
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True
    assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    assert plugin.cpu_ram_efficient_loading is True
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert type(plugin.cpu_offload).__name__ == ("CPUOffloadPolicy" if name == "fsdp2_qlora" else "OffloadPolicy")
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"


@pytest.mark.parametrize("name, stage, offload",
                         [("zero2", 2, "none"), ("zero3", 3, "none"), ("zero3_offload", 3, "cpu"),
                          ("zero2_cpu", 2, "none"), ("zero3_cpu", 3, "none")])
def test_zero_configs_build_accelerates_deepspeed_plugin_without_deepspeed(name, stage, offload):
    args, defaults, mp_from_config = _launcher_args(ROOT / "accelerate_configs" / f"{name}.yaml")
    assert args.use_deepspeed
    fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
    args.deepspeed_fields_from_accelerate_config = ",".join(fields)
    _, env = prepare_deepspeed_cmd_env(args)
    with mock.patch.dict(os.environ, env, clear=True):
        plugin = DeepSpeedPlugin()
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage"] == stage
    assert zero["offload_optimizer"]["device"] == zero["offload_param"]["device"] == offload
    # left to the recipe: DeepSpeed takes them from TrainingArguments instead of conflicting with them
    assert plugin.deepspeed_config["gradient_accumulation_steps"] == "auto"
    assert plugin.deepspeed_config["gradient_clipping"] == "auto"
    assert plugin.zero3_init_flag is (stage == 3)


WORLD_SCRIPT = textwrap.dedent("""
    import torch.distributed as dist
    from accelerate import PartialState
    # cpu=True is what TrainingArguments(use_cpu=True) passes; see cpu_ddp_2proc.yaml
    state = PartialState(cpu=True)
    # one file per rank: two processes printing to one pipe interleave their lines
    with open(f"rank{state.process_index}.txt", "w") as f:
        f.write(f"rank={state.process_index} world={dist.get_world_size()} type={state.distributed_type.value} "
                f"backend={state.backend}")
""")


def launch_script(tmp_path, text: str, config: str, timeout: int, **env) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file accelerate_configs/<config> script.py` in `tmp_path`, 1 thread per process."""
    script = tmp_path / "script.py"
    script.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "accelerate_configs" / config),
         str(script)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_cpu_ddp_config_really_starts_two_gloo_processes(tmp_path):
    proc = launch_script(tmp_path, WORLD_SCRIPT, "cpu_ddp_2proc.yaml", timeout=120)
    lines = sorted(p.read_text() for p in tmp_path.glob("rank*.txt"))
    assert lines == [f"rank={r} world=2 type=MULTI_CPU backend=gloo" for r in (0, 1)], proc.stdout


SHARD_SCRIPT = textwrap.dedent("""
    import torch
    from accelerate import Accelerator, PartialState
    from transformers import LlamaConfig, LlamaForCausalLM
    from corral.sharding import local_bytes, optimizer_state_bytes
    from corral.launch_checks import shard_on_cpu

    state = PartialState(cpu=True)
    sharded = shard_on_cpu(state)  # what corral.launch_checks.check_processes does in every entry script
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    full = local_bytes(model.parameters())
    model, optimizer = accelerator.prepare(model, torch.optim.AdamW(model.parameters(), lr=1e-2))
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(state.process_index))
    accelerator.backward(model(input_ids=ids, labels=ids).loss)
    optimizer.step()
    with open(f"rank{state.process_index}.txt", "w") as f:
        f.write(f"{sharded} {accelerator.distributed_type.value} {full} {local_bytes(model.parameters())} "
                f"{optimizer_state_bytes(optimizer)}")
""")


def test_fsdp2_cpu_config_shards_a_model_over_two_gloo_processes(tmp_path):
    """accelerate's own FSDP2 path (fully_shard) on CPU processes: each holds half the parameters and Adam states."""
    launch_script(tmp_path, SHARD_SCRIPT, "fsdp2_cpu.yaml", timeout=300, PYTHONPATH=str(ROOT))
    ranks = [p.read_text().split() for p in sorted(tmp_path.glob("rank*.txt"))]
    assert len(ranks) == 2 and all(r[:2] == ["True", "FSDP"] for r in ranks), ranks
    full = int(ranks[0][2])
    params, opt = [int(r[3]) for r in ranks], [int(r[4]) for r in ranks]
    assert sum(params) == full and all(0.4 <= b / full <= 0.6 for b in params)
    assert all(0.4 <= b / (2 * full) <= 0.6 for b in opt)  # Adam: two fp32 moments per parameter, halved


# --- check_accelerate_config's one-line errors


def _write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _error(path, *args, **kwargs) -> str:
    with pytest.raises(LaunchConfigError) as info:
        check_accelerate_config(path, *args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file_names_the_shipped_configs(tmp_path):
    message = _error(str(tmp_path / "nope.yaml"))
    assert message.startswith(f"{tmp_path / 'nope.yaml'}: no such accelerate config file")
    assert "fsdp2.yaml" in message


def test_process_count_mismatch():
    message = _error(str(ROOT / "accelerate_configs" / "fsdp2.yaml"), 2)
    assert message.endswith("num_processes is 8 but 2 were asked for; edit num_processes or pass --num_processes 2 "
                            "to accelerate launch")
    check_accelerate_config(str(ROOT / "accelerate_configs" / "fsdp2.yaml"), 8)


def test_misspelled_fsdp_key_is_an_error_not_silently_ignored(tmp_path):
    path = _write(tmp_path, """
        distributed_type: FSDP
        num_processes: 2
        fsdp_config:
          fsdp_version: 2
          fsdp_ofload_params: true
    """)
    assert _error(path) == (f"{path}: fsdp_config.fsdp_ofload_params is not an accelerate launch setting and "
                            "would be ignored; did you mean 'fsdp_offload_params'?")


def test_unknown_top_level_key_gets_a_suggestion(tmp_path):
    path = _write(tmp_path, """
        distributed_type: MULTI_GPU
        num_proceses: 2
    """)
    assert _error(path) == f"{path}: unknown top-level key 'num_proceses' (did you mean 'num_processes'?)"


def test_bare_no_is_caught(tmp_path):
    path = _write(tmp_path, "distributed_type: NO\nnum_processes: 1\n")
    assert "quote it: distributed_type: 'NO'" in _error(path)


def test_multi_cpu_without_mpirun_is_one_process(tmp_path):
    path = _write(tmp_path, "distributed_type: MULTI_CPU\nnum_processes: 2\nuse_cpu: true\n")
    assert "starts one process, not 2" in _error(path)
