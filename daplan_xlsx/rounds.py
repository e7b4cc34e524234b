"""Reporting rounds: the workbooks issued together, before a governance board, with a date to return them by.

`daplan distribute --round "2027 Q1" --return-by 2027-03-20` journals a `round` line naming the issue ids
it wrote. A round is known by its name: re-issuing one lead into the same round (`--only NAME --force`)
adds a line of the same name, so the round's issues are those of all its lines and its return-by date the
newest line's. A return counts against the round of the workbook it answers, found by its issue id, so a
late return of last quarter's workbook is last quarter's, whatever day it comes back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DaplanError
from .model import Plan

ROUND_NAME_MAX = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class RoundError(DaplanError):
    """A round named on the command line is unusable or unknown."""

    hint = "check the round's name and date"


@dataclass
class Round:
    name: str
    return_by: dt.date
    issued_at: str  # the time of its first line
    revision: int  # the plan's revision when it was first issued
    issues: list[str] = field(default_factory=list)


def check_round_name(name: str) -> str:
    """The name as it is kept: refused when empty, too long or holding a control character (a line break
    would let it reach an email header or a report as two lines)."""
    text = name.strip()
    if not text or len(text) > ROUND_NAME_MAX or _CONTROL.search(text):
        raise RoundError(
            f"{name[:40]!r} cannot name a round",
            hint=f'give a short name of at most {ROUND_NAME_MAX} characters on one line, such as "2027 Q1"',
        )
    return text


def parse_return_by(text: str) -> dt.date:
    """An ISO date (2027-03-20), or a UK one (20/03/2027, 20 March 2027); anything else is refused."""
    from .normalise import DateProblem, date

    value = text.strip()
    try:
        if not value or value.replace(".", "").isdigit():  # a bare number is no date here
            raise DateProblem(value)
        return dt.date.fromisoformat(date(value))
    except DateProblem as exc:
        raise RoundError(
            f"{text[:40]!r} is not a date", hint="give the return-by date as YYYY-MM-DD, e.g. 2027-03-20"
        ) from exc


def rounds_of(entries: Iterable[dict[str, Any]]) -> list[Round]:
    """Every round of the record, in the order first issued."""
    found: dict[str, Round] = {}
    for e in entries:
        if e.get("event") != "round":
            continue
        try:
            due = dt.date.fromisoformat(e["return_by"])
        except ValueError:
            continue  # a hand-edited line: the round is shown without it rather than stopping every command
        r = found.get(e["name"])
        if r is None:
            r = found[e["name"]] = Round(e["name"], due, e["time"], int(e["revision"]))
        r.return_by = due
        r.issues.extend(str(i) for i in e["issues"] if str(i) not in r.issues)
    return list(found.values())


def round_of_issue(entries: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Issue id -> the name of the round it was issued in (issues outside any round are absent)."""
    return {issue: r.name for r in rounds_of(entries) for issue in r.issues}


def find_round(entries: Iterable[dict[str, Any]], name: str) -> Round:
    rounds = rounds_of(entries)
    for r in rounds:
        if r.name.casefold() == name.strip().casefold():
            return r
    known = ", ".join(repr(r.name) for r in rounds) or "none yet"
    raise RoundError(
        f"the plan has no round named {name[:40]!r}",
        hint=f"name one of its rounds ({known}), as given to `daplan distribute --round`",
    )


def latest_round(entries: Iterable[dict[str, Any]]) -> Round | None:
    rounds = rounds_of(entries)
    return rounds[-1] if rounds else None


def round_line(
    name: str, return_by: dt.date, issues: list[str], *, time: str, revision: int, outbox: str
) -> dict[str, Any]:
    return {
        "event": "round",
        "time": time,
        "revision": revision,
        "name": name,
        "return_by": return_by.isoformat(),
        "issues": issues,
        "outbox": outbox,
    }


def days_left(return_by: dt.date, today: dt.date) -> int:
    """Days until the return-by date: 0 on the day, negative when late."""
    return (return_by - today).days


def due_text(days: int) -> str:
    """`due in 5 days`, `due today`, `3 days late`, for the status report and the reminders."""
    if days == 0:
        return "due today"
    if days > 0:
        return f"due in {days} day{'s' if days != 1 else ''}"
    return f"{-days} day{'s' if days != -1 else ''} late"


def long_date(day: dt.date) -> str:
    """`20 March 2027`: how a date reads in an email and on a workbook's cover."""
    return f"{day.day} {day.strftime('%B %Y')}"


def state_at(
    plan: Plan, entries: Sequence[dict[str, Any]], revision: int
) -> dict[str, tuple[str, dt.date | None]]:
    """Each action's (status, due) as the plan stood at `revision`: the later changes taken back (actions
    added since left out, actions withdrawn since put back)."""
    state: dict[str, tuple[str, dt.date | None]] = {a.id: (a.status, a.due) for _, a in plan.iter_actions()}
    for e in reversed(entries):
        if int(e.get("revision", 0)) <= revision:
            continue
        action_id = str(e.get("action_id", ""))
        if e.get("event") == "add":
            state.pop(action_id, None)
        elif e.get("event") == "withdraw":
            state[action_id] = _withdrawn_state(e)
        elif e.get("event") == "change" and action_id in state:
            status, due = state[action_id]
            old = str(e.get("old") or "")
            if e.get("field") == "status":
                state[action_id] = (old, due)
            elif e.get("field") == "due":
                state[action_id] = (status, _iso_date(old))
    return state


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _withdrawn_state(entry: dict[str, Any]) -> tuple[str, dt.date | None]:
    """The status and due date a withdrawn action had, from its `withdraw` line (the action as data)."""
    action = entry["action"]
    return (str(action.get("status") or ""), _iso_date(str(action.get("due") or "")))


def status_counts_by_round(plan: Plan, entries: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, int]]]:
    """(round name, actions per status) as the plan stood when each round was issued, then ("Now", ...)."""
    out = []
    for r in rounds_of(entries):
        state = state_at(plan, entries, r.revision)
        out.append((r.name, _counts(plan, state)))
    if out:
        out.append(("Now", _counts(plan, state_at(plan, entries, plan.revision))))
    return out


def _counts(plan: Plan, state: dict[str, tuple[str, dt.date | None]]) -> dict[str, int]:
    counts = {s.name: 0 for s in plan.statuses}
    for status, _ in state.values():
        if status in counts:
            counts[status] += 1
    return counts
