"""The owner's master workbook: a Dashboard first, a Changes sheet of the journal, marks on changed cells.

`write_master` is `daplan build`: the whole plan through `writer.write_workbook`, plus what the governance
board reads first. The master composes the writer (its sheets go in through `writer.WorkbookExtras`); the
writer knows nothing of the master. Every figure on the Dashboard that depends on the area sheets is a live COUNTIFS formula
over them, so a reader who edits a status in the master sees the counts and the chart follow; the counts the
tool computes are stored as the formulas' cached values, so an app that does not recalculate (or a quick
look in a file browser) still shows the right numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import journal as J
from . import layout as L
from .model import EXCEL_CELL_LIMIT, Action, Area, Plan
from .openitems import OpenItem, candidate_label, open_items
from .record import real_plan_path
from .rounds import rounds_of, state_at, status_counts_by_round
from .writer import (
    Clock,
    IssueInfo,
    SheetList,
    WorkbookExtras,
    WorkbookWriter,
    checked,
    contrast_colour,
    utc_now,
    write_workbook,
)

# Dashboard rows (0-based).
_TITLE, _SUBTITLE, _TABLE_TITLE, _TABLE_HEADER = 0, 1, 3, 4
_AREA_WIDTH = 40
_FIGURE_WIDTH = 11
_ACTION_TEXT_LIMIT = 160
_OLD_VALUE_LIMIT = 300
# Editable fields as the journal names them, in the order of the area table.
_FIELD_HEADERS = {c.key: c.header for c in L.AREA_COLUMNS}


@dataclass(frozen=True)
class AreaCounts:
    """What the Dashboard's formulas compute for one area, computed by the tool from the plan."""

    area: Area
    by_status: dict[str, int]
    total: int
    closed: int
    past_due: int


@dataclass
class MasterContent:
    """What the master adds to the owner's workbook: journal changes, marks, returns, the day it is as at."""

    as_of: dt.date
    changes: list[dict[str, Any]] = field(default_factory=list)  # newest first
    marks: dict[tuple[str, str], str] = field(default_factory=dict)  # (action id, field) -> comment
    returns: dict[str, Any] | None = None  # status.status_report, when a distribution exists
    open_items: list[OpenItem] = field(default_factory=list)  # awaiting the owner
    # (round, actions per status) when each reporting round was issued, then now; empty without rounds
    by_round: list[tuple[str, dict[str, int]]] = field(default_factory=list)


def _closed_names(plan: Plan) -> list[str]:
    """The closed statuses, in vocabulary order."""
    return [s.name for s in plan.statuses if s.closed]


def is_past_due(action: Action, closed: set[str], today: dt.date) -> bool:
    return action.due is not None and action.due < today and action.status not in closed


def area_counts(plan: Plan, today: dt.date) -> list[AreaCounts]:
    """Per area: actions by status (vocabulary order), total, closed, open and past their due date."""
    closed = set(_closed_names(plan))
    out = []
    for area in plan.areas:
        by_status = {s.name: 0 for s in plan.statuses}
        for action in area.actions:
            by_status[action.status] = by_status.get(action.status, 0) + 1
        out.append(
            AreaCounts(
                area,
                by_status,
                len(area.actions),
                sum(by_status[name] for name in closed),
                sum(1 for a in area.actions if is_past_due(a, closed, today)),
            )
        )
    return out


def master_content(
    plan: Plan,
    plan_path: Path,
    *,
    today: dt.date,
    outbox: Path | None = None,
    inbox: Path | None = None,
) -> MasterContent:
    """Gather the journal and, when a distribution exists, the state of its returns."""
    entries = J.read_journal(J.journal_path(real_plan_path(plan_path)), plan.revision)
    published = J.last_publication(entries)
    changes = [e for e in entries if e.get("action_id") and e.get("event") != "return"]
    changes.reverse()  # newest first; lines are appended in time order
    returns = None
    if outbox is not None:
        from .status import status_report

        returns = status_report(plan, plan_path, outbox, inbox)
    marks = change_marks(entries, published)
    for key, note in round_marks(plan, entries).items():
        marks[key] = f"{marks[key]}\n{note}" if key in marks else note
    return MasterContent(
        as_of=today,
        changes=changes,
        marks=marks,
        returns=returns,
        open_items=open_items(entries),
        by_round=status_counts_by_round(plan, entries),
    )


