"""Formatted workbooks with xlsxwriter: cover, one sheet per capability area, glossary, hidden support sheets.

`write_workbook` serves both the owner's whole-plan build and the per-recipient workbooks of `distribute`:
it takes a plan, a scope (the action ids issued) and a recipient. Every xlsxwriter call's return code is
checked and every xlsxwriter warning is an error, because xlsxwriter reports a dropped dropdown or a
truncated string only that way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import collector
from . import layout as L
from .errors import WorkbookWriteError
from .meta import IssueMeta, build_meta, encode
from .model import Action, Area, Plan
from .planfile import new_file_mode

Clock = Callable[[], dt.datetime]
# One table column as the row loop uses it: index, value function, is a date, format, wrap width (0: none).
_ColumnPlan = tuple[int, Callable[[Action], str | dt.date | None], bool, Any, int]

EXCEL_MAX_ROWS = 1_048_576
EDITABLE_FILL = "#FFF2CC"
LOCKED_FILL = "#F2F2F2"
LOCAL_FILL = "#FCE4D6"
HEADER_FILL = "#1F3864"
OVERDUE_FILL = "#F8CBAD"
# Characters of average text that fit in one unit of column width, for estimating wrapped row heights.
CHARS_PER_WIDTH = 1.15
# Narrower text columns for a workbook that is read and printed rather than filled in: with the working
# columns (ID, Last updated, Notes) left out of the print area, Ref to National / local then prints one A4
# landscape page wide at about 80%, so 11 pt text prints at about 9 pt (the full widths print at 67%, under
# 8 pt).
# Notes stay off the printed page, so they can be wide: a long note then adds fewer lines to its row's height.
READING_WIDTHS: dict[str, float] = {
    "action": 38,
    "response": 48,
    "target": 16,
    "lead": 18,
    "supporting": 16,
    "notes": 60,
}
# The columns a printed reading workbook shows, first to last (a print area is one block of columns).
PRINTED_COLUMNS = ("ref", "kind")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@dataclass
class IssueInfo:
    """What was written: the identifiers that the manifest and the metadata carry."""

    path: Path
    issue_id: str
    recipient: str
    scope: list[str]
    issued_at: dt.datetime
    meta: IssueMeta


SheetList = Sequence[tuple[Area, list[Action]]]


@dataclass
class WorkbookExtras:
    """What a caller adds to the workbook the writer lays out, without the writer knowing what it is for.

    The master (master.write_master) adds its Dashboard before the other sheets, a Changes sheet after them,
    notes on changed cells, its own lines under "How to use it" and the reading style.
    """

    first_sheets: Callable[[WorkbookWriter, SheetList], None] | None = None
    last_sheets: Callable[[WorkbookWriter], None] | None = None
    marks: dict[tuple[str, str], str] = field(default_factory=dict)  # (action id, field) -> cell note
    instructions: Sequence[str] = ()
    # Styled for reading and printing: no "type here" fills, narrower text columns, and a print area of the
    # published columns (Ref to National / local) with the title above them.
    reading: bool = False


def checked(result: Any, what: str) -> None:
    # xlsxwriter returns 0 or None on success and -1/-2 (with at most a warning) when it drops something.
    if result not in (0, None):
        raise WorkbookWriteError(f"could not write {what} (xlsxwriter returned {result})")


def _header_text(text: str) -> str:
    """Text for a page header/footer section: '&' is a control character there."""
    return text.replace("&", "&&")[:80]


def lines_needed(text: str, width: float) -> int:
    return _lines_at(text, max(1, int(width * CHARS_PER_WIDTH)))


def _lines_at(text: str, per_line: int) -> int:
    """Wrapped lines of `text` at `per_line` characters a line (an empty line still takes one)."""
    if "\n" not in text:
        return max(1, -(-len(text) // per_line))
    return sum(max(1, -(-len(line) // per_line)) for line in text.split("\n"))


def _ordered_actions(area: Area, scope: set[str] | None) -> list[Action]:
    """National actions, then local ones, each in plan order."""
    chosen = [a for a in area.actions if scope is None or a.id in scope]
    return [a for a in chosen if a.kind == "national"] + [a for a in chosen if a.kind == "local"]


def _updated_text(action: Action) -> str:
    if action.updated is None:
        return ""
    stamp = action.updated.strftime("%d/%m/%Y")
    return f"{stamp} by {action.updated_by}" if action.updated_by else stamp


# Columns whose cell shows something other than the Action field of the same name.
_DERIVED_CELLS: dict[str, Callable[[Action], str]] = {
    "lead": lambda action: action.leads[0] if action.leads else "",
    "supporting": lambda action: "\n".join(action.leads[1:]),
    "kind": lambda action: "Local" if action.kind == "local" else "National",
    "updated": _updated_text,
}


def cell_value(action: Action, key: str) -> str | dt.date | None:
    """What a column of the area table shows for an action."""
    return _cell_getter(key)(action)


def _cell_getter(key: str) -> Callable[[Action], str | dt.date | None]:
    """`cell_value` for one column as a function of the action, looked up once per sheet, not per cell."""
    derived = _DERIVED_CELLS.get(key)
    if derived is not None:
        return derived

    def field(action: Action) -> str | dt.date | None:
        value = getattr(action, key)
        return value if value is not None else ""

    return field


# Declared once: the build benchmark's raw baseline uses the same.
# Text is always written as text: never as a formula, a link or a number.
WORKBOOK_OPTIONS: dict[str, bool] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "use_future_functions": False,
}
PROTECT_OPTIONS: dict[str, bool] = {
    "format_cells": False,
    "format_columns": True,
    "format_rows": True,
    "insert_rows": True,
    "sort": True,
    "autofilter": True,
    "select_locked_cells": True,
    "select_unlocked_cells": True,
}
# The checks on an area sheet's editable columns: column key -> (what it is, xlsxwriter options). Declared
# once: the build benchmark's raw xlsxwriter baseline writes the same.
AREA_VALIDATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "status": (
        "Status dropdown",
        {
            "validate": "list",
            "source": f"={L.STATUS_LIST_NAME}",
            "input_title": "Status",
            "input_message": "Choose from the list. The About sheet explains each status.",
            "error_title": "Not a status",
            "error_message": "Choose a status from the list (see the About sheet).",
            "error_type": "stop",
        },
    ),
    "lead": (
        "Lead dropdown",
        {
            "validate": "list",
            "source": f"={L.LEAD_LIST_NAME}",
            "input_title": "Lead",
            "input_message": "The lead role accountable for this action. Choose from the list.",
            "error_title": "Not a lead role",
            "error_message": "Choose a lead role from the list; ask the plan owner to add a new one.",
            "error_type": "stop",
        },
    ),
    "due": (
        "Due date check",
        {
            "validate": "date",
            "criteria": "between",
            "minimum": dt.date(2000, 1, 1),
            "maximum": dt.date(2099, 12, 31),
            "input_title": "Due date",
            "input_message": "A date such as 31/03/2015, or leave empty.",
            "error_title": "Not a date",
            "error_message": "Type a date such as 31/03/2015.",
            "error_type": "stop",
        },
    ),
}


class WorkbookWriter:
    def __init__(
        self,
        plan: Plan,
        path: Path,
        recipient: str,
        issued_at: dt.datetime,
        extras: WorkbookExtras | None = None,
        round_name: str | None = None,
        return_by: dt.date | None = None,
    ) -> None:
        import xlsxwriter

        self.plan = plan
        self.extras = extras or WorkbookExtras()
        self.round_name = round_name
        self.return_by = return_by
        self.marks = self.extras.marks
        self.reading = self.extras.reading
        self.recipient = recipient
        self.issued_at = issued_at
        self.wb = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
        self.formats: dict[str, Any] = {}
        self._status_formats: dict[str, Any] = {}

    # -- formats -------------------------------------------------------------------------------------
    def fmt(self, name: str, **props: Any) -> Any:
        if name not in self.formats:
            base = {"font_name": "Calibri", "font_size": 11, "valign": "top"}
            base.update(props)
            self.formats[name] = self.wb.add_format(base)
        return self.formats[name]

    def define_formats(self) -> None:
        border = {"border": 1, "border_color": "#BFBFBF"}
        self.fmt("title", bold=True, font_size=16, font_color=HEADER_FILL)
        self.fmt("subtitle", italic=True, font_color="#404040", text_wrap=True)
        self.fmt("note", italic=True, font_color="#595959", text_wrap=True)
        self.fmt("label", bold=True)
        self.fmt("plain", text_wrap=True)
        self.fmt("header", bold=True, font_color="#FFFFFF", bg_color=HEADER_FILL, text_wrap=True, **border)
        # A workbook for reading has no "type here" or "fixed" fills: it should look like a report, not a form.
        locked = {} if self.reading else {"bg_color": LOCKED_FILL}
        edit = {} if self.reading else {"bg_color": EDITABLE_FILL}
        self.fmt("locked", **locked, **border)
        self.fmt("locked_wrap", **locked, text_wrap=True, **border)
        self.fmt("local", bg_color=LOCAL_FILL, bold=True, **border)
        self.fmt("local_wrap", bg_color=LOCAL_FILL, text_wrap=True, **border)
        # Editable text cells are formatted as Text, so "2015" or "31/03/2015" typed into Target stays text.
        self.fmt("edit", **edit, locked=False, num_format="@", **border)
        self.fmt("edit_wrap", **edit, locked=False, text_wrap=True, num_format="@", **border)
        self.fmt("edit_date", **edit, locked=False, num_format=L.DATE_FORMAT, **border)
        self.fmt("overdue", bg_color=OVERDUE_FILL, font_color="#9C0006", bold=True)
        self.fmt("key_edit", bg_color=EDITABLE_FILL, **border)
        self.fmt("key_locked", bg_color=LOCKED_FILL, **border)
        for status in self.plan.statuses:
            self._status_formats[status.name] = self.wb.add_format(
                {"bg_color": status.colour, "font_color": contrast_colour(status.colour)}
            )

    # -- helpers ----------------------------------------------------------------------------------------
    def text(self, ws: Any, row: int, col: int, value: str, fmt: Any = None) -> None:
        checked(ws.write_string(row, col, value, fmt), f"text at {ws.name}!{L.column_letter(col)}{row + 1}")

    def formula(self, ws: Any, row: int, col: int, formula: str, fmt: str, value: float) -> None:
        """A formula with its cached value, so apps that do not recalculate still show the figure."""
        where = f"formula at {ws.name}!{L.column_letter(col)}{row + 1}"
        checked(ws.write_formula(row, col, formula, self.fmt(fmt), value), where)

    def number(self, ws: Any, row: int, col: int, value: float, fmt: str) -> None:
        checked(
            ws.write_number(row, col, value, self.fmt(fmt)),
            f"number at {ws.name}!{L.column_letter(col)}{row + 1}",
        )

    def page_setup(self, ws: Any, repeat_row: int | None = None, *, one_page: bool = False) -> None:
        marking = _header_text(self.plan.classification)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 1 if one_page else 0)
        ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.7)
        # The header and footer print at their own size in Excel, not shrunk with a wide sheet fitted to the
        # page; LibreOffice shrinks them anyway, so their text is large enough to be read after shrinking.
        fixed = {"scale_with_doc": False}
        checked(
            ws.set_header(f'&C&"Calibri,Bold"&12{marking}&R&11{_header_text(ws.name)}', fixed), "page header"
        )
        who = _header_text(L.recipient_label(self.recipient))
        checked(
            ws.set_footer(f'&L&11{who}&C&"Calibri,Bold"&12{marking}&R&11Page &P of &N', fixed),
            "page footer",
        )
        if repeat_row is not None:
            ws.repeat_rows(repeat_row)

    def protect(self, ws: Any) -> None:
        # A guide, not a security boundary: no password, so the recipient can still reformat and sort.
        ws.protect("", PROTECT_OPTIONS)

    # -- sheets -------------------------------------------------------------------------------------------
    def about_sheet(
        self, scope: Sequence[str], areas: list[tuple[Area, list[Action]]], issue_id: str
    ) -> None:
        ws = self.wb.add_worksheet(L.ABOUT_SHEET)
        ws.set_column(0, 0, 24)
        ws.set_column(1, 1, 90)
        ws.hide_gridlines(2)
        plan = self.plan
        owner = L.recipient_label(self.recipient) == L.OWNER_LABEL
        self.text(ws, 0, 0, plan.title, self.fmt("title"))
        facts = [
            ("Force", plan.force),
            ("Protective marking", plan.classification),
            ("Plan revision", str(plan.revision)),
            ("Prepared for" if owner else "Issued to", L.recipient_label(self.recipient)),
            ("Made on" if owner else "Issued on", self.issued_at.strftime("%d %B %Y")),
            ("Issue reference", issue_id),
            ("Actions in this workbook", f"{len(scope)} on {len(areas)} sheet(s)"),
        ]
        if self.round_name is not None:
            facts.insert(5, ("Reporting round", self.round_name))
        if self.return_by is not None:
            facts.insert(6, ("Return by", _long_date(self.return_by)))
        row = 2
        for label, value in facts:
            self.text(ws, row, 0, label, self.fmt("label"))
            self.text(ws, row, 1, value, self.fmt("plain"))
            row += 1
        row += 1
        lines = _owner_instructions(self.extras.instructions) if owner else _instructions(self.return_by)
        self.text(ws, row, 0, "How to use it" if owner else "How to fill it in", self.fmt("label"))
        for line in lines:
            self.text(ws, row, 1, line, self.fmt("plain"))
            ws.set_row(row, L.LINE_HEIGHT * lines_needed(line, 90))
            row += 1
        row += 1
        self.text(ws, row, 0, "Cells", self.fmt("label"))
        if not self.reading:
            self.text(
                ws,
                row,
                1,
                "You can type here (Response, Target, Due, Lead, Status, Notes)",
                self.fmt("key_edit"),
            )
            row += 1
            self.text(ws, row, 1, "Fixed: the plan owner changes these", self.fmt("key_locked"))
            row += 1
        self.text(
            ws, row, 1, "Local action (the force's own, not an HMIC national action)", self.fmt("local")
        )
        row += 2
        self.text(ws, row, 0, "Status key", self.fmt("label"))
        for status in self.plan.statuses:
            fmt = self._status_formats[status.name]
            self.text(ws, row, 1, f"{status.name}: {status.meaning}" if status.meaning else status.name, fmt)
            row += 1
        row += 1
        self.text(ws, row, 0, "Sheets", self.fmt("label"))
        for area, actions in areas:
            line = f"{area.sheet}: {len(actions)} action(s)"
            if not owner:
                line += ": " + _id_list([a.id for a in actions])
            self.text(ws, row, 1, line, self.fmt("plain"))
            ws.set_row(row, L.LINE_HEIGHT * lines_needed(line, 90))
            row += 1
        # The cover is one page: printed, it never spills its last lines onto a page of their own.
        self.page_setup(ws, one_page=True)
        self.protect(ws)

    def width(self, col: L.Column) -> float:
        return READING_WIDTHS.get(col.key, col.width) if self.reading else col.width

    def area_sheet(self, area: Area, actions: list[Action]) -> None:
        ws = self.wb.add_worksheet(area.sheet)
        cols = L.AREA_COLUMNS
        for i, col in enumerate(cols):
            checked(ws.set_column(i, i, self.width(col)), f"column width on {area.sheet}")
        # Printed, a reading workbook starts at Ref, so its title starts there too.
        first = L.column_index(PRINTED_COLUMNS[0]) if self.reading else 0
        self.text(ws, L.TITLE_ROW, first, area.name, self.fmt("title"))
        if area.key_criteria:
            self.text(ws, L.CRITERIA_ROW, first, f"Key criteria: {area.key_criteria}", self.fmt("label"))
        if area.supporting_areas:
            supporting = "Supporting areas: " + "; ".join(area.supporting_areas)
            ws.merge_range(L.SUPPORTING_ROW, first, L.SUPPORTING_ROW, first + 4, "", self.fmt("subtitle"))
            self.text(ws, L.SUPPORTING_ROW, first, supporting, self.fmt("subtitle"))
            span = sum(self.width(c) for c in cols[first : first + 5])
            ws.set_row(L.SUPPORTING_ROW, L.LINE_HEIGHT * lines_needed(supporting, span))
        for i, col in enumerate(cols):
            self.text(ws, L.HEADER_ROW, i, col.header, self.fmt("header"))
        ws.set_row(L.HEADER_ROW, 30)

        self.action_rows(ws, L.FIRST_DATA_ROW, actions)
        last = L.FIRST_DATA_ROW + len(actions) - 1
        ws.freeze_panes(L.FIRST_DATA_ROW, 0)
        checked(
            ws.autofilter(L.HEADER_ROW, 0, max(last, L.HEADER_ROW), len(cols) - 1),
            f"autofilter on {area.sheet}",
        )
        if actions:
            self.validations(ws, L.FIRST_DATA_ROW, last)
        self.page_setup(ws, repeat_row=L.HEADER_ROW)
        if self.reading:
            # The working columns (ID, Last updated, Notes) stay on screen but off the printed page.
            left, right = (L.column_index(key) for key in PRINTED_COLUMNS)
            checked(ws.print_area(0, left, max(last, L.HEADER_ROW), right), f"print area on {area.sheet}")
        self.protect(ws)

    def _column_plans(self) -> tuple[list[_ColumnPlan], list[_ColumnPlan]]:
        """Each table column's value function, format and wrap width: for national and for local rows."""
        national: list[_ColumnPlan] = []
        local: list[_ColumnPlan] = []
        for i, col in enumerate(L.AREA_COLUMNS):
            get = _cell_getter(col.key)
            if col.type == "date":
                fmt = self.fmt("edit_date")
                national.append((i, get, True, fmt, 0))
                local.append((i, get, True, fmt, 0))
                continue
            per_line = max(1, int(self.width(col) * CHARS_PER_WIDTH)) if col.wrap else 0
            if col.editable:
                fmt = self.fmt("edit_wrap" if col.wrap else "edit")
                national.append((i, get, False, fmt, per_line))
                local.append((i, get, False, fmt, per_line))
                continue
            national.append((i, get, False, self.fmt("locked_wrap" if col.wrap else "locked"), per_line))
            if col.key in ("id", "ref", "kind"):
                local.append((i, get, False, self.fmt("local"), per_line))
            else:
                local.append((i, get, False, self.fmt("local_wrap" if col.wrap else "locked"), per_line))
        return national, local

    def action_rows(self, ws: Any, first: int, actions: Sequence[Action]) -> None:
        """The table's rows from `first`, each as tall as its longest wrapped text.

        This loop runs once per cell of the plan, so everything decided per column is decided before it.
        """
        national, local = self._column_plans()
        write_string, write_blank, write_datetime = ws.write_string, ws.write_blank, ws.write_datetime
        marked = {action_id for action_id, _ in self.marks}
        line_height, max_height = L.LINE_HEIGHT, L.MAX_ROW_HEIGHT
        row = first
        for action in actions:
            lines = 1
            for i, get, is_date, fmt, per_line in local if action.kind == "local" else national:
                value = get(action)
                if is_date:
                    if isinstance(value, dt.date):
                        result = write_datetime(row, i, value, fmt)
                    else:
                        result = write_blank(row, i, None, fmt)
                else:
                    text = value if type(value) is str else str(value)
                    if text:
                        result = write_string(row, i, text, fmt)
                        if per_line:
                            lines = max(lines, _lines_at(text, per_line))
                    else:
                        result = write_blank(row, i, None, fmt)
                if result:
                    checked(result, f"cell at {ws.name}!{L.column_letter(i)}{row + 1}")
            if action.id in marked:
                for i, col in enumerate(L.AREA_COLUMNS):
                    self.mark(ws, row, i, action.id, col.key)
            checked(ws.set_row(row, min(max_height, line_height * lines)), f"row height on {ws.name}")
            row += 1

    def mark(self, ws: Any, row: int, col: int, action_id: str, key: str) -> None:
        """A comment on a cell changed since the last publication, saying who changed it and when."""
        note = self.marks.get((action_id, key))
        if note:
            options = {"author": "daplan", "x_scale": 2.2, "y_scale": 1.6}
            checked(ws.write_comment(row, col, note, options), f"change note at {ws.name}")

    def validations(self, ws: Any, first: int, last: int) -> None:
        for key, (what, options) in AREA_VALIDATIONS.items():
            c = L.column_index(key)
            checked(ws.data_validation(first, c, last, c, options), f"{what} on {ws.name}")
        status_col = L.column_letter(L.column_index("status"))
        first_a1, last_a1 = first + 1, last + 1
        status_range = f"{status_col}{first_a1}:{status_col}{last_a1}"
        for name, fmt in self._status_formats.items():
            checked(
                ws.conditional_format(
                    status_range,
                    {"type": "cell", "criteria": "==", "value": _excel_string(name), "format": fmt},
                ),
                f"status colour on {ws.name}",
            )
        # The overdue rule is a formula, so it is right on the day the file is opened, not the day it was made.
        due_col = L.column_letter(L.column_index("due"))
        closed = [s.name for s in self.plan.statuses if s.closed]
        open_test = ",".join(f"${status_col}{first_a1}<>{_excel_string(n)}" for n in closed) or "TRUE"
        formula = f"=AND(ISNUMBER(${due_col}{first_a1}),${due_col}{first_a1}<TODAY(),{open_test})"
        id_col = L.column_letter(0)
        checked(
            ws.conditional_format(
                f"{due_col}{first_a1}:{due_col}{last_a1}",
                {
                    "type": "formula",
                    "criteria": formula,
                    "format": self.fmt("overdue"),
                    "multi_range": f"{id_col}{first_a1}:{id_col}{last_a1} {due_col}{first_a1}:{due_col}{last_a1}",
                },
            ),
            f"overdue highlight on {ws.name}",
        )

    def table_sheet(
        self,
        name: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        widths: Sequence[float] | None = None,
        empty_note: str = "",
    ) -> None:
        """A read-only table of text (the candidates of a conflict, the journal's changes)."""
        ws = self.wb.add_worksheet(name)
        widths = widths or [40 if c >= 3 else 14 for c in range(len(headers))]
        for c, header in enumerate(headers):
            self.text(ws, 0, c, header, self.fmt("header"))
            ws.set_column(c, c, widths[c])
        for r, row in enumerate(rows, start=1):
            lines = 1
            for c, value in enumerate(row):
                if value:
                    self.text(ws, r, c, value, self.fmt("locked_wrap"))
                    lines = max(lines, lines_needed(value, widths[c]))
            ws.set_row(r, min(L.MAX_ROW_HEIGHT, L.LINE_HEIGHT * lines))
        if not rows and empty_note:
            self.text(ws, 1, 0, empty_note, self.fmt("note"))
        ws.freeze_panes(1, 0)
        checked(ws.autofilter(0, 0, max(len(rows), 1), len(headers) - 1), f"autofilter on {name}")
        self.page_setup(ws, repeat_row=0)
        self.protect(ws)

    def glossary_sheet(self) -> None:
        ws = self.wb.add_worksheet(L.GLOSSARY_SHEET)
        for i, width in enumerate(L.GLOSSARY_WIDTHS):
            ws.set_column(i, i, width)
        for i, header in enumerate(L.GLOSSARY_HEADERS):
            self.text(ws, 0, i, header, self.fmt("header"))
        for row, entry in enumerate(self.plan.glossary, start=1):
            self.text(ws, row, 0, entry.term, self.fmt("locked"))
            if entry.definition:
                self.text(ws, row, 1, entry.definition, self.fmt("locked_wrap"))
            ws.set_row(row, L.LINE_HEIGHT * lines_needed(entry.definition, L.GLOSSARY_WIDTHS[1]))
        ws.freeze_panes(1, 0)
        self.page_setup(ws, repeat_row=0)
        self.protect(ws)

    def lists_sheet(self) -> None:
        ws = self.wb.add_worksheet(L.LISTS_SHEET)
        columns = [
            ("Status", L.STATUS_LIST_NAME, self.plan.status_names()),
            ("Lead", L.LEAD_LIST_NAME, self.plan.lead_names()),
        ]
        for c, (header, name, values) in enumerate(columns):
            self.text(ws, 0, c, header)
            for r, value in enumerate(values, start=1):
                self.text(ws, r, c, value)
            letter = L.column_letter(c)
            end = max(len(values), 1) + 1
            checked(
                self.wb.define_name(name, f"={L.quote_sheet(L.LISTS_SHEET)}!${letter}$2:${letter}${end}"),
                f"defined name {name}",
            )
        ws.hide()
        self.protect(ws)

    def meta_sheet(self, meta: IssueMeta, key: bytes | None) -> None:
        ws = self.wb.add_worksheet(L.META_SHEET)
        for row, col, value in encode(meta, key):
            self.text(ws, row, col, value)
        ws.very_hidden()
        self.protect(ws)

    def set_properties(self) -> None:
        naive = self.issued_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
        self.wb.set_properties(
            {
                "title": self.plan.title,
                "subject": f"Domestic Abuse Action Plan, revision {self.plan.revision}",
                "author": "daplan",
                "company": self.plan.force,
                "category": self.plan.classification,
                "comments": f"Issued to {self.recipient}",
                "created": naive,
            }
        )
        self.wb.set_calc_mode("auto")

    def close(self) -> None:
        from xlsxwriter.exceptions import XlsxWriterException

        try:
            self.wb.close()
        except (XlsxWriterException, OSError) as exc:
            raise WorkbookWriteError(f"could not save the workbook: {exc}", file=self.wb.filename) from exc


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #RRGGBB colour."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #RRGGBB colours (1 to 21)."""
    hi, lo = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def contrast_colour(colour: str) -> str:
    """Black or white text for a fill, whichever contrasts more. One of the two always reaches WCAG AA's
    4.5:1 on any fill, so a status colour a plan chooses is always readable."""
    return "#000000" if contrast_ratio(colour, "#000000") >= contrast_ratio(colour, "#FFFFFF") else "#FFFFFF"


