"""The report's figures, each returned as PNG bytes (matplotlib, Agg backend: no display needed).

The report embeds the bytes as base64 in report.html (one self-contained file) and also writes them
under `plots/` for report.md.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

KIND_TITLES = {
    "task": "task accuracy (higher is better)",
    "harmful": "refusal rate on harmful (higher is safer)",
    "benign": "false-refusal rate on benign (lower is better)",
}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def category_bars(by_category: dict) -> bytes:
    """One panel per kind: grouped bars of each column's rate per category."""
    columns = list(by_category)
    kinds = [k for k in KIND_TITLES if any(k in by_category[c] for c in columns)]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(8, 2.8 * len(kinds)), squeeze=False)
    width = 0.8 / max(len(columns), 1)
    for ax, kind in zip(axes[:, 0], kinds):
        cats = sorted({cat for c in columns for cat in by_category[c].get(kind, {})})
        for j, col in enumerate(columns):
            values = [by_category[col].get(kind, {}).get(cat, {}).get("value", 0.0) for cat in cats]
            ax.bar([x + j * width for x in range(len(cats))], values, width, label=col)
        ax.set_xticks([x + width * (len(columns) - 1) / 2 for x in range(len(cats))], cats, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(KIND_TITLES[kind], fontsize=10)
    # outside the axes: inside, it covers bars that reach 1.0
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _png(fig)


def _errorbar(ax, x, y, xci, yci, label):
    xerr = None if xci is None else [[x - xci[0]], [xci[1] - x]]
    yerr = None if yci is None else [[y - yci[0]], [yci[1] - y]]
    ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=label)


def _annotate(ax, points: dict[str, tuple[float, float]]):
    """Name each point; columns that land on the same spot share one comma-separated label."""
    spots: dict[tuple, list[str]] = {}
    for name, (x, y) in points.items():
        spots.setdefault((round(x, 3), round(y, 3)), []).append(name)
    for (x, y), names in spots.items():
        ax.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)


def safety_scatter(models: dict) -> bytes | None:
    """Violation rate (1 - refusal on harmful) against false-refusal rate; the ideal is the origin."""
    points = {}
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, m in models.items():
        if m["refusal_rate_harmful"] is None or m["false_refusal_rate"] is None:
            continue
        ci = m["refusal_rate_harmful_ci"]
        points[name] = (m["false_refusal_rate"], 1 - m["refusal_rate_harmful"])
        _errorbar(ax, *points[name], m["false_refusal_rate_ci"], None if ci is None else [1 - ci[1], 1 - ci[0]], name)
    if not points:
        plt.close(fig)
        return None
    _annotate(ax, points)
    ax.set(xlim=(-0.05, 1.05), ylim=(-0.05, 1.05), xlabel="false-refusal rate (benign)",
           ylabel="violation rate (harmful, 1 - refusal)", title="safety trade-off (95% CI)")
    ax.grid(alpha=0.3)
    return _png(fig)


def reward_vs_kl(models: dict) -> bytes | None:
    """Mean reward against KL from the baseline: how much reward each nat of drift bought."""
    points = {n: m for n, m in models.items() if m["reward_mean"] is not None and m["kl_from_baseline"] is not None}
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, m in points.items():
        _errorbar(ax, m["kl_from_baseline"], m["reward_mean"], None, None, name)
    _annotate(ax, {n: (m["kl_from_baseline"], m["reward_mean"]) for n, m in points.items()})
    ax.set(xlabel="KL from baseline (nats/token)", ylabel="mean reward", title="reward vs KL")
    ax.grid(alpha=0.3)
    return _png(fig)


def length_histogram(lengths: dict[str, list[int]]) -> bytes:
    """Response lengths in tokens per column (step outlines, so overlapping columns stay readable)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max((max(v) for v in lengths.values() if v), default=1)
    bins = range(0, top + 2, max(1, (top + 1) // 30))
    for name, values in lengths.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=name)
    ax.set(xlabel="response length (tokens)", ylabel="responses", title="response lengths")
    ax.legend(fontsize=8)
    return _png(fig)
