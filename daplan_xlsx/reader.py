"""Reading returned workbooks back: which row is which, and what each editable field now says.

Sheets are found by name (or, renamed, by their header and IDs), columns by header text, rows by the ID in
the row itself, so sorting, filtering, moving and restyling change nothing. Every value is normalised and
re-validated; anything doubtful becomes a finding with its sheet and cell, never a change.

Values are read with python-calamine (cached values, fast); formulas are found in the sheet XML, because a
cached value must never pass for something the recipient typed.

A row that is not read as its action's row (an action outside the scope, an ID not in the plan, an ID twice)
gives one finding at its ID cell and, so that nothing it says is lost, one finding of the same kind and
message per field whose value differs from what is known of that action, carrying the field, its cell and
the value (see `_ReturnReader._refuse_row`). So does a row whose Ref or Action is not its ID's (the ID
column sorted on its own swaps IDs between rows): nothing it says is applied to either action.

Every value read, in an issued row or in a row proposed without an ID, passes the same checks: no formula,
no error value (`#REF!`, with or without a formula), no character a workbook or a terminal must not get
(XML-forbidden and control characters, which calamine gives unescaped from Excel's `_x000B_` form), and
within Excel's cell limit.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from . import layout as L
from . import normalise as N
from .container import MAX_SHEET_ROWS, Container, ReturnFile, open_container, scan_sheet
from .errors import DaplanError, MetadataError, ReturnUnreadable
from .meta import (
    FINGERPRINT_FIELDS,
    MetaLimits,
    MetaReading,
    decode,
    field_value,
    fingerprint_joined,
    text_hash,
)
from .model import EXCEL_CELL_LIMIT, Action, Plan
from .trust import judge

HEADER_SCAN_ROWS = 30
SUPPORT_SHEETS = {
    n.casefold()
    for n in (
        L.ABOUT_SHEET,
        L.GLOSSARY_SHEET,
        L.LISTS_SHEET,
        L.META_SHEET,
        L.CONFLICTS_SHEET,
        L.DASHBOARD_SHEET,
        L.CHANGES_SHEET,
    )
}
_HEADER_KEYS = {" ".join(c.header.split()).casefold(): c.key for c in L.AREA_COLUMNS}
# Old or hand-made workbooks sometimes carry these spellings of the same columns.
_HEADER_KEYS.update({"progress": "response", "response/progress": "response", "ref.": "ref"})
_HEADER_WORDS = max(len(k.split()) for k in _HEADER_KEYS)
# Header cells as the writer spells them, looked up before any normalising.
_HEADER_EXACT = {c.header: c.key for c in L.AREA_COLUMNS if _HEADER_KEYS.get(c.header.casefold()) == c.key}

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
    field: str = ""  # the field a refused value was meant for (an editable one, or ref/action)
    value: str = ""  # the refused value itself, normalised as text

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class BaseValues(Mapping[str, dict[str, str]]):
    """Action id -> normalised base values, computed on first use (a large return needs few of them)."""

    def __init__(self, ids: Iterable[str], raw: Callable[[str], dict[str, str]], norm: Normaliser) -> None:
        self._ids = list(ids)
        self._known = set(self._ids)
        self._raw = raw
        self._norm = norm
        self._cache: dict[str, dict[str, str]] = {}

    def __getitem__(self, action_id: str) -> dict[str, str]:
        if action_id not in self._known:
            raise KeyError(action_id)
        if action_id not in self._cache:
            raw = self._raw(action_id)
            self._cache[action_id] = {k: self._norm.base(k, raw.get(k, "")) for k in L.EDITABLE_FIELDS}
        return self._cache[action_id]

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class ReturnedRow:
    """One action's row in a return. An untouched row (same fingerprint as issued) keeps no values."""

    action_id: str
    sheet: str
    row: int  # 1-based, as Excel shows it
    columns: dict[str, int] = field(default_factory=dict, repr=False)  # field -> 0-based column
    read: dict[str, str] | None = None  # valid, normalised editable values; None when untouched
    base: Mapping[str, dict[str, str]] | None = field(default=None, repr=False, compare=False)

    @property
    def untouched(self) -> bool:
        return self.read is None

    @property
    def values(self) -> dict[str, str]:
        """Every readable editable field as it now stands."""
        if self.read is not None:
            return self.read
        return dict(self.base[self.action_id]) if self.base is not None else {}

    def changed(self, base: dict[str, str]) -> dict[str, str]:
        """The fields whose value differs from `base`."""
        if self.read is None:
            return {}
        return {k: v for k, v in self.read.items() if v != base.get(k, "")}

    def cell(self, key: str) -> str:
        return cell_ref(self.row - 1, self.columns[key]) if key in self.columns else ""

    @property
    def cells(self) -> dict[str, str]:
        return {k: self.cell(k) for k in self.values if k in self.columns}


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
    base: Mapping[str, dict[str, str]]  # action id -> normalised base values (lazy)
    rows: dict[str, ReturnedRow]
    proposals: list[Proposal]
    findings: list[Finding]
    saved_by: str = ""  # who last saved the workbook, per its document properties

    @property
    def recipient(self) -> str:
        return self.meta.meta.recipient if self.meta.meta else ""

    @property
    def issue_id(self) -> str:
        return self.meta.meta.issue_id if self.meta.meta else ""


