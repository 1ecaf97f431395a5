"""Reading and writing post tables in batches, whatever the file format.

Every stage streams: a reader yields pandas DataFrames of at most ``batch_size`` rows
whose index is the 0-based record number in the file (so an error can name
"row N" = index + 1), and a writer appends them to a temporary file that only
becomes the real output on :meth:`OutputSet.commit`. A failed run therefore leaves
no output behind, and an output path that is also an input is refused up front.

Formats are chosen by extension: ``.csv``, ``.jsonl`` (or ``.ndjson``),
``.parquet``; a path with no extension (or an existing folder) is a Hugging Face
``datasets`` folder in ``save_to_disk`` layout.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import signals
from .errors import PostkitError
from .locks import EXCLUSIVE, PathLock

DEFAULT_BATCH_SIZE = 50_000

_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FORMATS = ("csv", "jsonl", "parquet", "hf")


def detect_format(path: str | Path) -> str:
    """The table format implied by a path: by extension, else a datasets folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if path.is_dir() or suffix == "":
        return "hf"
    raise PostkitError(
        f"unsupported file type '{suffix}'",
        path=path,
        fix="use .csv, .jsonl, .parquet, or a folder name (Hugging Face datasets)",
    )


# --------------------------------------------------------------------------- columns


def parse_column_map(specs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["user_id=author"]`` → ``{"author": "user_id"}`` (source name → postkit name)."""
    if not specs:
        return {}
    if isinstance(specs, Mapping):
        pairs = list(specs.items())
    else:
        pairs = []
        for spec in specs:
            name, sep, source = spec.partition("=")
            if not sep or not name.strip() or not source.strip():
                raise PostkitError(
                    f"--column '{spec}' is not NAME=SOURCE",
                    fix="write e.g. --column user_id=author",
                )
            pairs.append((name.strip(), source.strip()))
    mapping: dict[str, str] = {}
    for name, source in pairs:
        if source in mapping:
            raise PostkitError(f"column '{source}' is mapped twice", fix="map each input column once")
        mapping[source] = name
    return mapping


def apply_column_map(columns: Sequence[str], mapping: Mapping[str, str], path: Path) -> list[str]:
    """Check a source→name mapping against a file's header; return the renamed header."""
    present = set(columns)
    for source, name in mapping.items():
        if source not in present:
            raise PostkitError(
                f"column '{source}' (mapped with --column {name}={source}) is not in the file",
                path=path,
                fix=f"columns found: {', '.join(columns) or '(none)'}",
            )
        if name in present and name != source:
            raise PostkitError(
                f"both '{name}' and '{source}' are present, so --column {name}={source} is ambiguous",
                path=path,
                fix="rename or drop one of the two columns",
            )
    return [mapping.get(c, c) for c in columns]


def require_columns(
    columns: Sequence[str], required: Sequence[str], path: Path | str, mapping_option: str = "--column"
) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        found = ", ".join(columns) if columns else "(none)"
        raise PostkitError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)}"
            f" (found: {found})",
            path=path,
            fix=f"add {'them' if len(missing) > 1 else 'it'} or map yours with {mapping_option} "
            f"{missing[0]}=YOUR_COLUMN",
        )


# --------------------------------------------------------------------------- reading