def round_marks(plan: Plan, entries: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """A note on the Last updated cell of each action whose status moved since the latest reporting round was
    issued, giving the status it had then (one note per moved action, not one per action: a plan of
    20,000 actions would otherwise carry 20,000 notes)."""
    found = rounds_of(entries)
    if not found:
        return {}
    last = found[-1]
    then = state_at(plan, entries, last.revision)
    marks = {}
    for _, action in plan.iter_actions():
        if action.id not in then:
            marks[(action.id, "updated")] = f"Added since round {last.name}."
            continue
        status = then[action.id][0] or "(none)"
        if status != action.status:
            marks[(action.id, "updated")] = f"Status at round {last.name}: {status} (now {action.status})."
    return marks


def change_marks(
    entries: Iterable[dict[str, Any]], published: dict[str, Any] | None
) -> dict[tuple[str, str], str]:
    """A comment for every cell changed since the last publication (every journalled change if none)."""
    since = int(published["revision"]) if published else 0
    marks: dict[tuple[str, str], str] = {}
    history: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        if int(e.get("revision", 0)) <= since:
            continue
        if e.get("event") == "change":
            history.setdefault((e["action_id"], e["field"]), []).append(e)
        elif e.get("event") == "add":
            who, source = e.get("recipient", "?"), Path(str(e.get("return", ""))).name
            marks[(e["action_id"], "id")] = (
                f"Added {_day(e.get('time', ''))}: proposed by {who} (in {source})."
            )
    for key, changes in history.items():
        first, last = changes[0], changes[-1]
        when = _day(last.get("time", ""))
        text = (
            f"Changed {when} by {last.get('recipient', '?')} (from {Path(str(last.get('return', ''))).name})."
        )
        if len(changes) > 1:
            text += f" Changed {len(changes)} times since the last publication."
        old = str(first.get("old") or "(empty)")
        if len(old) > _OLD_VALUE_LIMIT:
            old = old[:_OLD_VALUE_LIMIT] + "…"
        marks[key] = f"{text}\nWas: {old}"
    return marks


def _day(stamp: str) -> str:
    try:
        return dt.datetime.fromisoformat(stamp).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return stamp


def _criteria(text: str, op: str = "=") -> str:
    """A COUNTIFS criterion comparing with exactly `text`: the operator keeps it from being read as one,
    '~' escapes the wildcards, and the whole is an Excel string literal."""
    escaped = text.replace("~", "~~").replace("*", "~*").replace("?", "~?")
    return '"' + op + escaped.replace('"', '""') + '"'


def _range(sheet: str, col_key: str, rows: int) -> str:
    letter = L.column_letter(L.column_index(col_key))
    first = L.FIRST_DATA_ROW + 1
    last = first + max(rows, 1) - 1
    return f"{L.quote_sheet(sheet)}!${letter}${first}:${letter}${last}"


class DashboardWriter:
    """Writes the Dashboard sheet through the workbook writer's formats and checked calls."""

    def __init__(self, w: WorkbookWriter, content: MasterContent) -> None:
        self.w = w
        self.plan = w.plan
        self.content = content
        self.ws: Any = None

    def formats(self) -> None:
        w = self.w
        border = {"border": 1, "border_color": "#BFBFBF"}
        w.fmt("dash_section", bold=True, font_size=13, font_color="#1F3864", bottom=2, bottom_color="#1F3864")
        w.fmt("dash_area", text_wrap=True, valign="vcenter", **border)
        w.fmt("dash_count", align="center", valign="vcenter", num_format="0;-0;–", **border)
        w.fmt("dash_total", bold=True, align="center", valign="vcenter", bg_color="#D9E1F2", **border)
        w.fmt("dash_total_label", bold=True, valign="vcenter", bg_color="#D9E1F2", **border)
        w.fmt("dash_share", bold=True, align="center", valign="vcenter", num_format="0%", **border)
        w.fmt("dash_share_total", bold=True, align="center", bg_color="#D9E1F2", num_format="0%", **border)
        w.fmt(
            "dash_late", align="center", valign="vcenter", num_format="0;-0;–", font_color="#9C0006", **border
        )
        w.fmt("dash_cell", text_wrap=True, **border)
        w.fmt("dash_date", num_format=L.DATE_FORMAT, align="center", **border)
        for status in self.plan.statuses:
            w.fmt(
                f"dash_status:{status.name}",
                bold=True,
                text_wrap=True,
                align="center",
                valign="vcenter",
                bg_color=status.colour,
                font_color=contrast_colour(status.colour),
                **border,
            )

    def write(self, sheets: SheetList) -> None:
        """Add the Dashboard (called before any other sheet, so it is the first tab)."""
        self.formats()
        self.ws = ws = self.w.wb.add_worksheet(L.DASHBOARD_SHEET)
        w, plan = self.w, self.plan
        statuses = [s.name for s in plan.statuses]
        n_status = len(statuses)
        total_col, closed_col, share_col, late_col = n_status + 1, n_status + 2, n_status + 3, n_status + 4
        ws.hide_gridlines(2)
        ws.set_column(0, 0, _AREA_WIDTH)
        ws.set_column(1, late_col, _FIGURE_WIDTH)
        w.text(ws, _TITLE, 0, plan.title, w.fmt("title"))
        as_of = self.content.as_of.strftime("%d %B %Y")
        subtitle = f"{plan.force} · {plan.classification} · plan revision {plan.revision} · as at {as_of}"
        # Text over a merged range is written after the merge, so it still goes through write_string.
        ws.merge_range(_SUBTITLE, 0, _SUBTITLE, late_col, "", w.fmt("subtitle"))
        w.text(ws, _SUBTITLE, 0, subtitle, w.fmt("subtitle"))

        # The table: one row per area, one column per status in vocabulary order, then the closed share.
        counts = area_counts(plan, self.content.as_of)
        rows_on_sheet = {area.id: len(actions) for area, actions in sheets}
        w.text(ws, _TABLE_TITLE, 0, "Actions by capability area and status", w.fmt("dash_section"))
        headers = ["Capability area", *statuses, "Total", "Closed", "Share closed", "Open, past due"]
        for c, header in enumerate(headers):
            fmt = w.fmt(f"dash_status:{header}") if 0 < c <= n_status else w.fmt("header")
            w.text(ws, _TABLE_HEADER, c, header, fmt)
        ws.set_row(_TABLE_HEADER, 32)
        closed = _closed_names(plan)
        closed_cols = [1 + statuses.index(name) for name in closed]
        first = _TABLE_HEADER + 1
        for i, ac in enumerate(counts):
            r = first + i
            a1 = r + 1
            area = ac.area
            n = rows_on_sheet.get(area.id, 0)
            w.text(ws, r, 0, area.name, w.fmt("dash_area"))
            status_rng = _range(area.sheet, "status", n)
            for j, name in enumerate(statuses, start=1):
                w.formula(
                    ws, r, j, f"=COUNTIFS({status_rng},{_criteria(name)})", "dash_count", ac.by_status[name]
                )
            first_letter, last_letter = L.column_letter(1), L.column_letter(n_status)
            w.formula(ws, r, total_col, f"=SUM({first_letter}{a1}:{last_letter}{a1})", "dash_total", ac.total)
            closed_sum = "+".join(f"{L.column_letter(c)}{a1}" for c in closed_cols) or "0"
            w.formula(ws, r, closed_col, f"={closed_sum}", "dash_count", ac.closed)
            tot, clo = f"{L.column_letter(total_col)}{a1}", f"{L.column_letter(closed_col)}{a1}"
            share = ac.closed / ac.total if ac.total else 0
            w.formula(ws, r, share_col, f"=IF({tot}=0,0,{clo}/{tot})", "dash_share", share)
            due_rng = _range(area.sheet, "due", n)
            open_tests = "".join(f",{status_rng},{_criteria(s, '<>')}" for s in closed)
            late = f'=COUNTIFS({due_rng},"<"&TODAY(){open_tests})'
            w.formula(ws, r, late_col, late, "dash_late", ac.past_due)
            ws.set_row(r, 30)
        last = first + len(counts) - 1
        total_row = last + 1
        w.text(ws, total_row, 0, "All areas", w.fmt("dash_total_label"))
        for c in range(1, late_col + 1):
            letter = L.column_letter(c)
            if c == share_col:
                tot, clo = (
                    f"{L.column_letter(total_col)}{total_row + 1}",
                    f"{L.column_letter(closed_col)}{total_row + 1}",
                )
                total_closed = sum(ac.closed for ac in counts)
                total_all = sum(ac.total for ac in counts)
                value: float = total_closed / total_all if total_all else 0
                w.formula(ws, total_row, c, f"=IF({tot}=0,0,{clo}/{tot})", "dash_share_total", value)
                continue
            if c <= n_status:
                value = sum(ac.by_status[statuses[c - 1]] for ac in counts)
            elif c == total_col:
                value = sum(ac.total for ac in counts)
            elif c == closed_col:
                value = sum(ac.closed for ac in counts)
            else:
                value = sum(ac.past_due for ac in counts)
            w.formula(ws, total_row, c, f"=SUM({letter}{first + 1}:{letter}{last + 1})", "dash_total", value)
        note_row = total_row + 1
        closed_names = ", ".join(closed) or "none"
        ws.merge_range(note_row, 0, note_row, late_col, "", w.fmt("note"))
        w.text(
            ws,
            note_row,
            0,
            f"Counts are live formulas over the area sheets. Closed statuses: {closed_names}. "
            "“Open, past due” counts open actions whose due date has passed on the day the file is opened.",
            w.fmt("note"),
        )
        ws.set_row(note_row, 30)

        # Printed, the chart starts a page of its own rather than being cut in two under the table.
        ws.set_h_pagebreaks([note_row + 1])
        row = self.chart(first, last, note_row + 2)
        row = self.rounds(row + 1)
        row = self.past_due(row + 1)
        row = self.open_items(row + 1)
        if self.content.returns is not None:
            row = self.returns(row + 1)
        w.page_setup(ws)
        ws.fit_to_pages(1, 0)
        w.protect(ws)

    def chart(self, first: int, last: int, row: int) -> int:
        w, ws = self.w, self.ws
        chart = w.wb.add_chart({"type": "bar", "subtype": "stacked"})
        self.status_series(chart, _TABLE_HEADER, first, last)
        # Chart text is 11 pt or more, so it still reads at 8 pt or more when the sheet is shrunk to print.
        chart.set_title({"name": "Actions by capability area and status", "name_font": {"size": 13}})
        # A bar chart draws its first category at the bottom; reversed, the areas read in plan order.
        chart.set_y_axis({"reverse": True, "num_font": {"size": 11}})
        chart.set_x_axis(
            {
                "name": "Actions",
                "name_font": {"size": 11},
                "num_font": {"size": 11},
                "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
            }
        )
        chart.set_legend({"position": "bottom", "font": {"size": 11}})
        chart.set_chartarea({"border": {"none": True}})
        height = 120 + 42 * (last - first + 1)
        chart.set_size({"width": 980, "height": height})
        checked(ws.insert_chart(row, 0, chart, {"x_offset": 4, "y_offset": 4}), "the dashboard chart")
        return row + int(height / 20) + 2

    def status_series(self, chart: Any, header: int, first: int, last: int) -> None:
        """One series per status, in its colour, over a table of the Dashboard: categories in column A from
        row `first` to `last`, a status per column from B, named by the `header` row."""
        sheet = L.DASHBOARD_SHEET
        for j, status in enumerate(self.plan.statuses, start=1):
            chart.add_series(
                {
                    "name": [sheet, header, j],
                    "categories": [sheet, first, 0, last, 0],
                    "values": [sheet, first, j, last, j],
                    "fill": {"color": status.colour},
                    "border": {"color": "#FFFFFF"},
                    "gap": 60,
                }
            )

    def rounds(self, row: int) -> int:
        """Status counts as they stood at each reporting round, and now, with a chart: is it getting better."""
        by_round = self.content.by_round
        if not by_round:
            return row
        w, ws = self.w, self.ws
        statuses = [s.name for s in self.plan.statuses]
        w.text(ws, row, 0, "Status at each reporting round", w.fmt("dash_section"))
        row += 1
        header = row
        w.text(ws, header, 0, "Round", w.fmt("header"))
        for j, name in enumerate(statuses, start=1):
            w.text(ws, header, j, name, w.fmt("header"))
        for i, (name, counts) in enumerate(by_round, start=1):
            w.text(ws, header + i, 0, name, w.fmt("dash_cell"))
            for j, status in enumerate(statuses, start=1):
                w.number(ws, header + i, j, counts.get(status, 0), "dash_count")
        first, last = header + 1, header + len(by_round)
        chart = w.wb.add_chart({"type": "column", "subtype": "stacked"})
        self.status_series(chart, header, first, last)
        chart.set_title({"name": "Actions by status at each reporting round", "name_font": {"size": 13}})
        chart.set_x_axis({"num_font": {"size": 11}})
        chart.set_y_axis({"name": "Actions", "name_font": {"size": 11}, "num_font": {"size": 11}})
        chart.set_legend({"position": "bottom", "font": {"size": 11}})
        chart.set_chartarea({"border": {"none": True}})
        height = 360
        chart.set_size({"width": 980, "height": height})
        at = last + 2
        checked(ws.insert_chart(at, 0, chart, {"x_offset": 4, "y_offset": 4}), "the chart of rounds")
        return at + int(height / 20) + 2

    def section_head(self, row: int, title: str, headers: Sequence[str], *, empty: bool) -> int:
        """A Dashboard section's title, then its table's header row (four columns, the fifth spanning E to
        H), or "None." when it has no rows; the row after."""
        w, ws = self.w, self.ws
        w.text(ws, row, 0, title, w.fmt("dash_section"))
        row += 1
        if empty:
            w.text(ws, row, 0, "None.", w.fmt("note"))
            return row + 1
        for c, header in enumerate(headers[:4]):
            w.text(ws, row, c, header, w.fmt("header"))
        ws.merge_range(row, 4, row, 7, "", w.fmt("header"))
        w.text(ws, row, 4, headers[4], w.fmt("header"))
        return row + 1

    def past_due(self, row: int) -> int:
        w, ws, plan = self.w, self.ws, self.plan
        closed = set(_closed_names(plan))
        today = self.content.as_of
        late = [(area, a) for area in plan.areas for a in area.actions if is_past_due(a, closed, today)]
        late.sort(key=lambda pair: (pair[1].due or today, pair[1].id))
        title = f"Open actions past their due date (as at {today.strftime('%d %B %Y')}): {len(late)}"
        row = self.section_head(row, title, ("Action", "ID", "Due", "Status", "Lead"), empty=not late)
        for area, action in late:
            text = (
                action.action
                if len(action.action) <= _ACTION_TEXT_LIMIT
                else action.action[:_ACTION_TEXT_LIMIT] + "…"
            )
            w.text(ws, row, 0, f"{area.name}, {action.ref or action.id}: {text}", w.fmt("dash_cell"))
            w.text(ws, row, 1, action.id, w.fmt("dash_cell"))
            checked(ws.write_datetime(row, 2, action.due, w.fmt("dash_date")), "a due date on the dashboard")
            # Every status is in the vocabulary (the model checks it), so each has its coloured format.
            w.text(ws, row, 3, action.status, w.fmt(f"dash_status:{action.status}"))
            ws.merge_range(row, 4, row, 7, "", w.fmt("dash_cell"))
            w.text(ws, row, 4, ", ".join(action.leads), w.fmt("dash_cell"))
            ws.set_row(row, L.LINE_HEIGHT * max(2, -(-len(text) // int(_AREA_WIDTH * 1.1)) + 1))
            row += 1
        return row

    def open_items(self, row: int) -> int:
        """The conflicts and refused values still awaiting the owner, per action and field."""
        w, ws = self.w, self.ws
        items = self.content.open_items
        title = f"Open items awaiting the plan owner: {len(items)}"
        row = self.section_head(row, title, ("Why", "ID", "Field", "Item", "Candidates"), empty=not items)
        for item in items:
            reason = (
                item.reason
                if len(item.reason) <= _ACTION_TEXT_LIMIT
                else item.reason[:_ACTION_TEXT_LIMIT] + "…"
            )
            w.text(ws, row, 0, reason, w.fmt("dash_cell"))
            w.text(ws, row, 1, item.action_id, w.fmt("dash_cell"))
            w.text(ws, row, 2, item.field, w.fmt("dash_cell"))
            w.text(ws, row, 3, item.item, w.fmt("dash_cell"))
            ws.merge_range(row, 4, row, 7, "", w.fmt("dash_cell"))
            w.text(
                ws, row, 4, "; ".join(candidate_label(c) for c in item.candidates)[:500], w.fmt("dash_cell")
            )
            ws.set_row(row, L.LINE_HEIGHT * 2)
            row += 1
        return row

    def returns(self, row: int) -> int:
        w, ws = self.w, self.ws
        report = self.content.returns or {}
        totals = report.get("totals", {})
        title = (
            f"Returns: {totals.get('issued', 0)} issued, {totals.get('returned', 0)} returned, "
            f"{totals.get('merged', 0)} merged, {totals.get('outstanding', 0)} outstanding"
        )
        w.text(ws, row, 0, title, w.fmt("dash_section"))
        row += 1
        for c, header in enumerate(("Recipient", "Actions", "Returned", "Merged", "Outstanding")):
            w.text(ws, row, c, header, w.fmt("header"))
        row += 1
        ordered = sorted(report.get("recipients", []), key=lambda r: (not r["outstanding"], r["recipient"]))
        for rec in ordered:
            w.text(ws, row, 0, rec["recipient"], w.fmt("dash_cell"))
            w.number(ws, row, 1, rec["actions"], "dash_count")
            w.text(ws, row, 2, "Yes" if rec["returned"] else "No", w.fmt("dash_cell"))
            merged = _day(rec["merged_at"])[:10] if rec["merged_at"] else "No"
            if rec.get("open_items"):
                merged = f"{merged}, {rec['open_items']} open"
            w.text(ws, row, 3, merged, w.fmt("dash_cell"))
            w.text(
                ws,
                row,
                4,
                "Outstanding" if rec["outstanding"] else "",
                w.fmt("dash_late" if rec["outstanding"] else "dash_cell"),
            )
            row += 1
        return row


CHANGES_HEADERS = ("When", "Who", "From return", "Action", "Field", "Old", "New")
# Narrow enough to print one A4 landscape page wide at about 85%, so the text prints at 9 pt.
CHANGES_WIDTHS = (16, 22, 20, 9, 10, 44, 44)


def changes_sheet(w: WorkbookWriter, changes: Sequence[dict[str, Any]]) -> None:
    """The journal's applied changes, newest first."""
    rows = []
    for e in changes:
        if e.get("event") == "add":
            field_name, old, new = "New action", "", _added_values(e.get("values") or {})
        else:
            field = str(e.get("field", ""))
            field_name, old, new = (
                _FIELD_HEADERS.get(field, field),
                str(e.get("old") or ""),
                str(e.get("new") or ""),
            )
        row = (
            _day(str(e.get("time", ""))),
            str(e.get("recipient", "")),
            Path(str(e.get("return", ""))).name,
            str(e.get("action_id", "")),
            field_name,
            old,
            new,
        )
        # A journalled text is at most a cell, but an added action's fields joined (or a hand-edited
        # journal) can be more: cut and marked, so the master can always be built.
        rows.append(tuple(_fit(text) for text in row))
    w.table_sheet(
        L.CHANGES_SHEET,
        CHANGES_HEADERS,
        rows,
        widths=CHANGES_WIDTHS,
        empty_note="No changes have been merged into this plan yet.",
    )


_CUT = " […]"


def _fit(text: str) -> str:
    """A text cut to what one cell holds (Excel's 32,767 characters), marked where it was cut."""
    return text if len(text) <= EXCEL_CELL_LIMIT else text[: EXCEL_CELL_LIMIT - len(_CUT)] + _CUT


def _added_values(values: dict[str, Any]) -> str:
    """An added action's text and fields, one per line, as the Changes sheet shows them."""
    lines = [str(values.get("action", ""))]
    for key in L.EDITABLE_FIELDS:
        if values.get(key):
            lines.append(f"{_FIELD_HEADERS[key]}: {values[key]}")
    return "\n".join(line for line in lines if line)


def write_master(
    plan: Plan,
    path: str | Path,
    content: MasterContent,
    *,
    key: bytes | None = None,
    clock: Clock | None = None,
    issue_id: str | None = None,
) -> IssueInfo:
    """The owner's master workbook: Dashboard, About, the area sheets, Glossary, Changes, support sheets."""
    extras = WorkbookExtras(
        first_sheets=lambda w, sheets: DashboardWriter(w, content).write(sheets),
        last_sheets=lambda w: changes_sheet(w, content.changes),
        marks=content.marks,
        instructions=MASTER_INSTRUCTIONS,
        reading=True,
    )
    return write_workbook(
        plan, path, key=key, clock=clock or utc_now, issue_id=issue_id, extras=extras, kind="master"
    )


# The owner's cover, after "this workbook shows the whole plan": what the master adds.
MASTER_INSTRUCTIONS = (
    "The Dashboard (the first sheet) counts the actions by capability area and status, lists the open actions "
    "past their due date and the open items awaiting you, and, when built with the outbox, the returns.",
    "The Changes sheet lists every change merged into the plan, newest first. A cell with a note (a red corner) "
    "changed since the plan was last published: the note says who changed it, when and what it was.",
    "For the governance board, daplan report makes a board report (PDF or HTML) from the same plan.",
)
