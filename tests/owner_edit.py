"""Edit the owner's workbook (`daplan edit`) as the plan owner would, with openpyxl or through LibreOffice.

Cells are found the way the reader finds them: area rows by the ID in the row, register rows (Leads,
Statuses, Glossary) by their name, columns by header text. `Edit` records each change as a cell address and
the text typed, so the same edits can be made with openpyxl (`apply_openpyxl`) or typed into LibreOffice
Calc through UNO (`as_lo_edits`, for make_client_files.libreoffice).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter

from daplan_xlsx import layout as L

HEADER_ROW = L.HEADER_ROW + 1


@dataclass(frozen=True)
class Edit:
    sheet: str
    cell: str
    text: str
    typed: bool = False  # typed into the cell (a date, a dropdown value) rather than stored as literal text


class OwnerBook:
    """The owner's workbook opened to find cells; edits are collected, then applied by one of two means."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.wb = openpyxl.load_workbook(self.path)
        self.edits: list[Edit] = []
        self._used: dict[str, int] = {}  # sheet -> last row taken for a new entry

    def _header(self, sheet: str, row: int) -> dict[str, int]:
        ws = self.wb[sheet]
        return {str(c.value): c.column for c in ws[row] if c.value is not None}

    def _first_empty(self, sheet: str, header_row: int, key_col: int) -> int:
        ws = self.wb[sheet]
        r = max(header_row + 1, self._used.get(sheet, 0) + 1)
        while ws.cell(r, key_col).value not in (None, "") or any(
            ws.cell(r, c).value not in (None, "") for c in range(1, ws.max_column + 1)
        ):
            r += 1
        self._used[sheet] = r
        return r

    def _set(self, sheet: str, row: int, col: int, text: str, typed: bool = False) -> None:
        self.edits.append(Edit(sheet, f"{get_column_letter(col)}{row}", text, typed))

    # -- area sheets --------------------------------------------------------------------------------------
    def action(self, action_id: str, header: str, text: str, *, typed: bool = False) -> None:
        for ws in self.wb.worksheets:
            cols = self._header(ws.title, HEADER_ROW)
            if "ID" not in cols:
                continue
            for r in range(HEADER_ROW + 1, ws.max_row + 1):
                if ws.cell(r, cols["ID"]).value == action_id:
                    self._set(ws.title, r, cols[header], text, typed)
                    return
        raise KeyError(action_id)

    def new_action(self, sheet: str, values: dict[str, str]) -> None:
        cols = self._header(sheet, HEADER_ROW)
        r = self._first_empty(sheet, HEADER_ROW, cols["ID"])
        for header, text in values.items():
            self._set(
                sheet, r, cols[header], text, typed=header in ("Due", "Lead", "Status", "National / local")
            )

    # -- registers ----------------------------------------------------------------------------------------
    def register(self, sheet: str, name: str, header: str, text: str, *, typed: bool = False) -> None:
        cols = self._header(sheet, 1)
        name_col = 2
        ws = self.wb[sheet]
        for r in range(2, ws.max_row + 1):
            if ws.cell(r, name_col).value == name:
                self._set(sheet, r, cols[header], text, typed)
                return
        raise KeyError(name)

    def add(self, sheet: str, values: dict[str, str]) -> None:
        cols = self._header(sheet, 1)
        r = self._first_empty(sheet, 1, 1)
        for header, text in values.items():
            self._set(sheet, r, cols[header], text)

    def area(self, area_id: str, header: str, text: str) -> None:
        cols = self._header("Areas", 1)
        ws = self.wb["Areas"]
        for r in range(2, ws.max_row + 1):
            if ws.cell(r, 1).value == area_id:
                self._set("Areas", r, cols[header], text)
                return
        raise KeyError(area_id)

    def plan_field(self, label: str, text: str) -> None:
        ws = self.wb["Plan"]
        for r in range(2, ws.max_row + 1):
            if ws.cell(r, 1).value == label:
                self._set("Plan", r, 2, text)
                return
        raise KeyError(label)

    # -- making the edits ---------------------------------------------------------------------------------
    def apply_openpyxl(self, out: Path) -> Path:
        wb = openpyxl.load_workbook(self.path)
        for e in self.edits:
            cell = wb[e.sheet][e.cell]
            if e.typed and "/" in e.text:
                day, month, year = (int(x) for x in e.text.split("/"))
                cell.value = dt.datetime(year, month, day)
            else:
                cell.value = e.text
                cell.data_type = "s"
        wb.save(out)
        return out

    def as_lo_edits(self) -> list[dict[str, str]]:
        return [
            {"op": "set" if e.typed else "set_text", "sheet": e.sheet, "cell": e.cell, "text": e.text}
            for e in self.edits
        ]
