"""Edit issued workbooks as a recipient (or a forger) would, with openpyxl, for the distribute/merge tests.

Rows are found by the ID in column "ID" on whatever area sheet they are, columns by header text, so the
helpers work on any issued workbook (a lead's, an area's, a conflicts workbook). Text is always stored as
text: `cell.data_type = "s"` after assigning a str, so "=..." stays what was typed, not a formula.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

from daplan_xlsx import layout as L
from daplan_xlsx import meta as M
from daplan_xlsx.model import Plan
from daplan_xlsx.writer import cell_value

HEADER_ROW = L.HEADER_ROW + 1  # 1-based, as openpyxl counts
FIRST_ROW = L.FIRST_DATA_ROW + 1
_HEADERS = {c.header.casefold(): c.key for c in L.AREA_COLUMNS}
NOT_AREA = {
    n.casefold() for n in (L.ABOUT_SHEET, L.GLOSSARY_SHEET, L.LISTS_SHEET, L.META_SHEET, L.CONFLICTS_SHEET)
}


def write_cell(cell: Cell, value: object) -> None:
    """Store `value` as a recipient typing it would: text stays text, a date is a date, None clears."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


def write_formula(cell: Cell, formula: str) -> None:
    """A real formula (what pasting `=…` without an apostrophe does)."""
    cell.value = formula
    cell.data_type = "f"


class ReturnEditor:
    """An issued workbook opened for editing; save() writes the return."""

    def __init__(self, src: Path) -> None:
        self.src = Path(src)
        self.wb = openpyxl.load_workbook(self.src)

    # -- finding things ---------------------------------------------------------------------------------
    def area_sheets(self) -> list[Worksheet]:
        return [ws for ws in self.wb.worksheets if ws.title.casefold() not in NOT_AREA]

    @staticmethod
    def columns(ws: Worksheet) -> dict[str, int]:
        """Field key -> 1-based column, from the header row's text."""
        out: dict[str, int] = {}
        for cell in ws[HEADER_ROW]:
            if isinstance(cell.value, str):
                key = _HEADERS.get(" ".join(cell.value.split()).casefold())
                if key and key not in out:
                    out[key] = cell.column
        return out

    def locate(self, action_id: str) -> tuple[Worksheet, int]:
        for ws in self.area_sheets():
            col = self.columns(ws).get("id")
            if col is None:
                continue
            for row in range(FIRST_ROW, ws.max_row + 1):
                if ws.cell(row, col).value == action_id:
                    return ws, row
        raise KeyError(f"{action_id} is not in {self.src.name}")

    def ids(self) -> list[str]:
        out = []
        for ws in self.area_sheets():
            col = self.columns(ws)["id"]
            for row in range(FIRST_ROW, ws.max_row + 1):
                value = ws.cell(row, col).value
                if isinstance(value, str) and value:
                    out.append(value)
        return out

    def cell(self, action_id: str, field: str) -> Cell:
        ws, row = self.locate(action_id)
        return ws.cell(row, self.columns(ws)[field])

    def get(self, action_id: str, field: str) -> Any:
        return self.cell(action_id, field).value

    def sheet(self, name: str | None = None) -> Worksheet:
        """An area sheet by name, or the first one."""
        return self.wb[name] if name is not None else self.area_sheets()[0]

    @staticmethod
    def next_free_row(ws: Worksheet) -> int:
        row = ws.max_row + 1
        while row > FIRST_ROW and all(c.value in (None, "") for c in ws[row - 1]):
            row -= 1
        return max(row, FIRST_ROW)

    # -- edits ---------------------------------------------------------------------------------------------
    def set(self, action_id: str, field: str, value: object) -> ReturnEditor:
        """Set one field of an action, on whatever sheet its row is."""
        write_cell(self.cell(action_id, field), value)
        return self

    def set_many(self, edits: Mapping[tuple[str, str], object]) -> ReturnEditor:
        for (action_id, field), value in edits.items():
            self.set(action_id, field, value)
        return self

    def formula(self, action_id: str, field: str, formula: str) -> ReturnEditor:
        write_formula(self.cell(action_id, field), formula)
        return self

    def paste_row(
        self, values: Mapping[str, object], sheet: str | None = None, row: int | None = None
    ) -> int:
        """Write a whole row (field key -> value) below the table, or at `row`; returns its row number."""
        ws = self.sheet(sheet)
        cols = self.columns(ws)
        row = row or self.next_free_row(ws)
        for key, value in values.items():
            if key in cols:
                write_cell(ws.cell(row, cols[key]), value)
        return row

    def paste_action(self, plan: Plan, action_id: str, sheet: str | None = None, **overrides: object) -> int:
        """Paste an action's row as the plan holds it (e.g. one not issued to this recipient)."""
        return self.paste_row({**plan_row(plan, action_id), **overrides}, sheet)

    def add_row(self, values: Mapping[str, object], sheet: str | None = None) -> int:
        """A row added without an ID: a proposed new action."""
        return self.paste_row({k: v for k, v in values.items() if k != "id"}, sheet)

    def saved_by(self, name: str) -> ReturnEditor:
        """Who last saved the file (docProps/core.xml lastModifiedBy), as Excel records it."""
        self.wb.properties.lastModifiedBy = name
        return self

    # -- the metadata sheet -------------------------------------------------------------------------------
    def meta_sheet(self) -> Worksheet:
        return self.wb[L.META_SHEET]

    def meta_rows(self) -> list[list[Any]]:
        return [list(r) for r in self.meta_sheet().iter_rows(values_only=True)]

    def tamper_meta(self, how: str = "checksum") -> ReturnEditor:
        """Hand-edit the metadata sheet: its checksum, a data chunk, or the marker cell."""
        ws = self.meta_sheet()
        if how == "checksum":
            write_cell(ws["B3"], "0" * 64)
        elif how == "chunk":
            cell = ws.cell(M.FIRST_CHUNK_ROW + 1, 1)
            text = str(cell.value)
            write_cell(cell, text[:-8] + ("A" if text[-8] != "A" else "B") + text[-7:])
        elif how == "marker":
            write_cell(ws["A1"], "edited by hand")
        else:
            raise ValueError(how)
        return self

    def forge_scope(self, plan: Plan, extra: Iterable[str], keep_signature: bool = True) -> ReturnEditor:
        """Rewrite the metadata as issued but with more actions in scope, with a checksum that matches.

        Without the owner's key the signature cannot be redone: the old one is kept (or removed).
        """
        reading = M.decode(self.meta_rows(), None)
        assert reading.meta is not None, reading.problem
        old = reading.meta
        signature = self.meta_sheet()["B4"].value
        scope = [*old.scope, *(i for i in extra if i not in old.scope)]
        issued_at = dt.datetime.fromisoformat(old.issued_at)
        forged = M.build_meta(plan, scope, old.recipient, old.issue_id, issued_at)
        ws = self.meta_sheet()
        for row in ws.iter_rows():
            for cell in row:
                cell.value = None
        for r, c, value in M.encode(forged, None):
            write_cell(ws.cell(r + 1, c + 1), value)
        if keep_signature and signature:
            write_cell(ws["B4"], signature)
        return self

    def save(self, dst: Path) -> Path:
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.wb.save(dst)
        self.wb.close()
        return dst


