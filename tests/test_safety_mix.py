"""`safety_mix`: safety rows make up the set share of an SFT mixture; a share outside [0, 1] is a one-line
recipe error before any model loads."""

from __future__ import annotations

import json

import pytest

from data_prep.mixture import DatasetSpec, mix_rows
from data_prep.safety_mix import realised_share, with_safety_share


def _rows(path, prefix, n):
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{prefix} {i}?"},
                                                     {"role": "assistant", "content": f"{prefix} answer {i}."}]}) + "\n"
                            for i in range(n)))
    return DatasetSpec(str(path))


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_safety_rows_are_the_set_share_of_the_mixture(tmp_path, share):
    main = [_rows(tmp_path / "a.jsonl", "task", 300), _rows(tmp_path / "b.jsonl", "chat", 100)]
    safety = [_rows(tmp_path / "s.jsonl", "harm", 40)]
    specs = with_safety_share(main, safety, share, "sft", seed=0)
    mixture = mix_rows(specs, "sft", seed=0)
    assert realised_share(mixture.report, 1) == pytest.approx(share, abs=0.005)
    if share < 1:
        assert sum(s.train for s in mixture.report.sources[:2]) == 400  # the main sources are untouched


def test_no_safety_sources_is_the_plain_mixture(tmp_path):
    main = [_rows(tmp_path / "a.jsonl", "task", 10)]
    assert with_safety_share(main, [], 0.0, "sft") == main
    with pytest.raises(ValueError, match="safety_mix is 0.2 but safety_datasets is empty"):
        with_safety_share(main, [], 0.2, "sft")


@pytest.mark.parametrize("value, message", [
    ("1.5", "safety_mix must be a share of the training rows in [0, 1], got 1.5"),
    ("-0.1", "safety_mix must be a share of the training rows in [0, 1], got -0.1"),
])
def test_recipe_with_share_outside_0_1_is_one_line(tmp_path, value, message):
    from trl import ModelConfig, SFTConfig

    from corral.recipe import RecipeError, parse_recipe
    from finetune.sft import SFTScriptArguments

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model_name_or_path: nowhere\noutput_dir: {tmp_path}/o\ndatasets: [{{path: a.jsonl}}]\n"
                      f"safety_datasets: [{{path: s.jsonl}}]\nsafety_mix: {value}\n")
    with pytest.raises(RecipeError) as err:
        parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig), [str(recipe)])
    assert message in str(err.value) and "\n" not in str(err.value) and str(recipe) in str(err.value)
