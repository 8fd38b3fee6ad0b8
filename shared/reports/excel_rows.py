"""Streaming rows into an xlsxwriter worksheet opened in ``constant_memory`` mode (pure: no I/O of its
own; xlsxwriter keeps one row in memory and spills the rest to its temporary file).

A :class:`Col` gives one column's header (unit in it), width, kind and a ``chunk(start, stop)`` that
returns that slice of its values as a Python list, so only :data:`CHUNK` rows of Python objects exist
at a time however long the period is. Times are Excel serial days in UTC:
``serial = ts_s / 86400 + 25569`` (25569 = 1970-01-01 in Excel's 1900 date system), shown with a
date-time number format, so Excel and readers see real date-times, not text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

#: Rows of Python values built at a time when streaming (bounds the memory a long period takes).
CHUNK = 8192
#: Excel's rows per sheet (1,048,576): a sheet holds at most this many rows, header and notes included.
EXCEL_MAX_ROWS = 1_048_576
#: Unix epoch as an Excel 1900-system serial day.
EXCEL_EPOCH_DAYS = 25569.0

_INF = float("inf")
#: Characters XML 1.0 cannot hold.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
Kind = Literal["num", "time", "text", "bool"]


def serial_days(ts_s: NDArray[np.float64] | float) -> Any:
    """Unix seconds (UTC) → Excel serial days: ``ts_s / 86400 + 25569``."""
    return np.asarray(ts_s, dtype=np.float64) / 86400.0 + EXCEL_EPOCH_DAYS


def dt_serial(dt: datetime) -> float:
    """A timezone-aware datetime → Excel serial days in UTC (naive datetimes are taken as UTC)."""
    aware = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return float(serial_days(aware.timestamp()))


@dataclass
class Col:
    """One streamed column: header (with unit), width (characters), kind and its values by slice."""

    header: str
    width: float
    kind: Kind
    chunk: Callable[[int, int], list[Any]]


def array_col(header: str, width: float, values: NDArray[np.float64], kind: Kind = "num") -> Col:
    """A numeric column from an array (NaN → empty cell); ``kind="time"`` takes Unix seconds."""
    arr = serial_days(values) if kind == "time" else np.asarray(values, dtype=np.float64)
    return Col(header, width, kind, lambda s, e: arr[s:e].tolist())


def list_col(header: str, width: float, values: Sequence[Any], kind: Kind = "text") -> Col:
    """A column from a list ("" or None → empty cell)."""
    return Col(header, width, kind, lambda s, e: list(values[s:e]))


def joined_col(header: str, width: float, values: NDArray[np.float64], index: NDArray[np.intp]) -> Col:
    """``values[index[i]]`` for row i, an empty cell where ``index[i] < 0`` (no joined row)."""

    def chunk(s: int, e: int) -> list[Any]:
        idx = index[s:e]
        out = np.full(idx.shape[0], np.nan)
        hit = idx >= 0
        out[hit] = values[idx[hit]]
        return out.tolist()

    return Col(header, width, "num", chunk)


def joined_labels(header: str, width: float, values: Sequence[str], index: NDArray[np.intp]) -> Col:
    """``values[index[i]]`` for row i, an empty cell where ``index[i] < 0``."""
    return Col(header, width, "text", lambda s, e: [values[i] if i >= 0 else "" for i in index[s:e].tolist()])


def write_header(ws: Worksheet, row: int, cols: Sequence[Col], fmt: Format) -> None:
    """Header row and column widths."""
    for c, col in enumerate(cols):
        ws.set_column(c, c, col.width)
    write_cells(ws, row, [(col.header, fmt) for col in cols])


def write_cells(ws: Worksheet, row: int, cells: Sequence[tuple[Any, Format | None]]) -> None:
    """One row of (value, format) cells from column A, each written by its type: text (escaped, "" or
    None → empty cell), bool, integer, number (NaN → empty cell) or datetime (Excel date-time in UTC;
    give it a date format). Written as sheet XML like :func:`stream_rows`: xlsxwriter's own
    ``write_string`` in ``constant_memory`` mode writes a text that starts with ``<r>`` and ends with
    ``</r>`` unescaped, as a rich string, so a user's text could break the workbook."""
    xml = []
    for c, (value, fmt) in enumerate(cells):
        attr = f' s="{fmt._get_xf_index()}"' if fmt is not None else ""
        ref = f"{xl_col_to_name(c)}{row + 1}"
        if isinstance(value, datetime):
            value = dt_serial(value)
        if isinstance(value, str):
            xml.append(_text_cell(ref, value, attr) if value else "")
        elif isinstance(value, bool):
            xml.append(f'<c r="{ref}"{attr} t="b"><v>{int(value)}</v></c>')
        elif isinstance(value, int | np.integer):
            xml.append(f'<c r="{ref}"{attr}><v>{int(value)}</v></c>')
        elif value is not None and -_INF < value < _INF:
            xml.append(f'<c r="{ref}"{attr}><v>{float(value)!r}</v></c>')
    _emit(ws, row, row, len(cells) - 1, lambda: f'<row r="{row + 1}">{"".join(xml)}</row>')


