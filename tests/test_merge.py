"""`daplan merge`: returns distributed, edited with openpyxl and merged back, through the CLI and the library."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from apps import require
from click.testing import CliRunner, Result
from conftest import EXAMPLES, fixed_clock, make_plan
from openpyxl.utils import get_column_letter as openpyxl_letter
from returns import Loop, ReturnEditor, edit_return, plan_row, run_daplan

from daplan_xlsx import journal as J
from daplan_xlsx.cli import cli
from daplan_xlsx.distribute import distribute
from daplan_xlsx.errors import DaplanError
from daplan_xlsx.merge import MergeResult, commit_merge, file_sha256, merge_returns
from daplan_xlsx.mergeview import RESOLUTION_RECIPIENT, render_report
from daplan_xlsx.meta import field_value, read_workbook_meta
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import dumps_plan, load_plan, save_plan
from daplan_xlsx.signing import write_key

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
PLANS: list[tuple[str, Callable[[], Plan]]] = [("make_plan", make_plan)] + [
    (p.stem, lambda p=p: load_plan(p)) for p in EXAMPLES
]
PLAN_IDS = [name for name, _ in PLANS]
PLAN_MAKERS = [maker for _, maker in PLANS]
# The keys of each journal line: those every line has, then each event's own.
LINE_KEYS = {"event", "time", "revision", "return", "sha256", "issue_id", "recipient"}
CHANGE_KEYS = LINE_KEYS | {"action_id", "field", "old", "new", "stamp"}
RETURN_KEYS = LINE_KEYS | {"issued_at", "proposals_pending"}
ADD_KEYS = LINE_KEYS | {"action_id", "area", "sheet", "row", "values"}


# -- helpers ----------------------------------------------------------------------------------------------------


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan", env={"DAPLAN_KEY_FILE": None})


def merge_cli(loop: Loop, *args: object) -> tuple[Result, dict[str, Any]]:
    """`daplan merge PLAN ... --json`; the parsed JSON (empty when the command failed)."""
    result = run("merge", loop.plan_path, *args, "--json")
    data = json.loads(result.stdout) if result.exit_code in (0, 1) else {}
    return result, data


def merge_lib(
    loop: Loop, files: list[Path], *, dry_run: bool = False, key: bytes | None = None, **kw: Any
) -> MergeResult:
    """What `daplan merge` does, through the library, with a fixed clock."""
    plan = loop.plan
    entries = J.read_journal(loop.journal, plan.revision)
    result = merge_returns(plan, files, key=key, journal=entries, now=NOW, **kw)
    if not dry_run:
        commit_merge(loop.plan_path, result)
    return result


def items_of(data: dict[str, Any], outcome: str | None = None) -> list[dict[str, Any]]:
    return [i for i in data["items"] if outcome is None or i["outcome"] == outcome]


def find_item(data: dict[str, Any], action_id: str, field_: str, outcome: str) -> dict[str, Any]:
    found = [i for i in items_of(data, outcome) if i["action_id"] == action_id and i["field"] == field_]
    assert len(found) == 1, (action_id, field_, outcome, data["items"])
    return found[0]


def content(plan_bytes: bytes) -> bytes:
    """A plan file's bytes apart from its revision: a merge that only records (returns seen, open items)
    is still a commit, with a revision of its own."""
    import re

    return re.sub(rb"(?m)^revision: \d+$", b"revision: -", plan_bytes)


def value(plan: Plan, action_id: str, field_: str) -> str:
    return field_value(plan.action_index()[action_id], field_)


def with_shared_action(plan: Plan) -> Plan:
    """The plan itself when an action has two leads; else one with a second lead added to an action."""
    if any(len(a.leads) >= 2 for _, a in plan.iter_actions()):
        return plan
    data = plan.model_dump()
    actions = [a for area in data["areas"] for a in area["actions"] if a["leads"]]
    for a in actions:
        other = next((b["leads"][0] for b in actions if b["leads"][0] not in a["leads"]), None)
        if other:
            a["leads"].append(other)
            return Plan.model_validate(data)
    raise AssertionError("the plan has a single lead: cannot share an action")


def as_dict(result: MergeResult) -> dict[str, Any]:
    return json.loads(json.dumps(result.as_json(), default=str))


@dataclass
class Cast:
    """Who does what in the end-to-end scenario, chosen from any plan."""

    shared: str  # an action with two leads
    a: str  # its primary lead
    b: str  # its second lead
    c: str  # a third recipient, whose return is tampered with
    a_other: str  # an action of A's (another one when A has one)
    b_other: str  # an action of B's (another one when B has one)
    outside: str  # an action not issued to A
    c_action: str
    area_sheet: str = ""  # A's first area sheet, where rows are pasted and added
    files: dict[str, Path] = field(default_factory=dict)


A_RESPONSE = "Response from A: the review finished in October."
B_RESPONSE = "Response from B: the review is still going on."
A_TARGET = "Target set by A: March 2027"
B_NOTES = "Notes from B (=not a formula)"
BAD_STATUS = "Nearly there"
PASTED = "Pasted by A into the wrong workbook"
TAMPERED_EDIT = "An edit inside a tampered return"
NEW_ACTION = "Proposed by A: a new local action on repeat victims"
NEW_RESPONSE = "Proposed response: pilot in the north"


def cast(loop: Loop) -> Cast:
    plan = loop.plan
    shared = next(a for _, a in plan.iter_actions() if len(a.leads) >= 2)
    a, b = shared.leads[0], shared.leads[1]
    c = next(r for r in loop.recipients() if r not in (a, b))
    scope_a, scope_b = loop.scope(a), loop.scope(b)
    a_other = next((i for i in scope_a if i != shared.id), shared.id)
    b_other = next((i for i in scope_b if i != shared.id), shared.id)
    outside = next(i for _, x in plan.iter_actions() if (i := x.id) not in scope_a)
    return Cast(shared.id, a, b, c, a_other, b_other, outside, loop.scope(c)[0])


def messy_returns(loop: Loop) -> Cast:
    """Three returns: A and B disagree on the shared response and make other, clean edits; A pastes a row
    outside its scope and proposes a new row; B types an unknown status; C's metadata was hand-edited."""
    k = cast(loop)
    plan = loop.plan
    ed = loop.editor(k.a).set(k.shared, "response", A_RESPONSE).set(k.a_other, "target", A_TARGET)
    k.area_sheet = ed.area_sheets()[0].title
    ed.paste_action(plan, k.outside, k.area_sheet, response=PASTED)
    ed.add_row({"action": NEW_ACTION, "response": NEW_RESPONSE}, k.area_sheet)
    k.files["a"] = ed.save(loop.inbox / "a-return.xlsx")
    ed = loop.editor(k.b).set(k.shared, "response", B_RESPONSE).set(k.b_other, "notes", B_NOTES)
    ed.set(k.b_other, "status", BAD_STATUS)
    k.files["b"] = ed.save(loop.inbox / "b-return.xlsx")
    ed = loop.editor(k.c).set(k.c_action, "response", TAMPERED_EDIT).tamper_meta("checksum")
    k.files["c"] = ed.save(loop.inbox / "c-return.xlsx")
    return k


def clean_returns(loop: Loop) -> dict[str, Path]:
    """Non-conflicting, valid edits from every recipient; the expected plan values by (action, field)."""
    plan = loop.plan
    statuses = plan.status_names()
    files = {}
    seen: set[tuple[str, str]] = set()
    for n, r in enumerate(loop.recipients()):
        edits: dict[tuple[str, str], object] = {}
        for action_id in loop.scope(r):
            # each (action, field) pair edited by one recipient only
            for f in ("notes", "target", "status"):
                if (action_id, f) not in seen:
                    seen.add((action_id, f))
                    if f == "status":
                        current = value(plan, action_id, "status")
                        edits[(action_id, f)] = next(s for s in statuses if s != current)
                    else:
                        edits[(action_id, f)] = f"{f} from {r} #{n}"
                    break
        files[r] = loop.returned(r, edits)
    return files


def journal_changes(loop: Loop) -> list[dict[str, Any]]:
    return [e for e in loop.journal_lines() if e["event"] == "change"]


