"""The owner's master workbook: Dashboard (live counts and chart), Changes sheet, marks on changed cells."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from apps import png_is_blank, require, soffice_convert
from click.testing import CliRunner
from conftest import EXAMPLES, fixed_clock, make_plan
from returns import Loop

from daplan_xlsx import journal as J
from daplan_xlsx import layout as L
from daplan_xlsx.cli import cli
from daplan_xlsx.master import MasterContent, master_content, write_master
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan
from daplan_xlsx.record import append_lines

TODAY = fixed_clock().date()
DASH = L.DASHBOARD_SHEET
FIRST_COUNT_ROW = 6  # 1-based: title, subtitle, blank, section title, header, then the areas


def build(plan: Plan, path: Path, content: MasterContent | None = None) -> Path:
    write_master(plan, path, content or MasterContent(as_of=TODAY), clock=fixed_clock)
    return path


def expected_counts(plan: Plan) -> list[list[int]]:
    """Per area, per status in vocabulary order, then total, closed and open past due: counted here."""
    closed = {s.name for s in plan.statuses if s.closed}
    rows = []
    for area in plan.areas:
        row = [sum(1 for a in area.actions if a.status == s.name) for s in plan.statuses]
        late = sum(1 for a in area.actions if a.due and a.due < TODAY and a.status not in closed)
        rows.append([*row, len(area.actions), sum(1 for a in area.actions if a.status in closed), late])
    return rows


def dashboard_figures(path: Path, plan: Plan) -> list[list[int]]:
    """The cached values of the count cells, as a reader that does not recalculate sees them."""
    ws = openpyxl.load_workbook(path, data_only=True)[DASH]
    n = len(plan.statuses)
    cols = [*range(2, n + 4), n + 5]  # statuses, total, closed; skip the share; open past due
    return [[int(ws.cell(FIRST_COUNT_ROW + i, c).value or 0) for c in cols] for i in range(len(plan.areas))]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_dashboard_counts_equal_the_plan(example: Path, tmp_path: Path) -> None:
    plan = load_plan(example)
    out = build(plan, tmp_path / "master.xlsx")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[0] == DASH
    assert wb.sheetnames[1:4] == [L.ABOUT_SHEET, plan.areas[0].sheet, plan.areas[1].sheet]
    assert L.CHANGES_SHEET in wb.sheetnames
    assert dashboard_figures(out, plan) == expected_counts(plan)
    ws = wb[DASH]
    assert [ws.cell(FIRST_COUNT_ROW + i, 1).value for i in range(len(plan.areas))] == [
        a.name for a in plan.areas
    ]
    headers = [ws.cell(FIRST_COUNT_ROW - 1, c).value for c in range(2, len(plan.statuses) + 2)]
    assert headers == [s.name for s in plan.statuses]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_dashboard_figures_are_countifs_over_exactly_the_action_rows(example: Path, tmp_path: Path) -> None:
    plan = load_plan(example)
    ws = openpyxl.load_workbook(build(plan, tmp_path / "master.xlsx"))[DASH]
    status_col = L.column_letter(L.column_index("status"))
    due_col = L.column_letter(L.column_index("due"))
    first = L.FIRST_DATA_ROW + 1
    n = len(plan.statuses)
    for i, area in enumerate(plan.areas):
        last = first + len(area.actions) - 1
        rng = f"'{area.sheet}'!${status_col}${first}:${status_col}${last}"
        for j, status in enumerate(plan.statuses):
            assert ws.cell(FIRST_COUNT_ROW + i, 2 + j).value == f'=COUNTIFS({rng},"={status.name}")'
        late = ws.cell(FIRST_COUNT_ROW + i, n + 5).value
        assert late.startswith(f"=COUNTIFS('{area.sheet}'!${due_col}${first}:${due_col}${last},\"<\"&TODAY()")
        for status in plan.statuses:
            assert (f'"<>{status.name}"' in late) == status.closed


def test_counts_follow_the_plan_after_a_merge(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan(), clock=fixed_clock)
    loop.returned("Area Commanders", {("IC-1", "status"): "Complete", ("LG-L1", "status"): "At risk"})
    result = CliRunner().invoke(cli, ["merge", str(loop.plan_path), str(loop.inbox / "area-commanders.xlsx")])
    assert result.exit_code == 0, result.output
    plan = loop.plan
    content = master_content(plan, loop.plan_path, today=TODAY, outbox=loop.outbox, inbox=loop.inbox)
    out = build(plan, tmp_path / "master.xlsx", content)
    assert dashboard_figures(out, plan) == expected_counts(plan)
    statuses = [s.name for s in plan.statuses]
    ic = dashboard_figures(out, plan)[1]
    assert ic[statuses.index("Complete")] == 1 and ic[statuses.index("Not started")] == 0


def test_past_due_list_and_count(tmp_path: Path) -> None:
    plan = make_plan()  # LG-2 is due 31/03/2015 and On track: open and past due
    ws = openpyxl.load_workbook(build(plan, tmp_path / "master.xlsx"), data_only=True)[DASH]
    cells = [[c.value for c in row] for row in ws.iter_rows()]
    title = next(
        i for i, row in enumerate(cells) if str(row[0]).startswith("Open actions past their due date")
    )
    assert cells[title][0].endswith(": 1")
    row = cells[title + 2]
    assert row[0].startswith("Leadership and Governance, 2: +Evidence exists")
    assert (row[1], row[2], row[3], row[4]) == (
        "LG-2",
        dt.datetime(2015, 3, 31),
        "On track",
        "Head of Protect",
    )


def test_chart_is_stacked_bars_over_the_count_cells(tmp_path: Path) -> None:
    plan = load_plan(EXAMPLES[0])
    out = build(plan, tmp_path / "master.xlsx")
    with zipfile.ZipFile(out) as zf:
        charts = [n for n in zf.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        xml = zf.read(charts[0]).decode()
        drawing_rels = zf.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert "drawing" in drawing_rels  # the chart sits on the first sheet, the Dashboard
    assert "<c:barChart>" in xml and '<c:grouping val="stacked"/>' in xml
    last = FIRST_COUNT_ROW + len(plan.areas) - 1
    values = re.findall(r"<c:val><c:numRef><c:f>([^<]+)</c:f>", xml)
    cats = set(re.findall(r"<c:cat><c:(?:str|num)Ref><c:f>([^<]+)</c:f>", xml))
    names = re.findall(r"<c:tx><c:strRef><c:f>([^<]+)</c:f>", xml)
    letters = [L.column_letter(1 + j) for j in range(len(plan.statuses))]
    assert values == [f"{DASH}!${c}${FIRST_COUNT_ROW}:${c}${last}" for c in letters]
    assert cats == {f"{DASH}!$A${FIRST_COUNT_ROW}:$A${last}"}
    assert names == [f"{DASH}!${c}${FIRST_COUNT_ROW - 1}" for c in letters]
    colours = re.findall(r'<c:spPr><a:solidFill><a:srgbClr val="([0-9A-F]{6})"/>', xml)
    assert colours == [s.colour.lstrip("#").upper() for s in plan.statuses]


def test_returns_outstanding_on_the_dashboard(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan(), clock=fixed_clock)
    loop.returned("Area Commanders", {("IC-1", "response"): "Done."})
    out = tmp_path / "master.xlsx"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            str(loop.plan_path),
            "-o",
            str(out),
            "--outbox",
            str(loop.outbox),
            "--inbox",
            str(loop.inbox),
        ],
    )
    assert result.exit_code == 0, result.output
    cells = [[c.value for c in row] for row in openpyxl.load_workbook(out)[DASH].iter_rows()]
    title = next(i for i, row in enumerate(cells) if str(row[0]).startswith("Returns:"))
    n = len(loop.recipients())
    assert cells[title][0] == f"Returns: {n} issued, 1 returned, 0 merged, {n - 1} outstanding"
    rows = {row[0]: row for row in cells[title + 2 : title + 2 + n]}
    assert set(rows) == set(loop.recipients())
    assert rows["Area Commanders"][2] == "Yes" and rows["Area Commanders"][4] in ("", None)
    assert rows["Chief Constable"][2] == "No" and rows["Chief Constable"][4] == "Outstanding"


def test_build_inbox_without_outbox_is_a_usage_error(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_bytes(EXAMPLES[0].read_bytes())
    out = tmp_path / "m.xlsx"
    result = CliRunner().invoke(cli, ["build", str(plan_path), "-o", str(out), "--inbox", str(tmp_path)])
    assert result.exit_code == 2 and "--inbox needs --outbox" in result.output
    assert not out.exists()


def _merge(loop: Loop, recipient: str, edits: dict[tuple[str, str], object], name: str) -> None:
    f = loop.returned(recipient, edits, name=name)
    result = CliRunner().invoke(cli, ["merge", str(loop.plan_path), str(f)])
    assert result.exit_code == 0, result.output


def test_changes_sheet_lists_the_journal_newest_first(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan(), clock=fixed_clock)
    _merge(
        loop, "Area Commanders", {("IC-1", "response"): "First.", ("IC-1", "status"): "On track"}, "a.xlsx"
    )
    _merge(loop, "Head of Protect", {("LG-2", "target"): "=March 2016"}, "b.xlsx")
    plan = loop.plan
    out = build(plan, tmp_path / "master.xlsx", master_content(plan, loop.plan_path, today=TODAY))
    ws = openpyxl.load_workbook(out)[L.CHANGES_SHEET]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == ["When", "Who", "From return", "Action", "Field", "Old", "New"]
    changes = [e for e in J.read_journal(loop.journal, plan.revision) if e["event"] == "change"]
    assert len(rows) - 1 == len(changes) == 3
    expected = [
        [
            e["recipient"],
            Path(e["return"]).name,
            e["action_id"],
            L.COLUMN_BY_KEY[e["field"]].header,
            e["old"] or None,
            e["new"],
        ]
        for e in reversed(changes)
    ]
    assert [row[1:] for row in rows[1:]] == expected
    assert rows[1][3:] == ["LG-2", "Target", "2015", "=March 2016"]
    assert ws.cell(2, 7).data_type == "s"  # text that looks like a formula stays text


def _comments(path: Path) -> dict[tuple[str, str], str]:
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.comment is not None:
                    out[(ws.title, cell.coordinate)] = cell.comment.text
    return out


def test_cells_changed_since_the_last_publication_carry_a_note(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan(), clock=fixed_clock)
    _merge(loop, "Area Commanders", {("IC-1", "response"): "First update."}, "a.xlsx")
    plan = loop.plan
    out = build(plan, tmp_path / "m1.xlsx", master_content(plan, loop.plan_path, today=TODAY))
    response = L.column_letter(L.column_index("response"))
    first = L.FIRST_DATA_ROW + 1
    notes = _comments(out)
    assert list(notes) == [("Initial Contact", f"{response}{first}")]
    note = notes[("Initial Contact", f"{response}{first}")]
    assert "by Area Commanders (from a.xlsx)" in note and note.endswith("Was: (empty)")

    # Publishing clears the marks; a later change is marked again, and only it.
    append_lines(
        loop.plan_path,
        [
            {
                "event": "publish",
                "time": fixed_clock().isoformat(),
                "revision": loop.plan.revision,
                "file": str(tmp_path / "p.md"),
                "format": "md",
            }
        ],
    )
    assert (
        _comments(
            build(loop.plan, tmp_path / "m2.xlsx", master_content(loop.plan, loop.plan_path, today=TODAY))
        )
        == {}
    )
    _merge(loop, "Head of Protect", {("LG-2", "status"): "At risk"}, "b.xlsx")
    plan = loop.plan
    notes = _comments(build(plan, tmp_path / "m3.xlsx", master_content(plan, loop.plan_path, today=TODAY)))
    status = L.column_letter(L.column_index("status"))
    assert list(notes) == [("Leadership and Governance", f"{status}{first + 1}")]
    assert "Was: On track" in next(iter(notes.values()))


def test_action_rows_show_last_updated_and_by_whom(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan(), clock=fixed_clock)
    _merge(loop, "Area Commanders", {("IC-1", "notes"): "Checked."}, "a.xlsx")
    plan = loop.plan
    ws = openpyxl.load_workbook(build(plan, tmp_path / "m.xlsx"))["Initial Contact"]
    updated = ws.cell(L.FIRST_DATA_ROW + 1, L.column_index("updated") + 1).value
    stamp = plan.action_index()["IC-1"].updated
    assert updated == f"{stamp:%d/%m/%Y} by Area Commanders"


def test_master_is_read_but_never_taken_as_a_return(tmp_path: Path) -> None:
    """The master is for reading: diff shows it (its extra sheets are not taken for area sheets), but its
    metadata marks it, so it is never merged as a lead's return."""
    from daplan_xlsx.diff import diff_return

    plan = load_plan(EXAMPLES[1])
    out = build(plan, tmp_path / "master.xlsx")
    result = diff_return(out, plan)
    assert result.changes == []
    assert [(f.kind, f.severity) for f in result.findings] == [("metadata-tampered", "problem")]
    assert "master workbook" in result.findings[0].message


