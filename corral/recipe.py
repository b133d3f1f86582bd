"""Strict recipe parsing: a YAML recipe plus `--key value` overrides become config dataclasses.

    script_args, training_args, model_args = parse_recipe(
        (ScriptArguments, SFTConfig, ModelConfig), required=("model_name_or_path", "output_dir"))

Why not TRL's `TrlParser`: its scripts drop unknown keys (`fail_with_unknown_args=False`), so a
misspelled `learning_rat: 3e-4` trains silently with the default, and YAML values reach the
dataclasses unchecked, so a wrong type surfaces as a traceback deep inside the trainer. Here every
key and value is checked against the dataclass fields before anything is built, and each mistake
is a one-line `RecipeError` naming the file (or "command line"), the key, what was expected and
the fix. `run_cli` turns those into `error: ...` on stderr and exit code 2.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import math
import os
import re
import sys
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from corral.errors import USER_ERROR_EXIT, CorralError
from corral.tracking import report_to_problem

_UNIONS = (Union, types.UnionType)
_SECRET_FIELDS = {"hub_token", "token"}  # not `*_token`: SFTConfig's `pad_token`/`eos_token` are no secrets


class RecipeError(CorralError, ValueError):
    """A recipe or command-line mistake: `<file or "command line">: <key>: <expected>, <fix>`."""

    def __init__(self, message: str):
        super().__init__(re.sub(r"\s*\n\s*", " ", str(message).strip()))


class _Mismatch(Exception):
    """A value does not fit an annotation; the caller knows the key and words the error."""


def _fail(source: str, where: str, message: str) -> typing.NoReturn:
    raise RecipeError(f"{source}: {where + ': ' if where else ''}{message}")


# --- YAML -----------------------------------------------------------------------------------------


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads booleans and floats as YAML 1.2 does.

    PyYAML keeps the last of two equal keys without a word, so a recipe edited twice trains with
    whichever line came later. It also follows YAML 1.1, where `no`/`off`/`yes` are booleans
    (`eval_strategy: no` would arrive as False) and `3e-4` (no dot) is a string.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            first = seen.setdefault(key, key_node)
            if first is not key_node:
                raise _DuplicateKeyError(
                    None, None,
                    f"duplicate key '{key}' (first set on line {first.start_mark.line + 1}); keep only one",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


_BOOL, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float"
_RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RecipeLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_RecipeLoader.add_implicit_resolver(  # after the int resolver, so `10` stays an int
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _read_recipe(path: str) -> dict:
    if not Path(path).is_file():
        _fail(path, "", f"recipe file not found{_nearby_recipes(Path(path))}")
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_RecipeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        if isinstance(err, _DuplicateKeyError) or not err.context or err.context.startswith("while"):
            problem = err.problem  # PyYAML's "while scanning ..." context only restates the line
        else:
            problem = f"{err.context}, {err.problem}"
        prefix = "" if isinstance(err, _DuplicateKeyError) else "YAML syntax error: "
        raise RecipeError(f"{path}{line}: {prefix}{problem}") from None
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: YAML syntax error: {err}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 text file; is this the recipe?") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        _fail(path, "", f"the top level must be a mapping of `key: value` lines, got a {type(data).__name__}")
    return data


def _nearby_recipes(path: Path) -> str:
    """Point at the recipe the user probably meant: the nearest existing folder on the path."""
    folder = path if path.is_dir() else path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    if str(folder) in ("", ".", folder.anchor):  # never crawl the whole working tree or disk
        return f"; paths are relative to {os.getcwd()}"
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files) if f.endswith((".yaml", ".yml"))]
        if len(found) > 500:
            break
    # Compare below the folder: a long shared prefix would make every path look close.
    below = {os.path.relpath(f, folder): f for f in found}
    close = [below[c] for c in difflib.get_close_matches(os.path.relpath(path, folder), below, n=3, cutoff=0.8)]
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    if found:
        return f"; recipes under {folder}: {', '.join(found[:5])}{', ...' if len(found) > 5 else ''}"
    return f"; paths are relative to {os.getcwd()}"


# --- fields and types ------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """(settable field -> annotation, names of `init=False` fields) for a dataclass.

    `get_type_hints` can fail (a forward reference to a name the module never imports); then each
    field keeps its raw annotation, and one that is still a string is left unchecked (`Any`).
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    settable, computed = {}, set()
    for f in dataclasses.fields(cls):
        if not f.init:
            computed.add(f.name)
        else:
            settable[f.name] = hints.get(f.name, Any if isinstance(f.type, str) else f.type)
    return settable, frozenset(computed)


