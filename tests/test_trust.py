"""Trust by default: a signing key without asking, every issued workbook on record, every return checked
against what was really issued. Forgeries are made as an attacker who has read the code would: decode the
metadata, change it, recompute the checksum."""

from __future__ import annotations

import json
import os
import stat
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import make_plan
from returns import ReturnEditor
from test_hostile_returns import blobs, forge

from daplan_xlsx import journal as J
from daplan_xlsx import signing
from daplan_xlsx.cli import cli
from daplan_xlsx.layout import EDITABLE_FIELDS
from daplan_xlsx.meta import _signed_bytes, field_value, read_workbook_meta
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.trust import key_path


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan", env={"DAPLAN_KEY_FILE": None})


class Owner:
    """A plan distributed with `daplan distribute`, as the owner would."""

    def __init__(self, root: Path, *, sign: bool = True) -> None:
        self.plan_path = root / "plan.yaml"
        self.outbox = root / "outbox"
        self.inbox = root / "inbox"
        self.inbox.mkdir(parents=True)
        save_plan(make_plan(), self.plan_path)
        result = run("distribute", self.plan_path, "-o", self.outbox, *([] if sign else ["--no-sign"]))
        assert result.exit_code == 0, result.output
        self.manifest = json.loads((self.outbox / "manifest.json").read_text(encoding="utf-8"))

    def issued(self, recipient: str) -> Path:
        entry = next(w for w in self.manifest["workbooks"] if w["recipient"] == recipient)
        return self.outbox / entry["file"]

    def returned(self, recipient: str, edits: dict[tuple[str, str], object], name: str = "r.xlsx") -> Path:
        return ReturnEditor(self.issued(recipient)).set_many(edits).save(self.inbox / name)

    def merge(self, *files: Path) -> tuple[Result, dict[str, Any]]:
        result = run("merge", self.plan_path, *files, "--json")
        return result, json.loads(result.stdout) if result.exit_code in (0, 1) else {}

    def value(self, action_id: str, key: str) -> str:
        return field_value(load_plan(self.plan_path).action_index()[action_id], key)


def refused(owner: Owner, f: Path, words: str) -> None:
    """Refused as a whole, with a reason naming what was wrong; nothing of it applied."""
    before = make_plan()
    result, data = owner.merge(f)
    assert result.exit_code == 1, result.output
    (summary,) = data["returns"]
    assert summary["accepted"] is False and words in summary["note"], summary
    after = load_plan(owner.plan_path)
    assert after.model_copy(update={"revision": before.revision}) == before
    assert "Traceback" not in result.output


# -- the key ------------------------------------------------------------------------------------------------------


def test_the_first_distribute_makes_a_private_key_outside_the_plan_folder_and_signs(tmp_path: Path) -> None:
    owner = Owner(tmp_path / "plan")
    path = key_path("plan-test")
    assert path.is_file() and not path.is_relative_to(tmp_path / "plan")
    if os.name != "nt":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert owner.manifest["signed"] is True
    key = signing.load_key(path)
    reading = read_workbook_meta(owner.issued("Chief Constable"), key)
    assert reading.verdict == "intact" and reading.signature_checked
    # The record knows every workbook issued.
    issues = [e for e in J.read_journal(J.journal_path(owner.plan_path), 1) if e["event"] == "issue"]
    assert sorted(e["recipient"] for e in issues) == sorted(
        w["recipient"] for w in owner.manifest["workbooks"]
    )
    assert all(e["signed"] and e["kind"] == "lead" and len(e["checksum"]) == 64 for e in issues)
    # A signed return merges with no key given: the plan's own key is found.
    result, data = owner.merge(owner.returned("Area Commanders", {("IC-1", "status"): "Complete"}))
    assert result.exit_code == 0, result.output
    assert data["returns"][0]["accepted"] and owner.value("IC-1", "status") == "Complete"


def test_build_makes_the_key_too_and_no_sign_opts_out(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan)
    assert run("build", plan, "-o", tmp_path / "m.xlsx", "--no-sign").exit_code == 0
    assert not key_path("plan-test").exists()
    assert run("build", plan, "-o", tmp_path / "m.xlsx").exit_code == 0
    assert key_path("plan-test").is_file()


# -- forgeries of an unsigned (--no-sign) distribution: the record catches them ------------------------------------


@pytest.fixture
def unsigned(tmp_path: Path) -> Owner:
    return Owner(tmp_path, sign=False)


def test_a_widened_scope_is_refused(unsigned: Owner) -> None:
    src = unsigned.returned("Chief Constable", {("LG-1", "notes"): "x"}, "src.xlsx")
    f = forge(src, unsigned.inbox / "wide.xlsx", header=lambda h: h["scope"].append("LG-2"))
    refused(unsigned, f, "scope is not the one issued (1 action(s) added, e.g. LG-2)")


def test_a_changed_recipient_is_refused(unsigned: Owner) -> None:
    src = unsigned.returned("Chief Constable", {("LG-1", "notes"): "x"}, "src.xlsx")
    f = forge(src, unsigned.inbox / "who.xlsx", header=lambda h: h.update(recipient="Head of Protect"))
    refused(unsigned, f, "issued to 'Chief Constable'")


