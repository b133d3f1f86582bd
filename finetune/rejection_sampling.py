"""Rejection sampling (best-of-n) fine-tuning in rounds, as in Llama 2/3 post-training.

    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/rejection_sampling.py recipes/tiny/rs/rounds.yaml

Each round k = 1..R: sample `num_samples` responses per prompt from the current policy (batched
generation with KV cache, evals/generation.py), score them with the rule rewards and/or reward model
(finetune/rl_rewards.py, the same weighted sum GRPO uses), keep each prompt's best response if it
scores at least `min_score` (finetune/best_of_n.py), and fine-tune the policy on those conversations
with finetune/sft.py (the `sft_recipe`'s training settings plus `sft_overrides`). The tuned model is
the next round's policy. Everything a round did is kept in `output_dir/round-k/`: samples.jsonl
(every response with its scores; `selected` marks the kept ones), sft_data.jsonl, sft_command.txt (the
SFT run, reproducible on its own), model/, summary.json. Round 0 is the starting policy. With
`heldout_datasets`, each round's model is scored on those prompts; `output_dir/summary.md` (also
printed) has one line per round. Generation runs in one process: launch with a single-process config.
"""

from __future__ import annotations

import gc
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corral.errors import CorralError
from corral.loading import check_model_path, stop_token_ids
from corral.manifest import finish_manifest, start_manifest, write_json_atomic
from corral.recipe import parse_recipe, resolved_config, run_cli
from data_prep.io import write_jsonl
from data_prep.mixture import DatasetSpec, MixtureArguments
from finetune.best_of_n import select_best, sft_rows, without_empty
from finetune.online_rl import load_prompts, materialize_policy
from finetune.rl_rewards import (
    RewardArguments,
    build_rewards,
    columns_of,
    format_change,
    format_means_table,
    heldout_scores,
    nanmean,
    reward_change,
    sample_and_score,
)

logger = logging.getLogger("corral.rejection_sampling")


@dataclass
class RSScriptArguments(MixtureArguments):
    """Rounds of best-of-n sampling and SFT: the policy, prompts, sampling, selection and SFT settings.

    `datasets` rows are prompts (`prompt` messages) plus the columns the rewards read."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Starting policy: a chat checkpoint directory (a LoRA adapter is merged)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where round-k/ directories and summary.md go."})
    heldout_datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Prompts never trained on, scored after every round."})
    rounds: int = field(default=3, metadata={"help": "Number of sample -> select -> SFT rounds."})
    num_samples: int = field(default=8, metadata={"help": "Responses sampled per prompt (the n of best-of-n)."})
    prompts_per_round: int | None = field(
        default=None, metadata={"help": "Prompts drawn (seeded, without replacement) each round; null: all."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (> 0)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Longest response, in tokens."})
    generation_batch_size: int = field(default=64, metadata={"help": "Prompts per generation batch."})
    min_score: float | None = field(
        default=None, metadata={"help": "Drop a prompt whose best response scores below this; null keeps every best."})
    accumulate: bool = field(
        default=False, metadata={"help": "SFT on the best responses of this and all earlier rounds (Llama 2 did, "
                                 "against forgetting), not this round's only."})
    sft_recipe: str | None = field(
        default=None, metadata={"help": "An SFT recipe (finetune/sft.py) whose training settings every round uses; "
                                "its model, datasets and output_dir are replaced."})
    sft_overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "SFT recipe keys to change, e.g. {learning_rate: 1.0e-4}."})
    heldout_samples: int = field(
        default=0, metadata={"help": "Besides the greedy answer, sample this many answers per held-out prompt at "
                             "`temperature` (the policy's expected reward)."})
    seed: int = field(default=0, metadata={"help": "Seed for prompt draws and sampling (round k uses seed + k)."})

    def __post_init__(self):
        super().__post_init__()
        if not self.sft_recipe:
            raise ValueError("sft_recipe is not set; name the SFT recipe each round trains with, e.g. "
                             "recipes/tiny/sft/full.yaml")
        for name in ("rounds", "num_samples", "max_new_tokens", "generation_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.heldout_samples < 0:
            raise ValueError(f"heldout_samples must be >= 0, got {self.heldout_samples}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 to sample {self.num_samples} different responses")
        reserved = {"model_name_or_path", "datasets", "output_dir"} & set(self.sft_overrides)
        if reserved:
            raise ValueError(f"sft_overrides: {sorted(reserved)} are set by each round; remove them")


RECIPE_TYPES = (RSScriptArguments, RewardArguments)


def sft_argv(script: RSScriptArguments, model: str, data: str, output_dir: str) -> list[str]:
    """The finetune/sft.py command line of one round: its recipe, then this round's model/data/output."""
    argv = [script.sft_recipe, "--model_name_or_path", model, "--datasets", f"[{{path: {data}}}]",
            "--output_dir", output_dir]
    for key, value in script.sft_overrides.items():
        argv += [f"--{key}", value if isinstance(value, str) else yaml.safe_dump(
            value, default_flow_style=True, width=1_000_000).strip().removesuffix("\n...")]
    return argv


