"""Reading returns: the ROUNDTRIP cases through real workbooks built by the writer and edited with openpyxl."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import fixed_clock, make_plan
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from openpyxl.worksheet.worksheet import Worksheet
from packages import rezip, sheet_part

from daplan_xlsx import layout as L
from daplan_xlsx import meta as M
from daplan_xlsx.cli import cli
from daplan_xlsx.diff import DiffResult, diff_return
from daplan_xlsx.diffview import render_text
from daplan_xlsx.errors import MetadataError
from daplan_xlsx.model import EXCEL_CELL_LIMIT, Action, Plan
from daplan_xlsx.planfile import save_plan
from daplan_xlsx.reader import read_return
from daplan_xlsx.writer import write_workbook

ISSUE = "00000000-0000-4000-8000-0000000000c1"
LG = "Leadership and Governance"
IC = "Initial Contact"
# Where make_plan()'s actions sit in a whole-plan workbook (1-based rows, as Excel shows them).
ROW = {"LG-1": 6, "LG-2": 7, "LG-L1": 8, "IC-1": 6}
COL = {c.key: L.column_letter(i) for i, c in enumerate(L.AREA_COLUMNS)}


def ref(action_id: str, key: str) -> str:
    return f"{COL[key]}{ROW[action_id]}"


# -- helpers ---------------------------------------------------------------------------------------------


def build(tmp_path: Path, plan: Plan | None = None, name: str = "issued.xlsx", **kw: object) -> Path:
    path = tmp_path / name
    write_workbook(plan or make_plan(), path, clock=fixed_clock, issue_id=ISSUE, **kw)  # type: ignore[arg-type]
    return path


def edited(src: Path, change: Callable[[openpyxl.Workbook], None], name: str = "return.xlsx") -> Path:
    """Open a workbook with openpyxl, apply `change`, save it beside the original under `name`."""
    wb = openpyxl.load_workbook(src)
    change(wb)
    out = src.parent / name
    wb.save(out)
    return out


def set_text(ws: Worksheet, cell: str, value: str) -> None:
    """Store `value` as a string cell even when it starts with '=' (what a typed apostrophe does)."""
    c = ws[cell]
    c.value = value
    c.data_type = "s"


def changes(result: DiffResult) -> list[tuple[str, str, str]]:
    return [(c.action_id, c.field, c.new) for c in result.changes]


def kinds(result: DiffResult) -> list[tuple[str, str, str]]:
    return [(f.kind, f.sheet, f.cell) for f in result.findings]


def values(result: DiffResult) -> list[tuple[str, str, str, str, str, str]]:
    return [(f.kind, f.sheet, f.cell, f.action_id, f.field, f.value) for f in result.findings]


def assert_clean(result: DiffResult) -> None:
    assert result.changes == []
    assert result.findings == []


def row_values(ws: Worksheet, row: int) -> list[object]:
    return [ws.cell(row, c).value for c in range(1, len(L.AREA_COLUMNS) + 1)]


def write_row(ws: Worksheet, row: int, values: list[object]) -> None:
    for c, value in enumerate(values, start=1):
        cell = ws.cell(row, c)
        cell.value = value
        if isinstance(value, str) and value[:1] in "=+-@":
            cell.data_type = "s"


@pytest.fixture
def plan() -> Plan:
    return make_plan()


@pytest.fixture
def issued(tmp_path: Path, plan: Plan) -> Path:
    return build(tmp_path, plan)


def test_untouched_workbook_reads_clean(issued: Path, plan: Plan) -> None:
    """An issued workbook read back as it is, or re-saved by openpyxl, changes nothing and finds nothing."""
    assert_clean(diff_return(issued, plan))
    result = diff_return(edited(issued, lambda wb: None), plan)
    assert_clean(result)
    assert set(result.reading.rows) == set(plan.action_index())
    assert result.reading.meta.verdict == "unsigned" and not result.reading.two_way


# -- containers and parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["return", "return.dat", "RETURN.XLSX"])
def test_case06_read_by_content_not_suffix(name: str, issued: Path, plan: Plan) -> None:
    """Case 6: a return saved without the .xlsx suffix (or under another) is read by what it holds."""
    src = edited(issued, lambda wb: wb[LG].__setitem__(ref("LG-2", "response"), "Minutes of May board."))
    target = issued.parent / f"saved-as-{name}"
    shutil.copyfile(src, target)
    result = diff_return(target, plan)
    assert changes(result) == [("LG-2", "response", "Minutes of May board.")]
    assert result.findings == []


def test_case10_forged_dimension_is_read_fast_and_correctly(issued: Path, plan: Plan) -> None:
    """Case 10: `<dimension ref="A1:XFD1048576"/>` on every sheet changes neither speed nor values."""
    src = edited(issued, lambda wb: wb[LG].__setitem__(ref("LG-2", "target"), "March 2016"))

    def forge(name: str, data: bytes) -> bytes:
        if name.startswith("xl/worksheets/sheet"):
            forged = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:XFD1048576"/>', data)
            assert forged != data
            return forged
        return data

    target = rezip(src, issued.parent / "forged.xlsx", forge)
    start = time.perf_counter()
    result = diff_return(target, plan)
    assert time.perf_counter() - start < 2.0
    assert changes(result) == [("LG-2", "target", "March 2016")]
    assert result.findings == []


def test_case11_styled_empty_rows_below_the_table(issued: Path, plan: Plan) -> None:
    """Case 11: thousands of formatted but empty rows, down to the last row of the sheet, are nothing."""

    def style(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        fill = openpyxl.styles.PatternFill("solid", fgColor="FFF2CC")
        for r in range(ROW["LG-L1"] + 1, 3000):
            for c in (4, 8, 12):
                ws.cell(r, c).fill = fill
            ws.row_dimensions[r].height = 30

    src = edited(issued, style)
    part = sheet_part(src, LG)

    def last_row(name: str, data: bytes) -> bytes:
        if name != part:
            return data
        # What a LibreOffice re-save leaves of a validation range: a styled, valueless cell in the last row.
        return data.replace(b"</sheetData>", b'<row r="1048576"><c r="L1048576" s="1"/></row></sheetData>')

    target = rezip(src, issued.parent / "styled.xlsx", last_row)
    start = time.perf_counter()
    result = diff_return(target, plan)
    assert time.perf_counter() - start < 5.0
    assert_clean(result)
    assert result.reading.proposals == []


@pytest.mark.parametrize("state", ["hidden", "visible"])
def test_case12_metadata_sheet_merely_hidden(state: str, issued: Path, plan: Plan) -> None:
    """Case 12: a metadata sheet that lost its very-hidden state is still found, with the same verdict."""
    before = read_return(issued, plan).meta

    def unhide(wb: openpyxl.Workbook) -> None:
        assert wb[L.META_SHEET].sheet_state == "veryHidden"
        wb[L.META_SHEET].sheet_state = state
        wb[LG][ref("LG-1", "status")] = "Embedded"

    result = diff_return(edited(issued, unhide), plan)
    assert result.reading.meta.verdict == before.verdict == "unsigned"
    assert result.reading.issue_id == ISSUE and not result.reading.two_way
    assert changes(result) == [("LG-1", "status", "Embedded")]
    assert result.findings == []


def test_case13_validations_and_protection_gone(issued: Path, plan: Plan) -> None:
    """Case 13: a return whose dropdowns and conditional formats were dropped reads exactly the same."""
    src = edited(issued, lambda wb: wb[LG].__setitem__(ref("LG-2", "status"), "At risk"))

    def strip(name: str, data: bytes) -> bytes:
        if name.startswith("xl/worksheets/sheet"):
            data = re.sub(rb"<dataValidations.*?</dataValidations>", b"", data, flags=re.S)
            data = re.sub(rb"<conditionalFormatting.*?</conditionalFormatting>", b"", data, flags=re.S)
            data = re.sub(rb"<extLst>.*?</extLst>", b"", data, flags=re.S)
        return data

    target = rezip(src, issued.parent / "plain.xlsx", strip)
    with zipfile.ZipFile(target) as zf:
        assert b"dataValidation" not in zf.read(sheet_part(target, LG))
    result = diff_return(target, plan)
    assert changes(result) == [("LG-2", "status", "At risk")]
    assert result.findings == []


def test_case14_extra_export_summary_sheet(issued: Path, plan: Plan) -> None:
    """Case 14: an added sheet such as Numbers' "Export Summary" is ignored with a warning."""

    def add(wb: openpyxl.Workbook) -> None:
        ws = wb.create_sheet("Export Summary", 0)
        ws["A1"], ws["A3"], ws["B3"] = "Export Summary", "Table 1", "Leadership and Governance"
        wb[LG][ref("LG-2", "notes")] = "Checked"

    result = diff_return(edited(issued, add), plan)
    assert changes(result) == [("LG-2", "notes", "Checked")]
    assert kinds(result) == [("sheet-ignored", "Export Summary", "")]
    assert result.findings[0].severity == "warning"


