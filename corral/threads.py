"""How many threads torch computes with on the CPU: the fastest measured setting for the workload, unless
the user chose one.

Measured on the tiny base (2.7M parameters, fp32) on 2 vCPUs, quiet machine (load < 1.2), each entry
script at 1 and 2 threads, 20 steps of its tiny recipe, `train_runtime` (docs/performance.md has the
command and the earlier, loaded-machine tables):

| workload     | 1 thread (run 1 / run 2) | 2 threads (run 1 / run 2) | picked |
|--------------|--------------------------|---------------------------|--------|
| sft/full     | 21.3 / 21.3 s            | 11.4 / 13.3 s             | all    |
| sft/lora     | 8.2 / 6.3 s              | 5.0 / 4.0 s               | all    |
| sft/qlora    | - / 9.1 s                | - / 6.2 s                 | all    |
| dpo/full     | 8.7 / 7.2 s              | 5.1 / 5.3 s               | all    |
| dpo/lora     | 13.4 / 14.3 s            | 8.7 / 7.9 s               | all    |
| reward/full  | 9.1 / 8.0 s              | 4.5 / 4.4 s               | all    |
| reward/lora  | - / 8.8 s                | - / 5.0 s                 | all    |
| rl/full      | 3.2 / 3.7 s              | 3.1 / 2.2 s               | all    |
| rl/lora      | - / 3.4 s                | - / 2.3 s                 | all    |
| eval         | 0.7 / 0.9 s              | 0.5 / 0.7 s               | all    |

A forward+backward+AdamW step of the same model at batch shapes from 1x32 to 16x128 tokens is 1.2-1.8x
faster on 2 threads too, so no batch size of these recipes favours 1 thread on a quiet machine. The
earlier table (1 thread for full fine-tuning: 8.4 s vs 17.6 s) was measured while other jobs held the
cores, which is the case below.

On a busy machine (1-minute load average at least the cores available) a second thread waits for cores
other processes hold: measured at load ~13 on 2 vCPUs, LoRA SFT 1 thread 17.7 s, 2 threads 190 s; QLoRA
26.5 s vs 230 s. The pick does not follow the load (the same recipe computes with the same thread count,
so in the same summation order, wherever it runs; the load average also lags a minute and counts the
previous run of the same job): a warning says to set `num_threads: 1` on a shared machine.

"all" is every core this process may use (`os.sched_getaffinity`) divided by the processes launched on
this machine (`LOCAL_WORLD_SIZE`), which is also what accelerate gives each CPU process by default.

Who decides, first match wins, and the log says which:
1. the recipe's `num_threads` (every entry script's arguments include `ThreadArguments`);
2. `accelerate launch --num_cpu_threads_per_process N` (accelerate 1.15 config files reject that key);
3. `OMP_NUM_THREADS` exported by the user (accelerate always exports it to its workers, so under
   `accelerate launch` only a value the launcher itself inherited counts);
4. `FASTEST[workload]`.
On a GPU run nothing is changed.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from corral.errors import CorralError

logger = logging.getLogger("corral.threads")

ALL = 0  # every core available to this process
# workload -> torch threads (1, or ALL), the faster of 1 and 2 threads measured on 2 vCPUs (module docstring).
FASTEST = {
    "sft/full": ALL,
    "sft/lora": ALL,
    "sft/qlora": ALL,
    "dpo/full": ALL,
    "dpo/lora": ALL,
    "reward/full": ALL,
    "reward/lora": ALL,
    "rl/full": ALL,
    "rl/lora": ALL,
    "eval": ALL,
}


@dataclass
class ThreadArguments:
    """Recipe key for the CPU thread count, shared by every entry script's arguments."""

    num_threads: int | None = field(
        default=None, metadata={"help": "CPU only: torch threads per process. Default: the setting measured fastest "
                                "for this workload (corral/threads.py), unless accelerate's --num_cpu_threads_per_process "
                                "or an exported OMP_NUM_THREADS says otherwise."})


def workload(kind: str, model_args=None) -> str:
    """The `FASTEST` key of a run: `kind` (sft, dpo, reward, rl, eval) and the adapter of TRL's ModelConfig."""
    if kind == "eval" or model_args is None:
        return kind
    if getattr(model_args, "load_in_4bit", False) or getattr(model_args, "load_in_8bit", False):
        return f"{kind}/qlora" if f"{kind}/qlora" in FASTEST else f"{kind}/lora"
    return f"{kind}/lora" if getattr(model_args, "use_peft", False) else f"{kind}/full"


def available_cores() -> int:
    """Cores this process may use, shared among the processes launched on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def _launcher() -> tuple[list[str], dict[str, str]] | None:
    """argv and environment of the `accelerate launch` process this one runs under (Linux /proc), else None."""
    if "ACCELERATE_DYNAMO_BACKEND" not in os.environ:  # exported by `accelerate launch` to its workers
        return None
    pid = os.getppid()
    for _ in range(3):  # the worker's parent, or torchrun's agent under it
        proc = Path(f"/proc/{pid}")
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            env = dict(e.split("=", 1) for e in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in e)
            status = (proc / "status").read_text()
        except OSError:
            return None
        if "launch" in argv and any(Path(a).name.startswith("accelerate") for a in argv[:3]):
            return [a for a in argv if a], env
        pid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")))
    return None


def _flag_threads(argv: list[str]) -> int | None:
    """`--num_cpu_threads_per_process N` from an accelerate launch command line. (accelerate 1.15's config
    files reject this key as unknown, so the command line is the only place it can be given.)"""
    for i, a in enumerate(argv):
        if a.startswith("--num_cpu_threads_per_process"):
            return int(a.split("=", 1)[1] if "=" in a else argv[i + 1])
    return None


def explicit_threads(recipe_value: int | None) -> tuple[int, str] | None:
    """The thread count the user chose, and where, or None."""
    if recipe_value is not None:
        return recipe_value, "the recipe's num_threads"
    launcher = _launcher()
    if launcher is not None:
        argv, env = launcher
        value = _flag_threads(argv)
        if value is not None:
            return value, "accelerate's num_cpu_threads_per_process"
        if env.get("OMP_NUM_THREADS", "").isdigit():
            return int(env["OMP_NUM_THREADS"]), f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} given to {shlex.join(argv[:2])}"
        return None
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return int(os.environ["OMP_NUM_THREADS"]), f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    return None


def pick_threads(kind: str, model_args=None, recipe_value: int | None = None, use_cpu: bool = False,
                 warn_busy: bool = True) -> int | None:
    """Set torch's CPU thread count for this run and log why; returns it (None on a GPU run, left alone).
    `warn_busy=False` (interactive chat, where the terminal shows only the conversation) skips the busy warning."""
    import torch

    if recipe_value is not None and recipe_value < 1:
        raise CorralError(f"num_threads must be >= 1 (or left out for corral's pick), got {recipe_value}")
    if torch.cuda.is_available() and not use_cpu:
        return None
    key = workload(kind, model_args)
    chosen = explicit_threads(recipe_value)
    if chosen is None:
        n = FASTEST.get(key, ALL) or available_cores()
        why = f"measured fastest for {key} (corral/threads.py); set num_threads in the recipe to override"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if warn_busy and n > 1 and load >= available_cores():
            logger.warning("the machine is busy (1-min load average %.1f >= %d cores): %d threads will wait for "
                           "cores other processes hold (measured up to 10x slower); on a shared machine set "
                           "num_threads: 1 in the recipe", load, available_cores(), n)
    else:
        n, why = chosen
    torch.set_num_threads(n)
    logger.info("torch CPU threads: %d (%s)", n, why)
    return n
