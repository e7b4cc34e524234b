"""The workbook layout, declared once: sheets, columns, headers, widths, editability and validations.

The writer lays workbooks out from these declarations and the reader finds its way back through them, so a
column added here appears in both. Columns are matched by header text on reading, never by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FORMAT_VERSION = 1

# Sheet names the workbooks use besides the area sheets (each one reserved in model.RESERVED_SHEET_NAMES).
ABOUT_SHEET = "About"
GLOSSARY_SHEET = "Glossary"
LISTS_SHEET = "Lists"
META_SHEET = "daplan_meta"
CONFLICTS_SHEET = "Conflicts"
# The owner's master workbook only: the dashboard (first sheet) and the journal of applied changes.
DASHBOARD_SHEET = "Dashboard"
CHANGES_SHEET = "Changes"

# Defined names the dropdowns point at: ranges on the hidden Lists sheet, so a long register still works
# (an inline list is capped at 255 characters).
STATUS_LIST_NAME = "daplan_statuses"
LEAD_LIST_NAME = "daplan_leads"

# Rows on an area sheet (0-based): a title, the key criteria, the supporting areas, a blank, then the table.
TITLE_ROW = 0
CRITERIA_ROW = 1
SUPPORTING_ROW = 2
HEADER_ROW = 4
FIRST_DATA_ROW = HEADER_ROW + 1

ColumnType = Literal["text", "date", "choice"]
Validation = Literal["status", "lead", "date"]


@dataclass(frozen=True)
class Column:
    """One column of the action table on an area sheet."""

    key: str  # the Action field it shows (or a derived value: kind, supporting, updated)
    header: str
    width: float
    editable: bool = False
    type: ColumnType = "text"
    validation: Validation | None = None
    wrap: bool = False
    help: str = ""


AREA_COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", 9, help="Do not change: it is how your return is matched to the plan."),
    Column("ref", "Ref", 6),
    Column("action", "Action", 48, wrap=True),
    Column("response", "Response", 60, editable=True, wrap=True, help="What has been done and what is next."),
    Column("target", "Target", 22, editable=True, wrap=True),
    Column("due", "Due", 12, editable=True, type="date", validation="date", help="A date, e.g. 31/03/2015."),
    Column("lead", "Lead", 24, editable=True, type="choice", validation="lead", wrap=True),
    Column("status", "Status", 13, editable=True, type="choice", validation="status"),
    Column("supporting", "Supporting leads", 22, wrap=True),
    Column("kind", "National / local", 10),
    Column("updated", "Last updated", 18, wrap=True),
    Column("notes", "Notes", 30, editable=True, wrap=True),
)

COLUMN_BY_KEY = {c.key: c for c in AREA_COLUMNS}
HEADERS = tuple(c.header for c in AREA_COLUMNS)
EDITABLE_FIELDS: tuple[str, ...] = tuple(c.key for c in AREA_COLUMNS if c.editable)
# Fields checked against the base on reading although the recipient may not change them.
LOCKED_FIELDS: tuple[str, ...] = ("ref", "action")

# The recipient of the owner's own workbooks (`build`), and how every page a person reads names the owner:
# internal recipients such as the conflicts workbook's "Plan owner: conflict resolution" read the same.
OWNER_RECIPIENT = "owner"
OWNER_LABEL = "Plan owner"


def recipient_label(recipient: str) -> str:
    """A recipient as readers see it: the owner and the owner's working recipients read "Plan owner"."""
    if recipient == OWNER_RECIPIENT or recipient.split(":")[0].strip() == OWNER_LABEL:
        return OWNER_LABEL
    return recipient


GLOSSARY_HEADERS = ("Term", "Definition")
GLOSSARY_WIDTHS = (18, 100)

DATE_FORMAT = "dd/mm/yyyy"
# Excel's row height limit, in points; the writer estimates wrapped heights up to it.
MAX_ROW_HEIGHT = 409
LINE_HEIGHT = 15


def column_letter(index: int) -> str:
    """0 -> 'A', 27 -> 'AB'."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(key: str) -> int:
    return AREA_COLUMNS.index(COLUMN_BY_KEY[key])


def quote_sheet(name: str) -> str:
    """A sheet name as Excel wants it inside a reference: always quoted, apostrophes doubled."""
    return "'" + name.replace("'", "''") + "'"
