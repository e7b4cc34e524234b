"""The plan owner's workbook (`daplan edit`): the whole plan, every part of it editable, for `daplan apply`.

It is laid out like a lead's workbook, so the same reading serves both: one sheet per capability area with
the same table (ID, Ref, Action, Response, Target, Due, Lead, Status, Supporting leads, National / local,
Last updated, Notes) and a Remove column, all of it editable but the ID; then a sheet each for the plan's
texts (Plan), its lead roles (Leads), its statuses (Statuses), its areas' key criteria (Areas) and the
Glossary. Empty yellow rows below each table take new entries.

Rows of the Leads, Statuses and Glossary sheets carry a hidden identity (column A, `L3`: the third lead as
issued), so a renamed role is known by the row it is on, never by matching its text. The metadata is kind
"owner" and carries the whole plan as issued (canonical JSON after the base values, signed and
checksummed with them): the base `daplan apply` compares against, three-way, with no other file.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import collector
from . import layout as L
from .errors import WorkbookWriteError
from .meta import build_meta
from .model import Action, Area, Plan
from .writer import (
    AREA_VALIDATIONS,
    Clock,
    IssueInfo,
    WorkbookWriter,
    checked,
    lines_needed,
    utc_now,
    written_in_place,
)

OWNER_RECIPIENT = "Plan owner"
PLAN_SHEET = "Plan"
LEADS_SHEET = "Leads"
STATUSES_SHEET = "Statuses"
AREAS_SHEET = "Areas"
OWNER_SHEETS = (PLAN_SHEET, LEADS_SHEET, STATUSES_SHEET, AREAS_SHEET)
# The header of the column that marks a row for removal (actions, roles, statuses, glossary terms).
REMOVE_HEADER = "Remove"
REMOVE_WORD = "Remove"
IDENTITY_HEADER = "Key"
# Empty editable rows below each table, for new entries.
SPARE_ROWS = 25


@dataclass(frozen=True)
class Table:
    """A register sheet: its hidden identity prefix and its columns as (field, header, width)."""

    sheet: str
    prefix: str
    columns: tuple[tuple[str, str, float], ...]


LEADS_TABLE = Table(LEADS_SHEET, "L", (("name", "Role", 36), ("email", "Email", 32), ("notes", "Notes", 50)))
STATUSES_TABLE = Table(
    STATUSES_SHEET,
    "S",
    (("name", "Name", 18), ("colour", "Colour", 12), ("meaning", "Meaning", 60), ("closed", "Closed", 10)),
)
GLOSSARY_TABLE = Table(L.GLOSSARY_SHEET, "G", (("term", "Term", 24), ("definition", "Definition", 90)))
# The Plan sheet: field -> label, one row each.
PLAN_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "Title"),
    ("force", "Force"),
    ("classification", "Protective marking"),
    ("background", "Background"),
    ("overarching_capabilities", "Overarching capabilities"),
)
# The Areas sheet: (field, header, width, editable).
AREA_TABLE: tuple[tuple[str, str, float, bool], ...] = (
    ("id", "ID", 8, False),
    ("name", "Name", 40, True),
    ("sheet", "Sheet", 30, False),
    ("key_criteria", "Key criteria", 50, True),
    ("supporting_areas", "Supporting areas", 60, True),
)
# The action table's columns the owner cannot change: the identity and the bookkeeping.
FIXED_ACTION_COLUMNS = ("id", "updated")


def identity(prefix: str, index: int) -> str:
    """The hidden identity of the `index`-th (0-based) row of a register as issued."""
    return f"{prefix}{index + 1}"


def closed_text(closed: bool) -> str:
    return "Yes" if closed else "No"


def _owner_instructions() -> list[str]:
    return [
        "This is the plan owner's workbook of the whole plan. Change anything in the yellow cells, save it as "
        "an Excel Workbook (.xlsx), then run: daplan apply PLAN THIS-FILE (add --dry-run to see first).",
        "Area sheets: one row per action. Every column but ID is yours: Ref, Action, Lead, Supporting leads "
        "(one role a line), National / local, Due, Status, Response, Target, Notes.",
        "New action: type it in an empty yellow row at the bottom of its area's table and leave ID empty; it "
        "gets its id when applied.",
        "Withdraw an action: choose Remove in its Remove column. Deleting the row withdraws nothing.",
        "Leads: add a role in an empty row; rename one in place (the new name follows into every action that "
        "names it); choose Remove to remove a role that no action uses.",
        "Statuses: name, colour (#RRGGBB), meaning and whether it is closed (Yes/No). Glossary: terms and "
        "definitions. Areas: name, key criteria and supporting areas (one a line). Plan: title, force, "
        "protective marking and the texts.",
        "Applying is three-way: a value a lead's return changed since this workbook was made is never "
        "overwritten; where both changed it, it becomes an open item to settle.",
    ]


class OwnerWriter:
    """Writes the owner's workbook on a WorkbookWriter (formats, page set-up, metadata)."""

    def __init__(self, w: WorkbookWriter) -> None:
        self.w = w
        self.plan = w.plan

    # -- sheets ------------------------------------------------------------------------------------------
    def about(self, issue_id: str) -> None:
        w, plan = self.w, self.plan
        ws = w.wb.add_worksheet(L.ABOUT_SHEET)
        ws.set_column(0, 0, 24)
        ws.set_column(1, 1, 100)
        ws.hide_gridlines(2)
        w.text(ws, 0, 0, plan.title, w.fmt("title"))
        facts = [
            ("Force", plan.force),
            ("Protective marking", plan.classification),
            ("Plan revision", str(plan.revision)),
            ("Issued to", OWNER_RECIPIENT),
            ("Issued on", w.issued_at.strftime("%d %B %Y %H:%M UTC")),
            ("Issue id", issue_id),
        ]
        row = 2
        for label, value in facts:
            w.text(ws, row, 0, label, w.fmt("label"))
            if value:
                w.text(ws, row, 1, value, w.fmt("plain"))
            row += 1
        row += 1
        w.text(ws, row, 0, "How to use it", w.fmt("label"))
        for line in _owner_instructions():
            w.text(ws, row, 1, line, w.fmt("plain"))
            ws.set_row(row, L.LINE_HEIGHT * lines_needed(line, 100))
            row += 1
        w.page_setup(ws)
        w.protect(ws)

    def plan_sheet(self) -> None:
        w, plan = self.w, self.plan
        ws = w.wb.add_worksheet(PLAN_SHEET)
        ws.set_column(0, 0, 26)
        ws.set_column(1, 1, 100)
        w.text(ws, 0, 0, "Field", w.fmt("header"))
        w.text(ws, 0, 1, "Value", w.fmt("header"))
        for r, (key, label) in enumerate(PLAN_FIELDS, start=1):
            value = str(getattr(plan, key) or "")
            w.text(ws, r, 0, label, w.fmt("locked"))
            self._editable(ws, r, 1, value, wrap=True)
            ws.set_row(r, min(L.MAX_ROW_HEIGHT, L.LINE_HEIGHT * lines_needed(value, 100)))
        ws.freeze_panes(1, 0)
        w.page_setup(ws, repeat_row=0)
        w.protect(ws)

    def register_sheet(self, table: Table, rows: Sequence[dict[str, str]]) -> int:
        """A register (leads, statuses, glossary) with hidden identities; the last row a list may name."""
        w = self.w
        ws = w.wb.add_worksheet(table.sheet)
        checked(ws.set_column(0, 0, 8, None, {"hidden": True}), f"hidden identities on {table.sheet}")
        headers = [IDENTITY_HEADER, *(h for _, h, _ in table.columns), REMOVE_HEADER]
        for c, header in enumerate(headers):
            w.text(ws, 0, c, header, w.fmt("header"))
        for c, (_, _, width) in enumerate(table.columns, start=1):
            ws.set_column(c, c, width)
        remove_col = len(headers) - 1
        ws.set_column(remove_col, remove_col, 10)
        last = len(rows) + SPARE_ROWS
        for r in range(1, last + 1):
            values = rows[r - 1] if r <= len(rows) else None
            if values is not None:
                w.text(ws, r, 0, identity(table.prefix, r - 1), w.fmt("locked"))
            lines = 1
            for c, (key, _, width) in enumerate(table.columns, start=1):
                text = values.get(key, "") if values else ""
                fmt = self._status_fill(text) if (table is STATUSES_TABLE and key == "colour") else None
                self._editable(ws, r, c, text, wrap=True, fmt=fmt)
                lines = max(lines, lines_needed(text, width))
            self._editable(ws, r, remove_col, "")
            ws.set_row(r, min(L.MAX_ROW_HEIGHT, L.LINE_HEIGHT * lines))
        self._remove_dropdown(ws, 1, last, remove_col)
        if table is STATUSES_TABLE:
            col = next(i for i, (k, _, _) in enumerate(table.columns, start=1) if k == "closed")
            checked(
                ws.data_validation(
                    1,
                    col,
                    last,
                    col,
                    {
                        "validate": "list",
                        "source": ["Yes", "No"],
                        "input_title": "Closed",
                        "input_message": "Yes when an action with this status needs no more work.",
                    },
                ),
                "Closed dropdown",
            )
        ws.freeze_panes(1, 1)
        checked(ws.autofilter(0, 0, last, len(headers) - 1), f"autofilter on {table.sheet}")
        w.page_setup(ws, repeat_row=0)
        w.protect(ws)
        return last

    def areas_sheet(self) -> None:
        w = self.w
        ws = w.wb.add_worksheet(AREAS_SHEET)
        for c, (_, header, width, _) in enumerate(AREA_TABLE):
            w.text(ws, 0, c, header, w.fmt("header"))
            ws.set_column(c, c, width)
        for r, area in enumerate(self.plan.areas, start=1):
            lines = 1
            for c, (key, _, width, editable) in enumerate(AREA_TABLE):
                value = getattr(area, key)
                text = "\n".join(value) if isinstance(value, list) else str(value)
                if editable:
                    self._editable(ws, r, c, text, wrap=True)
                else:
                    w.text(ws, r, c, text, w.fmt("locked_wrap"))
                lines = max(lines, lines_needed(text, width))
            ws.set_row(r, min(L.MAX_ROW_HEIGHT, L.LINE_HEIGHT * lines))
        ws.freeze_panes(1, 1)
        w.page_setup(ws, repeat_row=0)
        w.protect(ws)

    def area_sheet(self, area: Area) -> None:
        w = self.w
        ws = w.wb.add_worksheet(area.sheet)
        columns = L.AREA_COLUMNS
        for c, col in enumerate(columns):
            ws.set_column(c, c, col.width)
        remove_col = len(columns)
        ws.set_column(remove_col, remove_col, 10)
        w.text(ws, L.TITLE_ROW, 0, f"{area.id}: {area.name}", w.fmt("title"))
        w.text(
            ws,
            L.CRITERIA_ROW,
            0,
            "Key criteria, supporting areas and the area's name are edited on the Areas sheet.",
            w.fmt("note"),
        )
        for c, col in enumerate(columns):
            w.text(ws, L.HEADER_ROW, c, col.header, w.fmt("header"))
        w.text(ws, L.HEADER_ROW, remove_col, REMOVE_HEADER, w.fmt("header"))
        first = L.FIRST_DATA_ROW
        actions = list(area.actions)
        last = first + len(actions) + SPARE_ROWS - 1
        for n in range(len(actions) + SPARE_ROWS):
            row = first + n
            action = actions[n] if n < len(actions) else None
            lines = 1
            for c, col in enumerate(columns):
                value = _cell(action, col.key) if action is not None else ""
                if col.key in FIXED_ACTION_COLUMNS:
                    if value:
                        w.text(ws, row, c, str(value), w.fmt("locked_wrap"))
                    else:
                        checked(ws.write_blank(row, c, None, w.fmt("locked")), f"cell on {area.sheet}")
                elif col.type == "date":
                    fmt = w.fmt("edit_date")
                    if isinstance(value, dt.date):
                        checked(ws.write_datetime(row, c, value, fmt), f"date on {area.sheet}")
                    else:
                        checked(ws.write_blank(row, c, None, fmt), f"cell on {area.sheet}")
                else:
                    text = str(value)
                    self._editable(ws, row, c, text, wrap=col.wrap)
                    if col.wrap:
                        lines = max(lines, lines_needed(text, col.width))
            self._editable(ws, row, remove_col, "")
            ws.set_row(row, min(L.MAX_ROW_HEIGHT, L.LINE_HEIGHT * lines))
        for key, (what, options) in AREA_VALIDATIONS.items():
            c = L.column_index(key)
            checked(ws.data_validation(first, c, last, c, options), f"{what} on {area.sheet}")
        kind_col = L.column_index("kind")
        checked(
            ws.data_validation(
                first,
                kind_col,
                last,
                kind_col,
                {
                    "validate": "list",
                    "source": ["National", "Local"],
                    "input_title": "National or local",
                    "input_message": "National: an HMIC action. Local: your force's own.",
                    "error_title": "National or local",
                    "error_message": "Choose National or Local.",
                    "error_type": "stop",
                },
            ),
            f"National / local dropdown on {area.sheet}",
        )
        self._remove_dropdown(ws, first, last, remove_col)
        ws.freeze_panes(first, 0)
        checked(ws.autofilter(L.HEADER_ROW, 0, last, remove_col), f"autofilter on {area.sheet}")
        w.page_setup(ws, repeat_row=L.HEADER_ROW)
        w.protect(ws)

    def defined_names(self, leads_last: int, statuses_last: int) -> None:
        # The dropdowns read the Leads and Statuses sheets themselves, so a role added there is in the list.
        for name, sheet, last in (
            (L.LEAD_LIST_NAME, LEADS_SHEET, leads_last),
            (L.STATUS_LIST_NAME, STATUSES_SHEET, statuses_last),
        ):
            checked(
                self.w.wb.define_name(name, f"={L.quote_sheet(sheet)}!$B$2:$B${last + 1}"),
                f"defined name {name}",
            )

    # -- helpers -----------------------------------------------------------------------------------------
    def _editable(
        self, ws: Any, row: int, col: int, text: str, *, wrap: bool = False, fmt: Any = None
    ) -> None:
        fmt = fmt or self.w.fmt("edit_wrap" if wrap else "edit")
        if text:
            self.w.text(ws, row, col, text, fmt)
        else:
            checked(ws.write_blank(row, col, None, fmt), f"cell on {ws.name}")

    def _status_fill(self, colour: str) -> Any:
        from .writer import EDITABLE_FILL, contrast_colour

        if len(colour) != 7 or not colour.startswith("#"):
            return None
        return self.w.fmt(
            f"edit_colour_{colour.upper()}",
            bg_color=colour,
            font_color=contrast_colour(colour),
            locked=False,
            num_format="@",
            border=1,
            border_color=EDITABLE_FILL,
        )

    def _remove_dropdown(self, ws: Any, first: int, last: int, col: int) -> None:
        checked(
            ws.data_validation(
                first,
                col,
                last,
                col,
                {
                    "validate": "list",
                    "source": [REMOVE_WORD],
                    "input_title": "Remove",
                    "input_message": "Choose Remove to take this row out of the plan when the workbook is "
                    "applied. Deleting the row does nothing.",
                },
            ),
            f"Remove dropdown on {ws.name}",
        )


