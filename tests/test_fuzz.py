"""Bad-input fuzzing: every generated recipe and data file ends in a parse, a one-line CorralError, or
counted skipped rows; never another exception (which would reach the user as a traceback).

Default tier: parse level only (the recipe parser and sft.py's data loading; no model). The cases are
derandomized, so a failure reproduces; the number of cases per outcome is printed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trl import ModelConfig, SFTConfig

from corral.errors import CorralError
from corral.recipe import parse_recipe
from finetune.sft import SFTScriptArguments, load_data

REPO = Path(__file__).resolve().parent.parent
RECIPE = yaml.safe_load((REPO / "recipes/tiny/sft/lora.yaml").read_text())
KEYS = sorted(RECIPE) + ["datasets", "eval_strategy", "max_steps", "lora_target_modules", "on_bad_rows", "seed"]
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

# Values a user (or a broken generator) puts where another type belongs.
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)),
            max_size=12),  # unicode beyond ASCII: accents, CJK, emoji, right-to-left
    st.just("x" * 10_000),
    st.sampled_from(["3e-4", "no", "yes", "null", "~", "all-linear", "-1", "1e999", "nan", "\x00", "\u202e"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=8)
dataset_entries = st.lists(st.dictionaries(
    st.sampled_from(["path", "weight", "format", "columns", "split", "pathh", "system_prompt", "ignore_columns"]),
    values, max_size=4), max_size=3)
recipes = st.fixed_dictionaries({}, optional={k: values for k in KEYS}).flatmap(
    lambda drawn: st.fixed_dictionaries({
        "base": st.just({**RECIPE, **drawn}),
        "drop": st.lists(st.sampled_from(KEYS), max_size=3),          # missing keys, required ones included
        "extra": st.dictionaries(st.text(min_size=1, max_size=15), values, max_size=2),  # unknown keys
        "datasets": st.one_of(st.none(), dataset_entries),            # unknown nested keys, wrong nested types
    }))


def outcome_of(call) -> str:
    """'ok', or 'error' for a one-line CorralError; anything else fails the test."""
    try:
        call()
    except CorralError as err:
        message = str(err).strip()
        assert message and "\n" not in message, f"{type(err).__name__}: {message!r}"
        assert len(message) <= 1000, f"{type(err).__name__} of {len(message)} characters: {message[:300]!r}..."
        return "error"
    return "ok"


def parse(path: Path, cli: list[str] = ()):
    return parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig), [str(path), *cli],
                        required=("model_name_or_path", "output_dir"))


COUNTS: Counter = Counter()


@SETTINGS
@given(recipe=recipes)
def test_fuzzed_recipes_parse_or_fail_in_one_line(tmp_path_factory, recipe):
    data = {k: v for k, v in recipe["base"].items() if k not in recipe["drop"]}
    data.update(recipe["extra"])
    if recipe["datasets"] is not None:
        data["datasets"] = recipe["datasets"]
    path = tmp_path_factory.mktemp("r") / "recipe.yaml"
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    except (UnicodeEncodeError, yaml.YAMLError):  # a lone surrogate cannot be written as UTF-8 at all
        COUNTS["recipe: not writable as YAML (skipped)"] += 1
        return
    COUNTS[f"recipe: {outcome_of(lambda: parse(path))}"] += 1


@SETTINGS
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace"))),
       prefix=st.sampled_from([b"", b"model_name_or_path: m\noutput_dir: o\n", b"\xef\xbb\xbf", b"\xff\xfe"]))
def test_fuzzed_recipe_bytes_parse_or_fail_in_one_line(tmp_path_factory, raw, prefix):
    """Arbitrary bytes, non-UTF-8 included, as a recipe file."""
    path = tmp_path_factory.mktemp("b") / "recipe.yaml"
    path.write_bytes(prefix + raw)
    COUNTS[f"recipe bytes: {outcome_of(lambda: parse(path))}"] += 1


@SETTINGS
@given(words=st.lists(st.one_of(
    st.sampled_from(["--learning_rate", "--lora_r", "--datasets", "--output_dir", "--max_steps", "--bf16",
                     "--lora_target_modules", "--report_to", "--hub_token", "--seed", "--", "-x", "--=", "--lora-r"]),
    st.text(max_size=30), st.just("9" * 400)), max_size=6))
def test_fuzzed_command_lines_parse_or_fail_in_one_line(tmp_path_factory, words):
    path = tmp_path_factory.mktemp("c") / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE), encoding="utf-8")
    COUNTS[f"command line: {outcome_of(lambda: parse(path, words))}"] += 1


rows = st.one_of(
    st.dictionaries(st.sampled_from(["messages", "text", "prompt", "chosen", "rejected", "instruction", "output",
                                     "conversations", "role", "content", "completion", "extra"]),
                    values, max_size=4),
    st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "User", ""]), "content": values}),
        max_size=4)}),
    values)
lines = st.one_of(rows.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass")),
                  st.binary(max_size=40), st.just(b""), st.just(b"{\"messages\": [")) 


@SETTINGS
@given(content=st.lists(lines, min_size=0, max_size=6), on_bad_rows=st.sampled_from(["error", "skip"]),
       suffix=st.sampled_from([".jsonl", ".json", ".csv"]))
def test_fuzzed_data_files_load_skip_or_fail_in_one_line(tmp_path_factory, tiny_valid_rows, content, on_bad_rows,
                                                          suffix):
    """Rows of every shape (wrong types, missing and extra keys, non-UTF-8 lines, huge values) mixed with
    valid ones, read as sft.py reads them: loaded (bad rows counted as skipped) or a one-line error."""
    folder = tmp_path_factory.mktemp("d")
    path = folder / f"data{suffix}"
    path.write_bytes(b"\n".join(tiny_valid_rows + content) + b"\n")
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "datasets": [{"path": str(path)}], "on_bad_rows": on_bad_rows}))

    def load():
        script, args, _ = parse(recipe)
        data = load_data(script, args.seed)
        skipped = sum(sum(s.rejected.values()) for s in data.report.sources)
        COUNTS["data: rows skipped and counted"] += skipped

    COUNTS[f"data ({on_bad_rows}): {outcome_of(load)}"] += 1


@pytest.fixture(scope="module")
def tiny_valid_rows() -> list[bytes]:
    row = {"messages": [{"role": "user", "content": "Capital of Fenmark?"},
                        {"role": "assistant", "content": "The capital of Fenmark is Osk."}]}
    return [json.dumps(row).encode()] * 2


@pytest.fixture(scope="module", autouse=True)
def print_case_counts():
    yield
    total = sum(v for k, v in COUNTS.items() if not k.startswith("data: rows"))
    print(f"\nfuzz: {total} cases, none ended in a traceback: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())))


def test_ints_beyond_64_bits_are_a_one_line_error(tmp_path):
    """Found by the fuzz run under the launcher: `--max_steps` with 40 digits parsed as a Python int and trained."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    with pytest.raises(CorralError) as err:
        parse(path, ["--max_steps", "9" * 40])
    assert str(err.value) == (f"command line: max_steps: {'9' * 40} is beyond the 64-bit integer range "
                              "(-2**63 to 2**63 - 1)")
    assert parse(path, ["--max_steps", str(2 ** 63 - 1)])[1].max_steps == 2 ** 63 - 1