# -- end to end ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cli", "library"])
@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_merge_end_to_end(tmp_path: Path, make: Callable[[], Plan], mode: str) -> None:
    loop = Loop(tmp_path, with_shared_action(make()), clock=fixed_clock)
    before = loop.plan
    k = messy_returns(loop)
    files = [k.files["a"], k.files["b"], k.files["c"]]
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if mode == "cli":
        result, data = merge_cli(loop, *files, "--report", tmp_path / "report.txt")
        assert result.exit_code == 1, result.output
        report = (tmp_path / "report.txt").read_text(encoding="utf-8")
    else:
        merged = merge_lib(loop, files)
        assert merged.needs_person
        data = as_dict(merged)
        report = render_report(merged, False)
    finished = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    after = loop.plan

    # The plan: clean edits applied and stamped, the revision raised by one, nothing else changed.
    assert after.revision == before.revision + 1 == data["revision"]
    assert value(after, k.a_other, "target") == A_TARGET
    assert value(after, k.b_other, "notes") == B_NOTES
    assert value(after, k.shared, "response") == value(before, k.shared, "response")
    assert value(after, k.b_other, "status") == value(before, k.b_other, "status")
    assert value(after, k.outside, "response") == value(before, k.outside, "response")
    assert value(after, k.c_action, "response") == value(before, k.c_action, "response")
    assert len(after.iter_actions()) == len(before.iter_actions())
    old_index, new_index = before.action_index(), after.action_index()
    stamped = {k.a_other: {k.a}, k.b_other: {k.b}}
    if k.a_other == k.b_other:
        stamped = {k.a_other: {k.a, k.b}}
    for action_id, action in new_index.items():
        if action_id in stamped:
            assert action.updated is not None
            if mode == "library":
                assert action.updated == NOW
            else:
                assert started <= action.updated <= finished
            names = set(action.updated_by.split(", "))
            assert names and names <= stamped[action_id], action.updated_by
        else:
            assert action == old_index[action_id], action_id

    # The items: the conflict with both candidates, the two applied edits, the refused values.
    conflict = find_item(data, k.shared, "response", "conflict")
    assert {(c["source"], c["recipient"], c["value"]) for c in conflict["candidates"]} == {
        (str(k.files["a"]), k.a, A_RESPONSE),
        (str(k.files["b"]), k.b, B_RESPONSE),
    }
    assert conflict["base"] == conflict["current"] == value(before, k.shared, "response")
    assert str(k.files["a"]) in conflict["source"] and str(k.files["b"]) in conflict["source"]
    assert conflict["reason"]
    applied = find_item(data, k.a_other, "target", "applied")
    assert applied["new"] == A_TARGET and applied["source"] == str(k.files["a"])
    assert find_item(data, k.b_other, "notes", "applied")["new"] == B_NOTES
    bad = find_item(data, k.b_other, "status", "rejected")
    assert bad["new"] == BAD_STATUS and bad["source"] == str(k.files["b"])
    assert "status" in bad["reason"]
    assert len(items_of(data, "applied")) == 2

    # The tampered return is refused as a whole.
    summaries = {Path(r["file"]).name: r for r in data["returns"]}
    assert summaries["c-return.xlsx"]["accepted"] is False
    assert summaries["c-return.xlsx"]["verdict"] == "tampered"
    assert "tampered" in summaries["c-return.xlsx"]["note"]
    assert summaries["a-return.xlsx"]["accepted"] and summaries["b-return.xlsx"]["accepted"]
    refused = [i for i in items_of(data, "rejected") if i["source"] == str(k.files["c"])]
    assert len(refused) == 1 and "tampered" in refused[0]["reason"]
    assert not any(i["action_id"] == k.c_action and i["outcome"] == "applied" for i in data["items"])

    # The pasted row outside A's scope is a finding and a rejected value kept with its field, not a change.
    outside = [f for f in data["findings"] if f["kind"] == "out-of-scope"]
    assert [(f["action_id"], f["source"]) for f in outside] == [(k.outside, str(k.files["a"]))]
    pasted = [i for i in data["items"] if i["action_id"] == k.outside and str(k.files["a"]) in i["source"]]
    assert [(i["field"], i["outcome"], i["new"]) for i in pasted] == [("response", "rejected", PASTED)]
    assert pasted[0]["reason"].startswith("out-of-scope: ")

    # The new row is a proposal, not added without --accept-new.
    assert [(p["values"]["action"], p["new_id"]) for p in data["proposals"]] == [(NEW_ACTION, "")]

    # The report names all of it.
    for text in (
        "1 conflict(s)",
        "2 applied",
        A_RESPONSE,
        B_RESPONSE,
        f"a-return.xlsx ({k.a})",
        f"b-return.xlsx ({k.b})",
        f"[value: {BAD_STATUS}]",
        "REJECTED: c-return.xlsx",
        "tampered",
        "not added (use --accept-new)",
        f"action {k.outside} was not issued in this workbook",
    ):
        assert text in report, text

    # The journal: a line per accepted return and per applied change, committed at the new revision.
    lines = loop.journal_lines()
    assert J.read_journal(loop.journal, after.revision) == lines
    returns = [e for e in lines if e["event"] == "return"]
    assert {e["recipient"] for e in returns} == {k.a, k.b}
    for e in returns:
        assert set(e) == RETURN_KEYS
        assert e["issue_id"] == loop.entry(e["recipient"])["issue_id"]
        assert e["sha256"] == file_sha256(Path(e["return"]))
        assert e["revision"] == after.revision
        assert e["issued_at"] == fixed_clock().isoformat()
        # A's proposed row was left unadded (no --accept-new): its return is not fully merged.
        assert e["proposals_pending"] == (1 if e["recipient"] == k.a else 0)
    assert not any(e["event"] == "add" for e in lines)
    changes = journal_changes(loop)
    assert sorted((e["action_id"], e["field"], e["old"], e["new"]) for e in changes) == sorted(
        [
            (k.a_other, "target", value(before, k.a_other, "target"), A_TARGET),
            (k.b_other, "notes", value(before, k.b_other, "notes"), B_NOTES),
        ]
    )
    for e in changes:
        assert set(e) == CHANGE_KEYS
        who = k.a if e["field"] == "target" else k.b
        assert e["recipient"] == who
        assert e["return"] == str(k.files["a" if who == k.a else "b"])
        assert e["sha256"] == file_sha256(Path(e["return"]))
        assert e["issue_id"] == loop.entry(who)["issue_id"]
        assert e["revision"] == after.revision
        stamp = dt.datetime.fromisoformat(e["time"])
        assert stamp.tzinfo is not None
        if mode == "library":
            assert stamp == NOW

    # Merging the same files again changes nothing.
    plan_bytes, journal_bytes = loop.snapshot()
    if mode == "cli":
        again, data2 = merge_cli(loop, *files)
        assert again.exit_code == 1  # the tampered return is still refused
    else:
        data2 = as_dict(merge_lib(loop, files))
    assert loop.snapshot() == (plan_bytes, journal_bytes)
    assert items_of(data2, "applied") == []
    notes = {Path(r["file"]).name: r["note"] for r in data2["returns"]}
    assert notes["b-return.xlsx"] == "already merged"
    # A's proposal is still open (and said to be), but nothing A said is decided again.
    assert notes["a-return.xlsx"].startswith("already merged; its 1 proposed new action(s) are not added")
    assert [(p["values"]["action"], p["new_id"]) for p in data2["proposals"]] == [(NEW_ACTION, "")]
    assert not any(str(k.files["a"]) in i["source"] for i in data2["items"])


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_clean_merge_exits_0_and_a_second_merge_changes_nothing(
    tmp_path: Path, make: Callable[[], Plan]
) -> None:
    loop = Loop(tmp_path, make())
    before = loop.plan
    files = clean_returns(loop)
    result, data = merge_cli(loop, *files.values())
    assert result.exit_code == 0, result.output
    assert items_of(data, "conflict") == items_of(data, "rejected") == []
    after = loop.plan
    assert after.revision == before.revision + 1
    changes = journal_changes(loop)
    assert len(changes) == len(items_of(data, "applied")) > 0
    changed_by: dict[str, set[str]] = {}
    for e in changes:
        assert value(after, e["action_id"], e["field"]) == e["new"]
        assert value(before, e["action_id"], e["field"]) == e["old"]
        changed_by.setdefault(e["action_id"], set()).add(e["recipient"])
    for action_id, who in changed_by.items():
        assert after.action_index()[action_id].updated is not None
        assert set(after.action_index()[action_id].updated_by.split(", ")) <= who

    snap = loop.snapshot()
    again, data2 = merge_cli(loop, *files.values())
    assert again.exit_code == 0, again.output
    assert loop.snapshot() == snap
    assert data2["items"] == [] and data2["revision"] == after.revision
    assert {r["note"] for r in data2["returns"]} == {"already merged"}
    assert "0 applied" in run("merge", loop.plan_path, *files.values()).stdout


