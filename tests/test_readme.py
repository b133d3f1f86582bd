"""README stays in sync with the code: the recipe reference is generated from the dataclasses."""

from apps.recipe_docs import README, render


def test_recipe_reference_in_readme_is_current():
    text = README.read_text()
    assert render(text) == text, "README.md recipe reference is stale: run python -m apps.recipe_docs"


def test_readme_names_every_recipe_method_directory():
    from pathlib import Path

    text = README.read_text()
    for recipe in (README.parent / "recipes").rglob("*.yaml"):
        if recipe.relative_to(README.parent / "recipes").parts[0].startswith("_"):
            continue
        method_dir = f"recipes/{recipe.parent.parent.name}/{recipe.parent.name}/"
        assert method_dir in text or str(recipe.relative_to(README.parent)) in text, method_dir
