"""Compare base, instruct and safety-tuned models side by side on one suite.

    python -m evals.compare --suite tinyworld/suites/tiny_world.jsonl \\
        --model base=outputs/tiny-base --model sft=outputs/tiny-sft --model dpo=outputs/tiny-dpo \\
        --reward-model outputs/tiny-rm --out reports/compare-001 --text heldout.txt

Models are loaded one at a time next to the baseline (which stays loaded for KL), so memory holds at
most two policies and, at the end, the reward model. Writes results.json, report.md, report.html and
side_by_side.jsonl into --out; metric definitions are in evals/README.md.
"""

from __future__ import annotations

import gc
import re
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from corral.errors import USER_ERROR_EXIT, CorralError
from corral.loading import load_model
from corral.threads import pick_threads
from evals import aggregate, plots, report
from evals.config import CompareConfig, ConfigError, parse_args
from evals.divergence import kl_from_baseline, perplexity, same_vocabulary
from evals.formatting import adds_bos, format_prompt, is_base, trim_raw_response
from evals.generation import generate
from evals.reward_model import check_reward_checkpoint, load_reward_model, score
from evals.suite import describe, load_suite


def baseline_model(cfg: CompareConfig) -> str:
    """The --model NAME whose column is the baseline (the first model unless --baseline says)."""
    names = list(cfg.models())
    if cfg.baseline is None:
        return names[0]
    name = cfg.baseline.split("[", 1)[0]
    if name not in names:
        raise ConfigError(f"--baseline {cfg.baseline} names no --model (models: {', '.join(names)})")
    return name


def baseline_column(cfg: CompareConfig, columns: list[str]) -> str:
    if cfg.baseline is None or cfg.baseline in columns:
        return cfg.baseline or columns[0]
    if len(columns) > 1:
        raise ConfigError(f"--baseline {cfg.baseline} is ambiguous with --base-format both: use one of {', '.join(columns)}")
    raise ConfigError(f"--baseline {cfg.baseline}: no such column (columns: {', '.join(columns)})")


def evaluate_model(cfg, name, path, items, model, tokenizer, base, text):
    """Generate every column of one model and measure its drift from `base` = (model, tokenizer)."""
    formats = cfg.formats(name, is_base(tokenizer, name, set(cfg.raw)))
    ppl = perplexity(model, tokenizer, text, cfg.ppl_block_size, cfg.batch_size) if text else None
    columns = []
    for fmt in formats:
        col_name = name if len(formats) == 1 else f"{name}[{fmt}]"
        prompts = [format_prompt(tokenizer, list(it.messages), fmt) for it in items]
        gens = generate(model, tokenizer, prompts, adds_bos(fmt), cfg.max_new_tokens, cfg.batch_size,
                        cfg.do_sample, cfg.temperature, cfg.seed, desc=col_name)
        responses = [trim_raw_response(g.text) if fmt == "raw" else g.text.strip() for g in gens]
        col = aggregate.Column(col_name, name, str(path), fmt, responses, gens, perplexity=ppl)
        base_model = model if base is None else base[0]
        if base is None or same_vocabulary(tokenizer, base[1]):
            col.kl_from_baseline = kl_from_baseline(model, base_model, gens, tokenizer.pad_token_id, cfg.batch_size)
        columns.append(col)
    return columns


def check_paths(cfg: CompareConfig) -> None:
    """Fail before any model is loaded, not after the first one has been evaluated."""
    for name, path in cfg.models().items():
        if not Path(path).is_dir():
            raise ConfigError(f"--model {name}={path}: no such directory")
    for flag, path in (("--reward-model", cfg.reward_model), ("--text", cfg.text)):
        if path and not Path(path).exists():
            raise ConfigError(f"{flag} {path}: no such file or directory")
    if cfg.reward_model:
        check_reward_checkpoint(cfg.reward_model)


def run(cfg: CompareConfig) -> dict:
    items = load_suite(cfg.suite)
    check_paths(cfg)
    baseline_model(cfg)
    text = Path(cfg.text).read_text(encoding="utf-8") if cfg.text else None
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    models = cfg.models()
    first = baseline_model(cfg)
    order = [first] + [n for n in models if n != first]
    columns, base = [], None
    for name in order:
        model, tokenizer = load_model(models[name], device, cfg.dtype)
        columns += evaluate_model(cfg, name, models[name], items, model, tokenizer, base, text)
        if base is None:
            base = (model, tokenizer)
            base_col = baseline_column(cfg, [c.name for c in columns])
        else:
            del model
            gc.collect()
    del base
    columns.sort(key=lambda c: list(models).index(c.model))  # report in command-line order

    if cfg.reward_model:
        rm, rm_tok = load_reward_model(cfg.reward_model, device, cfg.dtype)
        for col in columns:
            col.rewards = score(rm, [list(it.messages) for it in items], col.responses, tokenizer=rm_tok,
                               batch_size=cfg.batch_size)
        del rm
    base_rewards = next(c.rewards for c in columns if c.name == base_col)
    results = {
        "models": {c.name: aggregate.score_column(c, items, base_rewards, cfg.seed) for c in columns},
        "suite": describe(cfg.suite, items),
        "config": asdict(cfg) | {"baseline": base_col, "device": device, "columns": {
            c.name: {"model": c.model, "path": c.path, "format": c.fmt} for c in columns}},
    }
    results["by_category"] = aggregate.by_category(columns, items)
    figures = {
        "category_bars": plots.category_bars(results["by_category"]),
        "safety_scatter": plots.safety_scatter(results["models"]),
        "reward_vs_kl": plots.reward_vs_kl(results["models"]),
        "length_histogram": plots.length_histogram({c.name: [g.n_tokens for g in c.generations] for c in columns}),
    }
    report.write_all(Path(cfg.out), results, aggregate.side_by_side(columns, items), figures)
    return results


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_args(argv)
        print(f"torch CPU threads: {pick_threads('eval')}")
        results = run(cfg)
    except CorralError as e:  # ConfigError, SuiteError, CheckpointError, RewardModelError, ...
        print("error: " + re.sub(r"\s*\n\s*", " ", str(e).strip()), file=sys.stderr)
        return USER_ERROR_EXIT
    print("\n".join(report.metrics_table(results["models"])))
    print(f"\nwrote {cfg.out}/report.html, report.md, results.json, side_by_side.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
