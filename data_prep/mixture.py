"""Many dataset sources -> one training set of standard rows, with a report of what happened to each.

For each source: read the rows, rename columns, detect (or take) the format, convert every row to
the standard schema of the requested kind, and add the system prompt. Then, across sources:

1. drop exact duplicates (same canonical JSON), first occurrence wins. This runs before weighting,
   so an upsampled source is not deduplicated against its own copies;
2. hold out the test split from the unique rows, so no copy of a test row is trained on;
3. weight each source's remaining rows: the integer part of `weight` repeats them, the fractional
   part adds a seeded sample without replacement (0.5 keeps half, 2.5 gives two copies and a half).

Nothing depends on anything but the inputs and `seed`. The train rows keep source order (the
trainer's sampler shuffles), which keeps the output easy to inspect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from corral.errors import CorralDataError, DataError, RowError
from data_prep.formats import (
    FORMATS,
    KINDS,
    FormatDisagreement,
    check_format,
    column_use,
    convert_row,
    detect_format,
    formats_reading,
    kinds,
)
from data_prep.io import BadLineError, looks_like_hub_id, read_rows

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

# How an option is spelled where the user sets it: in a recipe, on `python -m data_prep convert`, or nowhere
# (a command that reads its input file as it is: the hint says fix the row or convert the file).
OPTIONS = {
    "recipe": {"skip": "on_bad_rows: skip drops and counts such rows", "format": "format: {}",
               "ignore": "ignore_columns: [{}]", "sep": ", ", "choose": "set format: in the recipe",
               "rename": "rename yours with columns: {your_column: prompt}"},
    "cli": {"skip": "--on-bad-rows skip drops and counts such rows", "format": "--format {}",
            "ignore": "--ignore-columns {}", "sep": ",", "choose": "choose one with --format",
            "rename": "rename yours to prompt in the file"},
    # a command that reads a file as it is (finetune.constitutional --prompts): fix the row, or convert first
    "file": {"skip": "fix or delete that row", "format": "python -m data_prep convert --format {}",
             "ignore": "python -m data_prep convert --ignore-columns {}", "sep": ",",
             "choose": "convert the file first with python -m data_prep convert --format NAME",
             "rename": "convert the file first with python -m data_prep convert"},
}


@dataclass
class DatasetSpec:
    """One source of a mixture, as written under `datasets:` in a recipe."""

    path: str = field(
        metadata={"help": "A .jsonl/.json(.gz), .parquet or .csv file, a save_to_disk directory, or a Hub id owner/name."}
    )
    format: str = field(
        default="auto", metadata={"help": f"Input format, or auto to detect it from the keys: {', '.join(FORMATS)}."}
    )
    split: str = field(default="train", metadata={"help": "Split of a save_to_disk DatasetDict or a Hub dataset."})
    columns: dict[str, str] | None = field(
        default=None, metadata={"help": "Rename map {old: new} applied to raw rows before conversion."}
    )
    weight: float = field(
        default=1.0, metadata={"help": "< 1 subsamples; > 1 repeats (integer part) and samples (fraction); seeded."}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "System turn prepended to rows that have none."})
    ignore_columns: list[str] | None = field(
        default=None, metadata={"help": "Columns to drop before conversion (after columns: renames), e.g. a label "
                                        "or score the format does not use, which is otherwise an error."}
    )

    def __post_init__(self):
        if self.format != "auto" and self.format not in FORMATS:
            expected = ", ".join(FORMATS)
            raise DataError(f"{self.path}: unknown format '{self.format}' (expected auto or one of {expected})")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not self.weight >= 0:
            raise DataError(f"{self.path}: weight must be a number >= 0, got {self.weight!r}")
        if self.columns is not None and not (
            isinstance(self.columns, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.columns.items())
        ):
            raise DataError(f"{self.path}: columns must map old column names to new ones, got {self.columns!r}")
        if self.ignore_columns is not None and not (
            isinstance(self.ignore_columns, list) and all(isinstance(c, str) for c in self.ignore_columns)
        ):
            raise DataError(f"{self.path}: ignore_columns must be a list of column names, got {self.ignore_columns!r}")


@dataclass
class MixtureArguments:
    """The recipe keys every entry script reads its data with (`datasets:` and how bad or repeated rows
    are handled); each script's arguments dataclass extends it and says what its rows must hold."""

    datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Sources to mix: path, format, split, columns, weight, system_prompt."})
    dedup: bool = field(default=True, metadata={"help": "Drop exact duplicate rows across sources (reported)."})
    on_bad_rows: Literal["error", "skip"] = field(
        default="error", metadata={"help": "error: stop at the first malformed row; skip: drop and count them."})

    def __post_init__(self):
        if not self.datasets:
            raise ValueError("datasets is empty; list at least one source, e.g. datasets: [{path: data/train.jsonl}]")


