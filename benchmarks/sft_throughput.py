"""corral SFT vs the stock `trl sft` CLI, thread-controlled: tokens/s, peak RSS and MFU, side by side in one run.

    make tiny-base && .venv/bin/python benchmarks/sft_throughput.py [--steps 40] [--threads 1,2] [--only ...]

Same model (outputs/tiny-base), same data (outputs/tiny-world/sft_train.jsonl), same batch size,
max_length, learning rate, fp32, no gradient checkpointing, assistant-only loss; full fine-tuning and
LoRA (r 16, alpha 32, all linear layers; corral also trains the re-initialised chat-token rows).
Each run is a separate plain process (no `accelerate launch`) under `/usr/bin/time -v` (peak RSS),
with OMP_NUM_THREADS exported for both sides (torch reads it at start; corral's pick_threads takes an
exported value as the user's choice), so each comparison runs both sides at the same thread count.
Also run: corral with no thread setting (its own pick, corral/threads.py) and `trl sft` with none (its
launcher's default, accelerate's 1 thread without a config): each side as a user gets it; and each
side's best over the thread counts.

Throughput is TRL's own `num_tokens` (non-padding tokens seen) over `train_runtime`, both from the
final log line; for corral's row-packed run, whose batches TRL counts as one row each, the tokens are
the epochs trained times the packed tokens per epoch that finetune/sft.py logs.

MFU: model FLOPs (6 x matmul parameters x tokens, plus 12 x layers x hidden x mean sample length x
tokens for attention scores) per second of `train_runtime`, over the peak fp32 matmul FLOP/s measured
in this run at the same thread count (a 1024^3 torch.mm loop in its own process). LoRA runs are
counted with the same 6N model FLOPs (the frozen weights get no weight gradient, so their hardware
FLOPs are lower).

With --packing: also TRL with `--packing true --max_length 1024` (TRL's default BFD packing), TRL's
wrapped packing, and corral's row-packed collator, to show why corral does not enable packing on CPU
by default (docs, "Packing on CPU").
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from run_environment import environment, print_environment

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BASE = REPO / "outputs/tiny-base"
DATA = REPO / "outputs/tiny-world/sft_train.jsonl"
COMMON = {"per_device_train_batch_size": "16", "learning_rate": "3e-4", "gradient_checkpointing": "false",
          "save_strategy": "no", "report_to": "none", "logging_steps": "10", "seed": "0"}
LORA = {"use_peft": "true", "lora_r": "16", "lora_alpha": "32", "lora_dropout": "0.0"}
PEAK = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3): torch.mm(a, b)
best = 0.0
for _ in range(5):
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 0.4:
        torch.mm(a, b); n += 1
    best = max(best, 2 * 1024 ** 3 * n / (time.perf_counter() - start))
print(best)
"""


def flags(d: dict) -> list[str]:
    return [x for k, v in d.items() for x in (f"--{k}", v)]


def runs(tmp: Path, steps: int, threads: list[int], packing: bool) -> dict[str, tuple[list[str], int | None]]:
    """run name -> (command, OMP_NUM_THREADS or None for the side's own default)."""
    data_dir = tmp / "data"
    data_dir.mkdir()
    shutil.copy(DATA, data_dir / "train.jsonl")  # `trl sft --dataset_name DIR` loads every json file in DIR
    common = {**COMMON, "max_steps": str(steps), "max_length": "256"}
    corral = [str(BIN / "python"), str(REPO / "finetune/sft.py"), str(REPO / "recipes/tiny/sft/full.yaml"),
              "--model_name_or_path", str(BASE), "--datasets", f"[{{path: {DATA}}}]"]
    trl = [str(BIN / "trl"), "sft", "--model_name_or_path", str(BASE), "--dataset_name", str(data_dir),
           "--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--assistant_only_loss", "true"]
    out = {}
    for mode, extra in (("full", {}), ("lora", LORA)):
        corral_cmd = corral + flags({**common, **extra})
        trl_cmd = trl + flags({**common, **extra}) + (["--lora_target_modules", "all-linear"] if extra else [])
        for n in threads:
            out[f"corral {mode} t{n}"] = (corral_cmd + ["--output_dir", str(tmp / f"c-{mode}-{n}")], n)
            out[f"trl {mode} t{n}"] = (trl_cmd + ["--output_dir", str(tmp / f"t-{mode}-{n}")], n)
        out[f"corral {mode} default"] = (corral_cmd + ["--output_dir", str(tmp / f"c-{mode}-d")], None)
        out[f"trl {mode} default"] = (trl_cmd + ["--output_dir", str(tmp / f"t-{mode}-d")], None)
    if packing:
        n = threads[0]
        packed = {**common, "max_length": "1024", "packing": "true"}
        out["corral packed(rows) L=1024"] = (corral + flags({**packed, "output_dir": str(tmp / "cp")}), n)
        out["trl packed(bfd) L=1024"] = (trl + flags({**packed, "output_dir": str(tmp / "tp")}), n)
        out["trl packed(wrapped) L=1024"] = (trl + flags({**packed, "packing_strategy": "wrapped",
                                                          "output_dir": str(tmp / "tw")}), n)
    return out