def test_an_invented_issue_id_is_refused(unsigned: Owner) -> None:
    src = unsigned.returned("Chief Constable", {("LG-1", "notes"): "x"}, "src.xlsx")
    f = forge(src, unsigned.inbox / "id.xlsx", header=lambda h: h.update(issue_id="00000000-made-up"))
    refused(unsigned, f, "is not one this plan issued")


def test_a_workbook_marked_as_the_owners_is_refused(unsigned: Owner) -> None:
    src = unsigned.returned("Chief Constable", {("LG-1", "notes"): "x"}, "src.xlsx")
    f = forge(src, unsigned.inbox / "kind.xlsx", header=lambda h: h.update(kind="conflicts"))
    refused(unsigned, f, "issued as a lead workbook, not a conflicts one")


def test_base_values_set_to_the_current_plan_are_refused(unsigned: Owner) -> None:
    """The attack: the plan changed since issue, so the return's value should conflict; the lead rewrites the
    base to the plan's current value so that it would overwrite instead."""
    plan = load_plan(unsigned.plan_path)
    data = plan.model_dump()
    data["areas"][0]["actions"][0]["notes"] = "the owner's newer note"
    save_plan(type(plan).model_validate(data), unsigned.plan_path)
    src = unsigned.returned("Chief Constable", {("LG-1", "notes"): "the lead's note"}, "src.xlsx")
    current = load_plan(unsigned.plan_path).action_index()["LG-1"]
    base_line = json.dumps([field_value(current, k) for k in EDITABLE_FIELDS], ensure_ascii=False)
    f = forge(src, unsigned.inbox / "base.xlsx", base=zlib.compress(base_line.encode()))
    result, data_ = unsigned.merge(f)
    assert result.exit_code == 1
    assert data_["returns"][0]["accepted"] is False
    assert "differs from what was issued" in data_["returns"][0]["note"]
    assert unsigned.value("LG-1", "notes") == "the owner's newer note"


def test_an_unsigned_distribution_still_merges_with_a_note(unsigned: Owner) -> None:
    result, data = unsigned.merge(unsigned.returned("Area Commanders", {("IC-1", "status"): "Complete"}))
    assert result.exit_code == 0, result.output
    assert "issued with --no-sign" in data["returns"][0]["note"]


# -- a signed distribution ---------------------------------------------------------------------------------------


def test_a_stripped_signature_is_refused(tmp_path: Path) -> None:
    owner = Owner(tmp_path)
    ed = ReturnEditor(owner.returned("Area Commanders", {("IC-1", "status"): "Complete"}, "src.xlsx"))
    ed.meta_sheet()["B4"].value = None
    refused(owner, ed.save(owner.inbox / "stripped.xlsx"), "carries no signature")


def test_a_return_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    owner = Owner(tmp_path)
    src = owner.returned("Area Commanders", {("IC-1", "status"): "Complete"}, "src.xlsx")
    f = forge(src, owner.inbox / "resigned.xlsx", header=lambda h: h["scope"].append("LG-2"))
    # The attacker signs with a key of their own.
    ed = ReturnEditor(f)
    h, b = blobs(ed.meta_rows())
    ed.meta_sheet()["B4"].value = signing.sign(b"k" * 32, _signed_bytes(h, b))
    refused(owner, ed.save(owner.inbox / "resigned2.xlsx"), "signature does not match")


def test_without_the_key_on_this_machine_a_signed_return_is_refused(tmp_path: Path) -> None:
    owner = Owner(tmp_path)
    f = owner.returned("Area Commanders", {("IC-1", "status"): "Complete"})
    key_path("plan-test").unlink()
    refused(owner, f, "key is not on this machine")


def test_the_master_workbook_is_never_a_return(tmp_path: Path) -> None:
    owner = Owner(tmp_path)
    master = tmp_path / "master.xlsx"
    assert run("build", owner.plan_path, "-o", master).exit_code == 0
    ed = ReturnEditor(master)
    ed.set("IC-1", "status", "Complete")
    refused(owner, ed.save(owner.inbox / "master-edited.xlsx"), "master workbook")


def test_the_conflicts_workbook_is_recorded_and_merged_as_the_owners(tmp_path: Path) -> None:
    owner = Owner(tmp_path)
    a = owner.returned("Chief Constable", {("LG-1", "response"): "A"}, "a.xlsx")
    b = owner.returned("Head of Protect", {("LG-1", "response"): "B"}, "b.xlsx")
    assert owner.merge(a, b)[0].exit_code == 1
    book = tmp_path / "settle.xlsx"
    assert run("conflicts", owner.plan_path, "-o", book).exit_code == 0
    plan = load_plan(owner.plan_path)
    issues = [
        e for e in J.read_journal(J.journal_path(owner.plan_path), plan.revision) if e["event"] == "issue"
    ]
    assert issues[-1]["kind"] == "conflicts" and issues[-1]["signed"]
    settled = ReturnEditor(book).set("LG-1", "response", "Agreed").save(tmp_path / "settled.xlsx")
    result, _data = owner.merge(settled)
    assert result.exit_code == 0, result.output
    assert owner.value("LG-1", "response") == "Agreed"