def stream_rows(ws: Worksheet, first_row: int, n: int, cols: Sequence[Col], time_fmt: Format) -> None:
    """Write ``n`` rows from ``first_row`` on, :data:`CHUNK` rows at a time, as the sheet XML
    xlsxwriter's ``constant_memory`` mode itself writes (``<row>`` of ``<c>`` cells, inline strings)
    straight into the worksheet's row file: xlsxwriter's per-cell calls cost ~8 µs a cell (a minute for
    a week of 1 Hz readings), this well under 1 µs. Only below the rows written so far.

    Numbers are written as numbers (shortest round-trip ``repr``; NaN/inf → empty cell), times as
    numbers with ``time_fmt``, booleans as booleans, text only when non-empty, XML-escaped
    (:func:`_text_cell`)."""
    if n <= 0:
        return
    time_attr = f' s="{time_fmt._get_xf_index()}"'
    letters = [xl_col_to_name(c) for c in range(len(cols))]

    def xml() -> Iterator[str]:
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            rows = range(first_row + s + 1, first_row + e + 1)  # 1-based in the XML
            cells = [_cells(col, letters[c], rows, col.chunk(s, e), time_attr) for c, col in enumerate(cols)]
            yield "".join(f'<row r="{r}">{"".join(cs)}</row>' for r, *cs in zip(rows, *cells, strict=True))

    _emit(ws, first_row, first_row + n - 1, len(cols) - 1, xml)


def _emit(
    ws: Worksheet, first: int, last: int, last_col: int, xml: Callable[[], Iterator[str] | str]
) -> None:
    """Write rows ``first..last`` (0-based) of XML into a ``constant_memory`` worksheet's row file, as
    xlsxwriter would: flush the row it holds, write, then continue below ``last`` with the sheet's
    dimension covering the rows."""
    fresh = first == ws.previous_row == 0 and not ws.table  # nothing written to the sheet yet
    if not ws.constant_memory or not (first > ws.previous_row or fresh):
        raise ValueError("rows are written in constant_memory mode, in order, below the ones written")
    ws._write_single_row(first)  # xlsxwriter writes the row it holds (e.g. a header) first
    out = xml()
    for part in [out] if isinstance(out, str) else out:
        ws.fh.write(part)
    ws._check_dimensions(first, 0)  # the sheet's <dimension> covers the rows
    ws._check_dimensions(last, last_col)
    ws.previous_row = last  # xlsxwriter continues below them


def _cells(col: Col, letter: str, rows: range, vals: list[Any], time_attr: str) -> list[str]:
    """One column's ``<c>`` elements for ``rows`` ("" for an empty cell)."""
    if col.kind == "text":
        return [_text_cell(f"{letter}{r}", str(v)) if v else "" for r, v in zip(rows, vals, strict=True)]
    if col.kind == "bool":
        return [
            f'<c r="{letter}{r}" t="b"><v>{int(bool(v))}</v></c>' for r, v in zip(rows, vals, strict=True)
        ]
    attr = time_attr if col.kind == "time" else ""
    return [
        f'<c r="{letter}{r}"{attr}><v>{v!r}</v></c>' if v is not None and -_INF < v < _INF else ""
        for r, v in zip(rows, vals, strict=True)
    ]


def _text_cell(ref: str, value: str, attr: str = "") -> str:
    """An inline-string cell; characters XML 1.0 cannot hold (control characters other than tab, line
    feed and carriage return; U+FFFE, U+FFFF) become U+FFFD. Excel's ``_xHHHH_`` escapes are not used:
    readers such as openpyxl (pandas) do not decode them in inline strings."""
    text = _NOT_XML.sub("\ufffd", value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c r="{ref}"{attr} t="inlineStr"><is><t{space}>{text}</t></is></c>'
