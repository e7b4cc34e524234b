"""`daplan import`: adopting a plan kept as an ordinary workbook, through real files.

Workbooks daplan builds import back to the same plan; hand-made ones (written here with openpyxl, the way a
force's own spreadsheet would be) import to the actions they hold, with every row that could not be placed
reported by sheet and row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from conftest import EXAMPLES, FILES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daplan_xlsx import normalise as N
from daplan_xlsx.cli import cli
from daplan_xlsx.errors import DaplanError
from daplan_xlsx.importer import ImportResult, import_workbook, load_status_map, split_leads
from daplan_xlsx.model import Action, Area, Lead, Plan, check_text, default_statuses, sheet_name_problem
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.templates import new_plan
from daplan_xlsx.writer import write_workbook

FIELDS = ("ref", "action", "response", "target", "due", "leads", "status", "kind", "notes")
# What a published plan shows (the examples' notes are daplan's own, about their restoration).
PUBLISHED = FIELDS[:-1]
HMIC_IDS = ["LG", "IC", "FR", "IN", "MV", "LN"]

Rows = Sequence[Sequence[object]]


# -- helpers ---------------------------------------------------------------------------------------------


def workbook(path: Path, sheets: dict[str, Rows], merges: dict[str, list[str]] | None = None) -> Path:
    """Write a plain workbook with openpyxl; every string is stored as text, never as a formula."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is None or value == "":
                    continue
                cell = ws.cell(r, c, value)
                if isinstance(value, str):
                    cell.data_type = "s"
        for span in (merges or {}).get(name, []):
            ws.merge_cells(span)
    wb.save(path)
    return path


def actions_of(plan: Plan, fields: Sequence[str] = FIELDS) -> dict[str, tuple[str, dict[str, Any]]]:
    """Action id -> (area id, the fields compared)."""
    return {
        action.id: (area.id, {f: getattr(action, f) for f in fields}) for area, action in plan.iter_actions()
    }


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["import", *map(str, args)])


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")}