# -- what the recipients' apps change ---------------------------------------------------------------------


def test_case15_rows_sorted_and_moved(issued: Path, plan: Plan) -> None:
    """Case 15: reversing the action rows is not a change; an edit is found at the row's new place."""

    def sort(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        rows = [row_values(ws, r) for r in (6, 7, 8)]
        for r, values in zip((6, 7, 8), reversed(rows), strict=True):
            write_row(ws, r, values)
        ws["H6"] = "At risk"  # LG-L1 is now on row 6

    result = diff_return(edited(issued, sort), plan)
    assert [(c.action_id, c.field, c.new, c.cell) for c in result.changes] == [
        ("LG-L1", "status", "At risk", "H6")
    ]
    assert result.findings == []
    assert result.reading.rows["LG-1"].row == 8


def test_case15_columns_reordered(issued: Path, plan: Plan) -> None:
    """Case 15: the table's columns in another order are matched by header text."""
    order = [11, 7, 0, 2, 1, 6, 3, 5, 4, 10, 9, 8]  # new position i takes the old column order[i]

    def shuffle(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        for r in range(L.HEADER_ROW + 1, ROW["LG-L1"] + 1):
            cells = [(ws.cell(r, c + 1).value, ws.cell(r, c + 1).number_format) for c in range(len(order))]
            for i, old in enumerate(order):
                value, fmt = cells[old]
                ws.cell(r, i + 1).value = value
                ws.cell(r, i + 1).number_format = fmt
                if isinstance(value, str) and value[:1] in "=+-@":
                    ws.cell(r, i + 1).data_type = "s"
        status = L.column_letter(order.index(L.column_index("status")))
        ws[f"{status}7"] = "Off track"

    result = diff_return(edited(issued, shuffle), plan)
    status = L.column_letter(order.index(L.column_index("status")))
    assert [(c.action_id, c.field, c.new, c.cell) for c in result.changes] == [
        ("LG-2", "status", "Off track", f"{status}7")
    ]
    assert result.findings == []


def test_case15_extra_column_inserted(issued: Path, plan: Plan) -> None:
    """Case 15: a column the recipient inserted inside the table is not read and shifts nothing."""

    def insert(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        ws.insert_cols(4)
        ws.cell(L.HEADER_ROW + 1, 4).value = "My comments"
        ws.cell(ROW["LG-2"], 4).value = "ring Jo about this"
        ws.cell(ROW["LG-2"], L.column_index("target") + 2).value = "2016"  # Target, one column to the right

    result = diff_return(edited(issued, insert), plan)
    assert [(c.action_id, c.field, c.new, c.cell) for c in result.changes] == [
        ("LG-2", "target", "2016", "F7")
    ]
    assert result.findings == []


def test_case15_sheet_renamed(issued: Path, plan: Plan) -> None:
    """Case 15: a renamed area sheet is found by its header and IDs, with a "sheet-renamed" warning."""

    def rename(wb: openpyxl.Workbook) -> None:
        wb[LG].title = "Leadership (JB)"

    result = diff_return(edited(issued, rename), plan)
    assert result.changes == []
    assert kinds(result) == [("sheet-renamed", "Leadership (JB)", "")]
    assert result.findings[0].severity == "warning"
    assert result.reading.rows["LG-2"].sheet == "Leadership (JB)"


def test_case16_dropdown_values_normalised(issued: Path, plan: Plan) -> None:
    """Case 16: other case, trailing and non-breaking spaces, CRLF in text: not changes."""

    def paste(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        ws[ref("LG-2", "status")] = "  on TRACK\u00a0 "
        ws[ref("LG-2", "lead")] = "HEAD OF\u00a0PROTECT "
        ws[ref("LG-1", "status")] = "complete"
        set_text(
            ws,
            ref("LG-1", "response"),
            '=HYPERLINK("http://example.org")  \r\nSecond line with ünïcödé\u00a0',
        )
        ws[ref("LG-L1", "status")] = "at  risk"  # a real change, in the list's own spelling once read
        wb[IC][ref("IC-1", "lead")] = "area commanders\t"

    result = diff_return(edited(issued, paste), plan)
    assert changes(result) == [("LG-L1", "status", "At risk")]
    assert result.findings == []


def test_case16_unknown_status_is_a_finding_with_suggestion(issued: Path, plan: Plan) -> None:
    """Case 16: a pasted status outside the vocabulary is a finding that suggests the nearest; no change."""

    def paste(wb: openpyxl.Workbook) -> None:
        wb[LG][ref("LG-2", "status")] = "On trak"
        wb[LG][ref("LG-2", "lead")] = "Head of Portect"

    result = diff_return(edited(issued, paste), plan)
    assert result.changes == []
    assert kinds(result) == [("unknown-lead", LG, "G7"), ("unknown-status", LG, "H7")]
    by_kind = {f.kind: f for f in result.findings}
    assert "did you mean 'On track'" in by_kind["unknown-status"].message
    assert "did you mean 'Head of Protect'" in by_kind["unknown-lead"].message
    assert all(f.action_id == "LG-2" and f.severity == "problem" for f in result.findings)


def test_case17_protection_removed_is_not_a_change(issued: Path, plan: Plan) -> None:
    """Case 17: sheets and workbook unprotected (and re-protected with a password) change nothing."""

    def unprotect(wb: openpyxl.Workbook) -> None:
        for ws in wb.worksheets:
            ws.protection.sheet = False
        wb[IC].protection.sheet = True
        wb[IC].protection.set_password("letmein")

    assert_clean(diff_return(edited(issued, unprotect), plan))


def test_case17_locked_fields_edited_are_findings(issued: Path, plan: Plan) -> None:
    """Case 17: edits to the locked Action and Ref cells are "locked-changed" findings, never changes: one
    at the row's ID cell (nothing in the row is read) and one per fixed cell changed, with its value."""

    def edit(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        ws.protection.sheet = False
        ws[ref("LG-1", "action")] = "There is a named lead (Ch Supt Smith)."
        ws[ref("LG-2", "ref")] = "2a"
        set_text(ws, ref("LG-2", "action"), "+Evidence exists of the chief officer lead driving activity.  ")

    result = diff_return(edited(issued, edit), plan)
    assert result.changes == []
    assert kinds(result) == [
        ("locked-changed", LG, "A6"),
        ("locked-changed", LG, "C6"),
        ("locked-changed", LG, "A7"),
        ("locked-changed", LG, "B7"),
    ]
    assert [f.action_id for f in result.findings] == ["LG-1", "LG-1", "LG-2", "LG-2"]
    assert [f.field for f in result.findings] == ["", "action", "", "ref"]


# -- cell values ------------------------------------------------------------------------------------------


def test_case18_19_formula_in_response_is_a_finding(issued: Path, plan: Plan) -> None:
    """Cases 18-19: a formula typed into Response is a "formula" finding that shows it, never a change."""

    def typed(wb: openpyxl.Workbook) -> None:
        wb[LG][ref("LG-2", "response")] = "=1+1"
        wb[IC][ref("IC-1", "notes")] = '=CONCAT("a","b")'

    result = diff_return(edited(issued, typed), plan)
    assert result.changes == []
    assert kinds(result) == [("formula", LG, "D7"), ("formula", IC, "L6")]
    assert "=1+1" in result.findings[0].message
    assert '=CONCAT("a","b")' in result.findings[1].message


def test_case19_formula_with_cached_value_is_not_read(issued: Path, plan: Plan) -> None:
    """Case 19: a formula whose cached value is a valid status, or an error, never passes for a typed value."""
    part = sheet_part(issued, LG)

    def inject(name: str, data: bytes) -> bytes:
        if name != part:
            return data
        data, n1 = re.subn(
            rb'<c r="H7"[^>]*?(/>|>.*?</c>)',
            b'<c r="H7" t="str"><f>"Com"&amp;"plete"</f><v>Complete</v></c>',
            data,
        )
        data, n2 = re.subn(
            rb'<c r="L7"[^>]*?(/>|>.*?</c>)', b'<c r="L7" t="e"><f>1/0</f><v>#DIV/0!</v></c>', data
        )
        assert (n1, n2) == (1, 1)
        return data

    result = diff_return(rezip(issued, issued.parent / "cached.xlsx", inject), plan)
    assert result.changes == []
    assert kinds(result) == [("formula", LG, "H7"), ("formula", LG, "L7")]
    assert '"Com"&"plete"' in result.findings[0].message
    assert "1/0" in result.findings[1].message


def test_case19_literal_equals_text_is_a_change(issued: Path, plan: Plan) -> None:
    """Case 19: text "=1+1" stored as a string (typed with an apostrophe) is an ordinary change."""
    result = diff_return(edited(issued, lambda wb: set_text(wb[LG], ref("LG-2", "response"), "=1+1")), plan)
    assert changes(result) == [("LG-2", "response", "=1+1")]
    assert result.findings == []


DATES = [
    pytest.param(dt.datetime(2015, 6, 30), "2015-06-30", id="date-cell"),
    pytest.param(dt.datetime(2015, 6, 30, 17, 45), "2015-06-30", id="date-time-truncated"),
    pytest.param(42185, "2015-06-30", id="serial-number"),
    pytest.param("2015-06-30", "2015-06-30", id="iso-text"),
    pytest.param("30/06/2015", "2015-06-30", id="uk-text"),
    pytest.param("30 June 2015", "2015-06-30", id="wordy-text"),
    pytest.param("31/03/2015", None, id="uk-text-same-as-base"),
    pytest.param("31 March 2015", None, id="wordy-text-same-as-base"),
    pytest.param("", "", id="cleared"),
]


@pytest.mark.parametrize(("value", "expected"), DATES)
def test_case20_dates_in_their_shapes(value: object, expected: str | None, issued: Path, plan: Plan) -> None:
    """Case 20: date cells, serials and unambiguous date text become ISO dates (None: no change)."""

    def put(wb: openpyxl.Workbook) -> None:
        cell = wb[LG][ref("LG-2", "due")]
        if isinstance(value, int):
            cell.value, cell.number_format = value, "General"
        elif isinstance(value, str):
            cell.value, cell.number_format = value or None, "@"
        else:
            cell.value = value

    result = diff_return(edited(issued, put), plan)
    assert result.findings == []
    assert changes(result) == ([] if expected is None else [("LG-2", "due", expected)])


@pytest.mark.parametrize("value", ["31/31/2015", "30/02/2015", "next Tuesday", "2015", 7])
def test_case20_bad_date_is_a_finding(value: object, issued: Path, plan: Plan) -> None:
    """Case 20: an invalid or doubtful date is a "bad-date" finding at its cell, not a change."""

    def put(wb: openpyxl.Workbook) -> None:
        cell = wb[LG][ref("LG-2", "due")]
        cell.value, cell.number_format = value, "General" if isinstance(value, int) else "@"

    result = diff_return(edited(issued, put), plan)
    assert result.changes == []
    assert kinds(result) == [("bad-date", LG, "F7")]


def test_case20_1904_epoch_workbook(issued: Path, plan: Plan) -> None:
    """Case 20: in a 1904-date workbook, date cells and bare serials read as the same calendar days."""

    def to_1904(wb: openpyxl.Workbook) -> None:
        wb.epoch = CALENDAR_MAC_1904
        ws = wb[LG]
        ws[ref("LG-1", "due")] = dt.datetime(2015, 6, 30)
        cell = ws[ref("LG-L1", "due")]
        cell.value, cell.number_format = 40723, "General"  # 30 June 2015 counted from 1 January 1904

    target = edited(issued, to_1904)
    with zipfile.ZipFile(target) as zf:
        assert b'date1904="1"' in zf.read("xl/workbook.xml")
    result = diff_return(target, plan)
    assert changes(result) == [("LG-1", "due", "2015-06-30"), ("LG-L1", "due", "2015-06-30")]
    assert result.findings == []


def test_case21_ids_stay_text(tmp_path: Path) -> None:
    """Case 21: numeric-looking IDs round-trip as text; a retyped number matches; a rounded one does not."""
    plan = make_plan()
    extra = [
        Action(id="0042", ref="2", action="Leading zeros.", leads=["Area Commanders"]),
        Action(id="123456789012345678", ref="3", action="Eighteen digits.", leads=["Area Commanders"]),
        Action(id="1001", ref="4", action="Retyped as a number.", leads=["Area Commanders"]),
        Action(id="1E5", ref="5", action="Looks like a number.", leads=["Area Commanders"]),
    ]
    plan.areas[1].actions.extend(extra)
    issued = build(tmp_path, plan)
    result = diff_return(issued, plan)
    assert_clean(result)
    assert {"0042", "123456789012345678", "1001", "1E5"} <= set(result.reading.rows)

    def retype(wb: openpyxl.Workbook) -> None:
        ws = wb[IC]
        ids = {ws.cell(r, 1).value: r for r in range(6, 11)}
        ws.cell(ids["1001"], 1).value = 1001
        ws.cell(ids["123456789012345678"], 1).value = float("123456789012345678")  # what 15 digits keep

    result = diff_return(edited(issued, retype), plan)
    assert result.changes == []
    # The rounded ID is not in the plan: its row is not read, and the values on it are kept as findings.
    assert [(f.kind, f.field, f.value) for f in result.findings] == [
        ("unknown-id", "", ""),
        ("unknown-id", "lead", "Area Commanders"),
        ("unknown-id", "status", "Not started"),
        ("row-deleted", "", ""),
    ]
    rounded = result.findings[0].action_id
    assert rounded != "123456789012345678" and rounded in result.findings[0].message
    assert [f.action_id for f in result.findings[1:3]] == [rounded, rounded]
    assert result.findings[3].action_id == "123456789012345678"
    assert "1001" in result.reading.rows


@pytest.mark.parametrize("cleared", [None, "", "   \u00a0"])
def test_case22_cleared_cell_is_an_empty_string(cleared: str | None, issued: Path, plan: Plan) -> None:
    """Case 22: a cleared Response or Due (empty, or only spaces) is a change to ''."""

    def clear(wb: openpyxl.Workbook) -> None:
        wb[LG][ref("LG-2", "response")] = cleared
        wb[LG][ref("LG-2", "due")] = None

    result = diff_return(edited(issued, clear), plan)
    assert [(c.action_id, c.field, c.old, c.new) for c in result.changes] == [
        ("LG-2", "response", "-starts with a minus", ""),
        ("LG-2", "due", "2015-03-31", ""),
    ]
    assert result.findings == []


def test_case23_merged_cells_in_title_rows_are_fine(issued: Path, plan: Plan) -> None:
    """Case 23: merging above the table (title rows) is formatting, not a change or a problem."""

    def merge(wb: openpyxl.Workbook) -> None:
        wb[LG].merge_cells("A1:E1")
        wb[LG].merge_cells("A2:L2")
        wb[IC].merge_cells("A1:H2")

    assert_clean(diff_return(edited(issued, merge), plan))


def test_case23_merged_cells_beside_the_table_are_fine(issued: Path, plan: Plan) -> None:
    """Case 23: a note merged over cells to the right of the table's columns hides nothing and is read."""

    def note(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        ws["N6"] = "Discussed at the May board"
        ws.merge_cells("N6:P7")

    assert_clean(diff_return(edited(issued, note), plan))


# -- rows: duplicated, unknown, deleted, out of scope, new -------------------------------------------------


def test_duplicated_id_neither_row_read(issued: Path, plan: Plan) -> None:
    """A row copied with its ID is a finding on both copies and neither is read, even if one was edited."""

    def copy(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        values = row_values(ws, ROW["LG-2"])
        write_row(ws, 9, values)
        ws["D9"] = "the copy says something else"
        ws["H7"] = "Complete"

    result = diff_return(edited(issued, copy), plan)
    assert result.changes == []
    assert "LG-2" not in result.reading.rows
    # One finding for the row, then what each copy says differently from the issued base, at its cell.
    assert values(result) == [
        ("duplicate-id", LG, "A9", "LG-2", "", ""),
        ("duplicate-id", LG, "H7", "LG-2", "status", "Complete"),
        ("duplicate-id", LG, "D9", "LG-2", "response", "the copy says something else"),
    ]
    assert "A7" in result.findings[0].message  # the first copy is named too
    assert {f.message for f in result.findings} == {result.findings[0].message}
    assert all(f.severity == "problem" for f in result.findings)


def test_duplicated_id_on_another_sheet_with_a_bad_value(issued: Path, plan: Plan) -> None:
    """A copy on another sheet names its own cells; an invalid value in the first copy keeps its own finding."""

    def copy(wb: openpyxl.Workbook) -> None:
        write_row(wb[IC], 7, row_values(wb[LG], ROW["LG-2"]))
        wb[IC]["D7"] = "=1+1"  # a real formula on the second copy
        wb[IC]["D7"].data_type = "f"
        wb[LG]["H7"] = "Bogus"  # not in the list, on the first copy
        wb[LG]["E7"] = "2016"

    result = diff_return(edited(issued, copy), plan)
    assert result.changes == []
    assert "LG-2" not in result.reading.rows
    assert values(result) == [
        ("unknown-status", LG, "H7", "LG-2", "status", "Bogus"),
        ("duplicate-id", IC, "A7", "LG-2", "", ""),
        ("duplicate-id", LG, "E7", "LG-2", "target", "2016"),
        ("duplicate-id", IC, "D7", "LG-2", "response", "=1+1"),
    ]
    # The terminal names the row once; a value on another sheet than the row named says which.
    text = render_text(result, colour=False)
    assert text.count("appears more than once") == 1
    assert f"      Target {LG}!E7: 2016\n      Response D7: =1+1\n" in text


def test_id_changed_to_unknown(issued: Path, plan: Plan) -> None:
    """An ID overwritten with one the plan lacks is "unknown-id" there and "row-deleted" for the old one."""

    def change(wb: openpyxl.Workbook) -> None:
        wb[LG]["A7"] = "LG-9"
        wb[LG]["D7"] = "new text under a wrong ID"

    result = diff_return(edited(issued, change), plan)
    assert result.changes == []
    # Nothing is known of LG-9, so every value on its row is kept, each at its cell.
    assert values(result) == [
        ("unknown-id", LG, "A7", "LG-9", "", ""),
        ("unknown-id", LG, "D7", "LG-9", "response", "new text under a wrong ID"),
        ("unknown-id", LG, "E7", "LG-9", "target", "2015"),
        ("unknown-id", LG, "F7", "LG-9", "due", "2015-03-31"),
        ("unknown-id", LG, "G7", "LG-9", "lead", "Head of Protect"),
        ("unknown-id", LG, "H7", "LG-9", "status", "On track"),
        ("row-deleted", LG, "", "LG-2", "", ""),
    ]
    assert "LG-9" in result.findings[0].message


def test_row_deleted(issued: Path, plan: Plan) -> None:
    """A deleted row is a "row-deleted" finding naming the action; the rows below still match."""

    def delete(wb: openpyxl.Workbook) -> None:
        wb[LG].delete_rows(ROW["LG-2"])
        wb[LG]["H7"] = "Off track"  # LG-L1 moved up into row 7

    result = diff_return(edited(issued, delete), plan)
    assert changes(result) == [("LG-L1", "status", "Off track")]
    assert [(f.kind, f.action_id) for f in result.findings] == [("row-deleted", "LG-2")]


def test_out_of_scope_row_pasted_into_recipient_workbook(tmp_path: Path, plan: Plan) -> None:
    """A recipient's workbook with another lead's action pasted in: "out-of-scope", not read."""
    issued = build(tmp_path, plan, scope=["LG-2"], recipient="Head of Protect")
    owner = openpyxl.load_workbook(build(tmp_path, plan, name="owner.xlsx"))
    pasted = row_values(owner[LG], ROW["LG-1"])
    pasted[L.column_index("status")] = "Embedded"

    def paste(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        assert ws["A6"].value == "LG-2" and ws["A7"].value is None
        write_row(ws, 7, pasted)
        ws["D6"] = "Chaired by the ACC since June."

    result = diff_return(edited(issued, paste), plan)
    assert result.reading.scope == ["LG-2"] and result.reading.recipient == "Head of Protect"
    assert [(c.action_id, c.field, c.cell) for c in result.changes] == [("LG-2", "response", "D6")]
    # The row, then the one value it says differently from the plan; what it copied says nothing.
    assert values(result) == [
        ("out-of-scope", LG, "A7", "LG-1", "", ""),
        ("out-of-scope", LG, "H7", "LG-1", "status", "Embedded"),
    ]
    assert result.findings[0].message == result.findings[1].message


def test_out_of_scope_row_values_as_typed(tmp_path: Path, plan: Plan, plan_file: Path) -> None:
    """Values of a row outside the scope are kept as typed, formulas as their text, in every output."""
    issued = build(tmp_path, plan, scope=["LG-2"], recipient="Head of Protect")
    owner = openpyxl.load_workbook(build(tmp_path, plan, name="owner.xlsx"))
    pasted = row_values(owner[LG], ROW["LG-1"])

    def paste(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        write_row(ws, 7, pasted)
        ws["D7"] = "Pasted <b>response</b> & more"
        ws["G7"] = "Head of Nothing"  # not in the register: kept as typed
        ws["F7"] = "31/02/2015"  # not a date
        ws["L7"] = "=NOW()"
        ws["L7"].data_type = "f"

    target = edited(issued, paste)
    result = diff_return(target, plan)
    want = [
        ("out-of-scope", LG, "A7", "LG-1", "", ""),
        ("out-of-scope", LG, "D7", "LG-1", "response", "Pasted <b>response</b> & more"),
        ("out-of-scope", LG, "F7", "LG-1", "due", "31/02/2015"),
        ("out-of-scope", LG, "G7", "LG-1", "lead", "Head of Nothing"),
        ("out-of-scope", LG, "L7", "LG-1", "notes", "=NOW()"),
    ]
    assert values(result) == want
    assert result.changes == [] and "LG-1" not in result.reading.rows

    # --json: the same findings, each with its field and value.
    out = CliRunner().invoke(cli, ["diff", "--json", str(plan_file), str(target)])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)["findings"]
    assert [(f["kind"], f["sheet"], f["cell"], f["action_id"], f["field"], f["value"]) for f in got] == want
    assert all(f["severity"] == "problem" for f in got)

    # The terminal: the row once, then each field with its cell and value, within 100 columns.
    text = CliRunner().invoke(cli, ["diff", str(plan_file), str(target)]).stdout
    assert text.count("was not issued in this workbook") == 1
    for line in ("Response D7: Pasted <b>response</b> & more", "Due F7: 31/02/2015", "Notes L7: =NOW()"):
        assert line in text, text
    assert "Lead G7: Head of Nothing" in text
    findings = text[text.index("Findings (") :]
    assert max(len(line) for line in findings.splitlines()) <= 100

    # --html: every value, escaped.
    page = tmp_path / "diff.html"
    assert CliRunner().invoke(cli, ["diff", "--html", str(page), str(plan_file), str(target)]).exit_code == 0
    html_text = page.read_text(encoding="utf-8")
    assert "Pasted &lt;b&gt;response&lt;/b&gt; &amp; more" in html_text and "<b>response" not in html_text
    for shown in ("31/02/2015", "Head of Nothing", "=NOW()"):
        assert shown in html_text


def test_new_row_without_id_is_a_proposal(issued: Path, plan: Plan) -> None:
    """A row added without an ID is a "new-row" warning and a proposal carrying its values."""

    def add(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        ws["C9"] = "Publish the DA dashboard monthly."
        ws["D9"] = "Draft shared with the PCC."
        ws["H9"] = "On track"

    result = diff_return(edited(issued, add), plan)
    assert result.changes == []
    assert kinds(result) == [("new-row", LG, "A9")]
    assert result.findings[0].severity == "warning"
    (proposal,) = result.reading.proposals
    assert (proposal.sheet, proposal.row) == (LG, 9)
    assert proposal.values == {
        "action": "Publish the DA dashboard monthly.",
        "response": "Draft shared with the PCC.",
        "status": "On track",
    }


def test_text_over_excel_cell_limit(issued: Path, plan: Plan) -> None:
    """Text longer than 32,767 characters (written bypassing openpyxl's truncation) is a "too-long" finding."""
    long_text = "x" * (EXCEL_CELL_LIMIT + 1000)

    def overfill(wb: openpyxl.Workbook) -> None:
        cell = wb[LG][ref("LG-2", "response")]
        cell._value = long_text  # openpyxl truncates through .value; a broken app writes it all
        cell.data_type = "s"

    target = edited(issued, overfill)
    with zipfile.ZipFile(target) as zf:
        assert any(long_text.encode() in zf.read(n) for n in zf.namelist())
    result = diff_return(target, plan)
    assert result.changes == []
    assert kinds(result) == [("too-long", LG, "D7")]
    assert f"{EXCEL_CELL_LIMIT:,}" in result.findings[0].message


# -- issue metadata --------------------------------------------------------------------------------------


def test_metadata_deleted_gives_two_way_comparison(issued: Path, plan: Plan, tmp_path: Path) -> None:
    """With the metadata sheet deleted the return is compared two-way against the plan, and says so."""

    def drop(wb: openpyxl.Workbook) -> None:
        del wb[L.META_SHEET]
        wb[LG][ref("LG-2", "status")] = "Complete"

    target = edited(issued, drop)
    result = diff_return(target, plan)
    assert result.reading.two_way and result.reading.meta.verdict == "missing"
    assert changes(result) == [("LG-2", "status", "Complete")]
    assert [(f.kind, f.severity) for f in result.findings] == [("metadata-missing", "warning")]
    plan_file = tmp_path / "plan.yaml"
    save_plan(plan, plan_file)
    out = CliRunner().invoke(cli, ["diff", str(plan_file), str(target)])
    assert out.exit_code == 0, out.output
    assert "two-way" in out.stdout
    assert (
        json.loads(CliRunner().invoke(cli, ["diff", "--json", str(plan_file), str(target)]).stdout)[
            "comparison"
        ]
        == "two-way"
    )


@pytest.mark.parametrize("cell", ["B3", "A7"], ids=["checksum", "payload"])
def test_metadata_tampered(cell: str, issued: Path, plan: Plan) -> None:
    """An edited checksum or payload on the metadata sheet is a "metadata-tampered" finding."""

    def tamper(wb: openpyxl.Workbook) -> None:
        ws = wb[L.META_SHEET]
        value = ws[cell].value
        assert isinstance(value, str) and len(value) > 8
        ws[cell] = value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB")

    result = diff_return(edited(issued, tamper), plan)
    assert result.reading.meta.verdict == "tampered"
    assert result.reading.two_way
    assert [(f.kind, f.sheet) for f in result.findings] == [("metadata-tampered", L.META_SHEET)]
    assert result.changes == []


@pytest.mark.parametrize("touched", [False, True], ids=["untouched", "edited"])
def test_damaged_base_values_under_a_matching_checksum(
    touched: bool, issued: Path, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Base values that cannot be inflated, under a checksum recomputed to match them (only a forger's
    work), are found when first needed: a return whose rows all match their fingerprints needs none and
    reads clean; an edited one is refused as a whole with MetadataError, which a merge reports by name."""
    meta = read_return(issued, plan).meta.meta
    assert meta is not None
    header = M._blobs(meta)[0]
    monkeypatch.setattr(M, "_blobs", lambda _meta: (header, b"not a zlib stream"))
    cells = M.encode(meta, None)

    def forge(wb: openpyxl.Workbook) -> None:
        ws = wb[L.META_SHEET]
        for row in ws.iter_rows():
            for cell in row:
                cell.value = None
        for r, c, value in cells:
            ws.cell(r + 1, c + 1).value = value
            ws.cell(r + 1, c + 1).data_type = "s"
        if touched:
            wb[LG][ref("LG-1", "response")] = "Edited after issue."

    forged = edited(issued, forge)
    if touched:
        with pytest.raises(MetadataError, match="base values are damaged"):
            read_return(forged, plan)
    else:
        result = diff_return(forged, plan)
        assert result.reading.meta.verdict == "unsigned" and not result.reading.two_way
        assert_clean(result)


# -- the diff command's outputs -------------------------------------------------------------------------


@pytest.fixture
def plan_file(tmp_path: Path, plan: Plan) -> Path:
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    return path


def _edited_return(issued: Path) -> Path:
    def edit(wb: openpyxl.Workbook) -> None:
        ws = wb[LG]
        ws[ref("LG-2", "response")] = "Board minutes <May> & June"
        ws[ref("LG-2", "status")] = "At risk"
        ws[ref("LG-L1", "status")] = "On trak"

    return edited(issued, edit)


def test_diff_json_has_documented_keys(issued: Path, plan_file: Path) -> None:
    """`daplan diff --json`: items carry action_id/field/old/new, findings sheet/cell/kind/message."""
    result = CliRunner().invoke(cli, ["diff", "--json", str(plan_file), str(_edited_return(issued))])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["comparison"] == "three-way" and out["issue_id"] == ISSUE
    assert [(i["action_id"], i["field"], i["old"], i["new"]) for i in out["items"]] == [
        ("LG-2", "response", "-starts with a minus", "Board minutes <May> & June"),
        ("LG-2", "status", "On track", "At risk"),
    ]
    for item in out["items"]:
        assert {"action_id", "field", "old", "new"} <= item.keys()
    (finding,) = out["findings"]
    assert {"sheet", "cell", "kind", "message"} <= finding.keys()
    assert (finding["sheet"], finding["cell"], finding["kind"]) == (LG, "H8", "unknown-status")


def test_diff_exit_code(issued: Path, plan_file: Path) -> None:
    """`--exit-code` exits 1 when the return changes something and 0 for an untouched workbook."""
    runner = CliRunner()
    changed = edited(
        issued, lambda wb: wb[LG].__setitem__(ref("LG-2", "status"), "At risk"), name="changed.xlsx"
    )
    assert runner.invoke(cli, ["diff", "--exit-code", str(plan_file), str(changed)]).exit_code == 1
    untouched = runner.invoke(cli, ["diff", "--exit-code", str(plan_file), str(issued)])
    assert untouched.exit_code == 0, untouched.output
    assert "No changes." in untouched.stdout
    assert runner.invoke(cli, ["diff", str(plan_file), str(changed)]).exit_code == 0


def test_diff_html_is_one_self_contained_page(issued: Path, plan_file: Path, tmp_path: Path) -> None:
    """`--html FILE` writes one page with every change, escaped, and no external references."""
    target = _edited_return(issued)
    page = tmp_path / "report" / "diff.html"
    page.parent.mkdir()
    result = CliRunner().invoke(cli, ["diff", "--html", str(page), str(plan_file), str(target)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in page.parent.iterdir()] == ["diff.html"]
    text = page.read_text(encoding="utf-8")
    assert not re.search(
        r"""(src|href)\s*=\s*["']?\s*(https?:|//)|@import|url\(|<link\b|<script\b""", text, re.I
    )
    assert "Board minutes &lt;May&gt; &amp; June" in text and "<May>" not in text
    for action_id, header, new in [("LG-2", "Response", "Board minutes"), ("LG-2", "Status", "At risk")]:
        assert re.search(rf"<td>{action_id}</td><td>{header}</td>", text)
        assert html.escape(new) in text
    assert "unknown-status" in text
