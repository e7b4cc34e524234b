"""What the record tests check after every race or crash: the plan parses and agrees with its journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daplan_xlsx import journal as J
from daplan_xlsx import layout as L
from daplan_xlsx.meta import field_value
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan


def fields_of(plan: Plan) -> dict[tuple[str, str], str]:
    return {(a.id, k): field_value(a, k) for _, a in plan.iter_actions() for k in L.EDITABLE_FIELDS}


def check_agrees(
    plan_path: Path, initial: Plan, where: str, *, all_committed: bool = False
) -> tuple[Plan, list[dict[str, Any]]]:
    """The plan parses and agrees with its journal: every field is the newest live `change` line's `new` for
    it (or the initial plan's value when none), and every commit since the initial plan has its lines. With
    `all_committed`, every line of the file is committed too (after a crash, lines of the commit that did not
    finish may be left, to be dropped by the next one). The plan and its live journal lines."""
    plan = load_plan(plan_path)
    jpath = J.journal_path(plan_path)
    entries = J.read_journal(jpath, plan.revision)
    everything = J.read_journal(jpath, plan.revision, include_undone=True)
    if all_committed:
        text = jpath.read_text(encoding="utf-8") if jpath.exists() else ""
        raw = [json.loads(line) for line in text.split("\n") if line]
        assert len(raw) == len(everything), (
            f"{where}: lines in the journal not committed: {raw[len(everything) :]}"
        )
    # `publish` and `issue` lines saw a revision; every other line is of the commit that made it.
    commits = {e["revision"] for e in everything if e["event"] not in ("publish", "issue")}
    assert commits == set(range(initial.revision + 1, plan.revision + 1)), (
        f"{where}: plan at revision {plan.revision}, journal has commits {sorted(commits)}"
    )
    expected = fields_of(initial)
    for e in entries:
        if e["event"] == "change":
            expected[(e["action_id"], e["field"])] = e["new"]
    got = fields_of(plan)
    assert got == expected, f"{where}: plan and journal disagree: " + str(
        {k: (v, expected.get(k)) for k, v in got.items() if expected.get(k) != v}
    )
    return plan, entries
