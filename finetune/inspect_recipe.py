"""`python -m finetune.inspect_recipe RECIPE.yaml` (or `corral inspect`): what a recipe's training run will see, before paying for it.

    python -m finetune.inspect_recipe recipes/tiny/sft/full.yaml --n 3
    python -m finetune.inspect_recipe recipes/tiny/sft/full.yaml --max_length 64   # recipe overrides, as in training

Shows a few samples as the model receives them, the chat template's rendering with the trained
(loss-masked) tokens marked, `[[like this]]` (or in color on a terminal), and for the whole mixture:
rows per source after weighting, duplicates removed, token-length percentiles and how many samples
exceed `max_length`.

Nothing here re-implements training: the recipe is parsed onto the entry script's dataclasses by
`corral.recipe.parse_recipe` (so a typo fails here as it would in training), the data and the tokens
come from the functions `finetune/sft.py` trains with (`load_data`, `tokenize_rows`; `finetune.preference`
for DPO) with the recipe's seed, and the tokenizer from `corral.loading.load_tokenizer`. The same
guards run, so a sample that would stop training (empty loss mask, untrained end-of-turn, dropped tool
calls) stops inspection with the same line.

SFT recipes (`recipes/<model>/sft/`) and DPO recipes (`recipes/<model>/dpo/` with `method: dpo`)
are supported. A DPO pair is tokenized by TRL's own `DPOTrainer._prepare_dataset` (TRL is pinned,
and the function needs no model), and shown as the prompt followed by the chosen and the rejected
completion, which are what DPO trains on. KTO, ORPO, CPO and SimPO tokenize in their own trainers
and are not rendered yet.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from corral.errors import CorralError

MARKERS = {"plain": ("[[", "]]"), "color": ("\x1b[1;32m", "\x1b[0m")}  # color: bold green


def recipe_method(recipe: str, method: str | None = None) -> str:
    """The recipe's method: `method` when given, else its directory (`recipes/<model>/<method>/`), else the
    script its first-line command launches (`# accelerate launch ... finetune/sft.py ...`)."""
    method = method or Path(recipe).parent.name
    if method not in ("sft", "dpo") and Path(recipe).is_file():
        first = Path(recipe).read_text().partition("\n")[0]
        method = {"finetune/sft.py": "sft", "finetune/dpo.py": "dpo"}.get(
            next((w for w in first.split() if w.endswith(".py")), ""), method)
    if method not in ("sft", "dpo"):
        raise CorralError(
            f"{recipe}: inspect supports SFT and DPO recipes (recipes/<model>/sft/ or dpo/), not method '{method}'; "
            "pass --method sft or --method dpo if the recipe is kept elsewhere")
    return method


def _parse(types: tuple[type, ...], argv: list[str]):
    import torch

    from corral.recipe import parse_recipe

    # Parsing builds TRL's training config, which refuses bf16 without a GPU; inspecting needs no GPU.
    cpu = [] if torch.cuda.is_available() else ["--bf16", "false", "--use_cpu", "true"]
    return parse_recipe(types, [argv[0], *cpu, *argv[1:]], required=("model_name_or_path", "output_dir"))


def render_masked(tokenizer, ids: list[int], mask: list[int], markers: tuple[str, str] = MARKERS["plain"]) -> str:
    """The decoded text of `ids` with each run of trained tokens (mask 1) between `markers`.

    Runs are decoded whole, so a character split across tokens is not broken; without the markers the
    text is exactly `tokenizer.decode(ids)`."""
    out, start = [], 0
    for end in range(1, len(ids) + 1):
        if end == len(ids) or mask[end] != mask[start]:
            text = tokenizer.decode(ids[start:end], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            out.append(f"{markers[0]}{text}{markers[1]}" if mask[start] else text)
            start = end
    return "".join(out)


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile (a value that occurs, never interpolated): q=0.5 is the median."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def length_lines(lengths: list[int], max_length: int | None, drop_long: bool, truncation_mode: str,
                 per: str = "sample", detail: str = "") -> list[str]:
    """Nearest-rank length percentiles and the count over `max_length` (with what training does to those)."""
    ordered = sorted(lengths)
    stats = ", ".join(f"p{round(q * 100)} {percentile(ordered, q)}" for q in (0.5, 0.9, 0.99))
    lines = [f"tokens per {per}{detail}: {stats}, max {ordered[-1]} ({len(ordered)} {per}s, {sum(ordered)} tokens)"]
    if max_length is not None:
        n_long = sum(n > max_length for n in lengths)
        fate = "dropped (drop_long_samples)" if drop_long else f"truncated ({truncation_mode})"
        lines.append(f"longer than max_length={max_length}: {n_long} ({n_long / len(lengths):.1%})"
                     + (f", {fate}" if n_long else ""))
    return lines


def pick_samples(source_counts: list[tuple[str, int]], n: int) -> list[tuple[int, str, int]]:
    """`n` training rows, taken from each source in turn: `(row index in train, source, 1-based index in source)`.

    Train rows are the sources' rows one source after another (see `data_prep.mixture`), and each
    source's block starts with its unique rows, so the first rows of each block are distinct."""
    starts, offset = [], 0
    for _, count in source_counts:
        starts.append(offset)
        offset += count
    picked, taken = [], [0] * len(source_counts)
    while len(picked) < min(n, offset):
        for s, (path, count) in enumerate(source_counts):
            if taken[s] < count and len(picked) < n:
                picked.append((starts[s] + taken[s], path, taken[s] + 1))
                taken[s] += 1
    return picked


