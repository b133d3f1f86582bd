"""The tiny world's post-training pipeline as one command: base -> instruct -> safety-tuned, safety in every stage.

    python -m apps.pipeline            # = make pipeline; finished stages are skipped
    python -m apps.pipeline --dry-run  # print the stages and whether each would run
    python -m apps.pipeline --force dpo --jobs 1

Stages (each an ordinary command, printed as it starts; its log goes to <output>/pipeline.log):

    sft     SFT of the base with safety data mixed in         recipes/tiny/sft/safe_mix.yaml
    rm      reward model on helpfulness + safety pairs        recipes/tiny/reward/safe.yaml   (side by side with dpo)
    dpo     DPO with safety pairs                             recipes/tiny/dpo/safe.yaml
    grpo    GRPO: rule rewards + safety rule + the reward model  recipes/tiny/rl/grpo_safe.yaml   (the instruct tier)
    cai     constitutional/RLAIF data from the GRPO model     python -m finetune.constitutional
    safe    DPO on the AI-labelled pairs                      recipes/tiny/dpo/safe_constitutional.yaml  (the safety tier)
    report  every model side by side on the held-out-phrasing split, then the safety gate (evals/gates/pipeline.yaml)
    shipped the same models on the shipped suite (held-out topics), side by side with `report`
    report-b .. report-j  the same gate on held-out-phrasing splits B-J (other wordings, system prompts and
            turn positions; meant for reporting, settings are chosen on split A; E's author never read the
            training data generators, F-J's no file of the repository), so a regression in one wording
            family shows

A stage is skipped when its output holds `pipeline_stage.json` with the same key: a hash of its command,
its recipe, the files the recipe reads and the start model's manifest (run_manifest.json or
tiny_build.json). Change a recipe or a data file, or retrain a start model, and the stage and every
stage after it run again. Stages whose inputs are ready run side by side (`--jobs`, default 2), sharing
the cores through OMP_NUM_THREADS (corral's trainers take it as the user's choice). Each stage's wall time
and CPU seconds (user + system of the stage and its child processes: robust on a shared machine) are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from corral.threads import available_cores

VENV = Path(".venv/bin")
LAUNCH = [str(VENV / "accelerate"), "launch", "--config_file", "accelerate_configs/cpu.yaml"]
PY = str(VENV / "python")
MARKER = "pipeline_stage.json"
MANIFESTS = ("run_manifest.json", "tiny_build.json", "config.json")
SUITE = "tinyworld/suites/heldout_phrasing.jsonl"
SHIPPED_SUITE = "tinyworld/suites/tiny_world.jsonl"
GATE = "evals/gates/pipeline.yaml"
SUITE_B, SUITE_C = "tinyworld/suites/heldout_phrasing_b.jsonl", "tinyworld/suites/heldout_phrasing_c.jsonl"
SUITE_D, SUITE_E = "tinyworld/suites/heldout_phrasing_d.jsonl", "tinyworld/suites/heldout_phrasing_e.jsonl"
SUITE_F, SUITE_G = "tinyworld/suites/heldout_phrasing_f.jsonl", "tinyworld/suites/heldout_phrasing_g.jsonl"
SUITE_H, SUITE_I = "tinyworld/suites/heldout_phrasing_h.jsonl", "tinyworld/suites/heldout_phrasing_i.jsonl"
SUITE_J = "tinyworld/suites/heldout_phrasing_j.jsonl"
MODELS = {"sft": "outputs/tiny-sft-safe", "dpo": "outputs/tiny-dpo-safe", "grpo": "outputs/tiny-rl-grpo-safe",
          "safe": "outputs/tiny-safe"}


@dataclass(frozen=True)
class Stage:
    name: str
    command: tuple[str, ...]
    output: str
    after: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # files or model directories it reads, besides its recipe's
    may_fail: bool = False  # the gate: a failure is a result, not a broken pipeline
    start_over: tuple[str, ...] = ()  # added when an earlier finished run is in `output` (trainers resume otherwise)


def recipe_stage(name: str, script: str, recipe: str, after: tuple[str, ...] = ()) -> Stage:
    data = yaml.safe_load(Path(recipe).read_text(encoding="utf-8"))
    return Stage(name, (*LAUNCH, script, recipe), data["output_dir"], after, (recipe, *recipe_inputs(data)),
                 start_over=("--overwrite_output_dir", "true"))


def recipe_inputs(data: dict) -> list[str]:
    """Local files and model directories a recipe reads: its datasets, start model and reward model."""
    paths = [spec["path"] for key in ("datasets", "safety_datasets", "eval_datasets", "heldout_datasets")
             for spec in data.get(key) or []]
    return paths + [p for p in (data.get("model_name_or_path"), data.get("reward_model")) if p]


def stages() -> list[Stage]:
    cai_out = "outputs/tiny-constitutional"
    models = ("--model", "base=outputs/tiny-base", "--raw", "base",
              *[a for name, path in MODELS.items() for a in ("--model", f"{name}={path}")],
              "--baseline", "grpo", "--max-new-tokens", "32", "--batch-size", "64")
    checkpoints = ("outputs/tiny-base", *MODELS.values())

    def gate(name: str, suite: str, out: str) -> Stage:
        """Every model on `suite`, then the safety gate; a failed gate is a result, not a broken pipeline."""
        return Stage(name, (PY, "-m", "evals.gate", GATE, "--junit", f"{out}/gate.xml", "--", "--suite", suite,
                            *models, "--out", out), out, ("safe",), (GATE, suite, *checkpoints), may_fail=True)

    return [
        recipe_stage("sft", "finetune/sft.py", "recipes/tiny/sft/safe_mix.yaml"),
        recipe_stage("rm", "reward/train.py", "recipes/tiny/reward/safe.yaml", ("sft",)),
        recipe_stage("dpo", "finetune/dpo.py", "recipes/tiny/dpo/safe.yaml", ("sft",)),
        recipe_stage("grpo", "finetune/rl.py", "recipes/tiny/rl/grpo_safe.yaml", ("dpo", "rm")),
        Stage("cai", (PY, "-m", "finetune.constitutional", "--prompts", "outputs/tiny-world/rl_prompts_safety.jsonl",
                      "--model", MODELS["grpo"], "--judge", MODELS["grpo"], "--critic", "rules", "--labels", "rules",
                      "--principles", "finetune/constitutions/harmless.yaml", "--samples", "4",
                      "--max-new-tokens", "32", "--batch-size", "64", "--out", cai_out),
              cai_out, ("grpo",), ("outputs/tiny-world/rl_prompts_safety.jsonl", "finetune/constitutions/harmless.yaml",
                                   MODELS["grpo"])),
        recipe_stage("safe", "finetune/dpo.py", "recipes/tiny/dpo/safe_constitutional.yaml", ("cai",)),
        gate("report", SUITE, "reports/pipeline"),
        Stage("shipped", (PY, "-m", "evals.compare", "--suite", SHIPPED_SUITE, *models, "--out",
                          "reports/pipeline-shipped"), "reports/pipeline-shipped", ("safe",), (SHIPPED_SUITE, *checkpoints)),
        gate("report-b", SUITE_B, "reports/pipeline-b"),
        gate("report-c", SUITE_C, "reports/pipeline-c"),
        gate("report-d", SUITE_D, "reports/pipeline-d"),
        gate("report-e", SUITE_E, "reports/pipeline-e"),
        gate("report-f", SUITE_F, "reports/pipeline-f"),
        gate("report-g", SUITE_G, "reports/pipeline-g"),
        gate("report-h", SUITE_H, "reports/pipeline-h"),
        gate("report-i", SUITE_I, "reports/pipeline-i"),
        gate("report-j", SUITE_J, "reports/pipeline-j"),
    ]


def stage_key(stage: Stage) -> str:
    """Hash of the command and of every input's content (a model directory: its manifest)."""
    h = hashlib.sha256(json.dumps(stage.command).encode())
    for path in map(Path, stage.inputs):
        if path.is_dir():
            path = next((path / m for m in MANIFESTS if (path / m).is_file()), path / MANIFESTS[0])
        h.update(str(path).encode() + b"\0" + (path.read_bytes() if path.is_file() else b"<missing>"))
    return h.hexdigest()[:16]


