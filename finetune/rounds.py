"""The rounds of rejection sampling: sample from the policy, keep each prompt's best, SFT on it, repeat.

`run_rounds` is the loop finetune/rejection_sampling.py runs once its recipe, prompts and rewards are
checked. One round k writes `round-k/` under the output directory: samples.jsonl (every response, its
scores, `selected`), sft_data.jsonl, sft_command.txt (the round's SFT run, rerunnable by hand),
model/, heldout_responses.jsonl and summary.json. Round 0 is the starting policy, evaluated only.
Each piece takes what it needs and returns what it made; nothing here keeps state between calls.
"""

from __future__ import annotations

import gc
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from corral.errors import CorralError
from corral.loading import load_model
from corral.manifest import write_json_atomic
from data_prep.io import write_jsonl
from finetune.best_of_n import select_best, sft_rows, without_empty
from finetune.online_rl import materialize_policy
from finetune.rl_rewards import (
    RewardComponent,
    Scored,
    format_change,
    format_means_table,
    heldout_scores,
    nanmean,
    reward_change,
    sample_and_score,
)
from finetune.sft import main as sft_main

if TYPE_CHECKING:
    from finetune.rejection_sampling import RSScriptArguments

logger = logging.getLogger("corral.rejection_sampling")


@dataclass
class Policy:
    """The current policy: its checkpoint directory, and that checkpoint loaded."""

    path: str
    model: Any
    tokenizer: Any

    def release(self) -> None:
        """Drop the loaded model (before an SFT run loads its own copy), keeping the path."""
        self.model = self.tokenizer = None
        gc.collect()


def load_policy(path: str, merged_dir: Path) -> Policy:
    """`path` loaded for generation; a LoRA adapter is merged and saved to `merged_dir` first."""
    path, loaded = materialize_policy(path, merged_dir)
    model, tokenizer = loaded or load_model(path)
    return Policy(path, model, tokenizer)


def sft_argv(script: RSScriptArguments, model: str, data: str, output_dir: str) -> list[str]:
    """The finetune/sft.py command line of one round: its recipe, then this round's model/data/output."""
    argv = [script.sft_recipe, "--model_name_or_path", model, "--datasets", f"[{{path: {data}}}]",
            "--output_dir", output_dir]
    for key, value in script.sft_overrides.items():
        argv += [f"--{key}", value if isinstance(value, str) else yaml.safe_dump(
            value, default_flow_style=True, width=1_000_000).strip().removesuffix("\n...")]
    return argv


def command_text(argv: list[str]) -> str:
    """The round's SFT run as a shell command, so it can be rerun by hand."""
    words = [a if not any(c in a for c in " {}[],:") else f"'{a}'" for a in argv]
    return "accelerate launch --config_file accelerate_configs/cpu.yaml finetune/sft.py " + " ".join(words) + "\n"


def draw_prompts(prompts: list[dict], per_round: int | None, seed: int) -> list[dict]:
    """The round's prompts: all of them, or `per_round` drawn without replacement (seeded)."""
    n = len(prompts) if per_round is None else min(per_round, len(prompts))
    return prompts if n == len(prompts) else random.Random(seed).sample(prompts, n)


def score_heldout(policy: Policy, heldout: list[dict], components: list[RewardComponent],
                  script: RSScriptArguments, k: int, rdir: Path) -> dict[str, Scored]:
    """Round k's policy on the held-out prompts (greedy, and sampled if asked), kept in rdir."""
    scored = heldout_scores(policy.model, policy.tokenizer, heldout, components, samples=script.heldout_samples,
                            temperature=script.temperature, max_new_tokens=script.max_new_tokens,
                            batch_size=script.generation_batch_size, seed=script.seed, label=f"round {k}")
    write_jsonl(rdir / "heldout_responses.jsonl", [{"mode": m, **r} for m, s in scored.items() for r in s.records()])
    return scored


def sample_round(policy: Policy, drawn: list[dict], components: list[RewardComponent],
                 script: RSScriptArguments, k: int, rdir: Path) -> tuple[Scored, list[int | None]]:
    """`num_samples` scored responses per prompt and each prompt's pick (None: dropped); samples.jsonl
    marks the picked ones. Stops when no prompt's best reaches `min_score`."""
    scored = sample_and_score(policy.model, policy.tokenizer, drawn, components, num_samples=script.num_samples,
                              temperature=script.temperature, max_new_tokens=script.max_new_tokens,
                              batch_size=script.generation_batch_size, seed=script.seed + k,
                              desc=f"round {k}: sampling")
    texts = [g.text for g in scored.generations]
    picks = select_best(without_empty(scored.totals, texts), script.num_samples, script.min_score)
    chosen = {p for p in picks if p is not None}
    write_jsonl(rdir / "samples.jsonl", [{**r, "selected": i in chosen} for i, r in enumerate(scored.records())])
    if not chosen:
        raise CorralError(f"round {k}: no prompt has a response scoring >= min_score {script.min_score} "
                          f"(best mean {nanmean(scored.totals):.3f}); lower min_score")
    return scored, picks