def test_untouched_returns_change_nothing(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    files = [loop.returned(r) for r in loop.recipients()]
    plan_bytes = loop.plan_path.read_bytes()
    result, data = merge_cli(loop, *files)
    assert result.exit_code == 0, result.output
    assert data["items"] == [] and data["revision"] == 2
    assert content(loop.plan_path.read_bytes()) == content(plan_bytes)
    assert journal_changes(loop) == []


# -- --dry-run, --report ----------------------------------------------------------------------------------------


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    k = messy_returns(loop)
    plan_bytes, journal_bytes = loop.snapshot()  # the journal holds the record of issues
    result = run("merge", loop.plan_path, *k.files.values(), "--dry-run")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("Dry run: nothing written.")
    assert "2 applied" in result.stdout
    assert loop.snapshot() == (plan_bytes, journal_bytes)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".plan.yaml.lock") == [
        "inbox",
        "outbox",
        "plan.journal.jsonl",
        "plan.yaml",
    ]

    # With a journal already there, its bytes stay as they were too.
    clean = loop.returned(k.c, {(k.c_action, "notes"): "clean"}, name="c-clean.xlsx")
    assert merge_cli(loop, clean)[0].exit_code == 0
    snap = loop.snapshot()
    assert snap[1] is not None
    result = run(
        "merge", loop.plan_path, *k.files.values(), "--dry-run", "--accept-new", "--combine-responses"
    )
    assert result.exit_code == 1, result.output  # the tampered return and the unknown status remain
    assert "added as LG-N1" in result.stdout and "combined 2 updates" not in result.stdout
    assert loop.snapshot() == snap