@dataclass
class TableReader:
    """A table on disk, read lazily in batches.

    ``columns`` is known before any batch is read, so missing columns are reported
    before work starts; ``schema`` is the Arrow schema for typed formats (Parquet,
    datasets) so writers can give pass-through columns their original types.
    """

    path: Path
    format: str
    batch_size: int = DEFAULT_BATCH_SIZE
    column_map: dict[str, str] = field(default_factory=dict)
    # Check every CSV record's field count before reading (a full extra pass: for small
    # inputs such as consent records; big inputs still stop on extra fields, see _csv_batches).
    strict_rows: bool = False
    columns: list[str] = field(init=False)
    schema: pa.Schema | None = field(init=False, default=None)
    num_rows: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not self.path.exists():
            raise PostkitError("file not found", path=self.path, fix="check the path")
        if self.batch_size < 1:
            raise PostkitError("batch size must be at least 1", fix="pass --batch-size 1 or more")
        raw = self._raw_columns()
        refuse_duplicate_columns(raw, self.path)
        self.columns = apply_column_map(raw, self.column_map, self.path)
        refuse_duplicate_columns(self.columns, self.path, mapped=True)
        if self.strict_rows and self.format == "csv":
            problem = _csv_ragged_row(self.path, len(raw))
            if problem is not None:
                raise problem
        if self.schema is not None and self.column_map:
            self.schema = pa.schema(
                [f.with_name(self.column_map.get(f.name, f.name)) for f in self.schema]
            )

    # -- header / metadata per format
    def _raw_columns(self) -> list[str]:
        if self.format == "csv":
            return _csv_header(self.path)
        if self.format == "jsonl":
            return _jsonl_columns(self.path)
        if self.format == "parquet":
            try:
                meta = pq.ParquetFile(self.path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise PostkitError(f"not a readable Parquet file ({exc})", path=self.path) from None
            self.schema = meta.schema_arrow
            self.num_rows = meta.metadata.num_rows
            return list(self.schema.names)
        dataset = _DatasetDir(self.path)
        self.schema = dataset.schema
        self.num_rows = dataset.num_rows
        return list(self.schema.names)

    @property
    def progress_unit(self) -> str:
        """Text formats report progress in bytes (their row count is unknown up front)."""
        return "B" if self.format in ("csv", "jsonl") else "rows"

    @property
    def progress_total(self) -> int | None:
        return self.path.stat().st_size if self.progress_unit == "B" else self.num_rows

    def batches(self, on_progress: Callable[[int], Any] | None = None) -> Iterator[pd.DataFrame]:
        """Yield DataFrames indexed by 0-based record number.

        ``on_progress(n)`` is called after each batch with the rows or bytes consumed
        since the last call (see :attr:`progress_unit`).
        """
        offset = 0
        position = _Position()
        for frame in self._raw_batches(position):
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            if self.column_map:
                frame = frame.rename(columns=self.column_map)
            if on_progress is not None:
                on_progress(position.advance() if self.progress_unit == "B" else len(frame))
            yield frame

    def read_all(self) -> pd.DataFrame:
        frames = list(self.batches())
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns})
        return pd.concat(frames) if len(frames) > 1 else frames[0]

    def _raw_batches(self, position: "_Position") -> Iterator[pd.DataFrame]:
        if self.format == "csv":
            yield from _csv_batches(self.path, self.batch_size, position)
        elif self.format == "jsonl":
            yield from _jsonl_batches(self.path, self.batch_size, position)
        elif self.format == "parquet":
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.batch_size):
                yield batch.to_pandas()
        else:
            for table in _DatasetDir(self.path).batches(self.batch_size):
                yield table.to_pandas()


def open_table(
    path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    column_map: Mapping[str, str] | Sequence[str] | None = None,
    required: Sequence[str] = (),
    mapping_option: str = "--column",
    strict_rows: bool = False,
) -> TableReader:
    """Open a table for batched reading and check its required columns.

    ``mapping_option`` is the option named in the missing-column hint (the consent
    file's mapping is ``--consent-column``). ``strict_rows`` checks every CSV record's
    field count up front (see :class:`TableReader`).
    """
    path = Path(path)
    mapping = column_map if isinstance(column_map, dict) else parse_column_map(column_map)
    reader = TableReader(path, detect_format(path), batch_size, dict(mapping), strict_rows)
    require_columns(reader.columns, required, path, mapping_option)
    return reader


