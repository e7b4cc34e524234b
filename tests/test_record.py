"""The record never loses anything: open items, settling, undo, outputs kept off the record, symlinks,
damaged journals, the owner's comments. (Races and crashes: test_record_races.py, test_record_crash.py.)"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from conftest import make_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from returns import Loop, ReturnEditor

from daplan_xlsx import journal as J
from daplan_xlsx.cli import cli
from daplan_xlsx.merge import merge_returns
from daplan_xlsx.meta import field_value
from daplan_xlsx.model import Lead, Plan
from daplan_xlsx.openitems import items_of, open_items
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.record import Record
from daplan_xlsx.settle import SettleError, recheck, resolve, undo

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan", env={"DAPLAN_KEY_FILE": None})


def value(plan: Plan, action_id: str, key: str) -> str:
    return field_value(plan.action_index()[action_id], key)


def conflicting(loop: Loop) -> list[Path]:
    """Two leads of LG-1 give different responses; one names a lead not in the register."""
    a = loop.returned("Chief Constable", {("LG-1", "response"): "CC says done"})
    b = loop.returned(
        "Head of Protect", {("LG-1", "response"): "HoP says half done", ("LG-2", "lead"): "DCI Jones"}
    )
    return [a, b]


def add_lead(plan_path: Path, name: str) -> None:
    """The owner adds a lead to the register by hand."""
    plan = load_plan(plan_path)
    save_plan(plan.model_copy(update={"leads": [*plan.leads, Lead(name=name)]}), plan_path)


# -- decisions are part of the record -----------------------------------------------------------------------------


def test_decisions_stay_open_until_settled(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    files = conflicting(loop)
    first = run("merge", loop.plan_path, *files)
    assert first.exit_code == 1, first.output
    assert "open item" in first.stdout

    # Re-running with --conflicts-workbook no longer loses anything: the workbook comes from the record.
    again = run("merge", loop.plan_path, *files, "--conflicts-workbook", tmp_path / "late.xlsx")
    assert "already merged" in again.stdout
    assert (tmp_path / "late.xlsx").is_file()

    status = run("status", loop.plan_path, loop.outbox, "--json")
    data = json.loads(status.stdout)
    assert data["totals"]["open_items"] == 2
    hop = next(r for r in data["recipients"] if r["recipient"] == "Head of Protect")
    assert hop["merged_at"] and hop["open_items"] == 2
    assert data["open_by_action"] == {"LG-1": 1, "LG-2": 1}
    text = run("status", loop.plan_path, loop.outbox).stdout
    assert "merged, 2 open" in text and "Open items (2)" in text

    # The missing lead is added: recheck applies the refused value under the three-way rule.
    add_lead(loop.plan_path, "DCI Jones")
    rc = run("recheck", loop.plan_path)
    assert rc.exit_code == 1, rc.output  # the conflict is still open
    assert value(loop.plan, "LG-2", "lead") == "DCI Jones"
    assert "1 open item(s) left" in rc.stdout

    # The conflict is settled on the command line, with a reason.
    res = run(
        "resolve", loop.plan_path, "LG-1", "Response", "--take", "Head of Protect", "--reason", "checked"
    )
    assert res.exit_code == 0, res.output
    assert value(loop.plan, "LG-1", "response") == "HoP says half done"
    entries = J.read_journal(loop.journal, loop.plan.revision)
    assert open_items(entries) == []
    settles = [e for e in entries if e["event"] == "settle"]
    assert {(e["how"], e["reason"]) for e in settles} == {
        ("recheck", "now valid: applied"),
        ("take", "checked"),
    }
    assert all(e["by"] for e in settles)
    assert run("status", loop.plan_path).stdout.rstrip().endswith("No open items.")


def test_conflicts_workbook_made_later_holds_the_same_items_and_settles_them(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    files = conflicting(loop)
    at_merge = tmp_path / "now.xlsx"
    assert run("merge", loop.plan_path, *files, "--conflicts-workbook", at_merge).exit_code == 1
    later = tmp_path / "later.xlsx"
    made = run("conflicts", loop.plan_path, "-o", later)
    assert made.exit_code == 0, made.output

    def rows(path: Path) -> list[list[str]]:
        ws = ReturnEditor(path).wb["Conflicts"]
        return [[str(v or "") for v in r] for r in ws.iter_rows(min_row=2, values_only=True)]

    assert rows(at_merge) == rows(later) and len(rows(later)) == 3  # two candidates + one refused value
    settled = (
        ReturnEditor(later).set("LG-1", "response", "The owner's wording").save(tmp_path / "settled.xlsx")
    )
    merged = run("merge", loop.plan_path, settled)
    assert merged.exit_code == 0, merged.output
    assert value(loop.plan, "LG-1", "response") == "The owner's wording"
    left = open_items(J.read_journal(loop.journal, loop.plan.revision))
    assert [(i.action_id, i.field) for i in left] == [("LG-2", "lead")]


def test_resolve_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    run("merge", loop.plan_path, *conflicting(loop))
    before = loop.snapshot()
    for args, words in [
        (["LG-1", "Response"], "either --take"),
        (["LG-1", "Response", "--take", "nobody"], "no candidate 'nobody'"),
        (["LG-2", "Lead", "--take", "1"], "not a valid lead"),
        (["IC-1", "Status", "--take", "1"], "has no open item"),
        (["LG-1", "colour", "--take", "1"], "no field called 'colour'"),
    ]:
        result = run("resolve", loop.plan_path, *args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert loop.snapshot() == before


# -- undo -----------------------------------------------------------------------------------------------------------


def test_undo_reverts_a_merge_and_the_return_can_be_merged_again(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    before = loop.plan
    f = loop.returned("Area Commanders", {("IC-1", "status"): "Complete", ("IC-1", "response"): "Done"})
    assert run("merge", loop.plan_path, f).exit_code == 0
    assert value(loop.plan, "IC-1", "status") == "Complete"
    result = run("undo", loop.plan_path)
    assert result.exit_code == 0, result.output
    assert "Undid revision 2" in result.stdout
    after = loop.plan
    assert after.revision == 3
    assert after.model_copy(update={"revision": before.revision}) == before
    again = run("merge", loop.plan_path, f)
    assert "already merged" not in again.stdout and value(loop.plan, "IC-1", "status") == "Complete"


def test_undo_refuses_when_the_field_changed_since(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    f = loop.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    run("merge", loop.plan_path, f)
    plan = loop.plan
    data = plan.model_dump()
    data["areas"][1]["actions"][0]["status"] = "Embedded"  # a hand edit after the merge
    save_plan(Plan.model_validate(data), loop.plan_path)
    before = loop.snapshot()
    result = run("undo", loop.plan_path)
    assert result.exit_code == 2 and "was changed after revision 2" in result.stderr, result.output
    assert loop.snapshot() == before


def test_undo_of_a_settlement_reopens_its_items_and_undo_to_goes_back_further(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    original = loop.plan
    run("merge", loop.plan_path, *conflicting(loop))
    run("resolve", loop.plan_path, "LG-1", "response", "--value", "Agreed", "--reason", "board")
    assert len(open_items(J.read_journal(loop.journal, loop.plan.revision))) == 1
    assert run("undo", loop.plan_path).exit_code == 0
    assert len(open_items(J.read_journal(loop.journal, loop.plan.revision))) == 2
    assert value(loop.plan, "LG-1", "response") == value(original, "LG-1", "response")
    assert run("undo", loop.plan_path, "--to", "1").exit_code == 0
    assert open_items(J.read_journal(loop.journal, loop.plan.revision)) == []
    assert loop.plan.model_copy(update={"revision": 1}) == original
    nothing = run("undo", loop.plan_path)
    assert nothing.exit_code == 2 and "nothing to undo" in nothing.stderr


EDITS = st.dictionaries(
    st.sampled_from([("IC-1", "status"), ("IC-1", "response"), ("LG-L1", "target"), ("IC-1", "lead")]),
    st.sampled_from(["Complete", "On track", "text one", "", "Head of Protect", "Chief Constable"]),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    return Loop(tmp_path_factory.mktemp("issued"), make_plan())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_merge_then_undo_gives_the_plan_before(
    issued: Loop, tmp_path_factory: pytest.TempPathFactory, edits: dict[tuple[str, str], str]
) -> None:
    folder = tmp_path_factory.mktemp("undo")
    plan_path = folder / "plan.yaml"
    save_plan(make_plan(), plan_path)
    before = load_plan(plan_path)
    f = ReturnEditor(issued.issued("Area Commanders")).set_many(edits).save(folder / "r.xlsx")
    with Record(plan_path) as rec:
        plan = rec.load()
        result = merge_returns(plan, [f], journal=rec.entries(), now=NOW)
        rec.commit(result.plan, result.journal)
    with Record(plan_path) as rec:
        plan = rec.load()
        out = undo(plan, rec.entries(), who="owner", now=NOW)
        rec.commit(out.plan, out.lines)
    after = load_plan(plan_path)
    assert after.model_copy(update={"revision": before.revision}) == before


# -- outputs never land on the record ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["build", "{plan}", "-o", "{plan}"],
        ["build", "{plan}", "-o", "{journal}"],
        ["diff", "{plan}", "{ret}", "--html", "{plan}"],
        ["diff", "{plan}", "{ret}", "--html", "{ret}"],
        ["merge", "{plan}", "{ret}", "--report", "{plan}"],
        ["merge", "{plan}", "{ret}", "--report", "{journal}"],
        ["merge", "{plan}", "{ret}", "--report", "{ret}"],
        ["merge", "{plan}", "{ret}", "--report", "{outbox}/manifest.json"],
        ["merge", "{plan}", "{ret}", "--report", "{key}"],
        ["merge", "{plan}", "{ret}", "--conflicts-workbook", "{plan}"],
        ["merge", "{plan}", "{ret}", "--report", "{tmp}/missing-folder/r.txt"],
        ["conflicts", "{plan}", "-o", "{journal}"],
        ["export", "{plan}", "-o", "{tmp}/.plan.yaml.lock", "--format", "md"],
    ],
)
def test_outputs_never_land_on_the_record(tmp_path: Path, args: list[str]) -> None:
    loop = Loop(tmp_path, make_plan())
    ret = loop.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    key = tmp_path / "owner.key"
    run("keygen", "-o", key)
    names = {
        "plan": loop.plan_path,
        "journal": loop.journal,
        "ret": ret,
        "outbox": loop.outbox,
        "key": key,
        "tmp": tmp_path,
    }
    run(
        "merge", loop.plan_path, loop.returned("Chief Constable", {("LG-1", "notes"): "n"})
    )  # a journal exists
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    result = run(*[a.format(**names) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    assert after == files


def test_a_manifest_naming_a_file_outside_the_outbox_is_refused(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    manifest = loop.outbox / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["workbooks"][0]["file"] = "../plan.yaml"
    manifest.write_text(json.dumps(data), encoding="utf-8")
    plan_bytes = loop.plan_path.read_bytes()
    result = run(
        "distribute",
        loop.plan_path,
        "-o",
        loop.outbox,
        "--only",
        data["workbooks"][0]["recipient"],
        "--force",
    )
    assert result.exit_code == 2 and "not a workbook's bare name" in result.stderr, result.output
    assert loop.plan_path.read_bytes() == plan_bytes


# -- symlinks, damaged journals, comments ------------------------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_symlinked_plan_is_written_through(tmp_path: Path) -> None:
    loop = Loop(tmp_path / "real", make_plan())
    link = tmp_path / "plan.yaml"
    link.symlink_to(loop.plan_path)
    f = loop.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    assert run("merge", link, f).exit_code == 0
    assert link.is_symlink()
    assert value(load_plan(loop.plan_path), "IC-1", "status") == "Complete"
    assert loop.journal.is_file() and not (tmp_path / "plan.journal.jsonl").exists()
    assert (loop.plan_path.parent / ".plan.yaml.lock").exists()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1]", "not a JSON object"),
        ("null", "not a JSON object"),
        (
            '{"event": "publish", "time": "t", "revision": "2", "file": "f", "format": "md"}',
            "'revision' must be",
        ),
        (
            '{"event": "return", "revision": 1, "return": "r", "sha256": "s", "issue_id": "i", "recipient": "r"}',
            "needs 'time'",
        ),
        ('{"event": "explode", "time": "t", "revision": 1}', "unknown event"),
        ("{not json", "not valid JSON"),
    ],
)
@pytest.mark.parametrize("command", ["merge", "status", "export", "build", "undo", "conflicts"])
def test_a_damaged_journal_line_is_one_error_line(
    tmp_path: Path, line: str, problem: str, command: str
) -> None:
    loop = Loop(tmp_path, make_plan())
    run("merge", loop.plan_path, loop.returned("Chief Constable", {("LG-1", "notes"): "n"}))
    with loop.journal.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    n = len(loop.journal.read_text(encoding="utf-8").splitlines())
    before = loop.snapshot()
    args: dict[str, list[object]] = {
        "merge": ["merge", loop.plan_path, loop.returned("Area Commanders", {("IC-1", "notes"): "x"})],
        "status": ["status", loop.plan_path, loop.outbox],
        "export": ["export", loop.plan_path, "-o", tmp_path / "p.md"],
        "build": ["build", loop.plan_path, "-o", tmp_path / "m.xlsx"],
        "undo": ["undo", loop.plan_path],
        "conflicts": ["conflicts", loop.plan_path, "-o", tmp_path / "c.xlsx"],
    }
    result = run(*args[command])
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in result.output, err
    assert f"journal is damaged at line {n}" in err and problem in err and "plan.journal.jsonl" in err
    assert loop.snapshot() == before


def test_the_owners_comments_survive_a_merge(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    text = loop.plan_path.read_text(encoding="utf-8")
    text = "# Owner: keep this file in the shared drive\n\n" + text.replace(
        "\nareas:\n", "\n# The areas, as in the 2014 plan\nareas:\n", 1
    ).replace("  - id: IC-1\n", "  # IC-1 reviewed at the March board\n  - id: IC-1\n", 1)
    loop.plan_path.write_text(text, encoding="utf-8")
    f = loop.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    assert run("merge", loop.plan_path, f).exit_code == 0
    saved = loop.plan_path.read_text(encoding="utf-8")
    assert saved.startswith("# Owner: keep this file in the shared drive\n\n")
    assert "\n# The areas, as in the 2014 plan\nareas:\n" in saved
    assert "  # IC-1 reviewed at the March board\n  - id: IC-1\n" in saved
    assert value(load_plan(loop.plan_path), "IC-1", "status") == "Complete"


# -- a state machine: nothing a return said is ever gone -------------------------------------------------------------


class NeverLost(RuleBasedStateMachine):
    """Merge / settle / recheck / undo / export in any order: every value of every merged return is, at every
    step, applied (a live change line), open, or settled with a recorded reason."""

    pool: ClassVar[list[Path]] = []

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp())
        self.plan_path = self.dir / "plan.yaml"
        save_plan(make_plan(), self.plan_path)

    def _entries(self) -> tuple[Plan, list[dict[str, Any]]]:
        plan = load_plan(self.plan_path)
        return plan, J.read_journal(J.journal_path(self.plan_path), plan.revision)

    @rule(picks=st.lists(st.integers(0, 5), min_size=1, max_size=2, unique=True))
    def merge(self, picks: list[int]) -> None:
        with Record(self.plan_path) as rec:
            plan = rec.load()
            result = merge_returns(plan, [self.pool[i] for i in picks], journal=rec.entries(), now=NOW)
            rec.commit(result.plan, result.journal)

    @rule(n=st.integers(0, 10), keep=st.booleans())
    def settle(self, n: int, keep: bool) -> None:
        with Record(self.plan_path) as rec:
            plan = rec.load()
            entries = rec.entries()
            items = [i for i in open_items(entries) if i.action_id in plan.action_index()]
            if not items:
                return
            item = items[n % len(items)]
            try:
                out = resolve(
                    plan,
                    entries,
                    item.action_id,
                    item.field,
                    take="current" if keep else "1",
                    reason="r",
                    who="o",
                    now=NOW,
                )
            except SettleError:
                return  # e.g. the candidate is not a valid value: it stays open
            rec.commit(out.plan, out.lines)

    @rule()
    def register_and_recheck(self) -> None:
        plan = load_plan(self.plan_path)
        if "DCI Jones" not in plan.lead_names():
            add_lead(self.plan_path, "DCI Jones")
        with Record(self.plan_path) as rec:
            plan = rec.load()
            out = recheck(plan, rec.entries(), who="o", now=NOW)
            if out.lines:
                rec.commit(out.plan, out.lines)

    @rule()
    def undo_last(self) -> None:
        with Record(self.plan_path) as rec:
            plan = rec.load()
            try:
                out = undo(plan, rec.entries(), who="o", now=NOW)
            except SettleError:
                return
            rec.commit(out.plan, out.lines)

    @rule()
    def export(self) -> None:
        from daplan_xlsx.export import write_export

        with Record(self.plan_path) as rec:
            write_export(rec.load(), self.plan_path, self.dir / "p.md", "md")

    @invariant()
    def nothing_lost(self) -> None:
        plan, entries = self._entries()
        merged = {e["sha256"] for e in entries if e["event"] == "return"}
        applied = {(e["action_id"], e["field"], e["new"]) for e in entries if e["event"] == "change"}
        kept = {
            (i.action_id, i.field, str(c["value"]), str(c.get("sha256")))
            for i in items_of(entries)
            if i.settled is None or i.settled.get("reason")
            for c in i.candidates
        }
        for path in self.pool:
            reading = _reading(path)
            if reading["sha256"] not in merged:
                continue
            for action_id, key, new in reading["values"]:
                assert (action_id, key, new) in applied or (action_id, key, new, reading["sha256"]) in kept, (
                    path.name,
                    action_id,
                    key,
                    new,
                )
        # Plan and journal agree: each field holds the newest live change's value.
        newest: dict[tuple[str, str], str] = {}
        for e in entries:
            if e["event"] == "change":
                newest[(e["action_id"], e["field"])] = e["new"]
        index = plan.action_index()
        for (action_id, key), new in newest.items():
            if action_id in index:
                assert field_value(index[action_id], key) == new, (action_id, key)


_READINGS: dict[Path, dict[str, Any]] = {}


def _reading(path: Path) -> dict[str, Any]:
    """What a return says, as (action, field, value) for every field it changed."""
    if path not in _READINGS:
        from daplan_xlsx.reader import read_return

        plan = make_plan()
        plan = plan.model_copy(update={"leads": [*plan.leads, Lead(name="DCI Jones")]})
        reading = read_return(path, plan)
        values = {
            (a, k, v) for a, row in reading.rows.items() for k, v in row.changed(reading.base[a]).items()
        }
        values |= {(f.action_id, f.field, f.value) for f in reading.findings if f.field and f.action_id}
        _READINGS[path] = {"sha256": reading.sha256, "values": values}
    return _READINGS[path]


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    loop = Loop(tmp_path_factory.mktemp("pool"), make_plan())
    edits = [
        ("Chief Constable", {("LG-1", "response"): "CC one", ("LG-1", "status"): "On track"}),
        ("Head of Protect", {("LG-1", "response"): "HoP two", ("LG-2", "lead"): "DCI Jones"}),
        ("Area Commanders", {("IC-1", "status"): "Complete", ("LG-L1", "target"): "May"}),
        ("Area Commanders", {("IC-1", "status"): "At risk", ("IC-1", "notes"): "late"}),
        ("Head of Protect", {("LG-2", "status"): "Off track", ("LG-1", "target"): "June"}),
        ("Chief Constable", {("LG-1", "target"): "July", ("LG-1", "notes"): "=SUM(1)"}),
    ]
    return [loop.returned(r, e, name=f"r{n}.xlsx") for n, (r, e) in enumerate(edits)]


def test_never_lost_state_machine(pool: list[Path]) -> None:
    NeverLost.pool = pool
    machine = NeverLost.TestCase
    machine.settings = settings(max_examples=20, stateful_step_count=8, deadline=None)
    machine("runTest").runTest()


# -- found by a hostile review ----------------------------------------------------------------------------------


def test_resolve_never_claims_a_value_it_cannot_apply(tmp_path: Path) -> None:
    """Clearing an action's only lead cannot be applied: refused in one line, never journalled as done."""
    loop = Loop(tmp_path, make_plan())
    ed = ReturnEditor(loop.issued("Area Commanders")).set("IC-1", "lead", "")
    run("merge", loop.plan_path, ed.save(loop.inbox / "cleared.xlsx"))
    before = loop.snapshot()
    for args in (["--take", "1"], ["--value", ""]):
        result = run("resolve", loop.plan_path, "IC-1", "lead", *args)
        assert result.exit_code == 2 and "cannot be set to ''" in result.stderr, result.output
        assert loop.snapshot() == before
    keep = run("resolve", loop.plan_path, "IC-1", "lead", "--take", "current", "--reason", "lead stays")
    assert keep.exit_code == 0, keep.output
    assert run("undo", loop.plan_path).exit_code == 0  # the settlement can be undone: plan and journal agree


