"""`CompareConfig`: every knob of `python -m evals.compare`, with its help text and default.

The command line is built from these fields (`parser()`), so the help, the defaults and the checks
live in one place. Checks that only need the flags run in `__post_init__`; a mistake, argparse's own
included (a missing --suite, `--batch-size x`), is a one-line `ConfigError` naming the flag and the
fix. It is a `CorralError`, the one class of user error every corral command reports as
`error: ...` with exit code 2.

Why not `corral.recipe.parse_recipe`: that reads a YAML recipe plus `--key value` overrides, while
this command has no recipe file, repeats `--model NAME=PATH`, spells flags with dashes and needs
`--help`; argparse does those, and these dataclass fields stay the one source of the options.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields

from corral.errors import CorralError
from evals.formatting import FORMATS


class ConfigError(CorralError, ValueError):
    """A wrong or missing command-line option of `python -m evals.compare`, in one line."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises `ConfigError` instead of printing its usage and exiting (`--help` still exits 0)."""

    def error(self, message: str):
        raise ConfigError(message)


@dataclass
class CompareConfig:
    suite: str = field(metadata={"help": "suite JSONL (format: evals/SUITE_FORMAT.md)"})
    out: str = field(metadata={"help": "output directory for results.json, report.md/html, side_by_side.jsonl"})
    model: list[str] = field(default_factory=list, metadata={
        "help": "NAME=PATH, repeatable; PATH is a checkpoint or a LoRA adapter directory"})
    reward_model: str | None = field(default=None, metadata={
        "help": "sequence-classification reward checkpoint (num_labels=1): adds reward_mean and win rates"})
    base_format: str = field(default="raw", metadata={
        "help": "how base models see prompts: raw ('Question: ...\\nAnswer:'), chat (Llama 3 template), "
        "or both (two columns NAME[raw], NAME[chat])"})
    raw: list[str] = field(default_factory=list, metadata={
        "help": "NAME of a model to treat as base even though its tokenizer has a chat template; repeatable"})
    baseline: str | None = field(default=None, metadata={
        "help": "column that KL and win rates are measured against (default: the first model)"})
    text: str | None = field(default=None, metadata={"help": "held-out plain text file for perplexity"})
    max_new_tokens: int = field(default=64, metadata={"help": "generation budget per response"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generate / scoring call"})
    do_sample: bool = field(default=False, metadata={"help": "sample instead of greedy decoding"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature (with --do-sample)"})
    seed: int = field(default=0, metadata={"help": "seed for sampling and for the bootstrap"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, ... (auto: cuda if available)"})
    dtype: str = field(default="auto", metadata={
        "help": "weights dtype: auto (as saved), float32, bfloat16, float16"})
    ppl_block_size: int = field(default=512, metadata={"help": "tokens per perplexity block"})

    def __post_init__(self):
        if not self.model:
            raise ConfigError("give at least one --model NAME=PATH")
        names = list(self.models())
        if len(set(names)) != len(names):
            raise ConfigError(f"--model names must be unique, got {names}")
        unknown = sorted(set(self.raw) - set(names))
        if unknown:
            raise ConfigError(f"--raw {unknown[0]} names no --model (models: {', '.join(names)})")
        if self.base_format not in (*FORMATS, "both"):
            raise ConfigError(f"--base-format {self.base_format!r}: expected raw, chat or both")
        if self.do_sample and self.temperature <= 0:
            raise ConfigError(f"--temperature {self.temperature}: must be > 0 with --do-sample")
        for flag in ("max_new_tokens", "batch_size", "ppl_block_size"):
            if getattr(self, flag) < 1:
                raise ConfigError(f"--{flag.replace('_', '-')} {getattr(self, flag)}: must be >= 1")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"--dtype {self.dtype!r}: expected auto, float32, bfloat16 or float16")

    def models(self) -> dict[str, str]:
        """{NAME: PATH} in command-line order."""
        out = {}
        for spec in self.model:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path or "[" in name:
                raise ConfigError(f"--model {spec!r}: expected NAME=PATH, NAME without '[' (e.g. sft=outputs/tiny-sft)")
            out.setdefault(name, path)
            if out[name] != path:
                raise ConfigError(f"--model names must be unique, {name!r} is given twice")
        return out

    def formats(self, name: str, is_base: bool) -> list[str]:
        """Prompt formats (one column each) for model `name`: chat for instruct models."""
        if not is_base:
            return ["chat"]
        return list(FORMATS) if self.base_format == "both" else [self.base_format]


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m evals.compare",
        description="Compare base, instruct and safety-tuned models side by side on one suite.",
    )
    for f in fields(CompareConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata["help"]
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help=help_)
        elif f.type == "list[str]":
            p.add_argument(flag, action="append", default=[], metavar="NAME" if f.name == "raw" else "NAME=PATH", help=help_)
        else:
            kind = {"int": int, "float": float}.get(f.type, str)
            required = f.default is MISSING and f.default_factory is MISSING
            default = None if required else f.default
            p.add_argument(flag, type=kind, required=required, default=default,
                           help=help_ + ("" if required or default is None else f" (default: {default})"))
    return p


def parse_args(argv: list[str] | None = None) -> CompareConfig:
    return CompareConfig(**vars(parser().parse_args(argv)))
