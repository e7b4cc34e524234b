"""One workbook per recipient, and the manifest that says what was issued to whom."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import collector
from .errors import DaplanError, OutputExists
from .merge import file_sha256
from .model import Plan
from .planfile import atomic_write_bytes
from .record import append_lines, is_bare_name
from .rounds import round_line
from .trust import issue_line
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
    # One pass over the actions (an action names each of its leads once, all in the register).
    scopes: dict[str, list[str]] = {lead: [] for lead in plan.lead_names()}
    for area in plan.areas:
        for action in area.actions:
            for lead in action.leads:
                if lead in scopes:
                    scopes[lead].append(action.id)
    return [Recipient(lead, scope) for lead, scope in scopes.items() if scope]


def is_named(recipient: str, only: str) -> bool:
    """Whether `--only NAME` names this recipient (its name in any case, or its file name's slug)."""
    return recipient.casefold() == only.casefold() or slug(recipient) == slug(only)


def _free_name(base: str, taken: set[str]) -> str:
    """`base.xlsx`, or `base-2.xlsx`, `base-3.xlsx`, … when another recipient has it."""
    name, n = f"{base}.xlsx", 1
    while name in taken:
        n += 1
        name = f"{base}-{n}.xlsx"
    return name


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
    plan_path: Path | None = None,
    round_name: str | None = None,
    return_by: dt.date | None = None,
) -> dict[str, Any]:
    """Write the workbooks and `manifest.json`; return the manifest.

    With `round_name` and `return_by` the workbooks are issued in a reporting round (rounds.py): the date is
    on each workbook's About sheet, the manifest names the round, and the record gets a `round` line. A
    re-issue (`only`) into an outbox of a round stays in that round unless another is given.

    With `plan_path`, every workbook is also recorded in the plan's journal (an `issue` line, see trust.py),
    so its return is checked against what was really issued.

    With `only` and `force` into an outbox that already has a manifest of this plan, the recipient's entry
    is replaced and everyone else's kept, so `daplan status` still knows every workbook issued.
    """
    chosen = recipients(plan, by)
    if only is not None:
        chosen = [r for r in chosen if is_named(r.name, only)]
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
    earlier = _earlier_manifest(plan, outdir, by) if only is not None else None
    if round_name is None and earlier is not None and earlier.get("round"):
        round_name = str(earlier["round"])
        return_by = dt.date.fromisoformat(str(earlier["return_by"]))
    if (round_name is None) != (return_by is None):
        raise DaplanError(
            "a round needs both a name and a return-by date", hint="give --round and --return-by"
        )
    reissued = {r.name for r in chosen}
    kept = [wb for wb in earlier["workbooks"] if wb["recipient"] not in reissued] if earlier else []
    previous = {wb["recipient"]: wb["file"] for wb in earlier["workbooks"]} if earlier else {}
    taken = {wb["file"] for wb in kept}
    outdir.mkdir(parents=True, exist_ok=True)
    issued_at = clock()
    issued: list[dict[str, Any]] = []
    with collector.sparing_existing():  # the plan is not walked again after each workbook
        entries = []
        for r in chosen:
            # A re-issued recipient keeps its file name; a new one gets a name nobody else has.
            name = previous.get(r.name) or _free_name(slug(r.name), taken)
            taken.add(name)
            path = outdir / name
            info: IssueInfo = write_workbook(
                plan,
                path,
                scope=r.scope,
                recipient=r.name,
                key=key,
                clock=lambda: issued_at,
                round_name=round_name,
                return_by=return_by,
            )
            entries.append(
                {
                    "issue_id": info.issue_id,
                    "recipient": r.name,
                    "file": path.name,
                    "sha256": file_sha256(path),
                    "scope": info.scope,
                    "plan_revision": plan.revision,
                    "issued_at": issued_at.isoformat(),
                }
                | (
                    {"round": round_name, "return_by": return_by.isoformat()}
                    if round_name is not None and return_by is not None
                    else {}
                )
            )
            issued.append(
                issue_line(info, file=str(path), plan_revision=plan.revision)
                | ({"round": round_name} if round_name is not None else {})
            )
            if plan_path is not None:
                # Recorded as soon as it is written: a workbook in the outbox is never one the record does
                # not know, even when the distribution is stopped halfway.
                append_lines(plan_path, issued[-1:], tidy=len(issued) == 1)
            if progress:
                progress(r.name)
    signed = key is not None
    superseded: list[dict[str, Any]] = []
    if earlier is not None:
        # Everyone else's entry as it was (in its place), each with the time it was issued.
        fresh = {e["recipient"]: e for e in entries}
        workbooks = []
        for wb in earlier["workbooks"]:
            if wb["recipient"] in fresh:
                workbooks.append(fresh.pop(wb["recipient"]))
            else:
                workbooks.append({**wb, "issued_at": wb.get("issued_at") or earlier.get("issued_at", "")})
        entries = workbooks + list(fresh.values())
        signed = signed and (not kept or bool(earlier.get("signed")))
        # The replaced issues stay known, so a return of one is still recognised (by `status`, say).
        superseded = list(earlier.get("superseded", [])) + [
            {
                **wb,
                "issued_at": wb.get("issued_at") or earlier.get("issued_at", ""),
                "superseded_at": issued_at.isoformat(),
            }
            for wb in earlier["workbooks"]
            if wb["recipient"] in reissued
        ]
    manifest = {
        "plan_id": plan.id,
        "plan_revision": plan.revision,
        "issued_at": issued_at.isoformat(),
        "by": by,
        "signed": signed,
        "workbooks": entries,
        "superseded": superseded,
    }
    if round_name is not None and return_by is not None:
        manifest["round"] = round_name
        manifest["return_by"] = return_by.isoformat()
        the_round = round_line(
            round_name,
            return_by,
            [line["issue_id"] for line in issued],
            time=issued_at.isoformat(),
            revision=plan.revision,
            outbox=str(outdir),
        )
        if plan_path is not None:
            append_lines(plan_path, [the_round], tidy=not issued)
    atomic_write_bytes(
        outdir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    )
    return manifest


