"""Reading returned workbooks back: which row is which, and what each editable field now says.

Sheets are found by name (or, renamed, by their header and IDs), columns by header text, rows by the ID in
the row itself, so sorting, filtering, moving and restyling change nothing. Every value is normalised and
re-validated; anything doubtful becomes a finding with its sheet and cell, never a change.

Values are read with python-calamine (cached values, fast); formulas are found in the sheet XML, because a
cached value must never pass for something the recipient typed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import layout as L
from . import normalise as N
from .container import Container, formula_cells, open_container
from .errors import MetadataError, ReturnUnreadable
from .meta import MetaReading, decode, field_value, text_hash
from .model import EXCEL_CELL_LIMIT, Plan

MAX_SHEET_ROWS = 100_000
HEADER_SCAN_ROWS = 30
SUPPORT_SHEETS = {
    n.casefold() for n in (L.ABOUT_SHEET, L.GLOSSARY_SHEET, L.LISTS_SHEET, L.META_SHEET, L.CONFLICTS_SHEET)
}
_HEADER_KEYS = {" ".join(c.header.split()).casefold(): c.key for c in L.AREA_COLUMNS}
# Old or hand-made workbooks sometimes carry these spellings of the same columns.
_HEADER_KEYS.update({"progress": "response", "response/progress": "response", "ref.": "ref"})

Severity = Literal["problem", "warning"]


@dataclass
class Finding:
    """Something in a return that needs a person's eye. Problems keep a value out; warnings inform."""

    kind: str
    message: str
    sheet: str = ""
    cell: str = ""
    action_id: str = ""
    severity: Severity = "problem"
    field: str = ""  # the editable field a refused value was meant for
    value: str = ""  # the refused value itself, normalised as text

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class ReturnedRow:
    action_id: str
    sheet: str
    row: int  # 1-based, as Excel shows it
    values: dict[str, str] = field(default_factory=dict)  # valid, normalised editable values
    cells: dict[str, str] = field(default_factory=dict)  # field -> cell reference


@dataclass
class Proposal:
    """A row added without an ID: a proposed new action."""

    sheet: str
    row: int
    values: dict[str, str]


@dataclass
class ReturnReading:
    path: Path
    sha256: str
    meta: MetaReading
    two_way: bool
    scope: list[str]
    base: dict[str, dict[str, str]]  # action id -> normalised base values
    rows: dict[str, ReturnedRow]
    proposals: list[Proposal]
    findings: list[Finding]

    @property
    def recipient(self) -> str:
        return self.meta.meta.recipient if self.meta.meta else ""

    @property
    def issue_id(self) -> str:
        return self.meta.meta.issue_id if self.meta.meta else ""


def cell_ref(row0: int, col0: int) -> str:
    return f"{L.column_letter(col0)}{row0 + 1}"


def normalise_field(key: str, value: object, plan: Plan, epoch1904: bool = False) -> str:
    """One editable field's value in its normal form; raises ValueError (or DateProblem) when invalid."""
    column = L.COLUMN_BY_KEY[key]
    if column.type == "date":
        return N.date(value, epoch1904)
    if column.type == "choice":
        names = plan.status_names() if key == "status" else plan.lead_names()
        return N.choice(value, N.Vocabulary(tuple(names)))
    return N.text(value)


