"""Held-out evaluation of an RL policy (finetune/rl.py): rewards on prompts it never trained on.

Before and after training the policy answers the `heldout_datasets` prompts greedily (what a user
gets) and, with `heldout_samples: N`, N times at the training temperature (the mean is the policy's
expected reward, what RL maximises). The report gives the change of the weighted reward with a 95%
paired bootstrap interval over prompts, and KL(policy || starting policy) measured on the policy's
own greedy held-out answers; `output_dir` gets heldout_rewards.json and heldout_responses.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.loading import load_causal_lm
from corral.manifest import write_json_atomic
from data_prep.io import write_jsonl
from evals.divergence import kl_from_baseline
from finetune.rl_rewards import (
    RewardComponent,
    Scored,
    format_change,
    format_means_table,
    heldout_scores,
    reward_change,
)


@dataclass(frozen=True)
class HeldoutPrompts:
    """The held-out prompts and how to answer them: the same settings before and after training."""

    rows: list[dict]
    components: list[RewardComponent]
    samples: int
    temperature: float
    max_new_tokens: int
    batch_size: int
    seed: int

    def score(self, policy, tokenizer, label: str) -> dict[str, Scored]:
        """`greedy` (and `sampled`) answers of `policy`, every reward component scored."""
        return heldout_scores(policy, tokenizer, self.rows, self.components, samples=self.samples,
                              temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                              batch_size=self.batch_size, seed=self.seed, label=label)


def heldout_report(policy, before: dict, after: dict, model_args, args, pad_id: int) -> dict:
    """Mean rewards before/after (greedy, and sampled if asked) with the change's 95% interval over prompts,
    printed as a table, and KL(policy || starting policy) on the policy's greedy held-out answers."""
    reference = load_causal_lm(model_args, args).to(policy.device).eval()
    kl = kl_from_baseline(policy.eval(), reference, after["greedy"].generations, pad_id=pad_id)
    report, rows, lines = {"heldout_kl": kl}, [], []
    for mode, start in before.items():
        change = reward_change(start, after[mode], seed=args.seed)
        report[f"heldout_{mode}"] = {"before": start.means(), "after": after[mode].means(), "change": change}
        rows += [(f"{mode}, before", start.means()), (f"{mode}, after", after[mode].means())]
        lines.append(f"{mode}: {format_change(change)}")
    report["heldout_table"] = format_means_table(rows, title="held-out")
    print("\n" + report["heldout_table"] + "\n\n" + "\n".join(lines) +
          f"\nheld-out KL(policy || start) = {kl:.4f} nats/token\n")
    return report


def write_heldout(output_dir: str, summary: dict, after: dict[str, Scored]) -> None:
    """heldout_rewards.json (the run summary with the held-out report) and every held-out answer."""
    write_json_atomic(f"{output_dir}/heldout_rewards.json", summary)
    write_jsonl(f"{output_dir}/heldout_responses.jsonl",
                [{"mode": m, **r} for m, s in after.items() for r in s.records()])