def plan_row(plan: Plan, action_id: str) -> dict[str, object]:
    """An action's row as the writer lays it out (field key -> cell value)."""
    action = plan.action_index()[action_id]
    return {c.key: cell_value(action, c.key) or None for c in L.AREA_COLUMNS}


def edit_return(src: Path, dst: Path, edits: Mapping[tuple[str, str], object] | None = None) -> Path:
    """Copy an issued workbook to `dst` with fields set: {(action id, field): value}."""
    return ReturnEditor(src).set_many(edits or {}).save(dst)


def read_field(path: Path, action_id: str, field: str) -> Any:
    return ReturnEditor(path).get(action_id, field)


def sheet_text(path: Path, sheet: str) -> list[str]:
    """Every non-empty cell of a sheet, as text, row by row."""
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return [str(v) for row in wb[sheet].iter_rows(values_only=True) for v in row if v not in (None, "")]
    finally:
        wb.close()


# -- a distributed plan to return workbooks against ---------------------------------------------------------


class Loop:
    """A plan saved in a folder and distributed by lead into `outbox/`; returns go in `inbox/`."""

    def __init__(
        self,
        root: Path,
        plan: Plan,
        *,
        key: bytes | None = None,
        by: str = "lead",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        from daplan_xlsx.distribute import distribute
        from daplan_xlsx.planfile import save_plan

        self.root = root
        self.key = key
        self.plan_path = root / "plan.yaml"
        self.outbox = root / "outbox"
        self.inbox = root / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        save_plan(plan, self.plan_path)
        kwargs: dict[str, Any] = {"by": by, "key": key, "plan_path": self.plan_path}
        if clock is not None:
            kwargs["clock"] = clock
        self.manifest = distribute(plan, self.outbox, **kwargs)

    @property
    def plan(self) -> Plan:
        from daplan_xlsx.planfile import load_plan

        return load_plan(self.plan_path)

    @property
    def journal(self) -> Path:
        from daplan_xlsx.journal import journal_path

        return journal_path(self.plan_path)

    def journal_lines(self) -> list[dict[str, Any]]:
        """Every line of the journal file as written (committed or not)."""
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text(encoding="utf-8").splitlines() if line]

    def entry(self, recipient: str) -> dict[str, Any]:
        return next(wb for wb in self.manifest["workbooks"] if wb["recipient"] == recipient)

    def issued(self, recipient: str) -> Path:
        return self.outbox / self.entry(recipient)["file"]

    def scope(self, recipient: str) -> list[str]:
        return list(self.entry(recipient)["scope"])

    def recipients(self) -> list[str]:
        return [wb["recipient"] for wb in self.manifest["workbooks"]]

    def editor(self, recipient: str) -> ReturnEditor:
        return ReturnEditor(self.issued(recipient))

    def returned(
        self, recipient: str, edits: Mapping[tuple[str, str], object] | None = None, name: str | None = None
    ) -> Path:
        """A return in the inbox: the recipient's workbook with `edits` made."""
        return edit_return(
            self.issued(recipient), self.inbox / (name or self.entry(recipient)["file"]), edits
        )

    def snapshot(self) -> tuple[bytes, bytes | None]:
        """The plan's and the journal's bytes (None: no journal)."""
        return self.plan_path.read_bytes(), self.journal.read_bytes() if self.journal.exists() else None


def run_daplan(args: list[str], *, terminal: bool) -> tuple[int, str, str]:
    """`python -m daplan_xlsx ARGS` with stderr on a pseudo-terminal (as in a console) or on a pipe (as
    when run from a script); the exit code, stdout and stderr."""
    import os
    import subprocess
    import sys
    import threading

    env = {k: v for k, v in os.environ.items() if k != "DAPLAN_KEY_FILE"}
    command = [sys.executable, "-m", "daplan_xlsx", *args]
    if not terminal:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    import pty

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def pump() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal's other end closed
                return
            if not data:
                return
            chunks.append(data)

    try:
        with subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env
        ) as proc:
            os.close(slave)
            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            out, _ = proc.communicate(timeout=300)
            reader.join(30)
    finally:
        os.close(master)
    return proc.returncode, out.decode("utf-8"), b"".join(chunks).decode("utf-8", "replace")
