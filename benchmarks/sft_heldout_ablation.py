"""Which SFT options make a base Llama answer held-out questions in the Llama 3 chat format?

    make tiny-base && .venv/bin/python benchmarks/sft_heldout_ablation.py [--seeds 0,1]

Trains `recipes/tiny/sft/{full,lora}.yaml` on the tiny base with the chat-token options varied
(`special_token_init`, `freeze_embeddings`), then compares every model on the 60 held-out capitals
with `python -m evals.compare` (greedy, official template). Prints accuracy per variant and seed;
the table in docs/results-tiny-world.md comes from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {
    "full/none": ("full.yaml", ["--special_token_init", "none", "--freeze_embeddings", "false"]),
    "full/mean": ("full.yaml", ["--special_token_init", "mean", "--freeze_embeddings", "false"]),
    "full/related": ("full.yaml", ["--special_token_init", "related", "--freeze_embeddings", "false"]),
    "full/related+freeze (default)": ("full.yaml", []),
    "lora/none": ("lora.yaml", ["--special_token_init", "none"]),
    "lora/related+token rows (default)": ("lora.yaml", []),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--only", default="", help="comma-separated variant names")
    ap.add_argument("--out", default="outputs/ablation")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    models, seconds = {}, {}
    for seed in args.seeds.split(","):
        for name, (recipe, extra) in VARIANTS.items():
            if args.only and name not in args.only.split(","):
                continue
            tag = f"{name.split(' ')[0].replace('/', '-').replace('+', '-')}-s{seed}"
            out = Path(args.out) / tag
            start = time.time()
            subprocess.run([sys.executable, "finetune/sft.py", f"recipes/tiny/sft/{recipe}", "--output_dir", str(out),
                            "--seed", seed, "--save_strategy", "no", *extra], cwd=REPO, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds[tag] = time.time() - start
            models[tag] = (name, seed, out)
    report = Path(args.out) / "report"
    cmd = [sys.executable, "-m", "evals.compare", "--suite", "outputs/tiny-world/heldout_capitals.jsonl",
           "--raw", "base", "--base-format", "both", "--model", "base=outputs/tiny-base", "--out", str(report)]
    for tag, (_, _, out) in models.items():
        cmd += ["--model", f"{tag}={out}"]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((report / "results.json").read_text())["models"]
    print(f"{'variant':38s} {'seed':>4s} {'held-out acc':>12s} {'eos rate':>9s} {'train s':>8s}")
    for col in ("base[raw]", "base[chat]"):
        print(f"{col:38s} {'':>4s} {results[col]['task_accuracy']:12.1%} {results[col]['eos_rate']:9.1%}")
    for tag, (name, seed, _) in models.items():
        r = results[tag]
        print(f"{name:38s} {seed:>4s} {r['task_accuracy']:12.1%} {r['eos_rate']:9.1%} {seconds[tag]:8.0f}")
    print(f"\nreport: {report / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
