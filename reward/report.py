"""What a trained reward model is worth on held-out pairs, written next to its checkpoint.

`heldout_accuracy.json`: pairwise accuracy (share of pairs where chosen scores strictly above
rejected), the reward margins' mean and quartiles, and the reward scale (mean and std of all
scores). `reward_margins.png`: histogram of chosen - rejected; mass left of 0 is where the model
prefers the rejected answer.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HELDOUT_JSON = "heldout_accuracy.json"
MARGINS_PNG = "reward_margins.png"


def pairwise_summary(chosen: list[float], rejected: list[float]) -> dict:
    """Accuracy and margin statistics of paired rewards."""
    if len(chosen) != len(rejected) or not chosen:
        raise ValueError(f"need equally many chosen and rejected rewards, got {len(chosen)} and {len(rejected)}")
    margins = [c - r for c, r in zip(chosen, rejected)]
    q1, median, q3 = statistics.quantiles(margins, n=4) if len(margins) > 1 else (margins[0],) * 3
    scores = chosen + rejected
    return {
        "pairs": len(margins),
        "accuracy": sum(m > 0 for m in margins) / len(margins),
        "ties": sum(m == 0 for m in margins),
        "margin_mean": statistics.fmean(margins),
        "margin_quartiles": [q1, median, q3],
        "reward_mean": statistics.fmean(scores),
        "reward_std": statistics.pstdev(scores),
    }


def margin_histogram(margins: list[float], path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.hist(margins, bins=40, color="#4a7ab5")
    ax.axvline(0, color="#c0392b", linewidth=1.2)
    ax.set_xlabel("reward(chosen) - reward(rejected)")
    ax.set_ylabel("held-out pairs")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_heldout_report(out_dir: str | Path, chosen: list[float], rejected: list[float], source: str) -> dict:
    """Write heldout_accuracy.json and reward_margins.png into `out_dir`; returns the summary."""
    out_dir = Path(out_dir)
    summary = {"source": source, **pairwise_summary(chosen, rejected)}
    (out_dir / HELDOUT_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    margins = [c - r for c, r in zip(chosen, rejected)]
    title = f"{out_dir.name}: held-out accuracy {summary['accuracy']:.1%} on {summary['pairs']} pairs"
    margin_histogram(margins, out_dir / MARGINS_PNG, title)
    return summary
