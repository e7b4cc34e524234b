"""`daplan status`: who was sent a workbook, who returned it (by issue id, whatever the file is called),
what is merged (from the journal) and what is outstanding."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import EXAMPLES, make_plan
from returns import Loop

from daplan_xlsx import journal as J
from daplan_xlsx.cli import cli
from daplan_xlsx.console import when
from daplan_xlsx.errors import DaplanError
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan
from daplan_xlsx.status import status_report

PLANS: list[tuple[str, Callable[[], Plan]]] = [("make_plan", make_plan)] + [
    (p.stem, lambda p=p: load_plan(p)) for p in EXAMPLES
]
ROW_KEYS = {
    "recipient",
    "file",
    "issue_id",
    "actions",
    "issued_at",
    "round",  # the reporting round ("" outside one), its return-by date and the days left while outstanding
    "return_by",
    "days_left",
    "returned",
    "returned_earlier_issue",
    "merged_at",
    "proposals_pending",
    "open_items",
    "outstanding",
}


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan", env={"DAPLAN_KEY_FILE": None})


def status_json(loop: Loop, inbox: bool = True) -> dict[str, Any]:
    args: list[object] = ["status", loop.plan_path, loop.outbox]
    if inbox:
        args.append(loop.inbox)
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["recipient"]: r for r in data["recipients"]}


def assert_one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("make", [m for _, m in PLANS], ids=[n for n, _ in PLANS])
def test_before_any_return_everything_is_outstanding(tmp_path: Path, make: Callable[[], Plan]) -> None:
    loop = Loop(tmp_path, make())
    n = len(loop.recipients())
    for data in (status_json(loop, inbox=False), status_json(loop, inbox=True)):
        assert data["plan_id"] == loop.plan.id and data["plan_revision"] == loop.plan.revision
        assert data["totals"] == {
            "issued": n,
            "returned": 0,
            "merged": 0,
            "outstanding": n,
            "proposals_pending": 0,
            "open_items": 0,
        }
        assert data["unmatched_files"] == []
        assert [r["recipient"] for r in data["recipients"]] == loop.recipients()
        for r in data["recipients"]:
            assert set(r) == ROW_KEYS
            wb = loop.entry(r["recipient"])
            assert (r["file"], r["issue_id"], r["actions"]) == (wb["file"], wb["issue_id"], len(wb["scope"]))
            assert r["issued_at"] == loop.manifest["issued_at"]
            assert (r["returned"], r["merged_at"], r["outstanding"]) == ([], "", True)
            assert r["proposals_pending"] == 0
    text = run("status", loop.plan_path, loop.outbox).stdout
    assert text.count("OUTSTANDING") == n
    assert f"{n} issued, 0 returned, 0 merged, {n} outstanding." in text


def test_returns_in_the_inbox_are_matched_by_issue_id(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    # Renamed as an email client would; one also copied twice.
    loop.returned("Head of Protect", {("LG-2", "notes"): "x"}, name="RE Action plan (HoP) final v2.xlsx")
    shutil.copyfile(loop.inbox / "RE Action plan (HoP) final v2.xlsx", loop.inbox / "hop-copy.xlsx")
    loop.returned("Area Commanders", name="returned.XLSX")
    data = status_json(loop)
    got = rows(data)
    assert got["Head of Protect"]["returned"] == ["RE Action plan (HoP) final v2.xlsx", "hop-copy.xlsx"]
    assert got["Area Commanders"]["returned"] == ["returned.XLSX"]
    assert got["Chief Constable"]["returned"] == []
    assert [r["outstanding"] for r in data["recipients"]] == [True, False, False]
    assert data["totals"] == {
        "issued": 3,
        "returned": 2,
        "merged": 0,
        "outstanding": 1,
        "proposals_pending": 0,
        "open_items": 0,
    }
    assert data["unmatched_files"] == []
    text = run("status", loop.plan_path, loop.outbox, loop.inbox).stdout
    assert "1 outstanding" in text and text.count("OUTSTANDING") == 1


def test_after_merge_the_merged_time_comes_from_the_journal(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    f = loop.returned("Head of Protect", {("LG-2", "notes"): "x"})
    loop.returned("Area Commanders", {("IC-1", "notes"): "y"}, name="ac.xlsx")
    assert run("merge", loop.plan_path, f).exit_code == 0
    returns = [e for e in loop.journal_lines() if e["event"] == "return"]
    assert len(returns) == 1

    data = status_json(loop)
    got = rows(data)
    assert got["Head of Protect"]["merged_at"] == returns[0]["time"]
    assert got["Area Commanders"]["merged_at"] == ""
    assert got["Area Commanders"]["returned"] == ["ac.xlsx"]
    assert data["plan_revision"] == 2
    assert data["totals"] == {
        "issued": 3,
        "returned": 2,
        "merged": 1,
        "outstanding": 1,
        "proposals_pending": 0,
        "open_items": 0,
    }

    # Merged, and the file since moved out of the inbox: merged, not outstanding.
    f.unlink()
    got = rows(status_json(loop))
    assert got["Head of Protect"]["returned"] == []
    assert got["Head of Protect"]["outstanding"] is False
    assert got["Head of Protect"]["merged_at"] == returns[0]["time"]
    text = run("status", loop.plan_path, loop.outbox, loop.inbox).stdout
    # As a person reads a time, in UTC: "30 Nov 2026 10:26", not ISO.
    assert when(returns[0]["time"]) in text and returns[0]["time"][:19] not in text


def proposing(loop: Loop, name: str, *actions: str) -> Path:
    """An Area Commanders return proposing new actions (rows without an ID) on the Initial Contact sheet."""
    ed = loop.editor("Area Commanders")
    for text in actions:
        ed.add_row({"action": text, "status": "Not started"}, "Initial Contact")
    return ed.save(loop.inbox / name)


def test_proposals_left_unadded_await_accept_new(tmp_path: Path) -> None:
    """A merge without --accept-new leaves proposals pending: per recipient, in the totals and in the
    text; merged again with --accept-new, nothing is pending."""
    loop = Loop(tmp_path, make_plan())
    # Two people return the Area Commanders workbook, proposing three new actions between them.
    first = proposing(loop, "ac-north.xlsx", "Publish a monthly DA dashboard.", "Train call handlers.")
    second = proposing(loop, "ac-south.xlsx", "Review MARAC referrals.")
    hop = loop.returned("Head of Protect", {("LG-2", "notes"): "x"})
    assert run("merge", loop.plan_path, first, second, hop).exit_code == 1  # proposals left for a person
    data = status_json(loop)
    got = rows(data)
    assert got["Area Commanders"]["proposals_pending"] == 3
    assert got["Head of Protect"]["proposals_pending"] == 0
    assert got["Chief Constable"]["proposals_pending"] == 0
    assert data["totals"]["proposals_pending"] == 3
    assert data["totals"]["merged"] == 2
    text = run("status", loop.plan_path, loop.outbox, loop.inbox).stdout
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Area Commanders"))
    assert lines[at + 1] == "    3 proposed new action(s) await `daplan merge --accept-new`"
    assert text.count("await `daplan merge --accept-new`") == 1
    assert "3 proposed new action(s) not yet added" in text
    assert max(len(line) for line in lines) <= 100

    # One of the two merged again with --accept-new: its proposals are added, the other's still wait.
    assert run("merge", loop.plan_path, second, "--accept-new").exit_code == 0
    assert rows(status_json(loop))["Area Commanders"]["proposals_pending"] == 2
    assert run("merge", loop.plan_path, first, second, hop, "--accept-new").exit_code == 0
    data = status_json(loop)
    assert [r["proposals_pending"] for r in data["recipients"]] == [0, 0, 0]
    assert data["totals"]["proposals_pending"] == 0
    assert [a.action for a in loop.plan.areas[1].actions[1:]] == [
        "Review MARAC referrals.",
        "Publish a monthly DA dashboard.",
        "Train call handlers.",
    ]
    text = run("status", loop.plan_path, loop.outbox, loop.inbox).stdout
    assert "--accept-new" not in text


def test_library_status_report(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    report = status_report(loop.plan, loop.plan_path, loop.outbox, loop.inbox)
    assert report == status_json(loop)
    with pytest.raises(DaplanError):
        status_report(loop.plan, loop.plan_path, loop.outbox, tmp_path / "no-inbox")


def test_uncommitted_journal_lines_are_not_merged(tmp_path: Path) -> None:
    """Lines of an interrupted merge (revision above the plan's) do not count as merged."""
    loop = Loop(tmp_path, make_plan())
    wb = loop.entry("Area Commanders")
    J.append(
        loop.journal,
        [
            {
                "event": "return",
                "time": "2026-11-20T12:00:00+00:00",
                "revision": 2,
                "return": "x.xlsx",
                "sha256": "0" * 64,
                "issue_id": wb["issue_id"],
                "recipient": wb["recipient"],
                "issued_at": loop.manifest["issued_at"],
            }
        ],
    )
    assert rows(status_json(loop))["Area Commanders"]["merged_at"] == ""


def test_files_not_from_this_outbox_are_unmatched(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    loop.returned("Chief Constable")
    # A workbook issued by another distribution of the same plan, a plain file, and junk.
    other = Loop(tmp_path / "other", make_plan())
    shutil.copyfile(other.issued("Area Commanders"), loop.inbox / "from-another-outbox.xlsx")
    (loop.inbox / "notes.txt").write_text("thanks", encoding="utf-8")
    (loop.inbox / "broken.xlsx").write_bytes(b"PK\x03\x04 truncated")
    # Lock and hidden files are not returns at all.
    (loop.inbox / "~$chief-constable.xlsx").write_bytes(b"lock")
    (loop.inbox / ".DS_Store").write_bytes(b"mac")
    (loop.inbox / "sub").mkdir()
    data = status_json(loop)
    assert sorted(data["unmatched_files"]) == ["broken.xlsx", "from-another-outbox.xlsx", "notes.txt"]
    assert data["totals"]["returned"] == 1
    assert rows(data)["Area Commanders"]["returned"] == []
    text = run("status", loop.plan_path, loop.outbox, loop.inbox).stdout
    assert "Not from this outbox:" in text and "from-another-outbox.xlsx" in text


def test_outbox_of_another_plan(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    other = Loop(tmp_path / "other", make_plan().model_copy(update={"id": "plan-other"}))
    line = assert_one_line_error(run("status", loop.plan_path, other.outbox))
    assert "another plan" in line and "plan-other" in line


def test_outbox_without_manifest(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    line = assert_one_line_error(run("status", loop.plan_path, loop.inbox))
    assert "manifest.json" in line
    (loop.outbox / "manifest.json").write_text("{not json", encoding="utf-8")
    assert "manifest.json" in assert_one_line_error(run("status", loop.plan_path, loop.outbox))


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda m: [m], "not a manifest"),
        (lambda m: {**m, "workbooks": None}, "not a manifest"),
        (lambda m: {**m, "workbooks": [{**m["workbooks"][0], "issue_id": None}]}, "entry 1 of 'workbooks'"),
        (lambda m: {**m, "workbooks": m["workbooks"] + ["junk"]}, "'workbooks' is damaged"),
        (lambda m: {**m, "superseded": [{"recipient": "x"}]}, "entry 1 of 'superseded'"),
        (lambda m: {**m, "superseded": "junk"}, "'superseded' is damaged"),
    ],
)
def test_a_hand_edited_manifest_is_one_line(tmp_path: Path, damage: Any, phrase: str) -> None:
    """A manifest damaged by hand is refused in one line by status and by a re-issue, never a traceback."""
    loop = Loop(tmp_path, make_plan())
    path = loop.outbox / "manifest.json"
    path.write_text(json.dumps(damage(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
    before = path.read_bytes()
    for args in (
        ("status", loop.plan_path, loop.outbox),
        ("distribute", loop.plan_path, "-o", loop.outbox, "--only", "Chief Constable", "--force"),
    ):
        line = assert_one_line_error(run(*args))
        assert "manifest.json" in line and phrase in line, line
    assert path.read_bytes() == before


def test_inbox_not_a_folder(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    assert_one_line_error(run("status", loop.plan_path, loop.outbox, tmp_path / "missing"))