def plan_base(plan: Plan, action_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    index = plan.action_index()
    return {
        i: {k: _base_norm(k, field_value(index[i], k), plan) for k in L.EDITABLE_FIELDS} for i in action_ids
    }


def _base_norm(key: str, value: str, plan: Plan) -> str:
    try:
        return normalise_field(key, value, plan)
    except ValueError:
        # A base value that is no longer in the vocabulary compares as it was written.
        return N.text(value)


def open_workbook(container: Container) -> Any:
    import python_calamine

    try:
        return python_calamine.CalamineWorkbook.from_path(str(container.path))
    except Exception as exc:  # calamine raises its own hierarchy; any failure here means unreadable
        raise ReturnUnreadable(
            f"the workbook cannot be read ({type(exc).__name__}: {exc})", file=container.path
        ) from exc


def _rows(wb: Any, name: str, path: Path) -> list[list[Any]]:
    try:
        sheet = wb.get_sheet_by_name(name)
    except Exception as exc:
        raise ReturnUnreadable(f"sheet {name!r} cannot be read ({exc})", file=path, sheet=name) from exc
    if sheet.total_height > MAX_SHEET_ROWS + L.FIRST_DATA_ROW:
        raise ReturnUnreadable(
            f"the sheet has {sheet.total_height:,} rows; a return is read up to {MAX_SHEET_ROWS:,}",
            file=path,
            sheet=name,
            hint="delete the rows below the table and save again",
        )
    rows: list[list[Any]] = sheet.to_python(skip_empty_area=False)
    return rows


def _find_header(rows: list[list[Any]]) -> tuple[int, dict[str, int]] | None:
    for r, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        cols: dict[str, int] = {}
        for c, value in enumerate(row):
            if isinstance(value, str):
                key = _HEADER_KEYS.get(" ".join(value.split()).casefold())
                if key and key not in cols:
                    cols[key] = c
        if "id" in cols and "action" in cols:
            return r, cols
    return None


def read_meta(wb: Any, path: Path, key: bytes | None) -> MetaReading:
    names = {n.casefold(): n for n in wb.sheet_names}
    name = names.get(L.META_SHEET.casefold())
    if name is None:
        return MetaReading("missing", None, problem=f"the workbook has no {L.META_SHEET} sheet")
    return decode(_rows(wb, name, path), key)


def read_return(path: str | Path, plan: Plan, key: bytes | None = None) -> ReturnReading:
    """Read a returned workbook against the plan. Raises ReturnUnreadable/MetadataError when unusable."""
    p = Path(path)
    container = open_container(p)
    wb = open_workbook(container)
    findings: list[Finding] = []
    if container.macro_enabled:
        findings.append(
            Finding(
                "macros",
                "the workbook contains macros; values were read and the macros ignored",
                severity="warning",
            )
        )
    meta = read_meta(wb, p, key)
    if meta.meta is not None and meta.meta.plan_id != plan.id:
        raise MetadataError(
            f"this workbook was issued for another plan ({meta.meta.plan_id!r}, not {plan.id!r})",
            file=p,
            hint="check you are merging into the right plan file",
        )
    if meta.verdict in ("intact", "unsigned") and meta.meta is not None:
        scope = list(meta.meta.scope)
        base = {}
        for i in scope:
            raw = meta.meta.base_of(i)
            base[i] = {k: _base_norm(k, raw.get(k, ""), plan) for k in L.EDITABLE_FIELDS}
        locked = dict(meta.meta.locked)
        expected_sheets = set(meta.meta.sheets.values())
        two_way = False
    else:
        if meta.verdict == "tampered":
            findings.append(Finding("metadata-tampered", meta.problem, sheet=L.META_SHEET))
        else:
            findings.append(
                Finding(
                    "metadata-missing",
                    "no issue metadata: this is a two-way comparison against the current plan, not a three-way one",
                    severity="warning",
                )
            )
        scope = [a.id for _, a in plan.iter_actions()]
        base = plan_base(plan, scope)
        locked = {a.id: [N.text(a.ref), text_hash(N.text(a.action))] for _, a in plan.iter_actions()}
        expected_sheets = {a.sheet for a in plan.areas}
        two_way = True

    scope_set = set(scope)
    plan_ids = plan.action_index().keys()
    rows: dict[str, ReturnedRow] = {}
    duplicates: set[str] = set()
    proposals: list[Proposal] = []
    area_sheets = 0

    for name in wb.sheet_names:
        if name.casefold() in SUPPORT_SHEETS:
            continue
        sheet_rows = _rows(wb, name, p)
        header = _find_header(sheet_rows)
        if header is None:
            if name in expected_sheets:
                findings.append(
                    Finding(
                        "no-header", "the action table's header row (ID, Ref, Action, …) is gone", sheet=name
                    )
                )
            else:
                findings.append(
                    Finding("sheet-ignored", "not an area sheet; ignored", sheet=name, severity="warning")
                )
            continue
        header_row, cols = header
        area_sheets += 1
        if name not in expected_sheets:
            findings.append(
                Finding(
                    "sheet-renamed",
                    "an area sheet under a new name; read by its header and IDs",
                    sheet=name,
                    severity="warning",
                )
            )
        _check_merged(wb, name, header_row, p)
        formulas = formula_cells(p, container.sheet_parts[name]) if name in container.sheet_parts else {}
        for editable in L.EDITABLE_FIELDS:
            if editable not in cols:
                header_text = L.COLUMN_BY_KEY[editable].header
                findings.append(
                    Finding(
                        "column-missing",
                        f"no {header_text!r} column: those values were not read",
                        sheet=name,
                        severity="warning",
                    )
                )
        for r in range(header_row + 1, len(sheet_rows)):
            row = sheet_rows[r]
            if not any(v not in ("", None) for v in row):
                continue
            _read_row(
                plan,
                container,
                name,
                r,
                row,
                cols,
                formulas,
                scope_set,
                plan_ids,
                base,
                locked,
                rows,
                duplicates,
                proposals,
                findings,
            )
    if area_sheets == 0:
        raise ReturnUnreadable(
            "the workbook has no area sheet with an action table (no header row with ID and Action)",
            file=p,
            hint="send back the workbook that was issued, with its sheets and header rows intact",
        )
    for dup in sorted(duplicates):
        rows.pop(dup, None)
    for action_id in scope:
        if action_id not in rows and action_id not in duplicates:
            findings.append(
                Finding(
                    "row-deleted",
                    f"action {action_id} is missing from the workbook (row deleted or ID changed)",
                    action_id=action_id,
                )
            )
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    return ReturnReading(p, digest, meta, two_way, scope, base, rows, proposals, findings)


def _check_merged(wb: Any, name: str, header_row: int, path: Path) -> None:
    sheet = wb.get_sheet_by_name(name)
    for (r1, c1), (r2, c2) in sheet.merged_cell_ranges or []:
        if r2 >= header_row:
            span = f"{cell_ref(r1, c1)}:{cell_ref(r2, c2)}"
            raise ReturnUnreadable(
                f"cells {span} are merged across the action table",
                file=path,
                sheet=name,
                cell=span,
                hint="unmerge them (Home > Merge & Center) and save again",
            )


def _read_row(
    plan: Plan,
    container: Container,
    sheet: str,
    r: int,
    row: list[Any],
    cols: dict[str, int],
    formulas: dict[str, str],
    scope: set[str],
    plan_ids: Any,
    base: dict[str, dict[str, str]],
    locked: dict[str, list[str]],
    rows: dict[str, ReturnedRow],
    duplicates: set[str],
    proposals: list[Proposal],
    findings: list[Finding],
) -> None:
    def cell(key: str) -> Any:
        c = cols.get(key)
        return row[c] if c is not None and c < len(row) else None

    id_ref = cell_ref(r, cols["id"])
    action_id = N.text(cell("id"))
    if id_ref in formulas:
        findings.append(Finding("formula", f"the ID cell holds a formula {formulas[id_ref]}", sheet, id_ref))
        return
    if not action_id:
        values = {k: N.text(cell(k)) for k in cols if k != "id" and N.text(cell(k))}
        if values:
            proposals.append(Proposal(sheet, r + 1, values))
            findings.append(
                Finding(
                    "new-row",
                    "a row without an ID: a proposed new action",
                    sheet,
                    cell_ref(r, 0),
                    severity="warning",
                )
            )
        return
    if action_id in rows or action_id in duplicates:
        first = rows.get(action_id)
        where = f" (also {first.sheet}!{cell_ref(first.row - 1, cols['id'])})" if first else ""
        findings.append(
            Finding(
                "duplicate-id",
                f"ID {action_id} appears more than once{where}; neither row was read",
                sheet,
                id_ref,
                action_id,
            )
        )
        duplicates.add(action_id)
        return
    if action_id not in plan_ids:
        findings.append(
            Finding("unknown-id", f"ID {action_id!r} is not in the plan (was it changed?)", sheet, id_ref)
        )
        return
    if action_id not in scope:
        findings.append(
            Finding(
                "out-of-scope",
                f"action {action_id} was not issued in this workbook; its row was not read",
                sheet,
                id_ref,
                action_id,
            )
        )
        return
    got = ReturnedRow(action_id, sheet, r + 1)
    for key, c in cols.items():
        ref = cell_ref(r, c)
        value = row[c] if c < len(row) else None

        def reject(kind: str, message: str, shown: object = value, key: str = key, ref: str = ref) -> None:
            # The refused value travels with the finding, so nothing a return said is lost.
            findings.append(Finding(kind, message, sheet, ref, action_id, field=key, value=N.text(shown)))

        if ref in formulas:
            reject("formula", f"a formula, not a value: {formulas[ref]}", formulas[ref])
            continue
        if isinstance(value, str) and len(value) > EXCEL_CELL_LIMIT:
            reject("too-long", f"{len(value):,} characters; a cell holds {EXCEL_CELL_LIMIT:,}")
            continue
        header = L.COLUMN_BY_KEY[key].header
        if key in L.LOCKED_FIELDS and action_id in locked:
            was_ref, was_hash = locked[action_id]
            now = N.text(value)
            if (key == "ref" and now != was_ref) or (key == "action" and text_hash(now) != was_hash):
                reject("locked-changed", f"the {header} is fixed; the change was not read")
            continue
        if key not in L.EDITABLE_FIELDS:
            continue
        if L.COLUMN_BY_KEY[key].type == "choice" and not N.text(value) and base[action_id].get(key):
            reject(f"unknown-{key}", f"{header} was cleared; choose a value from the list")
            continue
        try:
            got.values[key] = normalise_field(key, value, plan, container.epoch1904)
            got.cells[key] = ref
        except N.DateProblem as exc:
            reject("bad-date", str(exc))
        except ValueError as exc:
            reject(f"unknown-{key}", f"{header}: {exc}")
    rows[action_id] = got
