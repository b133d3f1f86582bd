"""The rate metrics as `evaluate` modules shipped in this folder, loaded by local path (no Hub needed).

evaluate 0.4.6 loads a directory module from `<dir>/<dir name>.py`, so each metric lives in
`evals/metrics/<name>/<name>.py`. The modules import helpers from `evals` (the bootstrap, the
refusal list); importing them through `load` guarantees `evals` is importable when evaluate checks.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import evaluate

HERE = Path(__file__).resolve().parent
NAMES = ("whole_word_accuracy", "refusal_rate", "distinct_n")


@cache
def load(name: str) -> evaluate.EvaluationModule:
    if name not in NAMES:
        raise ValueError(f"unknown metric {name!r} (shipped: {', '.join(NAMES)})")
    return evaluate.load(str(HERE / name))
