"""Distributed training on the CPU: SFT and DPO on 2 processes, SFT on 2 "machines" over loopback,
sharded SFT, DPO and reward training (FSDP2; SFT also DeepSpeed ZeRO-2/3 when installed) on 2
processes, and the guards, which every training entry script runs.

Each run launches `finetune/sft.py` with `accelerate launch`, as a user would, on the seconds-sized
tiny base. With the same global batch (2 processes x 4 = 1 process x 8), the same seed and
`dataloader_drop_last`, data parallelism must reproduce the single-process loss curve: accelerate
gives process k every other batch of 4 from the same seeded permutation, so the union of one step's
batches is the single process's batch of 8, and the Trainer averages the loss over the tokens of all
processes (`average_tokens_across_devices`). Each process logs the world size it joined
("process 1 of 2 (MULTI_CPU; ...)"), which the tests read back; after training each process also
logs the parameter and optimizer-state bytes it holds ("rank 1 of 2 holds ..."), which shows whether
a sharded run really sharded.

The multi-process runs take 20-60 s on 2 cores and are marked slow; the guard against the silent
failure (a CPU launch without `use_cpu`, where every rank trains alone) runs in the default tier:
in-process for every entry script, and under a real 2-process launch for SFT and DPO.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from corral.launch_checks import LaunchConfigError, check_local_processes, check_processes, wraps_with_fsdp
from corral.recipe import run_cli

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "accelerate_configs"
PROCESS_LINE = re.compile(r"process (\d+) of (\d+) \((\w+); the launcher started (\d+)\)")
TOLERANCE = 1e-4  # per-step loss, 1 process vs several (measured: < 1e-6)
SHARD_LINE = re.compile(r"rank (\d+) of (\d+) holds (\d+) parameter bytes and (\d+) optimizer-state bytes")


def sft_command(tiny_small: Path, out: Path, batch: int, *extra: str) -> list[str]:
    return ["finetune/sft.py", "recipes/tiny/sft/full.yaml",
            "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]",
            "--output_dir", str(out), "--per_device_train_batch_size", str(batch),
            "--num_train_epochs", "1", "--logging_steps", "1", "--learning_rate", "1e-3",
            "--dataloader_drop_last", "true", "--save_strategy", "no", "--gradient_checkpointing", "false",
            "--ddp_find_unused_parameters", "false", *extra]


def pairs_command(script: str, recipe: str, tiny_small: Path, out: Path, batch: int, *extra: str) -> list[str]:
    """6 steps of a preference-pair trainer (DPO, reward model) on the tiny world's pairs, 1 thread."""
    return [script, recipe, "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/pref_train.jsonl'}}}]", "--eval_datasets", "[]",
            "--output_dir", str(out), "--per_device_train_batch_size", str(batch), "--max_steps", "6",
            "--logging_steps", "1", "--warmup_steps", "0", "--dataloader_drop_last", "true", "--save_strategy", "no",
            "--ddp_find_unused_parameters", "false", "--num_threads", "1", *extra]


def dpo_command(tiny_small: Path, out: Path, batch: int, *extra: str) -> list[str]:
    return pairs_command("finetune/dpo.py", "recipes/tiny/dpo/full.yaml", tiny_small, out, batch,
                         "--loss_type", "sigmoid", "--learning_rate", "1e-3", *extra)


def reward_command(tiny_small: Path, out: Path, batch: int, *extra: str) -> list[str]:
    return pairs_command("reward/train.py", "recipes/tiny/reward/full.yaml", tiny_small, out, batch,
                         "--eval_strategy", "no", *extra)


