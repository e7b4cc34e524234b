"""Applying the owner's workbook (`daplan apply`): three-way against the plan it carries.

The owner's workbook (ownerbook.py) carries the whole plan as it was when the workbook was made: the *base*.
Every value is compared three ways, as a lead's return is merged: the workbook left it as it was, nothing;
the plan still holds the base, the workbook's value is applied; the plan already holds the workbook's value,
nothing; otherwise the plan changed since (a lead's return merged in between, a hand edit) and the
workbook's value is not applied: on an action it becomes an open item of the record (kind "conflict", the
owner's workbook as its candidate), elsewhere a finding.

Every value is checked as a lead's return's is (formulas, error values, control characters, length, dates,
statuses and leads in the register as the workbook leaves it); a refused value of an action becomes an open
item of kind "rejected". Rows of the Leads, Statuses and Glossary sheets are known by their hidden identity,
so a renamed role is renamed, and the new name follows into every action that names it. The result must
keep the plan's own rules (model.plan_problems): a broken result is refused in one line and nothing is
written.

`apply_owner_workbook` decides and builds the new plan and its journal lines without writing anything; the
command commits them through the record (record.Record.commit).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import journal as J
from . import layout as L
from . import normalise as N
from . import openitems as O
from .container import open_container, read_file
from .errors import DaplanError, MetadataError
from .merge import ADDED_FIELDS, set_field, stamp_before
from .meta import MetaLimits, MetaReading, field_value
from .model import Action, Plan
from .ownerbook import (
    AREA_TABLE,
    AREAS_SHEET,
    GLOSSARY_TABLE,
    IDENTITY_HEADER,
    LEADS_TABLE,
    OWNER_RECIPIENT,
    PLAN_FIELDS,
    PLAN_SHEET,
    REMOVE_HEADER,
    STATUSES_TABLE,
    Table,
    closed_text,
    identity,
)
from .reader import (
    Finding,
    cell_ref,
    character_problem,
    find_header,
    open_workbook,
    read_meta,
    read_sheet,
    value_problem,
)
from .settle import _value_of, part_json
from .trust import judge

# The fields of an action the owner edits, in the order they are decided and journalled (the primary lead
# before the supporting ones: see `_action_lines`).
OWNER_FIELDS = ("ref", "action", "kind", "response", "target", "due", "lead", "supporting", "status", "notes")
FIELD_LABELS = {
    "ref": "ref",
    "action": "action text",
    "kind": "national / local",
    "response": "response",
    "target": "target",
    "due": "due",
    "lead": "lead",
    "supporting": "supporting leads",
    "status": "status",
    "notes": "notes",
}
APPLY_FORMAT = 1
_REMOVE_YES = {"remove", "removed", "yes", "y", "x", "true", "1", "withdraw", "withdrawn"}
_REMOVE_NO = {"", "no", "n", "false", "0", "keep"}
_COLOUR = re.compile(r"^#[0-9A-F]{6}$")
_ACTION_PATH = re.compile(r"areas\[(\d+)\]\.actions\[(\d+)\]")


class ApplyRefused(DaplanError):
    """The owner's workbook cannot be applied as it is; nothing was written."""

    hint = "correct it in the owner's workbook, save it and run `daplan apply` again (nothing was written)"


@dataclass
class Row:
    """One row of a table in the owner's workbook: its identity (an action id, a hidden key) and its cells."""

    sheet: str
    row: int  # 1-based, as Excel shows it
    key: str
    raw: dict[str, Any]  # field -> the cell's value as read (None: empty)
    cells: dict[str, str]  # field -> cell reference
    problems: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # field -> (kind, message, value)
    remove: bool = False

    def where(self, key: str = "") -> str:
        return f"{self.sheet}!{self.cells.get(key, '') or f'row {self.row}'}"


@dataclass
class OwnerReading:
    path: Path
    sha256: str
    meta: MetaReading
    base: Plan
    epoch1904: bool
    plan_fields: list[Row] | None  # None: the sheet is gone
    registers: dict[str, list[Row] | None]  # sheet -> rows
    areas: list[Row] | None
    actions: list[Row]  # rows with an ID, on the area sheets
    new_rows: list[tuple[str, Row]]  # (area id, row) of rows without an ID
    findings: list[Finding]

    @property
    def issue_id(self) -> str:
        return self.meta.meta.issue_id if self.meta.meta else ""

    @property
    def issued_at(self) -> str:
        return self.meta.meta.issued_at if self.meta.meta else ""


# -- reading ---------------------------------------------------------------------------------------------------


def read_owner_workbook(
    path: Path, plan: Plan, key: bytes | None, register: dict[str, dict[str, Any]] | None = None
) -> OwnerReading:
    """Read the owner's workbook against the plan. Raises (nothing applied) when it is not one, or is unusable."""
    file = read_file(path)
    container = open_container(file)
    container.scan_sheets(list(container.sheet_parts))
    wb = open_workbook(container)
    reading = judge(
        read_meta(wb, container, key, MetaLimits.for_plan(plan)), register, key, plan.id, owner=True
    )
    meta = reading.meta
    if reading.verdict == "missing":
        raise MetadataError(
            "this workbook has no daplan metadata, so it is not an owner's workbook made by `daplan edit`",
            file=path,
            hint="make one with `daplan edit PLAN -o FILE.xlsx`, edit it, then apply that file",
        )
    if reading.verdict == "tampered" or meta is None:
        raise MetadataError(
            f"the owner's workbook cannot be applied: {reading.problem}",
            file=path,
            hint="apply a workbook made by `daplan edit` for this plan, as saved from Excel",
        )
    if meta.plan_id != plan.id:
        raise MetadataError(
            f"this workbook was made for another plan ({meta.plan_id!r}, not {plan.id!r})",
            file=path,
            hint="check you are applying it to the right plan file",
        )
    if reading.verdict == "unsigned" and key is not None and meta.issue_id not in (register or {}):
        raise MetadataError(
            "the workbook is not signed, but the plan owner has a key: it was not made by this owner",
            file=path,
            hint="apply a workbook made by `daplan edit` on this machine",
        )
    document = meta.document()
    try:
        if document is None:
            raise ValueError("no plan in the metadata")
        base = Plan.model_validate_json(document)
    except ValueError as exc:
        raise MetadataError(
            "the plan this workbook was made from cannot be read from its metadata",
            file=path,
            hint="make a new owner's workbook with `daplan edit`",
        ) from exc
    return _Reader(path, wb, container, base).read(file.sha256, reading)


