"""Checkpoints that a kill cannot corrupt or lose, resuming from the last complete one, and the final save.

transformers' Trainer writes `checkpoint-N/` in place (weights, optimizer, scheduler, RNG, then
`trainer_state.json`) and then, with `save_total_limit`, deletes older checkpoints, all before any
callback runs. A kill during the write leaves a directory that `get_last_checkpoint` still picks;
a kill after its rotation but before the new checkpoint is known to be whole leaves nothing usable.
So corral takes the rotation over (`MarkCompleteCallback`):

1. the Trainer writes `checkpoint-N/` (its own rotation is switched off for the run);
2. every process has finished writing its part (a barrier), then `corral_complete.json` is created
   in it atomically: from now on it is a complete checkpoint;
3. only then are complete checkpoints beyond `save_total_limit` deleted, each first renamed to
   `.deleting-checkpoint-M` (atomic), so a half-deleted checkpoint never looks complete.

`prepare_output_dir` runs at the start of every entry script, before anything heavy loads: it
removes what a killed run left (`.saving-<pid>/`, `.deleting-*/`, `checkpoint-N/` without the marker),
records an unfinished previous run as `interrupted` in `run_manifest.json`, and decides where to
resume. Relaunching the same command resumes from the newest complete checkpoint (as the Hugging Face
example scripts, the alignment-handbook and axolotl's `auto_resume_from_checkpoints` do); to start
over, pass `--overwrite_output_dir`, which deletes the old checkpoints first. `run_training` then never
trains past `max_steps` and reports `train_loss` over the whole run, not only the resumed part.

The final model is written to `.saving-<pid>/` and moved into `output_dir` file by file with
`os.replace`, so a kill during the final save leaves whole files (the manifest stays `running`, and
the next launch resumes from the last checkpoint, at `max_steps`, and saves again without training).

Fault injection (benchmarks/kill_harness.py): `CORRAL_FAULT_SLEEP_IN_SAVE=<seconds>` sleeps at each
point where a kill is most harmful (checkpoint written but not marked, marked but older ones not yet
deleted, mid-deletion, mid final save), and `CORRAL_FAULT_TRACE=<file>` appends `<point> <step>` to
that file (with the time) as each point, step start and step end is reached, so a harness can kill inside a chosen window.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer_utils import TrainOutput

from corral.errors import CorralError
from corral.manifest import mark_interrupted, read_manifest, write_json_atomic
from corral.recipe import resolved_config

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "corral_complete.json"
FAULT_SLEEP_ENV = "CORRAL_FAULT_SLEEP_IN_SAVE"
FAULT_TRACE_ENV = "CORRAL_FAULT_TRACE"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_LEFTOVER_RE = re.compile(r"^(\.saving-\d+|\.deleting-checkpoint-\d+|checkpoint-\d+\.incomplete)$")


@dataclass
class CheckpointArguments:
    """Recipe key deciding what a launch does with the checkpoints of an earlier run in `output_dir`."""

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Delete the checkpoints an earlier run left in output_dir and train from "
                                 "step 0. Default: resume from the newest complete one (resume_from_checkpoint "
                                 "picks another)."})


def fault_point(name: str, step: int, sleepy: bool = True) -> None:
    """Test hook (module docstring): trace `name step` to $CORRAL_FAULT_TRACE, sleep $CORRAL_FAULT_SLEEP_IN_SAVE."""
    trace = os.environ.get(FAULT_TRACE_ENV)
    if trace:
        with open(trace, "a") as f:
            f.write(f"{name} {step} {time.time():.4f}\n")
    delay = float(os.environ.get(FAULT_SLEEP_ENV) or 0)
    if sleepy and delay > 0:
        time.sleep(delay)


def _step_of(path: Path) -> int | None:
    m = _CHECKPOINT_RE.match(path.name)
    return int(m.group(1)) if m and path.is_dir() else None


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under `output_dir`, oldest first."""
    found = [(_step_of(p), p) for p in Path(output_dir).glob("checkpoint-*")]
    return [p for step, p in sorted(found) if step is not None and (p / COMPLETE_MARKER).is_file()]


def _remove(path: Path) -> None:
    """Delete a checkpoint-like directory so that no moment of the deletion looks like a checkpoint."""
    trash = path if path.name.startswith(".deleting-") else path.with_name(f".deleting-{path.name}")
    if trash != path:
        step = _step_of(path) or 0
        shutil.rmtree(trash, ignore_errors=True)
        path.rename(trash)
        fault_point("deleting", step)
    shutil.rmtree(trash, ignore_errors=True)


