"""Constitutional AI / RLAIF data, the pure part: principles files, prompts, the rule critic, judge prompts, rows.

    constitution = read_constitution("finetune/constitutions/harmless.yaml")   # strict; one-line errors
    prompts = read_prompts("prompts.jsonl")                                      # {"prompt", "kind"?} rows
    label = rule_preference(kind, answer_a, answer_b)     # 1: a better, -1: b better, 0: the rule cannot tell

The loop that calls models is `finetune/constitutional.py`. What happens to one prompt (Bai et al.
2022, "Constitutional AI"): the policy samples two answers; a critic critiques the first against one
principle (critique request) and rewrites it (revision request): the revision is an SFT row. A judge
picks the better of the two answers against the principles: an AI-labelled preference pair.

The rule critic stands in where a model cannot judge (the tiny world's 2.5M-parameter models): with
a `kind` column (harmful | benign) it labels an answer by the refusal detector of the reports
(evals/refusal.py): refusing is right on harmful prompts, answering is right on benign ones. Its
revision is the other sample when that one is right, else the constitution's `refusal` on a harmful
prompt; a benign prompt both samples refused gets no revision (the rule cannot write an answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from corral.recipe import parse_recipe
from data_prep.mixture import DatasetSpec
from evals.refusal import is_refusal
from finetune.online_rl import load_prompts

KINDS = ("harmful", "benign")


@dataclass
class Principle:
    """One principle of a constitution: how to critique an answer, and how to revise it."""

    name: str = field(metadata={"help": "Short name, written to each output row's `principle` column."})
    critique_request: str = field(metadata={"help": "Asked of the critic after the conversation, e.g. 'Identify "
                                            "ways the last response is harmful.'"})
    revision_request: str = field(metadata={"help": "Asked after the critique: 'Rewrite the response to ...'"})

    def __post_init__(self):
        for key in ("name", "critique_request", "revision_request"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"principle {self.name!r}: {key} must be a non-empty string, got {value!r}")


@dataclass
class Constitution:
    """A principles file (YAML)."""

    principles: list[Principle] = field(metadata={"help": "The principles: each {name, critique_request, "
                                                  "revision_request}. One is drawn per prompt."})
    comparison_request: str = field(default="Which response is more helpful, honest and harmless?", metadata={
        "help": "What the judge is asked when it picks the better of two answers."})
    refusal: str = field(default="I can't help with that.", metadata={
        "help": "The rule critic's revision of an answer that complied with a harmful request."})

    def __post_init__(self):
        if not self.principles:
            raise ValueError("principles is empty; give at least one {name, critique_request, revision_request}")
        names = [p.name for p in self.principles]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"principle name {dup!r} is used twice; names label output rows, keep them unique")


def read_constitution(path: str | Path) -> Constitution:
    """The principles file, strictly checked: unknown, missing or empty keys are one-line `RecipeError`s."""
    (constitution,) = parse_recipe((Constitution,), [str(path)])
    return constitution


@dataclass(frozen=True)
class PromptRow:
    messages: tuple[dict, ...]  # the conversation up to the answer; the last turn is the user's
    kind: str | None  # harmful | benign | None (no rule label)


def read_prompts(path: str | Path) -> list[PromptRow]:
    """`{"prompt": str | messages, "kind"?: "harmful" | "benign"}` rows (evals suites and RL prompt files are
    such rows; a suite's `messages` stands for `prompt`), read as RL reads its prompts
    (`finetune.online_rl.load_prompts`): any file format corral reads, and a bad row is a one-line
    `DataError` naming file and line. Every row is kept, duplicates too, in file order."""
    # Renamed: the messages format keeps no other column, and the rule critic needs `kind`.
    spec = DatasetSpec(str(path), columns={"messages": "prompt"})
    rows = load_prompts([spec], seed=0, what="--prompts", dedup=False, options="file",
                        reader="the constitutional command").train.to_list()
    return [PromptRow(tuple({"role": m["role"], "content": m["content"]} for m in row["prompt"]),
                      row.get("kind") if row.get("kind") in KINDS else None) for row in rows]


def rule_ok(kind: str | None, answer: str) -> bool | None:
    """Does `answer` do what the rule wants for `kind`? None when the rule has nothing to say."""
    if kind == "harmful":
        return is_refusal(answer)
    if kind == "benign":
        return bool(answer.strip()) and not is_refusal(answer)
    return None


def rule_preference(kind: str | None, a: str, b: str) -> int:
    """1 if the rule prefers `a`, -1 if it prefers `b`, 0 if it cannot tell them apart."""
    ok_a, ok_b = rule_ok(kind, a), rule_ok(kind, b)
    if ok_a is None or ok_a == ok_b:
        return 0
    return 1 if ok_a else -1


def rule_revision(kind: str | None, answer: str, other: str, refusal: str) -> str | None:
    """The rule critic's rewrite of `answer` (None: nothing to rewrite, or it cannot write one)."""
    if rule_ok(kind, answer) is not False:
        return None
    if rule_ok(kind, other):
        return other
    return refusal if kind == "harmful" else None


def rule_critique(kind: str | None, answer: str) -> str:
    ok = rule_ok(kind, answer)
    if ok is None:
        return "The rule critic has no label for this prompt."
    if ok:
        return "The response does what the request calls for."
    return ("The response helps with a harmful request." if kind == "harmful"
            else "The response refuses a harmless request.")


def render_conversation(messages: list[dict] | tuple[dict, ...], answer: str) -> str:
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines + [f"Assistant: {answer}"])


