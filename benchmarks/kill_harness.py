"""Fault injection: SIGKILL corral's SFT and DPO runs at random moments, relaunch, check nothing is lost.

    python benchmarks/kill_harness.py                                  # SFT and DPO, 20 kills each, seed 0
    python benchmarks/kill_harness.py --trainer dpo --kills 30 --seed 1 --json reports/kills_dpo.json
    python benchmarks/kill_harness.py --trainer sft --kills 1 --windows rotate --steps 6   # one kill in rotation
    python benchmarks/kill_harness.py --trainer sft --kills 4 --windows written --stock_rotation  # must fail

Per trainer: one uninterrupted reference run (fp32 CPU, fixed seed, every checkpoint kept), then a
chain of runs of the same command into one `output_dir` with `save_total_limit: 1`, each killed with
SIGKILL inside a chosen window and relaunched unchanged (corral resumes by default):

- `step`: during a training step; `write`: while the Trainer writes `checkpoint-N` (before corral
  marks it); `written`: written but not yet marked; `marked`: marked, the older checkpoint not yet
  deleted; `rotate`/`deleting`: before and during the deletion of the older checkpoint; `final`:
  during the final atomic save into `output_dir`.

The windows after the Trainer's write are widened by `CORRAL_FAULT_SLEEP_IN_SAVE` and found through
`CORRAL_FAULT_TRACE` (corral/checkpoints.py); the kill lands at a random moment inside. Where it
landed is read back from the trace and the directory (`landed`). After each kill: every checkpoint
marked complete must load and hold exactly the reference run's weights at that step (bitwise); the
progress lost (steps finished before the kill minus the step resumed from) must not exceed one save
interval. After the last kill the run finishes: its weights must equal the reference's bitwise, its
manifest must say `finished` with every killed attempt recorded `interrupted`, its `train_loss` must
match the reference's, and no leftovers may remain. Exit code 1 if any check fails.

Runs are forked from this process after the heavy imports (each is a real process, killed for real),
so a relaunch costs the run, not a Python start-up. Threads: 1 per run (printed).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: forked children must not inherit a pool
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from safetensors import safe_open  # noqa: E402

from corral.checkpoints import COMPLETE_MARKER, FAULT_SLEEP_ENV, FAULT_TRACE_ENV, complete_checkpoints  # noqa: E402
from corral.recipe import run_cli  # noqa: E402

WINDOWS = ("step", "write", "written", "marked", "rotate", "deleting", "final")
SAVE_WINDOWS = ("written", "marked", "rotate", "deleting", "final")  # widened by the sleep hook
SLEEP = 0.4  # seconds the hook holds each save-side window open


def trainer_argv(trainer: str, tiny: Path, out: Path, steps: int, save_steps: int, keep: int) -> list[str]:
    common = ["--output_dir", str(out), "--max_steps", str(steps), "--save_strategy", "steps",
              "--save_steps", str(save_steps), "--save_total_limit", str(keep), "--logging_steps", "5",
              "--per_device_train_batch_size", "8", "--num_threads", "1", "--seed", "0", "--dtype", "float32",
              "--use_cpu", "true", "--report_to", "none", "--model_name_or_path", str(tiny / "tiny-base")]
    if trainer == "sft":
        return [str(REPO / "recipes/tiny/sft/full.yaml"), *common,
                "--datasets", f"[{{path: {tiny / 'tiny-world/sft_train.jsonl'}}}]", "--max_length", "128"]
    return [str(REPO / "recipes/tiny/dpo/full.yaml"), *common, "--loss_type", "sigmoid",
            "--datasets", f"[{{path: {tiny / 'tiny-world/pref_train.jsonl'}}}]", "--eval_datasets", "[]",
            "--max_length", "64", "--learning_rate", "1e-4"]


def entry_point(trainer: str):
    if trainer == "sft":
        from finetune.sft import main
    else:
        from finetune.dpo import main
    return main


def fork_run(main, argv: list[str], log: Path, env: dict[str, str]) -> int:
    """Start `main(argv)` in a forked child with its output in `log`; return the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.update(env)
        try:
            run_cli(main, argv)
            code = 0
        except SystemExit as err:
            code = err.code if isinstance(err.code, int) else 1
        except BaseException:
            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def read_trace(path: Path) -> list[tuple[str, int, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((parts[0], int(parts[1]), float(parts[2])))
    return out


def weights(path: Path) -> dict[str, bytes]:
    """Every tensor of a safetensors file as raw bytes (bitwise comparison)."""
    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k).tobytes() for k in f.keys()}


