"""corral.recipe: every recipe mistake is one exact line naming the file, the key and the fix.

Recipes are written to a temporary folder that the test `chdir`s into, so paths in the messages
are the short relative ones a user types (`recipes/x.yaml`).
"""

import dataclasses
import enum
import json
import textwrap
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import pytest
import yaml
from transformers.trainer_utils import IntervalStrategy
from trl import DPOConfig, ModelConfig, SFTConfig

from corral.recipe import (
    CorralError,
    RecipeError,
    parse_recipe,
    recipe_reference_markdown,
    resolved_config,
    run_cli,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class DatasetSpec:
    path: str = field(metadata={"help": "JSONL file."})
    weight: float = field(default=1.0, metadata={"help": "Sampling weight."})

    def __post_init__(self):
        if self.weight <= 0:
            raise ValueError(f"weight must be > 0, got {self.weight};\nremove the entry instead")


@dataclass
class ScriptArgs:
    datasets: list[DatasetSpec] = field(default_factory=list, metadata={"help": "Training sources."})
    mode: Literal["fast", "exact"] = "fast"
    color: Color = Color.RED
    tags: list[str] = field(default_factory=list)
    sizes: Optional[list[int]] = None
    extra: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    lr: float = 1e-3
    debug: bool = False
    note: Optional[str] = None
    either: Union[int, str] = 0
    shared: bool = False
    computed: int = field(default=0, init=False)


@dataclass
class OtherArgs:
    name: str = field(metadata={"help": "Run name | id."})
    shared: bool = False


@dataclass
class Unresolvable:
    x: "NameThatDoesNotExist" = 1  # noqa: F821  get_type_hints fails on this class
    y: int = 2


@pytest.fixture
def write(tmp_path, monkeypatch):
    """write("recipes/x.yaml", text) -> "recipes/x.yaml", relative to a fresh working directory."""
    monkeypatch.chdir(tmp_path)

    def _write(rel, text):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
        return rel

    return _write


def parse(argv, types=(ScriptArgs,), **kw):
    return parse_recipe(types, argv, **kw)


def error(argv, types=(ScriptArgs,), **kw):
    with pytest.raises(RecipeError) as info:
        parse_recipe(types, argv, **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


SFT_RECIPE = """\
model_name_or_path: tiny-llama
output_dir: out
use_cpu: true
learning_rate: 3e-4
eval_strategy: no
lora_target_modules: all-linear
"""


def test_trl_recipe_with_command_line_overrides(write):
    path = write("recipes/tiny/sft/lora.yaml", SFT_RECIPE)
    sft, _ = parse([path], (SFTConfig, ModelConfig))
    assert sft.learning_rate == 3e-4  # PyYAML alone reads `3e-4` (no dot) as the string "3e-4"
    sft, model = parse([path, "--learning_rate", "1e-4", "--use_peft", "--lora_r=8", "--report_to", "none"],
                       (SFTConfig, ModelConfig), required=("model_name_or_path", "output_dir"))
    assert sft.learning_rate == 1e-4 and isinstance(sft.learning_rate, float)
    assert sft.eval_strategy == IntervalStrategy.NO  # `no` is a string, not YAML 1.1's False
    assert sft.report_to == []  # the string "none", which transformers reads as no integrations
    assert (model.model_name_or_path, model.use_peft, model.lora_r) == ("tiny-llama", True, 8)
    assert model.lora_target_modules == "all-linear"


def test_yaml_float_without_dot_and_quoted_float_become_floats(write):
    path = write("recipes/x.yaml", "lr: 3e-4\n")
    assert parse([path])[0].lr == 3e-4
    path = write("recipes/y.yaml", "lr: '3e-4'\n")
    assert parse([path])[0].lr == 3e-4
    assert parse([path, "--lr", "5E-5"])[0].lr == 5e-5


@pytest.mark.parametrize("config", [SFTConfig, DPOConfig, ModelConfig])
def test_every_trl_default_survives_parsing(write, config):
    """Each field written back with its default value passes the type checks (and TRL's own)."""
    recipe = {}
    for f in dataclasses.fields(config):
        value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        recipe[f.name] = value.value if isinstance(value, enum.Enum) else value
    if config is not ModelConfig:
        recipe.update(use_cpu=True, output_dir="out")
    (obj,) = parse([write("recipes/defaults.yaml", yaml.safe_dump(recipe))], (config,))
    assert isinstance(obj, config)


def test_bare_flag_lists_and_mappings_on_the_command_line(write):
    path = write("recipes/x.yaml", "seed: 1\n")
    args, = parse([path, "--debug", "--sizes", "1", "2", "--tags=a", "--extra", "{a: 1, b: [x]}",
                   "--note", "null", "--either", "7", "--color", "blue", "--seed", "-3"])
    assert (args.debug, args.sizes, args.tags, args.extra) == (True, [1, 2], ["a"], {"a": 1, "b": ["x"]})
    assert (args.note, args.either, args.color, args.seed) == (None, 7, Color.BLUE, -3)
    assert parse([path, "--debug", "false", "--note", "None"])[0].note == "None"


def test_command_line_overrides_yaml_and_shared_keys_reach_every_dataclass(write):
    path = write("recipes/x.yaml", "seed: 1\nshared: false\nname: run\n")
    args, other = parse([path, "--seed", "2", "--shared", "true"], (ScriptArgs, OtherArgs))
    assert (args.seed, args.shared, other.shared, other.name) == (2, True, True, "run")


def test_nested_list_of_dataclasses_is_built(write):
    path = write("recipes/x.yaml", """\
        datasets:
          - path: a.jsonl
          - {path: b.jsonl, weight: 2}
    """)
    args, = parse([path])
    assert args.datasets == [DatasetSpec("a.jsonl"), DatasetSpec("b.jsonl", 2)]


def test_unresolvable_annotation_is_left_unchecked(write):
    path = write("recipes/x.yaml", "x: anything\ny: 3\n")
    assert parse([path], (Unresolvable,))[0].x == "anything"
    assert parse([path, "--x", "[1, 2]"], (Unresolvable,))[0].x == [1, 2]  # unchecked values are read as YAML
    assert error([path, "--y", "z"], (Unresolvable,)) == "command line: option '--y' expects an int, got str 'z'"


@pytest.mark.parametrize("text, message", [
    ("learning_rat: 1\n", "recipes/x.yaml: unknown key 'learning_rat' (did you mean 'learning_rate'?)"),
    ("zzz: 1\n", "recipes/x.yaml: unknown key 'zzz'"),
    ("learning_rate: fast\n", "recipes/x.yaml: key 'learning_rate' expects a float, got str 'fast'"),
    ("learning_rate: 1\nlearning_rate: 2\n",
     "recipes/x.yaml:2: duplicate key 'learning_rate' (first set on line 1); keep only one"),
    ("learning_rate: 1\n  seed: 2\n", "recipes/x.yaml:2: YAML syntax error: mapping values are not allowed here"),
    ("- learning_rate\n", "recipes/x.yaml: the top level must be a mapping of `key: value` lines, got a list"),
    ("eval_strategy: stpes\n",
     "recipes/x.yaml: key 'eval_strategy' expects one of 'no', 'steps', 'epoch', got str 'stpes'"),
    ("bf16: yes\n", "recipes/x.yaml: key 'bf16' expects true or false or null, got str 'yes'"),
    ("per_device_train_batch_size: 1.5\n",
     "recipes/x.yaml: key 'per_device_train_batch_size' expects an int, got float 1.5"),
    ("model_name_or_path: m\nuse_cpu: true\nfp16: true\nbf16: true\n",  # TrainingArguments.__post_init__
     "recipes/x.yaml: At most one of fp16 and bf16 can be True, but not both"),
    ("a: 1\n---\nb: 2\n",
     "recipes/x.yaml:2: YAML syntax error: expected a single document in the stream, but found another document"),
    ("use_cpu: true\n", "recipes/x.yaml: missing required key 'model_name_or_path'"),
    ("use_cpu: true\nmodel_name_or_path: null\n", "recipes/x.yaml: missing required key 'model_name_or_path'"),
])
def test_trl_recipe_errors(write, text, message):
    path = write("recipes/x.yaml", text)
    assert error([path], (SFTConfig, ModelConfig), required=("model_name_or_path",)) == message


@pytest.mark.parametrize("text, message", [
    ("debug: 1\n", "recipes/x.yaml: key 'debug' expects true or false, got int 1"),
    ("seed: true\n", "recipes/x.yaml: key 'seed' expects an int, got bool True"),
    ("mode: slow\n", "recipes/x.yaml: key 'mode' expects one of 'fast', 'exact', got str 'slow'"),
    ("color: green\n", "recipes/x.yaml: key 'color' expects one of 'red', 'blue', got str 'green'"),
    ("sizes: [1, two]\n", "recipes/x.yaml: key 'sizes' expects a list of int or null, got list [1, 'two']"),
    ("extra: [1]\n", "recipes/x.yaml: key 'extra' expects a mapping, got list [1]"),
    ("note: 2024\n", "recipes/x.yaml: key 'note' expects a string or null, got int 2024"),
    ("computed: 3\n", "recipes/x.yaml: key 'computed' cannot be set: it is computed from the other keys"),
    ("datasets: a.jsonl\n",
     "recipes/x.yaml: key 'datasets' expects a list of DatasetSpec, got str 'a.jsonl'"),
    ("datasets:\n  - path: a\n  - pth: b\n", "recipes/x.yaml: datasets[1]: unknown key 'pth' (did you mean 'path'?)"),
    ("datasets:\n  - weight: 2\n", "recipes/x.yaml: datasets[0]: missing required key 'path'"),
    ("datasets:\n  - {path: a, weight: heavy}\n",
     "recipes/x.yaml: datasets[0]: key 'weight' expects a float, got str 'heavy'"),
    ("datasets:\n  - path: a\n    path: b\n",
     "recipes/x.yaml:3: duplicate key 'path' (first set on line 2); keep only one"),
    ("datasets:\n  - {path: a, weight: 0}\n",
     "recipes/x.yaml: datasets[0]: weight must be > 0, got 0; remove the entry instead"),
])
def test_local_dataclass_errors(write, text, message):
    assert error([write("recipes/x.yaml", text)]) == message


@pytest.mark.parametrize("argv, message", [
    (["--lrr", "1"], "command line: unknown option '--lrr' (did you mean '--lr'?)"),
    (["--zzz=1"], "command line: unknown option '--zzz'"),
    (["--lr", "fast"], "command line: option '--lr' expects a float, got str 'fast'"),
    (["--seed"], "command line: option '--seed' needs a value: --seed VALUE"),
    (["--seed", "1", "2"], "command line: option '--seed' takes one value, got 2: 1 2"),
    (["--debug", "yes"], "command line: option '--debug' expects true or false, got str 'yes'"),
    (["seed", "1"], "command line: unexpected argument 'seed'; overrides look like --key value"),
    (["--computed", "1"], "command line: option '--computed' cannot be set: it is computed from the other keys"),
    (["--datasets", "[{pth: a}]"], "command line: datasets[0]: unknown key 'pth' (did you mean 'path'?)"),
    (["--extra", "{a: [1"], "command line: option '--extra': cannot read '{a: [1' as YAML "
                           "(expected ',' or ']', but got '<stream end>')"),
])
def test_command_line_errors(write, argv, message):
    assert error([write("recipes/x.yaml", "seed: 1\n"), *argv]) == message


def test_missing_recipe_and_missing_argument(write, monkeypatch):
    write("recipes/tiny/sft/lora.yaml", "seed: 1\n")
    write("recipes/tiny/dpo/full.yaml", "seed: 1\n")
    assert error(["recipes/tiny/sft/lora.yml"]) == (
        "recipes/tiny/sft/lora.yml: recipe file not found (did you mean 'recipes/tiny/sft/lora.yaml'?)")
    assert error(["recipes/tiny/zzz/qqqqqqqqqqqq.yaml"]) == (
        "recipes/tiny/zzz/qqqqqqqqqqqq.yaml: recipe file not found; recipes under recipes/tiny: "
        "recipes/tiny/dpo/full.yaml, recipes/tiny/sft/lora.yaml")
    monkeypatch.setattr("sys.argv", ["finetune/sft.py"])
    usage = "command line: no recipe given; usage: sft.py RECIPE.yaml [--key value ...]"
    assert error([]) == usage
    assert error(["--seed", "1"]) == usage
    assert error(None) == usage  # argv=None reads sys.argv[1:]


def test_required_field_without_default(write):
    path = write("recipes/x.yaml", "shared: true\n")
    assert error([path], (ScriptArgs, OtherArgs)) == "recipes/x.yaml: missing required key 'name'"


def test_run_cli_prints_one_line_and_exits_2(capsys):
    def bad_recipe(argv):
        raise RecipeError("recipes/x.yaml: unknown key 'zzz'")

    class BadRow(CorralError):
        pass

    def bad_data(argv):
        raise BadRow("data/a.jsonl:3: missing 'messages'\n(see data_prep)")

    for main, line in [(bad_recipe, "error: recipes/x.yaml: unknown key 'zzz'\n"),
                       (bad_data, "error: data/a.jsonl:3: missing 'messages' (see data_prep)\n")]:
        with pytest.raises(SystemExit) as info:
            run_cli(main, ["x.yaml"])
        assert info.value.code == 2
        assert capsys.readouterr().err == line

    assert run_cli(lambda argv: argv, ["ok.yaml"]) == ["ok.yaml"]
    with pytest.raises(KeyError):  # a bug is not a user mistake: keep the traceback
        run_cli(lambda argv: {}["missing"])


def test_resolved_config_is_json_with_enum_values_and_no_secrets(write):
    path = write("recipes/x.yaml", SFT_RECIPE + "hub_token: hf_secret\ndatasets: [{path: a}]\ncolor: blue\n")
    config = resolved_config(parse([path], (ScriptArgs, SFTConfig, ModelConfig)))
    assert json.loads(json.dumps(config)) == config
    assert config["ScriptArgs"]["datasets"] == [{"path": "a", "weight": 1.0}]
    assert config["ScriptArgs"]["color"] == "blue"
    assert config["SFTConfig"]["eval_strategy"] == "no"
    assert config["SFTConfig"]["hub_token"] == "<redacted>"
    assert config["ModelConfig"]["model_name_or_path"] == "tiny-llama"


def test_recipe_reference_markdown():
    assert recipe_reference_markdown((OtherArgs, ScriptArgs), "Script", only={"name", "shared", "datasets"}) == (
        "### Script\n\n"
        "| key | type | default | help |\n"
        "|---|---|---|---|\n"
        "| `name` | str | required | Run name \\| id. |\n"
        "| `shared` | bool | `false` |  |\n"
        "| `datasets` | list[DatasetSpec] | `[]` | Training sources. |\n")
    table = recipe_reference_markdown((SFTConfig,), "SFT", only={"learning_rate", "eval_strategy"})
    assert "| `learning_rate` | float | `2.0e-05` | The initial learning rate for AdamW. |" in table
    with pytest.raises(ValueError, match="max_seq_length"):
        recipe_reference_markdown((SFTConfig,), "SFT", only={"max_seq_length"})