def assert_one_line_error(result: Result, *phrases: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    err = result.stderr
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    for phrase in phrases:
        assert phrase.casefold() in err.casefold(), f"{phrase!r} not in {err!r}"
    return err.rstrip("\n")


def notes(result: ImportResult) -> list[str]:
    return [str(n) for n in result.notes]


# -- build -> import: daplan's own workbooks ---------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_built_example_imports_back_to_the_same_plan(example: Path, tmp_path: Path) -> None:
    plan = load_plan(example)
    built = tmp_path / "master.xlsx"
    write_workbook(plan, built)
    result = import_workbook(built)
    got = result.plan
    assert result.notes == []
    assert not result.needs_person
    assert [(a.id, a.name, a.sheet, a.key_criteria, a.supporting_areas) for a in got.areas] == [
        (a.id, a.name, a.sheet, a.key_criteria, a.supporting_areas) for a in plan.areas
    ]
    assert actions_of(got) == actions_of(plan)
    assert [a.id for _, a in got.iter_actions()] == [a.id for _, a in plan.iter_actions()]
    assert got.leads == plan.leads
    assert got.statuses == plan.statuses
    assert got.glossary == plan.glossary
    assert (got.title, got.force, got.classification) == (plan.title, plan.force, plan.classification)
    assert got.id != plan.id and got.id.startswith("plan-")


def test_built_workbook_through_the_cli_writes_a_valid_plan(tmp_path: Path) -> None:
    plan = load_plan(EXAMPLES[0])
    built = tmp_path / "master.xlsx"
    write_workbook(plan, built)
    out = tmp_path / "adopted.yaml"
    result = run(built, "-o", out)
    assert result.exit_code == 0, result.output
    n = len(plan.iter_actions())
    assert result.stdout.splitlines()[0] == f"Imported {built.name} into {out}."
    assert f"6 area(s), {n} action(s), {len(plan.leads)} lead(s)" in result.stdout
    assert result.stderr == ""
    assert actions_of(load_plan(out)) == actions_of(plan)


def test_new_plan_built_and_imported_is_the_same_plan(tmp_path: Path) -> None:
    plan = new_plan("hmic-2014", "North Wales Police")
    built = tmp_path / "master.xlsx"
    write_workbook(plan, built)
    result = import_workbook(built)
    assert result.notes == []
    assert result.plan.model_dump(exclude={"id"}) == plan.model_dump(exclude={"id"})


# -- the examples kept the way forces kept them ------------------------------------------------------------

RAG = {"Complete": "Completed", "On track": "Green", "Embedded": "BAU", "Not started": "not started"}


def seed_rows(plan: Plan) -> list[list[object]]:
    """One sheet as the 2014 plans were published: an area heading, a table, a "Local Action" table."""
    rows: list[list[object]] = [["", plan.title], []]
    for area in plan.areas:
        heading = "Managing, supporting victims and tackling offenders" if area.id == "MV" else area.name
        rows += [[heading], ["Ref.", "Action", "Progress", "Target", "Lead", "RAG"]]
        national = [a for a in area.actions if a.kind == "national"]
        local = [a for a in area.actions if a.kind == "local"]
        for i, group in enumerate((national, local)):
            if i and group:
                rows += [[], ["Ref", "Local Action", "Progress", "Target", "Lead", "RAG"]]
            for a in group:
                rows.append([a.ref, a.action, a.response, a.target, " and ".join(a.leads), RAG[a.status]])
        rows.append([])
    return rows


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_kept_as_one_published_sheet_imports_to_the_same_actions(
    example: Path, tmp_path: Path
) -> None:
    plan = load_plan(example)
    path = workbook(tmp_path / "plan.xlsx", {"Action plan": seed_rows(plan)}, {"Action plan": ["B1:F1"]})
    result = import_workbook(path, force_name=plan.force)
    assert notes(result) == []
    assert [a.id for a in result.plan.areas] == HMIC_IDS
    assert actions_of(result.plan, PUBLISHED) == actions_of(plan, PUBLISHED)
    assert result.plan.title == plan.title
    assert result.plan.force == plan.force
    assert set(result.plan.lead_names()) == {lead for _, a in plan.iter_actions() for lead in a.leads}
    assert result.mapped[("Completed", "Complete")] > 0


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_kept_one_sheet_per_area_imports_to_the_same_actions(example: Path, tmp_path: Path) -> None:
    plan = load_plan(example)
    sheets: dict[str, Rows] = {}
    for i, area in enumerate(plan.areas, start=1):
        rows: list[list[object]] = [[f"{i}. {area.name.replace(' and ', ' & ')}"], []]
        rows.append(["#", "Recommendation", "Response / Progress", "Deadline", "Owner", "Status", "Type"])
        for a in area.actions:
            rows.append(
                [a.ref, a.action, a.response, a.target, " / ".join(a.leads), a.status.upper(), a.kind]
            )
        sheets[f"{i}. {area.sheet}"] = rows
    result = import_workbook(workbook(tmp_path / "plan.xlsx", sheets))
    assert notes(result) == []
    assert [(a.id, a.name, a.sheet) for a in result.plan.areas] == [
        (a.id, a.name, a.sheet) for a in plan.areas
    ]
    assert actions_of(result.plan, PUBLISHED) == actions_of(plan, PUBLISHED)


# -- hand-made workbooks -------------------------------------------------------------------------------------

TITLE = "North Shire Police - Domestic Abuse Action Plan 2014"


def odd_workbook(tmp_path: Path) -> Path:
    """Two area sheets with odd headers, a merged title row, blank rows, RAG words and dates."""
    header = ["No.", "Recommendation", "Progress update", "Timescale", "Owner", "RAG"]
    lg: list[list[object]] = [
        [TITLE],
        [],
        header,
        [
            "1",
            "A named chief officer lead.",
            "ACC Smith appointed.",
            "September 2014",
            "Chief Constable",
            "green",
        ],
        [],
        [
            2,
            "Evidence of the lead driving activity.",
            "",
            dt.date(2015, 3, 31),
            "Chief Constable and Police and Crime Commissioner",
            "AMBER",
        ],
        [
            "3",
            "Strong governance.",
            "Board meets monthly.",
            "31/03/2016",
            "Head of Protect / Head of Solve",
            "Red",
        ],
        ["", "", "Continued: the board reviews MARACs.", "", "", ""],
        [
            "4",
            "Victims are surveyed.",
            "",
            "",
            "Head of Protect and Head of Managing People and Places",
            "Purple",
        ],
        [],
        [],
    ]
    ic: list[list[object]] = [
        ["Initial contact"],
        ["", "", "Key dates"],
        ["Ref", "Action", "Comments", "Target date", "Lead officer", "RAG status", "Cost centre"],
        ["1", "Call handlers are clear.", "Audits monthly.", "", "head of protect", "Completed", "CC-101"],
        ["2", "Standard risk model.", "", "", "Area Commanders; Head of Solve", "In progress", ""],
        ["3", "Unmappable status.", "", "", "", "Sort of", ""],
    ]
    return workbook(
        tmp_path / "odd.xlsx",
        {"Leadership & Governance": lg, "1. Initial contact": ic},
        {"Leadership & Governance": ["A1:F1"]},
    )


def test_odd_headers_rag_words_dates_and_compound_leads(tmp_path: Path) -> None:
    status_map = tmp_path / "map.yaml"
    status_map.write_text("purple: Embedded\n", encoding="utf-8")
    result = import_workbook(odd_workbook(tmp_path), status_map=load_status_map(status_map))
    plan = result.plan
    assert [a.id for a in plan.areas] == HMIC_IDS
    got = actions_of(plan)
    assert sorted(got) == ["IC-1", "IC-2", "IC-3", "LG-1", "LG-2", "LG-3", "LG-4"]
    lg1 = got["LG-1"][1]
    assert lg1 == {
        "ref": "1",
        "action": "A named chief officer lead.",
        "response": "ACC Smith appointed.",
        "target": "September 2014",
        "due": None,
        "leads": ["Chief Constable"],
        "status": "On track",
        "kind": "national",
        "notes": "",
    }
    lg2 = got["LG-2"][1]
    assert (lg2["ref"], lg2["target"], lg2["due"], lg2["status"]) == (
        "2",
        "31/03/2015",
        dt.date(2015, 3, 31),
        "At risk",
    )
    assert lg2["leads"] == ["Chief Constable", "Police and Crime Commissioner"]
    lg3 = got["LG-3"][1]
    assert (lg3["target"], lg3["due"], lg3["status"]) == ("31/03/2016", dt.date(2016, 3, 31), "Off track")
    assert lg3["leads"] == ["Head of Protect", "Head of Solve"]
    lg4 = got["LG-4"][1]
    assert lg4["leads"] == ["Head of Protect", "Head of Managing People and Places"]
    assert lg4["status"] == "Embedded"  # from the status map
    ic = {k: v[1] for k, v in got.items() if k.startswith("IC")}
    assert ic["IC-1"]["leads"] == ["Head of Protect"]  # the register's spelling
    assert ic["IC-1"]["status"] == "Complete"
    assert ic["IC-1"]["notes"] == "Cost centre: CC-101"  # a column not understood is kept, not lost
    assert ic["IC-2"]["leads"] == ["Area Commanders", "Head of Solve"]
    assert ic["IC-2"]["status"] == "On track"
    assert ic["IC-3"]["status"] == "Not started"
    assert plan.lead_names() == [
        "Chief Constable",
        "Police and Crime Commissioner",
        "Head of Protect",
        "Head of Solve",
        "Head of Managing People and Places",
        "Area Commanders",
    ]
    assert plan.title == TITLE
    # Every row it could not place, and every guess, with its sheet and row.
    assert notes(result) == [
        "sheet 'Leadership & Governance', row 8: text but no action text "
        "('Continued: the board reviews MARACs.'); the row was not imported",
        "sheet '1. Initial contact', row 6: status 'Sort of' is not one this import knows; set to Not started "
        "(map it with --status-map)",
    ]
    assert result.needs_person
    assert result.mapped == {
        ("green", "On track"): 1,
        ("AMBER", "At risk"): 1,
        ("Red", "Off track"): 1,
        ("Purple", "Embedded"): 1,
        ("Completed", "Complete"): 1,
        ("In progress", "On track"): 1,
    }


def test_odd_workbook_through_the_cli(tmp_path: Path) -> None:
    source = odd_workbook(tmp_path)
    status_map = tmp_path / "map.json"
    status_map.write_text(json.dumps({"Purple": "embedded", "sort of": "At risk"}), encoding="utf-8")
    out = tmp_path / "plan.yaml"
    result = run(source, "-o", out, "--status-map", status_map, "--force-name", "North Shire Police")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Imported {source.name} into {out}."
    assert "6 area(s), 7 action(s), 6 lead(s), 0 glossary term(s)." in lines
    assert (
        "Statuses mapped: AMBER → At risk (1), Completed → Complete (1), green → On track (1), "
        "In progress → On track (1), Purple → Embedded (1), Red → Off track (1), Sort of → At risk (1)"
    ) in lines
    assert lines[-2:] == [
        "Report (1):",
        "  sheet 'Leadership & Governance', row 8: text but no action text "
        "('Continued: the board reviews MARACs.'); the row was not imported",
    ]
    plan = load_plan(out)
    assert plan.force == "North Shire Police"
    assert plan.action_index()["IC-3"].status == "At risk"


def test_clean_hand_made_workbook_exits_zero(tmp_path: Path) -> None:
    source = workbook(
        tmp_path / "plan.xlsx",
        {
            "Investigation": [
                ["Ref", "Action", "Lead"],
                ["1", "Staff understand their roles.", "Head of Protect"],
            ]
        },
    )
    out = tmp_path / "plan.yaml"
    result = run(source, "-o", out)
    assert result.exit_code == 0, result.output
    assert "Report" not in result.stdout
    plan = load_plan(out)
    assert plan.title == "Domestic Abuse Action Plan"
    assert [(a.id, a.name, len(a.actions)) for a in plan.areas][3] == ("IN", "Investigation", 1)
    assert plan.areas[0].supporting_areas  # the template's key criteria and supporting areas are kept


def test_one_sheet_with_an_area_column(tmp_path: Path) -> None:
    long_area = "Training: Phase 1/2 [pilot] for all staff across the force"
    rows: list[list[object]] = [
        ["Domestic abuse action plan (tracker)"],
        [],
        ["Capability", "Ref", "Action", "Response", "Deadline", "Lead officer", "Status", "National / local"],
        [
            "Investigation",
            "1",
            "Staff understand roles.",
            "Done.",
            "",
            "Head of Protect",
            "Complete",
            "National",
        ],
        ["", "2", "Allocation is clear.", "", "", "Head of Protect", "", ""],
        ["Victims & Offenders", "1", "MARAC works.", "", "01/02/2015", "Area Commanders", "G", "National"],
        ["Victims & Offenders", "L1", "Serial perpetrators.", "", "", "Area Commanders", "a", "Local"],
        [long_area, "1", "Train everyone.", "", "2015", "Head crime training", "Ongoing", ""],
        [long_area, "2", "Train the trainers.", "", "", "Head crime training", "", "local"],
        ["Glossary"],  # text in the area column alone is not an action
    ]
    result = import_workbook(workbook(tmp_path / "tracker.xlsx", {"Tracker": rows}))
    plan = result.plan
    assert [a.id for a in plan.areas] == [*HMIC_IDS, "TP12"]
    new = plan.areas[-1]
    assert new.name == long_area
    assert sheet_name_problem(new.sheet) is None and len(new.sheet) <= 31
    assert new.sheet == "Training- Phase 1-2 -pilot- for"
    got = actions_of(plan)
    assert sorted(got) == ["IN-1", "IN-2", "MV-1", "MV-L1", "TP12-1", "TP12-L1"]
    assert got["IN-2"][1]["status"] == "Not started"  # an empty status is Not started, silently
    assert got["MV-1"][1]["due"] == dt.date(2015, 2, 1)
    assert got["MV-L1"][1]["kind"] == "local"
    assert got["MV-L1"][1]["status"] == "At risk"
    assert got["TP12-1"][1]["due"] is None and got["TP12-1"][1]["target"] == "2015"
    assert got["TP12-L1"][1]["kind"] == "local"
    assert plan.title == "Domestic abuse action plan (tracker)"
    assert notes(result) == [
        "sheet 'Tracker', row 10: text but no action text ('Glossary'); the row was not imported"
    ]


def test_glossary_sheet_and_unknown_areas_only(tmp_path: Path) -> None:
    sheets: dict[str, Rows] = {
        "Actions": [["Action", "Owner"], ["Publish the plan.", "Chief Constable"]],
        "Terms": [
            ["Abbreviations used"],
            ["Term", "Meaning"],
            ["MARAC", "Multi-Agency Risk Assessment Conference"],
            ["", "orphan definition"],
        ],
        "Cover": [["Prepared for the board"]],
    }
    result = import_workbook(workbook(tmp_path / "g.xlsx", sheets))
    plan = result.plan
    # No area matched the template, so the plan holds only the area the workbook has.
    assert [(a.id, a.name, a.sheet) for a in plan.areas] == [("A", "Actions", "Actions")]
    assert [(g.term, g.definition) for g in plan.glossary] == [
        ("MARAC", "Multi-Agency Risk Assessment Conference")
    ]
    assert notes(result) == [
        "sheet 'Terms', row 4: a definition without a term; not imported",
        "sheet 'Cover': no action table (no header row with an Action column in the first 30 rows); "
        "the sheet was skipped",
    ]
    assert result.needs_person  # the orphan definition


def test_merged_action_cell_continues_the_action(tmp_path: Path) -> None:
    rows = [
        ["Ref", "Action", "Response", "Lead"],
        ["1", "One action over two rows.", "First part.", "Head of Protect"],
        ["", "", "Second part.", "Head of Solve"],
        ["2", "Next action.", "", ""],
    ]
    result = import_workbook(
        workbook(tmp_path / "m.xlsx", {"Learning": rows}, {"Learning": ["B2:B3", "A2:A3"]})
    )
    first = result.plan.action_index()["LN-1"]
    assert first.response == "First part.\nSecond part."
    assert first.leads == ["Head of Protect", "Head of Solve"]
    assert result.notes == []


def test_local_section_heading_and_ids(tmp_path: Path) -> None:
    rows = [
        ["Ref", "Action", "Lead"],
        ["1", "National one.", "Head of Protect"],
        ["Local actions"],
        ["1", "Local one.", "Head of Protect"],
        ["National"],
        ["2", "National two.", "Head of Protect"],
    ]
    result = import_workbook(
        workbook(tmp_path / "l.xlsx", {"First Response": rows}, {"First Response": ["A3:C3"]})
    )
    fr = result.plan.areas[2]
    assert [(a.id, a.kind, a.action) for a in fr.actions] == [
        ("FR-1", "national", "National one."),
        ("FR-L1", "local", "Local one."),
        ("FR-2", "national", "National two."),
    ]


def test_split_leads() -> None:
    known = {"head of crime and justice": "Head of Crime and Justice"}
    assert split_leads("Head of Crime and Justice", known) == ["Head of Crime and Justice"]
    assert split_leads("HEAD OF CRIME AND JUSTICE; Head of Solve", known) == [
        "Head of Crime and Justice",
        "Head of Solve",
    ]
    assert split_leads("Chief Constable, PCC and ACC Smith", {}) == ["Chief Constable", "PCC", "ACC Smith"]
    assert split_leads("A / B", {}) == ["A", "B"]
    assert split_leads("Superintendent, Protecting Vulnerable People", {}) == [
        "Superintendent, Protecting Vulnerable People"
    ]
    assert split_leads("ACC Crime/Protect", {}) == ["ACC Crime/Protect"]


# -- unusable input: exit 2, one line, nothing written -----------------------------------------------------


def _not_a_workbook(tmp_path: Path) -> Path:
    path = tmp_path / "plan.xlsx"
    path.write_text("Ref,Action\n1,Do it\n", encoding="utf-8")
    return path


def _no_header(tmp_path: Path) -> Path:
    rows = [[f"row {i}", "text"] for i in range(40)] + [["Ref", "Action", "Lead"], ["1", "Too far down.", ""]]
    return workbook(tmp_path / "plan.xlsx", {"Sheet1": rows, "Other": [["Action only"]]})


def _legacy(tmp_path: Path) -> Path:
    path = tmp_path / "plan.xls"
    shutil.copyfile(FILES / "bad" / "legacy-return.xls", path)
    return path


@pytest.mark.parametrize(
    ("make", "phrases"),
    [
        (_not_a_workbook, ("text (CSV) file", "plan.xlsx")),
        (_no_header, ("no action table found", "first 30 rows", "plan.xlsx")),
        (_legacy, ("legacy Excel 97-2003", "save as Excel Workbook")),
    ],
    ids=["not-a-workbook", "no-header", "legacy-xls"],
)
def test_unusable_input_exits_2_and_writes_nothing(
    make: Any, phrases: tuple[str, ...], tmp_path: Path
) -> None:
    source = make(tmp_path)
    before = snapshot(tmp_path)
    result = run(source, "-o", tmp_path / "out.yaml")
    assert_one_line_error(result, *phrases)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag", ["--force", "--overwrite"])
def test_existing_output_is_refused_unless_forced(tmp_path: Path, flag: str) -> None:
    """`--force` overwrites, as in `new`; the old `--overwrite` still works."""
    source = odd_workbook(tmp_path)
    out = tmp_path / "plan.yaml"
    out.write_text("keep me\n", encoding="utf-8")
    before = snapshot(tmp_path)
    line = assert_one_line_error(run(source, "-o", out), "already exists", "pass --force")
    assert line.startswith("Error: ")
    assert snapshot(tmp_path) == before
    result = run(source, "-o", out, flag)
    assert result.exit_code == 1  # written, with rows for a person
    assert len(load_plan(out).iter_actions()) == 7


def test_output_onto_the_source_is_refused(tmp_path: Path) -> None:
    source = odd_workbook(tmp_path)
    before = snapshot(tmp_path)
    assert_one_line_error(run(source, "-o", source, "--force"), "the workbook itself")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("purple: Lilac\n", "'purple' to 'Lilac', which is not a status"),
        ("- a list\n", "not a mapping"),
        ("purple: [1\n", "cannot be parsed"),
    ],
)
def test_bad_status_map_exits_2(content: str, phrase: str, tmp_path: Path) -> None:
    source = odd_workbook(tmp_path)
    status_map = tmp_path / "map.yaml"
    status_map.write_text(content, encoding="utf-8")
    before = snapshot(tmp_path)
    assert_one_line_error(run(source, "-o", tmp_path / "out.yaml", "--status-map", status_map), phrase)
    assert snapshot(tmp_path) == before


