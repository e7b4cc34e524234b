"""How a merge reads to the plan owner: a plain-text report, and the conflicts workbook to settle it in.

Every text from a return or the plan goes through `console.printable` in the report: a return is untrusted,
and an escape sequence or a line break in a value or a name must not act on the terminal or fake a line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout as L
from .console import printable
from .merge import RESOLUTION_RECIPIENT, MergeResult, skipped
from .meta import field_value
from .model import Plan
from .openitems import OpenItem, candidate_label
from .settle import SETTLEABLE

if TYPE_CHECKING:
    from .writer import IssueInfo

WIDTH = 100
__all__ = ["RESOLUTION_RECIPIENT", "render_report", "write_conflicts_workbook"]


def _field(name: str) -> str:
    return L.COLUMN_BY_KEY[name].header if name in L.COLUMN_BY_KEY else name


def _short(text: str, limit: int = 70) -> str:
    one = printable(" ⏎ ".join(text.split("\n")))
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _in_full(text: str, shown: str, indent: str) -> list[str]:
    """The whole value under its shortened form, when that form cut it: a refused or competing value is
    kept in the report, not only in --json."""
    if shown == text:
        return []
    return [f"{indent}in full:"] + [f"{indent}  {printable(line)}" for line in text.split("\n")]


def _name(path: str) -> str:
    return printable(Path(path).name)


def render_report(result: MergeResult, dry_run: bool) -> str:
    lines = []
    head = "Dry run: nothing written." if dry_run else f"Plan now at revision {result.plan.revision}."
    counts = {
        o: sum(1 for i in result.items if i.outcome == o)
        for o in ("applied", "conflict", "rejected", "unchanged")
    }
    lines.append(
        f"{head} {counts['applied']} applied, {counts['conflict']} conflict(s), {counts['rejected']} rejected, "
        f"{counts['unchanged']} unchanged."
    )
    lines.append("")
    lines.append("Returns:")
    for r in result.returns:
        state = "merged" if r.accepted else ("skipped" if skipped(r) else "REJECTED")
        who = f" {printable(r.recipient)}" if r.recipient else ""
        lines.extend(
            textwrap.wrap(
                f"  {state}: {_name(r.file)}{who}" + (f" ({printable(r.note)})" if r.note else ""),
                WIDTH,
                subsequent_indent="      ",
            )
        )
    for outcome in ("conflict", "rejected", "applied", "unchanged"):
        items = [i for i in result.items if i.outcome == outcome]
        if not items:
            continue
        lines.append("")
        lines.append(f"{outcome.capitalize()} ({len(items)}):")
        for i in items:
            target = printable(f"{i.action_id} {_field(i.field)}") if i.action_id else _name(i.source)
            if i.item:
                target += f" [open item {i.item}]"
            if outcome == "conflict":
                lines.append(f"  {target}: {printable(i.reason)}")
                lines.append(f"      base:    {_short(i.base)!s}")
                lines.append(f"      current: {_short(i.current)!s}")
                for c in i.candidates:
                    lines.append(f"      {_name(c.source)} ({printable(c.recipient)}): {_short(c.value)}")
                    lines.extend(_in_full(c.value, _short(c.value), "        "))
            elif outcome == "rejected":
                value = f" [value: {_short(i.new, 50)}]" if i.new else ""
                lines.extend(
                    textwrap.wrap(
                        f"  {target}: {printable(i.reason)}{value}", WIDTH, subsequent_indent="      "
                    )
                )
                lines.extend(_in_full(i.new, _short(i.new, 50), "      "))
            else:
                lines.append(f"  {target}: {_short(i.current, 35)} → {_short(i.new, 35)}")
    if result.proposals:
        lines.append("")
        lines.append(f"Proposed new actions ({len(result.proposals)}):")
        for source, p, new_id in result.proposals:
            state = f"added as {new_id}" if new_id else "not added (use --accept-new)"
            lines.append(
                f"  {_name(source)} {printable(p.sheet)} row {p.row}: {state}: "
                f"{_short(p.values.get('action', ''))}"
            )
    notes = [f for f in result.findings]
    if notes:
        lines.append("")
        lines.append(f"Findings ({len(notes)}):")
        for source, f in notes:
            where = printable("!".join(x for x in (f.sheet, f.cell) if x))
            lines.extend(
                textwrap.wrap(
                    f"  {f.severity}: {_name(source)} {where}: {printable(f.message)}",
                    WIDTH,
                    subsequent_indent="      ",
                )
            )
    if result.warnings:
        lines.append("")
        lines.append(f"Warnings ({len(result.warnings)}):")
        lines.extend(f"  {printable(w)}" for w in result.warnings)
    opened = sum(1 for i in result.items if i.item)
    if opened:
        lines.append("")
        verb = "would stay" if dry_run else "stay"
        lines.extend(
            textwrap.wrap(
                f"{opened} open item(s) {verb} on record until you settle them: `daplan conflicts PLAN -o "
                "settle.xlsx` (then merge it), `daplan resolve PLAN ACTION FIELD --take CANDIDATE`, or, after "
                "adding a missing lead or status, `daplan recheck PLAN`.",
                WIDTH,
            )
        )
    return "\n".join(lines)


def write_conflicts_workbook(
    plan: Plan, items: Sequence[OpenItem], path: Path, key: bytes | None = None
) -> IssueInfo | None:
    """A workbook of the actions with open items as they now stand, with every candidate listed beside them.

    It is an ordinary issued workbook (recipient "Plan owner: conflict resolution"): type or choose the value
    you want in the yellow cells and merge it like any return; each field you change settles its open
    items. Its base is the plan as it is now, so what you write is applied. Made from the record's open
    items, it can be made at any time and holds the same items whenever it is made.
    """
    from .writer import write_workbook  # only here: a merge without conflicts need not load xlsxwriter

    index = plan.action_index()
    shown = [i for i in items if i.action_id in index]
    if not shown:
        return None
    ids = list(dict.fromkeys(i.action_id for i in shown))
    rows = []
    for i in shown:
        for n, c in enumerate(i.candidates, start=1):
            rows.append(
                [
                    i.action_id,
                    _field(i.field),
                    i.reason,
                    i.base,
                    field_value(index[i.action_id], i.field) if i.field in SETTLEABLE else "",
                    f"{n}. {candidate_label(c)}",
                    str(c["value"]),
                    i.item,
                ]
            )
    sheet = (
        L.CONFLICTS_SHEET,
        [
            "ID",
            "Field",
            "Why",
            "Base (as issued)",
            "Current (in the plan)",
            "Candidate",
            "Candidate value",
            "Open item",
        ],
        rows,
    )
    return write_workbook(
        plan, path, scope=ids, recipient=RESOLUTION_RECIPIENT, key=key, extra_sheet=sheet, kind="conflicts"
    )