def train_round(script: RSScriptArguments, start: str, rows: list[dict], rdir: Path) -> Policy:
    """SFT of the `start` checkpoint on `rows` with the recipe's SFT settings; the tuned model, loaded."""
    write_jsonl(rdir / "sft_data.jsonl", rows)
    argv = sft_argv(script, start, str(rdir / "sft_data.jsonl"), str(rdir / "model"))
    (rdir / "sft_command.txt").write_text(command_text(argv))
    sft_main(argv)
    return load_policy(str(rdir / "model"), rdir / "model/merged")


def _means(scored: dict[str, Scored]) -> dict[str, dict]:
    return {mode: s.means() for mode, s in scored.items()}


def heldout_changes(held: list[dict[str, Scored]]) -> dict[str, dict]:
    """Held-out reward change from round 0 and from round 1 to the last round (with 2+ trained rounds)."""
    last = len(held) - 1
    return {f"{mode}, round {a} -> {last}": reward_change(held[a][mode], held[last][mode])
            for mode in (held[0] if last >= 2 else ()) for a in (0, 1)}


def run_rounds(script: RSScriptArguments, policy: Policy, prompts: list[dict], heldout: list[dict],
               components: list[RewardComponent], out: Path) -> tuple[list[dict], dict[str, dict]]:
    """Every round; returns one summary per round (round 0 first) and the held-out reward changes."""
    held = [score_heldout(policy, heldout, components, script, 0, out / "round-0")] if heldout else []
    summaries = [{"round": 0, "model": policy.path, "heldout": _means(held[-1]) if held else {}}]
    write_json_atomic(out / "round-0/summary.json", summaries[0])
    kept: list[dict] = []
    for k in range(1, script.rounds + 1):
        rdir = out / f"round-{k}"
        drawn = draw_prompts(prompts, script.prompts_per_round, script.seed + k)
        scored, picks = sample_round(policy, drawn, components, script, k, rdir)
        kept = (kept if script.accumulate else []) + sft_rows(drawn, [g.text for g in scored.generations], picks)
        policy.release()
        policy = train_round(script, policy.path, kept, rdir)
        if heldout:
            held.append(score_heldout(policy, heldout, components, script, k, rdir))
        chosen = [i for i in picks if i is not None]
        summary = {"round": k, "model": policy.path, "prompts": len(drawn), "kept": len(chosen),
                   "sft_rows": len(kept), "sampled_reward": nanmean(scored.totals),
                   "kept_reward": nanmean([scored.totals[i] for i in chosen]),
                   "heldout": _means(held[-1]) if heldout else {}}
        write_json_atomic(rdir / "summary.json", summary)
        summaries.append(summary)
        logger.info("round %d: kept %d/%d prompts, mean sampled reward %.3f, kept %.3f", k, len(chosen),
                    len(drawn), summary["sampled_reward"], summary["kept_reward"])
    return summaries, heldout_changes(held)


def summary_table(summaries: list[dict], changes: dict | None = None) -> str:
    """Markdown: per round, prompts kept, mean reward of the samples and of the kept ones; held-out rewards
    per round (greedy, and sampled if asked), and the held-out reward change to the last round."""
    lines = ["| round | kept / prompts | sampled reward | kept reward |", "|---|---|---|---|"]
    for s in summaries:
        if s["round"] == 0:
            lines.append("| 0 (start) | - | - | - |")
        else:
            lines.append(f"| {s['round']} | {s['kept']} / {s['prompts']} | {s['sampled_reward']:.3f} | "
                         f"{s['kept_reward']:.3f} |")
    for mode in dict.fromkeys(m for s in summaries for m in s["heldout"]):
        held = format_means_table([(str(s["round"]), s["heldout"][mode]) for s in summaries], title="round")
        lines += ["", f"Mean reward on held-out prompts ({mode}):", "", held]
    if changes:
        lines.append("")
    for name, change in (changes or {}).items():
        lines.append(f"held-out {name}: {format_change(change)}  ")
    return "\n".join(lines)