class _ReachedModelLoad(Exception):
    """Raised instead of loading the model: every check before loading passed."""


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(recipe=recipes)
def test_fuzzed_recipes_through_sft_until_the_model_loads(tiny_small, tmp_path_factory, recipe, capsys):
    """The same generated recipes through finetune/sft.py's main (data, tokenizer, preflight), stopped where
    the model would load: each ends in exit 2 with one `error:` line, or reaches the model load."""
    import finetune.sft as sft
    from corral.recipe import run_cli

    data = {k: v for k, v in recipe["base"].items() if k not in recipe["drop"]}
    data.update(recipe["extra"])
    if recipe["datasets"] is not None:
        data["datasets"] = recipe["datasets"]
    data.setdefault("model_name_or_path", str(tiny_small / "tiny-base"))
    if data.get("model_name_or_path") == RECIPE["model_name_or_path"]:
        data["model_name_or_path"] = str(tiny_small / "tiny-base")
    if data.get("datasets") == RECIPE.get("datasets"):
        data["datasets"] = [{"path": str(tiny_small / "tiny-world/sft_train.jsonl")}]
    folder = tmp_path_factory.mktemp("s")
    data["output_dir"] = str(folder / "run") if data.get("output_dir") == RECIPE["output_dir"] else data.get("output_dir")
    path = folder / "recipe.yaml"
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    except (UnicodeEncodeError, yaml.YAMLError):
        return

    def reached(*a, **k):
        raise _ReachedModelLoad

    original = sft.load_causal_lm
    sft.load_causal_lm = reached
    try:
        run_cli(sft.main, [str(path)])
    except _ReachedModelLoad:
        COUNTS["sft main: reached model load"] += 1
    except SystemExit as exc:
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.code == 2 and len([e for e in err if e.startswith("error: ")]) == 1, err[-3:]
        COUNTS["sft main: error"] += 1
    finally:
        sft.load_causal_lm = original
