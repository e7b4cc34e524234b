"""One workbook per recipient, and the manifest that says what was issued to whom."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import DaplanError, OutputExists
from .merge import file_sha256
from .model import Plan
from .planfile import atomic_write_bytes
from .writer import Clock, IssueInfo, utc_now, write_workbook

MANIFEST = "manifest.json"
By = Literal["lead", "area"]


def slug(name: str) -> str:
    """'Head of Protect & Safeguarding' -> 'head-of-protect-safeguarding' (ASCII, safe as a file name)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return out[:80] or "recipient"


@dataclass
class Recipient:
    name: str
    scope: list[str]


def recipients(plan: Plan, by: By) -> list[Recipient]:
    """Each lead (primary or supporting) with the actions they lead, or each area with its actions."""
    if by == "area":
        return [Recipient(a.name, [x.id for x in a.actions]) for a in plan.areas if a.actions]
    out = []
    for lead in plan.lead_names():
        scope = [a.id for _, a in plan.iter_actions() if lead in a.leads]
        if scope:
            out.append(Recipient(lead, scope))
    return out


def distribute(
    plan: Plan,
    outdir: Path,
    *,
    by: By = "lead",
    only: str | None = None,
    key: bytes | None = None,
    force: bool = False,
    clock: Clock = utc_now,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the workbooks and `manifest.json`; return the manifest."""
    chosen = recipients(plan, by)
    if only is not None:
        chosen = [r for r in chosen if r.name.casefold() == only.casefold() or slug(r.name) == slug(only)]
        if not chosen:
            names = ", ".join(r.name for r in recipients(plan, by)) or "none"
            raise DaplanError(f"no recipient named {only!r}", hint=f"choose one of: {names}")
    if not chosen:
        raise DaplanError(
            "no action has a lead, so there is nobody to send a workbook to", hint="assign leads in the plan"
        )
    if outdir.exists() and not outdir.is_dir():
        raise OutputExists("the output is a file, not a folder", file=outdir, hint="name a folder")
    if outdir.exists() and any(outdir.iterdir()) and not force:
        raise OutputExists(
            "the output folder is not empty", file=outdir, hint="choose an empty folder or pass --force"
        )
    outdir.mkdir(parents=True, exist_ok=True)
    slugs: dict[str, int] = {}
    entries = []
    issued_at = clock()
    for r in chosen:
        base = slug(r.name)
        slugs[base] = slugs.get(base, 0) + 1
        name = base if slugs[base] == 1 else f"{base}-{slugs[base]}"
        path = outdir / f"{name}.xlsx"
        info: IssueInfo = write_workbook(
            plan, path, scope=r.scope, recipient=r.name, key=key, clock=lambda: issued_at
        )
        entries.append(
            {
                "issue_id": info.issue_id,
                "recipient": r.name,
                "file": path.name,
                "sha256": file_sha256(path),
                "scope": info.scope,
                "plan_revision": plan.revision,
            }
        )
        if progress:
            progress(r.name)
    manifest = {
        "plan_id": plan.id,
        "plan_revision": plan.revision,
        "issued_at": issued_at.isoformat(),
        "by": by,
        "signed": key is not None,
        "workbooks": entries,
    }
    atomic_write_bytes(
        outdir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    )
    return manifest


def read_manifest(outdir: Path) -> dict[str, Any]:
    path = outdir / MANIFEST
    if not path.is_file():
        raise DaplanError(
            "no manifest.json in the outbox", file=outdir, hint="name the folder `daplan distribute` wrote"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DaplanError(
            "manifest.json is not valid JSON", file=path, hint="re-run `daplan distribute`"
        ) from exc
    return data
