"""`daplan distribute`: one workbook per lead (or area), named by slug, with a manifest that says what went where."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from conftest import EXAMPLES, fixed_clock, make_plan
from returns import run_daplan

from daplan_xlsx.cli import cli
from daplan_xlsx.distribute import MANIFEST, distribute, recipients, slug
from daplan_xlsx.errors import DaplanError, OutputExists
from daplan_xlsx.merge import file_sha256
from daplan_xlsx.meta import read_workbook_meta
from daplan_xlsx.model import Action, Lead, Plan
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.signing import write_key

PLANS: list[tuple[str, Callable[[], Plan]]] = [("make_plan", make_plan)] + [
    (p.stem, lambda p=p: load_plan(p)) for p in EXAMPLES
]
PLAN_IDS = [name for name, _ in PLANS]
PLAN_MAKERS = [maker for _, maker in PLANS]


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan")


def assert_one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


def saved(tmp_path: Path, plan: Plan) -> Path:
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def about(path: Path) -> dict[str, str]:
    """The About sheet's label -> value pairs, plus every line under "Sheets" joined as "sheets"."""
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = [list(r) for r in wb["About"].iter_rows(values_only=True)]
    finally:
        wb.close()
    facts: dict[str, str] = {}
    label = ""
    for row in rows:
        a = row[0] if row else None
        b = row[1] if len(row) > 1 else None
        if a:
            label = str(a)
        if b is not None:
            facts[label] = (facts[label] + "\n" if label in facts else "") + str(b)
    return facts


