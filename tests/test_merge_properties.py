"""Properties of merging, over edits generated as data and written into real returns with openpyxl.

One distribution of `make_plan()` by lead is made once per module; each example copies the issued workbooks
it needs, edits them, and merges them against a fresh copy of the plan.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import fixed_clock, make_plan
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from returns import ReturnEditor

from daplan_xlsx import journal as J
from daplan_xlsx import layout as L
from daplan_xlsx import normalise as N
from daplan_xlsx.distribute import distribute
from daplan_xlsx.merge import MergeResult, commit_merge, merge_returns
from daplan_xlsx.meta import field_value
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.reader import normalise_field

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
PLAN = make_plan()
FIELDS = L.EDITABLE_FIELDS
STATUSES = PLAN.status_names()
LEADS = PLAN.lead_names()
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@dataclass(frozen=True)
class Formula:
    """A real formula typed into a cell (not text)."""

    text: str


Edits = dict[tuple[str, str], object]  # (action id, field) -> raw value as typed


@dataclass
class Issued:
    folder: Path
    manifest: dict[str, Any]

    def file(self, recipient: str) -> Path:
        return self.folder / next(
            w["file"] for w in self.manifest["workbooks"] if w["recipient"] == recipient
        )

    def scope(self, recipient: str) -> list[str]:
        return next(w["scope"] for w in self.manifest["workbooks"] if w["recipient"] == recipient)

    @property
    def recipients(self) -> list[str]:
        return [w["recipient"] for w in self.manifest["workbooks"]]


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Issued:
    folder = tmp_path_factory.mktemp("issued") / "outbox"
    return Issued(folder, distribute(PLAN, folder, clock=fixed_clock))


# -- values ---------------------------------------------------------------------------------------------------

TEXT = st.text(st.sampled_from([*"abcXYZ019 =+-@.,;:'\"()/&\n\t", "é", "\u00a0"]), max_size=25)
DATES = st.dates(dt.date(2015, 1, 1), dt.date(2035, 12, 31))


def valid_values(field: str) -> st.SearchStrategy[object]:
    if field == "status":
        return st.sampled_from(STATUSES).flatmap(lambda s: st.sampled_from([s, s.upper(), f" {s.lower()} "]))
    if field == "lead":
        return st.sampled_from(LEADS)
    if field == "due":
        return DATES | DATES.map(lambda d: d.strftime("%d/%m/%Y")) | st.none()
    return TEXT


def any_values(field: str) -> st.SearchStrategy[object]:
    """Valid values and the ones a merge must refuse (and keep)."""
    if field == "status":
        return valid_values(field) | st.sampled_from(["Green", "Done!"])
    if field == "lead":
        return valid_values(field) | st.just("Head of Nothing")
    if field == "due":
        return valid_values(field) | st.sampled_from(["soon", "31/02/2027"])
    return TEXT | st.integers(0, 99).map(lambda n: Formula(f"=1+{n}"))


def expected(field: str, raw: object) -> str:
    """What a merge must keep of a typed value: its normal form, or (refused) the text as typed."""
    if isinstance(raw, Formula):
        return raw.text
    try:
        return normalise_field(field, raw, PLAN)
    except ValueError:
        return N.text(raw)


def valid(field: str, raw: object) -> bool:
    if isinstance(raw, Formula):
        return False
    try:
        normalise_field(field, raw, PLAN)
    except ValueError:
        return False
    return True


def base(action_id: str, field: str) -> str:
    """The issued value in its normal form, as the merge compares it."""
    return expected(field, field_value(PLAN.action_index()[action_id], field))


@st.composite
def edits_of(draw: st.DrawFn, scope: list[str], values: Any = any_values, max_size: int = 4) -> Edits:
    keys = draw(
        st.lists(st.tuples(st.sampled_from(scope), st.sampled_from(FIELDS)), unique=True, max_size=max_size)
    )
    return {k: draw(values(k[1])) for k in keys}


def all_edits(issued: Issued, values: Any = any_values) -> st.SearchStrategy[dict[str, Edits]]:
    return st.fixed_dictionaries({r: edits_of(issued.scope(r), values) for r in issued.recipients})


# -- running a merge ------------------------------------------------------------------------------------------


def write_returns(
    issued: Issued, edits: Mapping[str, Edits], folder: Path, names: Mapping[str, str] | None = None
) -> dict[str, Path]:
    """One return per recipient with edits, named `<recipient slug>.xlsx` or as `names` says."""
    out = {}
    for recipient, changes in edits.items():
        if not changes:
            continue
        ed = ReturnEditor(issued.file(recipient))
        for (action_id, field), raw in changes.items():
            if isinstance(raw, Formula):
                ed.formula(action_id, field, raw.text)
            else:
                ed.set(action_id, field, raw)
        name = (names or {}).get(recipient) or issued.file(recipient).name
        out[recipient] = ed.save(folder / name)
    return out


def fresh_plan(folder: Path) -> Path:
    path = folder / "plan.yaml"
    save_plan(PLAN, path)
    return path


def merge(plan_path: Path, files: list[Path], commit: bool = True, **kw: Any) -> MergeResult:
    plan = load_plan(plan_path)
    result = merge_returns(
        plan, files, journal=J.read_journal(J.journal_path(plan_path), plan.revision), now=NOW, **kw
    )
    if commit:
        commit_merge(plan_path, result)
    return result


def canonical(
    result: MergeResult, rename: Mapping[str, str] | None = None
) -> tuple[str, list[tuple[Any, ...]]]:
    """The merged plan and the decisions, with file names mapped through `rename` (path -> label)."""

    def name(source: str) -> str:
        return ", ".join(sorted((rename or {}).get(s, Path(s).name) for s in source.split(", ")))

    items = sorted(
        (
            i.action_id,
            i.field,
            i.outcome,
            i.base,
            i.current,
            i.new,
            name(i.source),
            tuple(sorted((name(c.source), c.recipient, c.value) for c in i.candidates)),
        )
        for i in result.items
    )
    findings = sorted((name(s), f.kind, f.sheet, f.cell, f.action_id, f.value) for s, f in result.findings)
    plan = json.dumps(result.plan.model_dump(mode="json"), sort_keys=True)
    return plan, [*items, *findings, *((w,) for w in sorted(result.warnings))]


# -- properties -----------------------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_result_does_not_depend_on_file_order_or_names(issued: Issued, data: st.DataObject) -> None:
    edits = data.draw(all_edits(issued))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_returns(issued, edits, folder)
        assume(files)
        paths = list(files.values())
        label = {str(p): r for r, p in files.items()}
        reference = canonical(merge_returns(PLAN, paths, now=NOW), label)

        shuffled = data.draw(st.permutations(paths))
        assert canonical(merge_returns(PLAN, shuffled, now=NOW), label) == reference

        # The same returns under names that sort in another order.
        order = data.draw(st.permutations(list(files)))
        renamed_dir = folder / "renamed"
        renamed_dir.mkdir()
        renamed = {}
        for n, recipient in enumerate(order):
            target = renamed_dir / f"{n:02d}-return.xlsx"
            target.write_bytes(files[recipient].read_bytes())
            renamed[str(target)] = recipient
        result = merge_returns(PLAN, [Path(p) for p in renamed], now=NOW)
        assert canonical(result, renamed) == reference


@st.composite
def disjoint_edits(draw: st.DrawFn, issued: Issued) -> dict[str, Edits]:
    """Each (action, field) edited by at most one recipient; valid values only."""
    edits: dict[str, Edits] = {r: {} for r in issued.recipients}
    actions = sorted({a for r in issued.recipients for a in issued.scope(r)})
    for action_id in actions:
        holders = [r for r in issued.recipients if action_id in issued.scope(r)]
        for field in FIELDS:
            owner = draw(st.sampled_from([None, None, *holders]))
            if owner is not None:
                edits[owner][(action_id, field)] = draw(valid_values(field))
    return edits


@PROPERTY
@given(data=st.data())
def test_disjoint_edits_never_conflict(issued: Issued, data: st.DataObject) -> None:
    edits = data.draw(disjoint_edits(issued))
    with tempfile.TemporaryDirectory() as tmp:
        files = write_returns(issued, edits, Path(tmp))
        result = merge_returns(PLAN, list(files.values()), now=NOW)
    assert [i for i in result.items if i.outcome != "applied"] == []
    assert not result.needs_person
    index = result.plan.action_index()
    for changes in edits.values():
        for (action_id, field), raw in changes.items():
            assert field_value(index[action_id], field) == expected(field, raw)
    changed = {(i.action_id, i.field) for i in result.applied}
    assert changed == {
        (a, f)
        for changes in edits.values()
        for (a, f), raw in changes.items()
        if expected(f, raw) != base(a, f)
    }


@st.composite
def two_values(draw: st.DrawFn) -> tuple[str, object, object]:
    field = draw(st.sampled_from(FIELDS))
    v1 = draw(valid_values(field))
    v2 = draw(valid_values(field))
    n1, n2 = expected(field, v1), expected(field, v2)
    assume(n1 != n2 and base("LG-1", field) not in (n1, n2))
    return field, v1, v2


@PROPERTY
@given(data=st.data())
def test_same_field_different_values_always_conflict(issued: Issued, data: st.DataObject) -> None:
    field, v1, v2 = data.draw(two_values())
    # LG-1 is issued to both the Chief Constable (its lead) and the Head of Protect (supporting).
    edits = data.draw(all_edits(issued))
    edits["Chief Constable"][("LG-1", field)] = v1
    edits["Head of Protect"][("LG-1", field)] = v2
    with tempfile.TemporaryDirectory() as tmp:
        files = write_returns(issued, edits, Path(tmp))
        result = merge_returns(PLAN, list(files.values()), now=NOW)
    (item,) = [i for i in result.items if (i.action_id, i.field) == ("LG-1", field)]
    assert item.outcome == "conflict"
    assert {(c.recipient, c.value) for c in item.candidates} == {
        ("Chief Constable", expected(field, v1)),
        ("Head of Protect", expected(field, v2)),
    }
    assert field_value(result.plan.action_index()["LG-1"], field) == field_value(
        PLAN.action_index()["LG-1"], field
    )
    assert result.needs_person


@PROPERTY
@given(data=st.data(), accept_new=st.booleans())
def test_merging_again_changes_nothing(issued: Issued, data: st.DataObject, accept_new: bool) -> None:
    edits = data.draw(all_edits(issued))
    propose = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan_path = fresh_plan(folder)
        files = write_returns(issued, edits, folder)
        if propose:
            ed = ReturnEditor(issued.file("Area Commanders"))
            ed.add_row({"action": "a proposed action"}, "Initial Contact")
            files["proposal"] = ed.save(folder / "proposal.xlsx")
        assume(files)
        first = merge(plan_path, list(files.values()), accept_new=accept_new)
        plan_bytes = plan_path.read_bytes()
        journal = J.journal_path(plan_path)
        journal_bytes = journal.read_bytes() if journal.exists() else None
        # Every commit to the record (a return merged, even with nothing applied) has a revision of its own.
        assert load_plan(plan_path).revision == (2 if first.journal else 1)

        again = merge(plan_path, list(files.values()), accept_new=accept_new)
        assert again.applied == []
        assert [e for e in again.journal if e["event"] == "change"] == []
        assert all(not new_id for _, _, new_id in again.proposals)
        assert plan_path.read_bytes() == plan_bytes
        assert (journal.read_bytes() if journal.exists() else None) == journal_bytes


@PROPERTY
@given(data=st.data())
def test_nothing_a_return_said_is_lost(issued: Issued, data: st.DataObject) -> None:
    edits = data.draw(all_edits(issued))
    if data.draw(st.booleans()):  # often, a shared field edited by both leads
        field, v1, v2 = data.draw(two_values())
        edits["Chief Constable"][("LG-1", field)] = v1
        edits["Head of Protect"][("LG-1", field)] = v2
    with tempfile.TemporaryDirectory() as tmp:
        files = write_returns(issued, edits, Path(tmp))
        result = merge_returns(PLAN, list(files.values()), now=NOW)
    index = result.plan.action_index()
    for recipient, changes in edits.items():
        for (action_id, field), raw in changes.items():
            want = expected(field, raw)
            if want == base(action_id, field):
                continue  # left as issued: the return said nothing about this field
            kept = {field_value(index[action_id], field)}
            for i in result.items:
                if (i.action_id, i.field) == (action_id, field):
                    kept.add(i.new)
                    kept.update(c.value for c in i.candidates)
            for _, f in result.findings:
                if (f.action_id, f.field) == (action_id, field):
                    kept.add(f.value)
            assert want in kept, (recipient, action_id, field, raw, kept)
            if not valid(field, raw):  # refused: kept as a rejected item with the value as typed
                assert want in {
                    i.new
                    for i in result.items
                    if (i.action_id, i.field, i.outcome) == (action_id, field, "rejected")
                }


def test_plan_fixture_is_what_was_issued() -> None:
    """The properties compare against PLAN; it must be the plan the workbooks were issued from."""
    assert isinstance(PLAN, Plan)
    assert make_plan() == PLAN


@st.composite
def pasted_rows(draw: st.DrawFn, issued: Issued) -> tuple[str, str, Edits]:
    """A recipient, an action not issued to them, and the fields changed on its pasted copy of the row."""
    recipient = draw(st.sampled_from(issued.recipients))
    outside = [a.id for _, a in PLAN.iter_actions() if a.id not in issued.scope(recipient)]
    action_id = draw(st.sampled_from(outside))
    fields = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)))
    return recipient, action_id, {(action_id, f): draw(any_values(f)) for f in fields}


@PROPERTY
@given(data=st.data())
def test_a_row_pasted_outside_the_scope_is_kept_never_applied(issued: Issued, data: st.DataObject) -> None:
    recipient, action_id, edits = data.draw(pasted_rows(issued))
    with tempfile.TemporaryDirectory() as tmp:
        ed = ReturnEditor(issued.file(recipient))
        ed.paste_action(PLAN, action_id)
        for (_, field), raw in edits.items():
            if isinstance(raw, Formula):
                ed.formula(action_id, field, raw.text)
            else:
                ed.set(action_id, field, raw)
        path = ed.save(Path(tmp) / "pasted.xlsx")
        result = merge_returns(PLAN, [path], now=NOW)
    assert result.plan.model_copy(update={"revision": PLAN.revision}) == PLAN
    assert result.needs_person
    kept = {(i.field, i.new) for i in result.items if i.action_id == action_id and i.outcome == "rejected"}
    said = {(f, expected(f, raw)) for (_, f), raw in edits.items() if expected(f, raw) != base(action_id, f)}
    assert kept == said
    assert all(i.outcome == "rejected" for i in result.items)
    assert [(f.kind, f.action_id) for _, f in result.findings if f.severity == "problem"] == [
        ("out-of-scope", action_id)
    ]
