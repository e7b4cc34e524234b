"""Built workbooks, checked through real files with openpyxl."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import EXAMPLES, fixed_clock, make_plan

from daplan_xlsx import layout as L
from daplan_xlsx.cli import cli
from daplan_xlsx.errors import WorkbookWriteError
from daplan_xlsx.meta import read_workbook_meta
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.signing import write_key
from daplan_xlsx.writer import write_workbook


def build(plan: Plan, tmp_path: Path, name: str = "out.xlsx", **kw: object) -> tuple[Path, object]:
    path = tmp_path / name
    info = write_workbook(plan, path, clock=fixed_clock, **kw)  # type: ignore[arg-type]
    return path, info


def action_rows(ws: openpyxl.worksheet.worksheet.Worksheet) -> list[int]:
    """1-based row numbers of the action rows (those with an ID under the header)."""
    first = L.FIRST_DATA_ROW + 1
    return [r for r in range(first, ws.max_row + 1) if ws.cell(r, 1).value]


def span_ref(col: str, first: int, last: int) -> str:
    return f"{col}{first}" if first == last else f"{col}{first}:{col}{last}"


def resolve_name(wb: openpyxl.Workbook, name: str) -> list[str]:
    dest = next(iter(wb.defined_names[name].destinations))
    sheet, ref = dest
    return [c.value for row in wb[sheet][ref.replace("$", "")] for c in row if c.value is not None]


PLANS = [pytest.param(None, id="small")] + [pytest.param(p, id=p.stem) for p in EXAMPLES]


@pytest.fixture(params=PLANS)
def any_plan(request: pytest.FixtureRequest) -> Plan:
    return make_plan() if request.param is None else load_plan(request.param)


def test_sheets_in_order_with_states(any_plan: Plan, tmp_path: Path) -> None:
    path, _ = build(any_plan, tmp_path)
    wb = openpyxl.load_workbook(path)
    expected = [
        L.ABOUT_SHEET,
        *(a.sheet for a in any_plan.areas),
        L.GLOSSARY_SHEET,
        L.LISTS_SHEET,
        L.META_SHEET,
    ]
    assert wb.sheetnames == expected
    assert wb[L.LISTS_SHEET].sheet_state == "hidden"
    assert wb[L.META_SHEET].sheet_state == "veryHidden"
    assert all(wb[n].sheet_state == "visible" for n in expected[:-2])


def test_area_sheets_table_validations_and_formats(any_plan: Plan, tmp_path: Path) -> None:
    path, _ = build(any_plan, tmp_path)
    wb = openpyxl.load_workbook(path)
    assert resolve_name(wb, L.STATUS_LIST_NAME) == any_plan.status_names()
    assert resolve_name(wb, L.LEAD_LIST_NAME) == any_plan.lead_names()
    for area in any_plan.areas:
        ws = wb[area.sheet]
        assert [c.value for c in ws[L.HEADER_ROW + 1]] == list(L.HEADERS)
        assert ws.cell(1, 1).value == area.name
        rows = action_rows(ws)
        ids = [ws.cell(r, 1).value for r in rows]
        national = [a.id for a in area.actions if a.kind == "national"]
        local = [a.id for a in area.actions if a.kind == "local"]
        assert ids == national + local
        if not rows:
            continue
        span = f"{rows[0]}:{rows[-1]}"
        by_formula = {dv.formula1: dv for dv in ws.data_validations.dataValidation}
        for key, formula in (("status", L.STATUS_LIST_NAME), ("lead", L.LEAD_LIST_NAME)):
            dv = by_formula[formula]
            col = L.column_letter(L.column_index(key))
            assert str(dv.sqref) == span_ref(col, rows[0], rows[-1]), span
            assert dv.type == "list" and dv.showErrorMessage and dv.prompt
            assert dv.errorStyle in (None, "stop")
        dates = [dv for dv in ws.data_validations.dataValidation if dv.type == "date"]
        due = L.column_letter(L.column_index("due"))
        assert [str(dv.sqref) for dv in dates] == [span_ref(due, rows[0], rows[-1])]
        rules = [rule for cf in ws.conditional_formatting for rule in cf.rules]
        cell_rules = [r for r in rules if r.type == "cellIs"]
        assert sorted(r.formula[0] for r in cell_rules) == sorted(f'"{s}"' for s in any_plan.status_names())
        overdue = [r for r in rules if r.type == "expression"]
        assert len(overdue) == 1 and "TODAY()" in overdue[0].formula[0]
        for closed in any_plan.closed_statuses():
            assert f'"{closed}"' in overdue[0].formula[0]
        assert ws.freeze_panes == f"A{L.FIRST_DATA_ROW + 1}"
        assert ws.auto_filter.ref == f"A{L.HEADER_ROW + 1}:{L.column_letter(len(L.HEADERS) - 1)}{rows[-1]}"


def test_protection_and_editable_cells(tmp_path: Path) -> None:
    plan = make_plan()
    path, _ = build(plan, tmp_path)
    wb = openpyxl.load_workbook(path)
    for name in wb.sheetnames:
        prot = wb[name].protection
        assert prot.sheet is True, name
        assert not prot.password, name
        # In the file format True means "protected against": these must stay allowed.
        assert prot.sort is False and prot.autoFilter is False
        assert prot.formatColumns is False and prot.formatRows is False
    ws = wb["Leadership and Governance"]
    row = action_rows(ws)[0]
    for i, col in enumerate(L.AREA_COLUMNS, start=1):
        cell = ws.cell(row, i)
        assert cell.protection.locked is (not col.editable), col.header
        if col.editable:
            assert cell.fill.fgColor.rgb.endswith("FFF2CC")
    locked_names = {c.header for c in L.AREA_COLUMNS if not c.editable}
    assert {"ID", "Ref", "Action"} <= locked_names


def test_local_actions_marked(tmp_path: Path) -> None:
    path, _ = build(make_plan(n_local=2), tmp_path)
    ws = openpyxl.load_workbook(path)["Leadership and Governance"]
    kind_col = L.column_index("kind") + 1
    kinds = {ws.cell(r, 1).value: ws.cell(r, kind_col).value for r in action_rows(ws)}
    assert kinds == {"LG-1": "National", "LG-2": "National", "LG-L1": "Local", "LG-L2": "Local"}
    local_row = next(r for r in action_rows(ws) if ws.cell(r, 1).value == "LG-L1")
    assert ws.cell(local_row, 1).fill.fgColor.rgb.endswith("FCE4D6")


def test_print_settings(tmp_path: Path) -> None:
    plan = make_plan()
    path, _ = build(plan, tmp_path)
    wb = openpyxl.load_workbook(path)
    for name in ["About", "Leadership and Governance", "Glossary"]:
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape"
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        # The cover fits one page (1 x 1, openpyxl's default values); the tables one page wide.
        tall = (None,) if name == "About" else (0,)
        assert ws.page_setup.fitToWidth in (1, None) and ws.page_setup.fitToHeight in tall
        assert plan.classification in ws.oddHeader.center.text
        assert plan.classification in ws.oddFooter.center.text
        assert "&P" in ws.oddFooter.right.text
    assert wb["Leadership and Governance"].print_title_rows == f"${L.HEADER_ROW + 1}:${L.HEADER_ROW + 1}"


def test_strings_stay_strings(tmp_path: Path) -> None:
    plan = make_plan()
    path, _ = build(plan, tmp_path)
    ws = openpyxl.load_workbook(path)["Leadership and Governance"]
    values = {}
    for r in action_rows(ws):
        for c in range(1, len(L.HEADERS) + 1):
            cell = ws.cell(r, c)
            if cell.value is not None and L.AREA_COLUMNS[c - 1].type != "date":
                assert cell.data_type == "s", (cell.coordinate, cell.value)
            values[(ws.cell(r, 1).value, L.AREA_COLUMNS[c - 1].key)] = cell.value
    assert values[("LG-1", "response")].startswith('=HYPERLINK("http://example.org")')
    assert values[("LG-2", "action")].startswith("+Evidence")
    assert values[("LG-2", "response")] == "-starts with a minus"
    assert values[("LG-L1", "action")] == "@local action 1"
    assert values[("LG-2", "target")] == "2015"
    assert values[("LG-2", "due")] == dt.datetime(2015, 3, 31)
    assert values[("LG-1", "supporting")] == "Head of Protect"


def test_metadata_reads_back(tmp_path: Path) -> None:
    plan = make_plan()
    path, _ = build(plan, tmp_path, issue_id="issue-1")
    reading = read_workbook_meta(path)
    assert reading.verdict == "unsigned"
    meta = reading.meta
    assert meta is not None
    assert (meta.plan_id, meta.plan_revision, meta.issue_id, meta.recipient) == (
        plan.id,
        1,
        "issue-1",
        "owner",
    )
    assert meta.scope == [a.id for a in plan.areas[0].actions] + ["IC-1"]
    assert meta.issued_at == "2026-11-02T09:30:00+00:00"
    assert meta.base_of("LG-2") == {
        "response": "-starts with a minus",
        "target": "2015",
        "due": "2015-03-31",
        "lead": "Head of Protect",
        "status": "On track",
        "notes": "",
    }


def test_default_issue_ids_are_uuid4(tmp_path: Path) -> None:
    import uuid

    _, a = build(make_plan(), tmp_path, "a.xlsx")
    _, b = build(make_plan(), tmp_path, "b.xlsx")
    assert a.issue_id != b.issue_id  # type: ignore[attr-defined]
    assert uuid.UUID(a.issue_id).version == 4  # type: ignore[attr-defined]


def test_signature(tmp_path: Path) -> None:
    key = write_key(tmp_path / "owner.key")
    other = write_key(tmp_path / "other.key")
    path, _ = build(make_plan(), tmp_path, key=key)
    assert read_workbook_meta(path, key).verdict == "intact"
    assert read_workbook_meta(path, key).signature_checked
    assert read_workbook_meta(path, other).verdict == "tampered"
    assert read_workbook_meta(path).verdict == "intact"  # signed, but no key to check it with
    assert not read_workbook_meta(path).signature_checked
    with open(path, "rb") as fh:
        assert key.hex().encode() not in fh.read()


def _edit_meta_cell(path: Path, out: Path, coordinate: str, change: object) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb[L.META_SHEET]
    ws[coordinate].value = change(ws[coordinate].value)  # type: ignore[operator]
    wb.save(out)


@pytest.mark.parametrize(
    "coordinate",
    ["A7", "B3", "B4"],
    ids=["payload", "checksum", "signature"],
)
def test_one_changed_character_is_tampering(tmp_path: Path, coordinate: str) -> None:
    key = write_key(tmp_path / "owner.key")
    path, _ = build(make_plan(), tmp_path, key=key)
    out = tmp_path / "edited.xlsx"

    def flip(value: str) -> str:
        i = len(value) // 2
        return value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]

    _edit_meta_cell(path, out, coordinate, flip)
    assert read_workbook_meta(out, key).verdict == "tampered"


def test_missing_metadata(tmp_path: Path) -> None:
    path, _ = build(make_plan(), tmp_path)
    wb = openpyxl.load_workbook(path)
    del wb[L.META_SHEET]
    wb.save(tmp_path / "nometa.xlsx")
    assert read_workbook_meta(tmp_path / "nometa.xlsx").verdict == "missing"


def test_scope_and_recipient(tmp_path: Path) -> None:
    plan = make_plan()
    path, info = build(plan, tmp_path, scope=["IC-1", "LG-2"], recipient="Area Commanders")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[1:3] == ["Leadership and Governance", "Initial Contact"]
    assert [
        wb["Leadership and Governance"].cell(r, 1).value for r in action_rows(wb["Leadership and Governance"])
    ] == ["LG-2"]
    about = [c.value for row in wb["About"].iter_rows() for c in row if c.value]
    assert "Area Commanders" in about
    assert info.scope == ["LG-2", "IC-1"]  # type: ignore[attr-defined]
    with pytest.raises(WorkbookWriteError, match="NOPE"):
        build(plan, tmp_path, "x.xlsx", scope=["NOPE"])


def test_long_lead_register_keeps_dropdown(tmp_path: Path) -> None:
    plan = make_plan()
    data = plan.model_dump()
    data["leads"] += [{"name": f'District Commander, "Area" number {i:03d}'} for i in range(120)]
    big = Plan.model_validate(data)
    path, _ = build(big, tmp_path)
    wb = openpyxl.load_workbook(path)
    assert len(resolve_name(wb, L.LEAD_LIST_NAME)) == 123
    formulas = [dv.formula1 for dv in wb["Initial Contact"].data_validations.dataValidation]
    assert L.LEAD_LIST_NAME in formulas


def test_return_codes_and_warnings_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xlsxwriter.worksheet import Worksheet

    monkeypatch.setattr(Worksheet, "data_validation", lambda *a, **k: -2)
    with pytest.raises(WorkbookWriteError, match="Status dropdown"):
        build(make_plan(), tmp_path)
    assert list(tmp_path.iterdir()) == []

    def warn(*a: object, **k: object) -> int:
        warnings.warn("Length of input message exceeds Excel's limit of 255", stacklevel=1)
        return 0

    monkeypatch.setattr(Worksheet, "data_validation", warn)
    with pytest.raises(WorkbookWriteError, match="refused"):
        build(make_plan(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_build_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_path = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["keygen", "-o", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "master.xlsx"
    result = runner.invoke(cli, ["build", str(plan_path), "-o", str(out), "--key-file", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    key = (tmp_path / "k").read_text().strip().split(":")[1]
    assert read_workbook_meta(out, bytes.fromhex(key)).verdict == "intact"

    monkeypatch.setenv("DAPLAN_KEY_FILE", str(tmp_path / "k"))
    out2 = tmp_path / "master2.xlsx"
    assert runner.invoke(cli, ["build", str(plan_path), "-o", str(out2)]).exit_code == 0
    assert read_workbook_meta(out2, bytes.fromhex(key)).signature_checked


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "{plan}", "-o", "{tmp}/missing/x.xlsx"], "folder does not exist"),
        (["build", "{tmp}/nope.yaml", "-o", "{tmp}/x.xlsx"], "file not found"),
        (["build", "{plan}", "-o", "{tmp}"], "directory"),
        (["build", "{plan}", "-o", "{tmp}/x.xlsx", "--key-file", "{tmp}/nokey"], "key file not found"),
    ],
)
def test_cli_build_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    plan_path = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(plan=plan_path, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_written_files_get_the_umask_mode_not_the_temp_files(tmp_path: Path) -> None:
    """Temporary files are created 0600; a workbook or plan renamed into place must not stay that way."""
    import os

    old = os.umask(0o022)
    try:
        book, plan_file = tmp_path / "m.xlsx", tmp_path / "plan.yaml"
        write_workbook(make_plan(), book, clock=fixed_clock)
        save_plan(make_plan(), plan_file)
        assert (book.stat().st_mode & 0o777, plan_file.stat().st_mode & 0o777) == (0o644, 0o644)
        book.chmod(0o640)
        write_workbook(make_plan(), book, clock=fixed_clock)
        assert book.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
    finally:
        os.umask(old)


def test_a_large_scope_fits_on_the_cover(tmp_path: Path) -> None:
    """A recipient issued thousands of actions gets a shortened list on the About sheet, not a crash."""
    plan = make_plan(n_local=3000)
    ids = [a.id for a in plan.areas[0].actions]
    out = tmp_path / "big.xlsx"
    write_workbook(plan, out, scope=ids, recipient="Area Commanders", clock=fixed_clock)
    about = [
        str(c.value) for row in openpyxl.load_workbook(out)[L.ABOUT_SHEET].iter_rows() for c in row if c.value
    ]
    (line,) = [v for v in about if v.startswith("Leadership and Governance: 3002 action(s)")]
    assert line.startswith("Leadership and Governance: 3002 action(s): LG-1, LG-2, LG-L1,")
    assert line.endswith("… and 2967 more (to LG-L3000)")


def test_a_leads_workbook_prints_only_the_sheets_with_its_actions(tmp_path: Path) -> None:
    """A lead's workbook holds (and so prints) the cover, the area sheets with its actions and the glossary;
    the cover fits one page and names the lead, with the recipients' instructions."""
    plan = make_plan()
    out = tmp_path / "lead.xlsx"
    write_workbook(plan, out, scope=["IC-1"], recipient="Area Commanders", clock=fixed_clock)
    wb = openpyxl.load_workbook(out)
    printable = [ws.title for ws in wb.worksheets if ws.sheet_state == "visible"]
    assert printable == ["About", "Initial Contact", "Glossary"]
    about = wb["About"]
    assert about.page_setup.fitToHeight in (None, 1) and about.sheet_properties.pageSetUpPr.fitToPage
    values = [c.value for row in about.iter_rows() for c in row if c.value]
    assert "Issued to" in values and "Area Commanders" in values
    assert any("email it back to the plan owner" in str(v) for v in values)


def test_the_owners_workbook_names_the_plan_owner(tmp_path: Path) -> None:
    path, _ = build(make_plan(), tmp_path)
    wb = openpyxl.load_workbook(path)
    values = [c.value for row in wb["About"].iter_rows() for c in row if c.value]
    assert "Prepared for" in values and "Plan owner" in values and "owner" not in values
    assert not any("email it back" in str(v) for v in values)
    assert "Plan owner" in wb["Leadership and Governance"].oddFooter.left.text
