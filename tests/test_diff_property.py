"""Property: whatever the plan and whatever edits a recipient makes to editable fields, the diff is exactly
those edits (after normalisation), through a real file written by openpyxl."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import openpyxl
from conftest import fixed_clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daplan_xlsx import layout as L
from daplan_xlsx import normalise as N
from daplan_xlsx.diff import diff_return
from daplan_xlsx.model import Action, Area, Lead, Plan, check_text, default_statuses
from daplan_xlsx.writer import write_workbook

_FORBIDDEN = "".join(chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF])
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=_FORBIDDEN), max_size=60
).filter(lambda s: check_text(s) == s)
# What a recipient types: no control character at all (DEL and the C1 controls, which a plan may hold, are
# refused in a return as findings: see test_hostile_returns).
_CONTROLS = "".join(chr(c) for c in range(0x7F, 0xA0))
TYPED = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=_FORBIDDEN + _CONTROLS), max_size=60
).filter(lambda s: check_text(s) == s)
LEADS = ["Chief Constable", "Head of Protect", "Area Commanders", "Head of Solve"]
STATUSES = [s.name for s in default_statuses()]


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    areas = []
    for a in range(draw(st.integers(1, 2))):
        actions = []
        for i in range(draw(st.integers(1, 4))):
            actions.append(
                Action(
                    id=f"A{a}-{i}",
                    ref=str(i + 1),
                    kind=draw(st.sampled_from(["national", "local"])),
                    action=draw(TEXT),
                    response=draw(TEXT),
                    target=draw(TEXT),
                    due=draw(st.none() | st.dates(dt.date(2014, 1, 1), dt.date(2030, 12, 31))),
                    leads=draw(st.lists(st.sampled_from(LEADS), min_size=1, max_size=2, unique=True)),
                    status=draw(st.sampled_from(STATUSES)),
                    notes=draw(TEXT),
                )
            )
        areas.append(Area(id=f"A{a}", name=f"Area {a}", sheet=f"Area {a}", actions=actions))
    return Plan(id="plan-prop", title="Property plan", leads=[Lead(name=n) for n in LEADS], areas=areas)


def edit_values(field: str) -> st.SearchStrategy[object]:
    if field == "due":
        return st.none() | st.dates(dt.date(2014, 1, 1), dt.date(2030, 12, 31))
    if field == "status":
        return st.sampled_from(STATUSES).flatmap(lambda s: st.sampled_from([s, s.upper(), f" {s.lower()} "]))
    if field == "lead":
        return st.sampled_from(LEADS)
    return TYPED


@st.composite
def plan_and_edits(draw: st.DrawFn) -> tuple[Plan, dict[tuple[str, str], object]]:
    plan = draw(plans())
    ids = [a.id for _, a in plan.iter_actions()]
    keys = draw(
        st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(L.EDITABLE_FIELDS)), unique=True, max_size=8)
    )
    return plan, {k: draw(edit_values(k[1])) for k in keys}


def expected_value(field: str, value: object) -> str:
    if field == "due":
        return N.date(value)
    if field in ("status", "lead"):
        return " ".join(str(value).split()).casefold()
    return N.text(value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_and_edits())
def test_diff_is_exactly_the_edits(case: tuple[Plan, dict[tuple[str, str], object]]) -> None:
    plan, edits = case
    with tempfile.TemporaryDirectory() as tmp:
        issued = Path(tmp) / "issued.xlsx"
        write_workbook(plan, issued, clock=fixed_clock)
        wb = openpyxl.load_workbook(issued)
        index = plan.action_index()
        area_of = {a.id: area.sheet for area, a in plan.iter_actions()}
        for (action_id, field), value in edits.items():
            ws = wb[area_of[action_id]]
            row = next(
                r for r in range(L.FIRST_DATA_ROW + 1, ws.max_row + 1) if ws.cell(r, 1).value == action_id
            )
            cell = ws.cell(row, L.column_index(field) + 1)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # typed text, never a formula
        returned = Path(tmp) / "returned.xlsx"
        wb.save(returned)
        result = diff_return(returned, plan)

    from daplan_xlsx.meta import field_value

    expected = {}
    for (action_id, field), value in edits.items():
        new = expected_value(field, value)
        old = expected_value(field, field_value(index[action_id], field))
        if new != old:
            expected[(action_id, field)] = new
    got = {(c.action_id, c.field): c.new for c in result.changes}
    got_cmp = {k: (v.casefold() if k[1] in ("status", "lead") else v) for k, v in got.items()}
    assert got_cmp == expected
    assert [f for f in result.findings if f.severity == "problem"] == []
