"""Checks of the input CSVs made before TFX starts, so that bad files fail at once and say where.

Without them a non-UTF-8 byte fails inside CsvExampleGen's Beam job (and the CLI then reported an unrelated
`Cannot connect sqlite3 database`), and a cell longer than the `csv` module's field limit (131,072 characters,
which tfx_bsl's CSV reader inherits) fails deep inside tfx_bsl without naming the row.
"""

import csv
import os
from typing import Iterator, List

MAX_CELL_CHARS = 131072  # csv.field_size_limit()'s default: the CSV reader of CsvExampleGen stops there


class DataError(ValueError):
    """The input data cannot be read; the message names the file and where in it."""


def csv_files(data_root: str) -> List[str]:
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(os.path.join(data_root, "*.csv")))


def _utf8_lines(path: str) -> Iterator[str]:
    """The lines of `path` decoded as UTF-8; DataError naming the line and byte offset of the first bad byte."""
    import tensorflow as tf

    offset = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: not UTF-8 at line {number}, byte {offset + e.start} of the file "
                                f"(0x{raw[e.start]:02x}); save the CSV as UTF-8") from None
            offset += len(raw)


def check_csv_file(path: str, max_cell_chars: int = MAX_CELL_CHARS) -> int:
    """Reads `path` once: UTF-8 throughout, a header, no cell over `max_cell_chars`. Returns the data rows."""
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # measure long cells ourselves, to name them
    try:
        reader = csv.reader(_utf8_lines(path))
        header = next(reader, None)
        if not header:
            raise DataError(f"{path} is empty: a CSV needs a header line naming its columns")
        rows = 0
        for row in reader:
            rows += 1
            for column, cell in zip(header + [f"#{i + 1}" for i in range(len(header), len(row))], row):
                if len(cell) > max_cell_chars:
                    raise DataError(f"{path}: row {rows} (line {reader.line_num}), column {column!r}: a cell of "
                                    f"{len(cell):,} characters; CsvExampleGen reads at most {max_cell_chars:,}")
        return rows
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(previous_limit)


def check_csv_folder(data_root: str) -> int:
    """`check_csv_file` on every CSV of `data_root`; DataError when there is none. Returns the data rows.

    Zero rows is not an error here: ExampleValidator reports it ("no examples") and the pipeline stops there.
    """
    paths = csv_files(data_root)
    if not paths:
        raise DataError(f"no *.csv file in {data_root}")
    return sum(check_csv_file(path) for path in paths)
