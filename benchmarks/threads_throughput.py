"""Which torch CPU thread count is fastest for each corral workload: each entry script at 1 and 2 threads.

    make tiny-base && .venv/bin/python benchmarks/threads_throughput.py [--steps 20] [--threads 1,2] [--only sft/full,...]

Each run is the entry script as a user runs it (plain `python`, the tiny recipe, short `max_steps`,
no saving, no held-out evaluation), with the recipe key `--num_threads N`. The time is the Trainer's
`train_runtime` (the training loop only: no imports, loading or tokenizing); for `eval` it is batched
greedy generation (evals.generation) of 64 held-out capital prompts, 32 new tokens. Runs alternate
thread counts per workload, so a burst of load on a shared machine hits both. The winners are what
corral/threads.py's FASTEST table encodes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from run_environment import environment, print_environment

REPO = Path(__file__).resolve().parent.parent
PY = str(Path(sys.executable).parent / "python")
NO_SAVE = ["--save_strategy", "no", "--report_to", "none", "--logging_steps", "1000"]
EVAL = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
from corral.loading import load_model
from evals.formatting import format_prompt
from evals.generation import generate
model, tok = load_model(sys.argv[1])
rows = [json.loads(l) for l in open("outputs/tiny-world/heldout_capitals.jsonl")][:64]
prompts = [format_prompt(tok, [{"role": "user", "content": r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][-1]["content"]}], "chat") for r in rows]
generate(model, tok, prompts[:8], False, 8, 8)
start = time.perf_counter()
generate(model, tok, prompts, False, 32, 32)
print(f"'train_runtime': {time.perf_counter() - start}")
"""


def workloads(base: str, sft: str, steps: int) -> dict[str, list[str]]:
    s = ["--max_steps", str(steps), *NO_SAVE]
    return {
        "sft/full": [PY, "finetune/sft.py", "recipes/tiny/sft/full.yaml", "--model_name_or_path", base, *s],
        "sft/lora": [PY, "finetune/sft.py", "recipes/tiny/sft/lora.yaml", "--model_name_or_path", base, *s],
        "sft/qlora": [PY, "finetune/sft.py", "recipes/tiny/sft/qlora.yaml", "--model_name_or_path", base, *s],
        "dpo/full": [PY, "finetune/dpo.py", "recipes/tiny/dpo/full.yaml", "--model_name_or_path", sft,
                     "--eval_datasets", "[]", *s],
        "dpo/lora": [PY, "finetune/dpo.py", "recipes/tiny/dpo/lora.yaml", "--model_name_or_path", sft,
                     "--eval_datasets", "[]", *s],
        "reward/full": [PY, "reward/train.py", "recipes/tiny/reward/full.yaml", "--model_name_or_path", sft,
                        "--eval_datasets", "[]", "--eval_strategy", "no", *s],
        "reward/lora": [PY, "reward/train.py", "recipes/tiny/reward/lora.yaml", "--model_name_or_path", sft,
                        "--eval_datasets", "[]", "--eval_strategy", "no", *s],
        "rl/full": [PY, "finetune/rl.py", "recipes/tiny/rl/grpo.yaml", "--model_name_or_path", sft,
                    "--heldout_datasets", "[]", "--max_steps", str(max(2, steps // 4)), *NO_SAVE],
        "rl/lora": [PY, "finetune/rl.py", "recipes/tiny/rl/grpo.yaml", "--model_name_or_path", sft, "--use_peft", "true",
                    "--heldout_datasets", "[]", "--max_steps", str(max(2, steps // 4)), *NO_SAVE],
        "eval": [PY, "-c", EVAL, sft],
    }


def run(cmd: list[str], threads: int, out_dir: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(REPO)}
    env.pop("OMP_NUM_THREADS", None)
    full = cmd + ["--num_threads", str(threads), "--output_dir", str(out_dir)] if cmd[1] != "-c" else cmd + [str(threads)]
    proc = subprocess.run(full, capture_output=True, text=True, env=env, cwd=REPO)
    out = proc.stdout + proc.stderr
    found = re.findall(r"'train_runtime': '?([0-9.]+)", out)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"failed: {' '.join(full)}\n{out[-3000:]}")
    return float(found[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="outputs/tiny-base", help="base checkpoint (SFT workloads)")
    ap.add_argument("--sft", default="outputs/tiny-base", help="chat checkpoint (DPO, reward, RL, eval workloads); "
                    "the base is as fast, only the answers differ")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    env = environment(threads=f"{a.threads} (num_threads per run)")
    print_environment(env)
    results = {}
    with tempfile.TemporaryDirectory(prefix="threads-bench-") as tmp:
        for i, (name, cmd) in enumerate(workloads(a.base, a.sft, a.steps).items()):
            if a.only and name not in a.only.split(","):
                continue
            order = threads if i % 2 == 0 else threads[::-1]
            results[name] = {n: run(cmd, n, Path(tmp) / f"{name.replace('/', '-')}-{n}") for n in order}
            times = "  ".join(f"{n} thread(s) {results[name][n]:6.1f} s" for n in threads)
            best = min(results[name], key=results[name].get)
            print(f"{name:12s} {times}  fastest: {best}", flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"environment": env, "steps": a.steps, "seconds": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
