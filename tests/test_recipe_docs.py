"""docs/recipe-reference.md is generated from the dataclasses and stays in sync; only --write writes it."""

import pytest

from apps import recipe_docs


@pytest.fixture(scope="module")
def rendered():
    return recipe_docs.render()


def test_recipe_reference_is_current(rendered):
    assert recipe_docs.DOC.read_text() == rendered, (
        f"{recipe_docs.DOC} is stale: run {recipe_docs.REGENERATE}")


def test_reference_covers_every_trainer(rendered):
    for heading in ("## SFT (finetune/sft.py)", "## DPO family (finetune/dpo.py)", "## Reward model (reward/train.py)",
                    "## Online RL (finetune/rl.py)", "## Rejection sampling (finetune/rejection_sampling.py)"):
        assert heading in rendered
    for config in ("SFTConfig", "DPOConfig", "KTOConfig", "ORPOConfig", "CPOConfig", "RewardConfig", "GRPOConfig",
                   "RLOOConfig", "OnlineDPOConfig"):
        assert f"TRL `{config}` keys beyond `TrainingArguments`" in rendered, config
    # One key from each layer: corral's own, a method's TRL key, a changed default, a shared training key.
    assert "| `special_token_init` |" in rendered and "| `desirable_weight` |" in rendered
    assert "| `learning_rate` | float | `2.0e-05` |" in rendered and "| `lora_r` | int | `16` |" in rendered
    assert "| `sft_overrides` |" in rendered and "| `reward_model_weight` |" in rendered


@pytest.mark.parametrize("argv", [["--help"], ["--wirte"], []])
def test_only_write_writes(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recipe_docs, "DOC", tmp_path / "docs" / "recipe-reference.md")
    monkeypatch.setattr(recipe_docs, "render", lambda: "# reference\n")
    try:
        recipe_docs.main(argv)
    except SystemExit:
        pass
    assert not recipe_docs.DOC.exists()
    recipe_docs.main(["--write"])
    assert recipe_docs.DOC.read_text() == "# reference\n"
    assert recipe_docs.main(["--check"]) == 0
