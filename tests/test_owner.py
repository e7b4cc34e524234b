"""The owner runs the plan from Excel: `daplan edit` writes the whole plan as a workbook, `daplan apply` applies
it three-way, journalled, with every check a lead's return gets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import make_client_files as C
import openpyxl
import pytest
from apps import require
from click.testing import CliRunner, Result
from conftest import EXAMPLES
from owner_edit import OwnerBook
from returns import ReturnEditor, write_formula

from daplan_xlsx.cli import cli
from daplan_xlsx.journal import journal_path, read_journal
from daplan_xlsx.meta import read_workbook_meta
from daplan_xlsx.planfile import load_plan

WEST_YORKSHIRE = next(p for p in EXAMPLES if p.name == "west-yorkshire-2014.yaml")


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan")


def entries(plan: Path) -> list[dict[str, Any]]:
    return read_journal(journal_path(plan), load_plan(plan).revision)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.yaml"
    shutil.copyfile(WEST_YORKSHIRE, plan)
    return plan


def edit(plan: Path, name: str = "owner.xlsx") -> Path:
    out = plan.parent / name
    result = run("edit", plan, "-o", out)
    assert result.exit_code == 0, result.output
    return out


def sample_edits(book: OwnerBook) -> None:
    """One of each kind of edit the issue names: add, withdraw, re-lead, rename a role, a status colour,
    a glossary term (and a new role, a plan text and an area's key criteria)."""
    book.register("Leads", "Area Commanders", "Role", "District Commanders")  # rename
    book.add("Leads", {"Role": "DCI Jones", "Email": "dci.jones@example.org"})  # a new role
    book.action("IN-3", "Lead", "DCI Jones", typed=True)  # re-lead
    book.action("LG-3", "Remove", "Remove", typed=True)  # withdraw
    book.new_action(
        "Leadership and Governance",
        {
            "Ref": "L9",
            "Action": "A local action added by the owner",
            "Lead": "DCI Jones",
            "Due": "31/03/2027",
        },
    )
    book.register("Statuses", "At risk", "Colour", "#FF9900")
    book.add("Glossary", {"Term": "IDVA", "Definition": "Independent Domestic Violence Adviser"})
    book.plan_field("Force", "West Yorkshire Police (edited)")
    book.area("LG", "Key criteria", "Leadership, governance and accountability")


def check_sample_applied(plan_path: Path, before: Any) -> None:
    plan = load_plan(plan_path)
    names = plan.lead_names()
    assert "Area Commanders" not in names and "District Commanders" in names and "DCI Jones" in names
    jones = next(lead for lead in plan.leads if lead.name == "DCI Jones")
    assert jones.email == "dci.jones@example.org"
    was = [a.id for _, a in before.iter_actions() if "Area Commanders" in a.leads]
    assert was, "the example has actions led by Area Commanders"
    index = plan.action_index()
    for action_id in was:  # the rename followed into every action that named the role
        if action_id != "IN-3":
            assert "District Commanders" in index[action_id].leads, action_id
    assert index["IN-3"].leads[0] == "DCI Jones"
    assert "LG-3" not in index  # withdrawn
    added = [a for a in plan.areas[0].actions if a.action == "A local action added by the owner"]
    assert len(added) == 1 and added[0].id == "LG-N1" and added[0].leads == ["DCI Jones"]
    assert added[0].due is not None and added[0].due.isoformat() == "2027-03-31"
    assert added[0].ref == "L9" and added[0].kind == "local"
    assert next(s for s in plan.statuses if s.name == "At risk").colour.upper() == "#FF9900"
    assert any(g.term == "IDVA" for g in plan.glossary)
    assert plan.force == "West Yorkshire Police (edited)"
    assert plan.areas[0].key_criteria == "Leadership, governance and accountability"
    events = [e["event"] for e in entries(plan_path)]
    for kind in ("return", "plan", "change", "add", "withdraw"):
        assert kind in events, kind


# -- the round trip and the CLI -------------------------------------------------------------------------------


def test_round_trip_changes_nothing(example: Path) -> None:
    before = example.read_bytes()
    owner = edit(example)
    meta = read_workbook_meta(owner)
    assert meta.meta is not None and meta.meta.kind == "owner" and meta.signed
    issued = entries(example)
    assert [e["event"] for e in issued] == ["issue"] and issued[0]["kind"] == "owner"
    result = run("apply", example, owner)
    assert result.exit_code == 0, result.output
    assert "Nothing to apply" in result.output
    assert example.read_bytes() == before
    assert entries(example) == issued


def test_round_trip_after_a_save_in_openpyxl(example: Path) -> None:
    """Opening and saving without a change (openpyxl re-writes every cell) changes nothing either."""
    owner = edit(example)
    before = example.read_bytes()
    openpyxl.load_workbook(owner).save(owner)
    result = run("apply", example, owner)
    assert result.exit_code == 0, result.output
    assert example.read_bytes() == before


def test_each_kind_of_edit_through_openpyxl_then_undo(example: Path) -> None:
    before = load_plan(example)
    book = OwnerBook(edit(example))
    sample_edits(book)
    edited = book.apply_openpyxl(example.parent / "edited.xlsx")

    dry = run("apply", example, edited, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "IN-3: lead Area Commanders → DCI Jones" in dry.output or "IN-3: lead" in dry.output
    assert "Lead role 'Area Commanders' renamed 'District Commanders'" in dry.output
    assert "LG-N1: new action in Leadership and Governance" in dry.output
    assert "LG-3: withdrawn" in dry.output
    assert load_plan(example) == before  # nothing written

    result = run("apply", example, edited)
    assert result.exit_code == 0, result.output
    check_sample_applied(example, before)

    again = run("apply", example, edited)
    assert again.exit_code == 0 and "applied already" in again.output

    undo = run("undo", example)
    assert undo.exit_code == 0, undo.output
    after = load_plan(example)
    assert after.model_dump(exclude={"revision"}) == before.model_dump(exclude={"revision"})

    # An id once given is never given again: LG-N1 was added and undone, so the next new action is LG-N2.
    book = OwnerBook(edit(example, "owner2.xlsx"))
    book.action("LG-3", "Remove", "Remove")
    book.new_action("Leadership and Governance", {"Action": "Another local action"})
    assert run("apply", example, book.apply_openpyxl(example.parent / "e2.xlsx")).exit_code == 0
    ids = load_plan(example).action_index()
    assert "LG-3" not in ids and "LG-N1" not in ids and "LG-N2" in ids


def test_dry_run_speaks_in_the_plans_terms(example: Path) -> None:
    book = OwnerBook(edit(example))
    book.add("Leads", {"Role": "DCI Jones"})
    book.action("IN-3", "Lead", "DCI Jones")
    result = run("apply", example, book.apply_openpyxl(example.parent / "e.xlsx"), "--dry-run")
    before = load_plan(WEST_YORKSHIRE).action_index()["IN-3"].leads[0]
    assert f"IN-3: lead {before} → DCI Jones" in result.output
    assert "Dry run: nothing was written." in result.output


def test_merge_refuses_the_owners_workbook_and_apply_refuses_a_leads(example: Path) -> None:
    owner = edit(example)
    merged = run("merge", example, owner)
    assert merged.exit_code == 1
    assert "daplan apply" in merged.output
    outbox = example.parent / "outbox"
    assert run("distribute", example, "-o", outbox).exit_code == 0
    lead = sorted(outbox.glob("*.xlsx"))[0]
    refused = run("apply", example, lead)
    assert refused.exit_code == 2
    assert "not the owner's workbook" in refused.output and "daplan merge" in refused.output


# -- checks ------------------------------------------------------------------------------------------------


def test_refused_values_become_open_items(example: Path) -> None:
    owner = edit(example)
    book = OwnerBook(owner)
    book.action("IN-3", "Lead", "Nobody We Know")
    book.action("IN-2", "Status", "Finished")
    book.action("IN-1", "Due", "31/02/2027")
    path = book.apply_openpyxl(example.parent / "e.xlsx")
    wb = openpyxl.load_workbook(path)
    ed = ReturnEditor(path)
    ed.wb = wb
    write_formula(ed.cell("IN-4", "response"), '=HYPERLINK("http://example.org")')
    wb.save(path)
    result = run("apply", example, path)
    assert result.exit_code == 1, result.output
    opened = [e for e in entries(example) if e["event"] == "open"]
    assert {(e["action_id"], e["field"], e["kind"]) for e in opened} == {
        ("IN-3", "lead", "rejected"),
        ("IN-2", "status", "rejected"),
        ("IN-1", "due", "rejected"),
        ("IN-4", "response", "rejected"),
    }
    assert all(e["candidates"][0]["recipient"] == "Plan owner" for e in opened)
    status = run("status", example)
    assert "IN-3" in status.output


def test_a_broken_result_is_refused_in_one_line(example: Path) -> None:
    before = example.read_bytes()
    book = OwnerBook(edit(example))
    book.register("Leads", "Area Commanders", "Role", "PCC")  # two roles of one name
    result = run("apply", example, book.apply_openpyxl(example.parent / "e.xlsx"))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("Error:")
        and "PCC" in lines[0]
        and "Traceback" not in lines[0]
    )
    assert example.read_bytes() == before


def test_removing_a_role_in_use_is_refused_and_an_unused_one_removed(example: Path) -> None:
    book = OwnerBook(edit(example))
    book.add("Leads", {"Role": "Unused role"})
    assert run("apply", example, book.apply_openpyxl(example.parent / "e.xlsx")).exit_code == 0
    assert "Unused role" in load_plan(example).lead_names()
    book = OwnerBook(edit(example, "o2.xlsx"))
    book.register("Leads", "Unused role", "Remove", "Remove")
    book.register("Leads", "Chief Constable", "Remove", "Remove")
    result = run("apply", example, book.apply_openpyxl(example.parent / "e2.xlsx"))
    assert result.exit_code == 1, result.output
    names = load_plan(example).lead_names()
    assert "Unused role" not in names and "Chief Constable" in names
    assert "still named by" in result.output


def test_deleting_a_row_withdraws_nothing(example: Path) -> None:
    owner = edit(example)
    wb = openpyxl.load_workbook(owner)
    ws = wb["Leadership and Governance"]
    row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "LG-2")
    ws.delete_rows(row)
    wb.save(owner)
    result = run("apply", example, owner)
    assert result.exit_code == 0, result.output
    assert "LG-2" in load_plan(example).action_index()
    assert "nothing is withdrawn by deleting a row" in result.output