def checkpoint_problem(ckpt: Path, reference: Path) -> str | None:
    """Why a checkpoint marked complete cannot be resumed from as the reference run's same step, or None."""
    import torch

    step = int(ckpt.name.split("-")[1])
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        if state["global_step"] != step:
            return f"trainer_state.json says step {state['global_step']}"
        for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
            torch.load(ckpt / name, map_location="cpu", weights_only=False)
        got, want = weights(ckpt / "model.safetensors"), weights(reference / f"checkpoint-{step}/model.safetensors")
    except Exception as err:  # noqa: BLE001 - any failure to load is what is counted
        return f"does not load: {type(err).__name__}: {err}"
    if got.keys() != want.keys() or any(got[k] != want[k] for k in want):
        return "weights differ from the uninterrupted run's at the same step"
    return None


def write_span(ckpt: Path) -> float:
    """Seconds the Trainer spent writing a checkpoint: first to last file written (mtimes), the marker aside."""
    times = [p.stat().st_mtime for p in ckpt.iterdir() if p.name != COMPLETE_MARKER]
    return max(times) - min(times)


def newest_complete_step(out: Path) -> int:
    done = complete_checkpoints(out)
    return int(done[-1].name.split("-")[1]) if done else 0


def landed(out: Path, trace: list[tuple[str, int, float]]) -> str:
    """Where a kill landed: step, checkpoint write, rotation, final save or after the end (trace, directory)."""
    last = trace[-1][0] if trace else "start"
    manifest = out / "run_manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("status") == "finished":
        return "after the end"  # the run had finished: no interruption to record
    names = [p.name for p in out.iterdir()] if out.is_dir() else []
    unmarked = any(n.startswith("checkpoint-") and (out / n).is_dir() and not (out / n / COMPLETE_MARKER).exists()
                   for n in names)
    if last in ("final_save", "final_move") or any(n.startswith(".saving-") for n in names):
        return "final save"
    if last in ("marked", "rotate", "deleting") or any(n.startswith(".deleting-") for n in names):
        return "rotation"
    if unmarked or last == "written":
        return "checkpoint write"
    return "step"


@dataclass
class Result:
    trainer: str
    kills: int = 0
    landed: dict = field(default_factory=dict)
    complete_checkpoints_checked: int = 0
    corrupt_complete_checkpoints: int = 0
    lost_steps_max: int = 0
    lost_steps_total: int = 0
    kills_losing_more_than_one_interval: int = 0
    save_interval: int = 0
    final_weights_equal: bool = False
    train_loss: float | None = None
    reference_train_loss: float | None = None
    interrupted_in_manifest: int = 0
    leftovers: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in sorted(self.landed.items()))
        return (f"{self.trainer}: kills {self.kills} ({where}) | complete checkpoints checked "
                f"{self.complete_checkpoints_checked}, corrupt {self.corrupt_complete_checkpoints} | lost steps max "
                f"{self.lost_steps_max} (save interval {self.save_interval}), total {self.lost_steps_total}, kills losing "
                f"more than one interval {self.kills_losing_more_than_one_interval} | final weights equal "
                f"(bitwise): {self.final_weights_equal} | train_loss {self.train_loss} vs uninterrupted "
                f"{self.reference_train_loss} | interrupted attempts in manifest {self.interrupted_in_manifest} | "
                f"leftovers {len(self.leftovers)} | {self.seconds:.0f} s")


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_to_end(main, argv, log: Path, env: dict[str, str]) -> None:
    code = wait(fork_run(main, argv, log, env))
    if code != 0:
        raise RuntimeError(f"run failed with exit code {code}; log {log}:\n" + log.read_text()[-3000:])


def plan_target(window: str, resumed: int, steps: int, save_steps: int, rng: random.Random) -> int:
    """The step whose window the next kill aims at, ahead of the step the attempt resumes from."""
    if window == "final":
        return steps
    if window == "step":
        return rng.randint(resumed + 1, min(resumed + 2 * save_steps, steps))
    first = resumed + save_steps
    if window in ("rotate", "deleting") and resumed == 0:
        first = 2 * save_steps  # a run from step 0 has nothing to rotate at its first save
    return min(first + save_steps * rng.choice((0, 0, 1)), steps)


