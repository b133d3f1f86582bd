"""Bad inputs under the real launchers: exit code, `error:` lines, traceback or not, stderr lines.

    python benchmarks/bad_inputs.py --root /tmp/tiny            # builds the small tiny world there if missing
    python benchmarks/bad_inputs.py --root /tmp/tiny --only lora_r_negative,output_is_file
    python benchmarks/bad_inputs.py --launchers corral-1,accelerate-1

Each training-script input runs under each launcher column:
  accelerate-1  accelerate launch --config_file accelerate_configs/cpu.yaml          (stock: for comparison)
  accelerate-1q accelerate launch -q --config_file accelerate_configs/cpu.yaml     (-q: one process only)
  accelerate-2  accelerate launch --config_file accelerate_configs/cpu_ddp_2proc.yaml
  corral-1      python -m corral.launch --config_file accelerate_configs/cpu.yaml
  corral-2      python -m corral.launch --config_file accelerate_configs/cpu_ddp_2proc.yaml
  corral-fsdp2  python -m corral.launch --config_file accelerate_configs/fsdp2.yaml (8 processes; on a CPU
                accelerate runs them as plain data parallelism)
The other entry points (data_prep, evals.compare, inspect, launch_checks) run as plain `python -m`.
A cell reads `exit/error-lines/T` (T: a traceback was printed), e.g. `2/1/-` is the goal: exit code 2,
one `error:` line, no traceback. Runs are sequential with OMP_NUM_THREADS=1 per process (printed); the
machine may be shared, so the wall times are indications only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
LAUNCHERS = {
    "accelerate-1": [str(Path(PY).parent / "accelerate"), "launch", "--config_file", "accelerate_configs/cpu.yaml"],
    "accelerate-2": [str(Path(PY).parent / "accelerate"), "launch", "--config_file",
                     "accelerate_configs/cpu_ddp_2proc.yaml"],
    "accelerate-1q": [str(Path(PY).parent / "accelerate"), "launch", "-q", "--config_file", "accelerate_configs/cpu.yaml"],
    "corral-1": [PY, "-m", "corral.launch", "--config_file", "accelerate_configs/cpu.yaml"],
    "corral-2": [PY, "-m", "corral.launch", "--config_file", "accelerate_configs/cpu_ddp_2proc.yaml"],
    "corral-fsdp2": [PY, "-m", "corral.launch", "--config_file", "accelerate_configs/fsdp2.yaml"],  # 8 processes
}
TOKEN = "hf_BenchmarkPlantedToken0123456789ab"


def read_only_folder(scratch: Path) -> Path:
    """A folder on a read-only filesystem (a tmpfs mounted ro, as root), else one without write permission."""
    folder = scratch / "read-only"
    folder.mkdir(exist_ok=True)
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                            capture_output=True).returncode == 0:
        return folder
    folder.chmod(0o555)
    return folder


def cases(root: Path, scratch: Path, ro: Path) -> dict[str, list[str]]:
    """name -> script and arguments; every one a user mistake."""
    base, world = root / "tiny-base", root / "tiny-world"
    sft = ["finetune/sft.py", "recipes/tiny/sft/lora.yaml", "--model_name_or_path", str(base),
           "--datasets", f"[{{path: {world / 'sft_train.jsonl'}}}]", "--output_dir", str(scratch / "run")]
    dpo = ["finetune/dpo.py", "recipes/tiny/dpo/lora.yaml", "--model_name_or_path", str(base), "--datasets",
           f"[{{path: {world / 'pref_train.jsonl'}}}]", "--eval_datasets", "[]", "--output_dir", str(scratch / "dpo")]
    rm = ["reward/train.py", "recipes/tiny/reward/lora.yaml", "--model_name_or_path", str(base), "--datasets",
          f"[{{path: {world / 'pref_train.jsonl'}}}]", "--eval_datasets", "[]", "--output_dir", str(scratch / "rm")]

    def recipe(name: str, text: str | bytes) -> str:
        path = scratch / f"{name}.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def data(name: str, lines: list[str | bytes]) -> str:
        path = scratch / f"{name}.jsonl"
        path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
        return str(path)

    good = json.dumps({"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]})
    lora = (REPO / "recipes/tiny/sft/lora.yaml").read_text()
    latin1_row = '{"text": "caf\u00e9"}'.encode("latin-1")  # not UTF-8
    file_out = scratch / "a-file"
    file_out.write_text("not a folder")
    return {
        # recipe keys and values
        "unknown_key": sft[:1] + [recipe("typo", lora.replace("learning_rate:", "learning_rat:"))] + sft[2:],
        "wrong_type": sft + ["--num_train_epochs", "three"],
        "unknown_cli_option": sft + ["--lora_rr", "8"],
        "duplicate_key": sft[:1] + [recipe("dup", lora + "\nlearning_rate: 1.0\n")] + sft[2:],
        "yaml_syntax": sft[:1] + [recipe("syntax", "learning_rate: [1\n")] + sft[2:],
        "recipe_not_utf8": sft[:1] + [recipe("latin1", b"learning_rate: 1e-3\n# caf\xe9\n")] + sft[2:],
        "recipe_missing": ["finetune/sft.py", "recipes/tiny/sft/loar.yaml"],
        "unknown_nested_key": sft + ["--datasets", f"[{{path: {world / 'sft_train.jsonl'}, wieght: 2}}]"],
        "huge_number": sft + ["--max_steps", "9" * 40],
        # model and adapter settings
        "model_missing": sft + ["--model_name_or_path", str(scratch / "no-model")],
        "lora_r_negative": sft + ["--lora_r", "-1"],
        "lora_target_typo": sft + ["--lora_target_modules", "q_proj", "vproj"],
        "lora_target_single_name": sft + ["--lora_target_modules", "q_proj"],
        "lora_dropout_2": sft + ["--lora_dropout", "2.0"],
        "trust_remote_code": sft + ["--trust_remote_code", "true"],
        # output location
        "output_is_file": sft + ["--output_dir", str(file_out)],
        "output_under_proc": sft + ["--output_dir", "/proc/corral-run"],
        "output_read_only": sft + ["--output_dir", str(ro / "run")],
        # data
        "data_missing": sft + ["--datasets", f"[{{path: {scratch / 'nope.jsonl'}}}]"],
        "data_bad_row": sft + ["--datasets", f"[{{path: {data('bad_row', [good, json.dumps({'messages': 'hi'})])}}}]"],
        "data_not_utf8": sft + ["--datasets", f"[{{path: {data('latin1', [good, latin1_row])}}}]"],
        "data_empty": sft + ["--datasets", f"[{{path: {data('empty', [])}}}]"],
        # other trainers
        "dpo_lora_r_zero": dpo + ["--lora_r", "0"],
        "dpo_bad_beta": dpo + ["--beta", "fast"],
        "reward_target_typo": rm + ["--lora_target_modules", "score", "q_prj"],
        # a secret on the command line of a failing run: must not be echoed
        "token_in_failing_run": sft + ["--hub_token", TOKEN, "--lora_r", "-1"],
    }


def plain_cases(root: Path, scratch: Path) -> dict[str, list[str]]:
    """User mistakes of the entry points that are not launched with accelerate."""
    return {
        "data_prep_missing_input": [PY, "-m", "data_prep", "convert", str(scratch / "nope.jsonl"), "--out",
                                    str(scratch / "o.jsonl")],
        "data_prep_bad_row": [PY, "-m", "data_prep", "convert", str(scratch / "bad_row.jsonl"), "--out",
                              str(scratch / "o.jsonl"), "--kind", "sft"],
        "evals_compare_missing_suite": [PY, "-m", "evals.compare", "--suite", str(scratch / "nope.jsonl"), "--out",
                                        str(scratch / "cmp"), "--model", f"a={root / 'tiny-base'}"],
        "inspect_typo": [PY, "-m", "finetune.inspect_recipe", "recipes/tiny/sft/lora.yaml", "--lerning_rate", "1"],
        "launch_checks_bad_config": [PY, "-m", "corral.launch_checks", str(scratch / "typo.yaml")],
    }


def run(command: list[str], env: dict) -> dict:
    start = time.time()
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, errors="replace",
                              timeout=600)
    except subprocess.TimeoutExpired:  # the input was accepted and the run trains: not caught as a mistake
        return {"exit": "timeout", "error_lines": 0, "traceback": False, "stderr_lines": 0,
                "line": "still running after 600 s (accepted as valid)", "token_leaked": False, "seconds": 600}
    err = proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    return {"exit": proc.returncode, "error_lines": len(errors), "traceback": "Traceback" in err,
            "stderr_lines": len(lines), "line": errors[0] if errors else (lines[-1] if lines else ""),
            "token_leaked": TOKEN in err, "seconds": round(time.time() - start, 1)}


def cell(r: dict) -> str:
    return f"{r['exit']}/{r['error_lines']}/{'T' if r['traceback'] else '-'}{' LEAK' if r['token_leaked'] else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "corral-bad-inputs-tiny",
                        help="holds tiny-base/ and tiny-world/ (the small tiny world is built there if missing)")
    parser.add_argument("--launchers", default="accelerate-1,corral-1,corral-2",
                        help=f"comma-separated columns out of {', '.join(LAUNCHERS)}")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not (args.root / "tiny-base" / "config.json").is_file():
        from tinyworld.build import TinyBuild, build_tiny

        build_tiny(args.root, TinyBuild.small())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    print(f"OMP_NUM_THREADS=1 per process; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          "(shared machine: seconds are indications)", flush=True)
    launchers = [name for name in args.launchers.split(",") if name]
    only = {name for name in args.only.split(",") if name}
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="corral-bad-inputs-") as tmp:
        scratch = Path(tmp)
        ro = read_only_folder(scratch)
        try:
            for name, command in cases(args.root, scratch, ro).items():
                if only and name not in only:
                    continue
                results[name] = {launcher: run(LAUNCHERS[launcher] + command, env) for launcher in launchers}
                print(f"{name:28s} " + "  ".join(f"{launcher} {cell(r):8s}" for launcher, r in results[name].items())
                      + f"  {results[name][launchers[-1]]['line'][:110]}", flush=True)
                if args.json:  # after every case: a long benchmark keeps what it measured
                    args.json.write_text(json.dumps(results, indent=1))
            for name, command in plain_cases(args.root, scratch).items():
                if only and name not in only:
                    continue
                results[name] = {"python": run(command, env)}
                print(f"{name:28s} python {cell(results[name]['python']):8s}  "
                      f"{results[name]['python']['line'][:110]}", flush=True)
        finally:
            subprocess.run(["umount", str(ro)], capture_output=True)
    print()
    print(table(results, launchers))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def table(results: dict, launchers: list[str]) -> str:
    """Markdown: one row per input, one `exit/error-lines/T` column per launcher, and the error line."""
    columns = launchers + ["python"]
    used = [c for c in columns if any(c in row for row in results.values())]
    rows = ["| input | " + " | ".join(used) + " | corral's line (last launcher) |",
            "|---|" + "---|" * (len(used) + 1)]
    for name, by_launcher in results.items():
        last = list(by_launcher.values())[-1]
        cells = [cell(by_launcher[c]) if c in by_launcher else "" for c in used]
        line = last["line"].replace("|", "\\|")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {line[:140]}{'...' if len(line) > 140 else ''} |")
    ok = sum(1 for row in results.values() for c, r in row.items() if not c.startswith("accelerate")
             and r["exit"] == 2 and r["error_lines"] == 1 and not r["traceback"] and not r["token_leaked"])
    total = sum(1 for row in results.values() for c in row if not c.startswith("accelerate"))
    return "\n".join(rows) + f"\n\n{ok} of {total} corral/python runs: exit 2, one error line, no traceback, no token"


if __name__ == "__main__":
    sys.exit(main())