class _Reader:
    def __init__(self, path: Path, wb: Any, container: Any, base: Plan) -> None:
        self.path = path
        self.wb = wb
        self.container = container
        self.base = base
        self.findings: list[Finding] = []
        self.names = {n.casefold(): n for n in wb.sheet_names}

    def read(self, sha256: str, meta: MetaReading) -> OwnerReading:
        plan_rows = self._plan_sheet()
        registers = {t.sheet: self._register(t) for t in (LEADS_TABLE, STATUSES_TABLE, GLOSSARY_TABLE)}
        areas = self._areas()
        actions: list[Row] = []
        new_rows: list[tuple[str, Row]] = []
        for area in self.base.areas:
            self._area_sheet(area.id, area.sheet, actions, new_rows)
        saved_by = self.container.saved_by
        if saved_by and character_problem(saved_by):
            self.findings.append(
                Finding("bad-character", "the name of who last saved the workbook holds a control character")
            )
        return OwnerReading(
            self.path,
            sha256,
            meta,
            self.base,
            self.container.epoch1904,
            plan_rows,
            registers,
            areas,
            actions,
            new_rows,
            self.findings,
        )

    def _rows_of(self, name: str) -> tuple[list[list[Any]], dict[str, str]] | None:
        found = self.names.get(name.casefold())
        if found is None:
            self.findings.append(
                Finding("sheet-missing", f"the {name} sheet is gone: nothing on it was read", sheet=name)
            )
            return None
        _, rows, formulas = read_sheet(self.wb, found, self.container)
        return rows, formulas

    def _header(
        self, name: str, rows: list[list[Any]], wanted: Iterable[str]
    ) -> tuple[int, dict[str, int]] | None:
        wanted = list(wanted)
        for r, row in enumerate(rows[:10]):
            cols = {}
            for c, value in enumerate(row):
                text = " ".join(str(value).split()).casefold() if isinstance(value, str) else ""
                if text and text not in cols:
                    cols[text] = c
            if all(w.casefold() in cols for w in wanted[:2]):
                missing = [w for w in wanted if w.casefold() not in cols]
                for w in missing:
                    self.findings.append(
                        Finding(
                            "column-missing",
                            f"no column headed {w!r}: nothing in that column was read; put the header back",
                            sheet=name,
                        )
                    )
                return r, {w: cols[w.casefold()] for w in wanted if w.casefold() in cols}
        self.findings.append(
            Finding(
                "no-header",
                f"the header row ({', '.join(wanted[:3])}, …) is gone: nothing was read",
                sheet=name,
            )
        )
        return None

    def _row(
        self, name: str, r: int, row: list[Any], cols: dict[str, int], formulas: dict[str, str], key: str
    ) -> Row:
        out = Row(name, r + 1, key, {}, {})
        for fld, c in cols.items():
            value = row[c] if c < len(row) else None
            ref = cell_ref(r, c)
            out.cells[fld] = ref
            problem = value_problem(ref, value, formulas)
            if problem is not None:
                kind, message, shown = problem
                out.problems[fld] = (kind, message, N.text(shown))
                continue
            out.raw[fld] = value
        return out

    def _remove(self, out: Row, value: Any) -> None:
        word = N.text(value).casefold()
        if word in _REMOVE_YES:
            out.remove = True
        elif word not in _REMOVE_NO:
            self.findings.append(
                Finding(
                    "remove-unclear",
                    f"the Remove cell says {N.text(value)!r}; choose Remove or leave it empty (the row was kept)",
                    sheet=out.sheet,
                    cell=out.cells.get("remove", ""),
                    severity="warning",
                )
            )

    def _plan_sheet(self) -> list[Row] | None:
        got = self._rows_of(PLAN_SHEET)
        if got is None:
            return None
        rows, formulas = got
        head = self._header(PLAN_SHEET, rows, ["Field", "Value"])
        if head is None:
            return None
        r0, cols = head
        labels = {label.casefold(): key for key, label in PLAN_FIELDS}
        out = []
        for r in range(r0 + 1, len(rows)):
            row = rows[r]
            label = N.text(row[cols["Field"]]) if cols["Field"] < len(row) else ""
            key = labels.get(label.casefold())
            if key is None:
                continue
            read = self._row(PLAN_SHEET, r, row, {"value": cols["Value"]}, formulas, key)
            out.append(read)
        return out

    def _register(self, table: Table) -> list[Row] | None:
        got = self._rows_of(table.sheet)
        if got is None:
            return None
        rows, formulas = got
        headers = [IDENTITY_HEADER, *(h for _, h, _ in table.columns), REMOVE_HEADER]
        # The name column is the second looked for: the identity may be all the header a hand-made sheet lacks.
        head = self._header(table.sheet, rows, [headers[1], IDENTITY_HEADER, *headers[2:]])
        if head is None:
            return None
        r0, found = head
        if IDENTITY_HEADER not in found:
            self.findings.append(
                Finding(
                    "column-missing",
                    f"the hidden {IDENTITY_HEADER} column is gone: no row of {table.sheet} can be known for sure, so "
                    "none was read",
                    sheet=table.sheet,
                )
            )
            return None
        cols = {key: found[h] for key, h, _ in table.columns if h in found}
        if REMOVE_HEADER in found:
            cols["remove"] = found[REMOVE_HEADER]
        out = []
        for r in range(r0 + 1, len(rows)):
            row = rows[r]
            c = found[IDENTITY_HEADER]
            key = N.text(row[c]) if c < len(row) else ""
            values = [row[i] for i in cols.values() if i < len(row)]
            if not key and not any(N.text(v) for v in values):
                continue
            read = self._row(table.sheet, r, row, cols, formulas, key)
            if "remove" in read.raw:
                self._remove(read, read.raw.pop("remove"))
            read.problems.pop("remove", None)
            out.append(read)
        return out

    def _areas(self) -> list[Row] | None:
        got = self._rows_of(AREAS_SHEET)
        if got is None:
            return None
        rows, formulas = got
        headers = [h for _, h, _, _ in AREA_TABLE]
        head = self._header(AREAS_SHEET, rows, headers)
        if head is None:
            return None
        r0, found = head
        cols = {key: found[h] for key, h, _, editable in AREA_TABLE if editable and h in found}
        out = []
        for r in range(r0 + 1, len(rows)):
            row = rows[r]
            key = N.text(row[found["ID"]]) if found["ID"] < len(row) else ""
            if key:
                out.append(self._row(AREAS_SHEET, r, row, cols, formulas, key))
        return out

    def _area_sheet(
        self, area_id: str, sheet: str, actions: list[Row], new_rows: list[tuple[str, Row]]
    ) -> None:
        got = self._rows_of(sheet)
        if got is None:
            return
        rows, formulas = got
        head = find_header(rows)
        if head is None:
            self.findings.append(Finding("no-header", "the action table's header row is gone", sheet=sheet))
            return
        r0, found, twice = head
        if twice:
            self.findings.append(
                Finding(
                    "column-duplicated",
                    f"columns headed twice ({', '.join(sorted(twice))}): delete the extra ones; none was read",
                    sheet=sheet,
                )
            )
            return
        cols = {k: c for k, c in found.items() if k in OWNER_FIELDS}
        for k in OWNER_FIELDS:
            if k not in cols:
                self.findings.append(
                    Finding(
                        "column-missing",
                        f"no column headed {L.COLUMN_BY_KEY[k].header!r}: no value in it was read; put the "
                        "header back",
                        sheet=sheet,
                    )
                )
        header = rows[r0]
        for c, value in enumerate(header):
            if isinstance(value, str) and value.strip().casefold() == REMOVE_HEADER.casefold():
                cols["remove"] = c
        id_col = found["id"]
        for r in range(r0 + 1, len(rows)):
            row = rows[r]
            id_ref = cell_ref(r, id_col)
            if id_ref in formulas:
                self.findings.append(
                    Finding("formula", "the ID cell holds a formula; the row was not read", sheet, id_ref)
                )
                continue
            action_id = N.text(row[id_col]) if id_col < len(row) else ""
            values = [row[i] for i in cols.values() if i < len(row)]
            if not action_id and not any(N.text(v) for v in values):
                continue
            read = self._row(sheet, r, row, cols, formulas, action_id)
            read.cells["id"] = id_ref
            if "remove" in read.raw:
                self._remove(read, read.raw.pop("remove"))
            read.problems.pop("remove", None)
            if action_id:
                actions.append(read)
            else:
                new_rows.append((area_id, read))