def prune_checkpoints(output_dir: str | Path, keep: int | None, protect: str | None = None) -> list[Path]:
    """Delete complete checkpoints beyond the newest `keep` (None or <= 0: keep all), never `protect`."""
    if not keep or keep <= 0:
        return []
    done = complete_checkpoints(output_dir)
    old = [p for p in done[:-keep] if protect is None or Path(protect).resolve() != p.resolve()]
    for p in old:
        fault_point("rotate", _step_of(p) or 0)
        _remove(p)
    return old


def clean_leftovers(output_dir: str | Path) -> list[str]:
    """Remove what killed saves left: `.saving-<pid>/`, `.deleting-*/`, `checkpoint-N/` without the marker."""
    removed = []
    root = Path(output_dir)
    if not root.is_dir():
        return removed
    for p in sorted(root.iterdir()):
        unmarked = _step_of(p) is not None and not (p / COMPLETE_MARKER).is_file()
        if unmarked or (p.is_dir() and _LEFTOVER_RE.match(p.name)):
            _remove(p)
            removed.append(p.name)
        elif p.is_file() and re.match(r"^\..+\.tmp-\d+$", p.name):  # write_json_atomic's temp file
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


class MarkCompleteCallback(TrainerCallback):
    """Marks each checkpoint complete once every process has written it, then rotates (module docstring).

    Also logs at every save step, so each checkpoint's `trainer_state.json` holds the loss of every step
    up to it (what `run_training` needs for the whole run's `train_loss` after a resume), and stops a resumed
    run that is already at `max_steps` before it trains a step past it.
    """

    def __init__(self):
        self.save_total_limit = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps > 0:
            raise _AlreadyDone()
        # The Trainer would rotate before this callback has marked the new checkpoint: rotate here instead.
        self.save_total_limit, args.save_total_limit = args.save_total_limit, None
        return control

    def on_train_end(self, args, state, control, **kwargs):
        args.save_total_limit = self.save_total_limit
        return control

    def on_step_begin(self, args, state, control, **kwargs):
        fault_point("step", state.global_step + 1, sleepy=False)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        fault_point("step_end", state.global_step, sleepy=False)
        if control.should_save:
            control.should_log = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_save:
            control.should_log = True
        return control

    def on_save(self, args, state, control, **kwargs):
        _barrier()  # in DDP every rank writes its own rng_state_<rank>.pth into the checkpoint
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                fault_point("written", state.global_step)
                write_json_atomic(ckpt / COMPLETE_MARKER, {"global_step": state.global_step})
                fault_point("marked", state.global_step)
                prune_checkpoints(args.output_dir, self.save_total_limit, state.best_model_checkpoint)
        _barrier()
        return control


class _AlreadyDone(Exception):
    """Raised by MarkCompleteCallback when a run resumes from a checkpoint at or past max_steps."""


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def resolve_resume(resume_from_checkpoint: str | bool | None, output_dir: str | Path,
                   overwrite_output_dir: bool = False, log: bool = True) -> str | None:
    """The checkpoint to resume from, or None to start at step 0.

    Unset or `true`: the newest complete checkpoint in `output_dir` (None if there is none); a path
    must be a written checkpoint; `false` with checkpoints present needs `overwrite_output_dir`.
    `log`: say which (the main process; the others decide alike, silently).
    """
    value = None if resume_from_checkpoint is None else str(resume_from_checkpoint)
    if value is not None and value.lower() not in ("true", "false", ""):
        if overwrite_output_dir:
            raise CorralError(f"resume_from_checkpoint: {value} and overwrite_output_dir: true contradict each other; "
                              "keep one")
        path = Path(value)
        if not path.is_dir():
            raise CorralError(f"resume_from_checkpoint: {path} is not a directory (use true for the newest "
                              "complete checkpoint in output_dir)")
        if not (path / COMPLETE_MARKER).is_file() and not (path / "trainer_state.json").is_file():
            raise CorralError(f"resume_from_checkpoint: {path} is incomplete (no trainer_state.json); "
                              "pick an earlier checkpoint")
        return str(path)
    done = complete_checkpoints(output_dir)
    if value is not None and value.lower() == "true" and overwrite_output_dir:
        raise CorralError("resume_from_checkpoint: true and overwrite_output_dir: true contradict each other; keep one")
    if not done or overwrite_output_dir:
        if value is not None and value.lower() == "true" and log:
            logger.warning("resume_from_checkpoint: no complete checkpoint in %s; starting from step 0", output_dir)
        return None
    if value is not None and value.lower() in ("false", ""):
        raise CorralError(f"resume_from_checkpoint: false, but {output_dir} holds {done[-1].name} from an earlier "
                          "run; pass --overwrite_output_dir to delete its checkpoints and start over, or drop "
                          "resume_from_checkpoint to resume")
    if log:
        logger.info("resuming from %s (the newest complete checkpoint); --overwrite_output_dir starts over instead",
                    done[-1])
    return str(done[-1])