def test_encrypted_workbook_is_refused_like_a_return(tmp_path: Path) -> None:
    import io

    from msoffcrypto.format.ooxml import OOXMLFile

    plain = odd_workbook(tmp_path)
    out = io.BytesIO()
    with plain.open("rb") as fh:
        OOXMLFile(fh).encrypt("Secret-2014", out)
    plain.write_bytes(out.getvalue())
    with pytest.raises(DaplanError, match="protected with a password"):
        import_workbook(plain)
    assert_one_line_error(run(plain, "-o", tmp_path / "out.yaml"), "protected with a password")
    assert not (tmp_path / "out.yaml").exists()


# -- properties ----------------------------------------------------------------------------------------------

_FORBIDDEN = "".join(chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF])
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=_FORBIDDEN), max_size=40)
# openpyxl writes "_x0041_" as it is, and every reader then decodes it to "A": not a case for the importer.
_ESCAPE = re.compile(r"_x[0-9A-Fa-f]{4}_")


@st.composite
def plain_rows(draw: st.DrawFn) -> list[tuple[str, str, str, str, bool]]:
    rows = draw(
        st.lists(
            st.tuples(
                TEXT.filter(lambda s: N.text(s) != ""),  # the action
                TEXT,  # the response
                TEXT,  # the target
                TEXT,  # the notes
                st.booleans(),  # a blank row after it
            ),
            min_size=1,
            max_size=8,
        )
    )
    assume(not any(_ESCAPE.search(s) for row in rows for s in row[:4]))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_rows())
