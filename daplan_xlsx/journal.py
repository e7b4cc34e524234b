"""The audit journal: one JSON line per merged return and per applied change, beside the plan file.

`PLAN.journal.jsonl` (for `plan.yaml`, `plan.journal.jsonl`). Four kinds of line, each carrying the plan
revision it produced or saw:

    {"event": "return", "time", "revision", "return", "sha256", "issue_id", "recipient", "issued_at",
     "proposals_pending"}
    {"event": "change", "time", "revision", "return", "sha256", "issue_id", "recipient",
     "action_id", "field", "old", "new"}
    {"event": "add", "time", "revision", "return", "sha256", "issue_id", "recipient",
     "action_id", "area", "sheet", "row", "values"}
    {"event": "publish", "time", "revision", "file", "format"}

A `return` line says a return was merged. `proposals_pending` counts its proposed new rows that were left
unadded because the merge ran without `--accept-new` (absent in older journals: 0). Such a return is not
fully merged: merging it again applies none of its field values (they were decided the first time) but, with
`--accept-new`, adds its proposals and writes a new `return` line with `proposals_pending` 0.

An `add` line is a new local action added from a return's proposed row with `--accept-new`: who proposed it
(`recipient`, `issue_id`), from which file (`return`, `sha256`), the row it was on (`sheet`, `row`, 1-based),
the new `action_id` in area `area`, and `values`: its action text and editable fields (`action`,
`response`, `target`, `due`, `lead`, `status`, `notes`) as added, in the plan's text form.

A `publish` line is written by `daplan export`: the master workbook marks the cells changed since the last
one.

A merge appends its lines (flushed and fsynced) *before* it replaces the plan. If it is killed in between,
the journal holds lines whose revision is above the plan's; they describe a merge that never happened and
are dropped the next time the journal is read against the plan, so the two always agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PlanFileError


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


def read_journal(path: Path, plan_revision: int) -> list[dict[str, Any]]:
    """Every committed line (revision at most the plan's); lines of an interrupted merge are left out."""
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith("\n"):
                    break  # a last line cut short by a crash: never committed
                raise PlanFileError(
                    f"journal line {n} is not valid JSON",
                    file=path,
                    hint="restore the journal from backup or version control",
                ) from exc
            if int(entry.get("revision", 0)) <= plan_revision:
                out.append(entry)
    return out


def merged_returns(entries: Iterable[dict[str, Any]]) -> list[MergedReturn]:
    return [
        MergedReturn(
            e["time"],
            int(e["revision"]),
            e["return"],
            e["sha256"],
            e["issue_id"],
            e["recipient"],
            e.get("issued_at", ""),
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


def record_publication(plan_path: Path, revision: int, file: Path, fmt: str, time: str) -> None:
    """Note that the plan at this revision was published to a file."""
    path = journal_path(plan_path)
    compact(path, revision)
    entry = {"event": "publish", "time": time, "revision": revision, "file": str(file), "format": fmt}
    append(path, [entry])


def compact(path: Path, plan_revision: int) -> None:
    """Drop the lines of an interrupted merge, so new lines follow committed ones only."""
    if not path.exists():
        return
    raw = path.read_text(encoding="utf-8")
    kept = [
        json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in read_journal(path, plan_revision)
    ]
    text = "".join(kept)
    if text != raw:
        from .planfile import atomic_write_bytes

        atomic_write_bytes(path, text.encode("utf-8"))


def append(path: Path, entries: list[dict[str, Any]]) -> None:
    """Append lines and make them durable before the plan is replaced."""
    if not entries:
        return
    data = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def proposals_pending(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Return file SHA-256 -> how many of its proposed rows its latest `return` line left unadded."""
    out: dict[str, int] = {}
    for e in entries:
        if e.get("event") == "return":
            out[e["sha256"]] = int(e.get("proposals_pending", 0))
    return out