# -- deciding --------------------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    """What applying the owner's workbook does: the new plan, its journal lines and the report."""

    plan: Plan
    lines: list[dict[str, Any]]
    changes: list[str]  # in the plan's terms: "IN-3: lead Head of Protect → DCI Jones"
    conflicts: list[str]
    rejected: list[str]
    findings: list[Finding]
    source: str
    already: bool = False

    @property
    def needs_person(self) -> bool:
        return bool(self.conflicts or self.rejected or any(f.severity == "problem" for f in self.findings))

    def as_json(self) -> dict[str, Any]:
        return {
            "format": APPLY_FORMAT,
            "revision": self.plan.revision,
            "source": self.source,
            "already_applied": self.already,
            "changes": self.changes,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "findings": [f.as_dict() for f in self.findings],
        }


def apply_owner_workbook(
    plan: Plan,
    path: Path,
    *,
    key: bytes | None,
    journal: Sequence[dict[str, Any]],
    now: dt.datetime | None = None,
) -> ApplyResult:
    """Decide every value of the owner's workbook against the plan; nothing is written."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    from .trust import register_of

    reading = read_owner_workbook(path, plan, key, register_of(journal))
    source = str(path)
    if any(e["event"] == "return" and e["sha256"] == reading.sha256 for e in journal):
        return ApplyResult(plan, [], [], [], [], reading.findings, source, already=True)
    return _Apply(plan, reading, journal, now, source).run()


def _short(text: str, limit: int = 60) -> str:
    one = " ⏎ ".join(text.splitlines())
    shown = one if len(one) <= limit else one[: limit - 1] + "…"
    return shown if shown else "(empty)"


def _get(data: dict[str, Any], key: str) -> str:
    """A field of an action's data as text; the data holds a due date as a date or, as dumped, as text."""
    if key == "due":
        due = data.get("due")
        return due.isoformat() if isinstance(due, dt.date) else str(due or "")
    return _value_of(data, key)


