"""Who has been sent a workbook, who has returned it, what is merged and what is outstanding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from . import journal as J
from . import openitems as O
from .console import printable, shorten, when
from .container import open_container
from .distribute import read_manifest
from .errors import DaplanError
from .meta import MetaLimits
from .model import Plan
from .reader import open_workbook, read_meta
from .rounds import due_text


def issue_id_of(path: Path, limits: MetaLimits | None = None) -> str | None:
    """The issue id in a workbook's metadata, or None when it has none we can read (within `limits`)."""
    try:
        container = open_container(path)
        reading = read_meta(open_workbook(container), container, None, limits)
    except DaplanError:
        return None
    return reading.meta.issue_id if reading.meta else None


def status_report(
    plan: Plan,
    plan_path: Path,
    outbox: Path | None = None,
    inbox: Path | None = None,
    *,
    round_name: str | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Per recipient of the outbox: issued, returned, merged, open items, outstanding; and the plan's open
    items per action. Without an outbox, the merged returns come from the journal alone.

    With `round_name`, the recipients are those of that reporting round, from the record (the outbox, if
    given, need not be the round's). A recipient of a round has the round's return-by date and, while
    outstanding, the days left to it on `today` (negative when late).
    """
    from .record import real_plan_path
    from .rounds import days_left, find_round, round_of_issue, rounds_of

    today = today or dt.datetime.now(dt.timezone.utc).date()
    entries = J.read_journal(J.journal_path(real_plan_path(plan_path)), plan.revision)
    items = O.open_items(entries)
    open_actions = O.open_by_action(entries)
    open_items = [
        {
            "item": i.item,
            "kind": i.kind,
            "action_id": i.action_id,
            "field": i.field,
            "reason": i.reason,
            "candidates": len(i.candidates),
            "opened_at": i.time,
        }
        for i in items
    ]
    by_issue: dict[str, int] = {}
    for i in items:
        for issued in {str(c.get("issue_id") or "") for c in i.candidates}:
            by_issue[issued] = by_issue.get(issued, 0) + 1
    merged = {m.issue_id: m for m in J.merged_returns(entries)}
    all_rounds = rounds_of(entries)
    round_summaries = [
        {
            "name": r.name,
            "return_by": r.return_by.isoformat(),
            "issued": len(r.issues),
            "merged": sum(1 for i in r.issues if i in merged),
        }
        for r in all_rounds
    ]
    if outbox is None and round_name is None:
        merged_rows = [
            {
                "recipient": m.recipient,
                "file": m.file,
                "issue_id": m.issue_id,
                "merged_at": m.time,
                "open_items": by_issue.get(m.issue_id, 0),
            }
            for m in J.merged_returns(entries)
        ]
        return {
            "plan_id": plan.id,
            "plan_revision": plan.revision,
            "merged_returns": merged_rows,
            "rounds": round_summaries,
            "open_items": open_items,
            "open_by_action": open_actions,
        }
    chosen = find_round(entries, round_name) if round_name is not None else None
    if chosen is not None:
        workbooks, superseded = _round_workbooks(chosen.issues, entries)
    else:
        assert outbox is not None
        manifest = read_manifest(outbox, plan)
        workbooks = [
            {**wb, "issued_at": wb.get("issued_at") or manifest.get("issued_at", "")}
            for wb in manifest["workbooks"]
        ]
        superseded = list(manifest.get("superseded", []))
    returned: dict[str, list[str]] = {}
    unmatched: list[str] = []
    if inbox is not None:
        if not inbox.is_dir():
            raise DaplanError(
                "the inbox is not a folder", file=inbox, hint="name the folder holding the returns"
            )
        limits = MetaLimits.for_plan(plan)
        for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith((".", "~$"))):
            issue = issue_id_of(path, limits)
            if issue is None:
                unmatched.append(path.name)
            else:
                returned.setdefault(issue, []).append(path.name)
    pending = _proposals_pending(entries)
    in_round = round_of_issue(entries)
    due_of = {r.name: r.return_by for r in all_rounds}
    # Returns of an issue replaced by `distribute --only --force` are shown with the recipient's current one.
    earlier_issues: dict[str, list[str]] = {}
    for old in superseded:
        earlier_issues.setdefault(old["recipient"], []).extend(returned.get(old["issue_id"], []))
    rows = []
    for wb in workbooks:
        issue = wb["issue_id"]
        files = returned.get(issue, [])
        m = merged.get(issue)
        outstanding = not files and m is None
        name = in_round.get(issue, "")
        due = due_of.get(name)
        rows.append(
            {
                "recipient": wb["recipient"],
                "file": wb["file"],
                "issue_id": issue,
                "actions": len(wb["scope"]),
                # A recipient re-issued with --only has its own time; older manifests have one for all.
                "issued_at": wb.get("issued_at", ""),
                "round": name,
                "return_by": due.isoformat() if due else "",
                "days_left": days_left(due, today) if due and outstanding else None,
                "returned": files,
                "returned_earlier_issue": sorted(earlier_issues.get(wb["recipient"], [])),
                "merged_at": m.time if m else "",
                "proposals_pending": pending.get(issue, 0),
                "open_items": by_issue.get(issue, 0),
                "outstanding": outstanding,
            }
        )
    known = {wb["issue_id"] for wb in workbooks + superseded}
    register = {e["issue_id"]: e for e in entries if e["event"] == "issue"}
    # A return of a workbook issued in another round counts against that round (`--round` shows it there).
    other_rounds = [
        {"file": name, "round": in_round[issue], "recipient": register[issue]["recipient"]}
        for issue, names in sorted(returned.items())
        if issue not in known and issue in in_round and issue in register
        for name in names
    ]
    counted = known | {i for i in returned if i in in_round and i in register}
    foreign = sorted(name for issue, names in returned.items() if issue not in counted for name in names)
    shown = chosen or _round_named(all_rounds, {in_round.get(r["issue_id"], "") for r in rows})
    return {
        "plan_id": plan.id,
        "plan_revision": plan.revision,
        "round": (
            {
                "name": shown.name,
                "return_by": shown.return_by.isoformat(),
                "days_left": days_left(shown.return_by, today),
                "today": today.isoformat(),
            }
            if shown is not None
            else None
        ),
        "rounds": round_summaries,
        "recipients": rows,
        "totals": {
            "issued": len(rows),
            "returned": sum(1 for r in rows if r["returned"]),
            "merged": sum(1 for r in rows if r["merged_at"]),
            "outstanding": sum(1 for r in rows if r["outstanding"]),
            "proposals_pending": sum(r["proposals_pending"] for r in rows),
            "open_items": len(items),
        },
        "unmatched_files": unmatched + foreign,
        "other_round_returns": other_rounds,
        "open_items": open_items,
        "open_by_action": open_actions,
    }


def _round_named(rounds: list[Any], names: set[str]) -> Any:
    """The round every row belongs to, when they all belong to one."""
    names.discard("")
    if len(names) != 1:
        return None
    (name,) = names
    return next((r for r in rounds if r.name == name), None)


def _round_workbooks(
    issues: list[str], entries: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A round's workbooks from the record: per recipient the newest issue, and the issues it replaced."""
    register = {e["issue_id"]: e for e in entries if e["event"] == "issue"}
    latest: dict[str, dict[str, Any]] = {}
    replaced: list[dict[str, Any]] = []
    for issue in issues:
        line = register.get(issue)
        if line is None:
            continue
        wb = {
            "issue_id": issue,
            "recipient": line["recipient"],
            "file": Path(line["file"]).name,
            "scope": line["scope"],
            "issued_at": line["time"],
        }
        if line["recipient"] in latest:
            replaced.append(latest[line["recipient"]])
        latest[line["recipient"]] = wb
    return list(latest.values()), replaced


def _proposals_pending(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Issue id -> proposed rows its merged returns left unadded (merged without --accept-new).

    Each returned file counts as its latest `return` line says (`journal.proposals_pending`): merged again
    with --accept-new, it is 0. Several files may answer one issue (several people returning the same
    workbook); their counts add up.
    """
    issue_of = {e["sha256"]: e["issue_id"] for e in entries if e.get("event") == "return"}
    out: dict[str, int] = {}
    for sha, n in J.proposals_pending(entries).items():
        out[issue_of[sha]] = out.get(issue_of[sha], 0) + n
    return out


def render_status(report: dict[str, Any]) -> str:
    """The status report as the terminal shows it: names cut to their column with an ellipsis, times in
    UTC as a person reads them, every text from a plan or a file escaped (see console.printable)."""
    if "recipients" not in report:  # no outbox: the returns merged so far
        lines = [f"{'Return':<30} {'Recipient':<40} {'Merged (UTC)':<20}"]
        for m in report["merged_returns"]:
            state = (
                f"{when(m['merged_at'])}, {m['open_items']} open" if m["open_items"] else when(m["merged_at"])
            )
            lines.append(
                f"{shorten(printable(Path(m['file']).name), 30):<30} {shorten(printable(m['recipient']), 40):<40} {state}"
            )
        return "\n".join([*lines, *_round_lines(report), *_open_lines(report)])
    lines = []
    shown = report.get("round")
    if shown:
        lines.append(
            f"Round {printable(shown['name'])}: return by {_day(shown['return_by'])} "
            f"({due_text(shown['days_left']) if shown['days_left'] >= 0 else 'passed, ' + due_text(shown['days_left'])}"
            f" on {_day(shown['today'])}).\n"
        )
    rounds = any(r.get("return_by") for r in report["recipients"])
    due_head = f"{'Return by':<18}" if rounds else ""
    lines.append(f"{'Recipient':<40} {'Actions':>7}  {'Returned':<28} {due_head}{'Merged (UTC)':<20}")
    for r in report["recipients"]:
        returned = ", ".join(r["returned"]) or ("-" if not r["outstanding"] else "OUTSTANDING")
        due = ""
        if rounds:
            due = (
                due_text(r["days_left"])
                if r.get("days_left") is not None
                else ("-" if r["return_by"] else "")
            )
            due = f"{due:<18}"
        merged = when(r["merged_at"]) if r["merged_at"] else "-"
        lines.append(
            f"{shorten(printable(r['recipient']), 40):<40} {r['actions']:>7}  "
            f"{shorten(printable(returned), 28):<28} {due}{merged:<20}".rstrip()
        )
        if r["returned_earlier_issue"]:
            earlier = printable(", ".join(r["returned_earlier_issue"]))
            lines.append(f"    returned a workbook issued before it was re-issued: {earlier}")
        if r["proposals_pending"]:
            lines.append(
                f"    {r['proposals_pending']} proposed new action(s) await `daplan merge --accept-new`"
            )
        if r["open_items"]:
            lines.append(f"    merged, {r['open_items']} open: values of this return await you (Open items below)")
    t = report["totals"]
    n_late = sum(1 for r in report["recipients"] if r.get("days_left") is not None and r["days_left"] < 0)
    late = f" ({n_late} late)" if n_late else ""
    lines.append(
        f"\n{t['issued']} issued, {t['returned']} returned, {t['merged']} merged, {t['outstanding']} outstanding{late}."
    )
    if t["proposals_pending"]:
        lines.append(
            f"{t['proposals_pending']} proposed new action(s) not yet added: "
            "merge their returns again with --accept-new."
        )
    for r in report.get("other_round_returns", []):
        lines.append(
            f"Returned for round {printable(r['round'])}: {printable(r['file'])} ({printable(r['recipient'])}); "
            f"see `daplan status PLAN - INBOX --round {printable(r['round'])!r}`"
        )
    if report["unmatched_files"]:
        lines.append("Not from this outbox: " + printable(", ".join(report["unmatched_files"])))
    return "\n".join([*lines, *_open_lines(report)])


def _day(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day.day} {day.strftime('%b %Y')}"


def _round_lines(report: dict[str, Any]) -> list[str]:
    """Without an outbox: each reporting round with how many of its workbooks are merged."""
    if not report.get("rounds"):
        return []
    lines = ["", "Rounds:"]
    for r in report["rounds"]:
        lines.append(
            f"  {shorten(printable(r['name']), 30):<30} return by {_day(r['return_by'])}: "
            f"{r['merged']} of {r['issued']} merged"
        )
    lines.append(
        "Per recipient: `daplan status PLAN --round NAME [INBOX]` or `daplan status PLAN OUTBOX INBOX`."
    )
    return lines


def _open_lines(report: dict[str, Any]) -> list[str]:
    """The open items awaiting the owner, per action."""
    items = report["open_items"]
    if not items:
        return ["No open items."]
    lines = ["", f"Open items ({len(items)}), per action:"]
    for action_id, n in report["open_by_action"].items():
        mine = [i for i in items if i["action_id"] == action_id]
        fields = ", ".join(sorted({i["field"] for i in mine}))
        lines.append(
            f"  {printable(action_id):<10} {n} open ({fields}): {shorten(printable(mine[0]['reason']), 60)}"
        )
    lines.append(
        "Settle them: `daplan conflicts PLAN -o settle.xlsx`, `daplan resolve`, or `daplan recheck`."
    )
    return lines
