"""Reading import files (CSV or JSON) row by row, with errors that name file, line and field.

Every row is validated before anything is written: one bad row and nothing is imported, and
every problem in the file is reported at once, so a clerk fixes the file in one go.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from workflow.errors import ValidationFailed

MAX_IMPORT_BYTES = 200 * 1024 * 1024
MAX_REPORTED = 50
# An import is a list of flat objects (at most inside one object naming it: {"rows": [...]}),
# so anything nested deeper is refused before the parser sees it: Python's JSON parser
# recurses, and "[" x 100,000 would end in a RecursionError instead of an answer.
MAX_JSON_DEPTH = 4
# The longest value a CSV cell may hold (the csv module's own limit, named in the refusal).
MAX_CSV_FIELD = csv.field_size_limit()
_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')


@dataclass(frozen=True, slots=True)
class RowError:
    where: str  # "line 7" or "entry 3"
    field: str | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.where}" + (f", field {self.field}" if self.field else "") + f": {self.message}"
        )


class ImportRejected(ValidationFailed):
    """An import file with at least one bad row; carries every problem found."""

    def __init__(self, filename: str, errors: list[RowError]) -> None:
        shown = [f"{filename}, {e}" for e in errors[:MAX_REPORTED]]
        more = len(errors) - len(shown)
        tail = f"\n... and {more} more problems" if more > 0 else ""
        super().__init__(
            f"{filename}: {len(errors)} problem(s), nothing imported:\n" + "\n".join(shown) + tail
        )
        self.errors = errors


def _decode(path: Path, name: str) -> str:
    raw = path.read_bytes()
    if len(raw) > MAX_IMPORT_BYTES:
        raise ValidationFailed(
            f"{name}: {len(raw)} bytes is larger than the "
            f"{MAX_IMPORT_BYTES} bytes an import may have"
        )
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValidationFailed(
            f"{name}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the "
            "file as UTF-8 and import it again"
        ) from None


def check_json_depth(text: str, name: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (naming the line), by a linear scan of its
    brackets outside strings, before any parser recurses into it."""
    depth = 0
    in_string = False
    skip = -1  # the position of a character escaped by a backslash
    for match in _JSON_STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if at == skip:
            continue
        if in_string:
            if char == "\\":
                skip = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, at) + 1
                raise ValidationFailed(
                    f"{name}, line {line}: nested deeper than {limit} levels; an import is a "
                    "JSON list of flat objects (one per row)"
                )
        else:
            depth -= 1


def read_rows(path: Path, filename: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (where, row) from a CSV file with a header line or a JSON list of objects;
    refusals name ``filename`` (an upload's own name) or the file's."""
    name = filename or path.name
    text = _decode(path, name)
    if path.suffix.lower() == ".json":
        check_json_depth(text, name)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"{name}, line {exc.lineno}: not valid JSON: {exc.msg}"
            ) from None
        except RecursionError:  # pragma: no cover - check_json_depth refuses this first
            raise ValidationFailed(f"{name}: nested too deeply") from None
        if isinstance(data, dict) and len(data) == 1:
            data = next(iter(data.values()))
        if not isinstance(data, list):
            raise ValidationFailed(f"{name}: expected a JSON list of objects")
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise ValidationFailed(f"{name}, entry {i}: expected an object")
            yield f"entry {i}", item
        return
    if path.suffix.lower() not in (".csv", ".txt"):
        raise ValidationFailed(f"{name}: unknown file type; use .csv or .json")
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from _csv_rows(reader, name)
    except csv.Error as exc:
        # A cell longer than the csv module's limit, a NUL byte, a broken quote.
        problem = str(exc)
        if "field larger than field limit" in problem:
            problem = f"a value is longer than {MAX_CSV_FIELD} characters"
        raise ValidationFailed(
            f"{name}, line {reader.line_num + 1}: not readable as CSV: {problem}"
        ) from None


def _csv_rows(reader: csv.DictReader[str], name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not reader.fieldnames:
        raise ValidationFailed(f"{name}: the file is empty; expected a header line")
    for row in reader:
        if None in row:
            raise ValidationFailed(
                f"{name}, line {reader.line_num}: more values than columns in the header"
            )
        if not any((v or "").strip() for v in row.values()):
            continue
        yield (
            f"line {reader.line_num}",
            {
                k.strip(): (v.strip() if isinstance(v, str) else v)
                for k, v in row.items()
                if k is not None
            },
        )


M = TypeVar("M", bound=BaseModel)


def validate_rows(
    path: Path, model: type[M], filename: str | None = None
) -> tuple[list[tuple[str, M]], list[RowError]]:
    """Validate every row against ``model``; collect all errors instead of stopping."""
    good: list[tuple[str, M]] = []
    errors: list[RowError] = []
    for where, raw in read_rows(path, filename):
        cleaned = {k: (None if v == "" else v) for k, v in raw.items()}
        try:
            good.append((where, model.model_validate(cleaned)))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or None
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "missing":
                    msg = "is missing"
                elif err.get("input", "") is None:
                    msg = "is empty"
                errors.append(RowError(where, field, msg))
    return good, errors