def read_table(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a whole table (for small inputs such as consent records), every CSV record's
    field count checked (``strict_rows``)."""
    kwargs.setdefault("strict_rows", True)
    return open_table(path, **kwargs).read_all()


def _column_key(name: str) -> str:
    from .identity import normalise_text

    return normalise_text(name).casefold()


def refuse_duplicate_columns(columns: Sequence[str], path: Path | str, *, mapped: bool = False) -> None:
    """Two columns with one name (or names differing only by case or invisible characters)
    make every value of that name ambiguous: stop, naming both positions.

    pandas would silently rename the second ``status`` to ``status.1`` and read the first.
    Unnamed columns (an empty header cell) are left alone.
    """
    seen: dict[str, int] = {}
    for position, name in enumerate(columns, start=1):
        key = _column_key(str(name))
        if not key:
            continue
        first = seen.setdefault(key, position)
        if first != position:
            from .identity import shown

            how = "after --column mapping, " if mapped else ""
            raise PostkitError(
                f"{how}column {first} and column {position} of the header are both named "
                f"'{shown(str(columns[first - 1]))}'" + ("" if columns[first - 1] == name else " (ignoring case "
                                                         "and invisible characters)"),
                path=path,
                column=shown(str(name)),
                fix="keep one column of each name; values are never guessed from two columns",
            )


def _csv_header(path: Path) -> list[str]:
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig", dtype=str, index_col=False)
        raw = _csv_raw_header(path)
    except pd.errors.EmptyDataError:
        raise PostkitError("the file is empty", path=path, fix="it needs a header row") from None
    except UnicodeDecodeError:
        raise PostkitError("not UTF-8 text", path=path, fix="re-save the file as UTF-8") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise PostkitError(f"cannot parse the header ({_first_line(exc)})", path=path) from None
    if raw is not None:
        refuse_duplicate_columns(raw, path)  # pandas has already renamed a second 'status' 'status.1'
    return [str(c) for c in header.columns]


def _csv_records(handle: Any) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank CSV record, as pandas counts them."""
    reader = csv.reader(handle)
    start = 1
    for record in reader:
        first, start = start, reader.line_num + 1
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # pandas skips blank lines
        yield first, record


def _csv_raw_header(path: Path) -> list[str] | None:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for _, record in _csv_records(handle):
            return record
    return None


def _csv_ragged_row(path: Path, width: int) -> PostkitError | None:
    """The first record whose field count differs from the header's, as an error naming
    its line, row and column; None when every record fits.

    A Python pass over the whole file: run it for small files, or after pandas has
    already found something wrong (to say exactly where).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            records = _csv_records(handle)
            header = next(records, (0, []))[1]
            for row, (line, record) in enumerate(records, start=1):
                if len(record) == width:
                    continue
                if len(record) > width:
                    return PostkitError(
                        f"{len(record)} fields on line {line} but the header names {width} columns, so "
                        f"the values may have shifted",
                        path=path, row=row,
                        fix="every record needs exactly one field per header column; quote fields "
                            "that contain commas",
                    )
                missing = header[len(record):]
                return PostkitError(
                    f"{len(record)} fields on line {line} but the header names {width} columns (no field "
                    f"for {', '.join(repr(c) for c in missing[:3])}{'…' if len(missing) > 3 else ''})",
                    path=path, row=row, column=missing[0] if missing else None,
                    fix="every record needs exactly one field per header column (empty ones too: a,,c)",
                )
    except (UnicodeDecodeError, csv.Error):
        return None  # the pandas reader reports these in its own words
    return None


class _Position:
    """Bytes consumed so far by a text reader, for byte-based progress."""

    def __init__(self) -> None:
        self.bytes = 0
        self._reported = 0

    def advance(self) -> int:
        delta, self._reported = self.bytes - self._reported, self.bytes
        return delta


def _csv_batches(path: Path, batch_size: int, position: _Position) -> Iterator[pd.DataFrame]:
    # Everything is read as text and nothing is turned into NaN: ids such as "007"
    # and pass-through columns must come out exactly as they went in. index_col=False:
    # otherwise a first record with one field more than the header silently becomes
    # the index ("bob,alice,opt_in,..." would be alice's record); pandas then warns
    # that it drops the extra field, and that warning is an error here.
    try:
        with open(path, "rb") as handle:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                reader = pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False,
                                     encoding="utf-8-sig", chunksize=batch_size, index_col=False)
            with reader:
                chunks = iter(reader)
                while True:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error", pd.errors.ParserWarning)
                        chunk = next(chunks, None)
                    if chunk is None:
                        return
                    position.bytes = handle.tell()  # the parser reads ahead: close enough for a bar
                    yield chunk
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError:
        raise PostkitError("not UTF-8 text", path=path, fix="re-save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        header = _csv_raw_header(path)
        problem = _csv_ragged_row(path, len(header)) if header is not None else None
        if problem is not None:
            raise problem from None
        raise PostkitError(
            f"malformed CSV ({_first_line(exc)})",
            path=path,
            fix="check quoting and the number of fields on that line",
        ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: the json module silently keeps the last of two equal keys."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return record


# One decoder for every line (json.loads with a hook would build a new one per call).
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def iter_json_lines(
    path: Path, position: _Position | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSON Lines file; a line that is
    not a JSON object, has a key twice (at any depth), or text that is not UTF-8, stops
    with the file and line."""
    with open(path, "rb") as handle:
        line_no = 0
        try:
            for line_no, raw in enumerate(handle, start=1):
                if position is not None:
                    position.bytes += len(raw)
                line = raw.decode("utf-8")
                if line_no == 1:
                    line = line.removeprefix("\ufeff")
                if not line.strip():
                    continue
                try:
                    record = _JSON_DECODER.decode(line)
                except _DuplicateKey as exc:
                    from .identity import shown

                    raise PostkitError(
                        f"line {line_no}: the key '{shown(exc.key)}' appears twice in one record, so "
                        f"its value is ambiguous",
                        path=path,
                        column=shown(exc.key),
                        fix="write each key once per record",
                    ) from None
                except json.JSONDecodeError as exc:
                    raise PostkitError(
                        f"line {line_no}: invalid JSON ({exc.msg} at character {exc.colno})",
                        path=path,
                        fix="each line must be one JSON object",
                    ) from None
                if not isinstance(record, dict):
                    raise PostkitError(
                        f"line {line_no}: expected a JSON object, found {type(record).__name__}",
                        path=path,
                        fix="each line must be one JSON object",
                    )
                yield line_no, record
        except UnicodeDecodeError:
            raise PostkitError(
                f"line {line_no}: not UTF-8 text", path=path, fix="re-save the file as UTF-8"
            ) from None


def _jsonl_columns(path: Path) -> list[str]:
    """Keys of the first object (later new keys are appended when they appear)."""
    for _, record in iter_json_lines(path):
        return list(record)
    return []


def _add_jsonl_column(columns: dict[str, None], key: str, line_no: int, path: Path) -> None:
    """A key first seen on a later line; refused when it only differs from a known one by
    case or invisible characters (``status`` / ``Status``: which one counts?)."""
    known = {_column_key(c): c for c in columns}
    other = known.get(_column_key(key))
    if other is not None and _column_key(key):
        from .identity import shown

        raise PostkitError(
            f"line {line_no}: the key '{shown(key)}' differs from the key '{shown(other)}' only by case "
            f"or invisible characters, so values are ambiguous",
            path=path, column=shown(key), fix="spell each key the same way in every record",
        )
    columns[key] = None


def _jsonl_batches(path: Path, batch_size: int, position: _Position) -> Iterator[pd.DataFrame]:
    columns: dict[str, None] = {}
    records: list[dict[str, Any]] = []

    def frame() -> pd.DataFrame:
        # dtype=object keeps JSON values as they were (an int column with a null
        # stays ints and None, instead of becoming floats).
        return pd.DataFrame({c: [r.get(c) for r in records] for c in columns}, dtype=object)

    for line_no, record in iter_json_lines(path, position):
        for key in record:
            if key not in columns:
                _add_jsonl_column(columns, key, line_no, path)
        records.append(record)
        if len(records) >= batch_size:
            yield frame()
            records = []
    if records:
        yield frame()


class _DatasetDir:
    """What the reader needs from a ``save_to_disk`` folder: schema, size, batches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._dataset = None
        self._empty_schema: pa.Schema | None = None
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        import datasets

        datasets.disable_progress_bars()
        try:
            loaded = datasets.load_from_disk(str(path))
        except IndexError:
            # datasets cannot load a 0-row dataset it saved itself (it writes no shard);
            # the columns are still recorded in dataset_info.json.
            self._empty_schema = self._schema_from_info()
            return
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise PostkitError(
                f"not a Hugging Face datasets folder ({_first_line(exc)})",
                path=path,
                fix="point at a folder written by Dataset.save_to_disk, or use .csv/.jsonl/.parquet",
            ) from None
        if isinstance(loaded, datasets.DatasetDict):
            raise PostkitError(
                f"this folder holds several splits ({', '.join(loaded)})",
                path=path,
                fix=f"point at one split's folder, e.g. {path / next(iter(loaded))}",
            )
        self._dataset = loaded

    def _schema_from_info(self) -> pa.Schema:
        import datasets

        return datasets.DatasetInfo.from_directory(str(self.path)).features.arrow_schema

    @property
    def schema(self) -> pa.Schema:
        return self._empty_schema if self._dataset is None else self._dataset.data.schema

    @property
    def num_rows(self) -> int:
        return 0 if self._dataset is None else self._dataset.num_rows

    def batches(self, batch_size: int) -> Iterator[pa.Table]:
        if self._dataset is not None:
            yield from self._dataset.with_format("arrow").iter(batch_size=batch_size)


# --------------------------------------------------------------------------- writing


# A text cell starting with one of these is a formula to a spreadsheet (a post or a coder's
# name opening "=HYPERLINK(...)" would run as one when the CSV is opened).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (a leading apostrophe)."""
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def jsonable(value: Any) -> Any:
    """Plain JSON value for any cell pandas/Arrow can hand us."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _csv_cell(value: Any) -> Any:
    """CSV cells are text: nested values (lists of spans, suggestions) become JSON."""
    plain = jsonable(value)
    if isinstance(plain, (list, dict)):
        return json.dumps(plain, ensure_ascii=False)
    return plain


def _arrow_table(frame: pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    """Convert a batch to Arrow with a stable schema across batches.

    The first batch fixes the schema; ``schema`` (from the input file, or from the
    first batch) gives pass-through columns their original types. A column whose
    values Arrow cannot type (mixed objects) is written as text rather than failing.
    """
    arrays, fields = [], []
    for name in frame.columns:
        series = frame[name]
        target = schema.field(name).type if schema is not None and name in schema.names else None
        try:
            array = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([None if v is None else str(_csv_cell(v)) for v in series], pa.string())
        if target is not None and array.type != target:
            try:
                array = array.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # left as its own type; the writer reports a clear error if it cannot mix
        if pa.types.is_null(array.type):
            array = array.cast(pa.string())  # all-empty first batch: text is the safe guess
        arrays.append(array)
        fields.append(pa.field(str(name), array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _first_uncastable_column(table: pa.Table, schema: pa.Schema) -> str | None:
    """The first column of ``table`` that cannot take its type in ``schema`` (None: the
    columns themselves differ)."""
    if table.schema.names != schema.names:
        return None
    for name in schema.names:
        target = schema.field(name).type
        column = table.column(name)
        if column.type == target:
            continue
        try:
            column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            return name
    return None


class TableWriter:
    """Appends batches to a temporary file; :meth:`finish` closes it, ``commit`` publishes."""

    def __init__(self, path: Path, temp: Path, fmt: str, schema_hint: pa.Schema | None) -> None:
        self.path = path
        self.temp = temp
        self.format = fmt
        self.schema_hint = schema_hint
        self.rows = 0
        self.columns: list[str] | None = None
        self._handle: Any = None
        self._arrow_writer: Any = None
        self._schema: pa.Schema | None = None
        self._stream_path: Path | None = None
        self.finished = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.columns is None:
            self.columns = [str(c) for c in frame.columns]
        elif [str(c) for c in frame.columns] != self.columns:
            frame = frame.reindex(columns=self.columns)
        self.rows += len(frame)
        if self.format == "csv":
            self._write_csv(frame)
        elif self.format == "jsonl":
            self._write_jsonl(frame)
        else:
            self._write_arrow(frame)

    def _write_csv(self, frame: pd.DataFrame) -> None:
        first = self._handle is None
        if first:
            self._handle = open(self.temp, "w", encoding="utf-8", newline="")
        out = frame.copy()
        for name in out.columns:
            if out[name].dtype == object:
                out[name] = out[name].map(_csv_cell)
        out.to_csv(self._handle, index=False, header=first, lineterminator="\n")

    def _write_jsonl(self, frame: pd.DataFrame) -> None:
        if self._handle is None:
            self._handle = open(self.temp, "w", encoding="utf-8", newline="\n")
        names = [str(c) for c in frame.columns]
        lines = []
        for row in frame.itertuples(index=False, name=None):
            record = {k: jsonable(v) for k, v in zip(names, row)}
            lines.append(json.dumps(record, ensure_ascii=False))
        if lines:
            self._handle.write("\n".join(lines) + "\n")

    def _write_arrow(self, frame: pd.DataFrame) -> None:
        table = _arrow_table(frame, self._schema or self.schema_hint)
        if self._schema is None:
            self._schema = table.schema
            self._open_arrow()
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
                # Arrow's message quotes the offending value ("Failed to parse string:
                # 'alice.smith@nhs.net'"): name the rows and the column instead.
                column = _first_uncastable_column(table, self._schema)
                raise PostkitError(
                    f"rows {self.rows - len(frame) + 1}-{self.rows} do not fit the column types of "
                    f"the earlier rows"
                    + (f" ({self._schema.field(column).type} expected)" if column else ""),
                    path=self.path,
                    column=column,
                    fix="write CSV or JSONL instead, or make the column's values one type",
                ) from None
        self._arrow_writer.write_table(table)

    def _open_arrow(self) -> None:
        if self.format == "parquet":
            self._arrow_writer = pq.ParquetWriter(self.temp, self._schema)
        else:  # datasets: stream to an Arrow file first, convert on finish
            self._stream_path = Path(str(self.temp) + ".arrow")
            self._arrow_writer = pa.ipc.new_stream(str(self._stream_path), self._schema)

    def set_empty_columns(self, columns: Sequence[str]) -> None:
        """Columns for an output with no rows, so an empty result still has its header."""
        if self.columns is None:
            empty = pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
            self.write(empty)

    def finish(self) -> Path:
        """Close the temporary output (complete on disk, not yet published)."""
        if self.finished:
            return self.temp
        if self.columns is None:
            self.set_empty_columns([])
        if self._handle is not None:
            self._handle.close()
        if self._arrow_writer is not None:
            self._arrow_writer.close()
        if self.format == "hf":
            self._save_dataset()
        self.finished = True
        return self.temp

    def _save_dataset(self) -> None:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        import datasets

        datasets.disable_progress_bars()
        assert self._stream_path is not None and self._schema is not None
        if self.rows == 0:  # an Arrow stream with no batches is not a loadable dataset
            from datasets.table import InMemoryTable

            dataset = datasets.Dataset(InMemoryTable(self._schema.empty_table()))
        else:
            dataset = datasets.Dataset.from_file(str(self._stream_path), in_memory=False)
        dataset.save_to_disk(str(self.temp))
        del dataset
        self._stream_path.unlink()

    def discard(self) -> None:
        """Close whatever is open and delete what was written (the run failed or was stopped)."""
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self._arrow_writer is not None:
            try:
                self._arrow_writer.close()
            except Exception:  # noqa: BLE001 - best effort while cleaning up
                pass
        if self._stream_path is not None:
            _remove(self._stream_path)
        _remove(self.temp)


# --------------------------------------------------------------------------- temporary names

TEMP_SUFFIX = ".tmp-postkit"
OLD_SUFFIX = ".old-postkit"


def new_temp_beside(final: str | Path, *, folder: bool = False) -> Path:
    """Create a new hidden ``.NAME.XXXXXXXX.tmp-postkit`` file (or folder) beside ``final``.

    The name is what :func:`stale_temps` recognises, so whatever a killed process
    leaves behind is removed by the next writer of ``final``. It is created here (not
    just named) so that no other process can claim the same name.
    """
    final = Path(final)
    while True:
        temp = final.parent / f".{final.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            if folder:
                temp.mkdir(mode=0o700)
            else:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return temp


def stale_temps(final: str | Path) -> list[Path]:
    """What killed writers of ``final`` left beside it: ``.NAME.*.tmp-postkit`` and
    ``.NAME.old-postkit``.

    The random part is matched exactly (8 characters from what :func:`new_temp_beside`
    and older versions' ``tempfile`` used, plus a datasets writer's ``.arrow`` stream),
    so the temporary files of an output called, say, ``posts.parquet.bak`` never match
    those of ``posts.parquet``.
    """
    final = Path(final)
    pattern = re.compile(rf"\.{re.escape(final.name)}\.[a-z0-9_]{{8}}{re.escape(TEMP_SUFFIX)}(\.arrow)?")
    try:
        names = os.listdir(final.parent)
    except FileNotFoundError:
        return []
    old = f".{final.name}{OLD_SUFFIX}"
    return [final.parent / n for n in sorted(names) if n == old or pattern.fullmatch(n)]


def remove_stale_temps(final: str | Path) -> list[Path]:
    """Remove :func:`stale_temps` of ``final``; returns what was removed.

    Only call this while holding the exclusive lock on ``final``: without it, the
    "stale" files could be a live writer's.
    """
    found = stale_temps(final)
    for path in found:
        _remove(path)
    return found


# --------------------------------------------------------------------------- publishing


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


@dataclass
class _Output:
    final: Path
    temp: Path
    writer: TableWriter | None  # None for a plain file (a log, a map, a report)
    lock: PathLock


class OutputSet:
    """Several outputs that appear together or not at all.

    Use as a context manager: leaving the block normally commits every output (see
    :meth:`commit`); an exception (including Ctrl+C, SIGTERM or SIGHUP under the CLI,
    see :mod:`postkit.signals`) removes every temporary file, so a failed or stopped
    run never leaves a partial or half-updated output.

    Each final path is locked (:class:`~postkit.locks.PathLock`, exclusive) from the
    moment it is reserved until the set is committed or aborted, so a second command
    writing the same output stops at once with a message naming the first, instead of
    both finishing and the last one silently winning. Holding that lock, the set first
    removes what killed writers of the same path left behind (:func:`stale_temps`).
    ``purpose`` names this writer in the other command's message (default: the
    process's, see :func:`postkit.locks.set_process_purpose`).
    """

    def __init__(self, inputs: Sequence[str | Path] = (), *, purpose: str | None = None) -> None:
        self.inputs = [Path(p) for p in inputs]
        self.purpose = purpose
        self._items: list[_Output] = []
        self._committed = False

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _reserve(self, path: str | Path) -> tuple[Path, Path, PathLock]:
        path = Path(path)
        for source in self.inputs:
            if _same_file(path, source) or source.resolve() in path.resolve().parents:
                raise PostkitError(
                    f"output would overwrite the input {source}",
                    path=path,
                    fix="choose a different output path; inputs are never modified",
                )
        for item in self._items:
            if item.final.resolve() == path.resolve():
                raise PostkitError("the same path is used for two outputs", path=path,
                                   fix="give each output its own path")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = PathLock(path, mode=EXCLUSIVE, purpose=self.purpose).acquire()
        try:
            if path.is_dir() and detect_format(path) != "hf":
                raise PostkitError("a folder exists at this path", path=path, fix="choose a file name")
            if path.exists() and path.is_dir() and not _looks_like_dataset(path):
                raise PostkitError(
                    "a folder that is not a datasets folder exists at this path",
                    path=path,
                    fix="choose a new folder name; postkit only replaces folders it could have written",
                )
            remove_stale_temps(path)
            temp = new_temp_beside(path)
            temp.unlink()  # writers create it themselves (a datasets output is a folder)
        except BaseException:
            lock.release()
            raise
        return path, temp, lock

    def table(self, path: str | Path, *, schema_hint: pa.Schema | None = None) -> TableWriter:
        final, temp, lock = self._reserve(path)
        writer = TableWriter(final, temp, detect_format(final), schema_hint)
        self._items.append(_Output(final, temp, writer, lock))
        return writer

    def file(self, path: str | Path) -> tuple[Path, Path]:
        """Reserve a plain file (e.g. an audit log); returns (final path, temp path to write)."""
        final, temp, lock = self._reserve(path)
        self._items.append(_Output(final, temp, None, lock))
        return final, temp

    def finish(self) -> None:
        for item in self._items:
            if item.writer is not None:
                item.writer.finish()

    def commit(self) -> None:
        """Publish every output: tables first, then plain files (logs).

        Stopping signals wait until the renames are done (:func:`postkit.signals.deferred`).
        SIGKILL cannot wait, so the renames are ordered for it (:func:`publish_together`):
        old versions go first, logs before tables; then the new ones come in, tables
        before logs. Whenever the process dies, a log present is the one describing the
        outputs beside it; the worst case is an output whose log is missing (rerun to
        get both), never a new output beside an old log. Any other failure (disk full,
        permissions) puts the old versions back and removes the temporary files.
        """
        if self._committed:
            return
        try:
            self.finish()
            ordered = sorted(self._items, key=lambda item: item.writer is None)  # stable: tables, then files
            with signals.deferred():
                try:
                    publish_together([(item.temp, item.final) for item in ordered])
                    self._committed = True
                finally:
                    self._release()
        except BaseException:
            # A failed write or rename must not leave temporary files behind.
            if not self._committed:
                self.abort()
            raise

    def abort(self) -> None:
        """Remove every temporary file and release the locks (safe to call twice)."""
        try:
            for item in self._items:
                if item.writer is not None:
                    item.writer.discard()
                _remove(item.temp)
        finally:
            self._release()

    def _release(self) -> None:
        for item in self._items:
            item.lock.release()


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _looks_like_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "state.json").exists()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif _exists(path):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _aside(final: Path) -> Path:
    return final.with_name(f".{final.name}{OLD_SUFFIX}")


def publish_together(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Rename finished temporary files or folders into place, as one step as far as can be.

    ``pairs`` are (temp, final), in the order the new versions should appear; put the
    files that describe the others (logs) last. First the old version of every final
    path is moved aside (``.NAME.old-postkit``), last-listed first; then every new one
    is renamed in, in order; then the old ones are removed. A process killed part-way
    therefore never shows a new version beside an old one, only some paths missing
    (what it leaves aside is removed by the next writer, see :func:`stale_temps`).
    A folder cannot be renamed over a non-empty folder, which moving aside also solves.

    If a rename fails (an exception, not a kill), the new versions already in place are
    removed and the old ones put back, and the error is raised; the temporary files are
    the caller's to remove. Callers hold the exclusive lock on every final path.
    """
    moved: list[tuple[Path, Path]] = []  # (final, aside)
    placed: list[Path] = []
    try:
        for _, final in reversed(pairs):
            if _exists(final):
                aside = _aside(final)
                _remove(aside)
                os.replace(final, aside)
                moved.append((final, aside))
        for temp, final in pairs:
            os.replace(temp, final)
            placed.append(final)
    except BaseException:
        for final in reversed(placed):
            _remove(final)
        for final, aside in reversed(moved):
            try:
                os.replace(aside, final)
            except OSError:
                pass  # left as .NAME.old-postkit; nothing more can be done here
        raise
    for _, aside in moved:
        _remove(aside)


def publish(temp: Path, final: Path) -> None:
    """Rename one finished temporary file or folder into place (see :func:`publish_together`).

    At every moment either the old or the new version exists under the final name,
    except after a SIGKILL between its two renames (then the old one waits as
    ``.NAME.old-postkit``). Stopping signals wait until it is done.
    """
    with signals.deferred():
        publish_together([(temp, final)])


def write_atomic(path: str | Path, data: bytes | str, *, inputs: Sequence[str | Path] = ()) -> None:
    """One file, all or nothing: written beside the target, flushed to disk, then renamed.

    For finished documents (reports, REFI-QDA files); text is written as UTF-8 exactly
    as given (no newline translation).
    """
    with OutputSet(inputs) as outputs:
        _, temp = outputs.file(path)
        with open(temp, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())


def write_table(frame: pd.DataFrame, path: str | Path, *, inputs: Sequence[str | Path] = ()) -> None:
    """Write one DataFrame atomically (convenience for library users)."""
    with OutputSet(inputs) as outputs:
        writer = outputs.table(path)
        if len(frame.columns) and len(frame) == 0:
            writer.set_empty_columns([str(c) for c in frame.columns])
        else:
            writer.write(frame)
