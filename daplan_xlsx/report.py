"""The board report: what the governance board, the PCC and the inspectorate read on paper.

It answers the board's three questions at a glance: what is off track or late, what changed since the board
last met, and is it getting better. Everything comes from the record: the plan, and its journal for the
changes, the open items, the trend and the last board (the newest `publish` line: a report or an export).

The content is worked out once (`report_content`) and laid out twice: as a PDF through Typst (a template
`report.typ` reads the content as JSON, so no plan text is ever read as markup) and as one self-contained
HTML page through Jinja2 (`report.html`). A force's `--template` folder can replace either.

The trend is taken over the distribution rounds when the journal records them (`round` lines: name,
revision, return-by date), and otherwise over the days on which statuses or due dates changed. A past state
is the plan as it now stands with the journal's later changes taken back, newest first.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import journal as J
from . import layout as L
from .errors import DaplanError
from .export import (
    FIELD_LABELS,
    Clock,
    Since,
    _long_date,
    _ordered,
    _ref,
    _when,
    parse_since,
    publish,
    utc_now,
)
from .model import Action, Area, Plan
from .openitems import open_items
from .pages import TEMPLATE_FOLDER, check_template_dir, render
from .record import check_output, real_plan_path
from .rounds import Round, rounds_of, state_at
from .writer import contrast_colour

SUFFIXES = {".pdf": "pdf", ".html": "html", ".htm": "html"}
# The statuses the board hears about as exceptions, by name (the default vocabulary's); any open action past
# its due date is an exception whatever its status.
OFF_TRACK, AT_RISK = "off track", "at risk"
# The trend shows at most this many points: the board looks back a year of quarterly rounds, not further.
TREND_POINTS = 6


@dataclass(frozen=True)
class Point:
    """The plan's figures at one moment of the trend."""

    label: str
    day: dt.date
    total: int
    closed: int
    off_track: int
    at_risk: int
    overdue: int

    @property
    def share(self) -> int:
        return round(100 * self.closed / self.total) if self.total else 0


# -- the record's history ------------------------------------------------------------------------------------


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _day(entry: dict[str, Any] | Round) -> dt.date | None:
    """The day (UTC) of a journal line's time, or of a round's first issue."""
    stamp = entry.issued_at if isinstance(entry, Round) else str(entry.get("time", ""))
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when.astimezone(dt.timezone.utc).date() if when.tzinfo else when.date()


def _is(status: str, name: str) -> bool:
    return status.strip().casefold() == name


def point(plan: Plan, state: dict[str, tuple[str, dt.date | None]], label: str, day: dt.date) -> Point:
    closed = plan.closed_statuses()
    statuses = [s for s, _ in state.values()]
    return Point(
        label=label,
        day=day,
        total=len(state),
        closed=sum(s in closed for s in statuses),
        off_track=sum(_is(s, OFF_TRACK) for s in statuses),
        at_risk=sum(_is(s, AT_RISK) for s in statuses),
        overdue=sum(1 for s, due in state.values() if due is not None and due < day and s not in closed),
    )


def trend(plan: Plan, entries: Sequence[dict[str, Any]], today: dt.date) -> tuple[str, list[Point]]:
    """The figures over time, oldest first, ending with today: (what the points are, the points)."""
    now = point(plan, state_at(plan, entries, plan.revision), "Now", today)
    found = rounds_of(entries)
    if found:
        points = [
            point(
                plan,
                state_at(plan, entries, r.revision),
                f"{r.name} (issued {_short(_day(r) or today)})",
                _day(r) or today,
            )
            for r in found
        ]
        return "rounds", [*points[-(TREND_POINTS - 1) :], now]
    # Without rounds: the state before the first change of each day on which a status or a due date changed,
    # and now; the first point is the plan as it stood before any of them.
    changed_days: dict[dt.date, int] = {}
    for e in entries:
        if e.get("event") in ("change", "add") and (
            e.get("event") == "add" or e.get("field") in ("status", "due")
        ):
            day = _day(e)
            if day is not None and day not in changed_days:
                changed_days[day] = int(e.get("revision", 0)) - 1
    points = [
        point(plan, state_at(plan, entries, revision), f"Before {_short(day)}", day)
        for day, revision in sorted(changed_days.items())
    ]
    return "dates", [*points[-(TREND_POINTS - 1) :], now]


def _short(day: dt.date) -> str:
    return f"{day.day} {_long_date(day).split()[1][:3]} {day.year}"


# -- since when ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardSince:
    """Where "Changes since" starts, and how the report names it."""

    since: Since
    label: str


