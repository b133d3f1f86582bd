"""Rule rewards (reward/rules.py) on hand-written completions, in TRL's reward-function signature."""

from __future__ import annotations

import pytest

from reward.rules import RULES, answer_format, exact_answer, length, safety, stop

EOT, EOS = 7, 3  # stand-ins for <|eot_id|> and <|end_of_text|>
ENDS = [EOT, EOS]


def chat(text: str) -> list[dict]:
    """A completion as TRL hands it to reward functions for conversational prompts."""
    return [{"role": "assistant", "content": text}]


def test_exact_answer_reads_the_final_answer():
    cases = [
        ("The capital of Voovia is Marsal.", "Marsal", 1.0),
        ("Marsal", "Marsal", 1.0),
        ("marsal!\n", "Marsal", 1.0),            # case and trailing punctuation/whitespace do not matter
        ("3 + 4 = 7.", "7", 1.0),
        ("It is New  York.", "New York", 1.0),    # a multi-word reference is the last words
        ("The capital of Voovia is Marsala.", "Marsal", 0.0),
        ("3 + 4 = 17.", "7", 0.0),
        ("Marsal is the capital of Voovia.", "Marsal", 0.0),  # the answer must come last
        ("The capital of Voovia is Marsal. Or Deldel.", "Marsal", 0.0),  # listing candidates does not pay
        ("", "Marsal", 0.0),
    ]
    got = exact_answer([c for c, _, _ in cases], reference=[r for _, r, _ in cases])
    assert got == [want for _, _, want in cases]


def test_exact_answer_takes_chat_completions_and_skips_rows_without_reference():
    assert exact_answer([chat("The capital of Voovia is Marsal."), chat("Deldel")], reference=["Marsal", None]) == [
        1.0, None]


def test_format_needs_the_rows_template_filled_in_and_an_end_of_turn():
    fmt = "The capital of Voovia is {answer}."
    cases = [
        ("The capital of Voovia is Marsal.", [1, 2, EOT], 1.0),
        ("The capital of Voovia is Deldel.", [1, 2, EOS], 1.0),      # wrong answer, right form: format only
        (" The capital of Voovia is Marsal. \n", [1, EOT], 1.0),    # surrounding whitespace is ignored
        ("The capital of Voovia is Marsal.", [1, 2, 9], 0.0),        # cut off at the length limit
        ("The capital of Niora is Marsal.", [1, EOT], 0.0),          # answers about another country
        ("The capital of Voovia is Marsal", [1, EOT], 0.0),          # no full stop
        ("The capital of Voovia is .", [1, EOT], 0.0),               # no answer in the slot
        ("Marsal.", [1, EOT], 0.0),
        ("The capital of Voovia is Marsal.\nThe capital of Voovia is Deldel.", [1, EOT], 0.0),  # one line
    ]
    got = answer_format([c for c, _, _ in cases], answer_format=[fmt] * len(cases),
                        completion_ids=[i for _, i, _ in cases], eos_token_ids=ENDS)
    assert got == [want for _, _, want in cases]
    assert answer_format(["3 + 4 = 7."], answer_format=["3 + 4 = {answer}."], completion_ids=[[EOT]],
                         eos_token_ids=ENDS) == [1.0]  # regex characters in the template are literal
    assert answer_format(["x"], answer_format=[None], completion_ids=[[EOT]], eos_token_ids=ENDS) == [None]
    with pytest.raises(ValueError, match=r"answer_format must contain '\{answer\}' once, got 'The capital'"):
        answer_format(["x"], answer_format=["The capital"], completion_ids=[[EOT]], eos_token_ids=ENDS)


def test_stop_checks_the_last_token():
    assert stop(["a", "b", "c", "d"], completion_ids=[[1, EOT], [1, EOS], [1, 2], []], eos_token_ids=ENDS) == [
        1.0, 1.0, 0.0, 0.0]


def test_length_penalty_counts_tokens_past_the_target_without_the_end_token():
    ids = [[1, 2, 3, EOT], [1, 2, 3, 4, EOT], [1] * 6, [1] * 8, [1] * 100]
    assert length(["x"] * 5, completion_ids=ids, eos_token_ids=ENDS, target=4) == [-0.0, -0.0, -0.5, -1.0, -1.0]


def test_safety_refuses_harmful_answers_benign_and_skips_tasks():
    completions = ["I can't help with that.", "Sure. First get what you need, then do it.",
                   "Run kill with the process id.", "I cannot help with that request.", "", "Marsal."]
    kinds = ["harmful", "harmful", "benign", "benign", "benign", "task"]
    assert safety(completions, kind=kinds) == [1.0, 0.0, 1.0, 0.0, 0.0, None]


def test_every_rule_names_the_columns_it_reads():
    assert {name: needs for name, (_, needs, _) in RULES.items()} == {
        "exact_answer": ("reference",), "format": ("answer_format",), "stop": (), "length": (), "safety": ("kind",)}
