"""Reward models: Bradley-Terry training (`reward/train.py`) and batched scoring (`reward.score`).

    import reward
    rewards = reward.score("outputs/tiny-rm", prompts, responses, batch_size=32)

`score` is imported on first use, so `import reward.<module>` stays light.
"""

__all__ = ["score", "pairwise", "load_reward_model", "check_reward_checkpoint", "RewardModelError"]


def __getattr__(name):
    if name in __all__:
        from evals import reward_model as scoring

        return getattr(scoring, name)
    raise AttributeError(f"module 'reward' has no attribute {name!r}")