def since_point(
    value: str | None, plan: Plan, entries: Sequence[dict[str, Any]], today: dt.date
) -> BoardSince:
    """`--since`: a round's name, a plan revision or a day; by default the last board (the newest
    publication of the plan: a board report or an export)."""
    if value is not None:
        for r in reversed(rounds_of(entries)):
            if r.name.strip().casefold() == value.strip().casefold():
                return BoardSince(Since(revision=r.revision), f"round {r.name}")
        try:
            parsed = parse_since(value, plan, today)
        except DaplanError as exc:
            names = [r.name for r in rounds_of(entries)]
            if names and not re.fullmatch(r"[0-9-]+", value.strip()):
                raise DaplanError(
                    f"--since {value!r} is not a round, a revision or a date",
                    hint=f"give a round ({', '.join(names[-3:])}), a plan revision such as 2, or YYYY-MM-DD",
                ) from exc
            raise
        return BoardSince(parsed, parsed.label())
    last = J.last_publication(entries)
    if last is not None:
        day = _day(last)
        return BoardSince(
            Since(revision=int(last["revision"])),
            f"the last board ({_long_date(day)})" if day else "the last board",
        )
    return BoardSince(Since(revision=0), "the start of the plan's record")


# -- the content ---------------------------------------------------------------------------------------------


