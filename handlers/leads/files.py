"""Lead files: CSV and XLSX exports, all or nothing, errors named by line.

``genjin leads import FILE`` and ``genjin leads simulate`` read files here; the row values
go through :func:`handlers.leads.intake.lead_from_values`, the same checks as the HTTP API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from handlers.leads.intake import (
    DEFAULT_TZ,
    FIELD_LABELS,
    LeadInput,
    RowError,
    cell_text,
    clean_text,
    lead_from_values,
)

# Header spellings accepted in files (case- and space-insensitive); "id" is the file name of external_id.
HEADER_ALIASES = {
    "id": "external_id", "external_id": "external_id", "编号": "external_id", "线索编号": "external_id",
    "hospital": "hospital", "医院": "hospital", "医院名称": "hospital",
    "department": "department", "科室": "department",
    "contact": "contact", "联系人": "contact",
    "phone": "phone", "电话": "phone", "手机": "phone", "联系电话": "phone", "手机号": "phone",
    "region": "region", "区域": "region", "地区": "region", "省份": "region",
    "product_line": "product_line", "产品线": "product_line",
    "grade": "grade", "等级": "grade", "医院等级": "grade",
    "source": "source", "来源": "source",
    "created_at": "created_at", "创建时间": "created_at",
    "note": "note", "备注": "note",
}


def parse_lead_file(path: str | Path, tz: ZoneInfo = DEFAULT_TZ) -> tuple[list[LeadInput], list[RowError]]:
    """Read a CSV or XLSX export, all or nothing: ``(leads, [])`` or ``([], errors)``.

    CSV may be UTF-8 (with or without BOM) or GBK/GB18030 (Excel on Chinese Windows).
    Blank lines are skipped but still counted, so line numbers match a text editor.
    """
    file = Path(path)
    try:
        if file.suffix.lower() in (".xlsx", ".xlsm"):
            rows = list(_xlsx_rows(file))
        else:
            rows = list(_csv_rows(_decode(file.read_bytes())))
    except (OSError, ValueError) as exc:
        return [], [RowError(0, "", f"无法读取 {file}：{exc}")]
    return parse_rows(rows, tz)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("编码既不是 UTF-8 也不是 GBK")


def _csv_rows(content: str) -> Iterator[tuple[int, list[Any]]]:
    first = content.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _xlsx_rows(file: Path) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook  # only the file import needs it

    try:
        book = load_workbook(file, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException alike
        raise ValueError(f"不是有效的 xlsx 文件（{exc.__class__.__name__}）") from None
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        book.close()


def parse_rows(rows: Iterable[tuple[int, Sequence[Any]]], tz: ZoneInfo = DEFAULT_TZ) -> tuple[list[LeadInput], list[RowError]]:
    """(line number, cells) pairs, the first non-blank being the header → leads or errors."""
    leads: list[LeadInput] = []
    errors: list[RowError] = []
    columns: list[str | None] | None = None
    seen_ids: dict[str, int] = {}
    for line, cells in rows:
        if all(cell_text(c).strip() == "" for c in cells):
            continue
        if columns is None:
            columns, header_errors = _header(cells, line)
            if header_errors:
                return [], header_errors
            continue
        if len(cells) > len(columns) and any(cell_text(c).strip() for c in cells[len(columns):]):
            errors.append(RowError(line, "", f"有{len(cells)}列，表头只有{len(columns)}列"))
            continue
        values = {name: cells[i] if i < len(cells) else None for i, name in enumerate(columns) if name}
        lead, row_errors = lead_from_values(values, line, tz)
        errors.extend(row_errors)
        if lead is not None and lead.external_id:
            if lead.external_id in seen_ids:
                errors.append(RowError(line, "external_id", f"编号 {lead.external_id} 与第{seen_ids[lead.external_id]}行重复"))
            seen_ids.setdefault(lead.external_id, line)
        if lead is not None:
            leads.append(lead)
    if columns is None:
        return [], [RowError(1, "", "文件为空（第一行应为表头）")]
    return ([], errors) if errors else (leads, [])


def _header(cells: Sequence[Any], line: int) -> tuple[list[str | None], list[RowError]]:
    columns: list[str | None] = []
    errors: list[RowError] = []
    for cell in cells:
        label = clean_text(cell_text(cell))
        if not label:
            columns.append(None)
            continue
        name = HEADER_ALIASES.get(label.lower().replace(" ", ""))
        if name is None:
            errors.append(RowError(line, "", f"未知的列 {label!r}"))
        elif name in columns:
            errors.append(RowError(line, "", f"列 {label!r} 重复（{FIELD_LABELS[name]}）"))
        columns.append(name)
    if not errors and "hospital" not in columns:
        errors.append(RowError(line, "", "表头缺少 hospital/医院 列"))
    return columns, errors