def prepare_output_dir(args, overwrite_output_dir: bool = False) -> str | None:
    """Before loading anything: clean up after a killed run and decide where to resume (module docstring).

    `args` is the trainer's TrainingArguments; its `resume_from_checkpoint` is set to the checkpoint
    chosen (or None), so the manifest records it. The main process cleans; the others then decide alike.
    """
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise CorralError(f"output_dir: {out} is a file; choose a directory")
    with args.main_process_first(local=False, desc="output_dir cleanup"):
        if args.process_index == 0 and out.is_dir():
            previous = mark_interrupted(out)
            if previous:
                logger.warning("%s: the run started at %s did not finish (status: interrupted)", out, previous)
            if overwrite_output_dir:
                old = [p for p in out.iterdir() if _step_of(p) is not None]
                for p in old:
                    _remove(p)
                if old:
                    logger.warning("overwrite_output_dir: deleted %d checkpoint(s) of an earlier run in %s",
                                   len(old), out)
            for name in clean_leftovers(out):
                logger.warning("%s/%s was left by a killed run (not a complete checkpoint); removed", out, name)
        args.resume_from_checkpoint = resolve_resume(args.resume_from_checkpoint, out, overwrite_output_dir,
                                                     log=args.process_index == 0)
    if args.resume_from_checkpoint and Path(args.resume_from_checkpoint).parent == out:
        check_same_schedule(read_manifest(out), args, Path(args.resume_from_checkpoint).name)
    return args.resume_from_checkpoint


# Settings that define what the steps of a run compute: resuming a checkpoint written under other values would
# silently continue a different run (a recipe edited since, or another recipe with the same output_dir).
# More steps or epochs are allowed: resuming to train longer is a normal use.
SCHEDULE_KEYS = ("learning_rate", "lr_scheduler_type", "per_device_train_batch_size", "gradient_accumulation_steps",
                 "seed", "warmup_steps", "weight_decay", "optim", "beta", "loss_type", "max_length")


def check_same_schedule(previous: dict | None, args, checkpoint: str) -> None:
    """Stop before resuming `checkpoint` when the earlier run's manifest shows other `SCHEDULE_KEYS` values."""
    sections = (previous or {}).get("config") or {}
    old = next((v for v in sections.values() if isinstance(v, dict) and "learning_rate" in v), None)
    if old is None:
        return
    now = resolved_config([args])[type(args).__name__]  # the form the manifest holds (enums as values, ...)
    changed = [f"{k} {old[k]!r} -> {now[k]!r}" for k in SCHEDULE_KEYS if k in old and k in now and old[k] != now[k]]
    match = _CHECKPOINT_RE.match(checkpoint)
    step = int(match.group(1)) if match else 0
    if 0 < getattr(args, "max_steps", 0) < step:  # the checkpoint is already past this run's end
        changed.append(f"max_steps {old.get('max_steps')!r} -> {args.max_steps!r}, below the checkpoint's step {step}")
    if changed:
        raise CorralError(f"output_dir {args.output_dir} holds {checkpoint} of a run with other settings "
                          f"({', '.join(changed)}); resuming would continue that run: pass --overwrite_output_dir to "
                          "start over, or another output_dir")


def start_model_fingerprint(path: str | None) -> str | None:
    """16 hex digits of sha256 over a local start model's config, tokenizer and adapter files and its weight files'
    names and sizes (hashing an 8B model's weights would take minutes); None for a hub id."""
    root = Path(path) if path else None
    if root is None or not root.is_dir():
        return None
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "adapter_config.json"):
        if (root / name).is_file():
            h.update(name.encode() + b"\0" + (root / name).read_bytes())
    for f in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def check_same_inputs(output_dir: str | Path, checkpoint: str | None, data_fingerprint: str | None,
                      start_model: str | None) -> str | None:
    """Stop before resuming `checkpoint` of `output_dir` when the interrupted run read other data or another start
    model (a rebuilt base has another tokenizer: its checkpoint's weights would be garbage under the new one).
    Returns the start model's fingerprint, for the manifest."""
    now = start_model_fingerprint(start_model)
    if not checkpoint or Path(checkpoint).parent != Path(output_dir):
        return now
    old = (read_manifest(output_dir) or {}).get("data") or {}
    changed = []
    if old.get("fingerprint") and data_fingerprint and old["fingerprint"] != data_fingerprint:
        changed.append(f"data fingerprint {old['fingerprint']} -> {data_fingerprint}")
    if old.get("start_model_fingerprint") and now and old["start_model_fingerprint"] != now:
        changed.append(f"start model {start_model} fingerprint {old['start_model_fingerprint']} -> {now}")
    if changed:
        raise CorralError(f"output_dir {output_dir} holds {Path(checkpoint).name} of a run on other inputs "
                          f"({', '.join(changed)}); resuming would continue that run: pass --overwrite_output_dir "
                          "to start over, or another output_dir")
    return now


