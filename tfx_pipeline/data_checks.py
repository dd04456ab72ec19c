"""Checks of the input data made before TFX starts, so that bad files fail at once and say where.

The CSVs are read here with CsvExampleGen's own rules (TFX 1.16 `csv_example_gen/executor.py`), so that what
passes here is what ExampleGen reads, cell for cell:

- it reads every entry of the data folder (its split pattern is `*`), and all of them must have one header;
- the header is the first line split on commas, with no CSV quoting (`"text","label"` names a column `"text"`)
  and no byte-order mark removed (a BOM becomes part of the first name: `\\ufefftext`);
- each later line is decoded as UTF-8 and lines are joined until they hold an even number of `"`; that record is
  parsed by Python's `csv.reader` (default dialect, not strict), blank records are skipped, and a record with
  another number of cells than the header fails the Beam job;
- a cell is at most `csv.field_size_limit()` (131,072) characters.

A BOM is refused, not removed: ExampleGen reads the folder in place, and normalising would mean a copy of the
user's data under the pipeline root, read by a fingerprint other than the files the user sees. What ExampleGen
rejects with a message that names no line, or reads differently from the writer's evident intent (duplicate
column names: the last one wins; text after a closing quote is glued on), is refused too, naming the file, the
line and the problem.
"""

import csv
import os
from typing import Dict, Iterator, List, Sequence, Tuple

MAX_CELL_CHARS = 131072  # csv.field_size_limit()'s default: the CSV reader of CsvExampleGen stops there
BOM = "\ufeff"
EXCERPT_CHARS = 60


class DataError(ValueError):
    """The input data cannot be read; the message names the file and where in it."""


def example_gen_files(data_root: str) -> List[str]:
    """What ExampleGen reads: every entry of `data_root` (its split pattern `*`, dot files included)."""
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(os.path.join(data_root, "*")))


