"""`daplan demo`: the whole loop on the bundled example, in one command."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from daplan_xlsx import journal as J
from daplan_xlsx import layout as L
from daplan_xlsx.cli import cli
from daplan_xlsx.demo import LABEL, OWNER_ROLE, SAMPLE_EDITS
from daplan_xlsx.planfile import load_plan


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", str(folder)])
    assert result.exit_code == 0, result.output
    out = result.output
    for n in range(1, 17):
        assert f"== {n}. " in out
    for command in (
        "validate",
        "edit",
        "apply",
        "distribute",
        "collect",
        "diff",
        "merge",
        "status",
        "chase",
        "build",
        "export",
        "report",
    ):
        assert f"$ daplan {command} " in out
    # The round by email: a draft per lead, one reply collected from a saved email, reminders for the rest.
    assert "--round" in out and "--mail" in out
    drafts = sorted(p.name for p in (folder / "drafts").iterdir())
    # One per lead with an address: the role the owner added in the owner's workbook has none yet, and is
    # listed rather than drafted.
    addressed = [lead for lead in load_plan(folder / "plan.yaml").leads if lead.email]
    assert len(drafts) == len(addressed) and all(d.endswith(".eml") for d in drafts)
    assert [p.suffix for p in (folder / "saved-mail").iterdir()] == [".eml"]
    assert "1 workbook(s) saved" in out
    reminded = sorted(p.name for p in (folder / "reminders").iterdir())
    assert reminded and all(r.startswith("reminder-") for r in reminded)
    assert not any(e.recipient.lower().replace(" ", "-") in r for e in SAMPLE_EDITS for r in reminded)

    plan = load_plan(folder / "plan.yaml")
    assert plan.revision == 3  # the owner's edits, then the merge
    actions = plan.action_index()
    # The owner's sample edits: a lead role added and given to LG-1, a glossary term.
    assert OWNER_ROLE in plan.lead_names() and actions["LG-1"].leads == [OWNER_ROLE]
    assert any(g.term == "IDVA" and g.definition.startswith(LABEL) for g in plan.glossary)
    assert "LG-1: lead (empty) → " in out
    # Applied: the sample edits without a conflict or a refused value.
    assert actions["LG-4"].status == "Complete" and actions["LG-4"].response.startswith(LABEL)
    assert actions["LN-2"].target == "March 2016"
    # The conflict and the invalid value are left for a person, never applied.
    assert not actions["LG-2"].response.startswith(LABEL)
    assert actions["FR-3"].status != "Finished"
    assert "Conflict (1):" in out and "Rejected (1):" in out and "'Finished' is not in the list" in out

    journal = J.read_journal(J.journal_path(folder / "plan.yaml"), 3)
    changes = [e for e in journal if e["event"] == "change" and e["revision"] == 3]
    assert {(e["action_id"], e["field"]) for e in changes} == {
        ("LG-4", "status"),
        ("LG-4", "response"),
        ("MV-1", "due"),
        ("LN-2", "target"),
    }
    assert (folder / "conflicts.xlsx").is_file()
    assert sorted(p.name for p in (folder / "inbox").iterdir()) == sorted(
        {f"{e.recipient.lower().replace(' ', '-')}.xlsx" for e in SAMPLE_EDITS}
    )
    wb = openpyxl.load_workbook(folder / "master.xlsx")
    assert wb.sheetnames[0] == L.DASHBOARD_SHEET
    html = (folder / "plan.html").read_text(encoding="utf-8")
    assert plan.title in html
    # It ends with the board report, recorded as a publication like the export.
    assert "== 16. The board report ==" in out and (folder / "board.pdf").read_bytes().startswith(b"%PDF-")
    publications = [
        e for e in J.read_journal(J.journal_path(folder / "plan.yaml"), 3) if e["event"] == "publish"
    ]
    assert [e["format"] for e in publications] == ["html", "pdf"]


def test_demo_refuses_a_folder_in_use_unless_forced(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", str(folder)])
    assert result.exit_code == 2
    assert "the folder is not empty" in result.output and "--force" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]
    result = CliRunner().invoke(cli, ["demo", str(folder), "--force"])
    assert result.exit_code == 0, result.output
    assert (folder / "mine.txt").read_text(encoding="utf-8") == "keep me"


def test_demo_stops_with_exit_2_at_a_step_that_cannot_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that exits 2 (here: the copied plan does not validate) ends the demo there, exit 2."""
    import daplan_xlsx.demo as demo

    real = demo.prepare_folder

    def broken(folder: Path, force: bool) -> Path:
        plan = real(folder, force)
        text = plan.read_text(encoding="utf-8")
        plan.write_text(text.replace("status: Complete", "status: Done", 1), encoding="utf-8")
        return plan

    monkeypatch.setattr(demo, "prepare_folder", broken)
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "demo")])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: the demo stopped at step 2. Check it: see the message above"
    )
    assert "== 3. " not in result.stdout