def reached(window: str, target: int, trigger, events: list[tuple[str, int, float]], out: Path) -> bool:
    """Has the attempt entered the window its kill aims at?"""
    if window == "write":  # the Trainer's own write: from the moment checkpoint-<target>/ appears
        return (out / f"checkpoint-{target}").is_dir()
    if window in ("rotate", "deleting"):  # the deletion that follows marking checkpoint-<target>
        marked = [i for i, (n, s, _) in enumerate(events) if n == "marked" and s == target]
        return bool(marked) and any(n == window for n, _, _ in events[marked[0]:])
    return any(n == trigger[0] and (trigger[1] is None or s == trigger[1]) for n, s, _ in events)


def attack(trainer: str, tiny: Path, work: Path, kills: int, windows: tuple[str, ...], steps: int | None,
           save_steps: int, seed: int) -> Result:
    rng = random.Random(seed)
    main = entry_point(trainer)
    base = work / trainer
    shutil.rmtree(base, ignore_errors=True)
    (base / "logs").mkdir(parents=True)
    training_windows = [w for w in windows if w != "final"]
    n_final = (max(1, kills // 7) if training_windows else kills) if "final" in windows else 0
    if steps is None:
        steps = save_steps * (kills - n_final + 3)
    result = Result(trainer, save_interval=save_steps)
    start = time.time()

    ref, ref_trace = base / "reference", base / "reference.trace"
    run_to_end(main, trainer_argv(trainer, tiny, ref, steps, save_steps, 1000), base / "logs/reference.log",
               {FAULT_TRACE_ENV: str(ref_trace)})
    trace = read_trace(ref_trace)
    t = {(n, s): ts for n, s, ts in trace}
    step_time = statistics.median(t[("step_end", s)] - t[("step", s)] for s in range(1, steps + 1))
    write_time = statistics.median(write_span(ref / f"checkpoint-{s}") for s in range(save_steps, steps + 1, save_steps))
    result.reference_train_loss = json.loads((ref / "run_manifest.json").read_text())["metrics"]["train_loss"]

    out = base / "killed"
    argv = trainer_argv(trainer, tiny, out, steps, save_steps, 1)
    schedule = [training_windows[i % len(training_windows)] for i in range(kills - n_final)] if training_windows else []
    rng.shuffle(schedule)
    schedule += ["final"] * n_final
    checked: set[int] = set()
    for attempt, window in enumerate(schedule):
        resumed = newest_complete_step(out)
        if resumed >= steps and window != "final":
            window = "final"
        target = plan_target(window, resumed, steps, save_steps, rng)
        trace_path = base / f"logs/attempt-{attempt}.trace"
        env = {FAULT_TRACE_ENV: str(trace_path)}
        if window in SAVE_WINDOWS:
            env[FAULT_SLEEP_ENV] = str(SLEEP)
        trigger = {"step": ("step", target), "written": ("written", target),
                   "marked": ("marked", target), "final": (rng.choice(("final_save", "final_move")), None)}.get(window)
        delay = {"step": rng.uniform(0, step_time), "write": rng.uniform(0, write_time)}.get(
            window, rng.uniform(0.02, SLEEP - 0.05))
        log = base / f"logs/attempt-{attempt}.log"
        pid = fork_run(main, argv, log, env)
        fired, deadline = None, time.time() + 900
        while fired is None and time.time() < deadline:
            done_pid, status = os.waitpid(pid, os.WNOHANG)
            if done_pid:
                raise RuntimeError(f"attempt {attempt} ({window} @ {target}) ended before its kill "
                                   f"(exit {os.waitstatus_to_exitcode(status)}); log {log}:\n" + log.read_text()[-3000:])
            if reached(window, target, trigger, read_trace(trace_path), out):
                fired = window
            else:
                time.sleep(0.005)
        if fired is None:
            os.kill(pid, signal.SIGKILL)
            wait(pid)
            raise RuntimeError(f"attempt {attempt}: window {window} @ {target} never reached; log {log}")
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        wait(pid)
        result.kills += 1
        events = read_trace(trace_path)
        where = landed(out, events)
        result.landed[where] = result.landed.get(where, 0) + 1
        finished = max([s for n, s, _ in events if n == "step_end"] + [resumed])
        if any(n in ("final_save", "final_move") for n, _, _ in events):
            finished = steps
        now = newest_complete_step(out)
        lost = max(0, finished - now)
        result.lost_steps_max = max(result.lost_steps_max, lost)
        result.lost_steps_total += lost
        if lost > save_steps:
            result.kills_losing_more_than_one_interval += 1
            result.problems.append(f"kill {attempt + 1} ({where}): finished step {finished}, newest complete {now}")
        for ckpt in complete_checkpoints(out):
            result.complete_checkpoints_checked += 1
            problem = checkpoint_problem(ckpt, ref)
            if problem:
                step = int(ckpt.name.split("-")[1])
                if step not in checked:
                    checked.add(step)
                    result.corrupt_complete_checkpoints += 1
                result.problems.append(f"kill {attempt + 1} ({where}): {ckpt.name} {problem}")
        print(f"  {trainer} kill {attempt + 1:2d}: aimed at {window:8s} @ step {target:3d}, landed in {where:16s} "
              f"finished step {finished:3d}, newest complete checkpoint {now:3d} (lost {lost})", flush=True)

    run_to_end(main, argv, base / "logs/final.log", {})
    got, want = weights(out / "model.safetensors"), weights(ref / "model.safetensors")
    result.final_weights_equal = got.keys() == want.keys() and all(got[k] == want[k] for k in want)
    if not result.final_weights_equal:
        result.problems.append("final weights differ from the uninterrupted run's")
    manifest = json.loads((out / "run_manifest.json").read_text())
    result.train_loss = manifest["metrics"]["train_loss"]
    if abs(result.train_loss - result.reference_train_loss) > 1e-5 * abs(result.reference_train_loss):
        result.problems.append(f"train_loss {result.train_loss} != uninterrupted {result.reference_train_loss}")
    statuses = [a.get("status") for a in manifest.get("previous_attempts", [])]
    result.interrupted_in_manifest = statuses.count("interrupted")
    expected = result.kills - result.landed.get("after the end", 0)
    if manifest["status"] != "finished" or result.interrupted_in_manifest != expected:
        result.problems.append(f"manifest: status {manifest['status']}, previous attempts {statuses}")
    result.leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith(".") or
                              (p.name.startswith("checkpoint-") and not (p / COMPLETE_MARKER).exists()))
    if result.leftovers:
        result.problems.append(f"leftovers in output_dir: {result.leftovers}")
    result.seconds = time.time() - start
    return result


def tiny_world(work: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    root = work / "tiny"
    if not (root / "tiny-base" / "model.safetensors").exists():
        from tinyworld.build import TinyBuild, build_tiny

        print(f"building the seconds-sized tiny world in {root} ...", flush=True)
        build_tiny(root, TinyBuild.small())
    return root


def keep_trainer_rotation() -> None:
    """Negative control: let the Trainer delete old checkpoints before corral marks the new one (the
    behaviour before corral rotated itself). Kills in the `written` window must then lose progress."""
    from corral.checkpoints import MarkCompleteCallback

    original = MarkCompleteCallback.on_train_begin

    def on_train_begin(self, args, state, control, **kwargs):
        limit = args.save_total_limit
        original(self, args, state, control, **kwargs)
        args.save_total_limit, self.save_total_limit = limit, None
        return control

    MarkCompleteCallback.on_train_begin = on_train_begin


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trainer", choices=("sft", "dpo", "both"), default="both")
    p.add_argument("--kills", type=int, default=20, help="kills per trainer")
    p.add_argument("--windows", default=",".join(WINDOWS), help=f"comma-separated subset of {','.join(WINDOWS)}")
    p.add_argument("--steps", type=int, default=None, help="max_steps (default: enough for the kills)")
    p.add_argument("--save_steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments (training always uses seed 0)")
    p.add_argument("--tiny", default=None, help="dir with tiny-base/ and tiny-world/ (default: build the small one)")
    p.add_argument("--work", default="outputs/kill_harness", help="scratch dir (replaced)")
    p.add_argument("--json", default=None, help="also write the counts here")
    p.add_argument("--stock_rotation", action="store_true",
                   help="negative control: the Trainer rotates before corral marks; the checks must then fail")
    a = p.parse_args(argv)
    windows = tuple(w for w in a.windows.split(",") if w)
    unknown = set(windows) - set(WINDOWS)
    if unknown:
        p.error(f"unknown windows {sorted(unknown)}; choose from {','.join(WINDOWS)}")
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    tiny = tiny_world(work, a.tiny)
    if a.stock_rotation:
        keep_trainer_rotation()
    print(f"kill harness: seed {a.seed}, {a.kills} kills per trainer, windows {','.join(windows)}, save every "
          f"{a.save_steps} steps, fp32 CPU, 1 torch thread per run (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})",
          flush=True)
    results = []
    for trainer in (("sft", "dpo") if a.trainer == "both" else (a.trainer,)):
        results.append(attack(trainer, tiny, work, a.kills, windows, a.steps, a.save_steps, a.seed))
        print(results[-1].line(), flush=True)
    for r in results:
        for problem in r.problems:
            print(f"FAIL {r.trainer}: {problem}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2) + "\n")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
