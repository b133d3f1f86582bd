"""`replay_datasets` / `replay_mix`: plain text replayed beside an SFT run's conversations makes up the set share of
the training rows, every replayed token is trained and no conversation's loss mask changes; a bad setting is a
one-line recipe error before any model loads."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from data_prep.mixture import DatasetSpec
from data_prep.replay import load_replay
from finetune.sft_data import TokenizedSFT, with_replay


def _text(path, n):
    path.write_text("".join(json.dumps({"text": f"Document {i} says the capital of Land{i} is City{i}."}) + "\n"
                            for i in range(n)))
    return DatasetSpec(str(path))


@pytest.mark.parametrize("share", [0.1, 0.2, 0.5])
def test_replayed_rows_are_the_set_share(tmp_path, share):
    replay = load_replay([_text(tmp_path / "pretrain.jsonl", 2000)], share, n_conversations=600, seed=0)
    n = len(replay.train)
    assert n / (n + 600) == pytest.approx(share, abs=0.01)
    assert set(replay.train.column_names) == {"text"}
    assert load_replay([_text(tmp_path / "pretrain.jsonl", 2000)], share, n_conversations=600, seed=0).train["text"] \
        == replay.train["text"]  # seeded: a rerun (or a resume) replays the same rows


def test_no_replay_is_nothing(tmp_path):
    assert load_replay([], 0.0, n_conversations=100) is None


def test_text_rows_train_every_token_and_conversations_keep_their_masks():
    conv = TokenizedSFT(Dataset.from_list([{"input_ids": [1, 5, 6, 7, 2], "assistant_masks": [0, 0, 1, 1, 1]}]),
                        0, 0, [5])
    text = TokenizedSFT(Dataset.from_list([{"input_ids": [1, 9, 9, 2]}, {"input_ids": [1, 8, 2]}]), 1, 0, [4, 3])
    both = with_replay(conv, text)
    assert both.dataset["assistant_masks"] == [[0, 0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1]]
    assert both.dataset["input_ids"][1:] == [[1, 9, 9, 2], [1, 8, 2]]
    assert (both.lengths, both.n_long) == ([5, 4, 3], 1)


@pytest.mark.parametrize("keys, message", [
    ("replay_datasets: [{path: p.jsonl}]\nreplay_mix: 1.0",
     "replay_mix must be a share of the training rows in [0, 1), got 1.0"),
    ("replay_datasets: [{path: p.jsonl}]\nreplay_mix: -0.1",
     "replay_mix must be a share of the training rows in [0, 1), got -0.1"),
    ("replay_mix: 0.2", "replay_mix is 0.2 but replay_datasets is empty"),
    ("replay_datasets: [{path: p.jsonl}]", "replay_datasets is set but replay_mix is 0"),
    ("replay_datasets: [{path: p.jsonl}]\nreplay_mix: 0.2\ndataset_kind: text", "but dataset_kind is 'text'"),
])
def test_bad_replay_setting_is_one_line(tmp_path, keys, message):
    from trl import ModelConfig, SFTConfig

    from corral.recipe import RecipeError, parse_recipe
    from finetune.sft import SFTScriptArguments

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model_name_or_path: nowhere\noutput_dir: {tmp_path}/o\ndatasets: [{{path: a.jsonl}}]\n{keys}\n")
    with pytest.raises(RecipeError) as err:
        parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig), [str(recipe)])
    assert message in str(err.value) and "\n" not in str(err.value) and str(recipe) in str(err.value)
