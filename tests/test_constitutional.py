"""Constitutional AI / RLAIF command: strict principles file, one-line errors before any model loads, the
rule critic, and a run on the tiny world whose output loads as standard SFT and preference data."""

from __future__ import annotations

import json
import shutil

import pytest

from corral.errors import DataError
from data_prep.mixture import DatasetSpec, mix_rows
from finetune import constitution as C
from finetune.constitutional import main

PRINCIPLES = "finetune/constitutions/harmless.yaml"
REFUSE = "Sorry, i can't help with that. Asking how to make a bomb is dangerous."
COMPLY = "Sure. First get what you need to make a bomb, then do it when nobody is watching."


def test_shipped_constitution_parses():
    constitution = C.read_constitution(PRINCIPLES)
    assert [p.name for p in constitution.principles] == ["harmless", "not_overcautious", "honest_helpful"]
    assert constitution.refusal.startswith("Sorry")


@pytest.mark.parametrize("text, message", [
    ("", "missing required key 'principles'"),
    ("principles: []\n", "principles is empty"),
    ("principles: [{name: a, critique_request: x}]\n", "missing required key 'revision_request'"),
    ("principles: [{name: a, critique_request: x, revision_request: '  '}]\n", "revision_request must be a non-empty"),
    ("principles: [{name: a, critique_request: x, revison_request: y}]\n", "did you mean 'revision_request'"),
    ("principles: {name: a}\n", "expects"),
    ("principles: [\n", "YAML syntax error"),
])
def test_bad_principles_file_is_one_line_before_any_model_loads(tmp_path, capsys, text, message):
    bad = tmp_path / "principles.yaml"
    bad.write_text(text)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "How do I make a bomb?", "kind": "harmful"}) + "\n")
    assert main(["--prompts", str(prompts), "--model", "no/such/model", "--principles", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and str(bad) in err


def test_prompts_are_read_as_rl_reads_them_keeping_kind_and_every_row(tmp_path):
    rows = [{"prompt": "How do I make a bomb?", "kind": "harmful"},
            {"kind": "benign", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "How do I crack an egg?"}]},  # a suite row
            {"prompt": "How do I make a bomb?", "kind": "harmful"},  # a repeat stays: one row, one sample set
            {"prompt": "What is 2 + 2?", "kind": "task"}]  # no rule label
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert C.read_prompts(path) == [
        C.PromptRow(({"role": "user", "content": "How do I make a bomb?"},), "harmful"),
        C.PromptRow(({"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I crack an egg?"}),
                    "benign"),
        C.PromptRow(({"role": "user", "content": "How do I make a bomb?"},), "harmful"),
        C.PromptRow(({"role": "user", "content": "What is 2 + 2?"},), None)]


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "  "}', "p.jsonl:2: prompt: empty content in turn 1"),
    ('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}',
     "p.jsonl:2: prompt ends with an assistant turn"),
    ('{"prompt": "Hi"', "p.jsonl:2: line is not valid JSON"),
])
def test_a_bad_prompt_row_is_one_line_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "Hi", "kind": "benign"}) + "\n" + line + "\n")
    with pytest.raises(DataError) as info:
        C.read_prompts(path)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("line", ['{"text": "Hi"}', '{"foo": "Hi"}'])
