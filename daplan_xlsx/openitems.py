"""Open items: the values a merge could not apply, kept on record until the owner settles them.

An open item is a conflict (returns disagree, or the plan changed since the workbook was issued) or a refused
value (an unknown lead, a formula, an edit outside the scope ...) of one field of one action. It is journalled
as an `open` line by the commit that found it and stays open until a `settle` line names it (see journal.py).
Everything here is computed from the journal's live lines, so open items survive restarts, and a conflicts
workbook made a week later holds the same items as one made at merge time.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Refused values that a change of the register or vocabulary can make valid (`daplan recheck`).
RECHECKABLE = ("unknown-lead", "unknown-status", "unknown-due", "bad-date")


@dataclass
class OpenItem:
    item: str
    kind: str  # "conflict" or "rejected"
    action_id: str
    field: str
    base: str
    current: str
    reason: str
    candidates: list[dict[str, Any]]
    revision: int
    time: str
    finding: str = ""  # for a refused value: the reader's kind of finding (unknown-lead, formula, ...)
    settled: dict[str, Any] | None = None

    def line(self) -> dict[str, Any]:
        return {
            "event": "open",
            "time": self.time,
            "revision": self.revision,
            "item": self.item,
            "kind": self.kind,
            "action_id": self.action_id,
            "field": self.field,
            "base": self.base,
            "current": self.current,
            "reason": self.reason,
            "candidates": self.candidates,
            "finding": self.finding,
        }


def items_of(entries: Iterable[dict[str, Any]]) -> list[OpenItem]:
    """Every item ever opened (live lines), with how it was settled if it was."""
    items: dict[str, OpenItem] = {}
    for e in entries:
        if e["event"] == "open":
            items[e["item"]] = OpenItem(
                e["item"],
                e["kind"],
                e["action_id"],
                e["field"],
                e["base"],
                e["current"],
                e["reason"],
                list(e["candidates"]),
                e["revision"],
                e["time"],
                str(e.get("finding") or ""),
            )
        elif e["event"] == "settle" and e["item"] in items:
            items[e["item"]].settled = e
    return list(items.values())


def open_items(entries: Iterable[dict[str, Any]]) -> list[OpenItem]:
    """The items still open, oldest first."""
    return [i for i in items_of(entries) if i.settled is None]


def open_by_action(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in open_items(entries):
        out[item.action_id] = out.get(item.action_id, 0) + 1
    return out


def next_item_ids(revision: int) -> Iterator[str]:
    """Item ids for the open lines of one commit: `7.1`, `7.2`, ... (revision, then a count)."""
    n = 0
    while True:
        n += 1
        yield f"{revision}.{n}"


def settle_line(
    item: OpenItem,
    *,
    revision: int,
    time: str,
    how: str,
    value: str,
    reason: str,
    by: str,
    candidate: str = "",
) -> dict[str, Any]:
    return {
        "event": "settle",
        "time": time,
        "revision": revision,
        "item": item.item,
        "how": how,
        "value": value,
        "candidate": candidate,
        "reason": reason,
        "by": by,
    }


def who() -> str:
    """The person settling: $DAPLAN_USER, else the account's name."""
    name = os.environ.get("DAPLAN_USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no account name to be had (a service, a container): still settle
        return "unknown"


def candidate_label(c: dict[str, Any]) -> str:
    return f"{Path(str(c['source'])).name} ({c.get('recipient') or 'unknown recipient'})"