def _set_owned(data: dict[str, Any], key: str, value: str) -> None:
    """Set a field as the owner's workbook means it: its Lead column is the primary lead, replaced (a lead's
    return moves the old primary among the supporting leads; here the Supporting leads column says who
    supports)."""
    if key == "lead":
        rest = [name for name in data["leads"][1:] if name != value]
        data["leads"] = ([value] if value else []) + rest
    else:
        set_field(data, key, value)


def _text_of(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if isinstance(value, bool):
        return closed_text(value)
    return "" if value is None else str(value)


class _Apply:
    def __init__(
        self,
        plan: Plan,
        reading: OwnerReading,
        journal: Sequence[dict[str, Any]],
        now: dt.datetime,
        source: str,
    ) -> None:
        self.plan = plan
        self.reading = reading
        self.base = reading.base
        self.journal = journal
        self.now = now
        self.source = source
        self.data = plan.model_dump(mode="json")
        self.changes: list[str] = []
        self.conflicts: list[str] = []
        self.rejected: list[str] = []
        self.findings = list(reading.findings)
        self.opens: list[dict[str, Any]] = []
        self.renames: dict[str, dict[str, str]] = {"leads": {}, "statuses": {}}
        self.removals: dict[str, list[tuple[str, Row]]] = {"leads": [], "statuses": []}

    def finding(
        self, kind: str, message: str, row: Row | None = None, fld: str = "", severity: str = "problem"
    ) -> None:
        self.findings.append(
            Finding(
                kind,
                message,
                sheet=row.sheet if row else "",
                cell=row.cells.get(fld, "") if row else "",
                action_id=row.key if row and row.sheet not in _REGISTER_SHEETS else "",
                severity="warning" if severity == "warning" else "problem",
            )
        )

    # -- the parts outside the actions ----------------------------------------------------------------------
    def run(self) -> ApplyResult:
        self._plan_fields()
        self._register(LEADS_TABLE, "leads", "name")
        self._register(STATUSES_TABLE, "statuses", "name")
        self._register(GLOSSARY_TABLE, "glossary", "term")
        self._areas()
        actions = self._actions()
        self._removals(actions)
        return self._result(actions)

    def _plan_fields(self) -> None:
        for row in self.reading.plan_fields or []:
            key = row.key
            if "value" in row.problems:
                kind, message, _ = row.problems["value"]
                self.finding(kind, f"{dict(PLAN_FIELDS)[key]}: {message}; not applied", row, "value")
                continue
            theirs = N.text(row.raw.get("value"))
            if key in ("title", "classification") and not theirs:
                self.finding("empty", f"{dict(PLAN_FIELDS)[key]} cannot be empty; not applied", row, "value")
                continue
            base, current = N.text(getattr(self.base, key)), N.text(self.data[key])
            label = dict(PLAN_FIELDS)[key]
            if self._three_way(base, current, theirs, f"Plan {label}", row, "value"):
                self.data[key] = theirs
                self.changes.append(f"Plan {label}: {_short(current)} → {_short(theirs)}")

    def _three_way(self, base: str, current: str, theirs: str, what: str, row: Row, fld: str) -> bool:
        """True when the workbook's value is to be applied; a conflict outside the actions is a finding."""
        if theirs in (base, current):
            return False
        if current == base:
            return True
        self.conflicts.append(
            f"{what}: the plan changed it since the workbook was made (now {_short(current)}); "
            f"the workbook says {_short(theirs)}: not applied"
        )
        self.finding(
            "conflict", f"{what}: changed in the plan since the workbook was made; not applied", row, fld
        )
        return False

    def _theirs(self, table: Table, key: str, row: Row) -> str | None:
        """A register cell's value in its normal form, or None (with a finding) when it cannot be taken."""
        if key in row.problems:
            kind, message, _ = row.problems[key]
            self.finding(kind, f"{table.sheet} {key}: {message}; not applied", row, key)
            return None
        if key not in row.cells:
            return None  # the column is gone: said at reading
        raw = row.raw.get(key)
        text = N.text(raw)
        if key == "colour":
            colour = text.upper()
            colour = colour if colour.startswith("#") else "#" + colour
            if not _COLOUR.match(colour):
                self.finding(
                    "bad-colour", f"colour {text!r} is not a colour such as #70AD47; not applied", row, key
                )
                return None
            return colour
        if key == "closed":
            word = text.casefold()
            if word in ("yes", "y", "true", "1", "closed"):
                return "Yes"
            if word in ("no", "n", "false", "0", "open", ""):
                return "No"
            self.finding("bad-closed", f"Closed says {text!r}; choose Yes or No; not applied", row, key)
            return None
        if key in ("name", "term") and not text:
            self.finding("empty", f"a {table.sheet} row needs its {key}; the row was not applied", row, key)
            return None
        if key in ("name", "term") and len(text) > 255:
            self.finding(
                "too-long", f"a name is at most 255 characters; {len(text)} given; not applied", row, key
            )
            return None
        return text

    def _register(self, table: Table, attr: str, name_key: str) -> None:
        rows = self.reading.registers.get(table.sheet)
        if rows is None:
            return
        base_items = [x.model_dump(mode="json") for x in getattr(self.base, attr)]
        if attr == "statuses":
            for item in base_items:
                item["colour"] = item["colour"].upper()
        items: list[dict[str, Any]] = self.data[attr]
        fields = [k for k, _, _ in table.columns]
        by_key = {identity(table.prefix, i): item for i, item in enumerate(base_items)}
        seen: set[str] = set()
        what = {"leads": "Lead role", "statuses": "Status", "glossary": "Glossary term"}[attr]
        for row in rows:
            if row.key:
                if row.key in seen:
                    self.finding(
                        "duplicate-key",
                        f"the row's hidden key {row.key} is on another row too (a copied "
                        "row?); this one was not read: type new entries in an empty row",
                        row,
                    )
                    continue
                seen.add(row.key)
                base = by_key.get(row.key)
                if base is None:
                    self.finding(
                        "unknown-key",
                        f"the row's hidden key {row.key!r} is not one this workbook was "
                        "made with; the row was not read: type new entries in an empty row",
                        row,
                    )
                    continue
                name = base[name_key]
                current = next((x for x in items if x[name_key] == name), None)
                theirs = {k: self._theirs(table, k, row) for k in fields}
                if current is None:
                    if row.remove or any(t is not None and t != _text_of(base, k) for k, t in theirs.items()):
                        self.finding(
                            "conflict",
                            f"{what} {name!r} was renamed or removed in the plan since the "
                            "workbook was made; this row was not applied",
                            row,
                        )
                    continue
                if row.remove:
                    if attr == "glossary":
                        items.remove(current)
                        self.changes.append(f"{what} {name!r}: removed")
                    else:
                        self.removals[attr].append((current[name_key], row))
                    continue
                for k in fields:
                    t = theirs[k]
                    if t is None:
                        continue
                    b, c = _text_of(base, k), _text_of(current, k)
                    if attr == "statuses" and k == "colour":
                        c = c.upper()
                    if self._three_way(b, c, t, f"{what} {name!r} {k}", row, k):
                        current[k] = (t == "Yes") if k == "closed" else t
                        if k == name_key:
                            self.changes.append(f"{what} {c!r} renamed {t!r}")
                            if attr in self.renames:
                                self.renames[attr][c] = t
                        else:
                            self.changes.append(
                                f"{what} {current[name_key]!r}: {k} {_short(c)} → {_short(t)}"
                            )
            else:
                if row.remove:
                    continue
                theirs = {k: self._theirs(table, k, row) for k in fields}
                if theirs[name_key] is None:
                    continue
                entry: dict[str, Any] = {k: ("" if v is None else v) for k, v in theirs.items()}
                if attr == "statuses":
                    if theirs.get("colour") is None:
                        self.finding(
                            "bad-colour",
                            f"the new status {entry['name']!r} needs a colour such as #70AD47; not added",
                            row,
                            "colour",
                        )
                        continue
                    entry["closed"] = entry.get("closed") == "Yes"
                if any(x[name_key] == entry[name_key] for x in items):
                    self.finding(
                        "duplicate",
                        f"{what} {entry[name_key]!r} is in the plan already; the new row was not added",
                        row,
                        name_key,
                    )
                    continue
                items.append(entry)
                self.changes.append(f"{what} {entry[name_key]!r}: added")
        missing = sorted(set(by_key) - seen, key=lambda k: int(k[len(table.prefix) :]))
        for k in missing:
            self.findings.append(
                Finding(
                    "row-deleted",
                    f"the row of {what.lower()} {by_key[k][name_key]!r} was deleted; nothing is removed by deleting "
                    "a row: choose Remove in its Remove column",
                    sheet=table.sheet,
                    severity="warning",
                )
            )

    def _areas(self) -> None:
        by_id = {a["id"]: a for a in self.data["areas"]}
        base_by_id = {a.id: a for a in self.base.areas}
        for row in self.reading.areas or []:
            base = base_by_id.get(row.key)
            current = by_id.get(row.key)
            if base is None or current is None:
                self.finding("unknown-id", f"area {row.key!r} is not in the plan; its row was not read", row)
                continue
            for key in ("name", "key_criteria", "supporting_areas"):
                if key in row.problems:
                    kind, message, _ = row.problems[key]
                    self.finding(kind, f"area {row.key} {key}: {message}; not applied", row, key)
                    continue
                if key not in row.cells:
                    continue
                theirs = N.text(row.raw.get(key))
                if key == "supporting_areas":
                    theirs = "\n".join(x.strip() for x in theirs.split("\n") if x.strip())
                    b, c = "\n".join(base.supporting_areas), "\n".join(current["supporting_areas"])
                else:
                    b, c = str(getattr(base, key)), str(current[key])
                if key == "name" and not theirs:
                    self.finding("empty", f"area {row.key} needs a name; not applied", row, key)
                    continue
                if self._three_way(b, c, theirs, f"Area {row.key} {key.replace('_', ' ')}", row, key):
                    current[key] = (
                        theirs.split("\n")
                        if key == "supporting_areas" and theirs
                        else ([] if key == "supporting_areas" else theirs)
                    )
                    self.changes.append(
                        f"Area {row.key}: {key.replace('_', ' ')} {_short(c)} → {_short(theirs)}"
                    )

    # -- the actions ------------------------------------------------------------------------------------------
    def _vocab(self, attr: str, name_key: str = "name") -> tuple[N.Vocabulary, Callable[[str], str]]:
        names = [x[name_key] for x in self.data[attr]]
        renames = self.renames.get(attr, {})
        vocab = N.Vocabulary(tuple(names + [old for old in renames if old not in names]))
        return vocab, lambda name: renames.get(name, name)

    def _actions(self) -> dict[str, dict[str, Any]]:
        """Action id -> its data as it will be (None for a withdrawn one is kept in self.withdrawn)."""
        status_vocab, status_map = self._vocab("statuses")
        lead_vocab, lead_map = self._vocab("leads")
        self.status_vocab, self.lead_vocab = status_vocab, lead_vocab
        self.status_map, self.lead_map = status_map, lead_map
        current_index = {a["id"]: a for area in self.data["areas"] for a in area["actions"]}
        base_index = {a.id: a for _, a in self.base.iter_actions()}
        self.orig = {a.id: a for _, a in self.plan.iter_actions()}
        final: dict[str, dict[str, Any]] = {}
        self.withdrawn: dict[str, Row] = {}
        rows: dict[str, Row] = {}
        twice: set[str] = set()
        for row in self.reading.actions:
            if row.key in rows or row.key in twice:
                twice.add(row.key)
                self.finding(
                    "duplicate-id", f"ID {row.key} appears more than once; neither row was read", row, "id"
                )
                continue
            rows[row.key] = row
        for dup in twice:
            rows.pop(dup, None)
        for action_id, row in rows.items():
            if action_id not in base_index:
                if action_id in current_index:
                    self.finding(
                        "out-of-scope",
                        f"action {action_id} was added to the plan after this workbook was "
                        "made; its row was not read (make a new owner's workbook to edit it)",
                        row,
                        "id",
                    )
                else:
                    self.finding(
                        "unknown-id",
                        f"ID {action_id!r} is not in the plan; leave the ID empty for a new action",
                        row,
                        "id",
                    )
                continue
            if action_id not in current_index:
                self.finding(
                    "not-in-plan",
                    f"action {action_id} is no longer in the plan (withdrawn or undone since "
                    "the workbook was made); its row was not applied",
                    row,
                    "id",
                )
                continue
            if row.remove:
                self.withdrawn[action_id] = row
        # Renames follow into every action, then the workbook's values are decided three-way on top.
        for action_id, data in current_index.items():
            if action_id in self.withdrawn:
                continue
            leads = [lead_map(x) for x in data["leads"]]
            status = status_map(data["status"])
            if leads != data["leads"] or status != data["status"]:
                final[action_id] = {**data, "leads": leads, "status": status}
        for action_id, row in rows.items():
            if action_id in self.withdrawn or action_id not in current_index or action_id not in base_index:
                continue
            self._action_row(row, base_index[action_id], final, current_index[action_id])
        missing = sorted(set(base_index) - set(rows) - twice)
        for action_id in missing:
            if action_id in current_index:
                self.findings.append(
                    Finding(
                        "row-deleted",
                        f"the row of action {action_id} was deleted; nothing is withdrawn by deleting a row: choose "
                        "Remove in its Remove column",
                        sheet=next(
                            (a.sheet for a in self.base.areas if any(x.id == action_id for x in a.actions)),
                            "",
                        ),
                        action_id=action_id,
                        severity="warning",
                    )
                )
        return final

    def _value(self, row: Row, key: str) -> tuple[str | None, tuple[str, str] | None]:
        """The workbook's value of a field in its normal form, or (None, (finding kind, message)) when refused;
        (None, None) when the column is not there."""
        if key in row.problems:
            kind, message, _ = row.problems[key]
            return None, (kind, message)
        if key not in row.cells:
            return None, None
        raw = row.raw.get(key)
        header = L.COLUMN_BY_KEY[key].header
        try:
            if key == "due":
                return N.date(raw, self.reading.epoch1904), None
            if key == "kind":
                word = N.text(raw).casefold()
                if word in ("national", "local"):
                    return word, None
                return None, ("unknown-kind", f"{header}: {N.text(raw)!r} is not National or Local")
            if key == "status":
                if not N.text(raw):
                    return None, ("unknown-status", "Status was cleared; choose a status from the list")
                return self.status_map(N.choice(raw, self.status_vocab)), None
            if key == "lead":
                return self.lead_map(N.choice(raw, self.lead_vocab)) if N.text(raw) else "", None
            if key == "supporting":
                names = []
                for part in re.split(r"[\n;]", N.text(raw)):
                    if part.strip():
                        name = self.lead_map(N.choice(part, self.lead_vocab))
                        if name not in names:
                            names.append(name)
                return "\n".join(names), None
            text = N.text(raw)
            if key == "action" and not text:
                return None, (
                    "empty",
                    "the Action text cannot be emptied; to withdraw the action choose Remove",
                )
            return text, None
        except N.DateProblem as exc:
            return None, ("bad-date", str(exc))
        except ValueError as exc:
            kind = "unknown-lead" if key in ("lead", "supporting") else f"unknown-{key}"
            return None, (kind, f"{header}: {exc}")

    def _action_row(
        self, row: Row, base_action: Action, final: dict[str, dict[str, Any]], current: dict[str, Any]
    ) -> None:
        action_id = row.key
        data = final.get(action_id) or dict(current)
        data = {**data, "leads": list(data["leads"])}
        base_values = {k: field_value(base_action, k) for k in OWNER_FIELDS}
        base_values["lead"] = self.lead_map(base_values["lead"])
        base_values["supporting"] = "\n".join(self.lead_map(x) for x in base_action.leads[1:])
        base_values["status"] = self.status_map(base_values["status"])
        changed = False
        for key in OWNER_FIELDS:
            theirs, refused = self._value(row, key)
            current_value = _get(data, key)
            if key == "supporting" and theirs is not None:
                primary = data["leads"][0] if data["leads"] else ""
                theirs = "\n".join(x for x in theirs.split("\n") if x != primary)
            if refused is not None:
                kind, message = refused
                shown = row.problems[key][2] if key in row.problems else N.text(row.raw.get(key))
                if shown == base_values[key]:
                    continue  # a value the plan itself holds is no change
                self._open(
                    "rejected",
                    action_id,
                    key,
                    base_values[key],
                    current_value,
                    shown,
                    f"{kind}: {message} ({row.where(key)})",
                    kind,
                )
                self.rejected.append(f"{action_id}: {FIELD_LABELS[key]} {_short(shown)} refused: {message}")
                continue
            if theirs is None or theirs == base_values[key] or theirs == current_value:
                continue
            if current_value != base_values[key]:
                self._open(
                    "conflict",
                    action_id,
                    key,
                    base_values[key],
                    current_value,
                    theirs,
                    "the plan changed since the owner's workbook was made",
                )
                self.conflicts.append(
                    f"{action_id}: {FIELD_LABELS[key]}: the plan now says {_short(current_value)} (changed since the "
                    f"workbook was made); the workbook says {_short(theirs)}: open item"
                )
                continue
            _set_owned(data, key, theirs)
            changed = True
        if changed or action_id in final:
            final[action_id] = data

    def _open(
        self,
        kind: str,
        action_id: str,
        key: str,
        base: str,
        current: str,
        value: str,
        reason: str,
        finding: str = "",
    ) -> None:
        meta = self.reading.meta.meta
        self.opens.append(
            {
                "event": "open",
                "time": self.now.isoformat(),
                "revision": 0,
                "item": "",
                "kind": kind,
                "action_id": action_id,
                "field": key,
                "base": base,
                "current": current,
                "reason": reason,
                "candidates": [
                    {
                        "source": self.source,
                        "sha256": self.reading.sha256,
                        "recipient": OWNER_RECIPIENT,
                        "issue_id": meta.issue_id if meta else "",
                        "value": value,
                    }
                ],
                "finding": finding,
            }
        )

    def _removals(self, final: dict[str, dict[str, Any]]) -> None:
        in_use: dict[str, dict[str, list[str]]] = {"leads": {}, "statuses": {}}
        for area in self.data["areas"]:
            for a in area["actions"]:
                if a["id"] in self.withdrawn:
                    continue
                data = final.get(a["id"], a)
                for name in data["leads"]:
                    in_use["leads"].setdefault(name, []).append(a["id"])
                in_use["statuses"].setdefault(data["status"], []).append(a["id"])
        for attr in ("leads", "statuses"):
            what = "Lead role" if attr == "leads" else "Status"
            for name, row in self.removals[attr]:
                users = in_use[attr].get(name, [])
                if users:
                    shown = ", ".join(users[:5]) + (" …" if len(users) > 5 else "")
                    self.finding(
                        "in-use",
                        f"{what} {name!r} is still named by {len(users)} action(s) ({shown}): not "
                        "removed; give them another first",
                        row,
                    )
                    continue
                self.data[attr] = [x for x in self.data[attr] if x["name"] != name]
                self.changes.append(f"{what} {name!r}: removed")

    # -- the result -------------------------------------------------------------------------------------------
    def _new_actions(self) -> list[tuple[str, Row, dict[str, Any]]]:
        used = {a["id"] for area in self.data["areas"] for a in area["actions"]}
        used |= {a.id for _, a in self.base.iter_actions()}
        used |= J.retired_ids(self.journal)
        used |= {str(e["action_id"]) for e in self.journal if e["event"] in ("add", "withdraw")}
        statuses = [s["name"] for s in self.data["statuses"]]
        default_status = "Not started" if "Not started" in statuses else statuses[0]
        out = []
        for area_id, row in self.reading.new_rows:
            if row.remove:
                continue
            values: dict[str, str] = {}
            for key in OWNER_FIELDS:
                value, refused = self._value(row, key)
                if refused is not None:
                    kind, message = refused
                    if key in row.problems or N.text(row.raw.get(key)):
                        self.finding(kind, f"in a new row, {message}; the value was not taken", row, key)
                    continue
                if value:
                    values[key] = value
            if not values.get("action"):
                if values:
                    self.finding(
                        "no-action-text", "a new row without Action text was not added", row, "action"
                    )
                continue
            n = 1
            while f"{area_id}-N{n}" in used:
                n += 1
            new_id = f"{area_id}-N{n}"
            used.add(new_id)
            data: dict[str, Any] = {
                "id": new_id,
                "ref": "",
                "kind": "local",
                "action": "",
                "leads": [],
                "status": default_status,
            }
            for key in OWNER_FIELDS:
                if key in values:
                    _set_owned(data, key, values[key])
            data["updated"] = self.now.isoformat()
            data["updated_by"] = OWNER_RECIPIENT
            out.append((area_id, row, data))
            area_name = next(a["name"] for a in self.data["areas"] if a["id"] == area_id)
            lead = f", lead {data['leads'][0]}" if data["leads"] else ""
            self.changes.append(f"{new_id}: new action in {area_name}{lead}: {_short(data['action'])}")
        return out

    def _result(self, final: dict[str, dict[str, Any]]) -> ApplyResult:
        stamp = self.now.isoformat()
        meta = self.reading.meta.meta
        origin = {
            "return": self.source,
            "sha256": self.reading.sha256,
            "issue_id": meta.issue_id if meta else "",
            "recipient": OWNER_RECIPIENT,
        }
        lines: list[dict[str, Any]] = []
        action_lines: list[dict[str, Any]] = []
        for area in self.data["areas"]:
            for a in area["actions"]:
                data = final.get(a["id"])
                if data is None or a["id"] in self.withdrawn:
                    continue
                orig = self.orig[a["id"]]
                touched = False
                for key in OWNER_FIELDS:
                    old, new = field_value(orig, key), _get(data, key)
                    if old == new:
                        continue
                    touched = True
                    action_lines.append(
                        {
                            "event": "change",
                            "time": stamp,
                            "revision": 0,
                            **origin,
                            "action_id": a["id"],
                            "field": key,
                            "old": old,
                            "new": new,
                            "stamp": stamp_before(orig, key),
                        }
                    )
                    self.changes.append(f"{a['id']}: {FIELD_LABELS[key]} {_short(old)} → {_short(new)}")
                if touched:
                    data["updated"] = stamp
                    data["updated_by"] = OWNER_RECIPIENT
        new_actions = self._new_actions()
        withdraw_lines = []
        for area in self.data["areas"]:
            kept = []
            for position, a in enumerate(area["actions"]):
                if a["id"] in self.withdrawn:
                    withdraw_lines.append(
                        {
                            "event": "withdraw",
                            "time": stamp,
                            "revision": 0,
                            **origin,
                            "action_id": a["id"],
                            "area": area["id"],
                            "position": position,
                            "action": a,
                        }
                    )
                    self.changes.append(f"{a['id']}: withdrawn ({_short(a['action'])})")
                    continue
                kept.append(final.get(a["id"], a))
            kept += [data for area_id, _, data in new_actions if area_id == area["id"]]
            area["actions"] = kept
        add_lines = [
            {
                "event": "add",
                "time": stamp,
                "revision": 0,
                **origin,
                "action_id": data["id"],
                "area": area_id,
                "sheet": row.sheet,
                "row": row.row,
                "values": {k: _get(data, k) for k in ADDED_FIELDS},
            }
            for area_id, row, data in new_actions
        ]
        plan_lines = []
        before = self.plan.model_dump(mode="json")
        for name in (
            "title",
            "force",
            "classification",
            "background",
            "overarching_capabilities",
            "statuses",
            "leads",
            "glossary",
        ):
            if before[name] != self.data[name]:
                plan_lines.append(
                    {
                        "event": "plan",
                        "time": stamp,
                        "revision": 0,
                        **origin,
                        "field": name,
                        "old": part_json(before[name]),
                        "new": part_json(self.data[name]),
                    }
                )
        for old_area, new_area in zip(before["areas"], self.data["areas"], strict=True):
            parts = ("name", "key_criteria", "supporting_areas")
            if any(old_area[k] != new_area[k] for k in parts):
                plan_lines.append(
                    {
                        "event": "plan",
                        "time": stamp,
                        "revision": 0,
                        **origin,
                        "field": f"areas.{old_area['id']}",
                        "old": part_json({k: old_area[k] for k in parts}),
                        "new": part_json({k: new_area[k] for k in parts}),
                    }
                )
        lines = plan_lines + action_lines + add_lines + withdraw_lines + self.opens
        if not lines:
            return ApplyResult(self.plan, [], [], self.conflicts, self.rejected, self.findings, self.source)
        revision = self.plan.revision + 1
        self.data["revision"] = revision
        new_plan = _validated(self.data, self.plan)
        head = {
            "event": "return",
            "time": stamp,
            "revision": revision,
            **origin,
            "issued_at": self.reading.issued_at,
            "proposals_pending": 0,
        }
        lines = [head, *lines]
        ids = O.next_item_ids(revision)
        for e in lines:
            e["revision"] = revision
            if e["event"] == "open":
                e["item"] = next(ids)
        return ApplyResult(
            new_plan, lines, self.changes, self.conflicts, self.rejected, self.findings, self.source
        )


_REGISTER_SHEETS = {LEADS_TABLE.sheet, STATUSES_TABLE.sheet, GLOSSARY_TABLE.sheet, PLAN_SHEET, AREAS_SHEET}


def _validated(data: dict[str, Any], plan: Plan) -> Plan:
    """The new plan, or ApplyRefused naming the first rule the workbook's edits would break."""
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(x) for x in error["loc"])
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        text = f"{where}: {message}" if where else message
        text = _name_actions(text, data)
        raise ApplyRefused(f"the plan after these edits would break a rule: {text}") from None