def _excel_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


ABOUT_ID_LIST_LIMIT = 40


def _id_list(ids: list[str]) -> str:
    """The action ids in scope, for the cover; a long scope is shortened (a cell holds 32,767 characters)."""
    if len(ids) <= ABOUT_ID_LIST_LIMIT:
        return ", ".join(ids)
    head = ", ".join(ids[: ABOUT_ID_LIST_LIMIT - 5])
    return f"{head}, … and {len(ids) - ABOUT_ID_LIST_LIMIT + 5} more (to {ids[-1]})"


def _owner_instructions(extra: Sequence[str]) -> list[str]:
    """The plan owner's cover: what this workbook is and how to read and print it, not how to fill it in."""
    lines = [
        "This workbook shows the whole plan as the plan file holds it. It is made from the plan file by "
        "daplan build; the plan file is the record, so make changes there (or merge the leads' returns) "
        "and build it again.",
        *extra,
        "Each capability area has its own sheet (tabs at the bottom), national actions first, then local ones.",
        "Printed, each area sheet shows Ref to National / local on A4 landscape with the header row repeated; "
        "the ID, Last updated and Notes columns are working columns and stay off the printed page.",
    ]
    return [f"{n}. {line}" for n, line in enumerate(lines, start=1)]


def _long_date(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


def _instructions(return_by: dt.date | None = None) -> list[str]:
    lines = [
        "1. Each capability area has its own sheet (tabs at the bottom). Each row is one action.",
        "2. Update the yellow cells: Response (what has been done, what is next), Target, Due, Lead, Status "
        "and Notes. Pick Status and Lead from the dropdown lists.",
        "3. Grey cells are fixed: ID, Ref and the Action text. Do not change the ID: it is how your update is "
        "matched to the plan. You may sort, filter, resize and restyle as you like.",
        "4. To propose a new action, add a row at the bottom of the table and leave its ID empty.",
    ]
    lines.append(
        "5. Save the file as an Excel Workbook (.xlsx), keep its name, and email it back to the plan owner"
        + (f" by {_long_date(return_by)}" if return_by is not None else "")
        + ". Do not copy your rows into another workbook: the hidden sheet identifies this issue."
    )
    return lines


@contextlib.contextmanager
def written_in_place(target: Path, make: Callable[[Path], WorkbookWriter]) -> Iterator[WorkbookWriter]:
    """A writer on a temporary file beside `target`, renamed into place when the block ends well.

    A failure never leaves half a workbook, and xlsxwriter's warnings (it only warns when it drops a
    validation or truncates text) are errors here.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp.xlsx", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    writer = make(tmp)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                yield writer
            except UserWarning as exc:
                raise WorkbookWriteError(f"xlsxwriter refused part of the workbook: {exc}", file=target) from exc
            writer.close()
        os.chmod(tmp, new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        writer.wb.fileclosed = True  # nothing more to write; keeps xlsxwriter from warning at exit
        tmp.unlink(missing_ok=True)
        raise


# A large workbook is millions of short-lived objects: the collector runs once after, not all through.
@collector.paused()
def write_workbook(
    plan: Plan,
    path: str | os.PathLike[str],
    *,
    scope: Iterable[str] | None = None,
    recipient: str = L.OWNER_RECIPIENT,
    key: bytes | None = None,
    clock: Clock = utc_now,
    issue_id: str | None = None,
    extra_sheet: tuple[str, Sequence[str], Sequence[Sequence[str]]] | None = None,
    extras: WorkbookExtras | None = None,
    kind: str = "lead",
    round_name: str | None = None,
    return_by: dt.date | None = None,
) -> IssueInfo:
    """Write a workbook of `plan` for `recipient` holding the actions in `scope` (all when None).

    `extras` lets a caller add sheets and notes (master.write_master adds the owner's Dashboard, Changes
    sheet and change marks); `round_name` and `return_by` put the reporting round and its return-by date on
    the About sheet.
    """
    target = Path(path)
    if target.is_dir():
        raise WorkbookWriteError("this is a directory", file=target, hint="name an .xlsx file to write")
    if not target.parent.exists():
        raise WorkbookWriteError("folder does not exist", file=target, hint="create the folder first")
    index = plan.action_index()
    wanted = None if scope is None else set(scope)
    if wanted is not None:
        unknown = sorted(wanted - index.keys())
        if unknown:
            raise WorkbookWriteError(f"scope names actions not in the plan: {', '.join(unknown[:5])}")
    sheets = [(area, _ordered_actions(area, wanted)) for area in plan.areas]
    if wanted is not None:
        sheets = [(area, actions) for area, actions in sheets if actions]
    largest = max((len(a) for _, a in sheets), default=0)
    if L.FIRST_DATA_ROW + largest > EXCEL_MAX_ROWS:
        raise WorkbookWriteError(
            f"an area has {largest} actions; an Excel sheet holds at most {EXCEL_MAX_ROWS} rows"
        )
    ordered_scope = [a.id for _, actions in sheets for a in actions]
    issued_at = clock()
    issue = issue_id or str(uuid.uuid4())
    meta = build_meta(plan, ordered_scope, recipient, issue, issued_at)
    meta.kind = kind

    with written_in_place(
        target, lambda tmp: WorkbookWriter(plan, tmp, recipient, issued_at, extras, round_name, return_by)
    ) as writer:
        writer.define_formats()
        writer.set_properties()
        if writer.extras.first_sheets is not None:
            writer.extras.first_sheets(writer, sheets)
        writer.about_sheet(ordered_scope, sheets, issue)
        if extra_sheet is not None:
            writer.table_sheet(*extra_sheet)
        for area, actions in sheets:
            writer.area_sheet(area, actions)
        writer.glossary_sheet()
        if writer.extras.last_sheets is not None:
            writer.extras.last_sheets(writer)
        writer.lists_sheet()
        writer.meta_sheet(meta, key)
    return IssueInfo(target, issue, recipient, ordered_scope, issued_at, meta)
