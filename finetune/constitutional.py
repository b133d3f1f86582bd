"""Constitutional AI / RLAIF data: critiques, revisions (SFT rows) and AI-labelled preference pairs.

    python -m finetune.constitutional --prompts outputs/tiny-world/rl_prompts_safety.jsonl \\
        --model outputs/tiny-rl-grpo-safe --principles finetune/constitutions/harmless.yaml \\
        --judge outputs/tiny-rl-grpo-safe --labels rules --out outputs/tiny-constitutional

For every prompt the policy (`--model`) samples `--samples` answers (default 2), taken two at a time:
each two is one comparison. The critic critiques the first of the two against one principle drawn
from `--principles` and revises it: `sft.jsonl` (standard `messages` rows). The judge picks the better
of the two: `pairs.jsonl` (standard `prompt`/`chosen`/`rejected` rows). A good policy is right on most
samples and two right answers make no pair: more samples per prompt, more pairs. Both
carry provenance columns (principle, critic or labeler, policy, the judge's probability, the rule
label), which training ignores. `summary.json` holds the counts and the judge's agreement with the
rule labels. Feed them to recipes/tiny/dpo/safe_constitutional.yaml or any SFT/DPO/RL recipe.

The judge is any local chat model: it reads a comparison prompt and its answer is the probability
of "A" against "B" after "The better response is (", averaged over both orders of the two answers
(position bias cancels). `--critic rules` / `--labels rules` use the rule critic of
finetune/constitution.py instead (prompts need a `kind` column: harmful | benign); with both a judge
and `kind` labels the judge's agreement with the rules is measured either way. Every input is checked
before a model loads.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from corral.errors import CorralError
from corral.loading import CheckpointError, load_model
from corral.threads import pick_threads
from evals.formatting import chat_prompt
from evals.generation import generate
from finetune import constitution as C


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m finetune.constitutional", description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", required=True, help="JSONL of {prompt (string or messages), kind? (harmful|benign)}")
    p.add_argument("--model", required=True, help="policy checkpoint whose sampled answers are critiqued and compared")
    p.add_argument("--principles", required=True, help="principles YAML (finetune/constitutions/harmless.yaml)")
    p.add_argument("--judge", help="chat model that critiques, revises and compares (default: the rule critic)")
    p.add_argument("--critic", choices=("judge", "rules"), help="who writes critiques and revisions (default: judge if given)")
    p.add_argument("--labels", choices=("judge", "rules"), help="who labels the pairs (default: judge if given)")
    p.add_argument("--out", required=True, help="directory for sft.jsonl, pairs.jsonl and summary.json")
    p.add_argument("--samples", type=int, default=2, help="answers sampled per prompt, compared two at a time (even; default: 2)")
    p.add_argument("--temperature", type=float, default=1.0, help="policy sampling temperature (default: 1.0)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="tokens per answer, critique and revision (default: 48)")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per generate / judge call (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and principle draws (default: 0)")
    args = p.parse_args(argv)
    args.critic = args.critic or ("judge" if args.judge else "rules")
    args.labels = args.labels or ("judge" if args.judge else "rules")
    return args


def check_inputs(args) -> tuple[C.Constitution, list[C.PromptRow]]:
    """Everything a run needs, checked before any model loads; a mistake is one `CorralError` line."""
    constitution = C.read_constitution(args.principles)
    prompts = C.read_prompts(args.prompts)
    for flag, path in (("--model", args.model), ("--judge", args.judge)):
        if path and not (Path(path) / "config.json").is_file() and not (Path(path) / "adapter_config.json").is_file():
            raise CheckpointError(f"{flag} {path}: no such checkpoint directory (no config.json)")
    if args.judge and not _has_chat_template(Path(args.judge)):
        raise CheckpointError(f"--judge {args.judge}: the tokenizer has no chat template; a judge must be a chat model")
    if "judge" in (args.critic, args.labels) and not args.judge:
        raise CorralError("--critic judge / --labels judge need --judge MODEL")
    if "rules" in (args.critic, args.labels) and not any(p.kind for p in prompts):
        raise CorralError(f"{args.prompts}: no row has kind harmful|benign, which the rule critic needs; "
                          "give --judge MODEL with --critic judge --labels judge")
    if args.temperature <= 0 or args.max_new_tokens < 1 or args.batch_size < 1:
        raise CorralError("--temperature must be > 0, --max-new-tokens and --batch-size >= 1")
    if args.samples < 2 or args.samples % 2:
        raise CorralError(f"--samples {args.samples}: must be an even number >= 2 (answers are compared two at a time)")
    return constitution, prompts


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file():
        return True
    config = path / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))


def chat_generate(model, tok, conversations: list[list[dict]], args, sample: bool) -> list[str]:
    prompts = [chat_prompt(tok, msgs) for msgs in conversations]
    gens = generate(model, tok, prompts, False, args.max_new_tokens, args.batch_size, sample, args.temperature, args.seed)
    return [g.text.strip() for g in gens]


@torch.no_grad()
def judge_p_first(model, tok, items: list[tuple[tuple, str, str]], request: str, batch_size: int) -> list[float]:
    """For (messages, a, b): the judge's probability that `a` is better, averaged over both orders."""
    a_id, b_id = (tok(x, add_special_tokens=False).input_ids[0] for x in ("A", "B"))

    def p_a(pairs):
        texts = [chat_prompt(tok, C.comparison_messages(m, a, b, request)) + C.JUDGE_PREFIX for m, a, b in pairs]
        out = []
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start:start + batch_size], add_special_tokens=False, return_tensors="pt", padding=True)
            logits = model(**enc.to(model.device)).logits[:, -1, [a_id, b_id]].float()
            out += torch.softmax(logits, dim=-1)[:, 0].tolist()
        return out

    forward, swapped = p_a(items), p_a([(m, b, a) for m, a, b in items])
    return [(f + 1 - s) / 2 for f, s in zip(forward, swapped)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        constitution, prompts = check_inputs(args)
    except CorralError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.time()
    print(f"torch CPU threads: {pick_threads('eval')}")  # sampling and judging are evaluation-shaped work
    torch.manual_seed(args.seed)
    policy, tok = load_model(args.model)
    half = args.samples // 2  # comparisons per prompt; comparison j of prompt i is row j * len(prompts) + i
    prompts = prompts * half
    convs = [list(p.messages) for p in prompts]
    answers = chat_generate(policy, tok, convs + convs, args, sample=True)
    pairs = list(zip(answers[:len(prompts)], answers[len(prompts):]))
    judge, jtok = (policy, tok) if args.judge in (None, args.model) else load_model(args.judge)
    rng = random.Random(args.seed)
    principles = [rng.choice(constitution.principles) for _ in prompts]

    if args.critic == "judge":
        critiques = chat_generate(judge, jtok, [C.critique_messages(m, a, pr) for m, (a, _), pr in
                                                zip(convs, pairs, principles)], args, sample=False)
        revisions = chat_generate(judge, jtok, [C.revision_messages(m, a, pr, c) for m, (a, _), pr, c in
                                                zip(convs, pairs, principles, critiques)], args, sample=False)
    else:
        critiques = [C.rule_critique(p.kind, a) for p, (a, _) in zip(prompts, pairs)]
        revisions = [C.rule_revision(p.kind, a, b, constitution.refusal) for p, (a, b) in zip(prompts, pairs)]
    p_first = (judge_p_first(judge, jtok, [(m, a, b) for m, (a, b) in zip(convs, pairs)],
                             constitution.comparison_request, args.batch_size) if args.judge else [None] * len(prompts))
    rule_labels = [C.rule_preference(p.kind, a, b) for p, (a, b) in zip(prompts, pairs)]

    sft, prefs, seen = [], [], set()  # seen: (prompt, texts) already written; samples of a prompt repeat
    for m, (a, b), pr, crit, rev, pj, rl in zip(convs, pairs, principles, critiques, revisions, p_first, rule_labels):
        key = json.dumps(m)
        if rev and rev.strip() and rev != a and (key, rev) not in seen:
            seen.add((key, rev))
            sft.append(C.sft_row(m, rev, principle=pr.name, critic=args.judge if args.critic == "judge" else "rules",
                                 policy=args.model, original=a, critique=crit))
        label = rl if args.labels == "rules" else (0 if pj is None or pj == 0.5 else (1 if pj > 0.5 else -1))
        chosen, rejected = (a, b) if label > 0 else (b, a)
        if label and a.strip() and b.strip() and a != b and (key, chosen, rejected) not in seen:  # an empty answer is no target
            seen.add((key, chosen, rejected))
            prefs.append(C.pair_row(m, chosen, rejected, labeler=args.judge if args.labels == "judge" else "rules",
                                    principle=pr.name, policy=args.model,
                                    judge_p_chosen=None if pj is None else (pj if label > 0 else 1 - pj), rule_label=rl))

    ok = [C.rule_ok(p.kind, x) for p, ab in zip(prompts, pairs) for x in ab]
    summary = {
        "prompts": len(prompts) // half, "samples": 2 * len(prompts), "comparisons": len(prompts),
        "sft_rows": len(sft), "pairs": len(prefs),
        "critic": args.critic, "labels": args.labels, "judge": args.judge, "policy": args.model,
        "kinds": {k: sum(p.kind == k for p in prompts) // half for k in (*C.KINDS, None)},
        "samples_rule_ok": sum(x is True for x in ok), "samples_rule_labelled": sum(x is not None for x in ok),
        "judge_vs_rules": C.agreement(p_first, rule_labels) if args.judge else None,
        "seconds": round(time.time() - start, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("sft.jsonl", sft), ("pairs.jsonl", prefs)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}/sft.jsonl ({len(sft)} rows), pairs.jsonl ({len(prefs)} pairs), summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
