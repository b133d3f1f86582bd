"""Score (prompt, response) pairs with a scalar reward model: evals' view of `evals.reward_model`.

The scoring itself (checkpoint checks, chat formatting, batching) lives in `evals/reward_model.py`, shared
with reward training and RL; this module keeps the positional `score(model, tokenizer, prompts,
responses)` form that evals and its tests use.
"""

from __future__ import annotations

from pathlib import Path

from evals.reward_model import RewardModelError, check_reward_checkpoint, load_reward_model
from evals.reward_model import score as _score

__all__ = ["RewardModelError", "check_reward_checkpoint", "load_reward_model", "score"]


def score(model_dir_or_model, tokenizer=None, prompts=(), responses=(), batch_size: int = 16) -> list[float]:
    """One reward per (prompt, response); see `evals.reward_model.score`."""
    if not isinstance(model_dir_or_model, (str, Path)) and tokenizer is None:
        raise RewardModelError("score: pass the tokenizer with a loaded model")
    return _score(model_dir_or_model, list(prompts), list(responses), tokenizer=tokenizer, batch_size=batch_size)
