"""Reading raw rows from every place a dataset lives, each with a 1-based number for error messages.

`read_rows(path)` yields `(row_number, dict)`. Row numbers are line numbers for line-based files
(`.jsonl`, JSON lines in a `.json`, `.csv`, where a CSV record is numbered by the line it ends on)
and record numbers otherwise (a JSON list, parquet, `datasets` directories, the Hub), so a message
such as `data/x.jsonl:17: missing key 'output'` points at something the user can open.

Arrow-backed sources (parquet, `datasets` directories, the Hub) store nested objects as structs
with one schema per column, so every object gets every key seen anywhere in the column, as null:
tool-call arguments `{"city": "Oslo"}` come back as `{"city": "Oslo", "tz": None}` and tool schemas
gain `"required": None`, which chat templates would render. `_without_nulls` drops null-valued keys
of nested objects on those sources (top-level columns stay; formats read a null column as absent).
An explicit JSON null inside an object cannot be told apart from that fill and is dropped as well;
keep tool-call arguments as JSON strings (as OpenAI files do) where nulls matter.

Problems with the file itself (missing, unsupported, not UTF-8, not JSON) are `DataError`s naming
the path and the line. A line of a JSON-lines file that cannot be read at all can instead be
skipped and recorded, when the caller passes a `bad_lines` list.

`write_jsonl(path, rows)` is the one writer: JSON lines, UTF-8 kept as is, parent directories made.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
from pathlib import Path
from typing import Iterable, Iterator

from corral.errors import DataError

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv")
PROGRESS_AFTER = 10_000  # rows; smaller files load before a progress bar would be worth reading
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

Rows = Iterator[tuple[int, dict]]


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write `rows` as JSON lines (non-ASCII kept as is), creating the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def looks_like_hub_id(path: str) -> bool:
    """`owner/name` and not a file name, e.g. `HuggingFaceH4/ultrachat_200k` but not `data/x.jsonl`."""
    return bool(_HUB_ID.match(path)) and not path.endswith(SUFFIXES)


def read_rows(path: str | Path, *, split: str = "train", bad_lines: list | None = None) -> Rows:
    """Rows of a local file, a `datasets.save_to_disk` directory, or (when nothing exists at `path`
    and it looks like `owner/name`) a Hub dataset. `split` picks the split of a DatasetDict or a Hub
    dataset. With `bad_lines` given, unreadable JSON lines are appended to it as `(line, reason)`
    instead of raising. Checks that can fail without reading rows run now, not at the first row."""
    name = str(path)
    p = Path(path)
    if p.is_dir():
        return _progress(*_saved_dataset(p, split), name)
    if p.exists():
        if name.endswith((".jsonl", ".jsonl.gz")):
            return _progress(_json_lines(_open_lines(p), name, bad_lines), None, name)
        if name.endswith((".json", ".json.gz")):
            return _progress(*_json_file(p, name, bad_lines), name)
        if name.endswith(".parquet"):
            return _progress(*_parquet(p, name), name)
        if name.endswith(".csv"):
            return _progress(_csv(p, name), None, name)
        raise DataError(
            f"{name}: unsupported file type (expected {', '.join(SUFFIXES)} or a datasets.save_to_disk directory)"
        )
    if looks_like_hub_id(name):
        return _progress(*_hub(name, split), name)
    raise DataError(f"{name}: file not found")


class BadLineError(DataError):
    """A line of a JSON-lines file that cannot be read at all; the caller may skip such lines instead."""


def _bad(path: str, line: int, reason: str, detail: str, bad_lines: list | None) -> None:
    if bad_lines is None:
        raise BadLineError(f"{path}:{line}: {reason} ({detail})")
    bad_lines.append((line, reason))


def _open_lines(p: Path) -> Iterator[bytes]:
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rb") as fh:
        yield from fh


def _json_lines(lines: Iterable[bytes], path: str, bad_lines: list | None) -> Rows:
    for n, raw in enumerate(lines, 1):
        if n == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            _bad(path, n, "line is not valid UTF-8", f"byte {raw[e.start]:#04x} at column {e.start + 1}", bad_lines)
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line.rstrip("\r\n"))  # so the column of an error is on this line
        except json.JSONDecodeError as e:
            _bad(path, n, "line is not valid JSON", f"{e.msg} at column {e.colno}", bad_lines)
            continue
        if not isinstance(row, dict):
            _bad(path, n, "line is not a JSON object", f"got {type(row).__name__}", bad_lines)
            continue
        yield n, row


def _json_file(p: Path, path: str, bad_lines: list | None) -> tuple[Iterable, int | None]:
    """A `.json` file holds a list of objects, or is really JSON lines under the wrong name."""
    data = gzip.decompress(p.read_bytes()) if path.endswith(".gz") else p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: line is not valid UTF-8") from None
    if not text.lstrip().startswith("["):
        return _json_lines(data.splitlines(keepends=True), path, bad_lines), None
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: file is not valid JSON ({e.msg} at column {e.colno})") from None
    for n, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise DataError(f"{path}: record {n} is not a JSON object (expected a list of objects)")
    return enumerate(records, 1), len(records)


def _parquet(p: Path, path: str) -> tuple[Iterable, int]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except Exception as e:  # pyarrow raises several types for a damaged or foreign file
        raise DataError(f"{path}: not a readable parquet file ({e})") from None

    def rows() -> Rows:
        n = 0
        for batch in pf.iter_batches():
            for row in batch.to_pylist():
                n += 1
                yield n, _without_nulls(row)

    return rows(), pf.metadata.num_rows


def _decoded(lines: Iterable[bytes], path: str) -> Iterator[str]:
    for n, raw in enumerate(lines, 1):
        try:
            yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}:{n}: line is not valid UTF-8") from None


def _csv(p: Path, path: str) -> Rows:
    """CSV cells are strings; an undecodable line always raises, since skipping it could split a
    quoted multi-line record."""
    reader = csv.DictReader(_decoded(_open_lines(p), path))
    for row in reader:
        row.pop(None, None)  # cells beyond the header
        yield reader.line_num, row


def _saved_dataset(p: Path, split: str) -> tuple[Iterable, int]:
    if not ((p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()):
        raise DataError(f"{p}: a directory, but not one written by datasets.save_to_disk")
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{p}: no split '{split}' (available: {', '.join(ds)})")
        ds = ds[split]
    return _arrow_rows(ds), len(ds)


def _hub(name: str, split: str) -> tuple[Iterable, int]:
    import datasets

    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as e:  # offline, unknown id, gated, missing split: all end the same way here
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{name}: not a local file and the Hub is unreachable ({detail})") from None
    return _arrow_rows(ds), len(ds)


def _arrow_rows(ds) -> Rows:
    for n, row in enumerate(ds, 1):
        yield n, _without_nulls(row)


def _without_nulls(row: dict) -> dict:
    """The row with null-valued keys removed from every nested object (see the module docstring)."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {k: clean(v) for k, v in row.items()}


def _progress(rows: Iterable, total: int | None, desc: str) -> Rows:
    """Pass rows through, drawing a tqdm bar (on stderr) once more than `PROGRESS_AFTER` have gone by."""
    from tqdm import tqdm

    bar = None
    try:
        for i, item in enumerate(rows, 1):
            if bar is None and i > PROGRESS_AFTER:
                bar = tqdm(desc=f"reading {desc}", total=total, initial=i - 1, unit=" rows", mininterval=1.0)
            if bar is not None:
                bar.update()
            yield item
    finally:
        if bar is not None:
            bar.close()
