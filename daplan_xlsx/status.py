"""Who has been sent a workbook, who has returned it, what is merged and what is outstanding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import journal as J
from .container import open_container
from .distribute import read_manifest
from .errors import DaplanError
from .model import Plan
from .reader import open_workbook, read_meta


def issue_id_of(path: Path) -> str | None:
    """The issue id in a workbook's metadata, or None when it has none we can read."""
    try:
        container = open_container(path)
        reading = read_meta(open_workbook(container), container, None)
    except DaplanError:
        return None
    return reading.meta.issue_id if reading.meta else None


def status_report(plan: Plan, plan_path: Path, outbox: Path, inbox: Path | None = None) -> dict[str, Any]:
    manifest = read_manifest(outbox)
    if manifest.get("plan_id") != plan.id:
        raise DaplanError(
            f"the outbox was issued for another plan ({manifest.get('plan_id')!r})",
            file=outbox,
            hint="name the outbox of this plan",
        )
    returned: dict[str, list[str]] = {}
    unmatched: list[str] = []
    if inbox is not None:
        if not inbox.is_dir():
            raise DaplanError(
                "the inbox is not a folder", file=inbox, hint="name the folder holding the returns"
            )
        for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith((".", "~$"))):
            issue = issue_id_of(path)
            if issue is None:
                unmatched.append(path.name)
            else:
                returned.setdefault(issue, []).append(path.name)
    merged = {
        m.issue_id: m for m in J.merged_returns(J.read_journal(J.journal_path(plan_path), plan.revision))
    }
    rows = []
    for wb in manifest["workbooks"]:
        issue = wb["issue_id"]
        files = returned.get(issue, [])
        m = merged.get(issue)
        rows.append(
            {
                "recipient": wb["recipient"],
                "file": wb["file"],
                "issue_id": issue,
                "actions": len(wb["scope"]),
                "issued_at": manifest.get("issued_at", ""),
                "returned": files,
                "merged_at": m.time if m else "",
                "outstanding": not files and m is None,
            }
        )
    known = {wb["issue_id"] for wb in manifest["workbooks"]}
    foreign = sorted(name for issue, names in returned.items() if issue not in known for name in names)
    return {
        "plan_id": plan.id,
        "plan_revision": plan.revision,
        "recipients": rows,
        "totals": {
            "issued": len(rows),
            "returned": sum(1 for r in rows if r["returned"]),
            "merged": sum(1 for r in rows if r["merged_at"]),
            "outstanding": sum(1 for r in rows if r["outstanding"]),
        },
        "unmatched_files": unmatched + foreign,
    }