def launch(config: str, command: list[str], *launch_args: str, wait: bool = True):
    """`accelerate launch --config_file accelerate_configs/<config> ...` from the repo root."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config),
           *launch_args, *command]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def timed_launch(config, command, *launch_args):
    start = time.perf_counter()
    proc = launch(config, command, *launch_args)
    wall = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    return output, wall


def processes_seen(output: str) -> list[tuple[int, int, str]]:
    """(rank, world size, distributed type) each process logged, sorted by rank."""
    return sorted({(int(m[0]), int(m[1]), m[2]) for m in PROCESS_LINE.findall(output)})


def losses(out: Path) -> list[float]:
    log = json.loads((out / "run_manifest.json").read_text())["log_history"]
    return [e["loss"] for e in log if "loss" in e]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- guards, in the default tier


def _args(world_size: int, dtype: str = "MULTI_CPU"):
    state = SimpleNamespace(distributed_type=SimpleNamespace(value=dtype))
    return SimpleNamespace(world_size=world_size, process_index=0, distributed_state=state)


def test_launcher_world_larger_than_the_trainers_is_an_error():
    with pytest.raises(LaunchConfigError) as info:
        check_processes(_args(1, "NO"), {"WORLD_SIZE": "2"})
    message = str(info.value)
    assert message.startswith("the launcher started 2 processes but the Trainer runs 1 (NO), so each process would "
                              "train alone on all the data; ")
    assert "\n" not in message
    check_processes(_args(2), {"WORLD_SIZE": "2"})
    check_processes(_args(1, "NO"), {})  # a plain `python finetune/sft.py`


def test_more_processes_than_gpus_on_a_machine_is_an_error():
    with pytest.raises(LaunchConfigError, match="started 8 processes on this machine but it has 2 GPUs; set "
                                                "num_processes to 2 x num_machines"):
        check_local_processes({"LOCAL_WORLD_SIZE": "8"}, gpu_count=2)
    check_local_processes({"LOCAL_WORLD_SIZE": "2"}, gpu_count=2)
    check_local_processes({"LOCAL_WORLD_SIZE": "2", "ACCELERATE_USE_CPU": "true"}, gpu_count=1)
    check_local_processes({"LOCAL_WORLD_SIZE": "2"}, gpu_count=0)  # CPU processes


def test_fsdp_config_without_gpu_warns_that_nothing_is_sharded(caplog):
    with caplog.at_level("WARNING", logger="corral.launch"):
        check_processes(_args(2), {"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"})
    assert "asks for FSDP but accelerate runs MULTI_CPU: every process holds the whole model" in caplog.text


TRAINS_ALONE = ("error: the launcher started 2 processes but the Trainer runs 1 (NO), so each process would train "
                "alone on all the data; set use_cpu: true in the recipe (or export ACCELERATE_USE_CPU=true): torchrun "
                "does not pass the accelerate config's use_cpu on")
ENTRY_SCRIPTS = {  # module: (a recipe it runs, its data in the tiny world, flags that drop other data)
    "finetune.sft": ("recipes/tiny/sft/full.yaml", "sft_train.jsonl", []),
    "finetune.dpo": ("recipes/tiny/dpo/full.yaml", "pref_train.jsonl", ["--eval_datasets", "[]"]),
    "finetune.rl": ("recipes/tiny/rl/grpo.yaml", "rl_prompts_train.jsonl", ["--heldout_datasets", "[]"]),
    "reward.train": ("recipes/tiny/reward/full.yaml", "pref_train.jsonl", ["--eval_datasets", "[]"]),
}


@pytest.mark.parametrize("module", sorted(ENTRY_SCRIPTS))
def test_every_training_entry_script_stops_when_its_processes_would_train_alone(module, tiny_small, tmp_path,
                                                                                 monkeypatch, capsys):
    """A torchrun worker of a CPU launch without use_cpu: WORLD_SIZE 2, but a Trainer of world size 1."""
    recipe, data, extra = ENTRY_SCRIPTS[module]
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        run_cli(importlib.import_module(module).main, [
            str(REPO / recipe), "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world' / data}}}]", *extra, "--output_dir", str(out),
            "--use_cpu", "false", "--num_threads", "1"])
    assert exc.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert errors == [TRAINS_ALONE]
    assert not out.exists()  # before output_dir, data and model


@pytest.mark.parametrize("command", [sft_command, dpo_command], ids=["sft", "dpo"])
def test_cpu_launch_without_use_cpu_stops_before_training(command, tiny_small, tmp_path):
    """The silent failure: torchrun starts 2 workers, but without use_cpu each would train alone."""
    proc = launch("cpu_ddp_2proc.yaml", command(tiny_small, tmp_path / "out", 4, "--use_cpu", "false"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors and errors[0] == TRAINS_ALONE, output[-2000:]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_fsdp_wraps_the_model_only_on_an_accelerator_group():
    fsdp = {"ACCELERATE_USE_FSDP": "true"}
    assert wraps_with_fsdp(_args(2, "MULTI_GPU"), fsdp)  # GPUs, or CPU processes once shard_on_cpu relabelled them
    assert wraps_with_fsdp(_args(2, "FSDP"), {})  # the Accelerator exists already
    assert not wraps_with_fsdp(_args(2, "MULTI_CPU"), fsdp)  # FSDP1 on CPU processes: data parallel
    assert not wraps_with_fsdp(_args(1, "NO"), fsdp)  # one process
    assert not wraps_with_fsdp(_args(2, "MULTI_GPU"), {"ACCELERATE_USE_FSDP": "false"})


# --- real multi-process runs (slow)


@pytest.fixture(scope="module")
def one_process(tiny_small, tmp_path_factory):
    """The reference: 1 process x batch 8."""
    out = tmp_path_factory.mktemp("dist") / "one"
    output, wall = timed_launch("cpu.yaml", sft_command(tiny_small, out, 8))
    return SimpleNamespace(out=out, output=output, wall=wall, losses=losses(out))


@pytest.mark.slow
def test_two_processes_reproduce_the_single_process_loss_curve(one_process, tiny_small, tmp_path):
    out = tmp_path / "two"
    output, wall = timed_launch("cpu_ddp_2proc.yaml", sft_command(tiny_small, out, 4))
    assert processes_seen(one_process.output) == [(0, 1, "NO")]
    assert processes_seen(output) == [(0, 2, "MULTI_CPU"), (1, 2, "MULTI_CPU")]
    two = losses(out)
    assert len(two) == len(one_process.losses) == 16  # 128 rows / global batch 8
    diff = max(abs(a - b) for a, b in zip(two, one_process.losses))
    print(f"\n1 process: {one_process.wall:.1f} s; 2 processes: {wall:.1f} s; max |loss diff| {diff:.2e}")
    assert diff < TOLERANCE


@pytest.mark.slow
def test_two_machines_over_loopback_train_as_one_job_and_write_one_checkpoint(one_process, tiny_small, tmp_path):
    out = tmp_path / "two-nodes"
    command = sft_command(tiny_small, out, 4, "--save_strategy", "epoch")
    port = str(free_port())
    start = time.perf_counter()
    nodes = [launch("cpu_ddp_2proc.yaml", command, "--num_machines", "2", "--num_processes", "2",
                    "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", port,
                    wait=False) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    wall = time.perf_counter() - start
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert [processes_seen(o) for o in outputs] == [[(0, 2, "MULTI_CPU")], [(1, 2, "MULTI_CPU")]]

    diff = max(abs(a - b) for a, b in zip(losses(out), one_process.losses))
    print(f"\n2 machines (loopback): {wall:.1f} s; max |loss diff| vs 1 process {diff:.2e}")
    assert diff < TOLERANCE
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-16"]
    ckpt = out / "checkpoint-16"
    # Written once, by rank 0 (the Trainer's should_save); each rank adds only its own RNG state.
    assert sorted(p.name for p in ckpt.glob("rng_state_*")) == ["rng_state_0.pth", "rng_state_1.pth"]
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "corral_complete.json").is_file()
    assert json.loads((out / "run_manifest.json").read_text())["status"] == "finished"
    assert not list(out.glob(".saving-*"))  # every process's temporary save directory is gone


def shard_reports(output: str) -> dict[int, tuple[int, int]]:
    """rank -> (parameter bytes, optimizer-state bytes) it holds after training (corral.sharding.ShardReport)."""
    return {int(m[0]): (int(m[2]), int(m[3])) for m in SHARD_LINE.findall(output)}


def assert_sharded_like_one_process(one_process, out: Path, output: str, wall: float, label: str, params_sharded: bool):
    """Each of 2 ranks holds about half the optimizer states (and parameters, if sharded); same losses and model."""
    (one_params, one_opt), = shard_reports(one_process.output).values()
    two = shard_reports(output)
    assert sorted(two) == [0, 1], output[-2000:]
    for params, opt in two.values():
        assert 0.4 <= opt / one_opt <= 0.65
        assert 0.4 <= params / one_params <= 0.65 if params_sharded else params == one_params
    diff = max(abs(a - b) for a, b in zip(losses(out), one_process.losses))
    assert len(losses(out)) == len(one_process.losses) == 16
    print(f"\n{label}: {wall:.1f} s (1 process {one_process.wall:.1f} s); per rank {two[0][0]} parameter bytes "
          f"(1 process {one_params}), {two[0][1]} optimizer-state bytes ({one_opt}); max |loss diff| {diff:.2e}")
    assert diff < TOLERANCE
    # The saved model is a plain checkpoint equal to the single process's; the tied head stays tied.
    saved, reference = load_file(str(out / "model.safetensors")), load_file(str(one_process.out / "model.safetensors"))
    if "lm_head.weight" in saved and "lm_head.weight" not in reference:  # a full state dict names the tied copy too
        torch.testing.assert_close(saved.pop("lm_head.weight"), saved["model.embed_tokens.weight"])
    assert saved.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(saved[key], reference[key], atol=1e-5, rtol=0)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    torch.testing.assert_close(model.model.embed_tokens.weight.detach(), reference["model.embed_tokens.weight"],
                               atol=1e-5, rtol=0)


@pytest.mark.slow
def test_fsdp2_shards_over_two_cpu_processes_and_reproduces_the_single_process_run(one_process, tiny_small, tmp_path):
    out = tmp_path / "fsdp2"
    output, wall = timed_launch("fsdp2_cpu.yaml", sft_command(tiny_small, out, 4))
    assert processes_seen(output) == [(0, 2, "MULTI_CPU"), (1, 2, "MULTI_CPU")]  # the gloo group, then FSDP:
    assert output.count("FSDP2 on 2 CPU processes (gloo)") == 2
    assert "asks for FSDP but accelerate runs" not in output
    assert_sharded_like_one_process(one_process, out, output, wall, "fsdp2_cpu.yaml", params_sharded=True)


@pytest.mark.slow
def test_the_gpu_fsdp2_config_with_sharded_checkpoints_still_saves_a_plain_final_model(one_process, tiny_small, tmp_path):
    # fsdp2.yaml checkpoints with SHARDED_STATE_DICT; transformers alone then writes no weights into output_dir.
    out = tmp_path / "fsdp2-gpu-config"
    output, wall = timed_launch("fsdp2.yaml", sft_command(tiny_small, out, 4), "--num_processes", "2",
                                "--mixed_precision", "no")
    assert (out / "config.json").is_file()
    assert_sharded_like_one_process(one_process, out, output, wall, "fsdp2.yaml on CPU", params_sharded=True)


@pytest.mark.slow
@pytest.mark.skipif(find_spec("deepspeed") is None, reason="DeepSpeed is an optional extra: pip install -e '.[deepspeed]'")
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_on_two_cpu_processes_reproduces_the_single_process_run(one_process, tiny_small, tmp_path, stage):
    out = tmp_path / f"zero{stage}"
    output, wall = timed_launch(f"zero{stage}_cpu.yaml",
                                sft_command(tiny_small, out, 4, "--use_cpu", "false", "--ddp_backend", "gloo"))
    assert processes_seen(output) == [(0, 2, "DEEPSPEED"), (1, 2, "DEEPSPEED")]
    # ZeRO-2 shards optimizer states and gradients; ZeRO-3 the parameters too.
    assert_sharded_like_one_process(one_process, out, output, wall, f"zero{stage}_cpu.yaml", params_sharded=stage == 3)


@pytest.fixture(scope="module")
def dpo_one_process(tiny_small, tmp_path_factory):
    """The DPO reference: 1 process x batch 8."""
    out = tmp_path_factory.mktemp("dpo") / "one"
    output, wall = timed_launch("cpu.yaml", dpo_command(tiny_small, out, 8))
    return SimpleNamespace(out=out, output=output, wall=wall, losses=losses(out))


@pytest.mark.slow
def test_dpo_on_two_processes_reproduces_the_single_process_loss_curve(dpo_one_process, tiny_small, tmp_path):
    _, wall_two = timed_launch("cpu_ddp_2proc.yaml", dpo_command(tiny_small, tmp_path / "two", 4))
    a, b = dpo_one_process.losses, losses(tmp_path / "two")
    assert len(a) == len(b) == 6 and a[0] == pytest.approx(0.6931, abs=1e-4)  # log 2: policy == reference at start
    diff = max(abs(x - y) for x, y in zip(a, b))
    print(f"\nDPO 1 process: {dpo_one_process.wall:.1f} s; 2 processes: {wall_two:.1f} s; max |loss diff| {diff:.2e}")
    assert diff < TOLERANCE


def assert_fsdp2_like_one_process(one: SimpleNamespace, out: Path, output: str, wall: float, label: str):
    """FSDP2 on 2 CPU processes: each rank holds about half the parameters and optimizer states; the losses
    and the saved model are the single process's."""
    assert processes_seen(output) == [(0, 2, "MULTI_CPU"), (1, 2, "MULTI_CPU")]
    assert output.count("FSDP2 on 2 CPU processes (gloo)") == 2
    (one_params, one_opt), = shard_reports(one.output).values()
    two = shard_reports(output)
    assert sorted(two) == [0, 1], output[-2000:]
    for params, opt in two.values():
        assert 0.4 <= params / one_params <= 0.65 and 0.4 <= opt / one_opt <= 0.65
    diff = max(abs(a - b) for a, b in zip(losses(out), one.losses))
    print(f"\n{label}: {wall:.1f} s (1 process {one.wall:.1f} s); per rank {two[0][0]} parameter bytes (1 process "
          f"{one_params}), {two[0][1]} optimizer-state bytes ({one_opt}); max |loss diff| {diff:.2e}")
    assert len(losses(out)) == len(one.losses) == 6 and diff < TOLERANCE
    saved, reference = load_file(str(out / "model.safetensors")), load_file(str(one.out / "model.safetensors"))
    if "lm_head.weight" in saved and "lm_head.weight" not in reference:  # a full state dict names the tied copy too
        torch.testing.assert_close(saved.pop("lm_head.weight"), saved["model.embed_tokens.weight"])
    assert saved.keys() == reference.keys()
    weights = max((saved[k] - reference[k]).abs().max().item() for k in reference)
    print(f"max |weight diff| {weights:.2e}")
    # Adam moves a weight by about the learning rate (DPO here: 1e-3) whatever its gradient's size, so a weight whose
    # gradient is near zero (a row few tokens use) turns float noise into up to 2.4e-5 (measured, DPO).
    assert weights < 1e-4


