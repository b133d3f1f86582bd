"""Build the embedded tiny Llama world: data files, tokenizer and a pretrained base checkpoint.

    python -m tinyworld build                   # quickstart world -> outputs/tiny-world, outputs/tiny-base
    python -m tinyworld build --small --out X   # the seconds-sized world the tests use

Deterministic from the seed. The build is cached: `outputs/tiny-base/tiny_build.json` holds a
fingerprint of every setting and of the generated corpus, and a rebuild with the same fingerprint
is skipped (`--force` rebuilds).

Files written under `<out>/tiny-world/`:
  pretrain.jsonl          plain documents (`text`), no chat markup
  sft_train.jsonl         instruct conversations (`messages`) about SFT countries only
  heldout_capitals.jsonl  capital questions about countries never in SFT (`prompt`, `reference`)
  heldout_sums.jsonl      sums never in SFT
  safety_train.jsonl      refusals of training harmful requests, answers to their look-alikes
  rl_prompts_train.jsonl  RL prompts (`prompt`, `reference`, `answer_format`) about SFT countries and sums,
                          and half the countries SFT never saw (tinyworld/prompts.py)
  rl_prompts_heldout.jsonl  the same about the other half (in neither SFT nor RL data) and held-out sums
  pref_train.jsonl        preference pairs (`prompt`, `chosen`, `rejected`) about SFT countries and sums
  pref_heldout.jsonl      pairs about other SFT countries and sums, never in pref_train (tinyworld/preferences.py)
  pref_heldout_prompts.jsonl  the held-out pairs' questions as an evals suite (win rate with --reward-model)
  drift_text.txt          pretraining-style documents not in the corpus (perplexity drift: evals.compare --text)
  sft_varied.jsonl        capitals/sums of SFT countries in more wordings, system prompts, turn positions
  safety_sft.jsonl        refusals and look-alike answers in the same variety (tinyworld/alignment_data.py)
  rl_prompts_varied.jsonl RL prompts about SFT and RL countries and SFT sums in the varied wordings of sft_varied.jsonl
  pref_varied.jsonl       the same kind of pairs in the varied wordings and contexts of sft_varied.jsonl
  safety_pref_train.jsonl safety preference pairs: refusal > compliance, look-alike answer > refusal
  rl_prompts_safety.jsonl harmful/benign RL prompts (`kind`) for the `safety` rule reward
  heldout_phrasing.jsonl  evals suite in wordings, system prompts and turn positions no training file uses
  tools_train.jsonl       tool-use conversations (`messages` with tool_calls, `tools`): capital lookup and add
  tools_heldout.jsonl     tool prompts about held-out countries/sums and direct-answer prompts (tinyworld/tools.py)
and `<out>/tiny-base/`: a LlamaForCausalLM + tokenizer (safetensors), like a Llama 3 base checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from data_prep.io import write_jsonl
from tinyworld.alignment_data import (
    safety_preference_pairs,
    safety_rl_prompts,
    safety_sft_rows,
    varied_instruct_rows,
    varied_preference_pairs,
    varied_rl_prompts,
)
from tinyworld.heldout_phrasing import heldout_phrasing_rows
from tinyworld.preferences import heldout_prompt_suite, preference_pairs
from tinyworld.prompts import rl_prompts
from tinyworld.tools import heldout_tool_prompts, tool_training_rows
from tinyworld.world import (
    WorldConfig,
    drift_documents,
    heldout_questions,
    heldout_sum_questions,
    make_world,
    pretraining_documents,
    safety_conversations,
    sft_conversations,
)

BUILD_INFO = "tiny_build.json"


@dataclasses.dataclass(frozen=True)
class TinyBuild:
    """Everything that determines the tiny base; its fingerprint keys the cache."""

    world: WorldConfig = WorldConfig()
    # 2048: every country and capital stays one token (with 1024 and the session-5 topics they split into
    # ~2, and the tuned models recalled held-out capitals worse; docs/safety.md, "Session 6")
    vocab_size: int = 2048
    hidden_size: int = 192
    num_hidden_layers: int = 6
    num_attention_heads: int = 6
    num_key_value_heads: int = 2
    intermediate_size: int = 512
    # 512 x 2 (was 128 x 8, the same tokens per step): chat prompts with a system prompt and earlier turns run to
    # ~300 tokens, and a base that never read past position 128 refused fewer long harmful requests after tuning
    # (docs/safety.md, "The pipeline now (session 11)")
    block_size: int = 512
    batch_size: int = 2
    epochs: float = 10.0
    learning_rate: float = 3e-3

    @classmethod
    def small(cls) -> "TinyBuild":
        """A world and model that build in seconds (tests)."""
        return cls(world=WorldConfig.small(), vocab_size=512, hidden_size=64, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, intermediate_size=128, epochs=3.0,
                   block_size=128, batch_size=8)


def write_world(build: TinyBuild, out: Path) -> dict[str, Path]:
    """Generate and write the world's data files; returns their paths."""
    world = make_world(build.world)
    files = {
        "pretrain": out / "tiny-world" / "pretrain.jsonl",
        "sft_train": out / "tiny-world" / "sft_train.jsonl",
        "heldout_capitals": out / "tiny-world" / "heldout_capitals.jsonl",
        "heldout_sums": out / "tiny-world" / "heldout_sums.jsonl",
        "safety_train": out / "tiny-world" / "safety_train.jsonl",
        "rl_prompts_train": out / "tiny-world" / "rl_prompts_train.jsonl",
        "rl_prompts_heldout": out / "tiny-world" / "rl_prompts_heldout.jsonl",
        "pref_train": out / "tiny-world" / "pref_train.jsonl",
        "pref_heldout": out / "tiny-world" / "pref_heldout.jsonl",
        "pref_heldout_prompts": out / "tiny-world" / "pref_heldout_prompts.jsonl",
        "drift_text": out / "tiny-world" / "drift_text.txt",
        "sft_varied": out / "tiny-world" / "sft_varied.jsonl",
        "safety_sft": out / "tiny-world" / "safety_sft.jsonl",
        "pref_varied": out / "tiny-world" / "pref_varied.jsonl",
        "rl_prompts_varied": out / "tiny-world" / "rl_prompts_varied.jsonl",
        "safety_pref_train": out / "tiny-world" / "safety_pref_train.jsonl",
        "rl_prompts_safety": out / "tiny-world" / "rl_prompts_safety.jsonl",
        "heldout_phrasing": out / "tiny-world" / "heldout_phrasing.jsonl",
        "tools_train": out / "tiny-world" / "tools_train.jsonl",
        "tools_heldout": out / "tiny-world" / "tools_heldout.jsonl",
    }
    corpus = pretraining_documents(world)
    write_jsonl(files["pretrain"], [{"text": d} for d in corpus])
    write_jsonl(files["sft_train"], sft_conversations(world))
    write_jsonl(files["heldout_capitals"], heldout_questions(world))
    write_jsonl(files["heldout_sums"], heldout_sum_questions(world))
    write_jsonl(files["safety_train"], safety_conversations(world))
    write_jsonl(files["rl_prompts_train"], rl_prompts(world, "train"))
    write_jsonl(files["rl_prompts_heldout"], rl_prompts(world, "heldout"))
    pref_train, pref_heldout = preference_pairs(world)
    write_jsonl(files["pref_train"], pref_train)
    write_jsonl(files["pref_heldout"], pref_heldout)
    write_jsonl(files["pref_heldout_prompts"], heldout_prompt_suite(world))
    files["drift_text"].write_text("\n\n".join(drift_documents(world, corpus)) + "\n")
    write_jsonl(files["sft_varied"], varied_instruct_rows(world))
    write_jsonl(files["safety_sft"], safety_sft_rows(world))
    write_jsonl(files["pref_varied"], varied_preference_pairs(world))
    write_jsonl(files["rl_prompts_varied"], varied_rl_prompts(world))
    write_jsonl(files["safety_pref_train"], safety_preference_pairs(world))
    write_jsonl(files["rl_prompts_safety"], safety_rl_prompts(world))
    write_jsonl(files["heldout_phrasing"], heldout_phrasing_rows(world))
    write_jsonl(files["tools_train"], tool_training_rows(world))
    write_jsonl(files["tools_heldout"], heldout_tool_prompts(world))
    return files