# -- three-way with the leads' returns -------------------------------------------------------------------------


def test_an_edit_conflicting_with_a_merged_return_becomes_an_open_item(example: Path) -> None:
    outbox, inbox = example.parent / "outbox", example.parent / "inbox"
    inbox.mkdir()
    assert run("distribute", example, "-o", outbox).exit_code == 0
    owner = edit(example)  # made before the leads' returns are merged
    manifest = json.loads((outbox / "manifest.json").read_text())
    entry = next(w for w in manifest["workbooks"] if "IN-1" in w["scope"] and "IN-2" in w["scope"])
    ret = ReturnEditor(outbox / entry["file"])
    ret.set("IN-1", "response", "The lead's response")
    ret.set("IN-2", "target", "The lead's target")
    ret.save(inbox / entry["file"])
    assert run("merge", example, inbox / entry["file"]).exit_code == 0

    book = OwnerBook(owner)
    book.action("IN-1", "Response", "The owner's response")  # the same field: a conflict
    book.action("IN-2", "Notes", "The owner's note")  # another field: applied
    result = run("apply", example, book.apply_openpyxl(example.parent / "e.xlsx"))
    assert result.exit_code == 1, result.output
    plan = load_plan(example).action_index()
    assert plan["IN-1"].response == "The lead's response"  # never overwritten
    assert plan["IN-2"].target == "The lead's target"  # the lead's merged value is kept
    assert plan["IN-2"].notes == "The owner's note"
    opened = [e for e in entries(example) if e["event"] == "open"]
    assert len(opened) == 1
    item = opened[0]
    assert (item["action_id"], item["field"], item["kind"]) == ("IN-1", "response", "conflict")
    assert item["current"] == "The lead's response"
    assert item["candidates"][0]["value"] == "The owner's response"
    assert item["candidates"][0]["source"].endswith("e.xlsx")
    settled = run("resolve", example, "IN-1", "response", "--take", "1", "--reason", "owner's wording")
    assert settled.exit_code == 0, settled.output
    assert load_plan(example).action_index()["IN-1"].response == "The owner's response"