def inspect_recipe(argv: list[str], n: int = 3, color: bool = False, method: str | None = None) -> list[str]:
    """The report's lines for `argv = [recipe.yaml, --key value, ...]` (recipe overrides as in training)."""
    markers = MARKERS["color" if color else "plain"]
    legend = f"{'green' if color else '[[...]]'} marks trained tokens"
    if recipe_method(argv[0], method) == "sft":
        return _inspect_sft(argv, n, markers, legend)
    return _inspect_dpo(argv, n, markers, legend)


def _inspect_sft(argv: list[str], n: int, markers: tuple[str, str], legend: str) -> list[str]:
    from trl import ModelConfig, SFTConfig

    from corral.loading import check_model_path, load_tokenizer
    from finetune.sft import SFTScriptArguments, load_data, tokenize_rows
    from finetune.sft_data import check_template_matches_official

    script, args, model_args = _parse((SFTScriptArguments, SFTConfig, ModelConfig), argv)
    check_model_path(model_args.model_name_or_path)
    data = load_data(script, args.seed)
    tokenizer = load_tokenizer(model_args.model_name_or_path, script.chat_template, model_args.model_revision)
    rows = data.train.to_list()
    if script.dataset_kind == "sft" and script.chat_template == "llama3":
        check_template_matches_official(tokenizer, rows[0]["messages"])
    # drop_long_samples=False keeps every row, so samples line up with rows; long ones are counted below.
    tokenized = tokenize_rows(rows, tokenizer, script, args, drop_long_samples=False)
    ids = tokenized.dataset["input_ids"]
    masks = tokenized.dataset["assistant_masks"] if script.dataset_kind == "sft" else [[1] * len(x) for x in ids]

    loss = "every token" if script.dataset_kind == "text" or not args.assistant_only_loss else "assistant turns only"
    lines = [
        f"recipe {argv[0]} (sft, {script.dataset_kind} rows): tokenizer {model_args.model_name_or_path} "
        f"(chat_template {script.chat_template}), loss on {loss}, max_length {args.max_length}",
        legend,
    ]
    picked = pick_samples([(s.path, s.train) for s in data.report.sources], n)
    for k, (row, path, index) in enumerate(picked, 1):
        n_tokens, n_trained = len(ids[row]), sum(masks[row])
        long = f", longer than max_length={args.max_length}" if args.max_length and n_tokens > args.max_length else ""
        lines += ["", f"--- sample {k}/{len(picked)}: {path} row {index} of its training rows; "
                      f"{n_tokens} tokens, {n_trained} trained{long} ---",
                  render_masked(tokenizer, ids[row], masks[row], markers)]
    lines += ["", "--- mixture ---", *data.report.summary_lines(),
              f"duplicates removed: {sum(s.duplicates for s in data.report.sources)}",
              *length_lines(tokenized.lengths, args.max_length, script.drop_long_samples, args.truncation_mode)]
    return lines


def dpo_tokenize(dataset, tokenizer, args):
    """`prompt_ids`/`chosen_ids`/`rejected_ids` per pair, by TRL's own `DPOTrainer._prepare_dataset`.

    It reads nothing from the trainer but the tokenizer, so it runs without a model. `max_length` is
    lifted so no pair is filtered out (rows stay aligned); the caller counts what training would cut."""
    import copy
    from types import SimpleNamespace

    from trl import DPOTrainer

    unfiltered = copy.copy(args)
    unfiltered.max_length = None
    return DPOTrainer._prepare_dataset(SimpleNamespace(_tokenizer=tokenizer), dataset, tokenizer, unfiltered, "train")


