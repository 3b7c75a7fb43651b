"""Parquet bodies (``application/vnd.apache.parquet``): one table, read with pyarrow.

A Parquet file is compressed, and its encodings (run lengths, dictionaries) compress further:
a 2 MB file can hold a hundred million rows, or a million copies of one long string. So its
size is judged from its footer before anything is decompressed (rows, columns and values
counted there; the fixed-width bytes they decode to), then string columns are read as
dictionaries (their unique values once each, plus an index per row) to add up the bytes they
would take expanded, and only then is the file read into a DataFrame.

What is left unchecked is a hand-made file whose footer misstates its own page sizes; the
reader decompresses each page into the buffer its page header declares (see docs/security.md).
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ScoringError
from .limits import DecodeLimits, active_limits, check_decoded_bytes, check_table, too_large

# Bytes a value of each fixed-width physical type decodes to, at most (pandas widens dates and
# INT96 timestamps to 8 bytes; an arrow bool is a bit, a numpy one a byte).
_FIXED_WIDTH = {"BOOLEAN": 1, "INT32": 8, "INT64": 8, "INT96": 12, "FLOAT": 8, "DOUBLE": 8}


def decode_parquet(body: bytes, limits: DecodeLimits | None = None) -> pd.DataFrame:
    """Read a parquet file sent as the request body into a DataFrame, within ``limits`` (by
    default the active ones)."""
    limits = active_limits() if limits is None else limits
    try:
        if limits.bounds_size:
            check_parquet_size(body, limits)
        return pd.read_parquet(pa.BufferReader(body))  # the body's bytes, not a copy of them
    except ScoringError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for bad files
        raise ScoringError(f"Failed to parse input as a Parquet file. Error: '{exc}'") from None


def check_parquet_size(body: bytes, limits: DecodeLimits) -> None:
    """Refuse a file over ``limits`` from its footer (and its string dictionaries), before its
    data is decompressed."""
    parquet = pq.ParquetFile(pa.BufferReader(body))
    metadata, schema = parquet.metadata, parquet.schema
    what = "The Parquet file"
    check_table(metadata.num_rows, len(parquet.schema_arrow), limits, what)
    values = declared = fixed = 0
    strings: list[str] = []  # paths of the string leaves
    for index in range(metadata.num_columns):
        column = schema.column(index)
        count = 0
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group).column(index)
            count += chunk.num_values
            declared += chunk.total_uncompressed_size
        values += count
        if column.physical_type == "BYTE_ARRAY":
            strings.append(column.path)
        elif column.physical_type == "FIXED_LEN_BYTE_ARRAY":
            fixed += count * max(column.length, 1)
        else:
            fixed += count * _FIXED_WIDTH.get(column.physical_type, 8)
    if limits.max_cells is not None and values > limits.max_cells:
        raise too_large(f"{what} holds {values:,} values; this server accepts at most {limits.max_cells:,} cells "
                        "per request", "max_cells")
    check_decoded_bytes(max(declared, fixed), limits, what)
    if strings and limits.max_decoded_bytes is not None:
        fixed += _string_bytes(body, strings)
        check_decoded_bytes(fixed, limits, what)


def _string_bytes(body: bytes, strings: list[str]) -> int:
    """The bytes the string leaves at ``strings`` (dotted paths) take expanded, counted from their
    dictionaries; only the top-level columns holding them are read."""
    parquet = pq.ParquetFile(pa.BufferReader(body), read_dictionary=strings)
    columns = [name for name in parquet.schema_arrow.names
               if any(path == name or path.startswith(name + ".") for path in strings)]
    table = parquet.read(columns=columns, use_pandas_metadata=False)
    return sum(_expanded_bytes(chunk) for column in table.columns for chunk in column.chunks)


def _expanded_bytes(array: pa.Array) -> int:
    """The bytes of the dictionary-encoded strings in ``array`` once every index is replaced by its value."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        lengths = pc.binary_length(array.dictionary)
        return int(pc.sum(pc.take(lengths, array.indices)).as_py() or 0) + 4 * len(array)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _expanded_bytes(array.values)
    if pa.types.is_map(kind):
        return _expanded_bytes(array.keys) + _expanded_bytes(array.items)
    if pa.types.is_struct(kind):
        return sum(_expanded_bytes(array.field(i)) for i in range(kind.num_fields))
    if pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind):
        return array.nbytes  # a column read_dictionary left as it is
    return 0
