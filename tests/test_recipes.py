"""Every shipped recipe parses onto its script's dataclasses, opens with the command that runs it,
and names an accelerate config that exists."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if not p.relative_to(REPO / "recipes").parts[0].startswith("_"))


def script_types(method: str, recipe: Path | None = None):
    """The dataclasses each method's entry script parses its recipe onto (method = recipes/<model>/<method>/;
    recipes/examples/ name their script in their first-line command)."""
    if method == "examples":  # the same rule `python -m finetune.inspect_recipe` uses
        from finetune.inspect_recipe import recipe_method

        method = recipe_method(str(recipe))
    if method in ("sft", "long_context"):  # long_context: SFT at an extended context (RoPE scaling)
        from trl import ModelConfig, SFTConfig

        from finetune.sft import SFTScriptArguments

        return (SFTScriptArguments, SFTConfig, ModelConfig), "finetune/sft.py"
    if method == "rl":  # the TRL config class depends on the recipe's `method: grpo|rloo|online_dpo`
        from finetune.rl import recipe_types

        return recipe_types([str(recipe)]), "finetune/rl.py"
    if method == "rs":
        from finetune.rejection_sampling import RECIPE_TYPES

        return RECIPE_TYPES, "finetune/rejection_sampling.py"
    if method == "reward":
        from trl import ModelConfig, RewardConfig

        from reward.train import RewardScriptArguments

        return (RewardScriptArguments, RewardConfig, ModelConfig), "reward/train.py"
    if method in ("dpo", "kto", "orpo", "cpo", "simpo"):  # one script; the recipe's `method` picks the TRL config
        from finetune.preference import peek_method, recipe_types

        assert peek_method([str(recipe)]) == method, f"{recipe}: method is not {method}"
        return recipe_types([str(recipe)]), "finetune/dpo.py"
    raise AssertionError(f"no entry script registered for recipes/*/{method}/ in tests/test_recipes.py")


def test_recipes_exist():
    assert len(RECIPES) >= 6
    assert {p.parent.name for p in RECIPES} >= {"sft"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(REPO / "recipes")))
def test_recipe_parses_and_opens_with_its_command(recipe):
    from corral.recipe import parse_recipe

    types, script = script_types(recipe.parent.name, recipe)
    first = recipe.read_text().splitlines()[0]
    rel = recipe.relative_to(REPO)
    assert first.startswith("# accelerate launch") and first.endswith(f"{script} {rel}"), first
    cfg = re.search(r"--config_file (\S+)", first)
    assert cfg and (REPO / cfg.group(1)).is_file(), first
    # GPU recipes (bf16) are still parsed on CPU-only machines: TrainingArguments refuses bf16 without a GPU.
    trains = any(f.name == "bf16" for t in types for f in dataclasses.fields(t))  # rejection sampling: no TrainingArguments
    cpu = [] if torch.cuda.is_available() or not trains else ["--bf16", "false", "--use_cpu", "true"]
    parsed = parse_recipe(types, [str(recipe), *cpu], required=("model_name_or_path", "output_dir"))
    assert parsed[0].datasets, "a recipe must name its data"