@pytest.mark.slow
def test_dpo_with_fsdp2_on_two_cpu_processes_reproduces_the_single_process_run(dpo_one_process, tiny_small, tmp_path):
    out = tmp_path / "fsdp2"
    output, wall = timed_launch("fsdp2_cpu.yaml", dpo_command(tiny_small, out, 4))
    # shared_prompt (on by default) calls the inner model, which FSDP does not gather: TRL's forward runs instead.
    assert output.count("shared_prompt is off: under FSDP") == 2
    assert "asks for FSDP but accelerate runs" not in output
    assert_fsdp2_like_one_process(dpo_one_process, out, output, wall, "DPO fsdp2_cpu.yaml")


@pytest.mark.slow
def test_reward_model_with_fsdp2_on_two_cpu_processes_reproduces_the_single_process_run(tiny_small, tmp_path):
    one = SimpleNamespace(out=tmp_path / "one")
    one.output, one.wall = timed_launch("cpu.yaml", reward_command(tiny_small, one.out, 8))
    one.losses = losses(one.out)
    out = tmp_path / "fsdp2"
    output, wall = timed_launch("fsdp2_cpu.yaml", reward_command(tiny_small, out, 4))
    assert "asks for FSDP but accelerate runs" not in output
    assert_fsdp2_like_one_process(one, out, output, wall, "reward fsdp2_cpu.yaml")