@dataclass
class SourceReport:
    """What happened to one source's rows. `rejected` counts reasons with numbers generalised
    (`empty content in turn N`), so similar problems are counted together."""

    path: str
    format: str = ""
    kind: str = ""
    weight: float = 1.0
    rows_read: int = 0
    rejected: Counter = field(default_factory=Counter)
    unused: list[str] = field(default_factory=list)  # columns with values the format does not read
    converted: int = 0  # standard rows; rated_all_pairs and unpairing can make more than were read
    duplicates: int = 0
    test: int = 0
    train: int = 0  # after weighting

    def rejected_text(self) -> str:
        total = sum(self.rejected.values())
        if not total:
            return "rejected 0"
        return f"rejected {total} ({', '.join(f'{r}: {c}' for r, c in self.rejected.most_common())})"

    def line(self) -> str:
        return (
            f"{self.path} ({self.format} -> {self.kind}): read {self.rows_read}, {self.rejected_text()}, "
            f"duplicates {self.duplicates}, test {self.test}, train {self.train} (weight {self.weight:g})"
            f"{self.unused_text()}"
        )

    def unused_text(self) -> str:
        return f", unused columns: {', '.join(self.unused)}" if self.unused else ""


@dataclass
class MixtureReport:
    kind: str
    sources: list[SourceReport]
    fingerprint: str = ""  # of the exact train and test rows, for the run's saved config

    def summary_lines(self) -> list[str]:
        train = sum(s.train for s in self.sources)
        test = sum(s.test for s in self.sources)
        total = (
            f"{self.kind} mixture: train {train} rows, test {test} rows from {len(self.sources)} "
            f"source(s) (fingerprint {self.fingerprint})"
        )
        return [s.line() for s in self.sources] + [total]

    def as_dict(self) -> dict:
        """JSON-safe summary for run manifests: per source its path, detected format and row counts."""
        sources = [{"path": s.path, "format": s.format, "kind": s.kind, "weight": s.weight, "rows_read": s.rows_read,
                    "rejected": dict(s.rejected), "duplicates": s.duplicates, "test": s.test, "train": s.train,
                    "unused_columns": s.unused}
                   for s in self.sources]
        return {"kind": self.kind, "fingerprint": self.fingerprint, "sources": sources}


@dataclass
class LoadedSource:
    rows: list[tuple[int, dict]]  # (raw row number, standard row)
    report: SourceReport


@dataclass
class RowMixture:
    train: list[dict]
    test: list[dict]
    report: MixtureReport


@dataclass
class MixtureResult:
    train: Dataset
    test: Dataset | None  # None when test_split_size is 0
    report: MixtureReport


_NUMBERED = re.compile(r"\b(turn|completion|entry|at) \d+")


def _reason_group(reason: str) -> str:
    return _NUMBERED.sub(r"\1 N", reason)


def _resolve(path: str, base_dir: str | Path | None) -> str:
    if base_dir is None or Path(path).is_absolute():
        return path
    candidate = Path(base_dir) / path
    return str(candidate) if candidate.exists() or not looks_like_hub_id(path) else path


def _check_on_bad_rows(on_bad_rows: str) -> None:
    if on_bad_rows not in ("error", "skip"):
        raise CorralDataError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")


def _lost_column_error(label: str, format: str, lost: list[str], spelled: dict) -> DataError:
    readers = list(dict.fromkeys(f for column in lost for f in formats_reading(column)))
    one = len(lost) == 1
    columns = f"column '{lost[0]}' carries" if one else f"columns {', '.join(repr(c) for c in lost)} carry"
    it = "it" if one else "them"
    who = f"formats that read {it}: {', '.join(readers)}" if readers else f"no format reads {it}"
    choose = f"choose one with {spelled['format'].format(readers[0])}, or " if readers else ""
    ignore = spelled["ignore"].format(spelled["sep"].join(lost))
    return DataError(
        f"{label}: {columns} meaning but format '{format}' does not read {it} ({who}); "
        f"{choose}drop {it} knowingly with {ignore}"
    )


