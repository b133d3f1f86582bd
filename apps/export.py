"""Export a run as one self-contained model directory that plain transformers loads, with a model card.

    corral export outputs/tiny-sft-lora --out exported/tiny-sft-lora
    corral export outputs/tiny-sft-lora --out exported/tiny-sft-lora --evals reports/quickstart/results.json
    corral export outputs/tiny-sft-lora --out exported/tiny-sft-lora --push-to-hub you/tiny-sft-lora --private

A LoRA/DoRA adapter is merged into its base; a QLoRA adapter is merged into the base reloaded
unquantized (merging into 4-bit weights would round the update away). Written: safetensors shards
(`--max-shard-size`), the tokenizer with its chat template, `generation_config.json` whose
`eos_token_id` includes `<|eot_id|>` (so generation stops after one answer), the run's
run_manifest.json and curves, and README.md: a `huggingface_hub.ModelCard` from the manifest (base
model and its license with the Llama attribution and acceptable-use policy, data fingerprints and
row counts, method and hyperparameters, library versions, the eval table of `--evals`).

Everything is written into a temporary directory beside `--out` and renamed into place at the end,
so an interrupted export leaves no half-written model. `--push-to-hub` uploads the finished
directory (needs a token: `hf auth login` or HF_TOKEN); a failed upload leaves the export in place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from corral.errors import CorralError

ADAPTER_CONFIG = "adapter_config.json"
COPIED = ("run_manifest.json", "loss.png", "rewards.png")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corral export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training output_dir (LoRA/QLoRA/DoRA adapter or full model)")
    p.add_argument("--out", required=True, help="new directory to write (must not exist)")
    p.add_argument("--evals", metavar="RESULTS_JSON", help="results.json of `corral compare` for the card's eval table")
    p.add_argument("--name", help="model name in the card (default: the --out directory name)")
    p.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default: 5GB)")
    p.add_argument("--push-to-hub", metavar="REPO", help="then upload to the Hugging Face Hub repo owner/name")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    return p


def read_manifest(run_dir: Path) -> dict:
    """The run's manifest; for `<run>/merged` the run's; for a bare model directory a stub."""
    for candidate in (run_dir / "run_manifest.json", run_dir.parent / "run_manifest.json"):
        if candidate.is_file() and (candidate.parent == run_dir or run_dir.name == "merged"):
            return json.loads(candidate.read_text())
    return {"status": "unknown (no run_manifest.json)", "config": {}}


def check_inputs(args) -> tuple[Path, Path, dict, dict | None]:
    """Every check before any weights load: one-line CorralErrors."""
    from corral.loading import is_adapter, resolve_base

    run_dir, out = Path(args.run_dir), Path(args.out)
    if not run_dir.is_dir():
        raise CorralError(f"{run_dir}: no such directory; give a training run's output_dir")
    if not (run_dir / "config.json").is_file() and not (run_dir / ADAPTER_CONFIG).is_file():
        raise CorralError(f"{run_dir}: not a run or model directory (no config.json or {ADAPTER_CONFIG}); give a "
                          "training run's output_dir")
    if out.exists():
        raise CorralError(f"--out {out}: already exists; export writes a new directory (remove it or pick another)")
    manifest = read_manifest(run_dir)
    if is_adapter(run_dir):
        base = resolve_base(run_dir)  # a missing base is a one-line CheckpointError naming adapter_config.json
        config = manifest.setdefault("config", {})
        if not any(isinstance(v, dict) and v.get("model_name_or_path") for v in config.values()):
            config["ModelConfig"] = {"model_name_or_path": str(base), "use_peft": True}
    evals = None
    if args.evals:
        try:
            evals = json.loads(Path(args.evals).read_text())
        except (OSError, ValueError) as err:
            raise CorralError(f"--evals {args.evals}: not a readable results.json ({err})") from None
        if not isinstance(evals, dict) or not isinstance(evals.get("models"), dict):
            raise CorralError(f"--evals {args.evals}: no `models` table; give the results.json that "
                              "`corral compare` wrote")
    if args.push_to_hub:
        from huggingface_hub import get_token

        if "/" not in args.push_to_hub:
            raise CorralError(f"--push-to-hub {args.push_to_hub}: expected a repo id owner/name")
        if not get_token():
            raise CorralError("--push-to-hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN")
    return run_dir, out, manifest, evals


def load_for_export(run_dir: Path, manifest: dict):
    """(model, tokenizer, merged_from_adapter): an adapter merged into its unquantized base, or the full model."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from corral.loading import finalize_for_chat, is_adapter, load_tokenizer, merge_adapter, resolve_base

    hf_logging.disable_progress_bar()  # per-shard load/write bars: the export prints one line when done
    has_tokenizer = any((run_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    if is_adapter(run_dir):
        base = resolve_base(run_dir)
        dtype = next((v.get("dtype") for v in manifest.get("config", {}).values() if isinstance(v, dict)
                      and v.get("dtype")), None)
        torch_dtype = torch.float32 if dtype in (None, "auto", "float32") else getattr(torch, dtype)
        # No quantization_config: a QLoRA base is reloaded in full precision before merging.
        model = merge_adapter(run_dir, AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype))
        tokenizer = load_tokenizer(str(run_dir if has_tokenizer else base), chat_template=None)
        merged = True
    else:
        model = AutoModelForCausalLM.from_pretrained(run_dir, dtype="auto")
        tokenizer = load_tokenizer(str(run_dir), chat_template=None)
        merged = False
    tokenizer.padding_side = "left"
    finalize_for_chat(model, tokenizer)  # eos_token_id: the tokenizer's EOS, <|eot_id|>, <|eom_id|>, <|end_of_text|>
    return model, tokenizer, merged


def export(args) -> Path:
    from corral.run_report import model_card

    run_dir, out, manifest, evals = check_inputs(args)
    model, tokenizer, merged = load_for_export(run_dir, manifest)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, max_shard_size=args.max_shard_size)
        tokenizer.save_pretrained(tmp)
        for name in COPIED:
            source = run_dir / name if (run_dir / name).is_file() else run_dir.parent / name
            if source.is_file() and (source.parent == run_dir or run_dir.name == "merged"):
                shutil.copy2(source, tmp / name)
        model_card(manifest, args.name or out.name, evals, merged_from_adapter=merged).save(tmp / "README.md")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def push(out: Path, repo: str, private: bool) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(repo_id=repo, folder_path=str(out), commit_message="corral export")
    return getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = export(args)
    except CorralError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    files = sorted(p.name for p in out.iterdir())
    print(f"exported {args.run_dir} -> {out} ({', '.join(files)})")
    if args.push_to_hub:
        try:
            url = push(out, args.push_to_hub, args.private)
        except Exception as err:  # network, auth, permissions: the export itself is complete
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            print(f"error: --push-to-hub {args.push_to_hub} failed ({reason}); the export is complete in {out}; "
                  f"retry with `hf upload {args.push_to_hub} {out}`", file=sys.stderr)
            return 2
        print(f"pushed to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
