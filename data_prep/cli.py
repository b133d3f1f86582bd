"""`python -m data_prep <command>`: data tools as argparse subcommands.

Each command is a pair of functions, `add_<command>(subparsers)` registering its arguments and a
`run` handler it sets as default; `main` dispatches. A data or recipe mistake ends with one `error:`
line on stderr and exit status 1, not a traceback.

    python -m data_prep convert data/raw.json --out data/clean.jsonl --format alpaca --on-bad-rows skip
    python -m data_prep inspect recipes/tiny/sft/full.yaml --n 3 [--max_length 128 ...recipe overrides]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.errors import CorralError
from data_prep.formats import FORMATS, KINDS
from data_prep.mixture import DatasetSpec, load_source


def add_convert(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert one source to corral's standard schema (JSON lines)",
        description="Convert INPUT to the standard schema of --kind and print one summary line.",
    )
    p.add_argument("input", help="a .jsonl/.json(.gz), .parquet or .csv file, a save_to_disk directory or a Hub id")
    p.add_argument("--out", required=True, help="output .jsonl file")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="input format (default: detect)")
    p.add_argument("--kind", choices=KINDS, help="what the rows will feed (default: what the format gives)")
    p.add_argument("--split", default="train", help="split of a DatasetDict or Hub dataset (default: train)")
    p.add_argument("--on-bad-rows", default="error", choices=["error", "skip"], help="stop at or skip bad rows")
    p.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    spec = DatasetSpec(path=args.input, format=args.format, split=args.split)
    source = load_source(spec, args.kind, on_bad_rows=args.on_bad_rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for _, row in source.rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    r = source.report
    print(
        f"{r.path}: read {r.rows_read} rows, wrote {len(source.rows)} to {out}, "
        f"format {r.format} ({r.kind}), {r.rejected_text()}"
    )
    return 0


def add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show what a recipe trains on: rendered samples with trained tokens marked, length statistics",
        description="Render a few samples of RECIPE's data mixture exactly as training tokenizes them, "
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
    p.set_defaults(run=run_inspect, takes_overrides=True)


def run_inspect(args: argparse.Namespace) -> int:
    from data_prep.inspect_recipe import inspect_recipe

    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    print("\n".join(inspect_recipe([args.recipe, *args.overrides], n=args.n, color=color, method=args.method)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description="corral data tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_convert(subparsers)
    add_inspect(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return args.run(args)
    except CorralError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