def fingerprint(build: TinyBuild, corpus_file: Path) -> str:
    h = hashlib.sha256(json.dumps(dataclasses.asdict(build), sort_keys=True).encode())
    h.update(corpus_file.read_bytes())
    return h.hexdigest()[:16]


def build_tiny(out: str | Path = "outputs", build: TinyBuild = TinyBuild(), force: bool = False) -> Path:
    """Write the world under `out/tiny-world` and pretrain `out/tiny-base` (skipped when cached)."""
    out = Path(out)
    files = write_world(build, out)
    base_dir = out / "tiny-base"
    fp = fingerprint(build, files["pretrain"])
    info_path = base_dir / BUILD_INFO
    if not force and info_path.is_file() and json.loads(info_path.read_text()).get("fingerprint") == fp:
        print(f"tiny base up to date: {base_dir} (fingerprint {fp}; --force rebuilds)")
        return base_dir

    # Heavy imports only when we really train.
    from tinyworld.pretrain import PretrainSettings, TinyLlamaShape, pretrain
    from tinyworld.tokenizer import train_tokenizer

    docs = [json.loads(line)["text"] for line in files["pretrain"].read_text().splitlines()]
    tokenizer = train_tokenizer(docs, build.vocab_size)
    shape = TinyLlamaShape(hidden_size=build.hidden_size, num_hidden_layers=build.num_hidden_layers,
                           num_attention_heads=build.num_attention_heads, num_key_value_heads=build.num_key_value_heads,
                           intermediate_size=build.intermediate_size)
    settings = PretrainSettings(block_size=build.block_size, batch_size=build.batch_size, epochs=build.epochs,
                                learning_rate=build.learning_rate, seed=build.world.seed)
    start = time.time()
    model = pretrain(docs, tokenizer, shape, settings, str(base_dir))
    info = {
        "fingerprint": fp,
        "build": dataclasses.asdict(build),
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain_seconds": round(time.time() - start, 1),
        "files": {k: str(v) for k, v in files.items()},
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(f"tiny base built: {base_dir} ({info['parameters'] / 1e6:.2f}M parameters, {info['pretrain_seconds']} s)")
    return base_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyworld", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="generate the world and pretrain the tiny base (cached)")
    b.add_argument("--out", default="outputs", help="output root (default: outputs)")
    b.add_argument("--small", action="store_true", help="the seconds-sized world used by tests")
    b.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    args = parser.parse_args(argv)
    build_tiny(args.out, TinyBuild.small() if args.small else TinyBuild(), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