def csv_files(data_root: str) -> List[str]:
    """The `*.csv` files of `data_root`; DataError when there is none."""
    paths = [path for path in example_gen_files(data_root) if path.endswith(".csv")]
    if not paths:
        raise DataError(f"no *.csv file in {data_root}")
    return paths


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` on one line, cut to `limit` characters, quoted: what a message shows of a row."""
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit - 1] + "…")


def _utf8_lines(path: str) -> Iterator[Tuple[int, str]]:
    """`(line number, line)` of `path` decoded as UTF-8, split on "\\n" as ExampleGen's binary read does;
    DataError naming the line and byte offset of the first bad byte."""
    import tensorflow as tf

    offset = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: not UTF-8 at line {number}, byte {offset + e.start} of the file "
                                f"(0x{raw[e.start]:02x}); save the CSV as UTF-8") from None
            offset += len(raw)


def header_problem(line: str) -> str:
    """What is wrong with a header line as ExampleGen reads it (`line.strip().split(",")`); "" when nothing."""
    if line.startswith(BOM):
        return ("it starts with a UTF-8 byte-order mark (BOM), which CsvExampleGen keeps in the first column's "
                "name ('\\ufeff...'); save the file as UTF-8 without a BOM")
    if '"' in line:
        return ("it holds a quote: CsvExampleGen splits the header on commas without CSV quoting, so "
                f"{line.strip()!r} would name columns with quotes in them; write the names without quotes")
    names = line.strip().split(",")
    for number, name in enumerate(names, start=1):
        if not name.strip():
            return f"column {number} has no name (a comma too many?)"
        if name != name.strip():
            return f"column {name!r} has spaces around its name, which CsvExampleGen keeps; remove them"
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return (f"it names {', '.join(repr(n) for n in repeated)} more than once: CsvExampleGen would keep only "
                f"the last such column's values; give each column its own name")
    return ""


def read_header(path: str) -> List[str]:
    """The column names of `path` as ExampleGen reads them; DataError when it would read them wrongly."""
    for _, line in _utf8_lines(path):
        problem = header_problem(line)
        if problem:
            raise DataError(f"{path}: line 1, the header: {problem}")
        if not line.strip():
            break
        return line.strip().split(",")
    raise DataError(f"{path} is empty: a CSV needs a header line naming its columns")


def _record_problem(record: str, cells: List[str], header: List[str]) -> str:
    """Why ExampleGen would reject or misread a parsed record; "" when it reads it as written."""
    try:
        next(csv.reader([record], strict=True))
    except csv.Error:
        return ("text after the closing quote of a quoted cell, which CsvExampleGen glues on; quote the whole "
                "cell and double each quote inside it (\"\")")
    if len(cells) != len(header):
        return (f"{len(cells)} cells, but the header has {len(header)} columns (a comma inside a cell that is "
                f"not quoted?)")
    for column, cell in zip(header, cells):
        if len(cell) > MAX_CELL_CHARS:
            return (f"column {column!r}: a cell of {len(cell):,} characters; CsvExampleGen reads at most "
                    f"{MAX_CELL_CHARS:,}")
    return ""


def csv_records(path: str) -> Iterator[Tuple[int, str, List[str]]]:
    """`(first line, raw text, cells)` of each data record of `path`, as CsvExampleGen reads them (see the module
    docstring; blank records skipped); DataError naming the file and line of the first it would reject or
    misread."""
    header = read_header(path)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # measure long cells ourselves, to name them
    try:
        pending, first, quotes = [], 0, 0
        lines = _utf8_lines(path)
        next(lines)  # the header
        for number, line in lines:
            if not pending:
                first = number
            pending.append(line)
            quotes += line.count('"')
            if quotes % 2:
                continue  # a quoted cell goes on: ExampleGen joins the next line
            record, span = "".join(pending), (f"line {first}" if number == first else
                                              f"line {first} (the record runs over lines {first}-{number})")
            pending, quotes = [], 0
            try:
                cells = next(csv.reader([record]))
            except csv.Error:
                raise DataError(
                    f"{path}: {span}: a quote inside a cell that does not start with one ({excerpt(record)}); "
                    f"put the whole cell in quotes and double each quote inside it (\"\")") from None
            if not cells:
                continue
            problem = _record_problem(record, cells, header)
            if problem:
                raise DataError(f"{path}: {span} {excerpt(record)}: {problem}")
            yield first, record, cells
        if pending:
            raise DataError(f"{path}: line {first}: the quote opened in {excerpt(''.join(pending))} is never "
                            f"closed (an odd number of '\"' from line {first} to the end of the file); quote "
                            f"whole cells and double each quote inside them (\"\")")
    finally:
        csv.field_size_limit(previous_limit)


def csv_rows(path: str) -> Iterator[Tuple[int, str, Dict[str, str]]]:
    """`(line, raw text, {column: cell})` of each data record of `path` (see `csv_records`)."""
    header = read_header(path)
    for line, record, cells in csv_records(path):
        yield line, record, dict(zip(header, cells))


def check_csv_file(path: str) -> int:
    """Reads `path` once with ExampleGen's rules (see the module docstring); returns its data rows."""
    return sum(1 for _ in csv_records(path))


def check_csv_folder(data_root: str) -> int:
    """`check_csv_file` on every file ExampleGen reads in `data_root`, which must share one header; DataError
    when there is no CSV, or naming the file and line of the first problem. Returns the data rows.

    Zero rows is not an error here: ExampleValidator reports it ("no examples") and the pipeline stops there.
    """
    import tensorflow as tf

    csv_files(data_root)
    headers = {}
    for path in example_gen_files(data_root):
        if tf.io.gfile.isdir(path):
            raise DataError(f"{path} is a folder: CsvExampleGen reads every entry of {data_root} as a CSV file; "
                            f"move it out")
        headers[path] = read_header(path)
    first, *others = headers
    for path in others:
        if headers[path] != headers[first]:
            raise DataError(f"{path}: its header {_names(headers[path])} differs from {first}'s "
                            f"{_names(headers[first])}: CsvExampleGen reads every file of {data_root} as one "
                            f"table; give them one header, or move other files out")
    return sum(check_csv_file(path) for path in headers)


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def check_columns(data_root: str, columns: Sequence[str], required: Sequence[str], what: str) -> None:
    """DataError unless every name in `required` is among `columns` (the data's columns or features)."""
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError(f"{data_root}: no {'column' if len(missing) == 1 else 'columns'} {_names(missing)}, "
                        f"which {what} reads; the data has {_names(columns) or 'none'}")


# tfx_bsl's ColumnTypeInferrer, which CsvExampleGen types columns with: each non-empty cell is an int (in int64), a
# float or a string; a column takes the widest of its cells' types, over every row; no value at all: unknown.
UNKNOWN, INT, FLOAT, STRING = range(4)
INT64_RANGE = (-2**63, 2**63 - 1)


def cell_type(cell: str) -> int:
    if not cell:
        return UNKNOWN
    try:
        return INT if INT64_RANGE[0] <= int(cell) <= INT64_RANGE[1] else STRING
    except ValueError:
        try:
            float(cell)
        except ValueError:
            return STRING
        return FLOAT


def csv_column_types(data_root: str) -> Dict[str, int]:
    """Column -> UNKNOWN / INT / FLOAT / STRING of the CSVs in `data_root`, as CsvExampleGen infers them."""
    types: Dict[str, int] = {}
    for path in (path for path in example_gen_files(data_root) if path.endswith(".csv")):
        header = read_header(path)
        for name in header:
            types.setdefault(name, UNKNOWN)
        for _, _, cells in csv_records(path):
            for name, cell in zip(header, cells):
                types[name] = max(types[name], cell_type(cell))
    return types


def csv_column(data_root: str, column: str, what: str) -> Iterator[str]:
    """The cells of `column` in every CSV of `data_root` (none when there is no CSV), read with ExampleGen's
    rules; DataError naming the file when one lacks the column (`what` reads it)."""
    for path in (path for path in example_gen_files(data_root) if path.endswith(".csv")):
        header = read_header(path)
        check_columns(path, header, [column], what)
        index = header.index(column)
        for _, _, cells in csv_records(path):
            yield cells[index]
