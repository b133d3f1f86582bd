"""Reward components for online RL and rejection sampling: rule rewards and a reward model, weighted.

    components = build_rewards(reward_args, eos_token_ids, columns_of(prompt_rows), source)  # checked
    GRPOTrainer(..., reward_funcs=components)       # with args.reward_weights = weights_of(components)
    scores = score_components(components, rows, texts, token_ids)  # {name: [score or None per response]}
    total = weighted_total(scores, weights_of(components))
    scored = sample_and_score(model, tokenizer, rows, components, num_samples=8, temperature=1.0)

Each component is a callable with TRL's reward-function signature and a `__name__`, so TRL logs it
on its own as `rewards/<name>/mean` next to the weighted `reward`. The weighted sum follows TRL's
rule exactly: sum of weight x score over the components that scored the response (a `None`, "does
not apply", is left out); a response no component scored has no reward (NaN). Rejection sampling
uses the same `weighted_total`, so a best-of-n pick ranks responses the way GRPO's advantages do.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

from corral.errors import CorralError
from reward.rules import RULES, completion_text, format_pattern

REWARD_MODEL = "reward_model"


class RewardError(CorralError):
    """A reward setting that cannot work with this data or checkpoint; one line."""


@dataclass
class RewardArguments:
    """Which rewards score a response, and their weights (shared by finetune/rl.py and rejection sampling)."""

    rewards: dict[str, float] = field(
        default_factory=lambda: {"exact_answer": 1.0, "format": 0.5},
        metadata={"help": "Rule rewards and their weights, {name: weight}. Rules: " + ", ".join(
            f"{name} ({desc})" for name, (_, _, desc) in RULES.items()) + "."})
    reward_model: str | None = field(
        default=None, metadata={"help": "A trained reward model directory (reward/ output, a sequence classifier "
                                "with one label); adds the component `reward_model`."})
    reward_model_weight: float = field(default=1.0, metadata={"help": "Weight of the reward model's score."})
    reward_model_batch_size: int = field(default=32, metadata={"help": "Responses per reward-model forward pass."})
    length_target: int = field(
        default=32, metadata={"help": "The `length` rule: responses up to this many tokens get no penalty."})

    def __post_init__(self):
        unknown = [name for name in self.rewards if name not in RULES]
        if unknown:
            hint = " (the reward model is set with reward_model: DIR)" if REWARD_MODEL in unknown else ""
            raise ValueError(f"rewards: unknown reward '{unknown[0]}'{hint}; available rules: {', '.join(RULES)}")
        if not self.rewards and not self.reward_model:
            raise ValueError("no reward: list rules under rewards: {name: weight} or set reward_model: DIR")
        bad = {k: v for k, v in self.rewards.items() if not math.isfinite(v)}
        if bad or not math.isfinite(self.reward_model_weight):
            raise ValueError(f"reward weights must be finite numbers, got {bad or self.reward_model_weight}")
        if self.length_target < 1:
            raise ValueError(f"length_target must be >= 1 token, got {self.length_target}")


class RewardComponent:
    """One named, weighted reward in TRL's signature: `(prompts, completions, completion_ids, **columns)`."""

    def __init__(self, name: str, weight: float, fn, needs: tuple[str, ...] = ()):
        self.__name__ = name  # TRL's get_callable_name reads this: the metric is rewards/<name>/mean
        self.name, self.weight, self.fn, self.needs = name, weight, fn, needs

    def __call__(self, prompts=None, completions=(), completion_ids=None, **columns) -> list[float | None]:
        return list(self.fn(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns))

    def __repr__(self):
        return f"RewardComponent({self.name!r}, weight={self.weight})"


class RewardModelScorer:
    """Scores (prompt, response) with a trained reward model (`reward.score`), loaded once on first use.

    A callable rather than the model itself, so TRL calls it like the rules and logs it as
    `rewards/reward_model/mean`, and scoring is the same code the reward-model evaluation uses."""

    def __init__(self, path: str, batch_size: int):
        self.path, self.batch_size = path, batch_size
        self._loaded = None

    def __call__(self, prompts, completions, **_) -> list[float]:
        import reward

        if self._loaded is None:
            self._loaded = reward.load_reward_model(self.path)
        model, tokenizer = self._loaded
        texts = [completion_text(c) for c in completions]
        return reward.score(model, prompts, texts, tokenizer=tokenizer, batch_size=self.batch_size)


