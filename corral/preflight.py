"""Checks of a parsed recipe that need no weights, made before the model loads, each a one-line error.

    check_before_loading(training_args, model_args)                 # SFT, DPO family, RL, rejection sampling
    check_before_loading(training_args, model_args, head="reward")  # reward/train.py: a scalar head

Without them each of these mistakes surfaces only after the model has loaded, as a library traceback:
`lora_r: -1` (peft's ValueError when it wraps the first layer), `lora_target_modules` naming modules the
model lacks (NoMatchingPeftModuleError), an `output_dir` that is a file (FileExistsError at the first
save), under /proc or on a read-only filesystem (OSError), a disk too small for the first checkpoint
(at the first save, after the first save interval of training). The model's module names and parameter
count come from its config.json: the model is built on the `meta` device, which allocates no memory.

Secrets: a `hub_token` given in the recipe or on the command line moves to the HF_TOKEN environment
variable (which the Hub client reads) and leaves the arguments, so the Trainer cannot pickle it into
every checkpoint's training_args.bin. `trust_remote_code: true` is refused: corral trains Llama-family
checkpoints that transformers implements itself, and code shipped inside a checkpoint would run as you.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from corral.errors import CorralError
from corral.loading import is_adapter, read_config, recipe_dtype, resolve_base

logger = logging.getLogger(__name__)

PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
SECRET_FIELDS = ("hub_token",)
_LORA_LAYERS = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_GIB = 1024 ** 3


class PreflightError(CorralError, ValueError):
    """A recipe setting that cannot work with this checkpoint or this disk; the message is one line."""


def check_before_loading(training_args, model_args, head: str = "causal-lm") -> None:
    """Every check of the recipe that needs the checkpoint's config.json but not its weights.

    `head`: "causal-lm", or "reward" for a model with a scalar `score` head (module names differ).
    """
    move_secrets_to_env(training_args)
    refuse_remote_code(training_args, model_args)
    folder = check_output_dir(training_args.output_dir)
    peft_config = check_lora_settings(model_args) if model_args.use_peft else None
    model = meta_model(model_args.model_name_or_path, model_args.model_revision, head)
    if model is None:
        return
    if peft_config is not None:
        check_lora_targets(peft_config, model)
    check_disk_space(folder, first_checkpoint_bytes(model, training_args, model_args, peft_config),
                     training_args.output_dir)


def move_secrets_to_env(*instances) -> None:
    """`hub_token` -> the HF_TOKEN environment variable, so no saved argument object holds it."""
    for obj in instances:
        for name in SECRET_FIELDS:
            value = getattr(obj, name, None)
            if value:
                os.environ["HF_TOKEN"] = value
                setattr(obj, name, None)
                logger.info("%s moved to the HF_TOKEN environment variable (it is never saved with the run)", name)


def refuse_remote_code(*instances) -> None:
    if any(getattr(obj, "trust_remote_code", False) for obj in instances):
        raise PreflightError(
            "trust_remote_code: true is not supported: corral trains Llama-family checkpoints, which transformers "
            "implements itself, and Python code shipped inside a checkpoint would run with your rights; remove the key")


def check_output_dir(output_dir: str | None) -> Path:
    """The nearest existing folder of `output_dir`, after checking a file can be created there."""
    if not output_dir:
        raise PreflightError("output_dir is not set; give the folder for checkpoints and the trained model")
    path = Path(output_dir).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise PreflightError(f"output_dir {output_dir}: is an existing file, not a folder; choose another output_dir")
    real = path.resolve()
    for pseudo in PSEUDO_FILESYSTEMS:
        if real == Path(pseudo) or Path(pseudo) in real.parents:
            raise PreflightError(f"output_dir {output_dir}: is under {pseudo}, a kernel filesystem that holds no "
                                 "files; choose a folder on a disk")
    folder = real
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise PreflightError(f"output_dir {output_dir}: {folder} is a file, so no folder can be made under it; "
                             "choose another output_dir")
    try:  # the only sure test of a read-only mount, a full quota or missing rights
        fd, probe = tempfile.mkstemp(prefix=".corral-write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PreflightError(f"output_dir {output_dir}: cannot create files in {folder} ({err.strerror}); "
                             "choose a writable folder") from None
    return folder


def check_lora_settings(model_args):
    """The recipe's LoRA settings, checked, as the peft LoraConfig TRL would build from them."""
    from trl import get_peft_config

    r, alpha, dropout = model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout
    if not isinstance(r, int) or r < 1:
        raise PreflightError(f"lora_r: {r}; the LoRA rank must be a positive integer (8 to 64 are usual)")
    if not alpha > 0:
        raise PreflightError(f"lora_alpha: {alpha}; it must be positive (the update is scaled by lora_alpha / lora_r; "
                             "2 * lora_r is usual)")
    if not 0 <= dropout < 1:
        raise PreflightError(f"lora_dropout: {dropout}; it is a probability in [0, 1) (0.0 to 0.1 are usual)")
    try:
        return get_peft_config(model_args)
    except (ValueError, TypeError) as err:
        raise PreflightError(f"LoRA settings: {str(err).splitlines()[0]}") from None