def _no_default(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _is_enum(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _enum_spelled_as_str(args) -> list:
    """transformers writes `IntervalStrategy | str` and converts in `__post_init__`: the str must be
    one of the enum's values, so check it here and list them."""
    enums = [a for a in args if _is_enum(a)]
    return enums if enums and str in args else []


def _convert(value, tp, source: str, where: str):
    """`value` checked against annotation `tp`, converted only where safe; raises _Mismatch."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, int) and not isinstance(value, bool) and not -2 ** 63 <= value < 2 ** 63:
        # Python ints have no limit, torch's and numpy's do: `max_steps: 1e40` written out would train forever
        # or overflow far from the recipe.
        _fail(source, where, f"{_clip(str(value))} is beyond the 64-bit integer range (-2**63 to 2**63 - 1)")
    if tp is Any:
        return value
    if origin in _UNIONS:
        return _convert_union(value, args, source, where)
    if tp is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif _is_enum(tp):
        try:
            return tp(value)
        except ValueError:
            pass
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp in (int, float):
        if isinstance(value, int if tp is int else (int, float)) and not isinstance(value, bool):
            return value
        if tp is float and isinstance(value, str):  # `"3e-4"`: quoted, or written for YAML 1.1 readers
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return _build(tp, value, source, where)
        if isinstance(value, tp):
            return value
    elif origin is list or tp is list:
        # A single value means a one-element list, as on the command line; TRL relies on this
        # (`lora_target_modules: all-linear`, `loss_type: sigmoid`).
        if value is not None and not isinstance(value, dict):
            items = value if isinstance(value, list) else [value]
            item_tp = args[0] if args else Any
            return [_convert(v, item_tp, source, f"{where}[{i}]") for i, v in enumerate(items)]
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            key_tp, value_tp = args or (Any, Any)
            return {_convert(k, key_tp, source, where): _convert(v, value_tp, source, f"{where}.{k}")
                    for k, v in value.items()}
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        return value  # a typing construct this parser does not know: leave it to the dataclass
    raise _Mismatch


def _convert_union(value, args, source: str, where: str):
    """Prefer a member that takes the value unchanged (`"3e-4"` stays a str in `float | str`)."""
    enums = _enum_spelled_as_str(args)
    if enums and isinstance(value, str):
        if any(value in {m.value for m in e} for e in enums):
            return value
        raise _Mismatch
    converted = []
    for arg in args:
        try:
            out = _convert(value, arg, source, where)
        except _Mismatch:
            continue
        if type(out) is type(value) and out == value:
            return out
        converted.append(out)
    if not converted:
        raise _Mismatch
    return converted[0]


def _describe(tp) -> str:
    """What a value for `tp` should look like, in recipe terms: 'a float or null'."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _UNIONS:
        skip = str if _enum_spelled_as_str(args) else None
        return " or ".join(dict.fromkeys(_describe(a) for a in args if a is not skip))
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if _is_enum(tp):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if origin is list or tp is list:
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} keys"
    simple = {bool: "true or false", int: "an int", float: "a float", str: "a string"}
    return simple.get(tp, f"a {_type_name(tp)}")


def _type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "None"
    if origin in _UNIONS:
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]" if args else origin.__name__
    return getattr(tp, "__name__", str(tp))


def _got(value) -> str:
    if value is None:
        return "got null"
    return f"got {type(value).__name__} {_clip(repr(value))}"