def whole_run_train_loss(log_history: list[dict], resumed_step: int, resumed_loss: float, final_step: int) -> float:
    """Mean training loss over every step of a resumed run: the losses logged up to `resumed_step`
    (MarkCompleteCallback logs at each save) weighted by the steps they cover, plus the resumed part."""
    total, covered, last = 0.0, 0, 0
    for entry in log_history:
        step = entry.get("step", 0)
        if "loss" in entry and last < step <= resumed_step:
            total += entry["loss"] * (step - last)
            covered, last = covered + step - last, step
    resumed_steps = final_step - resumed_step
    return (total + resumed_loss * resumed_steps) / max(covered + resumed_steps, 1)


def run_training(trainer) -> TrainOutput:
    """`trainer.train()`, resuming from `args.resume_from_checkpoint` (see `prepare_output_dir`).

    A checkpoint already at `max_steps` is loaded without training a step (the Trainer would run one
    step past it); `metrics["train_loss"]` covers the whole run, with `resumed_from_step` beside it.
    """
    ckpt = trainer.args.resume_from_checkpoint
    try:
        result = trainer.train(resume_from_checkpoint=ckpt)
    except _AlreadyDone:
        trainer.is_in_train = False
        state = trainer.state
        logger.info("%s is already at max_steps=%d: loaded it, nothing left to train (--overwrite_output_dir "
                    "trains again from step 0)", ckpt, state.max_steps)
        result = TrainOutput(state.global_step, 0.0, {"train_runtime": 0.0, "epoch": state.epoch})
    match = _CHECKPOINT_RE.match(Path(ckpt).name) if ckpt else None  # by its name: it may be rotated away by now
    if match:
        resumed = int(match.group(1))
        loss = whole_run_train_loss(trainer.state.log_history, resumed, result.metrics.get("train_loss", 0.0),
                                    trainer.state.global_step)
        result.metrics.update(train_loss=loss, resumed_from_step=resumed)
        result = TrainOutput(result.global_step, loss, result.metrics)
    return result


def save_atomically(save: Callable[[str], None], output_dir: str | Path) -> None:
    """Call `save(tmp_dir)` then move every file it wrote into `output_dir` with atomic renames."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".saving-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save(str(tmp))
    fault_point("final_save", 0)
    moved = 0
    for src in sorted(tmp.rglob("*")):
        if src.is_file():
            dst = output_dir / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved += 1
            if moved == 1:
                fault_point("final_move", 0)
    shutil.rmtree(tmp, ignore_errors=True)


def save_final(trainer, output_dir: str | Path) -> None:
    """`trainer.save_model` into `output_dir`, atomically, as a plain checkpoint even under FSDP.

    With `fsdp_state_dict_type: SHARDED_STATE_DICT` (fast intermediate checkpoints, each rank its shard)
    transformers 5.23's `save_model` writes no weights and no config.json into `output_dir`; the model
    would exist only as a torch distributed checkpoint inside `checkpoint-N/`. The final save therefore
    gathers a full state dict (offloaded to rank 0's CPU), as alignment-handbook's scripts do.
    """
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
    if getattr(trainer, "is_fsdp_enabled", False) and plugin is not None \
            and plugin.state_dict_type.name != "FULL_STATE_DICT":
        plugin.set_state_dict_type("FULL_STATE_DICT")
    save_atomically(trainer.save_model, output_dir)


def save_trained(trainer, tokenizer, output_dir: str, merge_lora: bool = False, adapter_dir: str | None = None) -> None:
    """Save the trained model atomically into `output_dir`, and (main process) its tokenizer.

    `merge_lora`: save the LoRA delta merged into its base as a full model instead of the adapter;
    `adapter_dir`: also keep the adapter there.
    """
    if merge_lora:
        if adapter_dir:
            save_atomically(trainer.save_model, adapter_dir)
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        save_atomically(merged.save_pretrained, output_dir)
    else:
        save_final(trainer, output_dir)
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
