"""The journal: one JSON line per event of the plan's record, beside the plan file.

`PLAN.journal.jsonl` (for `plan.yaml`, `plan.journal.jsonl`). Every line carries `event`, `time` and the plan
`revision` it produced or saw:

    {"event": "return", "return", "sha256", "issue_id", "recipient", "issued_at", "proposals_pending"}
    {"event": "change", "return", "sha256", "issue_id", "recipient", "action_id", "field", "old", "new",
     "stamp"}
    {"event": "add", "return", "sha256", "issue_id", "recipient", "action_id", "area", "sheet", "row",
     "values"}
    {"event": "open", "item", "kind", "action_id", "field", "base", "current", "reason", "candidates"}
    {"event": "settle", "item", "how", "value", "candidate", "reason", "by"}
    {"event": "undo", "undone", "by"}
    {"event": "publish", "file", "format"}
    {"event": "issue", "issue_id", "recipient", "scope", "kind", "signed", "checksum", "file", "round"}
    {"event": "round", "name", "return_by", "issues", "outbox"}
    {"event": "mail", "to", "subject", "issue_id", "via", "recipient", "round", "purpose"}
    {"event": "collect", "file", "sender", "date", "subject", "issue_id", "flagged", "reason", "source",
     "sha256", "recipient"}
    {"event": "plan", "return", "sha256", "issue_id", "recipient", "field", "old", "new"}
    {"event": "withdraw", "return", "sha256", "issue_id", "recipient", "action_id", "area", "position",
     "action"}

- `return`: a return was merged. `proposals_pending` counts its proposed new rows left unadded because the
  merge ran without `--accept-new`; merged again with `--accept-new`, they are added and a new `return` line
  says 0.
- `change`: a field's value was changed, by a return (`return` is its file) or by a settlement (`return`
  names the settlement). `stamp` is the action's `updated`/`updated_by` before the change, so `undo` can
  restore them.
- `add`: a new local action from a return's proposed row (`--accept-new`): who proposed it, from which file
  and row, the new `action_id` in `area`, and its `values` as added.
- `open`: an *open item*, a value a merge could not apply: a conflict (`kind` "conflict": several returns
  disagree, or the plan changed since the workbook was issued) or a refused value (`kind` "rejected": an
  unknown lead, a formula, an edit outside the scope ...). `candidates` lists every value with its `source`
  file, its `sha256`, `recipient` and `issue_id`. It stays open until a `settle` line names its `item`.
- `settle`: how an open item was settled (`how`: "take", "value", "keep", "workbook", "recheck",
  "reopened-as"), by whom, with which value and why.
- `undo`: the commit at revision `undone` was reverted; its lines no longer count (see `live`).
- `publish`: `daplan export` published the plan at this revision; the master marks what changed since.
- `issue`: a workbook was issued (`distribute`, the conflicts workbook): its issue id, recipient, scope,
  kind, whether it was signed and the checksum of its metadata. Returns are checked against it (trust.py).
  `round` names the reporting round it was issued in, when there is one.
- `round`: `distribute --round NAME --return-by DATE` issued the workbooks `issues` (their issue ids) in a
  reporting round due back by `return_by` (ISO date). A re-issue into the same round adds a line of the same
  `name`: the round's issues are those of all its lines, its return-by date the newest line's (rounds.py).
- `mail`: an email was sent (`via` "smtp:HOST:PORT"; drafts written to a folder are not journalled): to
  whom, its subject, the issue id of the workbook attached, the recipient, the round and its `purpose`
  ("request" or "reminder"). Never a password or a message body.
- `collect`: `daplan collect` saved a workbook attachment from a saved email into the inbox as `file`:
  the email's sender, date and subject, the `source` message file, the attachment's `sha256`, the issue id
  in its metadata ("" when it has none) and the recipient it was issued to. `flagged` is true when the
  sender is not an address of that recipient (or the workbook is not one this plan issued); `reason` says
  why. A finding, not a refusal: the return is still merged, or refused, on its own merits.
- `plan`: the owner's workbook (`daplan apply`) changed a part of the plan outside its actions: `field` is
  `title`, `force`, `classification`, `background`, `overarching_capabilities`, `statuses`, `leads`,
  `glossary` or `areas.ID` (an area's name, key criteria and supporting areas); `old` and `new` are that
  part as canonical JSON, so `undo` can put it back.
- `withdraw`: the owner withdrew an action: it left the plan; the line keeps the whole `action` (canonical
  JSON of the model), its `area` and `position`, so `undo` can bring it back. Its id is never given again.

Every commit appends its lines (flushed and fsynced) *before* it replaces the plan, under the plan's lock. If
it is killed in between, the journal holds lines whose revision is above the plan's: they describe a commit
that never happened, are never read, and are dropped by the next commit, so plan and journal always agree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PlanFileError

_SURROGATE = re.compile("[\ud800-\udfff]")
# The events a commit produces; an `undo` makes them no longer count. `publish` only saw a revision.
COMMIT_EVENTS = ("return", "change", "add", "open", "settle", "plan", "withdraw")

_STR, _INT, _LIST, _DICT, _BOOL = str, int, list, dict, bool
# What each event must carry, and of what type (beyond `event`, `time` and `revision`).
_REQUIRED: dict[str, dict[str, type]] = {
    "return": {"return": _STR, "sha256": _STR, "issue_id": _STR, "recipient": _STR},
    "change": {"action_id": _STR, "field": _STR, "old": _STR, "new": _STR},
    "add": {"action_id": _STR, "area": _STR, "values": _DICT},
    "publish": {"file": _STR, "format": _STR},
    "open": {
        "item": _STR,
        "kind": _STR,
        "action_id": _STR,
        "field": _STR,
        "base": _STR,
        "current": _STR,
        "reason": _STR,
        "candidates": _LIST,
    },
    "settle": {"item": _STR, "how": _STR, "value": _STR, "reason": _STR, "by": _STR},
    "undo": {"undone": _INT, "by": _STR},
    "plan": {"field": _STR, "old": _STR, "new": _STR},
    "withdraw": {"action_id": _STR, "area": _STR, "position": _INT, "action": _DICT},
    "issue": {
        "issue_id": _STR,
        "recipient": _STR,
        "scope": _LIST,
        "kind": _STR,
        "signed": _BOOL,
        "checksum": _STR,
        "file": _STR,
    },
    "round": {"name": _STR, "return_by": _STR, "issues": _LIST},
    "mail": {"to": _LIST, "subject": _STR, "issue_id": _STR, "via": _STR},
    "collect": {
        "file": _STR,
        "sender": _STR,
        "date": _STR,
        "subject": _STR,
        "issue_id": _STR,
        "flagged": _BOOL,
    },
}
_OPTIONAL: dict[str, dict[str, type]] = {
    "return": {"issued_at": _STR, "proposals_pending": _INT},
    "change": {"return": _STR, "sha256": _STR, "issue_id": _STR, "recipient": _STR, "stamp": _DICT},
    "add": {"return": _STR, "sha256": _STR, "issue_id": _STR, "recipient": _STR, "sheet": _STR, "row": _INT},
    "settle": {"candidate": _STR},
    "open": {"finding": _STR},
    "undo": {"removed": _LIST},
    "plan": {"return": _STR, "sha256": _STR, "issue_id": _STR, "recipient": _STR},
    "withdraw": {"return": _STR, "sha256": _STR, "issue_id": _STR, "recipient": _STR, "reason": _STR},
    "issue": {"round": _STR},
    "round": {"outbox": _STR},
    "mail": {"recipient": _STR, "round": _STR, "purpose": _STR},
    "collect": {"reason": _STR, "source": _STR, "sha256": _STR, "recipient": _STR},
}
_CANDIDATE: dict[str, type] = {"source": _STR, "value": _STR, "recipient": _STR}


def journal_path(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.stem + ".journal.jsonl")


@dataclass(frozen=True)
class MergedReturn:
    time: str
    revision: int
    file: str
    sha256: str
    issue_id: str
    recipient: str
    issued_at: str


def _type_name(t: type) -> str:
    return {str: "text", int: "a whole number", list: "a list", dict: "a mapping", bool: "true or false"}[t]


def _is(value: Any, t: type) -> bool:
    # bool is an int to Python, never to the journal.
    return isinstance(value, t) and not (t is int and isinstance(value, bool))


def line_problem(entry: Any) -> str | None:
    """What is wrong with the shape of one journal line, or None."""
    if not isinstance(entry, dict):
        return "it is not a JSON object"
    event = entry.get("event")
    if event not in _REQUIRED:
        return f"unknown event {event!r}"
    for key, t in {"time": _STR, "revision": _INT, **_REQUIRED[event]}.items():
        if key not in entry:
            return f"a {event!r} line needs {key!r}"
        if not _is(entry[key], t):
            return f"{key!r} must be {_type_name(t)}"
    for key, t in _OPTIONAL.get(event, {}).items():
        if key in entry and entry[key] is not None and not _is(entry[key], t):
            return f"{key!r} must be {_type_name(t)}"
    if event == "open":
        for cand in entry["candidates"]:
            if not isinstance(cand, dict) or not all(_is(cand.get(k), t) for k, t in _CANDIDATE.items()):
                return "a candidate of an 'open' line needs source, value and recipient as text"
    return None


def read_journal(path: Path, plan_revision: int, *, include_undone: bool = False) -> list[dict[str, Any]]:
    """The committed lines (revision at most the plan's), each checked for shape.

    Lines of an interrupted commit (revision above the plan's) are left out, and so, unless `include_undone`,
    are the lines of a commit that was undone (see `live`).
    """
    if not path.exists():
        return []
    if not path.is_file():  # a folder, a pipe or a device would hang or fail every command
        raise damaged(path, 0, "it is not an ordinary file")
    out = []
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                # A last line cut short by a crash was never committed; anything else must read whole.
                try:
                    json.loads(line)
                except (ValueError, RecursionError):
                    break
            try:
                entry = json.loads(line)
                # Every text must be one the journal can write back: no byte that is not UTF-8 (read as a
                # surrogate), no lone surrogate from a `\ud800` escape. Checked only where one could be.
                if "\\u" in line or _SURROGATE.search(line):
                    json.dumps(entry, ensure_ascii=False).encode("utf-8")
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, digit limits, nesting
                raise damaged(path, n, "it is not valid JSON") from exc
            problem = line_problem(entry)
            if problem is not None:
                raise damaged(path, n, problem)
            if entry["revision"] <= plan_revision:
                out.append(entry)
    return out if include_undone else live(out)


def damaged(path: Path, line: int, problem: str) -> PlanFileError:
    where = f" at line {line}" if line else ""
    return PlanFileError(
        f"the plan's journal is damaged{where}: {problem}",
        file=path,
        hint="restore the journal from a backup or version control (or delete that one line if you know it "
        "was added by hand), then run the command again",
    )


def undone_revisions(entries: Iterable[dict[str, Any]]) -> set[int]:
    return {e["undone"] for e in entries if e["event"] == "undo"}


def retired_ids(entries: Iterable[dict[str, Any]]) -> set[str]:
    """Ids of actions that were added and then undone, or withdrawn: never given to another action."""
    out: set[str] = set()
    for e in entries:
        if e["event"] == "undo":
            out.update(str(x) for x in e.get("removed") or [])
        elif e["event"] == "withdraw":
            out.add(str(e["action_id"]))
    return out


def live(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines that still count: a commit's lines are dropped once an `undo` reverted it."""
    undone = undone_revisions(entries)
    if not undone:
        return entries
    return [e for e in entries if not (e["event"] in COMMIT_EVENTS and e["revision"] in undone)]


def merged_returns(entries: Iterable[dict[str, Any]]) -> list[MergedReturn]:
    return [
        MergedReturn(
            e["time"],
            int(e["revision"]),
            e["return"],
            e["sha256"],
            e["issue_id"],
            e["recipient"],
            e.get("issued_at") or "",
        )
        for e in entries
        if e.get("event") == "return"
    ]


def last_publication(entries: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest `publish` line, or None when the plan has never been exported."""
    found = None
    for e in entries:
        if e.get("event") == "publish":
            found = e
    return found


def encode(entries: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries).encode("utf-8")


def compact(path: Path, plan_revision: int) -> None:
    """Drop the lines of an interrupted commit (and a torn last line), so new lines follow committed ones.

    Only a writer holding the plan's lock calls this: the revision it names is the one on disk.
    """
    if not path.exists():
        return
    raw = path.read_bytes()
    data = encode(read_journal(path, plan_revision, include_undone=True))
    if data != raw:
        from .planfile import atomic_write_bytes

        atomic_write_bytes(path, data)


def append(path: Path, entries: list[dict[str, Any]]) -> None:
    """Append lines and make them durable before the plan is replaced."""
    if not entries:
        return
    for e in entries:
        problem = line_problem(e)
        if problem is not None:  # a bug, never a user's input: refuse to write a line we could not read
            raise ValueError(f"journal line not written: {problem}: {e!r}")
    with path.open("ab") as fh:
        fh.write(encode(entries))
        fh.flush()
        os.fsync(fh.fileno())


def proposals_pending(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Return file SHA-256 -> how many of its proposed rows its latest `return` line left unadded."""
    out: dict[str, int] = {}
    for e in entries:
        if e.get("event") == "return":
            out[e["sha256"]] = int(e.get("proposals_pending") or 0)
    return out
