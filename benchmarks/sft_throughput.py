"""corral SFT vs the stock `trl sft` CLI: tokens/s and peak RSS, side by side in one run.

    make tiny-base && .venv/bin/python benchmarks/sft_throughput.py [--steps 40] [--only corral,trl]

Same model (outputs/tiny-base), same data (outputs/tiny-world/sft_train.jsonl), same batch size,
max_length, learning rate, fp32, no gradient checkpointing, assistant-only loss. Each run is a
separate process under `/usr/bin/time -v` (peak RSS of the training process). Throughput is
TRL's own `num_tokens` (non-padding tokens seen) over `train_runtime`, both from the final log line;
for corral's row-packed run, whose batches TRL counts as one row each, the tokens are the epochs
trained times the packed tokens per epoch that finetune/sft.py logs.

Also run: TRL with `--packing true --max_length 1024` (TRL's default BFD packing), TRL's wrapped
packing, and corral's row-packed collator, to show why corral does not enable packing on CPU by
default (README, "Packing on CPU").
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BASE = REPO / "outputs/tiny-base"
DATA = REPO / "outputs/tiny-world/sft_train.jsonl"
COMMON = {"per_device_train_batch_size": "16", "learning_rate": "3e-4", "gradient_checkpointing": "false",
          "save_strategy": "no", "report_to": "none", "logging_steps": "10", "seed": "0"}


def flags(d: dict) -> list[str]:
    return [x for k, v in d.items() for x in (f"--{k}", v)]


def runs(tmp: Path, steps: int) -> dict[str, list[str]]:
    data_dir = tmp / "data"
    data_dir.mkdir()
    shutil.copy(DATA, data_dir / "train.jsonl")  # `trl sft --dataset_name DIR` loads every json file in DIR
    common = {**COMMON, "max_steps": str(steps)}
    corral = [str(BIN / "python"), str(REPO / "finetune/sft.py"), str(REPO / "recipes/tiny/sft/full.yaml"),
              "--model_name_or_path", str(BASE), "--datasets", f"[{{path: {DATA}}}]"]
    trl = [str(BIN / "trl"), "sft", "--model_name_or_path", str(BASE), "--dataset_name", str(data_dir),
           "--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--assistant_only_loss", "true"]
    return {
        "corral": corral + flags({**common, "max_length": "256", "output_dir": str(tmp / "c")}),
        "trl": trl + flags({**common, "max_length": "256", "output_dir": str(tmp / "t")}),
        "corral packed(rows) L=1024": corral + flags({**common, "max_length": "1024", "packing": "true",
                                                     "output_dir": str(tmp / "cp")}),
        "trl packed(bfd) L=1024": trl + flags({**common, "max_length": "1024", "packing": "true",
                                               "output_dir": str(tmp / "tp")}),
        "trl packed(wrapped) L=1024": trl + flags({**common, "max_length": "1024", "packing": "true",
                                                   "packing_strategy": "wrapped", "output_dir": str(tmp / "tw")}),
    }


def measure(cmd: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, cwd=REPO)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{out[-3000:]}")
    def last_log(key: str) -> dict:
        line = [ln for ln in out.splitlines() if f"'{key}'" in ln][-1]
        return ast.literal_eval(line[line.rindex("{", 0, line.index(f"'{key}'")):line.index("}", line.index(f"'{key}'")) + 1])

    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1))
    runtime, tokens = float(last_log("train_runtime")["train_runtime"]), float(last_log("num_tokens")["num_tokens"])
    packed = re.search(r"packed \d+ samples \((\d+) tokens\)", out)
    if packed:  # corral's row-packed batches: TRL's num_tokens counts one row per batch; count them all
        tokens = float(last_log("train_runtime")["epoch"]) * int(packed.group(1))
    return {"tokens_per_s": tokens / runtime, "runtime_s": runtime, "tokens": tokens, "peak_rss_mb": rss_kb / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--only", default="", help="comma-separated run names to keep, exactly as printed (default: all)")
    args = ap.parse_args()
    if not BASE.is_dir() or not DATA.is_file():
        print("error: run `make tiny-base` first (needs outputs/tiny-base and outputs/tiny-world)", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in runs(Path(tmp), args.steps).items():
            if args.only and name not in args.only.split(","):
                continue
            print(f"running {name} ...", flush=True)
            results[name] = measure(cmd)
    print(f"\n{'run':32s} {'tokens/s':>9s} {'runtime s':>10s} {'tokens':>8s} {'peak RSS MB':>12s}")
    for name, r in results.items():
        print(f"{name:32s} {r['tokens_per_s']:9.0f} {r['runtime_s']:10.1f} {r['tokens']:8.0f} {r['peak_rss_mb']:12.0f}")
    if "corral" in results and "trl" in results:
        c, t = results["corral"], results["trl"]
        print(f"\ncorral / trl: tokens/s x{c['tokens_per_s'] / t['tokens_per_s']:.2f}, "
              f"peak RSS x{c['peak_rss_mb'] / t['peak_rss_mb']:.2f}")
    for packed in ("trl packed(bfd) L=1024", "trl packed(wrapped) L=1024", "corral packed(rows) L=1024"):
        if packed in results and "trl" in results:
            print(f"{packed} / trl unpacked: tokens/s x{results[packed]['tokens_per_s'] / results['trl']['tokens_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