def test_a_prompt_file_error_names_no_recipe_key(tmp_path, line):
    """The command has no recipe: its hints say what to do with the file, not `on_bad_rows:`/`format:` keys."""
    path = tmp_path / "p.jsonl"
    path.write_text((json.dumps({"prompt": "Hi", "kind": "benign"}) + "\n" if "text" in line else "") + line + "\n")
    with pytest.raises(DataError) as info:
        C.read_prompts(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "on_bad_rows" not in message and "in the recipe" not in message and "columns: {" not in message
    assert "fix or delete that row" in message or "python -m data_prep convert --format" in message


def test_bad_judge_is_one_line(tiny_small, tmp_path, capsys):
    prompts = tiny_small / "tiny-world" / "rl_prompts_safety.jsonl"
    base = ["--prompts", str(prompts), "--model", str(tiny_small / "tiny-base"), "--principles", PRINCIPLES,
            "--out", str(tmp_path / "o")]
    assert main(base + ["--judge", str(tmp_path / "nowhere")]) == 2
    assert "--judge" in capsys.readouterr().err
    plain = tmp_path / "plain"
    shutil.copytree(tiny_small / "tiny-base", plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    assert main(base + ["--judge", str(plain)]) == 2
    assert "has no chat template; a judge must be a chat model" in capsys.readouterr().err
    no_kind = tmp_path / "nokind.jsonl"
    no_kind.write_text(json.dumps({"prompt": "What is 2 + 2?"}) + "\n")
    assert main(["--prompts", str(no_kind)] + base[2:]) == 2
    assert "no row has kind harmful|benign" in capsys.readouterr().err
    questions = tmp_path / "questions.jsonl"  # no known format: the hint names this command, not online RL
    questions.write_text(json.dumps({"question": "What is 2 + 2?", "kind": "benign"}) + "\n")
    assert main(["--prompts", str(questions)] + base[2:]) == 2
    err = capsys.readouterr().err
    assert "the constitutional command needs prompt rows" in err and "online RL" not in err
    assert main(base + ["--samples", "3"]) == 2
    assert "--samples 3: must be an even number >= 2" in capsys.readouterr().err


def test_rule_critic_labels_and_revisions():
    assert C.rule_preference("harmful", REFUSE, COMPLY) == 1
    assert C.rule_preference("harmful", COMPLY, REFUSE) == -1
    assert C.rule_preference("benign", "Run kill with the process id.", REFUSE) == 1
    assert C.rule_preference("harmful", REFUSE, REFUSE) == 0 and C.rule_preference(None, REFUSE, COMPLY) == 0
    assert C.rule_revision("harmful", COMPLY, REFUSE, "No.") == REFUSE      # the other sample when it is right
    assert C.rule_revision("harmful", COMPLY, COMPLY, "No.") == "No."       # else the constitution's refusal
    assert C.rule_revision("benign", REFUSE, REFUSE, "No.") is None         # the rule cannot write an answer
    assert C.rule_revision("harmful", REFUSE, COMPLY, "No.") is None        # nothing to revise
    assert C.agreement([0.9, 0.2, 0.5, 0.7], [1, 1, -1, 0]) == {
        "rule_decided_pairs": 3, "judge_agrees": 1, "judge_ties": 1, "agreement": 1 / 3}


def test_run_on_the_tiny_world_writes_standard_rows(tiny_small, tmp_path, capsys):
    """The tiny base as policy and judge, rule labels: output loads as standard SFT and preference data."""
    prompts = tmp_path / "prompts.jsonl"
    rows = [json.loads(line) for line in (tiny_small / "tiny-world" / "rl_prompts_safety.jsonl").open()]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows[::9]))
    out = tmp_path / "cai"
    code = main(["--prompts", str(prompts), "--model", str(tiny_small / "tiny-base"), "--principles", PRINCIPLES,
                 "--judge", str(tiny_small / "tiny-base"), "--critic", "judge", "--labels", "rules", "--out", str(out),
                 "--max-new-tokens", "12", "--samples", "4"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == len(rows[::9]) and summary["samples"] == 4 * summary["prompts"]
    assert summary["comparisons"] == 2 * summary["prompts"] == sum(summary["kinds"].values()) * 2
    agreement = summary["judge_vs_rules"]
    assert agreement["rule_decided_pairs"] >= summary["pairs"]  # rule labels: a pair is one the rule decided
    sft = [json.loads(line) for line in (out / "sft.jsonl").open()]
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").open()]
    assert len(sft) == summary["sft_rows"] and len(pairs) == summary["pairs"]
    keys = [(json.dumps(p["prompt"]), p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs]
    assert len(set(keys)) == len(keys)  # a prompt's comparisons that repeat a pair are written once
    for row in sft:
        assert row["critic"] == str(tiny_small / "tiny-base") and row["messages"][-1]["role"] == "assistant"
    for row in pairs:
        assert row["labeler"] == "rules" and row["rule_label"] in (1, -1) and 0 <= row["judge_p_chosen"] <= 1
    if sft:
        assert len(mix_rows([DatasetSpec(str(out / "sft.jsonl"))], "sft").train) == len(sft)
    if pairs:
        spec = DatasetSpec(str(out / "pairs.jsonl"), ignore_columns=["labeler", "rule_label"])
        assert len(mix_rows([spec], "preference").train) == len(pairs)
