"""`--help` of the training scripts, answered before torch, transformers and TRL are imported.

A trainer's recipe keys are fields of corral's dataclasses and of TRL's configs; importing TRL's
configs imports torch and transformers (8-15 s on a small machine), which is too slow for `--help`.
The key tables are already generated from those dataclasses into docs/recipe-reference.md by
`python -m apps.recipe_docs --write` (tests/test_recipe_docs.py fails when it is stale), so `--help`
prints the script's docstring and its tables from that file. It never writes a file.

Call `exit_on_help(__name__, __doc__, __file__)` in an entry script after `from __future__` and
before its heavy imports.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "recipe-reference.md"

# Per script: the `##` sections and `###` tables of docs/recipe-reference.md that hold its recipe keys.
SCRIPT_TABLES: dict[str, tuple[str, ...]] = {
    "finetune/sft.py": ("## Keys every trainer shares", "## SFT (finetune/sft.py)"),
    "finetune/dpo.py": ("## Keys every trainer shares", "## DPO family (finetune/dpo.py)"),
    "reward/train.py": ("## Keys every trainer shares", "## Reward model (reward/train.py)"),
    "finetune/rl.py": ("## Keys every trainer shares", "## Online RL (finetune/rl.py)"),
    "finetune/rejection_sampling.py": ("### each entry of `datasets:`", "## Rejection sampling",
                                       "### reward keys (`RewardArguments`"),
}


def script_key(path: str) -> str:
    """`finetune/sft.py` for any path to that file."""
    p = Path(path).resolve()
    return f"{p.parent.name}/{p.name}"


def reference_blocks(text: str, wanted: tuple[str, ...]) -> list[tuple[str, list[list[str]]]]:
    """(table title, rows of [key, type, default, help]) of the tables under the wanted headings.

    A `## ` heading selects every table up to the next `## `; a `### ` heading selects one table.
    """
    blocks, section, title, rows, take_section = [], "", None, [], False

    def flush():
        if title is not None and rows:
            blocks.append((title, list(rows)))

    for line in text.splitlines():
        if line.startswith("## "):
            flush()
            title, rows = None, []
            section, take_section = line, any(line.startswith(w) for w in wanted if w.startswith("## "))
        elif line.startswith("### "):
            flush()
            rows = []
            take = take_section or any(line.startswith(w) for w in wanted if w.startswith("### "))
            title = line[4:].replace("`", "") if take else None
        elif title is not None and line.startswith("| `"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
            if len(cells) == 4:
                rows.append([c.strip("`") if i < 3 else c.replace("`", "") for i, c in enumerate(cells)])
    flush()
    return blocks


def render_help(doc: str, script: str, reference: Path = REFERENCE) -> str:
    usage = f"usage: {script} RECIPE.yaml [--key value ...]\n"
    parts = [usage, (doc or "").strip(), ""]
    if not reference.is_file():
        parts.append(f"Recipe keys: see docs/recipe-reference.md in the corral checkout ({reference} not found).")
        return "\n".join(parts) + "\n"
    blocks = reference_blocks(reference.read_text(encoding="utf-8"), SCRIPT_TABLES.get(script, ()))
    parts.append("Recipe keys (YAML `key: value`; `--key value` on the command line overrides the recipe), "
                 "from docs/recipe-reference.md:")
    for title, rows in blocks:
        parts.append(f"\n{title}:")
        for key, tp, default, help_text in rows:
            parts.append(f"  {key}: {tp} = {default}")
            if help_text:
                parts.append(textwrap.fill(help_text, width=100, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(parts) + "\n"


def exit_on_help(module_name: str, doc: str | None, path: str, argv: list[str] | None = None) -> None:
    """Print the script's help and exit 0 when it runs as `__main__` with -h or --help."""
    argv = sys.argv[1:] if argv is None else argv
    if module_name == "__main__" and any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(render_help(doc or "", script_key(path)))
        raise SystemExit(0)
