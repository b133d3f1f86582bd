"""Distinct-n (Li et al., 2016): unique word n-grams over all n-grams, across all responses.

Words are the lower-cased, whitespace-separated pieces of each response; n-grams do not cross
responses. 1.0 means no n-gram repeats anywhere; a model that loops or answers every prompt alike
scores near 0. None when no response has n words.

No bootstrap interval: resampling responses with replacement duplicates them, which by itself lowers
distinct-n, so the resampled values would not be centred on the estimate.
"""

import datasets
import evaluate


def ngrams(text, n):
    words = text.lower().split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


class DistinctN(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Li et al., A Diversity-Promoting Objective Function for Neural Conversation Models, NAACL 2016",
            inputs_description="predictions: model responses; n: n-gram length (default 2).",
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, n=2):
        grams = [g for p in predictions for g in ngrams(p, n)]
        return {f"distinct_{n}": len(set(grams)) / len(grams) if grams else None}