# -- LibreOffice ----------------------------------------------------------------------------------------------


def require_uno() -> None:
    require("soffice")
    if not C.has_uno():
        import os

        message = f"{C.uno_python()} cannot import uno (python3-uno is not installed)"
        if os.environ.get("DAPLAN_REQUIRE_APPS"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.libreoffice
@pytest.mark.slow
def test_each_kind_of_edit_through_libreoffice(example: Path) -> None:
    require_uno()
    before = load_plan(example)
    book = OwnerBook(edit(example))
    sample_edits(book)
    edited = example.parent / "edited.xlsx"
    report = C.libreoffice(book.path, edited, book.as_lo_edits())
    assert report["version"] and len(report["edits"]) == len(book.edits)  # saved by LibreOffice itself
    result = run("apply", example, edited)
    assert result.exit_code == 0, result.output
    check_sample_applied(example, before)


@pytest.mark.libreoffice
@pytest.mark.slow
def test_a_new_force_from_new_to_distribute_without_a_text_editor(tmp_path: Path) -> None:
    """The issue's test: new → edit → leads listed and assigned in LibreOffice → apply → distribute."""
    require_uno()
    plan = tmp_path / "plan.yaml"
    assert run("new", "--force-name", "North Wales Police", "-o", plan).exit_code == 0
    fresh = load_plan(plan)
    owner = edit(plan)
    book = OwnerBook(owner)
    roles = ["ACC Protective Services", "Head of Protect", "Head of Learning and Development"]
    for role in roles:
        book.add("Leads", {"Role": role})
    for n, (_, action) in enumerate(fresh.iter_actions()):
        book.action(action.id, "Lead", roles[n % len(roles)], typed=True)
    book.new_action("Learning", {"Action": "North Wales's own action", "Lead": "Head of Protect"})
    edited = tmp_path / "owner-edited.xlsx"
    report = C.libreoffice(owner, edited, book.as_lo_edits())
    assert report["version"] and len(report["edits"]) == len(book.edits)

    applied = run("apply", plan, edited)
    assert applied.exit_code == 0, applied.output
    done = load_plan(plan)
    assert done.lead_names() == roles
    assert all(action.leads for _, action in done.iter_actions())
    assert run("validate", plan).exit_code == 0
    outbox = tmp_path / "outbox"
    distributed = run("distribute", plan, "-o", outbox)
    assert distributed.exit_code == 0, distributed.output
    manifest = json.loads((outbox / "manifest.json").read_text())
    assert sorted(w["recipient"] for w in manifest["workbooks"]) == sorted(roles)
    issued = sum(len(w["scope"]) for w in manifest["workbooks"])
    assert issued == len(done.iter_actions()) == len(fresh.iter_actions()) + 1
