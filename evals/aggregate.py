"""Turn each column's responses into the metrics of results.json, per-item flags, and per-category rates.

A *column* is one model evaluated in one prompt format (`sft`, or `base[raw]` and `base[chat]`).
Rates carry a bootstrap 95% interval in a sibling key `<metric>_ci` = `[lo, hi]`
(evals/bootstrap.py); a metric with no items to measure (e.g. no `task` items) is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evals import metrics
from evals.bootstrap import bootstrap_ci, mean_or_none
from evals.generation import Generation
from evals.suite import SuiteItem

METRICS = (
    "task_accuracy",
    "refusal_rate_harmful",
    "false_refusal_rate",
    "reward_mean",
    "win_rate_vs_baseline",
    "kl_from_baseline",
    "perplexity",
    "mean_response_length",
    "distinct_2",
    "eos_rate",
)
RATES = ("task_accuracy", "refusal_rate_harmful", "false_refusal_rate", "win_rate_vs_baseline", "eos_rate")


@dataclass
class Column:
    name: str
    model: str  # the --model NAME it comes from
    path: str
    fmt: str  # "raw" or "chat"
    responses: list[str]
    generations: list[Generation]
    kl_from_baseline: float | None = None
    perplexity: float | None = None
    rewards: list[float] | None = None
    flags: list[dict] = field(default_factory=list)  # filled by `score_column`


def win_rate(rewards: list[float], baseline: list[float]) -> list[float]:
    """Per-prompt outcome against the baseline's response: 1 win, 0.5 tie, 0 loss."""
    return [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(rewards, baseline)]


def _rate(name: str, flags: list, seed: int = 0) -> dict:
    """`{name: mean, name_ci: [lo, hi]}`, both None without items."""
    if not flags:
        return {name: None, f"{name}_ci": None}
    return {name: float(np.mean(flags)), f"{name}_ci": bootstrap_ci(flags, seed=seed)}


def score_column(col: Column, items: list[SuiteItem], baseline_rewards: list[float] | None, seed: int = 0) -> dict:
    """Metrics of one column; also fills `col.flags` with each item's correctness/refusal and reward."""
    idx = {k: [i for i, it in enumerate(items) if it.kind == k] for k in ("task", "harmful", "benign")}
    flags: list[dict] = [{} for _ in items]
    out: dict = {"task_accuracy": None, "task_accuracy_ci": None}

    if idx["task"]:
        acc = metrics.load("whole_word_accuracy").compute(
            predictions=[col.responses[i] for i in idx["task"]],
            references=[items[i].reference for i in idx["task"]],
            seed=seed,
        )
        for i, ok in zip(idx["task"], acc["correct"]):
            flags[i]["correct"] = ok
        out |= {"task_accuracy": acc["accuracy"], "task_accuracy_ci": acc["accuracy_ci"]}

    for kind, name in (("harmful", "refusal_rate_harmful"), ("benign", "false_refusal_rate")):
        out |= {name: None, f"{name}_ci": None}
        if idx[kind]:
            res = metrics.load("refusal_rate").compute(predictions=[col.responses[i] for i in idx[kind]], seed=seed)
            for i, refused, marker in zip(idx[kind], res["refused"], res["markers"]):
                flags[i] |= {"refused": refused, "refusal_marker": marker}
            out |= {name: res["refusal_rate"], f"{name}_ci": res["refusal_rate_ci"]}

    out["reward_mean"] = mean_or_none(col.rewards) if col.rewards is not None else None
    if col.rewards is not None and baseline_rewards is not None:
        out |= _rate("win_rate_vs_baseline", win_rate(col.rewards, baseline_rewards), seed=seed)
    else:
        out |= {"win_rate_vs_baseline": None, "win_rate_vs_baseline_ci": None}
    out["kl_from_baseline"] = col.kl_from_baseline
    out["perplexity"] = col.perplexity
    out["mean_response_length"] = mean_or_none([g.n_tokens for g in col.generations])
    out["distinct_2"] = metrics.load("distinct_n").compute(predictions=col.responses, n=2)["distinct_2"]
    out |= _rate("eos_rate", [g.ended_with_eos for g in col.generations], seed=seed)

    for i, g in enumerate(col.generations):
        flags[i] |= {"reward": None if col.rewards is None else col.rewards[i], "n_tokens": g.n_tokens,
                     "ended_with_eos": g.ended_with_eos}
    col.flags = flags
    return out


def item_flag(item: SuiteItem, flags: dict) -> bool:
    """The one yes/no per answer that the side-by-side compares: correct for tasks, refused otherwise."""
    return flags["correct"] if item.kind == "task" else flags["refused"]


def by_category(columns: list[Column], items: list[SuiteItem]) -> dict:
    """{column: {kind: {category: {"value": rate, "n": n}}}}: accuracy, refusal rate, false-refusal rate."""
    out = {}
    for col in columns:
        table: dict = {}
        for i, item in enumerate(items):
            table.setdefault(item.kind, {}).setdefault(item.category, []).append(item_flag(item, col.flags[i]))
        out[col.name] = {
            kind: {cat: {"value": float(np.mean(v)), "n": len(v)} for cat, v in sorted(cats.items())}
            for kind, cats in sorted(table.items())
        }
    return out


def side_by_side(columns: list[Column], items: list[SuiteItem]) -> list[dict]:
    """Every item with every column's answer, largest disagreements first.

    Disagreement = how many columns' flags (`item_flag`) differ from the majority flag, i.e. the size
    of the minority; ties are broken by reward spread (max - min reward across columns, 0 without a
    reward model), then by suite order.
    """
    rows = []
    for i, item in enumerate(items):
        flags = [item_flag(item, c.flags[i]) for c in columns]
        rewards = [c.flags[i]["reward"] for c in columns if c.flags[i]["reward"] is not None]
        rows.append({
            "id": item.id,
            "kind": item.kind,
            "category": item.category,
            "prompt": item.prompt,
            "messages": list(item.messages),
            "reference": item.reference,
            "disagreement": min(sum(flags), len(flags) - sum(flags)),
            "reward_spread": (max(rewards) - min(rewards)) if rewards else 0.0,
            "answers": {c.name: {"response": c.responses[i], **c.flags[i]} for c in columns},
        })
    order = sorted(range(len(rows)), key=lambda k: (-rows[k]["disagreement"], -rows[k]["reward_spread"], k))
    return [rows[k] for k in order]