# -- by lead -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_one_workbook_per_lead_and_shared_actions_go_to_each(
    tmp_path: Path, make: Callable[[], Plan]
) -> None:
    plan = make()
    out = tmp_path / "outbox"
    manifest = distribute(plan, out, clock=fixed_clock)

    leads_with_actions = [n for n in plan.lead_names() if any(n in a.leads for _, a in plan.iter_actions())]
    workbooks = manifest["workbooks"]
    assert [wb["recipient"] for wb in workbooks] == leads_with_actions
    # Every action goes to each of its leads, primary or supporting, and to nobody else.
    for _, action in plan.iter_actions():
        got = {wb["recipient"] for wb in workbooks if action.id in wb["scope"]}
        assert got == set(action.leads), action.id
    # The manifest on disk is what distribute returned.
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8")) == manifest
    assert manifest["plan_id"] == plan.id
    assert manifest["plan_revision"] == plan.revision
    assert manifest["by"] == "lead"
    assert manifest["signed"] is False
    assert manifest["issued_at"] == fixed_clock().isoformat()
    assert len({wb["issue_id"] for wb in workbooks}) == len(workbooks)
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, *(wb["file"] for wb in workbooks)])
    for wb in workbooks:
        assert set(wb) >= {"issue_id", "recipient", "file", "sha256", "scope", "plan_revision"}
        path = out / wb["file"]
        assert wb["file"] == slug(wb["recipient"]) + ".xlsx"
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.xlsx", wb["file"])
        assert wb["sha256"] == file_sha256(path)
        assert wb["plan_revision"] == plan.revision
        assert sorted(wb["scope"]) == sorted(
            a.id for _, a in plan.iter_actions() if wb["recipient"] in a.leads
        )
        meta = read_workbook_meta(path)
        assert meta.verdict == "unsigned"
        assert meta.meta is not None
        assert meta.meta.issue_id == wb["issue_id"]
        assert meta.meta.recipient == wb["recipient"]
        assert meta.meta.scope == wb["scope"]
        assert meta.meta.plan_id == plan.id
        facts = about(path)
        assert facts["Issued to"] == wb["recipient"]
        assert facts["Issue reference"] == wb["issue_id"]
        for action_id in wb["scope"]:
            assert re.search(rf"(?<![\w-]){re.escape(action_id)}(?![\w-])", facts["Sheets"]), action_id
        others = set(plan.action_index()) - set(wb["scope"])
        for action_id in others:
            assert not re.search(rf"(?<![\w-]){re.escape(action_id)}(?![\w-])", facts["Sheets"]), action_id


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_cli_distribute_by_lead(tmp_path: Path, make: Callable[[], Plan]) -> None:
    plan = make()
    out = tmp_path / "outbox"
    result = run("distribute", saved(tmp_path, plan), "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    expected = recipients(plan, "lead")
    assert [wb["recipient"] for wb in manifest["workbooks"]] == [r.name for r in expected]
    assert [wb["scope"] for wb in manifest["workbooks"]] == [r.scope for r in expected]
    for wb in manifest["workbooks"]:
        assert f"{wb['file']}\t{wb['recipient']}\t{len(wb['scope'])} action(s)" in result.stdout
        assert (out / wb["file"]).is_file()
    assert f"Wrote {len(expected)} workbook(s)" in result.stdout


def test_workbook_holds_only_its_scope_on_the_right_sheets(tmp_path: Path) -> None:
    plan = make_plan()
    manifest = distribute(plan, tmp_path / "out", clock=fixed_clock)
    by_recipient = {wb["recipient"]: wb for wb in manifest["workbooks"]}
    # make_plan: LG-1 is led by the Chief Constable and supported by the Head of Protect.
    assert by_recipient["Chief Constable"]["scope"] == ["LG-1"]
    assert by_recipient["Head of Protect"]["scope"] == ["LG-1", "LG-2"]
    assert by_recipient["Area Commanders"]["scope"] == ["LG-L1", "IC-1"]
    wb = openpyxl.load_workbook(tmp_path / "out" / "area-commanders.xlsx")
    area_sheets = [
        ws.title
        for ws in wb.worksheets
        if ws.sheet_state == "visible" and ws.title not in ("About", "Glossary")
    ]
    assert area_sheets == ["Leadership and Governance", "Initial Contact"]
    ids = [wb["Leadership and Governance"].cell(r, 1).value for r in range(6, 8)]
    assert ids == ["LG-L1", None]
    assert wb["Initial Contact"].cell(6, 1).value == "IC-1"
    assert wb["daplan_meta"].sheet_state == "veryHidden"


# -- by area -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_by_area(tmp_path: Path, make: Callable[[], Plan]) -> None:
    plan = make()
    out = tmp_path / "outbox"
    result = run("distribute", saved(tmp_path, plan), "-o", out, "--by", "area")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["by"] == "area"
    areas = [a for a in plan.areas if a.actions]
    assert [wb["recipient"] for wb in manifest["workbooks"]] == [a.name for a in areas]
    for wb, area in zip(manifest["workbooks"], areas, strict=True):
        assert sorted(wb["scope"]) == sorted(a.id for a in area.actions)
        assert wb["file"] == slug(area.name) + ".xlsx"
        assert wb["sha256"] == file_sha256(out / wb["file"])
        assert about(out / wb["file"])["Issued to"] == area.name
    # Every action is issued exactly once.
    issued = [i for wb in manifest["workbooks"] for i in wb["scope"]]
    assert sorted(issued) == sorted(plan.action_index())


# -- --only --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Head of Protect", "head of protect", "head-of-protect"])
def test_only_one_recipient(tmp_path: Path, name: str) -> None:
    plan = make_plan()
    out = tmp_path / "outbox"
    result = run("distribute", saved(tmp_path, plan), "-o", out, "--only", name)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert [wb["recipient"] for wb in manifest["workbooks"]] == ["Head of Protect"]
    assert manifest["workbooks"][0]["scope"] == ["LG-1", "LG-2"]
    assert sorted(p.name for p in out.iterdir()) == ["head-of-protect.xlsx", MANIFEST]


def test_only_an_area(tmp_path: Path) -> None:
    out = tmp_path / "outbox"
    result = run(
        "distribute", saved(tmp_path, make_plan()), "-o", out, "--by", "area", "--only", "Initial Contact"
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert [(wb["recipient"], wb["scope"]) for wb in manifest["workbooks"]] == [("Initial Contact", ["IC-1"])]


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_only_unknown_name_lists_the_names(tmp_path: Path, make: Callable[[], Plan]) -> None:
    plan = make()
    out = tmp_path / "outbox"
    result = run("distribute", saved(tmp_path, plan), "-o", out, "--only", "Head of Nothing")
    line = assert_one_line_error(result)
    assert "Head of Nothing" in line
    for r in recipients(plan, "lead"):
        assert r.name in line
    assert not out.exists()


def test_only_unknown_name_library_raises(tmp_path: Path) -> None:
    with pytest.raises(DaplanError, match="no recipient named") as info:
        distribute(make_plan(), tmp_path / "out", only="Nobody")
    assert "Chief Constable, Head of Protect, Area Commanders" in info.value.one_line()
    assert not (tmp_path / "out").exists()


# -- --only --force into an existing outbox: re-issuing one recipient -------------------------------------------


def status_of(plan_path: Path, outbox: Path, inbox: Path) -> dict[str, Any]:
    result = run("status", plan_path, outbox, inbox, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_reissue_one_recipient_keeps_the_others(tmp_path: Path) -> None:
    """`--only NAME --force` into the outbox of the same plan replaces NAME's entry and keeps the others, so
    `daplan status` still knows every workbook issued, and matches returns of the old and the new issues."""
    plan_path = saved(tmp_path, make_plan())
    out, inbox = tmp_path / "outbox", tmp_path / "inbox"
    inbox.mkdir()
    assert run("distribute", plan_path, "-o", out).exit_code == 0
    before = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    old = {wb["recipient"]: wb for wb in before["workbooks"]}
    # Area Commanders returns the workbook first issued; Head of Protect's is then re-issued.
    shutil.copyfile(out / old["Area Commanders"]["file"], inbox / "ac-return.xlsx")
    ac_bytes = (out / old["Area Commanders"]["file"]).read_bytes()
    # Head of Protect had already sent back the workbook that is about to be replaced.
    shutil.copyfile(out / old["Head of Protect"]["file"], inbox / "hop-first-return.xlsx")

    result = run("distribute", plan_path, "-o", out, "--only", "head of protect", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "head-of-protect.xlsx\tHead of Protect\t2 action(s)",
        f"Wrote 1 workbook(s) and {out / MANIFEST} (which keeps the 2 other workbook(s) issued before).",
    ]
    after = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    new = {wb["recipient"]: wb for wb in after["workbooks"]}
    assert [wb["recipient"] for wb in after["workbooks"]] == [wb["recipient"] for wb in before["workbooks"]]
    assert (
        new["Chief Constable"] == old["Chief Constable"] and new["Area Commanders"] == old["Area Commanders"]
    )
    assert (out / old["Area Commanders"]["file"]).read_bytes() == ac_bytes
    hop = new["Head of Protect"]
    assert hop["issue_id"] != old["Head of Protect"]["issue_id"]
    assert hop["file"] == old["Head of Protect"]["file"] and hop["scope"] == ["LG-1", "LG-2"]
    assert hop["sha256"] == file_sha256(out / hop["file"]) != old["Head of Protect"]["sha256"]
    assert read_workbook_meta(out / hop["file"]).meta.issue_id == hop["issue_id"]  # type: ignore[union-attr]
    assert hop["issued_at"] >= old["Head of Protect"]["issued_at"] == before["issued_at"]
    assert after["plan_id"] == before["plan_id"] and after["by"] == "lead" and after["signed"] is True
    assert before["superseded"] == []
    assert after["superseded"] == [{**old["Head of Protect"], "superseded_at": hop["issued_at"]}]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST, *(wb["file"] for wb in before["workbooks"])]
    )

    shutil.copyfile(out / hop["file"], inbox / "hop-return.xlsx")
    data = status_of(plan_path, out, inbox)
    rows = {r["recipient"]: r for r in data["recipients"]}
    assert list(rows) == ["Chief Constable", "Head of Protect", "Area Commanders"]
    assert rows["Area Commanders"]["returned"] == ["ac-return.xlsx"]
    assert rows["Head of Protect"]["returned"] == ["hop-return.xlsx"]
    assert rows["Head of Protect"]["returned_earlier_issue"] == ["hop-first-return.xlsx"]
    assert rows["Area Commanders"]["returned_earlier_issue"] == []
    assert rows["Chief Constable"]["outstanding"] is True
    assert rows["Head of Protect"]["issued_at"] == hop["issued_at"]
    assert rows["Area Commanders"]["issued_at"] == before["issued_at"]
    assert data["totals"]["issued"] == 3 and data["totals"]["returned"] == 2
    assert data["unmatched_files"] == []
    text = run("status", plan_path, out, inbox).stdout
    assert "returned a workbook issued before it was re-issued: hop-first-return.xlsx" in text
    assert "Not from this outbox" not in text


def test_reissue_into_an_older_manifest_keeps_each_issue_time(tmp_path: Path) -> None:
    """A manifest written before entries carried their own issue time: the others keep the old one."""
    plan = make_plan()
    out = tmp_path / "outbox"
    first = distribute(plan, out, clock=fixed_clock)
    for wb in first["workbooks"]:
        del wb["issued_at"]
    (out / MANIFEST).write_text(json.dumps(first), encoding="utf-8")
    later = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
    manifest = distribute(plan, out, only="Chief Constable", force=True, clock=lambda: later)
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8")) == manifest
    times = {wb["recipient"]: wb["issued_at"] for wb in manifest["workbooks"]}
    assert times == {
        "Chief Constable": later.isoformat(),
        "Head of Protect": fixed_clock().isoformat(),
        "Area Commanders": fixed_clock().isoformat(),
    }
    # Without --only, --force writes a new distribution: the manifest lists that alone.
    whole = distribute(plan, out, force=True, clock=lambda: later)
    assert {wb["issued_at"] for wb in whole["workbooks"]} == {later.isoformat()}


def plan_with_names_that_slug_alike() -> Plan:
    """The test plan with two more leads whose names slug to the same as "Head of Protect", on one action."""
    data = make_plan().model_dump()
    data["leads"] += [Lead(name="Head-of Protect").model_dump(), Lead(name="Head of Protect!").model_dump()]
    data["areas"][1]["actions"].append(
        Action(id="IC-2", ref="2", action="x", leads=["Head-of Protect", "Head of Protect!"]).model_dump()
    )
    return Plan.model_validate(data)


def test_reissue_keeps_file_names_of_names_that_slug_alike(tmp_path: Path) -> None:
    """Re-issued, a recipient keeps its file; a recipient new to the outbox gets a name nobody has."""
    plan = plan_with_names_that_slug_alike()
    out = tmp_path / "out"
    first = distribute(plan, out, clock=fixed_clock)
    files = {wb["recipient"]: wb["file"] for wb in first["workbooks"]}
    assert files["Head of Protect!"] == "head-of-protect-3.xlsx"
    again = distribute(plan, out, only="Head of Protect!", force=True, clock=fixed_clock)
    assert {wb["recipient"]: wb["file"] for wb in again["workbooks"]} == files
    for wb in again["workbooks"]:
        assert read_workbook_meta(out / wb["file"]).meta.recipient == wb["recipient"]  # type: ignore[union-attr]
    # A lead given actions after the distribution is added, under a name no other workbook has.
    data = plan.model_dump()
    data["leads"].append(Lead(name="Head of Protect (2)").model_dump())
    data["areas"][1]["actions"][0]["leads"].append("Head of Protect (2)")
    grown = Plan.model_validate(data)
    added = distribute(grown, out, only="Head of Protect (2)", force=True, clock=fixed_clock)
    got = {wb["recipient"]: wb["file"] for wb in added["workbooks"]}
    assert {k: v for k, v in got.items() if k in files} == files
    assert len(set(got.values())) == len(got) == len(files) + 1


@pytest.mark.parametrize("by", ["lead", "area"])
def test_reissue_into_another_plans_outbox_is_refused(tmp_path: Path, by: str) -> None:
    other = make_plan().model_copy(update={"id": "plan-elsewhere"})
    out = tmp_path / "outbox"
    distribute(other, out, by=by, clock=fixed_clock)  # type: ignore[arg-type]
    before = snapshot(out)
    name = "Head of Protect" if by == "lead" else "Initial Contact"
    plan_path = saved(tmp_path, make_plan())
    line = assert_one_line_error(
        run("distribute", plan_path, "-o", out, "--by", by, "--only", name, "--force")
    )
    assert "another plan" in line and "plan-elsewhere" in line and "plan-test" in line
    assert snapshot(out) == before


def test_reissue_by_another_kind_is_refused(tmp_path: Path) -> None:
    """An outbox issued per lead is not re-issued per area: the manifest would mix the two."""
    plan_path = saved(tmp_path, make_plan())
    out = tmp_path / "outbox"
    assert run("distribute", plan_path, "-o", out).exit_code == 0
    before = snapshot(out)
    line = assert_one_line_error(
        run("distribute", plan_path, "-o", out, "--by", "area", "--only", "Initial Contact", "--force")
    )
    assert "by lead" in line and "--by lead" in line
    assert snapshot(out) == before


# -- file names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Head of Protect & Safeguarding", "head-of-protect-safeguarding"),
        ("Head of Managing People and Places", "head-of-managing-people-and-places"),
        ("Détective Supérintendent (Öst)", "detective-superintendent-ost"),
        ("  ACC / Crime ", "acc-crime"),
        ("../../etc/passwd", "etc-passwd"),
        ("!!!", "recipient"),
        ("x" * 200, "x" * 80),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_names_that_slug_alike_get_distinct_files(tmp_path: Path) -> None:
    plan = plan_with_names_that_slug_alike()
    manifest = distribute(plan, tmp_path / "out", clock=fixed_clock)
    files = [wb["file"] for wb in manifest["workbooks"]]
    assert len(set(files)) == len(files)
    assert {"head-of-protect.xlsx", "head-of-protect-2.xlsx", "head-of-protect-3.xlsx"} <= set(files)
    for wb in manifest["workbooks"]:
        assert read_workbook_meta(tmp_path / "out" / wb["file"]).meta.recipient == wb["recipient"]  # type: ignore[union-attr]


# -- refusing to overwrite -------------------------------------------------------------------------------------


def test_non_empty_folder_refused_unless_force(tmp_path: Path) -> None:
    plan_path = saved(tmp_path, make_plan())
    out = tmp_path / "outbox"
    assert run("distribute", plan_path, "-o", out).exit_code == 0
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(out)

    line = assert_one_line_error(run("distribute", plan_path, "-o", out))
    assert "not empty" in line and "--force" in line
    assert snapshot(out) == before

    result = run("distribute", plan_path, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    after = snapshot(out)
    assert after["notes.txt"] == b"mine"
    old = json.loads(before[MANIFEST])
    new = json.loads(after[MANIFEST])
    assert [wb["file"] for wb in new["workbooks"]] == [wb["file"] for wb in old["workbooks"]]
    assert {wb["issue_id"] for wb in new["workbooks"]}.isdisjoint(wb["issue_id"] for wb in old["workbooks"])
    for wb in new["workbooks"]:
        assert wb["sha256"] == file_sha256(out / wb["file"])


def test_non_empty_folder_refused_by_library(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.xlsx").write_bytes(b"old")
    with pytest.raises(OutputExists):
        distribute(make_plan(), out)
    assert snapshot(out) == {"x.xlsx": b"old"}


def test_output_is_a_file(tmp_path: Path) -> None:
    plan_path = saved(tmp_path, make_plan())
    target = tmp_path / "afile"
    target.write_bytes(b"keep")
    assert_one_line_error(run("distribute", plan_path, "-o", target))
    assert target.read_bytes() == b"keep"


def test_plan_without_leads_is_an_error(tmp_path: Path) -> None:
    data = make_plan().model_dump()
    for area in data["areas"]:
        for action in area["actions"]:
            action["leads"] = []
    plan_path = saved(tmp_path, Plan.model_validate(data))
    line = assert_one_line_error(run("distribute", plan_path, "-o", tmp_path / "out"))
    assert "lead" in line


# -- signing -------------------------------------------------------------------------------------------------------


def test_key_file_signs_every_workbook(tmp_path: Path) -> None:
    key = write_key(tmp_path / "owner.key")
    other = write_key(tmp_path / "other.key")
    out = tmp_path / "outbox"
    result = run("distribute", saved(tmp_path, make_plan()), "-o", out, "--key-file", tmp_path / "owner.key")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["signed"] is True
    for wb in manifest["workbooks"]:
        path = out / wb["file"]
        good = read_workbook_meta(path, key)
        assert (good.verdict, good.signed, good.signature_checked) == ("intact", True, True)
        unchecked = read_workbook_meta(path, None)
        assert (unchecked.verdict, unchecked.signature_checked) == ("intact", False)
        assert read_workbook_meta(path, other).verdict == "tampered"


def test_missing_key_file_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "outbox"
    line = assert_one_line_error(
        run("distribute", saved(tmp_path, make_plan()), "-o", out, "--key-file", tmp_path / "nope.key")
    )
    assert "key" in line
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_progress_bar_only_on_a_terminal(tmp_path: Path, terminal: bool) -> None:
    plan = load_plan(EXAMPLES[0])
    assert len(recipients(plan, "lead")) >= 5
    out = tmp_path / "outbox"
    code, stdout, stderr = run_daplan(
        ["distribute", str(saved(tmp_path, plan)), "-o", str(out)], terminal=terminal
    )
    assert code == 0, stdout + stderr
    assert f"Wrote {len(recipients(plan, 'lead'))} workbook(s)" in stdout
    if terminal:
        assert "Writing workbooks" in stderr and "100%" in stderr
        assert "Writing workbooks" not in stdout
    else:
        assert stderr == ""