def main(argv: list[str] | None = None) -> list[dict]:
    from accelerate import PartialState
    from trl import ModelConfig, SFTConfig

    from corral.loading import load_model
    from finetune.sft import SFTScriptArguments
    from finetune.sft import main as sft_main

    script, rewards = parse_recipe(RECIPE_TYPES, argv, required=("model_name_or_path", "output_dir", "sft_recipe"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if PartialState().num_processes > 1:
        raise CorralError("rejection sampling generates in one process; launch with accelerate_configs/cpu.yaml "
                          "or --num_processes 1")
    check_model_path(script.model_name_or_path)
    out = Path(script.output_dir)
    # The SFT settings are checked now, not after the first round's sampling.
    parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig), sft_argv(script, script.model_name_or_path,
                 str(out / "round-1/sft_data.jsonl"), str(out / "round-1/model")), required=("output_dir",))
    prompts = load_prompts(script.datasets, script.seed, dedup=script.dedup,
                           on_bad_rows=script.on_bad_rows).train.to_list()
    heldout = load_prompts(script.heldout_datasets, script.seed, "heldout_datasets", dedup=script.dedup,
                           on_bad_rows=script.on_bad_rows).train.to_list() if script.heldout_datasets else []

    policy, loaded = materialize_policy(script.model_name_or_path, out / "round-0/model")
    model, tokenizer = loaded or load_model(policy)
    eos = stop_token_ids(tokenizer)
    components = build_rewards(rewards, eos, columns_of(prompts), "the prompt data (datasets)")
    if heldout:
        build_rewards(rewards, eos, columns_of(heldout), "the held-out prompts (heldout_datasets)")
    manifest = start_manifest(str(out), "finetune/rejection_sampling.py", resolved_config((script, rewards)),
                              {"prompts": len(prompts), "heldout_prompts": len(heldout),
                               "rewards": {c.name: c.weight for c in components}})

    held_scores: list[dict] = []  # per round: {"greedy": Scored, "sampled": Scored}

    def heldout_means(model, tokenizer, k):
        if not heldout:
            return {}
        scored = heldout_scores(model, tokenizer, heldout, components, samples=script.heldout_samples,
                                temperature=script.temperature, max_new_tokens=script.max_new_tokens,
                                batch_size=script.generation_batch_size, seed=script.seed, label=f"round {k}")
        write_jsonl(out / f"round-{k}/heldout_responses.jsonl",
                    [{"mode": m, **r} for m, s in scored.items() for r in s.records()])
        held_scores.append(scored)
        return {mode: s.means() for mode, s in scored.items()}

    summaries = [{"round": 0, "model": policy, "heldout": heldout_means(model, tokenizer, 0)}]
    write_json_atomic(out / "round-0/summary.json", summaries[0])
    kept: list[dict] = []
    for k in range(1, script.rounds + 1):
        rdir = out / f"round-{k}"
        rng = random.Random(script.seed + k)
        n = len(prompts) if script.prompts_per_round is None else min(script.prompts_per_round, len(prompts))
        drawn = prompts if n == len(prompts) else rng.sample(prompts, n)
        scored = sample_and_score(model, tokenizer, drawn, components, num_samples=script.num_samples,
                                  temperature=script.temperature, max_new_tokens=script.max_new_tokens,
                                  batch_size=script.generation_batch_size, seed=script.seed + k,
                                  desc=f"round {k}: sampling")
        texts = [g.text for g in scored.generations]
        picks = select_best(without_empty(scored.totals, texts), script.num_samples, script.min_score)
        chosen = set(p for p in picks if p is not None)
        write_jsonl(rdir / "samples.jsonl", [{**r, "selected": i in chosen} for i, r in enumerate(scored.records())])
        if not chosen:
            raise CorralError(f"round {k}: no prompt has a response scoring >= min_score {script.min_score} "
                              f"(best mean {nanmean(scored.totals):.3f}); lower min_score")
        kept = (kept if script.accumulate else []) + sft_rows(drawn, texts, picks)
        write_jsonl(rdir / "sft_data.jsonl", kept)
        del model
        gc.collect()

        argv_k = sft_argv(script, policy, str(rdir / "sft_data.jsonl"), str(rdir / "model"))
        (rdir / "sft_command.txt").write_text(_command_text(argv_k))
        sft_main(argv_k)
        policy, loaded = materialize_policy(str(rdir / "model"), rdir / "model/merged")
        model, tokenizer = loaded or load_model(policy)
        summary = {"round": k, "model": policy, "prompts": len(drawn), "kept": len(chosen),
                   "sft_rows": len(kept), "sampled_reward": nanmean(scored.totals),
                   "kept_reward": nanmean([scored.totals[i] for i in chosen]),
                   "heldout": heldout_means(model, tokenizer, k)}
        write_json_atomic(rdir / "summary.json", summary)
        summaries.append(summary)
        logger.info("round %d: kept %d/%d prompts, mean sampled reward %.3f, kept %.3f", k, len(chosen),
                    len(drawn), summary["sampled_reward"], summary["kept_reward"])

    last = len(held_scores) - 1
    changes = {f"{mode}, round {a} -> {last}": reward_change(held_scores[a][mode], held_scores[last][mode])
               for mode in (held_scores[0] if last >= 2 else ()) for a in (0, 1)}
    table = summary_table(summaries, changes)
    (out / "summary.md").write_text(table + "\n")
    print("\n" + table + "\n")
    finish_manifest(str(out), manifest, rounds=summaries, heldout_changes=changes)
    return summaries


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


def _command_text(argv: list[str]) -> str:
    """The round's SFT run as a shell command, so it can be rerun by hand."""
    words = [a if not any(c in a for c in " {}[],:") else f"'{a}'" for a in argv]
    return "accelerate launch --config_file accelerate_configs/cpu.yaml finetune/sft.py " + " ".join(words) + "\n"


if __name__ == "__main__":
    run_cli(main)