class Normaliser:
    """normalise.* bound to one plan's vocabularies, with the lookups built once."""

    def __init__(self, plan: Plan, epoch1904: bool = False) -> None:
        self.epoch1904 = epoch1904
        self.vocab = {
            "status": N.Vocabulary(tuple(plan.status_names())),
            "lead": N.Vocabulary(tuple(plan.lead_names())),
        }

    def field(self, key: str, value: object) -> str:
        """One editable field's value in its normal form; raises ValueError (or DateProblem) when invalid."""
        kind = L.COLUMN_BY_KEY[key].type
        if kind == "date":
            return N.date(value, self.epoch1904)
        if kind == "choice":
            return N.choice(value, self.vocab[key])
        return N.text(value)

    def base(self, key: str, value: str) -> str:
        try:
            return self.field(key, value)
        except ValueError:
            # A base value no longer in the vocabulary compares as it was written.
            return N.text(value)


def cell_ref(row0: int, col0: int) -> str:
    return f"{L.column_letter(col0)}{row0 + 1}"


def normalise_field(key: str, value: object, plan: Plan, epoch1904: bool = False) -> str:
    """One editable field's value in its normal form; raises ValueError (or DateProblem) when invalid."""
    return Normaliser(plan, epoch1904).field(key, value)


def plan_base(plan: Plan, action_ids: Iterable[str], index: Mapping[str, Any] | None = None) -> BaseValues:
    """The plan's current values as a base (for a two-way comparison, and for merging)."""
    index = plan.action_index() if index is None else index
    ids = list(action_ids)
    return BaseValues(
        ids, lambda i: {k: field_value(index[i], k) for k in L.EDITABLE_FIELDS}, Normaliser(plan)
    )


# Characters a value may not hold: those XML 1.0 forbids (a workbook cannot hold them; calamine gives them
# unescaped from Excel's `_x000B_` form), DEL and the C1 controls (a terminal acts on some of them), and the
# non-characters U+FFFE and U+FFFF. Tab, line feed and carriage return are text.
_BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def character_problem(text: str) -> str | None:
    """Why a text read from a return cannot be taken: a character a workbook or a terminal must not get."""
    bad = _BAD_CHARACTER.search(text)
    if bad is None:
        return None
    return (
        f"contains the control character U+{ord(bad.group()):04X} at position {bad.start() + 1}, which is "
        "not taken into the plan; delete it (it is invisible in Excel: retype the text)"
    )


class PlanView:
    """What reading a return needs of its plan, worked out once: a merge reads many returns of one plan.

    The plan must not change while a view of it is in use.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._normalisers: dict[bool, Normaliser] = {}

    @cached_property
    def index(self) -> dict[str, Action]:
        """Action id -> action (an untouched three-way return needs none of it)."""
        return self.plan.action_index()

    def normaliser(self, epoch1904: bool) -> Normaliser:
        if epoch1904 not in self._normalisers:
            self._normalisers[epoch1904] = Normaliser(self.plan, epoch1904)
        return self._normalisers[epoch1904]

    @cached_property
    def ids(self) -> list[str]:
        """Every action id, in plan order."""
        return list(self.index)

    @cached_property
    def home(self) -> dict[str, str]:
        """Action id -> the sheet of its area."""
        return {a.id: area.sheet for area in self.plan.areas for a in area.actions}

    @cached_property
    def current(self) -> BaseValues:
        """The plan's values, normalised (computed per action on first use)."""
        return plan_base(self.plan, self.ids, self.index)

    @cached_property
    def locked(self) -> dict[str, list[str]]:
        """Action id -> [ref, hash of the action text], as the metadata holds them."""
        return {i: [N.text(a.ref), text_hash(N.text(a.action))] for i, a in self.index.items()}

    @cached_property
    def meta_limits(self) -> MetaLimits:
        """How large a return's metadata may be for this plan."""
        return MetaLimits.for_plan(self.plan)


