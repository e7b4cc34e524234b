"""How a merge reads to the plan owner: a plain-text report, and the conflicts workbook to settle it in.

Every text from a return or the plan goes through `console.printable` in the report: a return is untrusted,
and an escape sequence or a line break in a value or a name must not act on the terminal or fake a line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout as L
from .console import printable
from .merge import MergeResult, skipped

if TYPE_CHECKING:
    from .writer import IssueInfo

WIDTH = 100
RESOLUTION_RECIPIENT = "Plan owner: conflict resolution"


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
    return "\n".join(lines)


def write_conflicts_workbook(result: MergeResult, path: Path, key: bytes | None = None) -> IssueInfo | None:
    """A workbook of the conflicting actions as they now stand, with every candidate listed beside them.

    It is an ordinary issued workbook (recipient "Plan owner: conflict resolution"): type or choose the value
    you want in the yellow cells and merge it like any return. Its base is the merged plan, so what you
    write is applied.
    """
    from .writer import write_workbook  # only here: a merge without conflicts need not load xlsxwriter

    conflicts = [i for i in result.items if i.outcome == "conflict"]
    if not conflicts:
        return None
    ids = list(dict.fromkeys(i.action_id for i in conflicts))
    rows = []
    for i in conflicts:
        for n, c in enumerate(i.candidates, start=1):
            rows.append(
                [
                    i.action_id,
                    _field(i.field),
                    i.reason,
                    i.base,
                    i.current,
                    f"{n}. {Path(c.source).name} ({c.recipient})",
                    c.value,
                ]
            )
    sheet = (
        L.CONFLICTS_SHEET,
        ["ID", "Field", "Why", "Base (as issued)", "Current (in the plan)", "Candidate", "Candidate value"],
        rows,
    )
    return write_workbook(
        result.plan, path, scope=ids, recipient=RESOLUTION_RECIPIENT, key=key, extra_sheet=sheet
    )