def test_report_file(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    k = messy_returns(loop)
    report = tmp_path / "report.txt"
    result = run("merge", loop.plan_path, *k.files.values(), "--report", report)
    assert result.exit_code == 1
    text = report.read_text(encoding="utf-8")
    assert text == result.stdout
    assert A_RESPONSE in text and B_RESPONSE in text and "Plan now at revision 2." in text

    # --report with --json: the report still goes to the file, JSON to stdout.
    report2 = tmp_path / "report2.txt"
    result = run("merge", loop.plan_path, *k.files.values(), "--report", report2, "--json", "--dry-run")
    assert json.loads(result.stdout)["format"] == 1
    assert report2.read_text(encoding="utf-8").startswith("Dry run: nothing written.")


# -- conflicts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_conflicts_workbook_round_trip(tmp_path: Path, make: Callable[[], Plan]) -> None:
    loop = Loop(tmp_path, with_shared_action(make()))
    k = cast(loop)
    fa = loop.returned(k.a, {(k.shared, "response"): A_RESPONSE, (k.shared, "status"): "At risk"})
    fb = loop.returned(k.b, {(k.shared, "response"): B_RESPONSE, (k.shared, "status"): "Off track"})
    book = tmp_path / "conflicts.xlsx"
    result = run("merge", loop.plan_path, fa, fb, "--conflicts-workbook", book)
    assert result.exit_code == 1, result.output
    assert f"Conflicts workbook: {book}" in result.stdout
    assert book.is_file()

    meta = read_workbook_meta(book)
    assert meta.meta is not None and meta.meta.recipient == RESOLUTION_RECIPIENT
    assert meta.meta.scope == [k.shared]
    assert meta.meta.plan_revision == loop.plan.revision
    ed = ReturnEditor(book)
    conflicts = ed.wb["Conflicts"]
    rows = [[str(v or "") for v in r] for r in conflicts.iter_rows(min_row=2, values_only=True)]
    assert {(r[0], r[1], r[6]) for r in rows} == {
        (k.shared, "Response", A_RESPONSE),
        (k.shared, "Response", B_RESPONSE),
        (k.shared, "Status", "At risk"),
        (k.shared, "Status", "Off track"),
    }
    assert all(("a-" in r[5] or fa.name in r[5] or fb.name in r[5]) for r in rows)
    # The field to settle is a yellow (editable) cell; type the chosen value there.
    cell = ed.cell(k.shared, "response")
    assert cell.fill.fgColor.rgb.upper().endswith("FFF2CC")
    chosen = "Settled by the owner: " + A_RESPONSE
    ed.set(k.shared, "response", chosen).set(k.shared, "status", "off track")
    settled = ed.save(tmp_path / "conflicts-settled.xlsx")

    revision = loop.plan.revision
    result, _data = merge_cli(loop, settled)
    assert result.exit_code == 0, result.output
    after = loop.plan
    assert value(after, k.shared, "response") == chosen
    assert value(after, k.shared, "status") == "Off track"
    assert after.revision == revision + 1
    assert after.action_index()[k.shared].updated_by == RESOLUTION_RECIPIENT
    assert {(e["field"], e["new"]) for e in journal_changes(loop) if e["revision"] == after.revision} == {
        ("response", chosen),
        ("status", "Off track"),
    }


def test_no_conflicts_no_workbook(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    book = tmp_path / "conflicts.xlsx"
    result = run("merge", loop.plan_path, *clean_returns(loop).values(), "--conflicts-workbook", book)
    assert result.exit_code == 0
    assert not book.exists()


def test_same_value_from_two_leads_is_applied_once(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    same = "Both leads wrote this."
    fa = loop.returned("Chief Constable", {("LG-1", "response"): same})
    fb = loop.returned("Head of Protect", {("LG-1", "response"): same})
    result, data = merge_cli(loop, fa, fb)
    assert result.exit_code == 0, result.output
    item = find_item(data, "LG-1", "response", "applied")
    assert {c["recipient"] for c in item["candidates"]} == {"Chief Constable", "Head of Protect"}
    assert value(loop.plan, "LG-1", "response") == same
    assert loop.plan.action_index()["LG-1"].updated_by == "Chief Constable, Head of Protect"
    assert len(journal_changes(loop)) == 1


@pytest.mark.parametrize("contributors", [2, 3])
def test_combine_responses_keeps_every_text(tmp_path: Path, contributors: int) -> None:
    """Several district commanders return the one "Area Commanders" workbook with different responses."""
    loop = Loop(tmp_path, make_plan())
    texts = [f"District {n}: =rolled out\nsecond line {n}" for n in range(1, contributors + 1)]
    files = []
    for n, text in enumerate(texts, start=1):
        ed = loop.editor("Area Commanders").set("IC-1", "response", text).saved_by(f"Insp. Person {n}")
        files.append(ed.save(loop.inbox / f"district-{n}.xlsx"))
    conflict, _ = merge_cli(loop, *files, "--dry-run")
    assert conflict.exit_code == 1  # without the flag, a conflict

    result, data = merge_cli(loop, *files, "--combine-responses")
    assert result.exit_code == 0, result.output
    item = find_item(data, "IC-1", "response", "applied")
    assert item["reason"] == f"combined {contributors} updates"
    combined = value(loop.plan, "IC-1", "response")
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    for n, (text, path) in enumerate(zip(texts, files, strict=True), start=1):
        assert text in combined
        assert f"[{today}, Area Commanders, Insp. Person {n}, {path.name}]\n{text}" in combined
    (change,) = journal_changes(loop)
    assert change["new"] == combined and change["field"] == "response"


def test_combine_does_not_join_other_fields(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    f1 = loop.returned("Area Commanders", {("IC-1", "status"): "At risk"}, name="d1.xlsx")
    f2 = loop.returned("Area Commanders", {("IC-1", "status"): "Off track"}, name="d2.xlsx")
    result, data = merge_cli(loop, f1, f2, "--combine-responses")
    assert result.exit_code == 1
    find_item(data, "IC-1", "status", "conflict")


# -- new rows -------------------------------------------------------------------------------------------------------


def proposing(loop: Loop) -> Path:
    ed = loop.editor("Area Commanders")
    ed.add_row(
        {"action": NEW_ACTION, "response": NEW_RESPONSE, "status": "on track", "due": dt.date(2027, 5, 1)},
        "Initial Contact",
    )
    return ed.save(loop.inbox / "ac.xlsx")


def test_new_row_is_a_proposal_until_accepted(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    f = proposing(loop)
    result, data = merge_cli(loop, f, "--dry-run")
    assert result.exit_code == 1
    assert [(p["sheet"], p["new_id"], p["values"]["action"]) for p in data["proposals"]] == [
        ("Initial Contact", "", NEW_ACTION)
    ]
    assert "IC-N1" not in loop.plan.action_index()

    result, data = merge_cli(loop, f, "--accept-new")
    assert result.exit_code == 0, result.output
    assert [p["new_id"] for p in data["proposals"]] == ["IC-N1"]
    plan = loop.plan
    assert plan.revision == 2
    new = plan.action_index()["IC-N1"]
    assert (new.kind, new.action, new.response, new.status, new.due) == (
        "local",
        NEW_ACTION,
        NEW_RESPONSE,
        "On track",
        dt.date(2027, 5, 1),
    )
    assert plan.areas[1].actions[-1].id == "IC-N1"
    assert new.updated is not None and "proposed by" in new.updated_by


def test_merging_leaves_the_plan_merged_into_as_it_was(tmp_path: Path) -> None:
    """The merged plan is built beside the plan given, never in it: edits and added rows alike."""
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Area Commanders").set("IC-1", "notes", "notes from the return")
    ed.add_row({"action": NEW_ACTION, "response": NEW_RESPONSE}, "Initial Contact")
    f = ed.save(loop.inbox / "ac.xlsx")
    plan = loop.plan
    before = dumps_plan(plan)
    result = merge_returns(plan, [f], accept_new=True, now=NOW)
    assert dumps_plan(plan) == before
    assert result.base is plan
    assert value(result.plan, "IC-1", "notes") == "notes from the return"
    assert "IC-N1" in result.plan.action_index() and "IC-N1" not in plan.action_index()
    assert result.plan.revision == plan.revision + 1


def test_accepted_new_ids_are_fresh(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Area Commanders")
    ed.add_row({"action": "first new"}, "Initial Contact")
    ed.add_row({"action": "second new"}, "Initial Contact")
    f1 = ed.save(loop.inbox / "one.xlsx")
    result, _ = merge_cli(loop, f1, "--accept-new")
    assert result.exit_code == 0, result.output
    ids = [a.id for a in loop.plan.areas[1].actions]
    assert ids == ["IC-1", "IC-N1", "IC-N2"]
    # A later workbook's proposal gets the next id, never one in use.
    loop2 = Loop(tmp_path / "again", loop.plan)
    f2 = edit_return(loop2.issued("Area Commanders"), loop2.inbox / "two.xlsx")
    ed = ReturnEditor(f2)
    ed.add_row({"action": "third new"}, "Initial Contact")
    ed.save(f2)
    assert merge_cli(loop2, f2, "--accept-new")[0].exit_code == 0
    assert [a.id for a in loop2.plan.areas[1].actions] == ["IC-1", "IC-N1", "IC-N2", "IC-N3"]


def test_accept_new_after_a_plain_merge(tmp_path: Path) -> None:
    """A return merged without --accept-new is not fully merged: merged again with it, its proposals are added
    and nothing else it says is decided again; after that it is merged, and the journal says so."""
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Area Commanders").set("IC-1", "notes", "notes from the return")
    ed.add_row({"action": NEW_ACTION, "response": NEW_RESPONSE}, "Initial Contact")
    f = ed.save(loop.inbox / "ac.xlsx")
    result = run("merge", loop.plan_path, f)
    assert result.exit_code == 1
    assert "not added (use --accept-new)" in result.stdout
    assert value(loop.plan, "IC-1", "notes") == "notes from the return"
    assert loop.plan.revision == 2
    (first,) = [e for e in loop.journal_lines() if e["event"] == "return"]
    assert first["proposals_pending"] == 1

    # Merged again without the flag: still pending, still exit 1, nothing written.
    snap = loop.snapshot()
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1
    assert loop.snapshot() == snap
    assert data["items"] == [] and [p["new_id"] for p in data["proposals"]] == [""]
    assert "merge again with --accept-new" in data["returns"][0]["note"]

    # The owner meanwhile changes the notes the return set; a re-decided field would now conflict.
    plan = loop.plan
    data_ = plan.model_dump()
    data_["areas"][1]["actions"][0]["notes"] = "the owner's notes"
    save_plan(Plan.model_validate(data_), loop.plan_path)

    result, data = merge_cli(loop, f, "--accept-new")
    assert result.exit_code == 0, result.output
    assert data["items"] == []  # nothing it said is decided again
    assert data["returns"][0]["accepted"] is True
    assert data["returns"][0]["note"] == "merged before; now adding its 1 proposed new action(s)"
    after = loop.plan
    assert after.action_index()["IC-N1"].action == NEW_ACTION
    assert value(after, "IC-1", "notes") == "the owner's notes"
    assert after.revision == 3
    new_lines = [e for e in loop.journal_lines() if e["revision"] == 3]
    # The proposal, on record as an open item since the plain merge, is settled by being added.
    (settled,) = [e for e in new_lines if e["event"] == "settle"]
    assert (settled["how"], settled["value"]) == ("accepted", "IC-N1")
    new_lines = [e for e in new_lines if e["event"] != "settle"]
    assert [(e["event"], e.get("action_id"), e.get("proposals_pending")) for e in new_lines] == [
        ("return", None, 0),
        ("add", "IC-N1", None),
    ]
    assert all(e["sha256"] == file_sha256(f) for e in new_lines)
    assert new_lines[1]["values"]["action"] == NEW_ACTION

    # Now fully merged: the same file again applies and adds nothing.
    snap = loop.snapshot()
    result, data = merge_cli(loop, f, "--accept-new")
    assert result.exit_code == 0, result.output
    assert loop.snapshot() == snap
    assert data["returns"][0]["note"] == "already merged" and data["proposals"] == []


def test_accepted_new_action_is_journalled(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    f = proposing(loop)
    result, data = merge_cli(loop, f, "--accept-new")
    assert result.exit_code == 0, result.output
    (proposal,) = data["proposals"]
    lines = [e for e in loop.journal_lines() if e["event"] != "issue"]  # after the record of issues
    assert [e["event"] for e in lines] == ["return", "add"]
    ret, add = lines
    assert ret["proposals_pending"] == 0
    assert set(add) == ADD_KEYS
    entry = loop.entry("Area Commanders")
    assert {k: add[k] for k in ADD_KEYS - {"time", "values"}} == {
        "event": "add",
        "revision": 2,
        "return": str(f),
        "sha256": file_sha256(f),
        "issue_id": entry["issue_id"],
        "recipient": "Area Commanders",
        "action_id": "IC-N1",
        "area": "IC",
        "sheet": "Initial Contact",
        "row": proposal["row"],
    }
    assert add["values"] == {
        "action": NEW_ACTION,
        "response": NEW_RESPONSE,
        "target": "",
        "due": "2027-05-01",
        "lead": "",
        "status": "On track",
        "notes": "",
    }
    new = loop.plan.action_index()["IC-N1"]
    assert {k: value(loop.plan, "IC-N1", k) for k in add["values"]} == add["values"]
    assert new.updated_by == "proposed by Area Commanders (ac.xlsx)"
    assert_journal_matches_plan(loop)


def test_deleted_row_never_deletes(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Head of Protect")
    ws, row = ed.locate("LG-2")
    ws.delete_rows(row)
    f = ed.save(loop.inbox / "hop.xlsx")
    result, data = merge_cli(loop, f)
    assert "LG-2" in loop.plan.action_index()
    assert any(x["kind"] == "row-deleted" and x["action_id"] == "LG-2" for x in data["findings"])
    assert result.exit_code == 1  # a deletion refused is left for a person
    assert loop.plan.model_copy(update={"revision": 1}) == make_plan()


# -- out of scope -----------------------------------------------------------------------------------------------


def test_out_of_scope_values_are_kept_in_the_report(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Chief Constable")
    long_notes = "Pasted notes, long: " + "x" * 120
    row = ed.paste_action(loop.plan, "LG-2", response=PASTED, status="Green", notes=long_notes)
    ed.formula("LG-2", "target", "=1+1")  # LG-2 is only on the pasted row
    f = ed.save(loop.inbox / "cc.xlsx")
    # The text report keeps them, a long value in full.
    report = run("merge", loop.plan_path, f, "--dry-run").stdout
    for text in (PASTED, "[value: Green]", "=1+1", long_notes):
        assert text in report, text
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1
    assert value(loop.plan, "LG-2", "response") != PASTED
    assert PASTED in result.stdout
    # Every field the pasted row says differently from the plan is a rejected item with its value and cell;
    # the fields it copied from the plan say nothing.
    sheet = ed.locate("LG-1")[0].title
    cols = ReturnEditor.columns(ed.locate("LG-1")[0])
    got = {(i["field"], i["new"], i["reason"]) for i in items_of(data, "rejected")}
    want = {
        ("response", PASTED),
        ("status", "Green"),
        ("notes", long_notes),
        ("target", "=1+1"),
    }
    assert {(fld, new) for fld, new, _ in got} == want
    for fld, _new, reason in got:
        letter = openpyxl_letter(cols[fld])
        assert reason.startswith("out-of-scope: action LG-2 was not issued in this workbook")
        assert reason.endswith(f"({sheet}!{letter}{row})")
    assert all(i["action_id"] == "LG-2" and i["source"] == str(f) for i in items_of(data, "rejected"))


@pytest.mark.parametrize("changed", [True, False], ids=["edited", "plain-copy"])
def test_out_of_scope_row_exits_1(tmp_path: Path, changed: bool) -> None:
    """A row outside the scope is refused whether or not it differs from the plan: a person looks at it."""
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Chief Constable")
    if changed:
        ed.paste_action(loop.plan, "LG-2", response=PASTED)
    else:
        ed.paste_action(loop.plan, "LG-2")
    f = ed.save(loop.inbox / "cc.xlsx")
    result = run("merge", loop.plan_path, f)
    assert "not issued in this workbook" in " ".join(result.stdout.split())
    assert result.exit_code == 1
    assert loop.plan.model_copy(update={"revision": 1}) == make_plan()


def test_out_of_scope_row_is_rejected_not_applied(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Chief Constable")
    ed.paste_action(loop.plan, "LG-2", response=PASTED)
    f = ed.save(loop.inbox / "cc.xlsx")
    _result, data = merge_cli(loop, f)
    assert value(loop.plan, "LG-2", "response") == value(make_plan(), "LG-2", "response")
    (finding,) = data["findings"]
    assert (finding["kind"], finding["action_id"], finding["severity"]) == ("out-of-scope", "LG-2", "problem")
    assert loop.plan.model_copy(update={"revision": 1}) == make_plan()


# -- trust ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["checksum", "chunk", "marker"])
def test_tampered_metadata_is_rejected(tmp_path: Path, how: str) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Area Commanders").set("IC-1", "response", TAMPERED_EDIT).tamper_meta(how)
    f = ed.save(loop.inbox / "ac.xlsx")
    good = loop.returned("Chief Constable", {("LG-1", "notes"): "fine"})
    result, data = merge_cli(loop, f, good)
    assert result.exit_code == 1, result.output
    (summary,) = [r for r in data["returns"] if r["file"] == str(f)]
    assert summary["accepted"] is False and summary["verdict"] == "tampered"
    assert value(loop.plan, "IC-1", "response") == ""
    assert value(loop.plan, "LG-1", "notes") == "fine"
    assert "REJECTED: ac.xlsx" in run("merge", loop.plan_path, f, "--dry-run").stdout


def test_return_for_another_plan_is_rejected(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    other = make_plan().model_copy(update={"id": "plan-other"})
    foreign = Loop(tmp_path / "other", other)
    f = foreign.returned("Area Commanders", {("IC-1", "response"): "from another plan"})
    good = loop.returned("Chief Constable", {("LG-1", "notes"): "fine"})
    plan_bytes = loop.plan_path.read_bytes()
    result, data = merge_cli(loop, f, good)
    assert result.exit_code == 1, result.output
    (summary,) = [r for r in data["returns"] if r["file"] == str(f)]
    assert summary["accepted"] is False and "another plan" in summary["note"]
    assert value(loop.plan, "IC-1", "response") == ""
    assert value(loop.plan, "LG-1", "notes") == "fine"
    # On its own, nothing is written.
    loop2 = Loop(tmp_path / "third", make_plan())
    plan_bytes = loop2.plan_path.read_bytes()
    assert merge_cli(loop2, f)[0].exit_code == 1
    assert loop2.plan_path.read_bytes() == plan_bytes
    assert journal_changes(loop2) == []


def test_unsigned_return_is_checked_against_the_record_of_issues(tmp_path: Path) -> None:
    """Issued unsigned (--no-sign): accepted with a key or without, because the record says how it went out;
    a workbook the record does not know is refused when the owner has a key."""
    write_key(tmp_path / "owner.key")
    loop = Loop(tmp_path / "loop", make_plan())  # distributed without a key, and recorded so
    f = loop.returned("Area Commanders", {("IC-1", "response"): "unsigned edit"})
    dry = run("merge", loop.plan_path, f, "--dry-run", "--key-file", tmp_path / "owner.key").stdout
    assert "issued with --no-sign" in " ".join(dry.split())
    result, data = merge_cli(loop, f)
    assert result.exit_code == 0, result.output
    (summary,) = data["returns"]
    assert summary["accepted"] is True and summary["verdict"] == "unsigned"
    assert value(loop.plan, "IC-1", "response") == "unsigned edit"

    # Not in the record (distributed through the library with no plan path): refused when there is a key.
    other = tmp_path / "other"
    distribute(loop.plan, other, only="Area Commanders")
    g = edit_return(other / "area-commanders.xlsx", loop.inbox / "g.xlsx", {("IC-1", "notes"): "x"})
    result, data = merge_cli(loop, g, "--key-file", tmp_path / "owner.key")
    assert result.exit_code == 1, result.output
    assert data["returns"][0]["accepted"] is False


def test_signed_returns(tmp_path: Path) -> None:
    key = write_key(tmp_path / "owner.key")
    write_key(tmp_path / "other.key")
    loop = Loop(tmp_path / "loop", make_plan(), key=key)
    f = loop.returned("Area Commanders", {("IC-1", "response"): "signed edit"})

    # Signed with another key: refused.
    result, data = merge_cli(loop, f, "--key-file", tmp_path / "other.key")
    assert result.exit_code == 1, result.output
    assert data["returns"][0]["accepted"] is False
    assert "tampered" in data["returns"][0]["note"] and "signature" in data["returns"][0]["note"]
    assert value(loop.plan, "IC-1", "response") == ""

    # Signed with the owner's key: applied.
    result, data = merge_cli(loop, f, "--key-file", tmp_path / "owner.key")
    assert result.exit_code == 0, result.output
    assert data["returns"][0]["verdict"] == "intact" and data["returns"][0]["note"] == ""
    assert value(loop.plan, "IC-1", "response") == "signed edit"


def test_signed_return_without_the_key_is_refused(tmp_path: Path) -> None:
    """The record says it was issued signed: without the owner's key it cannot be checked, so it is refused."""
    key = write_key(tmp_path / "owner.key")
    loop = Loop(tmp_path / "loop", make_plan(), key=key)
    f = loop.returned("Area Commanders", {("IC-1", "response"): "edit"})
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1, result.output
    assert (
        data["returns"][0]["accepted"] is False and "key is not on this machine" in data["returns"][0]["note"]
    )


@pytest.mark.parametrize("keep_signature", [True, False])
def test_forged_scope_is_rejected_with_a_key(tmp_path: Path, keep_signature: bool) -> None:
    key = write_key(tmp_path / "owner.key")
    loop = Loop(tmp_path / "loop", make_plan(), key=key)
    ed = loop.editor("Chief Constable").forge_scope(loop.plan, ["LG-2"], keep_signature=keep_signature)
    ed.paste_action(loop.plan, "LG-2", response="forged")
    f = ed.save(loop.inbox / "forged.xlsx")
    result, data = merge_cli(loop, f, "--key-file", tmp_path / "owner.key")
    assert result.exit_code == 1, result.output
    assert data["returns"][0]["accepted"] is False
    assert value(loop.plan, "LG-2", "response") == value(make_plan(), "LG-2", "response")


def test_stale_return_conflicts_rather_than_overwrites(tmp_path: Path) -> None:
    t1 = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.timezone.utc)
    t2 = dt.datetime(2026, 10, 15, 9, 0, tzinfo=dt.timezone.utc)
    loop = Loop(tmp_path, make_plan(), clock=lambda: t1)
    old = loop.returned(
        "Area Commanders", {("IC-1", "target"): "old target", ("IC-1", "notes"): "old notes"}, name="old.xlsx"
    )
    # The same recipient is sent a new workbook later, returns it, and it is merged.
    distribute(
        loop.plan, tmp_path / "outbox2", only="Area Commanders", clock=lambda: t2, plan_path=loop.plan_path
    )
    new = edit_return(
        tmp_path / "outbox2" / "area-commanders.xlsx",
        loop.inbox / "new.xlsx",
        {("IC-1", "notes"): "new notes"},
    )
    first = merge_lib(loop, [new])
    assert [(i.action_id, i.field, i.outcome) for i in first.items] == [("IC-1", "notes", "applied")]

    # The earlier workbook turns up after: nothing it says overwrites, all of it is a conflict.
    plan_bytes = loop.plan_path.read_bytes()
    stale = merge_lib(loop, [old])
    assert stale.needs_person
    got = {(i.action_id, i.field): i for i in stale.items}
    assert got[("IC-1", "target")].outcome == "conflict"
    assert "stale" in got[("IC-1", "target")].reason
    assert got[("IC-1", "target")].candidates[0].value == "old target"
    assert got[("IC-1", "notes")].outcome == "conflict"
    assert "stale" in stale.returns[0].note
    assert content(loop.plan_path.read_bytes()) == content(plan_bytes)
    assert value(loop.plan, "IC-1", "notes") == "new notes"
    assert value(loop.plan, "IC-1", "target") == ""


def test_other_recipient_not_stale(tmp_path: Path) -> None:
    """A later workbook of *another* recipient does not make a return stale."""
    t1 = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.timezone.utc)
    t2 = dt.datetime(2026, 10, 15, 9, 0, tzinfo=dt.timezone.utc)
    loop = Loop(tmp_path, make_plan(), clock=lambda: t1)
    old = loop.returned("Area Commanders", {("IC-1", "target"): "target"}, name="old.xlsx")
    distribute(loop.plan, tmp_path / "outbox2", only="Chief Constable", clock=lambda: t2)
    new = edit_return(
        tmp_path / "outbox2" / "chief-constable.xlsx", loop.inbox / "cc.xlsx", {("LG-1", "notes"): "n"}
    )
    merge_lib(loop, [new])
    result = merge_lib(loop, [old])
    assert [(i.field, i.outcome) for i in result.items] == [("target", "applied")]


def test_plan_changed_since_issue_conflicts(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    first = loop.returned("Chief Constable", {("LG-1", "response"): "first"})
    merge_lib(loop, [first])
    second = loop.returned("Head of Protect", {("LG-1", "response"): "second"})
    result = merge_lib(loop, [second])
    (item,) = result.items
    assert (item.outcome, item.base, item.current, item.new) == (
        "conflict",
        make_plan().action_index()["LG-1"].response,
        "first",
        "second",
    )
    assert value(loop.plan, "LG-1", "response") == "first"


# -- unreadable returns abort everything ---------------------------------------------------------------------------


def _truncated(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])


def _garbage(src: Path, dst: Path) -> None:
    dst.write_bytes(b"\x00\x01 this is not a workbook at all \xff" * 50)


def _legacy(src: Path, dst: Path) -> None:
    dst.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000)


@pytest.mark.parametrize("spoil", [_truncated, _garbage, _legacy], ids=["truncated", "garbage", "xls"])
def test_unreadable_return_among_good_ones(tmp_path: Path, spoil: Callable[[Path, Path], None]) -> None:
    loop = Loop(tmp_path, make_plan())
    good = list(clean_returns(loop).values())
    bad = tmp_path / "inbox" / "zz-broken.xlsx"
    spoil(loop.issued("Chief Constable"), bad)
    before = loop.snapshot()
    report = tmp_path / "report.txt"
    result = run("merge", loop.plan_path, *good, bad, "--report", report)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "zz-broken.xlsx" in lines[0]
    assert "Traceback" not in result.output
    assert loop.snapshot() == before
    assert not report.exists()
    with pytest.raises(DaplanError):
        merge_returns(loop.plan, [*good, bad])


def test_missing_return_file(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    good = loop.returned("Chief Constable", {("LG-1", "notes"): "x"})
    before = loop.snapshot()
    result = run("merge", loop.plan_path, good, tmp_path / "nope.xlsx")
    assert result.exit_code == 2
    assert loop.snapshot() == before


# -- domain warnings ---------------------------------------------------------------------------------------------


def test_domain_warnings(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    # make_plan: LG-1 is Complete (closed); LG-2 is On track, due 2015-03-31; IC-1 Not started, no due date.
    hop = loop.returned("Head of Protect", {("LG-1", "status"): "On track", ("LG-2", "status"): "Complete"})
    ac = loop.returned("Area Commanders", {("IC-1", "due"): dt.date(2020, 1, 31)})
    result = merge_lib(loop, [hop, ac])
    warnings = "\n".join(result.warnings)
    assert "LG-2: marked 'Complete' with an empty or unchanged response" in warnings
    assert "LG-1: moved back from 'Complete' to 'On track'" in warnings
    assert "IC-1: open (Not started) and past its due date 2020-01-31" in warnings
    assert "LG-1: open (On track)" not in warnings  # no due date
    assert len(result.warnings) == 3
    assert "Warnings (3):" in render_report(result, False)
    # Warnings inform; they do not hold anything back.
    assert {i.outcome for i in result.items} == {"applied"}
    assert not result.needs_person


def test_closed_with_a_new_response_is_not_warned(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    hop = loop.returned(
        "Head of Protect", {("LG-2", "status"): "Complete", ("LG-2", "response"): "Done: see minutes"}
    )
    result = merge_lib(loop, [hop])
    assert result.warnings == []


def test_past_due_open_action_is_warned_when_touched(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    hop = loop.returned("Head of Protect", {("LG-2", "notes"): "still going"})
    result = merge_lib(loop, [hop])
    assert result.warnings == ["LG-2: open (On track) and past its due date 2015-03-31"]


# -- field kinds -------------------------------------------------------------------------------------------------


def test_every_editable_field_applies(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    edits: dict[tuple[str, str], object] = {
        ("LG-2", "response"): "=SUM(A1:A2) stays text",
        ("LG-2", "target"): "2016/17",
        ("LG-2", "due"): dt.date(2027, 3, 31),
        ("LG-2", "lead"): "Chief Constable",
        ("LG-2", "status"): "at risk",
        ("LG-2", "notes"): "+44 notes",
    }
    f = loop.returned("Head of Protect", edits)
    result, _data = merge_cli(loop, f)
    assert result.exit_code == 0, result.output
    action = loop.plan.action_index()["LG-2"]
    assert (action.response, action.target, action.due, action.status, action.notes) == (
        "=SUM(A1:A2) stays text",
        "2016/17",
        dt.date(2027, 3, 31),
        "At risk",
        "+44 notes",
    )
    assert action.leads == ["Chief Constable", "Head of Protect"]
    assert {(e["field"], e["new"]) for e in journal_changes(loop)} == {
        ("response", "=SUM(A1:A2) stays text"),
        ("target", "2016/17"),
        ("due", "2027-03-31"),
        ("lead", "Chief Constable"),
        ("status", "At risk"),
        ("notes", "+44 notes"),
    }
    assert dumps_plan(loop.plan) == loop.plan_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("field_", "bad", "kind"),
    [
        ("status", "Green", "unknown-status"),
        ("lead", "Head of Nothing", "unknown-lead"),
        ("due", "soon", "bad-date"),
    ],
)
def test_invalid_values_are_rejected_and_kept(tmp_path: Path, field_: str, bad: str, kind: str) -> None:
    loop = Loop(tmp_path, make_plan())
    f = loop.returned("Head of Protect", {("LG-2", field_): bad, ("LG-2", "notes"): "ok"})
    assert f"[value: {bad}]" in run("merge", loop.plan_path, f, "--dry-run").stdout
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1, result.output
    item = find_item(data, "LG-2", field_, "rejected")
    assert item["new"] == bad and item["reason"].startswith(kind)
    assert value(loop.plan, "LG-2", field_) == value(make_plan(), "LG-2", field_)
    assert value(loop.plan, "LG-2", "notes") == "ok"


def test_formula_is_rejected_and_kept(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Head of Protect").formula("LG-2", "response", '=HYPERLINK("http://x")')
    f = ed.save(loop.inbox / "hop.xlsx")
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1
    item = find_item(data, "LG-2", "response", "rejected")
    assert "HYPERLINK" in item["new"] and item["reason"].startswith("formula")
    assert value(loop.plan, "LG-2", "response") == "-starts with a minus"


def test_locked_field_edit_is_rejected(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    f = loop.returned("Head of Protect", {("LG-2", "action"): "Rewritten action text"})
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1
    item = find_item(data, "LG-2", "action", "rejected")
    assert item["new"] == "Rewritten action text"
    assert loop.plan.action_index()["LG-2"].action == make_plan().action_index()["LG-2"].action


@pytest.mark.parametrize("reverse", [False, True])
def test_updated_by_names_everyone_who_changed_the_action(tmp_path: Path, reverse: bool) -> None:
    loop = Loop(tmp_path, make_plan())
    # Field order (target before notes) and file order both differ from the names' order.
    fa = loop.returned("Head of Protect", {("LG-1", "target"): "2027"}, name="a.xlsx")
    fb = loop.returned("Chief Constable", {("LG-1", "notes"): "notes"}, name="b.xlsx")
    files = [fb, fa] if reverse else [fa, fb]
    assert merge_cli(loop, *files)[0].exit_code == 0
    action = loop.plan.action_index()["LG-1"]
    assert action.updated_by == "Chief Constable, Head of Protect"
    assert {(e["field"], e["recipient"]) for e in journal_changes(loop)} == {
        ("target", "Head of Protect"),
        ("notes", "Chief Constable"),
    }


# -- fault injection -----------------------------------------------------------------------------------------------


def assert_journal_matches_plan(loop: Loop) -> None:
    """Every line in the journal file is committed, and each change's new value is what the plan held after it."""
    plan = loop.plan
    lines = loop.journal_lines()
    assert lines == J.read_journal(loop.journal, plan.revision)
    assert all(e["revision"] <= plan.revision for e in lines)
    latest: dict[tuple[str, str], str] = {}
    for e in lines:
        if e["event"] == "change":
            latest[(e["action_id"], e["field"])] = e["new"]
        elif e["event"] == "add":
            # An added action is in the plan; its values are as added unless a later change says otherwise.
            assert e["action_id"] in plan.action_index()
            for field_, new in e["values"].items():
                latest[(e["action_id"], field_)] = new
    for (action_id, field_), new in latest.items():
        assert value(plan, action_id, field_) == new


def _replace_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("daplan_xlsx.planfile.os.replace", boom)


def _save_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("daplan_xlsx.planfile.save_plan", boom)


def _journal_fsync_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal lines are written but cannot be made durable (the first fsync of the commit)."""

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("daplan_xlsx.journal.os.fsync", boom)


@pytest.mark.parametrize(
    "inject",
    [_replace_fails, _save_fails, _journal_fsync_fails],
    ids=["os.replace", "save_plan", "journal-fsync"],
)
def test_failed_commit_leaves_plan_and_journal_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inject: Callable[[pytest.MonkeyPatch], None]
) -> None:
    loop = Loop(tmp_path, make_plan())
    # A first, successful merge, so there is a journal with committed lines.
    first = loop.returned("Chief Constable", {("LG-1", "notes"): "first"})
    merge_lib(loop, [first])
    plan_bytes, journal_bytes = loop.snapshot()
    assert journal_bytes is not None

    f = loop.returned("Area Commanders", {("IC-1", "response"): "second"})
    with monkeypatch.context() as m:
        inject(m)
        with pytest.raises(OSError):
            merge_lib(loop, [f])
    assert loop.plan_path.read_bytes() == plan_bytes
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".plan.yaml.lock") == [
        "inbox",
        "outbox",
        "plan.journal.jsonl",
        "plan.yaml",
    ]
    plan = loop.plan
    # The failed merge's lines were written (journal first) but carry a revision above the plan's ...
    orphans = [e for e in loop.journal_lines() if e["revision"] > plan.revision]
    assert {e["event"] for e in orphans} == {"return", "change"}
    # ... so reading the journal against the plan leaves them out.
    committed = J.read_journal(loop.journal, plan.revision)
    assert not any(e.get("action_id") == "IC-1" for e in committed)
    assert [e for e in committed if e["event"] == "change"] == [
        e for e in json_lines(journal_bytes) if e["event"] == "change"
    ]

    # The next merge (of the same return) works, and plan and journal agree again.
    result, _data = merge_cli(loop, f)
    assert result.exit_code == 0, result.output
    assert value(loop.plan, "IC-1", "response") == "second"
    assert loop.plan.revision == plan.revision + 1
    assert_journal_matches_plan(loop)
    assert [(e["action_id"], e["new"]) for e in journal_changes(loop)] == [
        ("LG-1", "first"),
        ("IC-1", "second"),
    ]


def json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line]


KILLER = textwrap.dedent(
    """
    import os, sys
    import daplan_xlsx.journal as J
    from daplan_xlsx.cli import main

    _append, _replace = J.append, os.replace
    where, plan_file = sys.argv[1], sys.argv[2]

    def append_then_die(*args, **kwargs):
        _append(*args, **kwargs)
        os._exit(1)  # killed between the journal append and the plan replace

    def die_before_rename(src, dst, *args, **kwargs):
        if os.path.abspath(dst) == os.path.abspath(plan_file):
            os._exit(1)  # killed with the new plan written to its temp file, not yet renamed
        return _replace(src, dst, *args, **kwargs)

    if where == "after-journal":
        J.append = append_then_die
    else:
        os.replace = die_before_rename
    sys.argv = ["daplan", "merge", *sys.argv[2:], "--accept-new"]
    main()
    """
)


@pytest.mark.parametrize("where", ["after-journal", "before-rename"])
def test_merge_killed_while_committing(tmp_path: Path, where: str) -> None:
    """Killed after the journal append, or with the new plan in its temp file: the plan is byte-identical,
    the killed merge's lines (return, change, add) are not committed, and merging again works."""
    loop = Loop(tmp_path, make_plan())
    first = loop.returned("Chief Constable", {("LG-1", "notes"): "first"})
    assert merge_cli(loop, first)[0].exit_code == 0
    plan_bytes, journal_bytes = loop.snapshot()
    assert journal_bytes is not None

    ed = loop.editor("Area Commanders").set("IC-1", "response", "second")
    ed.add_row({"action": NEW_ACTION}, "Initial Contact")
    f = ed.save(loop.inbox / "ac.xlsx")
    script = tmp_path / "killer.py"
    script.write_text(KILLER, encoding="utf-8")
    env = {k: v for k, v in __import__("os").environ.items() if k != "DAPLAN_KEY_FILE"}
    proc = subprocess.run(
        [sys.executable, str(script), where, str(loop.plan_path), str(f)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert loop.plan_path.read_bytes() == plan_bytes
    raw = loop.journal.read_bytes()
    assert raw.startswith(journal_bytes) and len(raw) > len(journal_bytes)  # the lines were appended
    plan = loop.plan
    orphans = [e for e in json_lines(raw) if e["revision"] > plan.revision]
    assert {e["event"] for e in orphans} == {"return", "change", "add"}
    assert J.read_journal(loop.journal, plan.revision) == json_lines(journal_bytes)
    assert not any(e.get("action_id") == "IC-1" for e in J.read_journal(loop.journal, plan.revision))
    # status and merge read the journal against the plan: the killed merge never happened.
    status = json.loads(run("status", loop.plan_path, loop.outbox, "--json").stdout)
    merged = {r["recipient"]: r["merged_at"] for r in status["recipients"]}
    assert merged["Area Commanders"] == "" and merged["Chief Constable"] != ""

    result, data = merge_cli(loop, f, "--accept-new")
    assert result.exit_code == 0, result.output
    assert [r["note"] for r in data["returns"]] != ["already merged"]
    assert value(loop.plan, "IC-1", "response") == "second"
    assert [a.id for a in loop.plan.areas[1].actions] == ["IC-1", "IC-N1"]
    assert_journal_matches_plan(loop)
    assert len([e for e in journal_changes(loop) if e["action_id"] == "IC-1"]) == 1
    assert [e["action_id"] for e in loop.journal_lines() if e["event"] == "add"] == ["IC-N1"]


def test_cut_short_last_journal_line_is_ignored(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    first = loop.returned("Chief Constable", {("LG-1", "notes"): "first"})
    merge_lib(loop, [first])
    good = loop.journal.read_bytes()
    with loop.journal.open("ab") as fh:
        fh.write(b'{"event": "change", "revision": 3, "act')
    assert J.read_journal(loop.journal, loop.plan.revision) == json_lines(good)
    f = loop.returned("Area Commanders", {("IC-1", "response"): "second"})
    merge_lib(loop, [f])
    assert_journal_matches_plan(loop)


# -- the library directly ---------------------------------------------------------------------------------------


def test_result_independent_of_file_order(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    k = messy_returns(loop)
    files = list(k.files.values())
    results = [
        merge_returns(loop.plan, order, now=NOW) for order in (files, files[::-1], files[1:] + files[:1])
    ]
    dumps = {json.dumps(as_dict(r), sort_keys=True) for r in results}
    assert len(dumps) == 1
    assert len({dumps_plan(r.plan) for r in results}) == 1


def test_merge_returns_writes_nothing(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    files = list(clean_returns(loop).values())
    snap = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    result = merge_returns(loop.plan, files, now=NOW)
    assert result.applied
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == snap


# -- rules without a test of their own -------------------------------------------------------------------------


def test_value_the_plan_already_holds_is_unchanged_not_a_conflict(tmp_path: Path) -> None:
    """current == theirs: already applied (here by another lead's return), so nothing to do and no conflict."""
    loop = Loop(tmp_path, make_plan())
    first = loop.returned("Chief Constable", {("LG-1", "target"): "March 2027"})
    assert merge_cli(loop, first)[0].exit_code == 0
    plan_bytes = loop.plan_path.read_bytes()
    # The other lead of LG-1 returns the workbook issued with the first, with the same target.
    second = loop.returned("Head of Protect", {("LG-1", "target"): "March 2027"})
    result, data = merge_cli(loop, second)
    assert result.exit_code == 0, result.output
    item = find_item(data, "LG-1", "target", "unchanged")
    assert (item["reason"], item["new"], item["current"]) == ("already applied", "March 2027", "March 2027")
    assert item["base"] == value(make_plan(), "LG-1", "target")
    assert content(loop.plan_path.read_bytes()) == content(plan_bytes)
    assert [(e["recipient"], e["field"]) for e in journal_changes(loop)] == [("Chief Constable", "target")]


def test_same_file_twice_in_one_merge_counts_once(tmp_path: Path) -> None:
    """A return saved twice under two names (or named twice) is one return: its proposal is added once."""
    loop = Loop(tmp_path, make_plan())
    f = proposing(loop)
    copy = loop.inbox / "ac (1).xlsx"
    copy.write_bytes(f.read_bytes())
    result, data = merge_cli(loop, f, copy, f, "--accept-new")
    assert result.exit_code == 0, result.output
    assert [p["new_id"] for p in data["proposals"]] == ["IC-N1"]
    assert [a.id for a in loop.plan.areas[1].actions] == ["IC-1", "IC-N1"]
    notes = sorted((Path(r["file"]).name, r["accepted"], r["note"]) for r in data["returns"])
    assert notes == [
        (
            "ac (1).xlsx",
            True,
            "unsigned (issued with --no-sign): checked against the plan's record of issued workbooks",
        ),
        ("ac.xlsx", False, "the same file as ac (1).xlsx"),
        ("ac.xlsx", False, "the same file as ac (1).xlsx"),
    ]
    assert [e["event"] for e in loop.journal_lines() if e["event"] != "issue"] == ["return", "add"]


def test_rows_the_reader_did_not_take_keep_their_values(tmp_path: Path) -> None:
    """An ID typed wrong and an ID twice: neither row is merged, and every value they hold is kept."""
    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Head of Protect")
    ws, row = ed.locate("LG-2")
    cols = ReturnEditor.columns(ws)
    ed.set("LG-2", "response", "first copy")
    second = ed.paste_row({**plan_row(loop.plan, "LG-2"), "response": "second copy"}, ws.title)
    typo = ed.paste_row(
        {"id": "LG-99", "action": "Some action", "notes": "typed against a wrong ID"}, ws.title
    )
    f = ed.save(loop.inbox / "hop.xlsx")
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1, result.output
    assert value(loop.plan, "LG-2", "response") == value(make_plan(), "LG-2", "response")
    rejected = {
        (i["action_id"], i["field"], i["new"], i["reason"].split(":")[0]) for i in items_of(data, "rejected")
    }
    assert rejected == {
        ("LG-2", "response", "first copy", "duplicate-id"),
        ("LG-2", "response", "second copy", "duplicate-id"),
        ("LG-99", "notes", "typed against a wrong ID", "unknown-id"),
    }
    cells = {i["new"]: i["reason"] for i in items_of(data, "rejected")}
    letter = openpyxl_letter(cols["response"])
    assert cells["first copy"].endswith(f"!{letter}{row})")
    assert cells["second copy"].endswith(f"!{letter}{second})")
    assert cells["typed against a wrong ID"].endswith(f"!{openpyxl_letter(cols['notes'])}{typo})")


def test_rejected_values_of_unread_rows_are_the_diffs_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `daplan diff --json` reports for rows it did not take is what the merge keeps as rejected items,
    value for value and cell for cell, and the merge reads each workbook once to get them."""
    import daplan_xlsx.reader as reader

    loop = Loop(tmp_path, make_plan())
    ed = loop.editor("Head of Protect")
    ws, _row = ed.locate("LG-2")
    ed.set("LG-2", "status", "Complete")
    ed.paste_row({**plan_row(loop.plan, "LG-2"), "notes": "second copy"}, ws.title)
    ed.paste_action(loop.plan, "LG-L1", ws.title, response=PASTED, status="Green")
    ed.paste_row({"id": "LG-99", "action": "Some action", "due": "31/02/2015"}, ws.title)
    ed.formula("LG-99", "target", "=TODAY()")
    f = ed.save(loop.inbox / "hop.xlsx")

    diff = run("diff", "--json", loop.plan_path, f)
    assert diff.exit_code == 0, diff.output
    refused = [x for x in json.loads(diff.stdout)["findings"] if x["field"]]
    want = {
        (x["action_id"], x["field"], x["value"], f"{x['kind']}: {x['message']} ({x['sheet']}!{x['cell']})")
        for x in refused
    }
    assert {(a, fld, v) for a, fld, v, _ in want} == {
        ("LG-2", "status", "Complete"),
        ("LG-2", "notes", "second copy"),
        ("LG-L1", "response", PASTED),
        ("LG-L1", "status", "Green"),
        ("LG-99", "target", "=TODAY()"),
        ("LG-99", "due", "31/02/2015"),
    }

    opened: list[Path] = []
    real = reader.open_workbook
    monkeypatch.setattr(reader, "open_workbook", lambda c: opened.append(c.path) or real(c))
    result, data = merge_cli(loop, f)
    assert result.exit_code == 1, result.output
    got = {(i["action_id"], i["field"], i["new"], i["reason"]) for i in items_of(data, "rejected")}
    assert got == want
    assert len(items_of(data)) == len(want)
    assert opened == [f]
    # The rows themselves stay findings, one each.
    assert sorted((x["kind"], x["action_id"]) for x in data["findings"]) == [
        ("duplicate-id", "LG-2"),
        ("out-of-scope", "LG-L1"),
        ("unknown-id", "LG-99"),
    ]
    assert loop.plan.model_copy(update={"revision": 1}) == make_plan()


def test_returns_are_never_modified(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    k = messy_returns(loop)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in k.files.values()}
    book = tmp_path / "conflicts.xlsx"
    for extra in ([], ["--accept-new", "--combine-responses", "--conflicts-workbook", book]):
        run("merge", loop.plan_path, *k.files.values(), *extra)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in k.files.values()} == before


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_progress_bar_only_on_a_terminal(tmp_path: Path, terminal: bool) -> None:
    """Reading many returns shows a progress bar on stderr when it is a terminal; nothing when piped."""
    loop = Loop(tmp_path, load_plan(EXAMPLES[0]))
    files = [str(loop.returned(r)) for r in loop.recipients()]
    assert len(files) >= 5
    code, out, err = run_daplan(["merge", str(loop.plan_path), *files, "--dry-run"], terminal=terminal)
    assert code == 0, out + err
    assert out.startswith("Dry run: nothing written.")
    if terminal:
        assert "Reading returns" in err and "100%" in err
        assert "Reading returns" not in out  # the report on stdout stays clean
    else:
        assert err == ""


# -- a return edited in LibreOffice Calc -------------------------------------------------------------------------


@pytest.mark.libreoffice
@pytest.mark.slow
def test_return_edited_in_libreoffice_calc(tmp_path: Path) -> None:
    """Typed and pasted in Calc (headless, through tests/lo_edit.py), saved as .xlsx, merged back."""
    require("soffice")
    uno = subprocess.run(["/usr/bin/python3", "-c", "import uno"], capture_output=True, check=False)
    if uno.returncode != 0:
        pytest.skip("the system Python has no python3-uno")
    loop = Loop(tmp_path, make_plan())
    src = loop.issued("Head of Protect")
    ed = ReturnEditor(src)
    ws, row = ed.locate("LG-2")
    cols = ReturnEditor.columns(ws)
    new_row = ReturnEditor.next_free_row(ws)

    def cell(key: str, r: int = row) -> str:
        return f"{openpyxl_letter(cols[key])}{r}"

    response = "Calc: first line\nsecond line, =not a formula"
    edits = [
        {"op": "set_text", "sheet": ws.title, "cell": cell("response"), "text": response},
        {"op": "set", "sheet": ws.title, "cell": cell("status"), "text": "Complete"},
        {"op": "set", "sheet": ws.title, "cell": cell("due"), "text": "31/03/2027"},
        {"op": "set_text", "sheet": ws.title, "cell": cell("action", new_row), "text": NEW_ACTION},
    ]
    out = loop.inbox / "hop-calc.xlsx"
    lo = subprocess.run(
        [
            "/usr/bin/python3",
            str(Path(__file__).parent / "lo_edit.py"),
            str(src),
            str(out),
            json.dumps(edits),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lo.returncode == 0, lo.stderr

    result, data = merge_cli(loop, out, "--accept-new")
    assert result.exit_code == 0, result.output
    after = loop.plan
    assert (
        value(after, "LG-2", "response"),
        value(after, "LG-2", "status"),
        value(after, "LG-2", "due"),
    ) == (
        response,
        "Complete",
        "2027-03-31",
    )
    assert [p["new_id"] for p in data["proposals"]] == ["LG-N1"]
    assert after.action_index()["LG-N1"].action == NEW_ACTION
    assert sorted(e["field"] for e in journal_changes(loop)) == ["due", "response", "status"]
    assert [e["action_id"] for e in loop.journal_lines() if e["event"] == "add"] == ["LG-N1"]
    assert_journal_matches_plan(loop)
    snap = loop.snapshot()
    again, data = merge_cli(loop, out, "--accept-new")
    assert again.exit_code == 0 and data["returns"][0]["note"] == "already merged"
    assert loop.snapshot() == snap


def test_revision_on_disk_is_read_from_its_line_or_by_parsing() -> None:
    from daplan_xlsx.planfile import dumps_plan
    from daplan_xlsx.planfile import revision_on_disk as _revision_on_disk

    text = dumps_plan(make_plan().model_copy(update={"revision": 7}))
    assert _revision_on_disk(text.encode()) == 7
    assert _revision_on_disk(text.replace("revision: 7", "revision: 7   # raised by merges").encode()) == 7
    # A form the line pattern does not take (YAML 1.1 hex) is left to the full parse.
    assert _revision_on_disk(text.replace("revision: 7", "revision: 0x7").encode()) == 7


def test_a_commit_over_a_cached_plan_rewrites_only_the_changed_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the plan's cache present the merged actions are spliced into the file: same bytes as a full dump."""
    from daplan_xlsx import planfile

    monkeypatch.setattr(planfile, "CACHE_MIN_BYTES", 0)
    loop = Loop(tmp_path, make_plan())
    spliced: list[bool] = []
    real = planfile.splice_plan

    def spy(*args: Any) -> str | None:
        out = real(*args)
        spliced.append(out is not None)
        return out

    monkeypatch.setattr(planfile, "splice_plan", spy)
    f = loop.returned("Chief Constable", {("LG-1", "notes"): "spliced\nin", ("LG-1", "response"): "done"})
    result = merge_lib(loop, [f])
    assert result.applied and spliced == [True]
    assert loop.plan_path.read_bytes() == planfile.dumps_plan(result.plan).encode("utf-8")
    assert loop.plan == result.plan
