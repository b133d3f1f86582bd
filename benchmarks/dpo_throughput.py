"""corral's DPO entry script against stock `trl dpo` on the same tiny model, data and threads, with and without
precomputed reference log-probs: training steps/s, CPU seconds, wall time and peak RSS of each run, and the ratios.

    python benchmarks/dpo_throughput.py                          # tiny SFT model, tiny-world pairs, 30 steps, 1 thread
    python benchmarks/dpo_throughput.py --max_steps 60 --repeats 3 --threads 2 --out reports/dpo_throughput.json
    python benchmarks/dpo_throughput.py --pairs 240 --max_steps 90 --repeats 3   # 3 epochs: precompute paid back

TRL runs the precompute pass inside `train()`, so its steps/s counts that pass: over 30 steps of a 1,660-pair
file the pass (a forward over all pairs) costs more than the reference forwards it saves. `--pairs` with a few
epochs measures what a real run of several epochs sees.

corral runs twice: as shipped (shared-prompt forward, finetune/shared_prompt.py) and with
`--shared_prompt false` (TRL's own forward, to show what that change is worth). Every process gets
OMP_NUM_THREADS=--threads exported before `accelerate launch` (accelerate passes it on; corral takes
an exported value as the user's choice), so both sides compute on the same thread count.

Both sides are launched the way a user launches them (`accelerate launch --config_file
accelerate_configs/cpu.yaml finetune/dpo.py <recipe>` and `trl dpo --accelerate_config ...`), in
alternating order, with the same hyperparameters, batch size, max_length and seed. The data is what
corral's mixture produces from the recipe's file, written out for `trl dpo` as a JSON-lines dataset,
so both train on identical rows. steps/s is the Trainer's `train_steps_per_second` (the training loop
only); wall time covers everything from process start (imports, loading, tokenizing, the reference
pass when precomputing). Peak RSS is the largest resident set of the launched process tree
(`os.wait4` of each run: the launcher and the training process it waits for). CPU seconds (user +
system of that tree, from the same `os.wait4`) are the robust figure on a shared machine: with one
thread they count the work done, not the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run_environment import environment, print_environment  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RECIPE = "recipes/tiny/dpo/full.yaml"


def common_args(a) -> list[str]:
    """Training settings given to both sides on the command line (so the recipe's own values do not matter)."""
    return ["--output_dir", "{out}", "--max_steps", str(a.max_steps), "--per_device_train_batch_size", str(a.batch_size),
            "--learning_rate", "5e-5", "--beta", "0.1", "--max_length", "128", "--loss_type", "sigmoid",
            "--lr_scheduler_type", "cosine", "--warmup_steps", "0.1", "--gradient_checkpointing", "false",
            "--logging_steps", str(a.max_steps), "--save_strategy", "no", "--report_to", "none", "--seed", "0",
            "--use_cpu", "true", "--bf16", "false", "--dtype", "float32"]  # corral: + --freeze_embeddings false, as trl trains them


def corral_command(a, data: Path, precompute: bool, shared_prompt: bool = True) -> list[str]:
    return [str(VENV_BIN / "accelerate"), "launch", "--config_file", a.accelerate_config, "finetune/dpo.py", RECIPE,
            "--model_name_or_path", a.model, "--datasets", f"[{{path: {data}}}]", "--eval_datasets", "[]",
            "--shared_prompt", str(shared_prompt).lower(), "--freeze_embeddings", "false",
            "--precompute_ref_log_probs", str(precompute).lower(), *common_args(a)]


def trl_command(a, data_dir: Path, precompute: bool) -> list[str]:
    return [str(VENV_BIN / "trl"), "dpo", "--accelerate_config", a.accelerate_config, "--model_name_or_path", a.model,
            "--dataset_name", str(data_dir), "--precompute_ref_log_probs", str(precompute).lower(), *common_args(a)]


def run(command: list[str], log: Path, threads: int) -> dict:
    """Run one training process tree; its steps/s (from the Trainer's final metrics), CPU seconds, wall time, peak RSS."""
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(command, cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
                                     "OMP_NUM_THREADS": str(threads)})
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({log}): {' '.join(command)}\n{text[-2000:]}")
    found = re.findall(r"'train_steps_per_second': '?([0-9.]+)", text)
    if not found:
        raise SystemExit(f"no train_steps_per_second in {log}")
    runtime = re.findall(r"'train_runtime': '?([0-9.]+)", text)
    return {"steps_per_s": float(found[-1]), "train_s": float(runtime[-1]) if runtime else float("nan"),
            "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def write_data(a, tmp: Path) -> tuple[Path, Path, int]:
    """The recipe's data through corral's mixture, as a file for corral and a dataset directory for trl."""
    from data_prep.mixture import DatasetSpec, load_mixture

    rows = load_mixture([DatasetSpec(a.data)], kind="preference").train.to_list()
    rows = rows[: a.pairs] if a.pairs else rows
    data_dir = tmp / "data"
    data_dir.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (data_dir / "train.jsonl").write_text(text)
    (tmp / "pairs.jsonl").write_text(text)
    return tmp / "pairs.jsonl", data_dir, len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="outputs/tiny-sft-full", help="SFT checkpoint both sides start from")
    p.add_argument("--data", default="outputs/tiny-world/pref_train.jsonl", help="preference pairs")
    p.add_argument("--max_steps", type=int, default=30)
    p.add_argument("--pairs", type=int, default=0,
                   help="train on the first N pairs only (0: all); with --max_steps a few epochs of them, the "
                        "precomputed reference log-probs are paid back as in a real run")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=1, help="runs per configuration; the median is reported")
    p.add_argument("--accelerate_config", default="accelerate_configs/cpu.yaml")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every run (OMP_NUM_THREADS)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args(argv)

    env = environment(threads=a.threads, accelerate_config=a.accelerate_config)
    print_environment(env)
    results = {}
    sides = ("corral", "trl", "corral -shared")
    with tempfile.TemporaryDirectory(prefix="dpo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data, data_dir, n_rows = write_data(a, tmp)
        print(f"{n_rows} pairs from {a.data} ({a.max_steps * a.batch_size / n_rows:.1f} epochs); model {a.model}; {a.max_steps} steps of batch {a.batch_size}")
        for repeat in range(a.repeats):
            for precompute in (False, True):
                for side in (sides if repeat % 2 == 0 else sides[::-1]):
                    key = f"{side}{' +precompute' if precompute else ''}"
                    out = tmp / f"{side.replace(' ', '')}-{int(precompute)}-{repeat}"
                    command = (trl_command(a, data_dir, precompute) if side == "trl" else
                               corral_command(a, data, precompute, shared_prompt=side == "corral"))
                    command = [w.replace("{out}", str(out)) for w in command]
                    r = run(command, tmp / f"{out.name}.log", a.threads)
                    results.setdefault(key, []).append(r)
                    print(f"  {key:<24} {r['steps_per_s']:.3f} steps/s  {r['cpu_s']:.1f} CPU s  {r['wall_s']:.1f} s wall  "
                          f"{r['peak_rss_mb']:.0f} MB peak RSS", flush=True)

    median = {k: {m: statistics.median(r[m] for r in runs) for m in runs[0]} for k, runs in results.items()}
    print(f"\n{'run':<24} {'steps/s':>8} {'train s':>8} {'CPU s':>7} {'wall s':>8} {'peak RSS MB':>12}")
    for k, m in median.items():
        print(f"{k:<24} {m['steps_per_s']:>8.3f} {m['train_s']:>8.1f} {m['cpu_s']:>7.1f} {m['wall_s']:>8.1f} "
              f"{m['peak_rss_mb']:>12.0f}")
    print(f"\nratios corral / trl at {a.threads} thread(s) (steps/s: > 1 is faster; CPU s, wall and RSS: < 1 is less)")
    for suffix in ("", " +precompute"):
        c, t, n = median[f"corral{suffix}"], median[f"trl{suffix}"], median[f"corral -shared{suffix}"]
        print(f"  {'with precompute' if suffix else 'reference model':<16} steps/s {c['steps_per_s'] / t['steps_per_s']:.2f}  "
              f"CPU s {c['cpu_s'] / t['cpu_s']:.2f}  wall {c['wall_s'] / t['wall_s']:.2f}  "
              f"peak RSS {c['peak_rss_mb'] / t['peak_rss_mb']:.2f}  (corral without shared prompt: steps/s "
              f"{n['steps_per_s'] / t['steps_per_s']:.2f})")
    c, t = median["corral +precompute"], median["trl"]
    print(f"  corral with precompute / trl as launched by default (reference model): steps/s "
          f"{c['steps_per_s'] / t['steps_per_s']:.2f}  CPU s {c['cpu_s'] / t['cpu_s']:.2f}")
    for side in ("corral", "trl"):
        a_, b_ = median[side], median[f"{side} +precompute"]
        print(f"  {side}: precompute / reference model: steps/s {b_['steps_per_s'] / a_['steps_per_s']:.2f}  "
              f"peak RSS {b_['peak_rss_mb'] / a_['peak_rss_mb']:.2f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"environment": env, "settings": vars(a), "pairs": n_rows, "runs": results,
                                           "median": median},
                                          indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