def check_reward_model(path: str) -> None:
    """One-line error unless `path` is a reward checkpoint (reads its config only)."""
    import reward

    if not Path(path).exists():
        raise RewardError(f"reward_model {path}: no such directory")
    try:
        reward.check_reward_checkpoint(path)
    except reward.RewardModelError as err:
        raise RewardError(f"reward_model {err}") from None


def build_rewards(args: RewardArguments, eos_token_ids: list[int], columns: list[str] | dict[str, list],
                  source: str = "the prompt data") -> list[RewardComponent]:
    """The components `args` asks for, checked against the data before any training or generation.

    `columns` is the prompt data's column names, or {name: values} to also check that a column a
    rule reads has values (e.g. `reference` on every row that is not all null) and that every
    `answer_format` has one `{answer}` slot.
    """
    components = []
    for name, weight in args.rewards.items():
        fn, needs, _ = RULES[name]
        for col in needs:
            _check_column(name, col, columns, source)
        bound = functools.partial(fn, eos_token_ids=list(eos_token_ids), target=args.length_target)
        components.append(RewardComponent(name, weight, bound, needs))
    if "format" in args.rewards and isinstance(columns, dict):
        for fmt in {f for f in columns["answer_format"] if f is not None}:
            try:
                format_pattern(fmt)
            except ValueError as err:
                raise RewardError(f"{source}: column answer_format: {err}") from None
    if args.reward_model:
        check_reward_model(args.reward_model)
        components.append(RewardComponent(REWARD_MODEL, args.reward_model_weight,
                                          RewardModelScorer(args.reward_model, args.reward_model_batch_size)))
    return components


def _check_column(rule: str, col: str, columns, source: str) -> None:
    if col not in columns:
        have = ", ".join(sorted(columns)) or "none"
        raise RewardError(f"rewards: rule '{rule}' reads column '{col}', which {source} lacks (columns: {have}); "
                          f"add it to the rows or drop '{rule}' from rewards")
    if isinstance(columns, dict) and all(v is None for v in columns[col]):
        raise RewardError(f"rewards: rule '{rule}' reads column '{col}', which is empty on every row of {source}")


def columns_of(rows) -> dict[str, list]:
    """{column: values} of a datasets.Dataset or a list of row dicts (a column a row lacks is None there)."""
    if hasattr(rows, "column_names"):
        return {name: rows[name] for name in rows.column_names}
    return {k: [r.get(k) for r in rows] for k in dict.fromkeys(k for r in rows for k in r)}


def weights_of(components: list[RewardComponent]) -> list[float]:
    return [c.weight for c in components]


def score_components(components: list[RewardComponent], rows: list[dict], texts: list[str],
                     token_ids: list[list[int]]) -> dict[str, list[float | None]]:
    """Every component's score of every response; `rows[i]` is the prompt row `texts[i]` answers."""
    if not (len(rows) == len(texts) == len(token_ids)):
        raise ValueError(f"{len(rows)} rows, {len(texts)} responses and {len(token_ids)} token lists")
    columns = {k: v for k, v in columns_of(rows).items() if k not in ("prompt", "completion", "completion_ids")}
    prompts = [r["prompt"] for r in rows]
    out = {}
    for c in components:
        scores = c(prompts=prompts, completions=texts, completion_ids=token_ids, **columns)
        out[c.name] = [None if s is None or (isinstance(s, float) and math.isnan(s)) else float(s) for s in scores]
    return out


def weighted_total(scores: dict[str, list[float | None]], weights: list[float] | dict[str, float]) -> list[float]:
    """Per response: sum of weight x score over components that scored it; NaN if none did (as TRL)."""
    names = list(scores)
    if not isinstance(weights, dict):
        if len(weights) != len(names):
            raise ValueError(f"{len(weights)} weights for {len(names)} components")
        weights = dict(zip(names, weights))
    n = len(next(iter(scores.values()), []))
    totals = []
    for i in range(n):
        parts = [weights[k] * scores[k][i] for k in names if scores[k][i] is not None]
        totals.append(math.fsum(parts) if parts else math.nan)
    return totals


def nanmean(values) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else math.nan


# --- sampling and scoring a policy -------------------------------------------------------------------