def _clip(text: str, limit: int = 60) -> str:
    """User input echoed in a message, cut to `limit` characters: a pasted 100 kB value stays one short line."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _did_you_mean(word: str, options, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


# --- checking mappings and the command line --------------------------------------------------------


def _check_keys(mapping: dict, fields: dict, computed, source: str, where: str) -> dict:
    out = {}
    for key, value in mapping.items():
        if key not in fields:
            if key in computed:
                _fail(source, where, f"key '{key}' cannot be set: it is computed from the other keys")
            _fail(source, where, f"unknown key '{key}'{_did_you_mean(str(key), fields)}")
        out[key] = _check_value(value, fields[key], source, where, key, f"key '{key}'")
    return out


def _check_value(value, tp, source: str, where: str, key: str, label: str):
    try:
        return _convert(value, tp, source, f"{where}.{key}" if where else key)
    except _Mismatch:
        _fail(source, where, f"{label} expects {_describe(tp)}, {_got(value)}")


def _build(cls: type, mapping: dict, source: str, where: str):
    """A nested dataclass (an entry of `datasets: list[DatasetSpec]`), checked like the top level."""
    fields, computed = _fields(cls)
    values = _check_keys(mapping, fields, computed, source, where)
    for f in dataclasses.fields(cls):
        if f.init and _no_default(f) and f.name not in values:
            _fail(source, where, f"missing required key '{f.name}'")
    return _instantiate(cls, values, source, where)


def _instantiate(cls: type, values: dict, source: str, where: str):
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:  # a `__post_init__` check; its message names the fix
        _fail(source, where, _clip(str(err), 400) or type(err).__name__)


def _cli_overrides(words: list[str], fields: dict, computed) -> dict:
    """`--key value`, `--key=value`, `--key v1 v2` for list fields, and a bare `--flag` for true."""
    out, i = {}, 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or word == "--":
            _fail("command line", "", f"unexpected argument '{_clip(word)}'; overrides look like --key value")
        name, eq, text = word[2:].partition("=")
        j = i + 1
        while not eq and j < len(words) and not words[j].startswith("--"):
            j += 1
        texts, i = ([text] if eq else words[i + 1:j]), j
        key = name.replace("-", "_")
        if key not in fields:
            if key in computed:
                _fail("command line", "", f"option '--{name}' cannot be set: it is computed from the other keys")
            _fail("command line", "", f"unknown option '--{_clip(name)}'{_did_you_mean(key, fields, '--')}")
        value = _cli_value(texts, fields[key], f"--{name}")
        out[key] = _check_value(value, fields[key], "command line", "", key, f"option '--{name}'")
    return out


def _cli_value(texts: list[str], tp, option: str):
    kinds = _kinds(tp)
    if not texts:
        if bool in kinds or object in kinds:
            return True
        _fail("command line", "", f"option '{option}' needs a value: {option} VALUE")
    if len(texts) == 1:
        return _from_text(texts[0], tp, option)
    members = typing.get_args(tp) if typing.get_origin(tp) in _UNIONS else (tp,)
    lists = [m for m in members if m is list or typing.get_origin(m) is list]
    if not lists and object not in kinds:
        _fail("command line", "", f"option '{option}' takes one value, got {len(texts)}: {_clip(' '.join(texts))}")
    item_tp = typing.get_args(lists[0])[0] if lists and typing.get_args(lists[0]) else Any
    return [_from_text(t, item_tp, option) for t in texts]


def _kinds(tp) -> set:
    """The Python types a value for `tp` can have at the top level (`object`: anything)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:  # a class on Python 3.11+, so test it before `isinstance(tp, type)`
        return {object}
    if origin in _UNIONS:
        return set().union(*(_kinds(a) for a in args))
    if origin is Literal:
        return {type(a) for a in args}
    if _is_enum(tp):
        return {type(m.value) for m in tp}
    if origin is not None:
        return {origin}
    return {tp} if isinstance(tp, type) else {object}


def _from_text(text: str, tp, option: str):
    """One command-line word read the way the field's type wants it: `--output_dir 0001` stays a str."""
    kinds = _kinds(tp)
    if text.startswith(("[", "{")) or object in kinds:
        try:
            return yaml.load(text, Loader=_RecipeLoader)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or err
            _fail("command line", "", f"option '{option}': cannot read {_clip(repr(text))} as YAML ({problem})")
    if type(None) in kinds and text in ("null", "Null", "NULL", "~"):  # YAML's; `--report_to none` is a str
        return None
    if bool in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if int in kinds and re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if float in kinds:
        try:
            return float(text)
        except ValueError:
            pass
    return text


# --- public API ------------------------------------------------------------------------------------