def is_done(stage: Stage, key: str) -> bool:
    marker = Path(stage.output) / MARKER
    return marker.is_file() and json.loads(marker.read_text()).get("key") == key


def stage_threads(cores: int, jobs: int, side_by_side: int) -> int | None:
    """OMP_NUM_THREADS for a stage: the cores shared among the stages that will run side by side (corral's
    trainers pick all cores, and two stages with 2 threads each on 2 cores wait for each other:
    corral/threads.py), or None when the user exported OMP_NUM_THREADS (it then reaches every stage)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return None
    return max(1, cores // max(1, min(jobs, side_by_side)))


def run(selected: list[Stage], jobs: int, force: set[str], dry_run: bool) -> int:
    done: dict[str, float | None] = {}  # name -> seconds (None: skipped)
    cpu: dict[str, float] = {}  # name -> CPU seconds of the stage's process tree
    running: dict[str, tuple[subprocess.Popen, float, Stage, str]] = {}  # + the stage key at launch
    failed, start = [], time.time()
    while len(done) + len(failed) < len(selected) and not (failed and not running):
        ready = [s for s in selected if s.name not in done and s.name not in running and all(d in done for d in s.after)]
        for stage in selected:
            if stage.name in done or stage.name in running or len(running) >= jobs or failed:
                continue
            if not all(dep in done for dep in stage.after):
                continue
            key = stage_key(stage)
            if stage.name not in force and is_done(stage, key):
                print(f"[{stage.name}] up to date, skipped ({stage.output}/{MARKER})", flush=True)
                done[stage.name] = None
                continue
            # A finished earlier run (its marker is there) left checkpoints of other inputs: a trainer would resume
            # from them. Without a marker the stage was killed midway, and resuming is what it should do.
            command = stage.command + (stage.start_over if (Path(stage.output) / MARKER).is_file() else ())
            threads = stage_threads(available_cores(), jobs, len(running) + len(ready))
            shown = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} exported" if threads is None else \
                f"OMP_NUM_THREADS={threads}"
            print(f"[{stage.name}] $ {' '.join(command)}   ({shown})", flush=True)
            if dry_run:
                done[stage.name] = 0.0
                continue
            Path(stage.output).mkdir(parents=True, exist_ok=True)
            log = open(Path(stage.output) / "pipeline.log", "w")
            env = os.environ if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            running[stage.name] = (proc, time.time(), stage, key)  # key: the inputs as they were at the start
        for name, (proc, t0, stage, key) in list(running.items()):
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # wait4: this child's own rusage, not all children's
            if pid == 0:
                continue
            del running[name]
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds, cpu[name] = time.time() - t0, usage.ru_utime + usage.ru_stime
            log = Path(stage.output) / "pipeline.log"
            if proc.returncode and not stage.may_fail:
                print(f"[{name}] FAILED (exit {proc.returncode}) after {seconds:.0f} s; last lines of {log}:", flush=True)
                print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:]), flush=True)
                failed.append(name)
                continue
            status = f"exit {proc.returncode}, see {log}" if proc.returncode else "done"
            print(f"[{name}] {status} in {seconds:.0f} s ({cpu[name]:.0f} CPU s)", flush=True)
            (Path(stage.output) / MARKER).write_text(json.dumps({"key": key, "seconds": round(seconds, 1),
                                                                 "cpu_seconds": round(cpu[name], 1)}))
            done[name] = seconds
        time.sleep(0 if dry_run else 0.5)
    width = max(7, *(len(stage.name) for stage in selected))
    print(f"\n{'stage':<{width}} wall time   CPU s")
    for stage in selected:
        s = done.get(stage.name, "not run")
        shown = 'FAILED' if stage.name in failed else 'skipped' if s is None else s if s == 'not run' else f'{s:.0f} s'
        print(f"{stage.name:<{width}} {shown:<11} {f'{cpu[stage.name]:.0f}' if stage.name in cpu else '-'}")
    print(f"{'total':<{width}} {f'{time.time() - start:.0f} s':<11} {sum(cpu.values()):.0f} (jobs={jobs})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="stages run side by side when their inputs are ready (default: 2)")
    p.add_argument("--force", nargs="*", default=[], metavar="STAGE", help="rerun these stages even if up to date")
    p.add_argument("--only", nargs="*", metavar="STAGE", help="run only these stages (their inputs must exist)")
    p.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    args = p.parse_args(argv)
    all_stages = stages()
    names = [s.name for s in all_stages]
    unknown = [n for n in (args.force or []) + (args.only or []) if n not in names]
    if unknown or args.jobs < 1:
        print(f"error: unknown stage {unknown[0]!r} (stages: {', '.join(names)})" if unknown else
              "error: --jobs must be >= 1", file=sys.stderr)
        return 2
    selected = [s for s in all_stages if not args.only or s.name in args.only]
    if args.only:  # dependencies outside the selection count as done
        selected = [Stage(s.name, s.command, s.output, tuple(d for d in s.after if d in args.only), s.inputs,
                          s.may_fail) for s in selected]
    return run(selected, args.jobs, set(args.force), args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