def _name_actions(text: str, data: dict[str, Any]) -> str:
    """`areas[2].actions[4]` (or areas.2.actions.4) named by the action's id, as the owner knows it."""

    def name(m: re.Match[str]) -> str:
        try:
            return f"action {data['areas'][int(m[1])]['actions'][int(m[2])]['id']}"
        except (IndexError, KeyError):
            return m[0]

    text = re.sub(r"areas\.(\d+)\.actions\.(\d+)", name, text)
    return _ACTION_PATH.sub(name, text)


def render(result: ApplyResult, dry_run: bool) -> str:
    """The report of an apply, in the plan's terms."""
    name = Path(result.source).name
    if result.already:
        return f"{name} was applied already: nothing new to apply."
    out = []
    verb = "Would apply" if dry_run else "Applied"
    if result.changes:
        out.append(f"{verb} {len(result.changes)} change(s) from {name}:")
        out += [f"  {line}" for line in result.changes]
    else:
        out.append(f"Nothing to apply from {name}: it matches the plan.")
    if result.conflicts:
        out.append(f"Conflicts ({len(result.conflicts)}): changed in the plan since the workbook was made:")
        out += [f"  {line}" for line in result.conflicts]
    if result.rejected:
        out.append(f"Refused values ({len(result.rejected)}), kept on record as open items:")
        out += [f"  {line}" for line in result.rejected]
    shown = [f for f in result.findings if f.kind != "conflict"]
    if shown:
        out.append(f"Findings ({len(shown)}):")
        for f in shown:
            where = f"{f.sheet}!{f.cell}: " if f.sheet and f.cell else (f"{f.sheet}: " if f.sheet else "")
            out.append(f"  {f.severity}: {where}{f.message}")
    if result.lines and not dry_run:
        out.append(f"Plan now at revision {result.plan.revision}.")
    elif dry_run:
        out.append("Dry run: nothing was written.")
    return "\n".join(out)


def to_json(result: ApplyResult) -> str:
    return json.dumps(result.as_json(), indent=2, ensure_ascii=False)
