"""What a finished run leaves for people: a model card (README.md) and training curves (loss.png).

TRL writes a README.md into every output_dir that says "fine-tuned version of [None]" and
`licence: license` and names no data. corral replaces it with a card built from run_manifest.json
(`model_card`): the base model and its license (with the attribution and acceptable-use policy the
Llama Community Licenses require of anyone who shares a derivative), the data with fingerprints and
row counts, the method and its hyperparameters, library versions, and an eval table when a
`python -m evals.compare` results.json is given. `corral export` writes the same card.

`write_curves` plots the Trainer's log history: loss, and for preference and RL runs the reward
(margins, accuracies) and KL curves, into `loss.png` and `rewards.png` beside the manifest.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from corral.manifest import MANIFEST_NAME, finish_manifest

logger = logging.getLogger(__name__)

TINY_BUILD_INFO = "tiny_build.json"  # tinyworld writes it beside the embedded base it pretrains


@dataclass(frozen=True)
class LlamaLicense:
    hub_id: str  # the Hub's `license:` value
    name: str
    url: str
    use_policy: str
    attribution: str  # what the license asks a redistributor to display
    notice: str  # the "Notice" text file line the license asks to keep
    name_prefix: str  # a model trained on Llama Materials must start its name with this


def _meta(version: str, path: str, attribution: str = "Built with Llama", prefix: str = "Llama") -> LlamaLicense:
    name = f"Llama {version} Community License"
    return LlamaLicense(
        hub_id=f"llama{version}", name=name, url=f"https://www.llama.com/{path}/license/",
        use_policy=f"https://www.llama.com/{path}/use-policy/", attribution=attribution,
        notice=f"Llama {version} is licensed under the {name}, Copyright © Meta Platforms, Inc. All Rights Reserved.",
        name_prefix=prefix)


LLAMA_LICENSES = {
    "llama3": LlamaLicense(
        hub_id="llama3", name="Meta Llama 3 Community License", url="https://www.llama.com/llama3/license/",
        use_policy="https://www.llama.com/llama3/use-policy/", attribution="Built with Meta Llama 3",
        notice="Meta Llama 3 is licensed under the Meta Llama 3 Community License, Copyright © Meta Platforms, Inc. "
               "All Rights Reserved.", name_prefix="Llama 3"),
    "llama3.1": _meta("3.1", "llama3_1"),
    "llama3.2": _meta("3.2", "llama3_2"),
    "llama3.3": _meta("3.3", "llama3_3"),
    "llama4": _meta("4", "llama4"),
}
_NAME_PATTERNS = (  # most specific first: "Llama-3.1-8B" must not read as Llama 3
    (r"llama[-_ ]?4", "llama4"), (r"llama[-_ ]?3[._]3", "llama3.3"), (r"llama[-_ ]?3[._]2", "llama3.2"),
    (r"llama[-_ ]?3[._]1", "llama3.1"), (r"llama[-_ ]?3", "llama3"),
)


@dataclass(frozen=True)
class BaseLicense:
    hub_id: str
    llama: LlamaLicense | None
    note: str


def base_license(base: str | None) -> BaseLicense:
    """The license of a base checkpoint: corral's tiny base, a Llama (from its README's `license:`, its
    name or its config), or unknown (`other`, with a note asking the user to fill it in)."""
    base = base or ""
    path = Path(base)
    if (path / TINY_BUILD_INFO).is_file():
        return BaseLicense("apache-2.0", None, "The base is corral's embedded tiny model, pretrained from scratch on "
                           "the generated tiny world by `python -m tinyworld build` (Apache-2.0, like corral); it "
                           "contains no Meta Llama weights.")
    found = None
    readme = path / "README.md"
    if readme.is_file():
        m = re.search(r"^license:\s*['\"]?([\w.-]+)", readme.read_text(encoding="utf-8", errors="replace"), re.M)
        if m and m.group(1) in LLAMA_LICENSES:
            found = m.group(1)
    for pattern, key in _NAME_PATTERNS if found is None else ():
        if re.search(pattern, base, re.I):
            found = key
            break
    if found is None and (path / "config.json").is_file():
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
        found = "llama4" if model_type.startswith("llama4") else None
    if found:
        lic = LLAMA_LICENSES[found]
        return BaseLicense(lic.hub_id, lic, f"The base is a Meta Llama model under the {lic.name}.")
    return BaseLicense("other", None, f"corral did not recognise the license of the base `{base}`: check it and "
                       "write it here (and in `license:` above) before sharing this model.")


# --- the card --------------------------------------------------------------------------------------

_HYPERPARAMETERS = (
    "method", "loss_type", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay",
    "max_length", "max_prompt_length", "packing", "assistant_only_loss", "beta", "num_generations",
    "use_peft", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_dora", "load_in_4bit",
    "load_in_8bit", "bnb_4bit_quant_type", "dtype", "bf16", "seed",
)
_METHODS = {"finetune/sft.py": "SFT", "finetune/dpo.py": "preference tuning", "reward/train.py": "reward model",
            "finetune/rl.py": "online RL", "finetune/rejection_sampling.py": "rejection sampling"}


def _config_values(manifest: dict) -> dict:
    """Every resolved recipe value, one flat mapping (the first dataclass that declares a key wins)."""
    out: dict = {}
    for fields in (manifest.get("config") or {}).values():
        if isinstance(fields, dict):
            for k, v in fields.items():
                out.setdefault(k, v)
    return out


def adapter_kind(values: dict) -> str | None:
    if not values.get("use_peft"):
        return None
    kind = "DoRA" if values.get("use_dora") else "LoRA"
    if values.get("load_in_4bit") or values.get("load_in_8bit"):
        kind = "QLoRA" if kind == "LoRA" else f"Q{kind}"
    return kind


def method_name(manifest: dict) -> str:
    values = _config_values(manifest)
    script = manifest.get("script", "")
    name = _METHODS.get(script, script or "unknown")
    if values.get("method"):
        name = f"{name} ({values['method']})"
    kind = adapter_kind(values)
    return f"{name}, {kind}" if kind else f"{name}, full fine-tuning"


def _cell(value) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _data_section(manifest: dict) -> list[str]:
    data = manifest.get("data") or {}
    lines = ["## Training data", ""]
    values = _config_values(manifest)
    sources = data.get("sources") or [{"path": d.get("path")} for d in values.get("datasets") or [] if isinstance(d, dict)]
    if sources:
        keys = [k for k in ("path", "format", "rows", "rows_read", "rows_used", "bad_rows", "duplicates", "weight")
                if any(k in s for s in sources)]
        extra = sorted({k for s in sources for k, v in s.items() if k not in keys and isinstance(v, (int, float, str))})
        keys += extra[:4]
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_cell(s.get(k, "")) for k in keys) + " |" for s in sources]
        lines.append("")
    for key, label in (("fingerprint", "data fingerprint (sha256 of the mixed rows)"), ("train_rows", "training rows"),
                       ("train_tokens", "training tokens"), ("eval_rows", "eval rows")):
        if data.get(key) is not None:
            lines.append(f"- {label}: `{data[key]}`")
    if not sources and not data:
        lines.append("No data record in run_manifest.json.")
    return lines + [""]


def _eval_section(results: dict) -> list[str]:
    models = results.get("models") or {}
    if not models:
        return []
    metrics = []
    for scores in models.values():
        for k, v in scores.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in metrics:
                metrics.append(k)
    metrics = metrics[:8]
    lines = ["## Evaluation", "", f"`python -m evals.compare` on `{(results.get('suite') or {}).get('path', 'the suite')}`:", "",
             "| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name, scores in models.items():
        cells = [f"{scores[m]:.4g}" if isinstance(scores.get(m), (int, float)) else "" for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _worth_listing(key: str, values: dict) -> bool:
    """Set values that say how this run trained: no `false` switches, no settings of an unused feature."""
    value = values.get(key)
    if value in (None, [], "", False):
        return False
    if key == "bnb_4bit_quant_type":
        return bool(values.get("load_in_4bit"))
    if key.startswith("lora_") or key == "use_dora":
        return bool(values.get("use_peft"))
    if key == "num_train_epochs":
        return not (values.get("max_steps") or 0) > 0
    if key in ("max_steps", "warmup_steps", "warmup_ratio", "weight_decay"):
        return value not in (0, 0.0, -1)
    return True


def card_text(manifest: dict, model_name: str, evals: dict | None = None, merged_from_adapter: bool = False) -> str:
    """The model card's markdown body (without the YAML header) for a run's model."""
    values = _config_values(manifest)
    base = values.get("model_name_or_path") or "unknown"
    lic = base_license(base)
    libs = manifest.get("libraries") or {}
    kind = adapter_kind(values)
    lines = [f"# {model_name}", ""]
    if lic.llama:
        lines += [f"**{lic.llama.attribution}**", ""]
    lines += [f"`{model_name}` is `{base}` fine-tuned with corral by {method_name(manifest)} "
              f"(`{manifest.get('script', '?')}`, status `{manifest.get('status', '?')}`).", ""]
    if merged_from_adapter and kind:
        quant = " The adapter was trained on a 4-bit quantized base; it is merged into the unquantized base weights." \
            if kind.startswith("Q") else ""
        lines += [f"The {kind} adapter is merged into the base: this directory is a full model.{quant}", ""]
    lines += ["## License", "", lic.note, ""]
    if lic.llama:
        ll = lic.llama
        lines += [f"- License: [{ll.name}]({ll.url}); a copy of the agreement must go with the model when you share it.",
                  f"- Use is subject to Meta's [Acceptable Use Policy]({ll.use_policy}).",
                  f"- Attribution: \"{ll.attribution}\" is displayed above, as the license requires of a shared "
                  "derivative.",
                  f"- Naming: the license asks that a model trained on Llama Materials begins its name with "
                  f"\"{ll.name_prefix}\".",
                  f"- Notice: {ll.notice}", ""]
    lines += _data_section(manifest)
    lines += ["## Training", "", f"- method: {method_name(manifest)}", f"- base model: `{base}`",
              f"- corral commit: `{manifest.get('corral_commit')}`",
              f"- started {manifest.get('started_at', '?')}, finished {manifest.get('finished_at', '?')}", "",
              "| hyperparameter | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(values[k])} |" for k in _HYPERPARAMETERS if _worth_listing(k, values)]
    metrics = manifest.get("metrics") or {}
    if metrics:
        lines += ["", "Final training metrics: " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())]
    lines.append("")
    if evals:
        lines += _eval_section(evals)
    lines += ["## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
              f'tok = AutoTokenizer.from_pretrained("{model_name}")',
              f'model = AutoModelForCausalLM.from_pretrained("{model_name}")',
              'ids = tok.apply_chat_template([{"role": "user", "content": "Hello!"}], add_generation_prompt=True,',
              '                              return_tensors="pt", return_dict=True)',
              'out = model.generate(**ids, max_new_tokens=64)  # stops at <|eot_id|> (generation_config.json)',
              'print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))', "```", "",
              "Or `corral chat DIR` in a terminal, `corral arena DIR OTHER_DIR` in a browser.", "",
              "## Framework versions", ""]
    lines += [f"- {k}: {v}" for k, v in libs.items() if v]
    return "\n".join(lines) + "\n"


def _hub_id(name) -> bool:
    """`owner/name` that is not a local path: what the Hub's `base_model:` and `datasets:` accept."""
    name = str(name or "")
    return bool(re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", name)) and not Path(name).exists() \
        and not name.startswith(("outputs/", "data/", "./"))


def model_card(manifest: dict, model_name: str, evals: dict | None = None, merged_from_adapter: bool = False):
    """A `huggingface_hub.ModelCard` (YAML header: license, base_model, tags) for a run's model."""
    from huggingface_hub import ModelCard, ModelCardData

    values = _config_values(manifest)
    base = values.get("model_name_or_path")
    lic = base_license(base)
    tags = ["corral", *(t for t in (manifest.get("script", "").split("/")[-1].removesuffix(".py"),
                                    values.get("method"), (adapter_kind(values) or "").lower()) if t)]
    if lic.llama:
        tags += ["llama", lic.hub_id]
    hub_datasets = [d["path"] for d in values.get("datasets") or [] if isinstance(d, dict) and _hub_id(d.get("path"))]
    data = ModelCardData(
        license=lic.hub_id, library_name="transformers", pipeline_tag="text-generation", tags=list(dict.fromkeys(tags)),
        base_model=base if _hub_id(base) else None, datasets=hub_datasets or None)
    if lic.hub_id == "other":
        data.license_name = "unknown"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{card_text(manifest, model_name, evals, merged_from_adapter)}")


# --- curves ----------------------------------------------------------------------------------------

_REWARD_KEYS = ("rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected", "reward", "kl",
                "objective/kl", "objective/rlhf_reward", "accuracy")


def write_curves(output_dir: str | Path, log_history: list[dict]) -> list[Path]:
    """`loss.png` (train and eval loss by step) and, when logged, `rewards.png` (reward and KL curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir, written = Path(output_dir), []

    def series(key: str) -> tuple[list, list]:
        pts = [(e["step"], e[key]) for e in log_history if isinstance(e.get(key), (int, float)) and "step" in e]
        return [p[0] for p in pts], [p[1] for p in pts]

    loss_keys = [k for k in ("loss", "eval_loss") if series(k)[0]]
    if loss_keys:
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for key in loss_keys:
            ax.plot(*series(key), marker="." if key == "eval_loss" else None, label=key)
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title(f"{output_dir.name}: loss")
        ax.legend(), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(output_dir / "loss.png")
        plt.close(fig)
        written.append(output_dir / "loss.png")
    reward_keys = [k for k in _REWARD_KEYS if series(k)[0] or series(f"eval_{k}")[0]]
    if reward_keys:
        fig, axes = plt.subplots(1, len(reward_keys), figsize=(3.2 * len(reward_keys), 3.2), dpi=100, squeeze=False)
        for ax, key in zip(axes[0], reward_keys):
            for k in (key, f"eval_{key}"):
                if series(k)[0]:
                    ax.plot(*series(k), label=k)
            ax.set_title(key, fontsize=9), ax.set_xlabel("step"), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(output_dir / "rewards.png")
        plt.close(fig)
        written.append(output_dir / "rewards.png")
    return written


def finish_run(output_dir: str | Path, manifest: dict, **results) -> dict:
    """`finish_manifest`, then the run report beside it (loss.png, rewards.png, corral's model card)."""
    manifest = finish_manifest(str(output_dir), manifest, **results)
    write_run_report(output_dir, manifest)
    return manifest


def write_run_report(output_dir: str | Path, manifest: dict | None = None) -> list[Path]:
    """After a run: curves from its manifest's log history, and the model card in place of TRL's README
    (in `merged/` too). Never fails the finished run: a problem is logged as a warning."""
    output_dir = Path(output_dir)
    written = []
    try:
        manifest = manifest if manifest is not None else json.loads((output_dir / MANIFEST_NAME).read_text())
        written += write_curves(output_dir, manifest.get("log_history") or [])
        targets = [(output_dir, False)] + [(output_dir / "merged", True)] * (output_dir / "merged" / "config.json").is_file()
        for target, merged in targets:
            if (target / "config.json").is_file() or (target / "adapter_config.json").is_file():
                model_card(manifest, target.name if not merged else f"{output_dir.name}-merged",
                           merged_from_adapter=merged).save(target / "README.md")
                written.append(target / "README.md")
    except Exception as err:  # a report is a courtesy; the trained model is already saved
        logger.warning("%s: run report (loss.png, README.md) not written: %s", output_dir, err)
    return written


def curve_images(model_dir: str | Path) -> dict[str, bytes]:
    """The training curves a run left (`loss.png`, `rewards.png`) for a model directory, or for `<run>/merged`
    its run's; `{}` for a model that was not trained by corral."""
    model_dir = Path(model_dir)
    for run in (model_dir, model_dir.parent if model_dir.name == "merged" else None):
        if run is not None and (run / MANIFEST_NAME).is_file():
            return {p.stem: p.read_bytes() for p in (run / "loss.png", run / "rewards.png") if p.is_file()}
    return {}
