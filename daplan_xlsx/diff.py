"""What a return changes against the base it was issued from (change detection only; rendering is apart)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import layout as L
from .model import Plan
from .reader import Finding, ReturnReading, read_return

DIFF_FORMAT = 1


@dataclass
class Change:
    action_id: str
    field: str
    old: str
    new: str
    sheet: str
    cell: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class DiffResult:
    reading: ReturnReading
    changes: list[Change]

    @property
    def findings(self) -> list[Finding]:
        return self.reading.findings

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    def as_json(self) -> dict[str, object]:
        """The stable, documented JSON form (see README, "daplan diff --json")."""
        meta = self.reading.meta
        return {
            "format": DIFF_FORMAT,
            "file": str(self.reading.path),
            "sha256": self.reading.sha256,
            "comparison": "two-way" if self.reading.two_way else "three-way",
            "metadata": meta.verdict,
            "issue_id": self.reading.issue_id,
            "recipient": self.reading.recipient,
            "items": [c.as_dict() for c in self.changes],
            "proposals": [asdict(p) for p in self.reading.proposals],
            "findings": [f.as_dict() for f in self.findings],
        }


def changes_of(reading: ReturnReading) -> list[Change]:
    """Every editable field whose returned value differs from its base, in scope order then field order."""
    out = []
    for action_id in reading.scope:
        row = reading.rows.get(action_id)
        if row is None or row.untouched:
            continue
        base = reading.base[action_id]
        changed = row.changed(base)
        for key in L.EDITABLE_FIELDS:
            if key in changed:
                out.append(Change(action_id, key, base.get(key, ""), changed[key], row.sheet, row.cell(key)))
    return out


def diff_return(
    path: str | Path,
    plan: Plan,
    key: bytes | None = None,
    *,
    register: Mapping[str, dict[str, Any]] | None = None,
) -> DiffResult:
    """What the return changes; `register` (trust.register_of) is the plan's record of issued workbooks."""
    reading = read_return(path, plan, key, register=register)
    return DiffResult(reading, changes_of(reading))