def load_source(
    spec: DatasetSpec,
    kind: str | None = None,
    *,
    on_bad_rows: str = "error",
    base_dir: str | Path | None = None,
    options: str = "recipe",
) -> LoadedSource:
    """One source as standard rows of `kind` (None: the kind its format gives), with its report.
    With `on_bad_rows="error"` the first bad row raises `DataError("file:row: reason (hint)")`, the
    hint naming the option that skips such rows as spelled in `OPTIONS[options]`; with "skip" bad
    rows are counted by reason and logged as one warning line. A column that carries meaning and the
    format does not read is an error either way (see `data_prep.formats.column_use`)."""
    _check_on_bad_rows(on_bad_rows)
    spelled = OPTIONS[options]
    skip_hint = f" ({spelled['skip']})"
    label = _resolve(spec.path, base_dir)
    bad_lines = [] if on_bad_rows == "skip" else None
    try:
        raw = list(read_rows(label, split=spec.split, bad_lines=bad_lines))
    except BadLineError as e:
        raise DataError(f"{e}{skip_hint}") from None
    if spec.columns:
        raw = [(n, {spec.columns.get(k, k): v for k, v in row.items()}) for n, row in raw]
    if spec.ignore_columns:
        raw = [(n, {k: v for k, v in row.items() if k not in spec.ignore_columns}) for n, row in raw]
    if not raw:
        raise DataError(f"{label}: no rows")
    name = spec.format
    if name == "auto":
        try:
            name = detect_format([r for _, r in raw], label, [n for n, _ in raw], strict=on_bad_rows == "error",
                                 choose=spelled["choose"])
        except FormatDisagreement as e:
            raise DataError(f"{e}{skip_hint}") from None
    kind = kind or FORMATS[name].gives
    try:
        check_format(name, kind)
    except CorralDataError as e:
        raise DataError(f"{label}: {e}") from None
    if spec.system_prompt and kind == "text":
        raise DataError(f"{label}: system_prompt does not apply to text rows")
    report = SourceReport(label, name, kind, spec.weight, rows_read=len(raw) + len(bad_lines or []))
    report.rejected.update(reason for _, reason in bad_lines or [])
    rows, used = [], []
    for n, row in raw:
        try:
            out = convert_row(row, name, kind)
            if spec.system_prompt:
                out = [kinds.with_system_prompt(r, kind, spec.system_prompt) for r in out]
        except RowError as e:
            if on_bad_rows == "error":
                raise DataError(f"{label}:{n}: {e.reason}{skip_hint}") from None
            report.rejected[_reason_group(e.reason)] += 1
            continue
        rows += [(n, r) for r in out]
        used.append(row)
    report.unused, lost = column_use(used, name)  # the columns of skipped rows are not trained either way
    if lost:
        raise _lost_column_error(label, name, lost, spelled)
    report.converted = report.train = len(rows)
    if report.rejected:
        logger.warning("%s: skipped %s", label, report.rejected_text().removeprefix("rejected "))
    return LoadedSource(rows, report)


def row_digest(row: dict) -> str:
    """Hash of the canonical JSON of a standard row: equal rows, equal digests, whatever the key order."""
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def _check_same_style(sources: list[LoadedSource], kind: str) -> None:
    """Plain-text and chat pairs cannot share a dataset (TRL decides the format from the first row)."""
    if kind not in ("preference", "unpaired"):
        return
    first = {}
    for src in sources:
        for n, row in src.rows:
            first.setdefault(kinds.is_plain(row), f"{src.report.path}:{n}")
    if len(first) == 2:
        raise DataError(
            f"cannot mix plain-text and conversational {kind} rows ({first[True]} is plain text, "
            f"{first[False]} is conversational); give every source message lists"
        )


