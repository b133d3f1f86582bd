"""What finetune/rl.py and finetune/rejection_sampling.py share beyond rewards: the methods and their
TRL classes, the starting policy, prompt data, and a training bar that counts prompts.

Methods. `grpo` and `rloo` are TRL's `GRPOTrainer`/`RLOOTrainer`. `online_dpo` is TRL's
*experimental* `OnlineDPOTrainer` (`trl.experimental.online_dpo`, not part of TRL's stable API: its
arguments may change between TRL releases), wrapped here only to log each reward component, which
that trainer does not do on its own. PPO with a value model is not in TRL 1.16 and not offered.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm
from transformers.trainer_callback import ProgressCallback

from corral.errors import CorralError, DataError
from corral.loading import is_adapter, load_model
from corral.recipe import peek_method
from data_prep.mixture import OPTIONS, DatasetSpec, load_mixture

logger = logging.getLogger(__name__)

# method -> (module, config class, trainer class)
METHODS = {
    "grpo": ("trl", "GRPOConfig", "GRPOTrainer"),
    "rloo": ("trl", "RLOOConfig", "RLOOTrainer"),
    "online_dpo": ("trl.experimental.online_dpo", "OnlineDPOConfig", "OnlineDPOTrainer"),
}


def config_class(method: str) -> type:
    module, config, _ = METHODS[method]
    return getattr(importlib.import_module(module), config)


def trainer_class(method: str) -> type:
    if method == "online_dpo":
        return _component_logging_online_dpo()
    module, _, trainer = METHODS[method]
    return getattr(importlib.import_module(module), trainer)


def recipe_method(argv: list[str], default: str = "grpo") -> str:
    """The recipe's online RL method (`default` when unreadable; the strict parse then says why)."""
    return peek_method(argv, METHODS, default)


def check_trl_reward_settings(args) -> None:
    """corral sets TRL's `reward_weights` from `rewards:`; a recipe that also sets them is ambiguous."""
    if getattr(args, "reward_weights", None) is not None:
        raise CorralError("reward_weights: set weights in `rewards: {name: weight}` (and reward_model_weight), "
                          "not in TRL's reward_weights; corral fills that list itself")
    if getattr(args, "reward_model_path", None) is not None:
        raise CorralError("reward_model_path: the online DPO trainer ignores it; use reward_model: DIR")


def load_prompts(specs: list[DatasetSpec], seed: int, what: str = "datasets", options: str = "recipe",
                 reader: str = "online RL", **kwargs):
    """Prompt-only rows (`prompt` as messages plus any extra columns) from `specs`; error hints spell
    options as `data_prep.mixture.OPTIONS[options]` does (a recipe's keys by default) and name the `reader`."""
    try:
        data = load_mixture(specs, kind="prompt", seed=seed, options=options, **kwargs)
    except DataError as err:
        if "no known format" not in str(err) and "missing prompt" not in str(err):
            raise
        raise DataError(f"{what}: {err}; {reader} needs prompt rows: a `prompt` column "
                        f"({OPTIONS[options]['rename']}) or `messages` conversations") from None
    for line in data.report.summary_lines():
        logger.info(line)
    return data


def materialize_policy(path: str, out_dir: str | Path) -> tuple[str, tuple | None]:
    """A full checkpoint directory for the starting policy: `path` itself, or a LoRA adapter merged into
    its base and saved under `out_dir`. TRL loads the KL reference model from the policy's own path,
    so that path must hold the starting policy, not the base under an adapter.

    Also returns the merged (model, tokenizer) when it merged one now (else None), so a caller that
    wants the policy in memory (`corral.loading.load_model`) need not read it back from disk."""
    if not is_adapter(path):
        return path, None
    out = Path(out_dir)
    if (out / "config.json").is_file():
        return str(out), None
    logger.info("merging LoRA adapter %s into its base -> %s", path, out)
    model, tokenizer = load_model(path)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out), (model, tokenizer)


def prompts_per_step(method: str, args) -> float:
    """Distinct prompts one optimizer step trains on (each sampled num_generations times; 2 for online DPO)."""
    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
    return batch if method == "online_dpo" else batch / args.num_generations


class PromptProgressCallback(ProgressCallback):
    """The training bar of transformers' ProgressCallback, counted in prompts, so it shows prompts/s."""

    def __init__(self, per_step: float):
        super().__init__()
        self.per_step = per_step

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(total=math.ceil(state.max_steps * self.per_step), unit="prompt",
                                     dynamic_ncols=True, desc="train")
        self.current_step = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar.update(round((state.global_step - self.current_step) * self.per_step))
            self.current_step = state.global_step


def count_prompts_in_progress_bar(trainer, method: str) -> None:
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(PromptProgressCallback(prompts_per_step(method, trainer.args)))


def strip_padding(ids: list[int], pad_id: int) -> list[int]:
    """`ids` without trailing `pad_id`s (the pad token is never an end-of-turn token: modeling.load_tokenizer)."""
    end = len(ids)
    while end and ids[end - 1] == pad_id:
        end -= 1
    return list(ids[:end])


def _component_logging_online_dpo():
    from trl.experimental.online_dpo import OnlineDPOTrainer

    class ComponentLoggingOnlineDPOTrainer(OnlineDPOTrainer):
        """TRL's experimental OnlineDPOTrainer that also logs `rewards/<component>/mean`, as GRPO/RLOO do,
        and hands reward functions `completion_ids` without the right padding it leaves in them (GRPO
        and RLOO pass each completion up to its end-of-turn token, which the `stop` rule reads)."""

        def __init__(self, *a, reward_funcs=None, **kw):
            self._component_scores = defaultdict(list)
            reward_funcs = [self._recording(f) for f in reward_funcs or []]
            super().__init__(*a, reward_funcs=reward_funcs, **kw)

        def _recording(self, func):
            def record(*args, completion_ids=None, **kwargs):
                if completion_ids is not None:
                    completion_ids = [strip_padding(ids, self._tokenizer.pad_token_id) for ids in completion_ids]
                scores = func(*args, completion_ids=completion_ids, **kwargs)
                self._component_scores[func.__name__] += [s for s in scores if s is not None and s == s]
                return scores

            record.__name__ = func.__name__
            return record

        def log(self, logs, start_time=None):
            for name, values in self._component_scores.items():
                if values:
                    logs[f"rewards/{name}/mean"] = sum(values) / len(values)
            self._component_scores.clear()
            super().log(logs, start_time)

    return ComponentLoggingOnlineDPOTrainer