# -- real clients ----------------------------------------------------------------------------------------

_RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">\
<value>0</value></prop></item>
</oor:items>
"""


@pytest.mark.slow
@pytest.mark.libreoffice
def test_libreoffice_recalculates_the_dashboard_after_an_edit(tmp_path: Path) -> None:
    """A reader who changes a status in the master sees the counts follow: the formulas are live."""
    plan = load_plan(EXAMPLES[1])
    out = build(plan, tmp_path / "master.xlsx")
    area = plan.areas[0]
    wb = openpyxl.load_workbook(out)
    status_col = L.column_index("status") + 1
    changed = wb[area.sheet].cell(L.FIRST_DATA_ROW + 1, status_col)
    action = next(a for a in area.actions if a.id == wb[area.sheet].cell(L.FIRST_DATA_ROW + 1, 1).value)
    new_status = "Off track" if action.status != "Off track" else "At risk"
    changed.value = new_status
    edited = tmp_path / "edited" / "master.xlsx"
    edited.parent.mkdir()
    wb.save(edited)  # openpyxl keeps the formulas and drops every cached value

    profile = tmp_path / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(_RECALC_ALWAYS, encoding="utf-8")
    recalculated = soffice_convert(edited, "xlsx:Calc MS Excel 2007 XML", tmp_path / "out", profile)

    data = plan.model_dump()
    for a in data["areas"][0]["actions"]:
        if a["id"] == action.id:
            a["status"] = new_status
    assert dashboard_figures(recalculated, Plan.model_validate(data)) == expected_counts(
        Plan.model_validate(data)
    )


@pytest.mark.slow
@pytest.mark.libreoffice
def test_dashboard_prints_as_a_page_that_is_not_blank(tmp_path: Path) -> None:
    pdftoppm = require("pdftoppm")
    pdftotext = require("pdftotext")
    plan = load_plan(EXAMPLES[1])
    out = build(plan, tmp_path / "master.xlsx")
    pdf = soffice_convert(out, "pdf", tmp_path, tmp_path / "profile")
    subprocess.run(
        [pdftoppm, "-f", "1", "-l", "1", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True
    )
    png = next(tmp_path.glob("page*.png"))
    assert not png_is_blank(png)
    text = subprocess.run(
        [pdftotext, "-f", "1", "-l", "1", "-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "Actions by capability area and status" in text
    assert plan.classification in text
    for area in plan.areas:
        assert area.name.split()[0] in text


def test_an_accepted_new_action_is_on_the_changes_sheet_and_marked(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan(), clock=fixed_clock)
    ed = loop.editor("Area Commanders")
    ed.add_row(
        {"action": "Pilot a DVPO tracker.", "response": "Scoping.", "lead": "Area Commanders"},
        "Initial Contact",
    )
    f = ed.save(loop.inbox / "ac.xlsx")
    result = CliRunner().invoke(cli, ["merge", str(loop.plan_path), str(f), "--accept-new"])
    assert result.exit_code == 0, result.output
    plan = loop.plan
    added = next(e for e in J.read_journal(loop.journal, plan.revision) if e["event"] == "add")
    out = build(plan, tmp_path / "m.xlsx", master_content(plan, loop.plan_path, today=TODAY))
    rows = [[c.value for c in row] for row in openpyxl.load_workbook(out)[L.CHANGES_SHEET].iter_rows()]
    assert rows[1][1:5] == ["Area Commanders", "ac.xlsx", added["action_id"], "New action"]
    assert rows[1][6].split("\n")[:2] == ["Pilot a DVPO tracker.", "Response: Scoping."]
    notes = _comments(out)
    ((where, note),) = [(k, v) for k, v in notes.items() if v.startswith("Added")]
    assert where[0] == "Initial Contact" and "proposed by Area Commanders (in ac.xlsx)" in note


@pytest.mark.slow
@pytest.mark.libreoffice
def test_the_master_prints_legibly_on_a4(tmp_path: Path) -> None:
    """Printed by LibreOffice: no text under 8 pt, the About sheet on one page, the area sheets without the
    working columns, and the owner named as the Plan owner."""
    import pdfplumber

    pdftoppm = require("pdftoppm")
    plan = load_plan(EXAMPLES[1])
    out = build(plan, tmp_path / "master.xlsx")
    pdf = soffice_convert(out, "pdf", tmp_path, tmp_path / "profile")
    with pdfplumber.open(pdf) as doc:
        pages = [(page.extract_text() or "", page.chars) for page in doc.pages]
    for n, (text, chars) in enumerate(pages, start=1):
        smallest = min(round(c["size"], 1) for c in chars if c["text"].strip())
        assert smallest >= 8, (n, smallest, text[:80])
        assert plan.classification in text
    about = [text for text, _ in pages if "How to use it" in text]
    assert len(about) == 1 and "Plan owner" in about[0] and "Issued to" not in about[0]
    assert "email it back" not in about[0]  # the owner's instructions, not the recipients'
    for area in plan.areas:
        printed = "\n".join(text for text, _ in pages if text.split("\n")[0].endswith(area.sheet))
        assert area.actions[0].action.split()[0] in printed
        for action in area.actions:
            assert action.id not in printed.split()  # the ID column is off the printed page
        assert "Last updated" not in printed and "Notes" not in printed
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == len(pages) and not any(png_is_blank(p) for p in pngs)


def test_status_fills_meet_aa_contrast_on_the_dashboard(tmp_path: Path) -> None:
    from daplan_xlsx.writer import contrast_colour, contrast_ratio

    plan = load_plan(EXAMPLES[1])
    out = build(plan, tmp_path / "master.xlsx")
    ws = openpyxl.load_workbook(out)[L.DASHBOARD_SHEET]
    header = next(row for row in ws.iter_rows() if row[0].value == "Capability area")
    for cell in header[1 : 1 + len(plan.statuses)]:
        fill = "#" + cell.fill.fgColor.rgb[-6:]
        text = "#" + cell.font.color.rgb[-6:]
        assert contrast_ratio(fill, text) >= 4.5, (cell.value, fill, text)
    for status in plan.statuses:
        assert contrast_ratio(status.colour, contrast_colour(status.colour)) >= 4.5


def test_the_dashboard_charts_status_at_each_round(tmp_path: Path) -> None:
    """Two reporting rounds with a merge between them: the Dashboard lists the counts as they stood at each
    round and now, and draws them as a native chart."""
    import zipfile

    from click.testing import CliRunner
    from returns import ReturnEditor

    from daplan_xlsx.cli import cli
    from daplan_xlsx.planfile import save_plan

    def run(*args: object) -> None:
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    plan_path = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan_path)
    run("distribute", plan_path, "-o", tmp_path / "q1", "--round", "2027 Q1", "--return-by", "2027-03-20")
    manifest = json.loads((tmp_path / "q1" / "manifest.json").read_text(encoding="utf-8"))
    ac = next(w for w in manifest["workbooks"] if w["recipient"] == "Area Commanders")
    ret = (
        ReturnEditor(tmp_path / "q1" / ac["file"]).set("IC-1", "status", "Complete").save(tmp_path / "r.xlsx")
    )
    run("merge", plan_path, ret)
    run("distribute", plan_path, "-o", tmp_path / "q2", "--round", "2027 Q2", "--return-by", "2027-06-20")
    manifest = json.loads((tmp_path / "q2" / "manifest.json").read_text(encoding="utf-8"))
    ac = next(w for w in manifest["workbooks"] if w["recipient"] == "Area Commanders")
    ret2 = (
        ReturnEditor(tmp_path / "q2" / ac["file"])
        .set("IC-1", "status", "Embedded")
        .save(tmp_path / "r2.xlsx")
    )
    run("merge", plan_path, ret2)
    out = tmp_path / "master.xlsx"
    run("build", plan_path, "-o", out)
    ws = openpyxl.load_workbook(out)[L.DASHBOARD_SHEET]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    at = next(i for i, r in enumerate(rows) if r[0] == "Status at each reporting round")
    header = rows[at + 1]
    table = {r[0]: (r[header.index("Complete")], r[header.index("Embedded")]) for r in rows[at + 2 : at + 5]}
    # IC-1 was completed between the rounds, then embedded after the second.
    (c1, e1), (c2, e2), (cn, en) = table["2027 Q1"], table["2027 Q2"], table["Now"]
    assert (c2, e2) == (c1 + 1, e1) and (cn, en) == (c1, e1 + 1)
    with zipfile.ZipFile(out) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 2
        assert any(b"Actions by status at each reporting round" in z.read(n) for n in charts)
    # The Last updated cell of IC-1 says what its status was at the latest round.
    updated = L.column_letter(L.column_index("updated"))
    notes = [
        text
        for (sheet, cell), text in _comments(out).items()
        if sheet == "Initial Contact" and cell[0] == updated
    ]
    assert notes and "Status at round 2027 Q2: Complete (now Embedded)." in notes[0]
