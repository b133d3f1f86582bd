"""Distributed training on the CPU: SFT and DPO on 2 processes, SFT on 2 "machines" over loopback,
FSDP2's fallback, and the guards.

Each run launches `finetune/sft.py` with `accelerate launch`, as a user would, on the seconds-sized
tiny base. With the same global batch (2 processes x 4 = 1 process x 8), the same seed and
`dataloader_drop_last`, data parallelism must reproduce the single-process loss curve: accelerate
gives process k every other batch of 4 from the same seeded permutation, so the union of one step's
batches is the single process's batch of 8, and the Trainer averages the loss over the tokens of all
processes (`average_tokens_across_devices`). Each process logs the world size it joined
("process 1 of 2 (MULTI_CPU; ...)"), which the tests read back.

The multi-process runs take 20-60 s on 2 cores and are marked slow; the guard against the silent
failure (a CPU launch without `use_cpu`, where every rank trains alone) runs in the default tier.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from finetune.launch_checks import LaunchConfigError, check_local_processes, check_processes

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "accelerate_configs"
PROCESS_LINE = re.compile(r"process (\d+) of (\d+) \((\w+); the launcher started (\d+)\)")
TOLERANCE = 1e-4  # per-step loss, 1 process vs several (measured: < 1e-6)


def sft_command(tiny_small: Path, out: Path, batch: int, *extra: str) -> list[str]:
    return ["finetune/sft.py", "recipes/tiny/sft/full.yaml",
            "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]",
            "--output_dir", str(out), "--per_device_train_batch_size", str(batch),
            "--num_train_epochs", "1", "--logging_steps", "1", "--learning_rate", "1e-3",
            "--dataloader_drop_last", "true", "--save_strategy", "no", "--gradient_checkpointing", "false",
            "--ddp_find_unused_parameters", "false", *extra]


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


def test_cpu_launch_without_use_cpu_stops_before_training(tiny_small, tmp_path):
    """The silent failure: torchrun starts 2 workers, but without use_cpu each would train alone."""
    proc = launch("cpu_ddp_2proc.yaml", sft_command(tiny_small, tmp_path / "out", 4, "--use_cpu", "false"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors and errors[0] == (
        "error: the launcher started 2 processes but the Trainer runs 1 (NO), so each process would train alone on "
        "all the data; set use_cpu: true in the recipe (or export ACCELERATE_USE_CPU=true): torchrun does not pass "
        "the accelerate config's use_cpu on"), output[-2000:]
    assert not (tmp_path / "out" / "model.safetensors").exists()


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


@pytest.mark.slow
def test_fsdp2_config_on_cpu_runs_as_data_parallel_with_a_warning(one_process, tiny_small, tmp_path):
    """accelerate only shards on GPUs: on the CPU the FSDP2 config trains as MULTI_CPU, and says so."""
    out = tmp_path / "fsdp2"
    output, wall = timed_launch("fsdp2.yaml", sft_command(tiny_small, out, 4), "--num_processes", "2",
                                "--mixed_precision", "no")
    assert processes_seen(output) == [(0, 2, "MULTI_CPU"), (1, 2, "MULTI_CPU")]
    assert "asks for FSDP but accelerate runs MULTI_CPU" in output
    diff = max(abs(a - b) for a, b in zip(losses(out), one_process.losses))
    print(f"\nfsdp2.yaml on CPU (2 processes): {wall:.1f} s; max |loss diff| vs 1 process {diff:.2e}")
    assert diff < TOLERANCE


@pytest.mark.slow
def test_dpo_on_two_processes_reproduces_the_single_process_loss_curve(tiny_small, tmp_path):
    pairs = tiny_small / "tiny-world/pref_train.jsonl"
    command = ["finetune/dpo.py", "recipes/tiny/dpo/full.yaml", "--model_name_or_path", str(tiny_small / "tiny-base"),
               "--datasets", f"[{{path: {pairs}}}]", "--eval_datasets", "[]", "--max_steps", "6", "--loss_type", "sigmoid",
               "--logging_steps", "1", "--learning_rate", "1e-3", "--warmup_steps", "0", "--dataloader_drop_last", "true",
               "--save_strategy", "no", "--ddp_find_unused_parameters", "false"]
    one, wall_one = timed_launch("cpu.yaml", [*command, "--output_dir", str(tmp_path / "one"),
                                              "--per_device_train_batch_size", "8"])
    two, wall_two = timed_launch("cpu_ddp_2proc.yaml", [*command, "--output_dir", str(tmp_path / "two"),
                                                        "--per_device_train_batch_size", "4"])
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 6 and a[0] == pytest.approx(0.6931, abs=1e-4)  # log 2: policy == reference at start
    diff = max(abs(x - y) for x, y in zip(a, b))
    print(f"\nDPO 1 process: {wall_one:.1f} s; 2 processes: {wall_two:.1f} s; max |loss diff| {diff:.2e}")
    assert diff < TOLERANCE
