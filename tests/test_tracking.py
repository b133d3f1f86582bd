"""Tracking: TensorBoard events from the tiny recipes, a tracker that is not installed is a one-line recipe
error, and every finished run leaves loss.png (reward curves for preference/RL) and corral's model card."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from corral.recipe import RecipeError, parse_recipe
from corral.run_report import write_curves
from tests.after_training import REPO, lora_run


@pytest.fixture(scope="module")
def run_dir(tiny_small, tmp_path_factory):
    return lora_run(tiny_small, tmp_path_factory.getbasetemp() / "after-training")


def test_every_tiny_training_recipe_logs_to_tensorboard():
    recipes = sorted((REPO / "recipes/tiny").rglob("*.yaml"))
    training = [p for p in recipes if "output_dir" in yaml.safe_load(p.read_text()) and
                "sft_recipe" not in yaml.safe_load(p.read_text())]
    assert len(training) > 10
    for path in training:
        assert yaml.safe_load(path.read_text()).get("report_to") == "tensorboard", path


def _sft_types():
    from trl import ModelConfig, SFTConfig

    from finetune.sft import SFTScriptArguments

    return SFTScriptArguments, SFTConfig, ModelConfig


def test_a_tracker_that_is_not_installed_is_a_one_line_recipe_error(tmp_path):
    assert find_spec("wandb") is None  # the dev environment does not install wandb
    recipe = tmp_path / "r.yaml"
    recipe.write_text((REPO / "recipes/tiny/sft/full.yaml").read_text().replace(
        "report_to: tensorboard", "report_to: wandb"))
    with pytest.raises(RecipeError) as err:
        parse_recipe(_sft_types(), [str(recipe)])
    assert str(err.value) == f"{recipe}: report_to: 'wandb' is not installed (pip install wandb), or use report_to: " \
                             "tensorboard or none"
    with pytest.raises(RecipeError) as err:
        parse_recipe(_sft_types(), [str(REPO / "recipes/tiny/sft/full.yaml"), "--report_to", "tensorbord"])
    assert str(err.value).startswith("command line: report_to: 'tensorbord' is not a tracker transformers knows; "
                                     "did you mean 'tensorboard'? use none, all or one of tensorboard, trackio")
    _, args, _ = parse_recipe(_sft_types(), [str(REPO / "recipes/tiny/sft/full.yaml"), "--report_to", "none"])
    assert args.report_to == []


def test_tensorboard_events_hold_the_runs_logged_losses(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((run_dir / "runs").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    logged = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    history = json.loads((run_dir / "run_manifest.json").read_text())["log_history"]
    expected = [(e["step"], e["loss"]) for e in history if "loss" in e]
    assert [s for s, _ in logged] == [s for s, _ in expected] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_finished_run_has_loss_png_and_corrals_card_instead_of_trls(run_dir):
    png = (run_dir / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not (run_dir / "rewards.png").exists()  # SFT logs no rewards
    card = (run_dir / "README.md").read_text()
    assert "[None]" not in card and "licence: license" not in card and "license: apache-2.0" in card
    assert "# sft-lora" in card and json.loads((run_dir / "run_manifest.json").read_text())["data"]["fingerprint"] in card
    merged = (run_dir / "merged" / "README.md").read_text()
    assert "The LoRA adapter is merged into the base: this directory is a full model." in merged


def test_preference_runs_get_reward_and_kl_curves(tmp_path):
    history = [{"step": s, "loss": 0.7 - 0.01 * s, "rewards/margins": 0.02 * s, "rewards/accuracies": 0.5 + 0.01 * s,
                "kl": 0.001 * s} for s in range(1, 21)] + [{"step": 20, "train_loss": 0.6}]
    written = write_curves(tmp_path, history)
    assert written == [tmp_path / "loss.png", tmp_path / "rewards.png"]
    from PIL import Image

    with Image.open(tmp_path / "rewards.png") as im:
        assert im.size == (3 * 320, 320)  # one panel per logged curve: margins, accuracies, kl


def test_compare_report_shows_the_training_curves_of_trained_models(run_dir, tmp_path):
    from evals.report import plot_titles, training_curves

    results = {"config": {"columns": {"base": {"path": str(run_dir.parent / "nothing-here")},
                                      "sft": {"path": str(run_dir)}, "sft-merged": {"path": str(run_dir / "merged")}}}}
    curves = training_curves(results)
    assert sorted(curves) == ["train_sft-merged_loss", "train_sft_loss"]
    assert curves["train_sft_loss"] == (run_dir / "loss.png").read_bytes()
    assert plot_titles(curves)["train_sft_loss"] == "Training curve of sft (loss)"
