"""Task accuracy: the reference must appear in the response as a whole word or number.

Case-insensitive; whitespace inside the reference matches any run of whitespace. "Whole" means the
match is not glued to a letter, digit or underscore on either side, and a number is not part of a
longer decimal or thousands-grouped number: reference "7" matches "It is 7." and "7, I think" but not
"17", "7.5", "0.7" or "7,000". A sign is not part of the number ("-7" matches "7").

A numeric reference must be the response's *last* number, as math graders (GSM8K style) read it:
"2 + 5 = 7." and "It is 7." are right, "7 + 5 = 12." is wrong although it contains 7. Matching a number
anywhere counted a wrong sum whose operands happened to include the reference (on the tiny world's
held-out-phrasing splits, 4-6 of 12 "correct" sums per model where 1-2 were: docs/safety.md, "Session 7").

Returns `accuracy`, its bootstrap 95% interval `accuracy_ci` (see evals/bootstrap.py), and the
per-response flags `correct`, which the side-by-side report shows.
"""

import re

import datasets
import evaluate

from evals.bootstrap import bootstrap_ci


def reference_pattern(reference):
    words = [re.escape(w) for w in reference.split()]
    return re.compile(r"(?<!\w)(?<!\d[.,])" + r"\s+".join(words) + r"(?!\w)(?![.,]\d)", re.IGNORECASE)


NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")


def matches(response, reference):
    if NUMBER.fullmatch(reference.strip()):
        numbers = NUMBER.findall(response)
        return bool(numbers) and numbers[-1] == reference.strip()
    return reference_pattern(reference).search(response) is not None


class WholeWordAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: model responses; references: the expected answer of each.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, seed=0):
        correct = [matches(p, r) for p, r in zip(predictions, references)]
        return {
            "accuracy": sum(correct) / len(correct),
            "accuracy_ci": bootstrap_ci(correct, seed=seed),
            "correct": correct,
        }