def open_workbook(container: Container) -> Any:
    import python_calamine

    try:
        data = container.parser_bytes()
        if data is not None:
            # The very bytes that were checked and hashed (with the sheets scanned ahead inflated).
            return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        return python_calamine.CalamineWorkbook.from_path(str(container.path))
    except Exception as exc:  # calamine raises its own hierarchy; any failure here means unreadable
        raise ReturnUnreadable(
            f"the workbook cannot be read ({type(exc).__name__}: {exc})", file=container.path
        ) from exc


def read_sheet(wb: Any, name: str, container: Container) -> tuple[Any, list[list[Any]], dict[str, str]]:
    """A sheet (parsed once), its rows from A1 and its formulas; its extent is checked before parsing."""
    path = container.path
    part = container.sheet_parts.get(name)
    formulas = scan_sheet(container, part, name) if part else {}
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
    return sheet, rows, formulas


def find_header(rows: list[list[Any]]) -> tuple[int, dict[str, int], dict[str, list[int]]] | None:
    """The header row, field -> its column, and field -> every column of a field headed more than once."""
    for r, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        cols: dict[str, int] = {}
        twice: dict[str, list[int]] = {}
        for c, value in enumerate(row):
            if value and isinstance(value, str):
                key = _HEADER_EXACT.get(value)
                if key is None:
                    # Split no further than a header's words go: a long text in the rows above costs little.
                    words = value.split(None, _HEADER_WORDS)
                    if len(words) > _HEADER_WORDS:
                        continue
                    key = _HEADER_KEYS.get(" ".join(words).casefold())
                if key and key not in cols:
                    cols[key] = c
                elif key:
                    twice.setdefault(key, [cols[key]]).append(c)
        if "id" in cols and "action" in cols:
            return r, cols, twice
    return None


def read_meta(
    wb: Any, container: Container, key: bytes | None, limits: MetaLimits | None = None
) -> MetaReading:
    names = {n.casefold(): n for n in wb.sheet_names}
    name = names.get(L.META_SHEET.casefold())
    if name is None:
        return MetaReading("missing", None, problem=f"the workbook has no {L.META_SHEET} sheet")
    try:
        return decode(read_sheet(wb, name, container)[1], key, limits)
    except DaplanError as exc:
        exc.file = exc.file or str(container.path)
        raise


def read_return(
    path: str | Path | ReturnFile,
    plan: Plan,
    key: bytes | None = None,
    *,
    view: PlanView | None = None,
    register: Mapping[str, dict[str, Any]] | None = None,
) -> ReturnReading:
    """Read a returned workbook against the plan. Raises ReturnUnreadable/MetadataError when unusable.

    `path` may be a file already read (`container.read_file`); `view`, a view of this plan shared by reads;
    `register`, the plan's record of issued workbooks (trust.register_of), which the metadata must match.
    """
    source = path if isinstance(path, ReturnFile) else Path(path)
    return _ReturnReader(source, view if view is not None else PlanView(plan), key, register).read()


_MIDNIGHT = dt.time(0)


def _fingerprint_text(value: Any) -> str:
    # The cell as the writer wrote it: text as is, dates as ISO, empty as ''. Anything else cannot match.
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == _MIDNIGHT else "\0" + value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return "\0" + repr(value)


def _fingerprint_cells(cells: Iterable[Any]) -> str:
    return "\x1f".join([v if type(v) is str else _fingerprint_text(v) for v in cells])