def report_content(
    plan: Plan,
    entries: Sequence[dict[str, Any]],
    *,
    today: dt.date,
    since: BoardSince,
    returns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the board report shows, as plain data (JSON for the PDF template, values for the HTML)."""
    closed = plan.closed_statuses()
    actions = plan.iter_actions()
    counts = Counter(a.status for _, a in actions)
    total = len(actions)
    n_closed = sum(counts[s] for s in closed)
    overdue = [
        (area, a) for area, a in actions if a.due is not None and a.due < today and a.status not in closed
    ]
    items = open_items(entries)
    open_by_action = Counter(i.action_id for i in items)
    kind, points = trend(plan, entries, today)
    statuses = [
        {
            "name": s.name,
            "colour": s.colour,
            "text": contrast_colour(s.colour),
            "meaning": s.meaning,
            "closed": s.closed,
            "count": counts[s.name],
        }
        for s in plan.statuses
    ]
    return {
        "title": plan.title,
        "force": plan.force,
        "marking": plan.classification,
        "revision": plan.revision,
        "as_at": _long_date(today),
        "since": since.label,
        "headline": {
            "total": total,
            "closed": n_closed,
            "share": round(100 * n_closed / total) if total else 0,
            "off_track": sum(_is(a.status, OFF_TRACK) for _, a in actions),
            "at_risk": sum(_is(a.status, AT_RISK) for _, a in actions),
            "overdue": len(overdue),
            "open_items": len(items),
            "closed_names": ", ".join(s.name for s in plan.statuses if s.closed) or "none",
        },
        "statuses": statuses,
        "trend": {
            "kind": kind,
            "points": [
                {
                    "label": p.label,
                    "total": p.total,
                    "closed": p.closed,
                    "share": p.share,
                    "off_track": p.off_track,
                    "at_risk": p.at_risk,
                    "overdue": p.overdue,
                }
                for p in points
            ],
            "summary": trend_summary(points),
        },
        "areas": [_area_counts(area, plan, today) for area in plan.areas],
        "exceptions": exceptions(plan, today, open_by_action),
        "changes": changes_since(plan, entries, since.since),
        "returns": _returns(returns, entries, today),
    }


def trend_summary(points: Sequence[Point]) -> str:
    """One sentence comparing now with the previous point of the trend."""
    if len(points) < 2:
        return "No change of status or due date is on record yet, so there is no trend to show."
    before, now = points[-2], points[-1]
    parts = []
    moved = now.share - before.share
    parts.append(
        f"{now.share}% of actions are closed, "
        + ("the same as" if moved == 0 else f"{'up' if moved > 0 else 'down'} {abs(moved)} points from")
        + f" {before.label[:1].lower()}{before.label[1:]}"
    )
    for what, a, b in (
        ("off track", before.off_track, now.off_track),
        ("overdue", before.overdue, now.overdue),
    ):
        if a != b:
            parts.append(f"{b} {what} ({'up' if b > a else 'down'} from {a})")
        else:
            parts.append(f"{b} {what} (unchanged)")
    return "; ".join(parts) + "."


def _area_counts(area: Area, plan: Plan, today: dt.date) -> dict[str, Any]:
    counts = Counter(a.status for a in area.actions)
    closed = plan.closed_statuses()
    return {
        "id": area.id,
        "name": area.name,
        "total": len(area.actions),
        "closed": sum(counts[s] for s in closed),
        "overdue": sum(
            1 for a in area.actions if a.due is not None and a.due < today and a.status not in closed
        ),
        "segments": [
            {"name": s.name, "count": counts[s.name], "colour": s.colour, "text": contrast_colour(s.colour)}
            for s in plan.statuses
            if counts[s.name]
        ],
    }


def _action(area: Area, a: Action) -> dict[str, Any]:
    return {
        "id": a.id,
        "where": f"{area.name}, {'local action ' if a.kind == 'local' else ''}{_ref(a)}",
        "action": a.action,
        "leads": list(a.leads),
        "status": a.status,
        "due": _long_date(a.due) if a.due else "",
        "target": a.target,
    }


def exceptions(plan: Plan, today: dt.date, open_by_action: Counter[str]) -> list[dict[str, Any]]:
    """Open actions off track, at risk, past their due date or with items awaiting the owner; the worst first."""
    closed = plan.closed_statuses()
    rows = []
    for area in plan.areas:
        for a in _ordered(area):
            if a.status in closed and not open_by_action[a.id]:
                continue
            reasons: list[str] = []
            rank = 9
            if _is(a.status, OFF_TRACK):
                reasons.append("Off track")
                rank = 0
            if a.due is not None and a.due < today and a.status not in closed:
                reasons.append(f"Overdue by {_how_long(today - a.due)}")
                rank = min(rank, 1)
            if _is(a.status, AT_RISK):
                reasons.append("At risk")
                rank = min(rank, 2)
            if open_by_action[a.id]:
                n = open_by_action[a.id]
                reasons.append(f"{n} open item{'s' if n != 1 else ''} awaiting the plan owner")
                rank = min(rank, 3)
            if reasons:
                rows.append((rank, a.due or dt.date.max, {**_action(area, a), "reasons": reasons}))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


def _how_long(span: dt.timedelta) -> str:
    """A time past due as a person says it: days, then weeks, months, years."""
    days = span.days
    for unit, size in (("year", 365), ("month", 30), ("week", 7)):
        if days >= 2 * size:
            n = days // size
            return f"{n} {unit}s"
    return f"{days} day{'s' if days != 1 else ''}"


def changes_since(plan: Plan, entries: Sequence[dict[str, Any]], since: Since) -> list[dict[str, Any]]:
    """The published changes after `since`, one group per action in plan order (notes are never published)."""
    where = {a.id: (area, a) for area, a in plan.iter_actions()}
    order = {a.id: n for n, (_, a) in enumerate(plan.iter_actions())}
    groups: dict[str, list[dict[str, Any]]] = {}
    added: set[str] = set()
    for e in entries:
        if not since.includes(e):
            continue
        if e.get("event") == "change" and e.get("field") in FIELD_LABELS:
            groups.setdefault(str(e["action_id"]), []).append(e)
        elif e.get("event") == "add":
            added.add(str(e["action_id"]))
            groups.setdefault(str(e["action_id"]), [])
    out = []
    for action_id in sorted(groups, key=lambda i: (order.get(i, len(order)), i)):
        found = where.get(action_id)
        if found is None:
            continue  # an action no longer in the plan (removed by hand): nothing to show the board
        area, action = found
        lines = []
        if action_id in added:
            lines.append({"field": "New action", "was": "", "now": "", "text": "", "by": "", "when": ""})
        for e in groups[action_id]:
            field = str(e["field"])
            old, new = str(e.get("old") or ""), str(e.get("new") or "")
            if field == "due":
                old, new = (_long_date(_date(v)) or v for v in (old, new))
            line = {
                "field": FIELD_LABELS[field],
                "by": L.recipient_label(str(e.get("recipient", ""))),
                "when": _when(str(e.get("time", ""))).split(",")[0],
                "was": "",
                "now": "",
                "text": "",
            }
            # A long text (the response) is shown as it now reads; a short value as was → now.
            if field == "response":
                line["text"] = new
            else:
                line["was"], line["now"] = old or "(none)", new or "(none)"
            lines.append(line)
        out.append({**_action(area, action), "lines": _merged_lines(lines)})
    return out


def _merged_lines(lines: list[dict[str, str]]) -> list[dict[str, str]]:
    """One line per field: a field changed twice since the last board shows where it started and ended."""
    merged: dict[str, dict[str, str]] = {}
    for line in lines:
        key = line["field"]
        if key in merged and not line["text"]:
            merged[key] = {**line, "was": merged[key]["was"]}
        else:
            merged[key] = dict(line)
    return list(merged.values())


def _returns(
    report: dict[str, Any] | None, entries: Sequence[dict[str, Any]], today: dt.date
) -> dict[str, Any] | None:
    """The returns outstanding, from status.status_report over the outbox (and inbox)."""
    if report is None:
        return None
    found = rounds_of(entries)
    return_by = found[-1].return_by if found else None
    late = return_by is not None and today > return_by
    outstanding = [
        {
            "recipient": L.recipient_label(r["recipient"]),
            "actions": r["actions"],
            "issued": _long_date(_date(str(r.get("issued_at") or ""))),
            "state": ("Late" if late else "Awaited") if r["outstanding"] else "",
        }
        for r in sorted(report.get("recipients", []), key=lambda r: r["recipient"])
        if r["outstanding"]
    ]
    totals = report.get("totals", {})
    return {
        "issued": totals.get("issued", 0),
        "returned": totals.get("returned", 0),
        "merged": totals.get("merged", 0),
        "outstanding": outstanding,
        "return_by": _long_date(return_by) if return_by else "",
        "round": found[-1].name if found else "",
    }


# -- rendering -----------------------------------------------------------------------------------------------


def format_for(output: Path) -> str:
    found = SUFFIXES.get(output.suffix.lower())
    if found is None:
        raise DaplanError(
            "cannot tell the report's format from the file name",
            file=output,
            hint="name a .pdf or .html file",
        )
    return found


def render_html(content: dict[str, Any], template_dir: Path | None = None) -> str:
    """The report as one self-contained HTML page, through the shared page templates (pages.py)."""
    page = {
        "plan": {"title": content["title"], "force": content["force"], "revision": content["revision"]},
        "kicker": "Board report",
        "meta": [
            ("As at", content["as_at"]),
            ("Plan revision", str(content["revision"])),
            ("Changes since", content["since"]),
        ],
        "produced": content["as_at"],
        "status_index": {s["name"]: n for n, s in enumerate(content["statuses"])},
    }
    return render("report.html", {**content, **page}, template_dir)


def render_pdf(content: dict[str, Any], template_dir: Path | None = None) -> bytes:
    """The report as PDF through Typst: the template reads the content as JSON, never as markup."""
    import typst

    source = TEMPLATE_FOLDER / "report.typ"
    if template_dir is not None and (Path(template_dir) / "report.typ").is_file():
        source = Path(template_dir) / "report.typ"
    try:
        pdf = typst.compile(
            str(source),
            root=str(source.parent),
            sys_inputs={"report": json.dumps(content, ensure_ascii=False)},
        )
    except Exception as exc:  # typst.TypstError and its kin; the message names the line
        message = " ".join(str(exc).split())[:400]
        raise DaplanError(
            f"the report template could not be typeset: {message}",
            file=source,
            hint="correct the line named, or remove the file to use the built-in template",
        ) from exc
    assert isinstance(pdf, bytes)
    return pdf


@dataclass
class ReportInfo:
    """What `write_report` wrote."""

    output: Path
    format: str
    revision: int
    exceptions: int
    changes: int
    since: str
    time: str


def write_report(
    plan: Plan,
    plan_path: Path,
    output: Path,
    *,
    since: str | None = None,
    outbox: Path | None = None,
    inbox: Path | None = None,
    template_dir: Path | None = None,
    clock: Clock = utc_now,
) -> ReportInfo:
    """Write the board report (PDF or HTML by the output's extension) and record it as a publication."""
    output = Path(output)
    check_output(output, plan_path=Path(plan_path), what="report")
    fmt = format_for(output)
    check_template_dir(template_dir)
    now = clock()
    entries = J.read_journal(J.journal_path(real_plan_path(Path(plan_path))), plan.revision)
    start = since_point(since, plan, entries, now.date())
    returns = None
    if outbox is not None:
        from .status import status_report

        returns = status_report(plan, Path(plan_path), outbox, inbox)
    content = report_content(plan, entries, today=now.date(), since=start, returns=returns)
    data = (
        render_pdf(content, template_dir)
        if fmt == "pdf"
        else render_html(content, template_dir).encode("utf-8")
    )
    time = publish(
        plan,
        plan_path,
        output,
        data,
        fmt,
        now,
        what="report",
        hint="close it if it is open in a PDF reader, or choose a folder you can write to",
    )
    return ReportInfo(
        output, fmt, plan.revision, len(content["exceptions"]), len(content["changes"]), start.label, time
    )
