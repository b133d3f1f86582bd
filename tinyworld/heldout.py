"""Quickstart's before/after check: compare models on the tiny-world suite with default paths.

    python -m tinyworld.heldout --model base=outputs/tiny-base --model sft=outputs/tiny-sft-full

Same as `python -m evals.compare --suite tinyworld/suites/tiny_world.jsonl --out reports/heldout ...`;
any other `evals.compare` flag passes through, and an explicit --suite or --out wins.
"""

from __future__ import annotations

import sys
from pathlib import Path

from evals.compare import main as compare_main

SUITE = Path(__file__).resolve().parent / "suites" / "tiny_world.jsonl"  # tinyworld/suites/
OUT = "reports/heldout"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--suite" not in argv:
        argv += ["--suite", str(SUITE)]
    if "--out" not in argv:
        argv += ["--out", OUT]
    return compare_main(argv)


if __name__ == "__main__":
    sys.exit(main())