class _ReturnReader:
    def __init__(
        self,
        source: Path | ReturnFile,
        view: PlanView,
        key: bytes | None,
        register: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.register = register
        self.source = source
        self.path = source.path if isinstance(source, ReturnFile) else source
        self.view = view
        self.plan = view.plan
        self.key = key
        self.findings: list[Finding] = []
        self.rows: dict[str, ReturnedRow] = {}
        self.duplicates: set[str] = set()
        self.proposals: list[Proposal] = []
        self.touched = False  # a row of the scope was read cell by cell
        # Action id -> where its row is, for rows refused because their Ref or Action is not the ID's own.
        self.refused: dict[str, str] = {}
        # id() of a locked table -> action text hash -> ids (see `_owner_of`), built on first use
        self._by_action: dict[int, dict[str, list[str]]] = {}
        self.twice: dict[str, list[int]] = {}

    @property
    def plan_ids(self) -> Mapping[str, Action]:
        return self.view.index

    def read(self) -> ReturnReading:
        try:
            return self._read()
        except DaplanError as exc:
            # Raised where the file is not known (the metadata's base values, inflated on first use).
            exc.file = exc.file or str(self.path)
            raise

    def _read(self) -> ReturnReading:
        p = self.path
        self.container = container = open_container(self.source)
        # Every sheet read is scanned first, so the parser is handed each one inflated once.
        container.scan_sheets(
            name
            for name in container.sheet_parts
            if name.casefold() not in SUPPORT_SHEETS or name.casefold() == L.META_SHEET.casefold()
        )
        wb = open_workbook(container)
        self.norm = self.view.normaliser(container.epoch1904)
        if container.macro_enabled:
            self.findings.append(
                Finding(
                    "macros",
                    "the workbook contains macros; values were read and the macros ignored",
                    severity="warning",
                )
            )
        meta = judge(
            read_meta(wb, container, self.key, self.view.meta_limits), self.register, self.key, self.plan.id
        )
        if meta.meta is not None and meta.meta.plan_id != self.plan.id:
            raise MetadataError(
                f"this workbook was issued for another plan ({meta.meta.plan_id!r}, not {self.plan.id!r})",
                file=p,
                hint="check you are merging into the right plan file",
            )
        self._choose_base(meta)
        area_sheets = 0
        for name in wb.sheet_names:
            if name.casefold() in SUPPORT_SHEETS:
                continue
            area_sheets += self._read_sheet(wb, name)
        if area_sheets == 0:
            raise ReturnUnreadable(
                "the workbook has no area sheet with an action table (no header row with ID and Action)",
                file=p,
                hint="send back the workbook that was issued, with its sheets and header rows intact",
            )
        for dup in sorted(self.duplicates):
            self.rows.pop(dup, None)
        if self.issued is not None and self.touched:
            # Damaged base values are found now, while the return can still be refused as a whole.
            self.issued.load_base()
        saved_by = container.saved_by
        problem = character_problem(saved_by) if saved_by else None
        if problem:
            self.findings.append(
                Finding(
                    "bad-character",
                    f"the name of who last saved the workbook, {saved_by!r} (File > Info > Properties), "
                    f"{problem}; the name is not used",
                )
            )
            saved_by = ""
        # Every ID read is in the scope, once: only a count short of it means a row is missing.
        found = self.duplicates.union(self.refused)
        if len(self.rows) + len(found) < len(self.scope):
            home = self.view.home
            for action_id in self.scope:
                if action_id not in self.rows and action_id not in found:
                    # Found on the sheet it was issued on; the row itself is gone.
                    self.findings.append(
                        Finding(
                            "row-deleted",
                            f"action {action_id} is missing from the workbook (row deleted or ID changed)",
                            sheet=home.get(action_id, ""),
                            action_id=action_id,
                        )
                    )
        return ReturnReading(
            p,
            container.sha256,
            meta,
            self.two_way,
            self.scope,
            self.base,
            self.rows,
            self.proposals,
            self.findings,
            saved_by,
        )

    def _choose_base(self, meta: MetaReading) -> None:
        """Three-way against the issued base when the metadata is sound; else two-way against the plan."""
        self.issued = None
        if meta.verdict in ("intact", "unsigned") and meta.meta is not None:
            self.issued = issued = meta.meta
            self.scope = issued.scope
            self.base: Mapping[str, dict[str, str]] = BaseValues(self.scope, issued.base_of, self.norm)
            self.locked = issued.locked
            self.fingerprints = issued.rows
            self.expected_sheets = set(issued.sheets.values())
            self.two_way = False
            return
        if meta.verdict == "tampered":
            self.findings.append(Finding("metadata-tampered", meta.problem, sheet=L.META_SHEET))
        else:
            self.findings.append(
                Finding(
                    "metadata-missing",
                    "no issue metadata: this is a two-way comparison against the current plan, not a three-way one",
                    severity="warning",
                )
            )
        self.scope = list(self.view.ids)
        self.base = self.view.current
        self.locked = self.view.locked
        self.fingerprints = {}
        self.expected_sheets = {a.sheet for a in self.plan.areas}
        self.two_way = True

    def _read_sheet(self, wb: Any, name: str) -> int:
        """Read one sheet's action table; 1 when it is an area sheet, else 0."""
        sheet, sheet_rows, formulas = read_sheet(wb, name, self.container)
        header = find_header(sheet_rows)
        if header is None:
            if name in self.expected_sheets:
                self.findings.append(
                    Finding(
                        "no-header", "the action table's header row (ID, Ref, Action, …) is gone", sheet=name
                    )
                )
            else:
                self.findings.append(
                    Finding("sheet-ignored", "not an area sheet; ignored", sheet=name, severity="warning")
                )
            return 0
        header_row, cols, twice = header
        if name not in self.expected_sheets:
            self.findings.append(
                Finding(
                    "sheet-renamed",
                    "an area sheet under a new name; read by its header and IDs",
                    sheet=name,
                    severity="warning",
                )
            )
        _check_merged(sheet, name, header_row, cols, self.path)
        self._check_columns(name, header_row, cols, twice)
        # Columns headed twice are read as refused values only (see `_read_row`).
        self.twice = twice
        # The fast path compares a row's fingerprint with the one issued; it needs every fingerprinted
        # column, once, and no formula or error value on the sheet (a formula's cached value could pass
        # for the issued text; an error value reads as an empty cell).
        fp_cols = [cols[k] for k in FINGERPRINT_FIELDS if k in cols]
        fast = (
            bool(self.fingerprints) and not formulas and not twice and len(fp_cols) == len(FINGERPRINT_FIELDS)
        )
        if not fast:
            for r in range(header_row + 1, len(sheet_rows)):
                row = sheet_rows[r]
                if any(row):  # '' and None: an empty row (a lone 0 or FALSE is not an action either)
                    self._read_row(name, r, row, cols, formulas)
            return 1
        id_col = cols["id"]
        width = max(fp_cols) + 1
        cells_of = itemgetter(*fp_cols)
        # Only a date cell holds a date in a row as issued: it is spelt as the writer did before joining.
        due_at = FINGERPRINT_FIELDS.index("due")
        fingerprints, rows, duplicates, base = self.fingerprints, self.rows, self.duplicates, self.base
        refused = self.refused
        for r in range(header_row + 1, len(sheet_rows)):
            row = sheet_rows[r]
            # An ID that is not text has no fingerprint (no text equals another type).
            issued = fingerprints.get(row[id_col]) if len(row) >= width else None
            if issued is not None:
                action_id = row[id_col]
                if action_id not in rows and action_id not in duplicates and action_id not in refused:
                    cells = cells_of(row)
                    if type(cells[due_at]) is str:
                        try:
                            joined = "\x1f".join(cells)
                        except TypeError:  # a number, a date in another column: each as the writer spelt it
                            joined = _fingerprint_cells(cells)
                    else:
                        joined = _fingerprint_cells(cells)
                    if fingerprint_joined(joined) == issued:
                        rows[action_id] = ReturnedRow(action_id, name, r + 1, cols, None, base)
                        continue
            elif not any(row):  # '' and None: an empty row (a lone 0 or FALSE is not an action either)
                continue
            self._read_row(name, r, row, cols, formulas)
        return 1

    def _check_columns(
        self, name: str, header_row: int, cols: dict[str, int], twice: dict[str, list[int]]
    ) -> None:
        """An editable column missing (renamed, deleted) or headed twice is a problem: its edits cannot be
        read for sure, and must not vanish without a word."""
        for editable in L.EDITABLE_FIELDS:
            if editable not in cols:
                header_text = L.COLUMN_BY_KEY[editable].header
                self.findings.append(
                    Finding(
                        "column-missing",
                        f"no column headed {header_text!r} (renamed or deleted): no {header_text} on this "
                        f"sheet was read; put the header {header_text!r} back in row {header_row + 1} and "
                        "send the workbook again",
                        sheet=name,
                        cell=f"{L.column_letter(L.column_index(editable))}{header_row + 1}",
                    )
                )
        for key, columns in twice.items():
            header_text = L.COLUMN_BY_KEY[key].header
            cells = ", ".join(cell_ref(header_row, c) for c in columns)
            self.findings.append(
                Finding(
                    "column-duplicated",
                    f"{len(columns)} columns are headed {header_text!r} ({cells}): "
                    + (
                        f"no {header_text} on this sheet was applied; delete the extra column and send "
                        "the workbook again"
                        if key in L.EDITABLE_FIELDS
                        else "the first was read; delete the extra column"
                    ),
                    sheet=name,
                    cell=cell_ref(header_row, columns[1]),
                )
            )

    def _read_row(
        self, sheet: str, r: int, row: list[Any], cols: dict[str, int], formulas: dict[str, str]
    ) -> None:
        findings = self.findings

        def cell(key: str) -> Any:
            c = cols.get(key)
            return row[c] if c is not None and c < len(row) else None

        id_ref = cell_ref(r, cols["id"])
        action_id = N.text(cell("id"))
        if id_ref in formulas:
            what = "an error value" if formulas[id_ref].startswith("#") else "a formula"
            findings.append(Finding("formula", f"the ID cell holds {what} {formulas[id_ref]}", sheet, id_ref))
            return
        if not action_id:
            self._read_proposal(sheet, r, row, cols, formulas)
            return
        if action_id in self.rows or action_id in self.duplicates or action_id in self.refused:
            first = self.rows.get(action_id)
            if first:
                where = f" (also {first.sheet}!{cell_ref(first.row - 1, cols['id'])})"
            elif action_id in self.refused:
                where = f" (also {self.refused[action_id]})"
            else:
                where = ""
            message = f"ID {action_id} appears more than once{where}; neither row was read"
            findings.append(Finding("duplicate-id", message, sheet, id_ref, action_id))
            base = self.base[action_id]
            if first is not None and action_id not in self.duplicates:
                # The first copy was read as the action's row: what it changed is refused now. Its
                # invalid values already have their own findings.
                changed = first.changed(base)
                for key in L.EDITABLE_FIELDS:
                    if key in changed:
                        findings.append(
                            Finding(
                                "duplicate-id",
                                message,
                                first.sheet,
                                first.cell(key),
                                action_id,
                                field=key,
                                value=changed[key],
                            )
                        )
            self.duplicates.add(action_id)
            self._refuse_row("duplicate-id", message, sheet, r, row, cols, formulas, action_id, base)
            return
        if action_id not in self.plan_ids:
            message = f"ID {action_id!r} is not in the plan (was it changed?)"
            findings.append(Finding("unknown-id", message, sheet, id_ref, action_id))
            self._refuse_row("unknown-id", message, sheet, r, row, cols, formulas, action_id, {})
            return
        if action_id not in self.base:
            message = f"action {action_id} was not issued in this workbook; its row was not read"
            findings.append(Finding("out-of-scope", message, sheet, id_ref, action_id))
            # Against the plan as it stands: a pasted copy of the plan's row says nothing.
            current = self._current()[action_id]
            self._refuse_row("out-of-scope", message, sheet, r, row, cols, formulas, action_id, current)
            return
        if action_id in self.locked and self._not_its_row(sheet, r, row, cols, formulas, action_id):
            return
        got: dict[str, str] = {}
        twice = self.twice
        for key, c in cols.items():
            if key not in L.EDITABLE_FIELDS:
                continue
            value = row[c] if c < len(row) else None

            def reject(kind: str, message: str, shown: object = value, key: str = key, c: int = c) -> None:
                # The refused value travels with the finding, so nothing a return said is lost.
                findings.append(
                    Finding(kind, message, sheet, cell_ref(r, c), action_id, field=key, value=N.text(shown))
                )

            if twice and key in twice:
                self._refuse_twice(sheet, r, row, key, formulas, action_id)
                continue
            ref = cell_ref(r, c) if formulas else ""
            problem = value_problem(ref, value, formulas)
            if problem is not None and not (
                # A character the plan itself holds (DEL, a C1 control) is no change: it is not refused.
                problem[0] == "bad-character" and N.text(value) == self.base[action_id].get(key)
            ):
                reject(*problem)
                continue
            header = L.COLUMN_BY_KEY[key].header
            if L.COLUMN_BY_KEY[key].type == "choice" and not N.text(value) and self.base[action_id].get(key):
                reject(f"unknown-{key}", f"{header} was cleared; choose a value from the list")
                continue
            try:
                got[key] = self.norm.field(key, value)
            except N.DateProblem as exc:
                reject("bad-date", str(exc))
            except ValueError as exc:
                reject(f"unknown-{key}", f"{header}: {exc}")
        self.rows[action_id] = ReturnedRow(action_id, sheet, r + 1, cols, got, self.base)
        self.touched = True

    def _not_its_row(
        self,
        sheet: str,
        r: int,
        row: list[Any],
        cols: dict[str, int],
        formulas: dict[str, str],
        action_id: str,
    ) -> bool:
        """Refuse the row as a whole when its Ref or Action is not the ID's own; True when refused.

        The Ref and Action are what tie a row to its ID: sorting the ID column alone (Excel's "sort
        selection only") moves IDs between rows, and each row's values would otherwise land on another
        action.
        """
        was_ref, was_hash = self.locked[action_id]
        changed: list[tuple[str, str, str]] = []  # field, cell, value as read
        now: dict[str, str] = {}
        for key in L.LOCKED_FIELDS:
            c = cols.get(key)
            if c is None:
                continue
            ref = cell_ref(r, c)
            raw = row[c] if c < len(row) else None
            if ref in formulas:  # a formula or an error value: not the text issued, whatever it shows
                changed.append((key, ref, formulas[ref]))
                continue
            now[key] = text = N.text(raw)
            if (key == "ref" and text != was_ref) or (key == "action" and text_hash(text) != was_hash):
                changed.append((key, ref, text))
        if not changed:
            return False
        id_ref = cell_ref(r, cols["id"])
        cells = " and ".join(f"{L.COLUMN_BY_KEY[k].header} {ref}" for k, ref, _ in changed)
        other = self._owner_of(now.get("ref", ""), now["action"]) if "action" in now else ""
        if other and other != action_id:
            message = (
                f"the row of ID {action_id} holds the Ref and Action of {other} ({cells}): was the ID "
                "column sorted on its own? Nothing in this row was read; put the IDs back beside their "
                "actions (undo the sort, or sort whole rows) and send the workbook again"
            )
        else:
            message = (
                f"the {cells} of action {action_id} were changed; they are fixed, so nothing in this row "
                "was read: put them back as issued and send the workbook again"
            )
        self.findings.append(Finding("locked-changed", message, sheet, id_ref, action_id))
        for key, ref, value in changed:
            self.findings.append(
                Finding("locked-changed", message, sheet, ref, action_id, field=key, value=value)
            )
        self.refused[action_id] = f"{sheet}!{id_ref}"
        base = self.base[action_id]
        self._refuse_row("locked-changed", message, sheet, r, row, cols, formulas, action_id, base)
        return True

    def _owner_of(self, ref: str, action: str) -> str:
        """The action whose Action text (and Ref, when several share the text) these are: in the scope
        first, then anywhere in the plan; '' when none."""
        digest = text_hash(action)
        for locked in (self.locked, self.view.locked):
            index = self._by_action.get(id(locked))
            if index is None:
                index = self._by_action[id(locked)] = {}
                for action_id, (_, was_hash) in locked.items():
                    index.setdefault(was_hash, []).append(action_id)
            found = index.get(digest, [])
            if found:
                return next((i for i in found if locked[i][0] == ref), found[0])
        return ""

    def _refuse_twice(
        self, sheet: str, r: int, row: list[Any], key: str, formulas: dict[str, str], action_id: str
    ) -> None:
        """A field headed twice on the sheet: each of its cells that differs from the base is refused."""
        header = L.COLUMN_BY_KEY[key].header
        base = self.base[action_id].get(key, "")
        for c in self.twice[key]:
            ref = cell_ref(r, c)
            raw = row[c] if c < len(row) else None
            problem = value_problem(ref, raw, formulas)
            if problem is not None:
                kind, message, shown = problem
                value = N.text(shown)
            else:
                kind, message = (
                    "column-duplicated",
                    f"the sheet has {len(self.twice[key])} {header} columns; none was read",
                )
                try:
                    value = self.norm.field(key, raw)
                except ValueError:
                    value = N.text(raw)
                if value == base:
                    continue
            self.findings.append(Finding(kind, message, sheet, ref, action_id, field=key, value=value))

    def _read_proposal(
        self, sheet: str, r: int, row: list[Any], cols: dict[str, int], formulas: dict[str, str]
    ) -> None:
        """A row without an ID: a proposed new action, its values checked as an issued row's are."""
        values: dict[str, str] = {}
        for key, c in cols.items():
            if key == "id":
                continue
            raw = row[c] if c < len(row) else None
            ref = cell_ref(r, c)
            problem = value_problem(ref, raw, formulas)
            if problem is not None:
                kind, message, shown = problem
                self.findings.append(
                    Finding(
                        kind,
                        f"in a row proposed without an ID, {message}; the value was not taken",
                        sheet,
                        ref,
                        field=key if key in L.EDITABLE_FIELDS or key in L.LOCKED_FIELDS else "",
                        value=N.text(shown),
                    )
                )
                continue
            text = N.text(raw)
            if text:
                values[key] = text
        if values:
            self.proposals.append(Proposal(sheet, r + 1, values))
            self.findings.append(
                Finding(
                    "new-row",
                    "a row without an ID: a proposed new action",
                    sheet,
                    cell_ref(r, 0),
                    severity="warning",
                )
            )

    def _current(self) -> BaseValues:
        """The plan's values, normalised, for the rows outside the scope (built on first use)."""
        return self.view.current

    def _refuse_row(
        self,
        kind: str,
        message: str,
        sheet: str,
        r: int,
        row: list[Any],
        cols: dict[str, int],
        formulas: dict[str, str],
        action_id: str,
        known: Mapping[str, str],
    ) -> None:
        """One finding per editable field of a row not read whose value differs from `known`, with its
        cell and value: a formula as its text, a value not valid as typed as its text."""
        for key in L.EDITABLE_FIELDS:
            c = cols.get(key)
            if c is None:
                continue
            ref = cell_ref(r, c)
            raw = row[c] if c < len(row) else None
            if ref in formulas:
                value = formulas[ref]
            else:
                try:
                    value = self.norm.field(key, raw)
                except ValueError:  # refused anyway: kept as typed
                    value = N.text(raw)
            if value != known.get(key, ""):
                self.findings.append(Finding(kind, message, sheet, ref, action_id, field=key, value=value))


def value_problem(ref: str, value: Any, formulas: dict[str, str]) -> tuple[str, str, object] | None:
    """Why a cell's value cannot be taken, as (finding kind, message, value to show), or None.

    `formulas` holds the sheet's formulas and error values by cell (see container.scan_sheet); `ref` is the
    cell's reference, or '' when the sheet has none.
    """
    if ref in formulas:
        found = formulas[ref]
        if found.startswith("#"):
            return "error-value", f"the error value {found}, not a value: type the value itself", found
        return "formula", f"a formula, not a value: {found}", found
    if isinstance(value, str):
        if len(value) > EXCEL_CELL_LIMIT:
            return "too-long", f"{len(value):,} characters; a cell holds {EXCEL_CELL_LIMIT:,}", value
        problem = character_problem(value)
        if problem:
            return "bad-character", problem, value
    return None


def _check_merged(sheet: Any, name: str, header_row: int, cols: dict[str, int], path: Path) -> None:
    """Merged cells over the table's rows and columns hide values: refuse them. Beside it they are fine."""
    table = set(cols.values())
    for (r1, c1), (r2, c2) in sheet.merged_cell_ranges or []:
        if r2 >= header_row and any(c1 <= c <= c2 for c in table):
            span = f"{cell_ref(r1, c1)}:{cell_ref(r2, c2)}"
            raise ReturnUnreadable(
                f"cells {span} are merged across the action table",
                file=path,
                sheet=name,
                cell=span,
                hint="unmerge them (Home > Merge & Center) and save again",
            )