def _inspect_dpo(argv: list[str], n: int, markers: tuple[str, str], legend: str) -> list[str]:
    from trl import ModelConfig

    from corral.loading import check_model_path, load_tokenizer
    from data_prep.pair_lengths import effect, long_rows_line, report_of
    from data_prep.preference_data import load_preference_data
    from finetune.preference import PreferenceScriptArguments, method_classes, peek_method

    method = peek_method(argv)
    if method != "dpo":
        raise CorralError(f"{argv[0]}: inspect renders pairs as DPOTrainer tokenizes them; method {method} tokenizes "
                          "in its own trainer and is not rendered yet")
    config_cls, _ = method_classes(method)
    script, args, model_args = _parse((PreferenceScriptArguments, config_cls, ModelConfig), argv)
    check_model_path(model_args.model_name_or_path)
    data = load_preference_data(script, "preference", args.seed)
    tokenizer = load_tokenizer(model_args.model_name_or_path, script.chat_template, model_args.model_revision)
    pairs = dpo_tokenize(data.train, tokenizer, args)
    prompts, chosen, rejected = pairs["prompt_ids"], pairs["chosen_ids"], pairs["rejected_ids"]

    lines = [f"recipe {argv[0]} (dpo, preference rows): tokenizer {model_args.model_name_or_path} "
             f"(chat_template {script.chat_template}), loss on chosen and rejected completions, "
             f"max_length {args.max_length}", legend]
    picked = pick_samples([(s.path, s.train) for s in data.report.sources], n)
    width = len("rejected: ")
    for k, (row, path, index) in enumerate(picked, 1):
        p, c, r = prompts[row], chosen[row], rejected[row]
        lines += ["", f"--- sample {k}/{len(picked)}: {path} row {index} of its training rows; prompt {len(p)} "
                      f"tokens, chosen {len(c)} trained, rejected {len(r)} trained ---",
                  render_masked(tokenizer, p, [0] * len(p), markers),
                  "chosen:".ljust(width) + render_masked(tokenizer, c, [1] * len(c), markers),
                  "rejected:".ljust(width) + render_masked(tokenizer, r, [1] * len(r), markers)]
    longest = [len(p) + max(len(c), len(r)) for p, c, r in zip(prompts, chosen, rejected)]
    # the counts and the line finetune/dpo.py warns with, over TRL's own tokenization
    report = report_of([(len(p), n) for p, n in zip(prompts, longest)], args.max_length)
    lines += ["", "--- mixture ---", *data.report.summary_lines(),
              f"duplicates removed: {sum(s.duplicates for s in data.report.sources)}",
              *length_lines(longest, None, False, args.truncation_mode, per="pair",
                            detail=" (prompt + longer completion)"),
              long_rows_line(report, effect("dpo", args))
              or f"all {report.rows} pairs fit max_length={args.max_length}"]
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m finetune.inspect_recipe",
        description="Show what a recipe trains on. Render a few samples of RECIPE's data mixture exactly as training tokenizes them, "
        "trained tokens marked, then per-source row counts, duplicates removed and token-length percentiles. "
        "Other --key value options override the recipe, as in training.",
        allow_abbrev=False,  # so recipe overrides such as --num_train_epochs are never taken for --n
    )
    p.add_argument("recipe", help="an SFT or DPO recipe, e.g. recipes/tiny/sft/full.yaml")
    p.add_argument("--n", type=int, default=3, help="samples to render, taken from each source in turn (default: 3)")
    p.add_argument("--color", default="auto", choices=["auto", "always", "never"],
                   help="mark trained tokens in color (auto: when stdout is a terminal) or with [[...]] (never)")
    p.add_argument("--method", choices=["sft", "dpo"],
                   help="recipe method when the path does not say it (default: the recipe's directory name)")
    return p


def run_inspect(args: argparse.Namespace) -> int:
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    print("\n".join(inspect_recipe([args.recipe, *args.overrides], n=args.n, color=color, method=args.method)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, args.overrides = parser.parse_known_args(argv)
    try:
        return run_inspect(args)
    except CorralError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2  # corral.errors.USER_ERROR_EXIT, as every entry point


if __name__ == "__main__":
    sys.exit(main())