@dataclass
class Scored:
    """Responses to `rows` (num_samples per row, row-major) with every component's score and the total."""

    rows: list[dict]
    generations: list  # evals.generation.Generation, one per response
    scores: dict[str, list[float | None]]
    totals: list[float]
    num_samples: int

    def means(self) -> dict[str, float]:
        """Mean of each component over the responses it scored, and of the weighted total (`reward`)."""
        return {**{k: nanmean(v) for k, v in self.scores.items()}, "reward": nanmean(self.totals)}

    def per_prompt(self) -> list[float]:
        """Each prompt's mean weighted reward over its samples (NaN if none was scored)."""
        k = self.num_samples
        return [nanmean(self.totals[i:i + k]) for i in range(0, len(self.totals), k)]

    def records(self) -> list[dict]:
        """One JSON-ready dict per response: prompt index and row, response, scores, total."""
        out = []
        for i, g in enumerate(self.generations):
            row = self.rows[i // self.num_samples]
            out.append({"prompt_index": i // self.num_samples, "sample": i % self.num_samples, **row,
                        "response": g.text, "ended": g.ended_with_eos, "n_tokens": g.n_tokens,
                        "scores": {k: v[i] for k, v in self.scores.items()}, "reward": self.totals[i]})
        return out


def sample_and_score(model, tokenizer, rows: list[dict], components: list[RewardComponent], *, num_samples: int = 1,
                     temperature: float = 0.0, max_new_tokens: int = 64, batch_size: int = 32, seed: int = 0,
                     desc: str | None = None) -> Scored:
    """`num_samples` responses per chat prompt row (batched generation with KV cache), scored.

    temperature 0 is greedy decoding (then one sample per row is enough). The progress bar counts
    prompts (one per response) and shows prompts/s.
    """
    from evals.formatting import chat_prompt
    from evals.generation import generate

    texts = [chat_prompt(tokenizer, r["prompt"]) for r in rows]
    was_training = model.training
    model.eval()
    try:
        gens = generate(model, tokenizer, [t for t in texts for _ in range(num_samples)], add_special_tokens=False,
                        max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=temperature > 0,
                        temperature=temperature if temperature > 0 else 1.0, seed=seed, desc=desc)
    finally:
        model.train(was_training)
    expanded = [r for r in rows for _ in range(num_samples)]
    scores = score_components(components, expanded, [g.text for g in gens], [g.token_ids for g in gens])
    return Scored(rows, gens, scores, weighted_total(scores, weights_of(components)), num_samples)


def heldout_scores(model, tokenizer, rows: list[dict], components: list[RewardComponent], *, samples: int,
                   temperature: float, max_new_tokens: int, batch_size: int, seed: int,
                   label: str) -> dict[str, Scored]:
    """`greedy`: one greedy answer per prompt (what a user gets); with `samples` > 0 also `sampled`:
    that many answers per prompt at `temperature`, whose mean is the policy's expected reward, the
    quantity RL maximises."""
    common = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    out = {"greedy": sample_and_score(model, tokenizer, rows, components, desc=f"held-out {label}, greedy", **common)}
    if samples:
        out["sampled"] = sample_and_score(model, tokenizer, rows, components, num_samples=samples,
                                          temperature=temperature, desc=f"held-out {label}, sampled", **common)
    return out


def reward_change(before: Scored, after: Scored, seed: int = 0) -> dict:
    """Mean per-prompt change of the weighted reward, with a 95% paired bootstrap interval over prompts."""
    from evals.bootstrap import bootstrap_ci

    diffs = [a - b for a, b in zip(after.per_prompt(), before.per_prompt(), strict=True)
             if not (math.isnan(a) or math.isnan(b))]
    return {"mean": nanmean(diffs), "ci95": bootstrap_ci(diffs, seed=seed), "prompts": len(diffs)}


def format_change(change: dict) -> str:
    """A `reward_change` result as `reward change +0.062 (95% CI +0.023 to +0.101, 40 prompts)`."""
    lo, hi = change["ci95"] or (math.nan, math.nan)
    return f"reward change {change['mean']:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}, {change['prompts']} prompts)"


def format_means_table(rows: list[tuple[str, dict[str, float]]], title: str = "model") -> str:
    """A markdown table, one line per (label, means) with one column per component and `reward` last."""
    cols = list(dict.fromkeys(k for _, m in rows for k in m if k != "reward")) + ["reward"]
    lines = [f"| {title} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, means in rows:
        lines.append(f"| {label} | " + " | ".join(f"{means.get(c, math.nan):.3f}" for c in cols) + " |")
    return "\n".join(lines)