def _earlier_manifest(plan: Plan, outdir: Path, by: By) -> dict[str, Any] | None:
    """The outbox's manifest, when re-issuing into it; refused when it is another plan's or another kind."""
    if not (outdir / MANIFEST).is_file():
        return None
    earlier = read_manifest(outdir, plan)
    if earlier.get("by", "lead") != by:
        raise OutputExists(
            f"the outbox holds workbooks issued by {earlier.get('by')}, not by {by}",
            file=outdir,
            hint=f"re-issue with --by {earlier.get('by')}, or choose another folder",
        )
    return earlier


# What every workbook entry of a manifest holds, and of what type.
_ENTRY_KEYS: dict[str, type] = {"issue_id": str, "recipient": str, "file": str, "scope": list}


def read_manifest(outdir: Path, plan: Plan) -> dict[str, Any]:
    """The outbox's manifest, refused unless it was written for `plan`."""
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
    if not isinstance(data, dict) or not isinstance(data.get("workbooks"), list):
        raise DaplanError(
            "manifest.json is not a manifest of `daplan distribute`",
            file=path,
            hint="re-run `daplan distribute`",
        )
    for key in ("workbooks", "superseded"):
        entries = data.get(key, [])
        for n, entry in enumerate(entries if isinstance(entries, list) else [None]):
            if not (
                isinstance(entry, dict) and all(isinstance(entry.get(k), t) for k, t in _ENTRY_KEYS.items())
            ):
                raise DaplanError(
                    f"manifest.json: entry {n + 1} of {key!r} is damaged (it needs {', '.join(_ENTRY_KEYS)})",
                    file=path,
                    hint="re-run `daplan distribute` into an empty folder",
                )
            if not (is_bare_name(entry["file"]) and entry["file"].lower().endswith(".xlsx")):
                # A name with a folder part would let a re-issue write outside the outbox (over the plan).
                raise DaplanError(
                    f"manifest.json: entry {n + 1} of {key!r} names the file {entry['file']!r}, which is not "
                    "a workbook's bare name inside the outbox",
                    file=path,
                    hint="re-run `daplan distribute` into an empty folder",
                )
    if data.get("plan_id") != plan.id:
        raise DaplanError(
            f"the outbox holds workbooks issued for another plan ({data.get('plan_id')!r}, not {plan.id!r})",
            file=outdir,
            hint="name the outbox `daplan distribute` wrote for this plan",
        )
    return data
