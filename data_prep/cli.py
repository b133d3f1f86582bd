"""`python -m data_prep <command>`: data tools as argparse subcommands.

Each command is a pair of functions, `add_<command>(subparsers)` registering its arguments and a
`run` handler it sets as default; `main` dispatches. A data or recipe mistake ends with one `error:`
line on stderr and exit status 2 (as every corral entry point), not a traceback.

    python -m data_prep convert data/raw.json --out data/clean.jsonl --format alpaca --on-bad-rows skip
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from corral.errors import CorralError
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
    p.add_argument("--ignore-columns", default="", metavar="COL,...",
                   help="comma-separated columns to drop before conversion (a label or score the format does not use)")
    p.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    ignored = [c.strip() for c in args.ignore_columns.split(",") if c.strip()]
    spec = DatasetSpec(path=args.input, format=args.format, split=args.split, ignore_columns=ignored or None)
    source = load_source(spec, args.kind, on_bad_rows=args.on_bad_rows, options="cli")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for _, row in source.rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    r = source.report
    print(
        f"{r.path}: read {r.rows_read} rows, wrote {len(source.rows)} to {out}, "
        f"format {r.format} ({r.kind}), {r.rejected_text()}{r.unused_text()}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description="corral data tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_convert(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CorralError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