def parse_recipe(dataclass_types: tuple[type, ...], argv: list[str] | None = None,
                 required: tuple[str, ...] = ()) -> tuple:
    """Instances of `dataclass_types`, in order, from `argv = [recipe.yaml, --key value, ...]`.

    Command-line values override the recipe's. A key that several dataclasses declare goes to each.
    Every check runs before any dataclass is built, so a typo costs no model download.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-"):
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "SCRIPT"
        _fail("command line", "", f"no recipe given; usage: {prog} RECIPE.yaml [--key value ...]")
    fields, computed = {}, set()
    for cls in dataclass_types:
        cls_fields, cls_computed = _fields(cls)
        for name, tp in cls_fields.items():
            fields.setdefault(name, tp)
        computed |= cls_computed
    unknown = [name for name in required if name not in fields]
    if unknown:  # a bug in the entry script, not in the recipe
        names = [c.__name__ for c in dataclass_types]
        raise TypeError(f"parse_recipe: required {unknown} are not fields of {names}")

    path = argv[0]
    values = _check_keys(_read_recipe(path), fields, computed, path, "")
    overrides = _cli_overrides(argv[1:], fields, computed)
    values.update(overrides)
    if "report_to" in values:  # transformers would look the tracker up only after the model has loaded
        problem = report_to_problem(values["report_to"])
        if problem:
            _fail("command line" if "report_to" in overrides else path, "", f"report_to: {problem}")
    for cls in dataclass_types:
        for f in dataclasses.fields(cls):
            unset = (_no_default(f) and f.name not in values) or (f.name in required and values.get(f.name) is None)
            if f.init and unset:
                _fail(path, "", f"missing required key '{f.name}'")
    return tuple(
        _instantiate(cls, {k: copy.deepcopy(v) for k, v in values.items() if k in _fields(cls)[0]}, path, "")
        for cls in dataclass_types)


def peek_method(argv: list[str], methods, default: str) -> str:
    """The `method` a recipe (or `--method` on the command line, which wins) asks for, read before the
    strict parse, which needs the method's config class. Anything unreadable or unknown gives `default`:
    the strict parse then reports the real problem (a bad file, an unknown method) in its one line."""
    method = None
    if argv and not argv[0].startswith("-") and Path(argv[0]).is_file():
        try:
            data = yaml.safe_load(Path(argv[0]).read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            method = data.get("method")
    for i, word in enumerate(argv[1:], 1):
        if word == "--method" and i + 1 < len(argv):
            method = argv[i + 1]
        elif word.startswith("--method="):
            method = word.split("=", 1)[1]
    return method if method in methods else default


def run_cli(main: typing.Callable[[list[str] | None], Any], argv: list[str] | None = None):
    """Run `main(argv)`; a `CorralError` becomes `error: <message>` on stderr and exit code 2.

    Under `python -m corral.launch` (CORRAL_ERROR_DIR set) the line goes to `rank-N.txt` there
    instead: the launcher prints the first failing rank's line once, not once per process.
    """
    try:
        return main(argv)
    except CorralError as err:
        message = redact_text(re.sub(r"\s*\n\s*", " ", str(err).strip()))  # other CorralErrors may not be one line
        error_dir = os.environ.get("CORRAL_ERROR_DIR")
        if error_dir and Path(error_dir).is_dir():
            rank = os.environ.get("RANK", "0")
            Path(error_dir, f"rank-{rank}.txt").write_text(f"error: {message}\n", encoding="utf-8")
        else:
            # One write of the whole line: under a plain `accelerate launch` every process may stop on the
            # same error, and print()'s separate writes of text and newline interleave between them.
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()
        raise SystemExit(USER_ERROR_EXIT) from None


_HF_TOKEN = re.compile(r"hf_[A-Za-z0-9]{20,}")  # Hugging Face user tokens: hf_ + 34 letters/digits


def redact_text(text: str) -> str:
    """`text` with anything shaped like a Hugging Face token (`hf_` + 20 or more letters/digits) replaced."""
    return _HF_TOKEN.sub("<redacted>", text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line safe to save: the values of `--hub_token`/`--token` (either spelling, `=` or
    not) and any word shaped like a Hugging Face token become `<redacted>`."""
    out, hide_next = [], False
    for word in argv:
        name, eq, _ = word.partition("=")
        secret = name.startswith("--") and name[2:].replace("-", "_") in _SECRET_FIELDS
        if hide_next and not word.startswith("--"):
            out.append("<redacted>")
        elif secret and eq:
            out.append(f"{name}=<redacted>")
        else:
            out.append(redact_text(word))
        hide_next = secret and not eq
    return out


def resolved_config(instances) -> dict:
    """`{ClassName: {field: value}}`, JSON-safe, for the run manifest saved beside the checkpoint."""
    return {type(obj).__name__: _jsonable(obj) for obj in instances}


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: "<redacted>" if f.name in _SECRET_FIELDS and getattr(value, f.name, None) is not None
                else _jsonable(getattr(value, f.name, None)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=str)
    return str(value)


def recipe_reference_markdown(dataclass_types: tuple[type, ...], title: str,
                              only: set[str] | None = None) -> str:
    """A `key | type | default | help` table of the recipe keys, from each field's `metadata["help"]`.

    `only` picks fields of the large TRL classes; a name in it that no class declares is an error,
    so docs/recipe-reference.md cannot keep documenting a key TRL removed.
    """
    rows, seen = [], set()
    for cls in dataclass_types:
        settable, _ = _fields(cls)
        for f in dataclasses.fields(cls):
            if f.name not in settable or f.name in seen or (only is not None and f.name not in only):
                continue
            seen.add(f.name)
            cells = [f"`{f.name}`", _type_name(settable[f.name]), _default_text(f), f.metadata.get("help", "")]
            rows.append("| " + " | ".join(" ".join(c.split()).replace("|", "\\|") for c in cells) + " |")
    missing = sorted(set(only or ()) - seen)
    if missing:
        names = [c.__name__ for c in dataclass_types]
        raise ValueError(f"recipe_reference_markdown: {missing} are not fields of {names}")
    return "\n".join([f"### {title}", "", "| key | type | default | help |", "|---|---|---|---|", *rows]) + "\n"


def _default_text(f: dataclasses.Field) -> str:
    if _no_default(f):
        return "required"
    value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    text = yaml.safe_dump(_jsonable(value), default_flow_style=True, width=1_000_000).strip()
    return f"`{text.removesuffix(chr(10) + '...')}`"


__all__ = ["CorralError", "RecipeError", "parse_recipe", "run_cli", "resolved_config", "recipe_reference_markdown"]