@pytest.mark.slow
def test_grpo_with_fsdp2_on_two_cpu_processes_shards_with_trls_own_trainer(tiny_small, tmp_path):
    out = tmp_path / "grpo"
    output, wall = timed_launch("fsdp2_cpu.yaml", [
        "finetune/rl.py", "recipes/tiny/rl/grpo.yaml", "--model_name_or_path", str(tiny_small / "tiny-base"),
        "--datasets", f"[{{path: {tiny_small / 'tiny-world/rl_prompts_train.jsonl'}}}]", "--heldout_datasets", "[]",
        "--output_dir", str(out), "--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no",
        "--per_device_train_batch_size", "8", "--num_threads", "1"])
    # fast_grpo (the recipe's choice) calls the inner model, which FSDP does not gather: TRL's GRPOTrainer runs.
    assert output.count("fast_grpo is off: under FSDP") == 2
    assert output.count("FSDP2 on 2 CPU processes (gloo)") == 2
    whole = sum(p.numel() * p.element_size() for p in AutoModelForCausalLM.from_pretrained(out).parameters())
    held = [params for params, _ in shard_reports(output).values()]
    print(f"\nGRPO fsdp2_cpu.yaml: {wall:.1f} s; per rank {held} parameter bytes of {whole}")
    assert len(held) == 2 and all(0.4 <= params / whole <= 0.65 for params in held)
