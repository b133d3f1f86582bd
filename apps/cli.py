"""`corral`: one command for what a user does around training.

    corral inspect recipes/tiny/sft/full.yaml            # what a recipe trains on
    corral plan RECIPE --accelerate-config CFG            # will it fit in GPU memory
    corral train sft recipes/tiny/sft/full.yaml --accelerate-config accelerate_configs/cpu.yaml
    corral chat outputs/tiny-sft-full                     # talk to a model in the terminal
    corral compare --suite ... --model a=DIR --model b=DIR --out reports/x
    corral export outputs/tiny-sft-lora --out exported/tiny-sft   # merged model + model card
    corral arena outputs/tiny-sft-full outputs/tiny-sft-lora       # side by side in the browser

Each subcommand imports torch/transformers only after its arguments are parsed, so `--help` answers
at once. Training itself is `accelerate launch finetune/<method>.py RECIPE`; `corral train` prints and
runs the same launch through `python -m corral.launch` (same arguments, one-line errors on every config).
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = r"(torch|transformers|peft|trl|accelerate|datasets|huggingface_hub|gradio)(\.|$)"
TRAIN_SCRIPTS = {
    "sft": "finetune/sft.py",
    "dpo": "finetune/dpo.py",  # also kto, orpo, cpo, simpo: the recipe's `method:` picks
    "reward": "reward/train.py",
    "rl": "finetune/rl.py",  # grpo, rloo, online_dpo: the recipe's `method:` picks
    "rs": "finetune/rejection_sampling.py",
}


def _wants_help(argv: list[str]) -> bool:
    return any(a in ("-h", "--help") for a in argv)


def run_inspect(argv: list[str]) -> int:
    from finetune.inspect_recipe import main

    return main(argv)


def run_plan(argv: list[str]) -> int:
    from finetune.plan import main

    return main(argv)


def run_compare(argv: list[str]) -> int:
    if _wants_help(argv):  # the parser lives in evals.config, which does not import torch
        from evals.config import parser

        parser().parse_args(argv)
    from evals.compare import main

    return main(argv)


def run_chat(argv: list[str]) -> int:
    from apps.chat import main

    return main(argv)


def run_export(argv: list[str]) -> int:
    from apps.export import main

    return main(argv)


def run_arena(argv: list[str]) -> int:
    from apps.arena import main

    return main(argv)


def train_command(method: str, recipe: str, accelerate_config: str | None, overrides: list[str]) -> list[str]:
    """The launch line that trains `recipe` with `method`'s entry script: `python -m corral.launch`, which takes
    `accelerate launch`'s arguments and runs its launcher, but ends a user mistake with one line and exit 2
    on every config (plain `accelerate launch` adds its own traceback; docs/errors.md)."""
    script = ROOT / TRAIN_SCRIPTS[method]
    try:
        script_arg = os.path.relpath(script)
    except ValueError:  # another drive on Windows
        script_arg = str(script)
    config = ["--config_file", accelerate_config] if accelerate_config else []
    return [sys.executable, "-m", "corral.launch", *config, script_arg, recipe, *overrides]


def run_train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="corral train", allow_abbrev=False,
        description="Print and run `python -m corral.launch [--config_file CFG] <script> RECIPE [--key value ...]` "
                    "(accelerate launch with one-line errors). "
                    "Recipe keys: `corral train METHOD --help` (or `python <script> --help`).")
    parser.add_argument("method", choices=sorted(TRAIN_SCRIPTS),
                        help=", ".join(f"{m}: {s}" for m, s in TRAIN_SCRIPTS.items()))
    parser.add_argument("recipe", help="the recipe YAML, e.g. recipes/tiny/sft/full.yaml")
    parser.add_argument("--accelerate-config", metavar="CFG",
                        help="a file from accelerate_configs/ (default: accelerate's own default config)")
    parser.add_argument("--dry-run", action="store_true", help="print the launch line, do not run it")
    if argv and argv[0] in TRAIN_SCRIPTS and _wants_help(argv[1:]):
        from corral.script_help import render_help

        sys.stdout.write(f"corral train {argv[0]} RECIPE [--accelerate-config CFG] [--key value ...] runs:\n\n")
        sys.stdout.write(render_help(_script_doc(TRAIN_SCRIPTS[argv[0]]), TRAIN_SCRIPTS[argv[0]]))
        return 0
    args, overrides = parser.parse_known_args(argv)
    if args.accelerate_config and not Path(args.accelerate_config).is_file():
        print(f"error: --accelerate-config {args.accelerate_config}: no such file "
              f"(configs: {', '.join(sorted(os.path.relpath(p) for p in (ROOT / 'accelerate_configs').glob('*.yaml')))})",
              file=sys.stderr)
        return 2
    command = train_command(args.method, args.recipe, args.accelerate_config, overrides)
    print(shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    return subprocess.call(command)


def _script_doc(script: str) -> str:
    """An entry script's module docstring, read without importing it."""
    import ast

    return ast.get_docstring(ast.parse((ROOT / script).read_text(encoding="utf-8"))) or ""


COMMANDS = {
    "inspect": (run_inspect, "show what a recipe trains on: samples as tokenized, row counts, lengths"),
    "plan": (run_plan, "estimate per-GPU memory of a recipe with an accelerate config"),
    "train": (run_train, "print and run the launch line of a training recipe (accelerate, one-line errors)"),
    "chat": (run_chat, "chat with one or more models in the terminal (streamed, multi-turn)"),
    "compare": (run_compare, "compare models side by side on an eval suite (report.html, results.json)"),
    "export": (run_export, "merge a run's adapter, write safetensors + tokenizer + model card to a new directory"),
    "arena": (run_arena, "local web page: one prompt, each model's streamed answer, votes to a preference JSONL"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return ("usage: corral COMMAND [ARGS ...]   (corral COMMAND --help for its options)\n\n"
            + (__doc__ or "").split("\n\n")[0] + "\n\ncommands:\n" + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    # Deprecation notices that one pinned library raises about another (peft reading transformers'
    # `is_gradient_checkpointing`) are for corral's maintainers, not for someone chatting with a model.
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=LIBRARIES)
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.5)
        hint = f"did you mean 'corral {close[0]}'?" if close else f"commands: {', '.join(COMMANDS)}"
        print(f"error: unknown command '{name}'; {hint}", file=sys.stderr)
        return 2
    return COMMANDS[name][0](rest) or 0


if __name__ == "__main__":
    sys.exit(main())
