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

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import PostkitError

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
    columns: list[str] = field(init=False)
    schema: pa.Schema | None = field(init=False, default=None)
    num_rows: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not self.path.exists():
            raise PostkitError("file not found", path=self.path, fix="check the path")
        if self.batch_size < 1:
            raise PostkitError("batch size must be at least 1", fix="pass --batch-size 1 or more")
        raw = self._raw_columns()
        self.columns = apply_column_map(raw, self.column_map, self.path)
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
) -> TableReader:
    """Open a table for batched reading and check its required columns.

    ``mapping_option`` is the option named in the missing-column hint (the consent
    file's mapping is ``--consent-column``).
    """
    path = Path(path)
    mapping = column_map if isinstance(column_map, dict) else parse_column_map(column_map)
    reader = TableReader(path, detect_format(path), batch_size, dict(mapping))
    require_columns(reader.columns, required, path, mapping_option)
    return reader


def read_table(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a whole table (for small inputs such as consent records)."""
    return open_table(path, **kwargs).read_all()


def _csv_header(path: Path) -> list[str]:
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig", dtype=str)
    except pd.errors.EmptyDataError:
        raise PostkitError("the file is empty", path=path, fix="it needs a header row") from None
    except UnicodeDecodeError:
        raise PostkitError("not UTF-8 text", path=path, fix="re-save the file as UTF-8") from None
    except pd.errors.ParserError as exc:
        raise PostkitError(f"cannot parse the header ({_first_line(exc)})", path=path) from None
    return [str(c) for c in header.columns]


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
    # and pass-through columns must come out exactly as they went in.
    try:
        with open(path, "rb") as handle, pd.read_csv(
            handle,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            chunksize=batch_size,
        ) as reader:
            for chunk in reader:
                position.bytes = handle.tell()  # the parser reads ahead: close enough for a bar
                yield chunk
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError:
        raise PostkitError("not UTF-8 text", path=path, fix="re-save the file as UTF-8") from None
    except pd.errors.ParserError as exc:
        raise PostkitError(
            f"malformed CSV ({_first_line(exc)})",
            path=path,
            fix="check quoting and the number of fields on that line",
        ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def iter_json_lines(
    path: Path, position: _Position | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSON Lines file; a line that is
    not a JSON object, or text that is not UTF-8, stops with the file and line."""
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
                    record = json.loads(line)
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


def _jsonl_batches(path: Path, batch_size: int, position: _Position) -> Iterator[pd.DataFrame]:
    columns: dict[str, None] = {}
    records: list[dict[str, Any]] = []

    def frame() -> pd.DataFrame:
        # dtype=object keeps JSON values as they were (an int column with a null
        # stays ints and None, instead of becoming floats).
        return pd.DataFrame({c: [r.get(c) for r in records] for c in columns}, dtype=object)

    for _, record in iter_json_lines(path, position):
        for key in record:
            if key not in columns:
                columns[key] = None
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
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise PostkitError(
                    f"rows {self.rows - len(frame) + 1}-{self.rows} do not fit the column types of "
                    f"the earlier rows ({_first_line(exc)})",
                    path=self.path,
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


class OutputSet:
    """Several outputs that appear together or not at all.

    Use as a context manager: leaving the block normally commits every output
    (temp → final name, in the order they were opened); an exception removes every
    temporary file, so a failed run never leaves a partial or half-updated output.
    """

    def __init__(self, inputs: Sequence[str | Path] = ()) -> None:
        self.inputs = [Path(p) for p in inputs]
        self._items: list[tuple[Path, Path, TableWriter | None]] = []
        self._committed = False

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _reserve(self, path: str | Path) -> tuple[Path, Path]:
        path = Path(path)
        for source in self.inputs:
            if _same_file(path, source) or source.resolve() in path.resolve().parents:
                raise PostkitError(
                    f"output would overwrite the input {source}",
                    path=path,
                    fix="choose a different output path; inputs are never modified",
                )
        for existing, _, _ in self._items:
            if existing.resolve() == path.resolve():
                raise PostkitError("the same path is used for two outputs", path=path,
                                   fix="give each output its own path")
        if path.is_dir() and detect_format(path) != "hf":
            raise PostkitError("a folder exists at this path", path=path, fix="choose a file name")
        if path.exists() and path.is_dir() and not _looks_like_dataset(path):
            raise PostkitError(
                "a folder that is not a datasets folder exists at this path",
                path=path,
                fix="choose a new folder name; postkit only replaces folders it could have written",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp-postkit",
                                             dir=path.parent)
        os.close(handle)
        temp = Path(temp_name)
        temp.unlink()  # writers create it themselves (a datasets output is a folder)
        return path, temp

    def table(self, path: str | Path, *, schema_hint: pa.Schema | None = None) -> TableWriter:
        final, temp = self._reserve(path)
        writer = TableWriter(final, temp, detect_format(final), schema_hint)
        self._items.append((final, temp, writer))
        return writer

    def file(self, path: str | Path) -> tuple[Path, Path]:
        """Reserve a plain file (e.g. an audit log); returns (final path, temp path to write)."""
        final, temp = self._reserve(path)
        self._items.append((final, temp, None))
        return final, temp

    def finish(self) -> None:
        for _, _, writer in self._items:
            if writer is not None:
                writer.finish()

    def commit(self) -> None:
        if self._committed:
            return
        try:
            self.finish()
            for final, temp, _ in self._items:
                publish(temp, final)
        except BaseException:
            # A failed rename (disk full, permissions) must not leave temporary files behind.
            self.abort()
            raise
        self._committed = True

    def abort(self) -> None:
        for _, temp, writer in self._items:
            if writer is not None:
                for handle in (writer._handle,):
                    if handle is not None and not handle.closed:
                        handle.close()
                if writer._arrow_writer is not None:
                    try:
                        writer._arrow_writer.close()
                    except Exception:  # noqa: BLE001 - best effort while cleaning up
                        pass
                if writer._stream_path is not None and writer._stream_path.exists():
                    writer._stream_path.unlink()
            _remove(temp)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _looks_like_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "state.json").exists()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif _exists(path):
        path.unlink()


def publish(temp: Path, final: Path) -> None:
    """Rename a finished temporary file or folder into place.

    A folder cannot be renamed over a non-empty folder, so an older one is first moved
    aside and removed only after the new one is in place: at every moment either the
    old or the new output exists under the final name.
    """
    if temp.is_dir() and final.exists():
        aside = final.with_name(f".{final.name}.old-postkit")
        _remove(aside)
        os.replace(final, aside)
        os.replace(temp, final)
        _remove(aside)
    else:
        os.replace(temp, final)


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