def _test_count(size: float | int, n: int) -> int:
    """Rows to hold out: a share when below 1, else a count (10 and 10.0 alike: recipes type it as float)."""
    number = isinstance(size, (int, float)) and not isinstance(size, bool)
    if number and 0 <= size < 1:
        count = max(1, round(size * n)) if size > 0 else 0
    elif number and size >= 1 and float(size).is_integer():
        count = int(size)
    else:
        raise CorralDataError(
            f"test_split_size must be a fraction in [0, 1) or a whole number of rows, got {size!r}"
        )
    if count and count >= n:
        raise CorralDataError(f"test_split_size {size!r} leaves no training rows ({n} unique rows)")
    return count


def _weighted(rows: list, weight: float, rng: random.Random) -> list:
    whole = int(weight)
    extra = round((weight - whole) * len(rows))
    return rows * whole + [rows[i] for i in sorted(rng.sample(range(len(rows)), extra))]


def mix_rows(
    specs: list[DatasetSpec],
    kind: str,
    *,
    seed: int = 0,
    test_split_size: float | int = 0,
    dedup: bool = True,
    on_bad_rows: str = "error",
    base_dir: str | Path | None = None,
    options: str = "recipe",
) -> RowMixture:
    """The mixture as lists of standard rows (what `load_mixture` turns into datasets)."""
    if kind not in KINDS:
        raise CorralDataError(f"unknown kind '{kind}' (expected one of {', '.join(KINDS)})")
    if not specs:
        raise CorralDataError("no datasets given")
    sources = [load_source(spec, kind, on_bad_rows=on_bad_rows, base_dir=base_dir, options=options) for spec in specs]
    _check_same_style(sources, kind)

    pool = []  # (source index, row, digest) of unique rows, in source order
    seen = set()
    for i, src in enumerate(sources):
        for _, row in src.rows:
            digest = row_digest(row)
            if dedup and digest in seen:
                src.report.duplicates += 1
                continue
            seen.add(digest)
            pool.append((i, row, digest))

    n_test = _test_count(test_split_size, len(pool))
    held_out = set(random.Random(f"corral-test:{seed}").sample(range(len(pool)), n_test))
    test = [pool[j] for j in sorted(held_out)]
    train = []
    for i, (spec, src) in enumerate(zip(specs, sources)):
        mine = [item for j, item in enumerate(pool) if item[0] == i and j not in held_out]
        weighted = _weighted(mine, spec.weight, random.Random(f"corral-weight:{seed}:{i}"))
        src.report.test = sum(item[0] == i for item in test)
        src.report.train = len(weighted)
        train += weighted

    fingerprint = hashlib.blake2b(digest_size=8)
    for _, _, digest in train + [(None, None, "|")] + test:
        fingerprint.update(digest.encode())
    report = MixtureReport(kind, [s.report for s in sources], fingerprint.hexdigest())
    return RowMixture([row for _, row, _ in train], [row for _, row, _ in test], report)


def to_dataset(rows: list[dict]):
    """A `datasets.Dataset` of standard rows. Columns some rows lack are filled with null, and
    columns whose values differ in shape (messages with and without `tool_calls`, tool schemas) are
    stored as JSON, so rows read back exactly as written, without null-filled keys that chat
    templates would render."""
    from datasets import Dataset

    columns = list(dict.fromkeys(k for row in rows for k in row))
    return Dataset.from_list([{c: row.get(c) for c in columns} for row in rows], on_mixed_types="use_json")


def load_mixture(
    specs: list[DatasetSpec],
    kind: str,
    *,
    seed: int = 0,
    test_split_size: float | int = 0,
    dedup: bool = True,
    on_bad_rows: str = "error",
    base_dir: str | Path | None = None,
    options: str = "recipe",
) -> MixtureResult:
    """Load, convert, dedup, split and weight `specs` into `MixtureResult(train, test, report)`.

    `kind` is what the trainer consumes: sft, preference, unpaired, prompt or text. `test_split_size`
    is a fraction in [0, 1) or a row count; with 0, `test` is None. Relative paths are resolved
    against `base_dir` when given; error hints spell options as `OPTIONS[options]` does."""
    mixed = mix_rows(
        specs, kind, seed=seed, test_split_size=test_split_size, dedup=dedup, on_bad_rows=on_bad_rows,
        base_dir=base_dir, options=options,
    )
    return MixtureResult(to_dataset(mixed.train), to_dataset(mixed.test) if mixed.test else None, mixed.report)
