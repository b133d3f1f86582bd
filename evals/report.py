"""Write a comparison to disk: results.json, side_by_side.jsonl, report.md (+ plots/*.png), report.html.

report.html is self-contained (plots embedded as base64 PNG), so it can be mailed or attached to an
issue as one file. Both reports show the models x metrics table, the plots, and the first
`SIDE_BY_SIDE_SHOWN` prompts of the side-by-side (largest disagreements first); the jsonl has all.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from evals.aggregate import METRICS, RATES

SIDE_BY_SIDE_SHOWN = 20
PLOT_TITLES = {
    "category_bars": "Per-category rates",
    "safety_scatter": "Violation vs false refusal",
    "reward_vs_kl": "Reward vs KL from baseline",
    "length_histogram": "Response length",
}


def fmt_value(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    if value is None:
        return "–"
    text = f"{value:.3g}" if name not in RATES else f"{value:.2f}"
    ci = metrics.get(f"{name}_ci")
    return f"{text} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else text


def answer_flag(kind: str, answer: dict) -> str:
    if kind == "task":
        return "correct" if answer["correct"] else "wrong"
    return "refused" if answer["refused"] else "answered"


def training_curves(results: dict) -> dict[str, bytes]:
    """`train_<model>_loss` (and `_rewards`): the curves corral wrote beside each compared run's manifest."""
    from corral.run_report import curve_images

    return {f"train_{name}_{kind}": png for name, col in results.get("config", {}).get("columns", {}).items()
            for kind, png in curve_images(col.get("path") or "").items()}


def plot_titles(plots: dict) -> dict[str, str]:
    extra = {n: f"Training curve of {n[6:].rsplit('_', 1)[0]} ({n.rsplit('_', 1)[1]})" for n in plots
             if n.startswith("train_")}
    return {**PLOT_TITLES, **extra}


def write_all(out: Path, results: dict, rows: list[dict], plots: dict[str, bytes | None]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plots = {**plots, **training_curves(results)}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    with open(out / "side_by_side.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    plots = {k: v for k, v in plots.items() if v is not None}
    (out / "plots").mkdir(exist_ok=True)
    for name, png in plots.items():
        (out / "plots" / f"{name}.png").write_bytes(png)
    (out / "report.md").write_text(markdown(results, rows, plots))
    (out / "report.html").write_text(html_report(results, rows, plots))


def _header(results: dict) -> list[str]:
    suite, cfg = results["suite"], results["config"]
    counts = ", ".join(f"{n} {k}" for k, n in suite["counts_by_kind"].items())
    return [
        f"Suite `{suite['path']}`: {suite['n_items']} items ({counts}).",
        f"Baseline for KL and win rate: `{cfg['baseline']}`. Decoding: "
        + (f"sampling, temperature {cfg['temperature']}, seed {cfg['seed']}" if cfg["do_sample"] else "greedy")
        + f", at most {cfg['max_new_tokens']} new tokens. Rates show a bootstrap 95% interval.",
    ]


def metrics_table(models: dict) -> list[str]:
    """The metrics x models table as markdown lines (also what the CLI prints).

    One row per metric and one column per model: ten metrics fit down a page, not across it.
    """
    lines = ["| metric | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    return lines + [f"| {k} | " + " | ".join(fmt_value(m, k) for m in models.values()) + " |" for k in METRICS]


def markdown(results: dict, rows: list[dict], plots: dict[str, bytes]) -> str:
    lines = ["# corral model comparison", "", *_header(results), "", "## Models x metrics", ""]
    lines += metrics_table(results["models"])
    for name, title in plot_titles(plots).items():
        if name in plots:
            lines += ["", f"## {title}", "", f"![{title}](plots/{name}.png)"]
    lines += ["", f"## Side by side (first {min(SIDE_BY_SIDE_SHOWN, len(rows))} of {len(rows)}; all in side_by_side.jsonl)"]
    cell = lambda s: html.escape(s).replace("|", "\\|").replace("\n", "<br>")  # noqa: E731
    for row in rows[:SIDE_BY_SIDE_SHOWN]:
        lines += ["", f"### {row['id']} ({row['kind']}/{row['category']}): disagreement {row['disagreement']}, "
                  f"reward spread {row['reward_spread']:.3g}", "", f"> {cell(row['prompt'])}"]
        if row["reference"]:
            lines += ["", f"Reference: `{row['reference']}`"]
        lines += ["", "| model | flag | reward | response |", "|---|---|---|---|"]
        for name, a in row["answers"].items():
            reward = "–" if a["reward"] is None else f"{a['reward']:.3g}"
            lines.append(f"| {name} | {answer_flag(row['kind'], a)} | {reward} | {cell(a['response'])} |")
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}.refused{color:#a40}.answered,.correct{color:#060}
.wrong{color:#a00}pre{white-space:pre-wrap;margin:0;font-size:90%}img{max-width:100%}"""


def html_report(results: dict, rows: list[dict], plots: dict[str, bytes]) -> str:
    e = html.escape
    models = results["models"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>corral model comparison</title>",
             f"<style>{CSS}</style></head><body><h1>corral model comparison</h1>"]
    parts += [f"<p>{e(line).replace('`', '')}</p>" for line in _header(results)]
    parts.append("<h2>Models x metrics</h2><table id='metrics'><tr><th>metric</th>")
    parts += [f"<th>{e(name)}</th>" for name in models] + ["</tr>"]
    for k in METRICS:
        parts.append(f"<tr><th>{e(k)}</th>" + "".join(f"<td class='num'>{e(fmt_value(m, k))}</td>" for m in models.values()) + "</tr>")
    parts.append("</table>")
    for name, title in plot_titles(plots).items():
        if name in plots:
            data = base64.b64encode(plots[name]).decode()
            parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{data}'>")
    parts.append(f"<h2>Side by side</h2><p>First {min(SIDE_BY_SIDE_SHOWN, len(rows))} of {len(rows)} prompts, "
                 "largest disagreement first; all in side_by_side.jsonl.</p>")
    for row in rows[:SIDE_BY_SIDE_SHOWN]:
        parts.append(f"<h3>{e(row['id'])} ({e(row['kind'])}/{e(row['category'])}): disagreement "
                     f"{row['disagreement']}, reward spread {row['reward_spread']:.3g}</h3><pre>{e(row['prompt'])}</pre>")
        if row["reference"]:
            parts.append(f"<p>Reference: <code>{e(row['reference'])}</code></p>")
        parts.append("<table class='sbs'><tr><th>model</th><th>flag</th><th>reward</th><th>response</th></tr>")
        for name, a in row["answers"].items():
            flag = answer_flag(row["kind"], a)
            reward = "–" if a["reward"] is None else f"{a['reward']:.3g}"
            parts.append(f"<tr><th>{e(name)}</th><td class='{flag}'>{flag}</td><td class='num'>{reward}</td>"
                         f"<td><pre>{e(a['response'])}</pre></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