def child_env(threads: int | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def measure(cmd: list[str], threads: int | None) -> dict:
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=child_env(threads), cwd=REPO)
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
    picked = re.search(r"torch CPU threads: (\d+)", out)
    return {"tokens_per_s": tokens / runtime, "runtime_s": runtime, "tokens": tokens, "peak_rss_mb": rss_kb / 1024,
            "threads": int(picked.group(1)) if picked else (threads or "launcher"), "omp_num_threads": threads}


def matmul_peak(threads: int) -> float:
    """Best fp32 1024^3 matmul FLOP/s on `threads` threads, in a fresh process."""
    out = subprocess.run([str(BIN / "python"), "-c", PEAK, str(threads)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def model_flops_per_token(mean_len: float) -> float:
    """6 x matmul parameters (every Linear, lm_head included) + attention scores (12 x layers x hidden x length)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(BASE)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6 * matmul + 12 * config.num_hidden_layers * config.hidden_size * mean_len


def mean_sample_length() -> float:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(BASE)
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    lengths = [len(tok.apply_chat_template(r["messages"], tokenize=True)) for r in rows[:200]]
    return min(256, sum(lengths) / len(lengths))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts each side runs at")
    ap.add_argument("--only", default="", help="comma-separated run names to keep, exactly as printed (default: all)")
    ap.add_argument("--packing", action="store_true", help="also the packing runs (at the first thread count)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    if not BASE.is_dir() or not DATA.is_file():
        print("error: run `make tiny-base` first (needs outputs/tiny-base and outputs/tiny-world)", file=sys.stderr)
        return 2
    threads = [int(t) for t in args.threads.split(",")]
    env = environment(threads=f"{args.threads} (OMP_NUM_THREADS per run; 'default' runs: each side's own)")
    print_environment(env)
    flops_per_token = model_flops_per_token(mean_sample_length())
    peaks = {n: matmul_peak(n) for n in threads}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cmd, n) in runs(Path(tmp), args.steps, threads, args.packing).items():
            if args.only and name not in args.only.split(","):
                continue
            print(f"running {name} ...", flush=True)
            results[name] = measure(cmd, n)
    peaks = {n: max(p, matmul_peak(n)) for n, p in peaks.items()}  # again after the runs: the larger of the two
    for r in results.values():
        if r["threads"] in peaks:
            r["mfu"] = r["tokens_per_s"] * flops_per_token / peaks[r["threads"]]

    print(f"\nmatmul peak (fp32, 1024^3): " + ", ".join(f"{n} thread(s) {p / 1e9:.1f} GFLOP/s" for n, p in peaks.items()))
    print(f"model FLOPs per token: {flops_per_token / 1e6:.1f} M (6N + attention)")
    print(f"\n{'run':30s} {'threads':>7s} {'tokens/s':>9s} {'runtime s':>10s} {'tokens':>8s} {'RSS MB':>7s} {'MFU':>6s}")
    for name, r in results.items():
        mfu = f"{100 * r['mfu']:5.1f}%" if "mfu" in r else "     -"
        print(f"{name:30s} {r['threads']!s:>7s} {r['tokens_per_s']:9.0f} {r['runtime_s']:10.1f} {r['tokens']:8.0f} "
              f"{r['peak_rss_mb']:7.0f} {mfu}")
    print("\ncorral / trl tokens/s (same data, batches and threads; > 1: corral faster)")
    for mode in ("full", "lora"):
        line = []
        for n in threads:
            c, t = results.get(f"corral {mode} t{n}"), results.get(f"trl {mode} t{n}")
            if c and t:
                line.append(f"{n} thread(s) x{c['tokens_per_s'] / t['tokens_per_s']:.2f}")
        best = {side: max((results[f"{side} {mode} t{n}"] for n in threads if f"{side} {mode} t{n}" in results),
                          key=lambda r: r["tokens_per_s"], default=None) for side in ("corral", "trl")}
        if best["corral"] and best["trl"]:
            line.append(f"each at its best (corral {best['corral']['threads']}, trl {best['trl']['threads']} threads) "
                        f"x{best['corral']['tokens_per_s'] / best['trl']['tokens_per_s']:.2f}")
        c, t = results.get(f"corral {mode} default"), results.get(f"trl {mode} default")
        if c and t:
            line.append(f"as launched by default (corral picks {c['threads']}, trl gets its launcher's) "
                        f"x{c['tokens_per_s'] / t['tokens_per_s']:.2f}")
        if line:
            print(f"  {mode}: " + "; ".join(line))
    for packed in ("trl packed(bfd) L=1024", "trl packed(wrapped) L=1024", "corral packed(rows) L=1024"):
        ref = f"trl full t{threads[0]}"
        if packed in results and ref in results:
            print(f"{packed} / {ref}: tokens/s x{results[packed]['tokens_per_s'] / results[ref]['tokens_per_s']:.2f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"environment": env, "matmul_peak_flops": peaks,
                                              "model_flops_per_token": flops_per_token, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
