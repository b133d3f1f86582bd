"""What every benchmark records and prints beside its figures: torch threads, launcher, library versions, machine.

Timings on a shared CPU depend on the thread count first; a ratio without it is not comparable.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


def environment(threads: int | str | None = None, accelerate_config: str | None = None) -> dict:
    """A JSON-able record of the conditions a benchmark ran under.

    `threads`: the torch thread count the measured processes ran with (or a description when it varies
    per run); defaults to this process's. `accelerate_config`: the config file the runs were launched
    with, or None for a plain `python` launch (recorded with its content).
    """
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    config = None
    if accelerate_config:
        path = Path(accelerate_config)
        lines = path.read_text().splitlines() if path.is_file() else []
        config = {"path": str(accelerate_config),
                  "settings": [ln.split("#")[0].rstrip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]}
    return {
        "torch_threads": threads,
        "accelerate_config": config or "none (plain python process)",
        "versions": versions,
        "python": platform.python_version(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def print_environment(env: dict) -> None:
    config = env["accelerate_config"]
    launcher = config if isinstance(config, str) else f"{config['path']} ({'; '.join(config['settings'])})"
    print(f"torch threads: {env['torch_threads']} | CPUs available: {env['cpus_available']} | "
          f"load average at start: {env['load_average_1m_at_start']} (the machine is shared: compare ratios)")
    print(f"accelerate config: {launcher}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + f", python {env['python']}")
    print(f"command: {env['command']}", flush=True)
