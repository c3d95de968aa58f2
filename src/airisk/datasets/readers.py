"""Low-level readers for dataset files: bytes -> (physical line number, record) with strict errors.

Every problem is reported as a :class:`DataError` naming the file, the physical line where the
record starts and the field. With ``skip_bad`` the caller's :class:`RowErrors` collects them
instead, so a loader can skip bad rows and report how many it skipped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from airisk.errors import DataError

_SURROGATE = re.compile(r"[\udc80-\udcff]")


class RowErrors:
    """Raise the first bad row, or (``skip_bad=True``) record ``(line, message)`` and go on."""

    def __init__(self, path: Path | str, skip_bad: bool):
        self.path, self.skip_bad = str(path), skip_bad
        self.skipped: list[tuple[int, str]] = []

    def error(self, message: str, *, line: int | None = None, field: str | None = None) -> DataError:
        return DataError(message, path=self.path, line=line, field=field)

    def bad(self, message: str, *, line: int, field: str | None = None) -> None:
        err = self.error(message, line=line, field=field)
        if not self.skip_bad:
            raise err
        self.skipped.append((line, str(err)))


def read_text(path: Path) -> str:
    """The file decoded as UTF-8 (BOM dropped); undecodable bytes become surrogates for per-row reports."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", path=str(path)) from None
    if not data.strip():
        raise DataError("file is empty", path=str(path), line=1)
    text = data.decode("utf-8", errors="surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


def bad_utf8_field(record: dict[str, object]) -> str | None:
    """Name of the first field whose text holds bytes that were not valid UTF-8."""
    for key, value in record.items():
        if isinstance(value, str) and _SURROGATE.search(value):
            return key
        if isinstance(key, str) and _SURROGATE.search(key):
            return key
    return None


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
MAX_NESTING = 32


def check_value(record: dict, max_depth: int = MAX_NESTING) -> tuple[str, str] | None:
    """``(field, problem)`` for the first value a store cannot hold: a lone surrogate (JSON ``\\ud800``
    escapes decode to text that is not valid Unicode and fails later, at insert) or nesting deeper
    than ``max_depth``. Iterative, so a deep value cannot overflow the stack here."""
    stack: list[tuple[object, str, int]] = [(v, str(k), 1) for k, v in record.items()]
    for k in record:
        if isinstance(k, str) and _LONE_SURROGATE.search(k):
            return k.encode("utf-8", "backslashreplace").decode(), "field name is not valid Unicode (lone surrogate)"
    while stack:
        value, field, depth = stack.pop()
        if depth > max_depth:
            return field, f"nested deeper than {max_depth} levels"
        if isinstance(value, str):
            m = _LONE_SURROGATE.search(value)
            if m:
                return field, f"not valid Unicode: lone surrogate \\u{ord(m.group()):04x} at character {m.start()}"
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and _LONE_SURROGATE.search(k):
                    return field, "a key is not valid Unicode (lone surrogate)"
                stack.append((v, field, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, field, depth + 1) for v in value)
    return None


def _first_bad_byte(text: str) -> str:
    m = _SURROGATE.search(text)
    return f"0x{ord(m.group()) - 0xDC00:02x}" if m else "?"


def iter_csv(text: str, errors: RowErrors, *, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(start_line, row)`` for each CSV record; rows may span several physical lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise errors.error("file is empty", line=1) from None
    except csv.Error as e:
        raise errors.error(f"malformed CSV header: {e}", line=1) from None
    header = [h.strip() for h in header]
    if _SURROGATE.search(",".join(header)):
        raise errors.error(f"header is not valid UTF-8 (byte {_first_bad_byte(','.join(header))})", line=1)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise errors.error(f"duplicate column(s) {dupes}", line=1, field=dupes[0])
    for col in required:
        if col not in header:
            raise errors.error(f"missing column {col!r} (columns found: {', '.join(header)})", line=1, field=col)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            errors.bad(f"malformed CSV record: {e}", line=start)
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            errors.bad(f"expected {len(header)} fields ({', '.join(header)}), got {len(row)}", line=start)
            continue
        record = dict(zip(header, row))
        bad = bad_utf8_field(record)
        if bad is not None:
            errors.bad(f"not valid UTF-8 (byte {_first_bad_byte(record[bad])})", line=start, field=bad)
            continue
        yield start, record


def iter_jsonl(text: str, errors: RowErrors) -> Iterator[tuple[int, dict]]:
    """Yield ``(line, object)`` for each non-blank JSON Lines record."""
    for n, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if _SURROGATE.search(line):
            errors.bad(f"not valid UTF-8 (byte {_first_bad_byte(line)})", line=n)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.bad(f"invalid JSON: {e.msg} at column {e.colno}", line=n)
            continue
        except RecursionError:
            errors.bad("invalid JSON: nested too deeply", line=n)
            continue
        except ValueError as e:  # e.g. an integer over Python's 4,300-digit conversion limit
            errors.bad(f"invalid JSON: {e}".split(";")[0], line=n)
            continue
        if not isinstance(obj, dict):
            errors.bad(f"expected a JSON object, got {type(obj).__name__}", line=n)
            continue
        problem = check_value(obj)
        if problem is not None:
            errors.bad(problem[1], line=n, field=problem[0])
            continue
        yield n, obj