def test_resolve_refuses_values_and_reasons_no_workbook_holds(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    run("merge", loop.plan_path, *conflicting(loop))
    before = loop.snapshot()
    for args, words in [
        (
            ["LG-1", "response", "--take", "1", "--reason", "ok\udcff"],
            "--reason contains the control character",
        ),
        (["LG-1", "response", "--value", "bell\x07"], "--value contains the control character U+0007"),
        (["LG-1", "response", "--value", "x" * 40_000], "--value is 40000 characters long"),
    ]:
        result = run("resolve", loop.plan_path, *args)
        assert result.exit_code == 2 and words in result.stderr, result.output
        assert "pydantic" not in result.stderr and result.stderr.count("\n") == 1
        assert loop.snapshot() == before


@pytest.mark.parametrize(
    "line",
    [
        '{"event": "publish", "time": "t", "revision": 1, "file": "a\\ud800", "format": "md"}',
        "[" * 100_000 + "]" * 100_000,
        '{"event": "publish", "time": "t", "revision": ' + "9" * 5000 + ', "file": "f", "format": "md"}',
    ],
    ids=["lone-surrogate", "deep-nesting", "huge-number"],
)
def test_journal_lines_that_break_json_readers_are_one_error_line(tmp_path: Path, line: str) -> None:
    loop = Loop(tmp_path, make_plan())
    with loop.journal.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    before = loop.snapshot()
    for args in (["status", loop.plan_path], ["export", loop.plan_path, "-o", tmp_path / "p.md"]):
        result = run(*args)
        assert result.exit_code == 2 and "journal is damaged at line" in result.stderr, result.output
        assert "Traceback" not in result.output
    assert loop.snapshot() == before


def test_a_proposed_row_left_unadded_stays_on_record_until_added_or_declined(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ed = ReturnEditor(loop.issued("Area Commanders"))
    ed.add_row({"action": "Publish a monthly dashboard", "status": "On track"}, "Initial Contact")
    f = ed.save(loop.inbox / "proposal.xlsx")
    assert run("merge", loop.plan_path, f).exit_code == 1
    (item,) = open_items(J.read_journal(loop.journal, loop.plan.revision))
    assert item.kind == "proposal" and item.candidates[0]["value"] == "Publish a monthly dashboard"
    status = run("status", loop.plan_path).stdout
    assert item.action_id in status
    made = run("conflicts", loop.plan_path, "-o", tmp_path / "c.xlsx")
    assert made.exit_code == 1 and "none about an action in the plan" in made.stdout
    # Declined, with a reason ...
    declined = run(
        "resolve", loop.plan_path, item.action_id, "action", "--take", "current", "--reason", "dup"
    )
    assert declined.exit_code == 0, declined.output
    assert open_items(J.read_journal(loop.journal, loop.plan.revision)) == []
    # ... or, after an undo of that, added: the addition settles it.
    assert run("undo", loop.plan_path).exit_code == 0
    assert run("merge", loop.plan_path, f, "--accept-new").exit_code == 0
    entries = J.read_journal(loop.journal, loop.plan.revision)
    assert open_items(entries) == []
    assert [e["how"] for e in entries if e["event"] == "settle"] == ["accepted"]


def test_a_plan_saved_by_a_windows_editor_keeps_its_line_ends_and_mark(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    text = loop.plan_path.read_bytes().replace(b"\n", b"\r\n")
    loop.plan_path.write_bytes(b"\xef\xbb\xbf# kept\r\n" + text)
    f = loop.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    assert run("merge", loop.plan_path, f).exit_code == 0
    saved = loop.plan_path.read_bytes()
    assert saved.startswith(b"\xef\xbb\xbf# kept\r\n") and b"\n" not in saved.replace(b"\r\n", b"")
    assert value(load_plan(loop.plan_path), "IC-1", "status") == "Complete"
    assert run("undo", loop.plan_path).exit_code == 0


def test_an_output_never_replaces_a_leads_workbook(tmp_path: Path) -> None:
    """A return waiting in the inbox (or an issued workbook) is not overwritten by a master or a report."""
    loop = Loop(tmp_path, make_plan())
    ret = loop.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    before = ret.read_bytes()
    for args in (["build", loop.plan_path, "-o", ret], ["conflicts", loop.plan_path, "-o", ret]):
        result = run(*args)
        assert result.exit_code == 2 and "would replace a lead's workbook" in result.stderr, result.output
        assert ret.read_bytes() == before
    master = tmp_path / "master.xlsx"
    assert run("build", loop.plan_path, "-o", master).exit_code == 0
    assert run("build", loop.plan_path, "-o", master).exit_code == 0  # the master itself may be rebuilt


@pytest.mark.skipif(os.name == "nt", reason="no /dev/zero on Windows")
def test_a_plan_or_journal_that_is_a_device_is_one_line_not_a_hang(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.symlink_to("/dev/zero")
    result = run("status", plan)
    assert result.exit_code == 2 and "not an ordinary file" in result.stderr
    loop = Loop(tmp_path / "loop", make_plan())
    loop.journal.unlink()
    os.mkfifo(loop.journal)
    result = run("status", loop.plan_path)
    assert result.exit_code == 2 and "journal is damaged" in result.stderr


def test_a_journal_line_with_bytes_that_are_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    with loop.journal.open("ab") as fh:
        fh.write(b'{"event": "publish", "time": "t", "revision": 1, "file": "a\xff\xfe", "format": "md"}\n')
    result = run("export", loop.plan_path, "-o", tmp_path / "p.md")
    assert result.exit_code == 2 and "journal is damaged at line" in result.stderr, result.output
