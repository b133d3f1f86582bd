"""Checkpoints that a crash or a kill cannot corrupt, and resuming from the last complete one.

transformers' Trainer writes `checkpoint-N/` in place (weights, optimizer, scheduler, RNG, then
`trainer_state.json`). A kill during that write leaves a directory that `get_last_checkpoint` still
picks, and resuming then fails or, worse, loads half a state. corral marks a checkpoint complete
only after the Trainer has finished writing it (`on_save` fires after the write), by atomically
creating `corral_complete.json`; resuming skips and renames unmarked directories.

The final model is written to a temporary directory and moved into `output_dir` file by file with
`os.replace`, so a kill during the final save leaves the previous files or the new ones, never a
truncated safetensors file.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from corral.manifest import write_json_atomic

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "corral_complete.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class MarkCompleteCallback(TrainerCallback):
    """After each save, mark `checkpoint-<step>` complete (only on the main process)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                write_json_atomic(ckpt / COMPLETE_MARKER, {"global_step": state.global_step})
        return control


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under `output_dir`, oldest first."""
    out = []
    for p in Path(output_dir).glob("checkpoint-*"):
        m = _CHECKPOINT_RE.match(p.name)
        if m and p.is_dir() and (p / COMPLETE_MARKER).is_file():
            out.append((int(m.group(1)), p))
    return [p for _, p in sorted(out)]


def resolve_resume(resume_from_checkpoint: str | bool | None, output_dir: str | Path) -> str | None:
    """Turn the recipe's `resume_from_checkpoint` into a checkpoint path (or None to start fresh).

    `true` means the newest *complete* checkpoint in `output_dir` (incomplete ones are renamed to
    `checkpoint-N.incomplete` so the Trainer's own rotation never trips on them); a path must exist.
    """
    from corral.errors import CorralError

    if resume_from_checkpoint in (None, False, "", "false", "False"):
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).lower() == "true":
        for p in Path(output_dir).glob("checkpoint-*"):
            if _CHECKPOINT_RE.match(p.name) and p.is_dir() and not (p / COMPLETE_MARKER).is_file():
                target = p.with_name(p.name + ".incomplete")
                shutil.rmtree(target, ignore_errors=True)
                try:
                    p.rename(target)
                except FileNotFoundError:  # another rank of the same launch moved it first
                    continue
                logger.warning("%s was not completely written (killed during save?); moved to %s", p, target.name)
        done = complete_checkpoints(output_dir)
        if not done:
            logger.warning("resume_from_checkpoint: no complete checkpoint in %s; starting from scratch", output_dir)
            return None
        logger.info("resuming from %s", done[-1])
        return str(done[-1])
    path = Path(str(resume_from_checkpoint))
    if not path.is_dir():
        raise CorralError(f"resume_from_checkpoint: {path} is not a directory (use true for the newest checkpoint in output_dir)")
    if not (path / COMPLETE_MARKER).is_file() and (path / "trainer_state.json").is_file() is False:
        raise CorralError(f"resume_from_checkpoint: {path} is incomplete (no trainer_state.json); pick an earlier checkpoint")
    return str(path)


def save_atomically(save: Callable[[str], None], output_dir: str | Path) -> None:
    """Call `save(tmp_dir)` then move every file it wrote into `output_dir` with atomic renames."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".saving-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save(str(tmp))
    for src in sorted(tmp.rglob("*")):
        if src.is_file():
            dst = output_dir / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(tmp, ignore_errors=True)


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
        save_atomically(trainer.save_model, output_dir)
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
