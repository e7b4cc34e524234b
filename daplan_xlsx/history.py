"""The life of each field, from the journal: like a spreadsheet's cell history, newest first.

Every applied change is a `change` line (who, from which return or settlement, old and new). A change made
by a return belongs to the reporting round of the workbook it answered (its issue id, see rounds.py); a
settlement belongs to the round of the return whose value it took, when it took one. Changes undone by
`daplan undo` no longer count and are not shown; hand edits to the plan file are not in the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .console import printable, shorten, when
from .errors import DaplanError


@dataclass(frozen=True)
class Event:
    time: str
    revision: int
    action_id: str
    field: str
    old: str
    new: str
    who: str
    source: str  # the return's file name, or "settlement"
    round: str


def history(
    entries: Sequence[dict[str, Any]],
    action_id: str | None = None,
    field: str | None = None,
    known_actions: set[str] | None = None,
) -> list[Event]:
    """The changes of the journal (live lines), newest first, for one action and/or one field."""
    from .rounds import round_of_issue

    if (
        action_id is not None
        and known_actions is not None
        and action_id not in known_actions
        and not any(e.get("action_id") == action_id for e in entries)
    ):
        raise DaplanError(
            f"the plan has no action {action_id!r} and the journal none either",
            hint="give an action's ID as the workbooks show it, e.g. LG-1",
        )
    in_round = round_of_issue(entries)
    settled_round = _settlement_rounds(entries, in_round)
    out = []
    for e in entries:
        if e["event"] != "change":
            continue
        if action_id is not None and e["action_id"] != action_id:
            continue
        if field is not None and e["field"] != field:
            continue
        source = str(e.get("return") or "")
        issue = str(e.get("issue_id") or "")
        is_return = bool(issue)
        out.append(
            Event(
                time=e["time"],
                revision=int(e["revision"]),
                action_id=e["action_id"],
                field=e["field"],
                old=e["old"],
                new=e["new"],
                who=str(e.get("recipient") or ""),
                source=Path(source).name if is_return else (source or "settlement"),
                round=in_round.get(issue, "")
                if is_return
                else settled_round.get((int(e["revision"]), e["action_id"], e["field"]), ""),
            )
        )
    out.sort(key=lambda x: (x.time, x.revision), reverse=True)
    return out


def _settlement_rounds(
    entries: Sequence[dict[str, Any]], in_round: dict[str, str]
) -> dict[tuple[int, str, str], str]:
    """(revision, action, field) of a settlement -> the round of the candidate it took, when one."""
    opened = {e["item"]: e for e in entries if e["event"] == "open"}
    out: dict[tuple[int, str, str], str] = {}
    for e in entries:
        if e["event"] != "settle" or not e.get("candidate"):
            continue
        item = opened.get(e["item"])
        if item is None:
            continue
        for c in item["candidates"]:
            if c.get("source") == e["candidate"] and c.get("issue_id") in in_round:
                out[(int(e["revision"]), item["action_id"], item["field"])] = in_round[c["issue_id"]]
    return out


def as_json(events: list[Event]) -> list[dict[str, Any]]:
    return [asdict(e) for e in events]


def render(events: list[Event]) -> str:
    if not events:
        return "No changes on record."
    lines = []
    current: tuple[str, str] | None = None
    for e in sorted(events, key=lambda x: (x.action_id, x.field)):
        if (e.action_id, e.field) != current:
            current = (e.action_id, e.field)
            lines.append(f"\n{printable(e.action_id)} {printable(e.field)}")
        rnd = f"[{printable(e.round)}] " if e.round else ""
        who = printable(e.who) or "?"
        lines.append(
            f"  {when(e.time):<18} r{e.revision:<4} {rnd}{shorten(who, 30)}, {shorten(printable(e.source), 40)}"
        )
        lines.append(
            f"      {shorten(printable(e.old) or '(empty)', 60)} → {shorten(printable(e.new) or '(empty)', 60)}"
        )
    return "\n".join(lines).lstrip("\n")