def meta_model(name_or_path: str, revision: str = "main", head: str = "causal-lm"):
    """The model `name_or_path` describes, built on the meta device (no memory, no weights read);
    None when transformers cannot build it from the config alone (the loader then reports why)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.modeling_utils import set_zero3_state

    path = resolve_base(name_or_path) if is_adapter(name_or_path) else name_or_path
    config = read_config(str(path), revision)
    try:
        # set_zero3_state: under a DeepSpeed ZeRO-3 launch, from_config would partition the model and
        # then fail copying into meta tensors ("Cannot copy out of meta tensor"); this build is a plain one.
        with torch.device("meta"), set_zero3_state():
            if head == "reward":
                config.num_labels = 1
                return AutoModelForSequenceClassification.from_config(config)
            return AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, TypeError, ImportError, AttributeError) as err:
        logger.info("preflight: no meta model of %s (%s); module checks are left to loading", path, err)
        return None


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def check_lora_targets(peft_config, model) -> None:
    """`lora_target_modules` and `lora_modules_to_save` against the module names of `model`, matched
    as peft matches them: a list entry matches a module whose name is it or ends in `.entry`; a single
    string (what TRL makes of a one-item list) is a regular expression over the full module name."""
    arch = type(model).__name__
    modules = dict(model.named_modules())
    layers = sorted({_leaf(n) for n, m in modules.items() if isinstance(m, _LORA_LAYERS)})
    targets = peft_config.target_modules
    if isinstance(targets, str) and targets.lower() != "all-linear":
        try:
            matched = [n for n in modules if re.fullmatch(targets, n)]
        except re.error as err:
            raise PreflightError(f"lora_target_modules: {targets!r} is not a valid regular expression ({err})") from None
        if not matched:
            hint = (f"; a single name is a regular expression over full module names such as "
                    f"{next(n for n in modules if _leaf(n) == targets)!r}: write a list, [{targets}]"
                    if targets in layers else f"; its LoRA-able layers: {', '.join(layers)}")
            raise PreflightError(f"lora_target_modules: {targets!r} matches no module of {arch}{hint}")
        _check_kinds(targets, matched, modules, arch, layers)
    elif isinstance(targets, (set, list, tuple)):
        for target in sorted(targets):
            matched = [n for n in modules if n == target or n.endswith(f".{target}")]
            if not matched:
                close = difflib.get_close_matches(target, layers, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PreflightError(f"lora_target_modules: {target!r} names no module of {arch}{hint}; "
                                     f"its LoRA-able layers: {', '.join(layers)}")
            _check_kinds(target, matched, modules, arch, layers)
    for name in peft_config.modules_to_save or ():
        if not any(re.match(rf"(^|.*\.){re.escape(name)}($|\..*)", n) for n in modules):
            names = sorted({_leaf(n) for n in modules if n and not _leaf(n).isdigit()})
            close = difflib.get_close_matches(name, names, n=1)
            raise PreflightError(f"lora_modules_to_save: {name!r} names no module of {arch}"
                                 f"{f' (did you mean {close[0]!r}?)' if close else ''}")


def _check_kinds(target: str, matched: list[str], modules: dict, arch: str, layers: list[str]) -> None:
    if not any(isinstance(modules[n], _LORA_LAYERS) for n in matched):
        kind = type(modules[matched[0]]).__name__
        raise PreflightError(f"lora_target_modules: {target!r} names {kind} modules of {arch}, which LoRA cannot "
                             f"wrap; name its Linear or Embedding layers: {', '.join(layers)}")


def first_checkpoint_bytes(model, training_args, model_args, peft_config) -> tuple[int, int]:
    """(weights, optimizer states) bytes of the first checkpoint, estimated from the meta model.

    Weights: the full model in the recipe's dtype, or with LoRA the adapter only. Optimizer: AdamW keeps
    two states per trainable parameter in its dtype (LoRA adapters train in fp32). Not counted: scheduler,
    RNG and trainer state (kilobytes), and with save_strategy `no` the optimizer (only the final model is saved).
    """
    if peft_config is None:
        itemsize = torch.empty((), dtype=recipe_dtype(model_args, training_args)).element_size()
        trainable = sum(p.numel() for p in model.parameters())
        weights = trainable * itemsize
    else:
        itemsize = 4
        trainable = _lora_parameters(model, peft_config)
        weights = trainable * itemsize
    saves_optimizer = str(getattr(training_args.save_strategy, "value", training_args.save_strategy)) != "no"
    optimizer = 2 * trainable * itemsize if saves_optimizer and not training_args.save_only_model else 0
    return weights, optimizer


def _lora_parameters(model, peft_config) -> int:
    """r * (in + out) for each Linear the adapter wraps (an upper bound for all-linear, which skips the head)."""
    targets, r = peft_config.target_modules, peft_config.r
    total = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if targets is None or (isinstance(targets, str) and targets.lower() == "all-linear"):
            hit = True
        elif isinstance(targets, str):
            hit = re.fullmatch(targets, name) is not None
        else:
            hit = any(name == t or name.endswith(f".{t}") for t in targets)
        if hit:
            total += r * (module.in_features + module.out_features)
    return total


def check_disk_space(folder: Path, sizes: tuple[int, int], output_dir: str) -> None:
    """Stop when the first checkpoint (`sizes` = weights, optimizer bytes) cannot fit on `folder`'s disk."""
    weights, optimizer = sizes
    free = shutil.disk_usage(folder).free
    if weights + optimizer > free:
        raise PreflightError(
            f"output_dir {output_dir}: the first checkpoint needs about {(weights + optimizer) / _GIB:.1f} GiB "
            f"(weights {weights / _GIB:.1f} GiB + optimizer states {optimizer / _GIB:.1f} GiB) but its disk has "
            f"{free / _GIB:.1f} GiB free; free space, choose another output_dir, or set save_only_model: true "
            "(no optimizer states; such checkpoints cannot resume)")