def critique_messages(messages, answer: str, principle: Principle) -> list[dict]:
    return [{"role": "user", "content": f"{render_conversation(messages, answer)}\n\n{principle.critique_request}"}]


def revision_messages(messages, answer: str, principle: Principle, critique: str) -> list[dict]:
    return critique_messages(messages, answer, principle) + [
        {"role": "assistant", "content": critique}, {"role": "user", "content": principle.revision_request}]


def comparison_messages(messages, a: str, b: str, request: str) -> list[dict]:
    """The judge's question; the answer is read as the probability of "A" vs "B" after `JUDGE_PREFIX`."""
    convo = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
    return [{"role": "user", "content": f"Consider this conversation:\n{convo}\n\nResponse (A): {a}\nResponse (B): {b}\n\n"
                                        f"{request} Answer with A or B."}]


JUDGE_PREFIX = "The better response is ("


def sft_row(messages, revision: str, *, principle: str, critic: str, policy: str, original: str, critique: str) -> dict:
    """A standard `messages` row plus provenance columns (training ignores extra columns)."""
    return {"messages": [*messages, {"role": "assistant", "content": revision}], "source": "constitutional",
            "principle": principle, "critic": critic, "policy": policy, "original": original, "critique": critique}


def pair_row(messages, chosen: str, rejected: str, *, labeler: str, principle: str, policy: str,
             judge_p_chosen: float | None, rule_label: int) -> dict:
    """A standard preference row plus provenance columns."""
    return {"prompt": list(messages), "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "source": "rlaif", "labeler": labeler,
            "principle": principle, "policy": policy, "judge_p_chosen": judge_p_chosen, "rule_label": rule_label}


def agreement(judge_p_a: list[float | None], rule_labels: list[int]) -> dict:
    """How often the judge's pick (p(A) > 0.5: A) matches the rule's on pairs the rule can tell apart."""
    decided = [(p, r) for p, r in zip(judge_p_a, rule_labels) if r != 0 and p is not None]
    agree = sum((p > 0.5) == (r > 0) for p, r in decided if p != 0.5)
    ties = sum(p == 0.5 for p, _ in decided)
    n = len(decided)
    return {"rule_decided_pairs": n, "judge_agrees": agree, "judge_ties": ties,
            "agreement": agree / n if n else None}
