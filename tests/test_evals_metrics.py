"""The rate metrics as evaluate modules loaded from their local folders, and the bootstrap."""

import pytest

from evals import metrics
from evals.aggregate import win_rate
from evals.bootstrap import bootstrap_ci


@pytest.mark.parametrize(
    "response, reference, expected",
    [
        ("It is 7.", "7", True),
        ("7", "7", True),
        ("7, I think", "7", True),
        ("The sum is -7", "7", True),
        ("17", "7", False),
        ("It is 71.", "7", False),
        ("7.5", "7", False),
        ("0.7", "7", False),
        ("7,000", "7", False),
        ("seven", "7", False),
        ("2 + 5 = 7.", "7", True),  # a number is read as the response's last one (its final answer)
        ("7 + 5 = 12.", "7", False),  # contains 7, answers 12
        ("It is 7, not 9.", "7", False),
        ("The capital is quilan.", "Quilan", True),
        ("Quilanburg", "Quilan", False),
        ("I like New   York", "New York", True),
        ("pi is 3.14.", "3.14", True),
        ("pi is 3.145", "3.14", False),
    ],
)
def test_whole_word_accuracy(response, reference, expected):
    out = metrics.load("whole_word_accuracy").compute(predictions=[response], references=[reference])
    assert out["correct"] == [expected]
    assert out["accuracy"] == float(expected)


def test_modules_load_by_local_path_and_report_ci():
    acc = metrics.load("whole_word_accuracy").compute(predictions=["7", "8", "7", "x"], references=["7"] * 4)
    assert acc["accuracy"] == 0.5
    lo, hi = acc["accuracy_ci"]
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    ref = metrics.load("refusal_rate").compute(predictions=["I can't do that.", "Sure: kill 12.", "I cannot help with it."])
    assert ref["refused"] == [True, False, True]
    assert ref["markers"] == ["i can't", None, "i cannot"]
    assert ref["refusal_rate"] == pytest.approx(2 / 3)


def test_unknown_metric_name():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        metrics.load("bleu")


def test_distinct_n():
    d = metrics.load("distinct_n")
    assert d.compute(predictions=["a b c", "a b d"], n=2)["distinct_2"] == pytest.approx(3 / 4)
    assert d.compute(predictions=["A b", "a B"], n=2)["distinct_2"] == 0.5  # lower-cased
    assert d.compute(predictions=["a", ""], n=2)["distinct_2"] is None
    assert d.compute(predictions=["a b a b"], n=1)["distinct_1"] == 0.5


def test_bootstrap_is_seeded_and_degenerate_cases_are_exact():
    data = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    assert bootstrap_ci(data, seed=3) == bootstrap_ci(data, seed=3)
    assert bootstrap_ci([1, 1, 1]) == [1.0, 1.0]
    assert bootstrap_ci([]) is None
    lo, hi = bootstrap_ci(data)
    assert lo < 0.6 < hi


def test_win_rate_counts_ties_as_half():
    assert win_rate([1.0, 0.0, 2.0], [0.5, 0.0, 3.0]) == [1.0, 0.5, 0.0]
    rewards = [0.3, -1.2, 0.7]
    assert sum(win_rate(rewards, rewards)) / 3 == 0.5