def _cell(action: Action, key: str) -> str | dt.date | None:
    from .writer import cell_value

    return cell_value(action, key)


def plan_document(plan: Plan) -> bytes:
    """The plan as the owner's workbook carries it: its canonical JSON, on one line."""
    return plan.model_dump_json().encode("utf-8")


@collector.paused()
def write_owner_workbook(
    plan: Plan,
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    clock: Clock = utc_now,
    issue_id: str | None = None,
) -> IssueInfo:
    """Write the owner's workbook of the whole plan to `path`; the caller records it as issued."""
    target = Path(path)
    if target.is_dir():
        raise WorkbookWriteError("this is a directory", file=target, hint="name an .xlsx file to write")
    if not target.parent.exists():
        raise WorkbookWriteError("folder does not exist", file=target, hint="create the folder first")
    taken = {s.casefold() for s in OWNER_SHEETS}
    for area in plan.areas:
        if area.sheet.casefold() in taken:
            raise WorkbookWriteError(
                f"the area {area.id}'s sheet is called {area.sheet!r}, a name the owner's workbook uses itself",
                hint="rename the area's sheet in the plan file first",
            )
    largest = max((len(a.actions) for a in plan.areas), default=0)
    if L.FIRST_DATA_ROW + largest + SPARE_ROWS > 1_048_576:
        raise WorkbookWriteError(f"an area has {largest} actions, more than an Excel sheet holds")
    scope = [a.id for area in plan.areas for a in area.actions]
    issued_at = clock()
    issue = issue_id or str(uuid.uuid4())
    meta = build_meta(plan, scope, OWNER_RECIPIENT, issue, issued_at)
    meta.kind = "owner"
    meta.attach_document(plan_document(plan))

    with written_in_place(target, lambda tmp: WorkbookWriter(plan, tmp, OWNER_RECIPIENT, issued_at)) as writer:
        owner = OwnerWriter(writer)
        writer.define_formats()
        writer.set_properties()
        owner.about(issue)
        owner.plan_sheet()
        leads_last = owner.register_sheet(
            LEADS_TABLE, [{"name": x.name, "email": x.email, "notes": x.notes} for x in plan.leads]
        )
        statuses_last = owner.register_sheet(
            STATUSES_TABLE,
            [
                {
                    "name": s.name,
                    "colour": s.colour,
                    "meaning": s.meaning,
                    "closed": closed_text(s.closed),
                }
                for s in plan.statuses
            ],
        )
        owner.areas_sheet()
        for area in plan.areas:
            owner.area_sheet(area)
        owner.register_sheet(
            GLOSSARY_TABLE, [{"term": g.term, "definition": g.definition} for g in plan.glossary]
        )
        owner.defined_names(leads_last, statuses_last)
        writer.meta_sheet(meta, key)
    return IssueInfo(target, issue, OWNER_RECIPIENT, scope, issued_at, meta)