def test_any_rows_import_to_exactly_those_actions(rows: list[tuple[str, str, str, str, bool]]) -> None:
    sheet: list[list[object]] = [["Plan title"], ["Ref", "Action", "Progress", "Target", "Notes"]]
    for i, (action, response, target, notes_text, blank_after) in enumerate(rows, start=1):
        sheet.append([f"{i:03d}", action, response, target, notes_text])
        if blank_after:
            sheet.append([])
    with tempfile.TemporaryDirectory() as tmp:
        result = import_workbook(workbook(Path(tmp) / "p.xlsx", {"Investigation": sheet}))
    assert result.notes == []
    (area,) = [a for a in result.plan.areas if a.actions]
    assert [(a.id, a.ref, a.action, a.response, a.target, a.notes, a.kind) for a in area.actions] == [
        (f"IN-{i}", f"{i:03d}", N.text(x), N.text(r), N.text(t), N.text(n), "national")
        for i, (x, r, t, n, _) in enumerate(rows, start=1)
    ]


LEADS = ["Chief Constable", "Head of Protect", "Head of Managing People and Places", "Area Commanders"]
STATUSES = [s.name for s in default_statuses()]
CHECKED = TEXT.filter(lambda s: check_text(s) == s)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    areas = []
    for a in range(draw(st.integers(1, 2))):
        actions = [
            Action(
                id=f"A{a}-{i}",
                ref=draw(TEXT),
                kind=draw(st.sampled_from(["national", "local"])),
                action=draw(CHECKED),
                response=draw(CHECKED),
                target=draw(CHECKED),
                due=draw(st.none() | st.dates(dt.date(2014, 1, 1), dt.date(2030, 12, 31))),
                leads=draw(st.lists(st.sampled_from(LEADS), max_size=3, unique=True)),
                status=draw(st.sampled_from(STATUSES)),
                notes=draw(CHECKED),
            )
            for i in range(draw(st.integers(0, 4)))
        ]
        areas.append(Area(id=f"A{a}", name=f"Area {a}", sheet=f"Area {a}", actions=actions))
    return Plan(id="plan-prop", title="Property plan", leads=[Lead(name=n) for n in LEADS], areas=areas)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_any_built_plan_imports_back_to_its_actions(plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "built.xlsx"
        write_workbook(plan, path)
        result = import_workbook(path)
    assert result.notes == []
    assert [(a.id, a.name, a.sheet) for a in result.plan.areas] == [
        (a.id, a.name, a.sheet) for a in plan.areas
    ]
    expected = {
        action.id: (
            area.id,
            {f: N.text(v) if isinstance(v, str) else v for f, v in ((f, getattr(action, f)) for f in FIELDS)},
        )
        for area, action in plan.iter_actions()
    }
    assert actions_of(result.plan) == expected
    assert result.plan.leads == plan.leads


def test_imported_plan_saves_and_loads(tmp_path: Path) -> None:
    result = import_workbook(odd_workbook(tmp_path))
    out = tmp_path / "plan.yaml"
    save_plan(result.plan, out)
    assert load_plan(out) == result.plan


def test_rows_that_only_look_like_headers_and_placeholder_leads(tmp_path: Path) -> None:
    rows = [
        ["Action", "Lead", "Last updated"],
        ["Task force formed", "Lead officer to confirm", "June 2015"],
        ["Update the policy", "TBC", ""],
        ["Status report to the board", "N/A", ""],
    ]
    result = import_workbook(workbook(tmp_path / "h.xlsx", {"Learning": rows}))
    learning = result.plan.areas[-1]
    assert [(a.id, a.action, a.leads, a.notes) for a in learning.actions] == [
        ("LN-1", "Task force formed", ["Lead officer to confirm"], "Last updated: June 2015"),
        ("LN-2", "Update the policy", [], ""),
        ("LN-3", "Status report to the board", [], ""),
    ]
    assert result.notes == []


def test_row_added_to_a_built_workbook_gets_a_fresh_id(tmp_path: Path) -> None:
    plan = load_plan(EXAMPLES[-1])
    built = tmp_path / "master.xlsx"
    write_workbook(plan, built)
    wb = openpyxl.load_workbook(built)
    ws = wb["Learning"]
    row = ws.max_row + 1
    ws.cell(row, 2, "5")
    ws.cell(row, 3, "A new local action.")
    ws.cell(row, 10, "Local")
    ws.cell(row, 1, plan.areas[-1].actions[0].id)  # a repeated ID is not kept
    wb.save(built)
    result = import_workbook(built)
    learning = result.plan.areas[-1]
    assert [a.id for a in learning.actions] == [a.id for a in plan.areas[-1].actions] + ["LN-L2"]
    assert learning.actions[-1].kind == "local"
    assert notes(result) == [
        f"sheet 'Learning', row {row}: ID 'LN-1' is not usable (repeated or not an id); a fresh id was given"
    ]
    assert not result.needs_person
