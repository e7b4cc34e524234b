"""The publishable plan: one self-contained HTML page or GitHub-flavoured Markdown.

The document follows the plans forces published in 2014: protective marking, title, force, background, the
overarching capabilities table, one table per capability area (Ref, Action, Response, Target, Lead,
Status) and the glossary. It adds a summary of actions by status per area and, when asked, the progress
merged since a revision or a day, taken from the audit journal.

Every piece of plan text is escaped for the format it goes into; nothing in a plan can add markup, a link
or a script. The HTML needs no network and no script: inline CSS only, a Content-Security-Policy that
forbids loading anything, relative units so it reads at 200% zoom, and a print stylesheet.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import journal as J
from . import layout as L
from .errors import DaplanError
from .model import Action, Area, Plan
from .pages import check_template_dir, paragraphs, render
from .record import append_lines, check_output, real_plan_path

Clock = Callable[[], dt.datetime]

FORMATS = ("html", "md")
SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
COLUMNS = ("Ref", "Action", "Response", "Target", "Lead", "Status")
# Journal fields as readers know them. Notes are the owner's working notes and never published, so a
# change to them is left out of "Progress since" as well.
FIELD_LABELS = {"response": "Response", "target": "Target", "due": "Due", "lead": "Lead", "status": "Status"}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


# -- what to include -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Since:
    """The point "Progress since …" starts from: after a plan revision, or from the start of a day (UTC)."""

    revision: int | None = None
    day: dt.date | None = None

    def label(self) -> str:
        return f"revision {self.revision}" if self.revision is not None else _long_date(self.day)

    def includes(self, entry: dict[str, Any]) -> bool:
        if self.revision is not None:
            return int(entry.get("revision", 0)) > self.revision
        when = _parse_time(str(entry.get("time", "")))
        return when is not None and self.day is not None and when.date() >= self.day


def parse_since(value: str, plan: Plan, today: dt.date) -> Since:
    """`--since`: an integer is a revision of this plan; an ISO date (YYYY-MM-DD) is a day, not in the future."""
    text = value.strip()
    if re.fullmatch(r"[0-9]+", text):
        revision = int(text)
        if not 1 <= revision <= plan.revision:
            raise DaplanError(
                f"--since {text}: the plan has no revision {revision}; it is at revision {plan.revision}",
                hint=f"give a revision from 1 to {plan.revision}, or a date such as {today.isoformat()}",
            )
        return Since(revision=revision)
    try:
        day = dt.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        day = None
    if day is None:
        raise DaplanError(
            f"--since {value!r} is neither a revision number nor a date",
            hint="give a plan revision such as 2, or a date as YYYY-MM-DD",
        )
    if day > today:
        raise DaplanError(
            f"--since {text} is in the future (today is {today.isoformat()})",
            hint="give a day up to today",
        )
    return Since(day=day)


def progress_entries(entries: Iterable[dict[str, Any]], since: Since) -> list[dict[str, Any]]:
    """The journal's published changes after `since`, in the order they were merged."""
    return [
        e
        for e in entries
        if e.get("event") == "change" and e.get("field") in FIELD_LABELS and since.includes(e)
    ]


def format_for(output: Path, fmt: str | None) -> str:
    """The format asked for, or the one the output's extension names."""
    if fmt is None:
        found = SUFFIXES.get(output.suffix.lower())
        if found is None:
            raise DaplanError(
                "cannot tell the format from the file name",
                file=output,
                hint="pass --format html or --format md",
            )
        return found
    if fmt.lower() not in FORMATS:
        raise DaplanError(f"unknown format {fmt!r}", hint="use --format html or --format md")
    return fmt.lower()


# -- rendering -----------------------------------------------------------------------------------------------


def export_plan(
    plan: Plan,
    fmt: str,
    *,
    since: Since | None = None,
    journal: Sequence[dict[str, Any]] = (),
    produced: dt.date | None = None,
    template_dir: Path | None = None,
) -> str:
    """The plan as a publishable document in `fmt` ("html" or "md").

    With `since`, a "Progress since …" section lists the changes in `journal` (the lines of
    `journal.read_journal`) merged after that point. `produced` is the date printed as the day it was made.
    `template_dir` is a force's own folder of page templates (HTML only; see pages.py).
    """
    if fmt not in FORMATS:
        raise DaplanError(f"unknown format {fmt!r}", hint="use --format html or --format md")
    changes = progress_entries(journal, since) if since is not None else None
    doc = _Doc(plan, since, changes, produced)
    return doc.html(template_dir) if fmt == "html" else doc.markdown()


@dataclass
class ExportInfo:
    """What `write_export` wrote."""

    output: Path
    format: str
    revision: int
    changes: int | None  # changes listed under "Progress since", None without --since
    time: str


def write_export(
    plan: Plan,
    plan_path: Path,
    output: Path,
    fmt: str | None = None,
    *,
    since: str | None = None,
    clock: Clock = utc_now,
    template_dir: Path | None = None,
) -> ExportInfo:
    """Write the export atomically and record the publication in the plan's journal."""
    output = Path(output)
    fmt = format_for(output, fmt)
    check_template_dir(template_dir)
    now = clock()
    journal_file = J.journal_path(real_plan_path(Path(plan_path)))
    check_output(output, plan_path=Path(plan_path), what=f".{fmt} file")
    parsed = parse_since(since, plan, now.date()) if since is not None else None
    entries = J.read_journal(journal_file, plan.revision) if parsed is not None else []
    text = export_plan(
        plan, fmt, since=parsed, journal=entries, produced=now.date(), template_dir=template_dir
    )
    time = publish(
        plan,
        plan_path,
        output,
        text.encode("utf-8"),
        fmt,
        now,
        what="export",
        hint="choose a folder you can write to",
    )
    listed = len(progress_entries(entries, parsed)) if parsed is not None else None
    return ExportInfo(output, fmt, plan.revision, listed, time)


def publish(
    plan: Plan,
    plan_path: Path,
    output: Path,
    data: bytes,
    fmt: str,
    now: dt.datetime,
    *,
    what: str,
    hint: str,
) -> str:
    """Write a published document atomically and record it in the plan's journal as a `publish` line (the
    master marks what changed since, the board report reports it); the time recorded."""
    from .planfile import atomic_write_bytes

    try:
        atomic_write_bytes(output, data)
    except OSError as exc:
        raise DaplanError(f"cannot write the {what}: {exc.strerror or exc}", file=output, hint=hint) from exc
    time = now.isoformat()
    entry = {"event": "publish", "time": time, "revision": plan.revision, "file": str(output), "format": fmt}
    append_lines(Path(plan_path), [entry])
    return time


# -- shared helpers ------------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _long_date(day: dt.date | None) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}" if day else ""


def _parse_time(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(dt.timezone.utc) if when.tzinfo else when


def _when(text: str) -> str:
    """A journal time as readers write it: 20 Nov 2026, 12:00 UTC."""
    when = _parse_time(text)
    if when is None:
        return text
    return f"{when.day} {_MONTHS[when.month - 1][:3]} {when.year}, {when:%H:%M} UTC"


def _ordered(area: Area) -> list[Action]:
    """National actions first, then local ones, each in plan order (as the workbooks show them)."""
    return [a for a in area.actions if a.kind == "national"] + [a for a in area.actions if a.kind == "local"]


def _own_criteria(area: Area) -> bool:
    """Whether an area's key criteria say more than its name (in the HMIC plans they are usually the same)."""
    return " ".join(area.key_criteria.split()).casefold() not in ("", " ".join(area.name.split()).casefold())


def _ref(action: Action) -> str:
    return action.ref or action.id


@dataclass
class _AreaCounts:
    area: Area
    counts: Counter[str]
    total: int
    closed: int


class _Doc:
    """The content both formats share, worked out once."""

    def __init__(
        self, plan: Plan, since: Since | None, changes: list[dict[str, Any]] | None, produced: dt.date | None
    ) -> None:
        self.plan = plan
        self.since = since
        self.changes = changes
        self.produced = produced
        closed = plan.closed_statuses()
        self.counts = [
            _AreaCounts(
                area,
                Counter(a.status for a in area.actions),
                len(area.actions),
                sum(a.status in closed for a in area.actions),
            )
            for area in plan.areas
        ]
        used = {s for c in self.counts for s in c.counts}
        # The summary shows the statuses in use, in vocabulary order; the key below it lists them all.
        self.summary_statuses = [s.name for s in plan.statuses if s.name in used]
        self.status_index = {s.name: n for n, s in enumerate(plan.statuses)}
        self.where = {a.id: (area, a) for area, a in plan.iter_actions()}

    def meta_line(self) -> list[tuple[str, str]]:
        items = []
        if self.plan.published:
            items.append(("Published", _long_date(self.plan.published)))
        items.append(("Revision", str(self.plan.revision)))
        if self.produced:
            items.append(("Produced", _long_date(self.produced)))
        return items

    def action_label(self, action_id: str) -> str:
        found = self.where.get(action_id)
        if found is None:
            return action_id
        area, action = found
        local = "local action " if action.kind == "local" else ""
        return f"{area.name}, {local}{_ref(action)}"

    def grouped_changes(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Changes per action, actions in plan order (any no longer in the plan last)."""
        order = {a.id: n for n, (_, a) in enumerate(self.plan.iter_actions())}
        fields = list(FIELD_LABELS)
        groups: dict[str, list[dict[str, Any]]] = {}
        for e in self.changes or []:
            groups.setdefault(str(e.get("action_id", "")), []).append(e)
        for rows in groups.values():
            rows.sort(
                key=lambda e: (int(e.get("revision", 0)), str(e.get("time", "")), fields.index(e["field"]))
            )
        return sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))

    def progress_intro(self) -> str:
        assert self.since is not None
        rows = self.changes or []
        if not rows:
            return f"No changes have been merged since {self.since.label()}."
        revisions = sorted({int(e.get("revision", 0)) for e in rows})
        span = (
            f"revision {revisions[0]}" if len(revisions) == 1 else f"revisions {revisions[0]}–{revisions[-1]}"
        )
        n_actions = len({e.get("action_id") for e in rows})
        return (
            f"{len(rows)} change{'s' if len(rows) != 1 else ''} to {n_actions} "
            f"action{'s' if n_actions != 1 else ''}, merged in {span} from the leads' returns."
        )

    # -- formats -------------------------------------------------------------------------------------------

    def html(self, template_dir: Path | None = None) -> str:
        return render("export.html", html_context(self), template_dir)

    def markdown(self) -> str:
        return _Markdown(self).render()


# -- HTML ----------------------------------------------------------------------------------------------------


def _change_value(entry: dict[str, Any], key: str) -> dict[str, str]:
    """A value of a change as the page template shows it: none, a status (with its swatch) or text."""
    text = str(entry.get(key) or "")
    if not text:
        return {"kind": "none", "text": ""}
    if entry["field"] == "status":
        return {"kind": "status", "text": text}
    if entry["field"] == "due":
        try:
            return {"kind": "text", "text": _long_date(dt.date.fromisoformat(text))}
        except ValueError:
            pass
    return {"kind": "text", "text": text}


def _action_row(a: Action) -> dict[str, Any]:
    return {
        "id": a.id,
        "ref": _ref(a),
        "local": a.kind == "local",
        "action": a.action,
        "response": a.response,
        "target": a.target,
        "due": _long_date(a.due) if a.due else "",
        "leads": list(a.leads),
        "status": a.status,
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def html_context(doc: _Doc) -> dict[str, Any]:
    """Everything the export's page template shows, worked out here so the template only lays it out."""
    p = doc.plan
    counts = doc.counts
    statuses = doc.summary_statuses
    total = sum(c.total for c in counts)
    closed = sum(c.closed for c in counts)
    summary = {
        "statuses": statuses,
        "rows": [
            {
                "id": c.area.id,
                "name": c.area.name,
                "counts": [c.counts[s] for s in statuses],
                "total": c.total,
                "share": f"{round(100 * c.closed / c.total)}%" if c.total else "–",
            }
            for c in counts
        ],
        "totals": [sum(c.counts[s] for c in counts) for s in statuses],
        "total": total,
        "share": f"{round(100 * closed / total)}%" if total else "–",
    }
    progress = None
    if doc.since is not None:
        groups = []
        for action_id, rows in doc.grouped_changes():
            groups.append(
                {
                    "target": f"action-{action_id}" if action_id in doc.where else "",
                    "name": doc.action_label(action_id),
                    "rows": [
                        {
                            "when": _when(str(e.get("time", ""))),
                            "revision": int(e.get("revision", 0)),
                            "by": L.recipient_label(str(e.get("recipient", ""))),
                            "field": FIELD_LABELS[e["field"]],
                            "old": _change_value(e, "old"),
                            "new": _change_value(e, "new"),
                        }
                        for e in rows
                    ],
                }
            )
        progress = {"label": doc.since.label(), "intro": doc.progress_intro(), "groups": groups}
    areas = []
    for area in p.areas:
        actions = _ordered(area)
        national = [a for a in actions if a.kind == "national"]
        local = [a for a in actions if a.kind == "local"]
        groups_: list[tuple[str | None, list[Action]]]
        if not local:
            groups_ = [(None, national)] if national else []
            what = _plural(len(national), "national action")
        else:
            groups_ = [(t, g) for t, g in (("National actions", national), ("Local actions", local)) if g]
            what = f"{len(national)} national and {_plural(len(local), 'local action')}"
        areas.append(
            {
                "id": area.id,
                "name": area.name,
                "criteria": area.key_criteria if _own_criteria(area) else "",
                "counts": what,
                "groups": [(t, [_action_row(a) for a in g]) for t, g in groups_],
            }
        )
    contents = [("summary", "At a glance")]
    if progress is not None:
        contents.append(("progress", f"Progress since {progress['label']}"))
    if p.background.strip():
        contents.append(("background", "Background"))
    contents.append(("capabilities", "Overarching capabilities"))
    contents += [(f"area-{a.id}", a.name) for a in p.areas]
    if p.glossary:
        contents.append(("glossary", "Glossary"))
    return {
        "plan": p,
        "marking": p.classification,
        "kicker": "",
        "meta": doc.meta_line(),
        "produced": _long_date(doc.produced) if doc.produced else "",
        "statuses": p.statuses,
        "status_index": doc.status_index,
        "closed_names": ", ".join(s.name for s in p.statuses if s.closed) or "none",
        "contents": contents,
        "summary": summary,
        "progress": progress,
        "background": paragraphs(p.background),
        "capabilities": {
            "paragraphs": paragraphs(p.overarching_capabilities),
            "rows": [
                {
                    "criteria": a.key_criteria or a.name,
                    "supporting": [s for s in a.supporting_areas if s.strip()],
                }
                for a in p.areas
            ],
        },
        "areas": areas,
        "columns": COLUMNS,
        "glossary": p.glossary,
    }


# -- Markdown ------------------------------------------------------------------------------------------------

# Characters with a meaning inline in GitHub-flavoured Markdown; CommonMark lets any ASCII punctuation be
# escaped with a backslash, so escaping them keeps the text literal. `<`, `>` and `&` become entities so
# no plan text is taken for HTML.
_MD_INLINE = re.compile(r"([\\`*_\[\]|~#])")
# What would start a block (list item, heading underline) at the start of a line of a paragraph, once the
# inline escapes are done (`#`, `*` and `>` are escaped already).
_MD_BULLET = re.compile(r"^[-+=]")
_MD_NUMBERED = re.compile(r"^(\d+)([.)])")


def _md(text: str) -> str:
    """Plan text for a table cell or a heading: escaped, line breaks as <br>."""
    out = html.escape(_MD_INLINE.sub(r"\\\1", _norm(text)), quote=False)
    return "<br>".join(out.split("\n"))


def _md_para(text: str) -> str:
    """A paragraph: each line escaped, its leading spaces dropped (Markdown would read them as code), and
    joined with hard breaks."""
    lines = []
    for line in _norm(text).split("\n"):
        line = _md(line.strip())
        if not line:
            continue
        line = _MD_NUMBERED.sub(r"\1\\\2", _MD_BULLET.sub(r"\\\g<0>", line))
        lines.append(line)
    return "<br>\n".join(lines)


def _md_paras(text: str) -> list[str]:
    return [_md_para(p) for p in re.split(r"\n\s*\n", _norm(text).strip()) if p.strip()]


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: bool = False) -> str:
    """A GFM table of escaped cells; `numeric` right-aligns every column after the first."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c if c else " " for c in cells) + " |"

    marks = ["---"] + ["---:" if numeric else "---"] * (len(header) - 1)
    return "\n".join([line(header), line(marks), *(line(r) for r in rows)])


class _Markdown:
    def __init__(self, doc: _Doc) -> None:
        self.doc = doc
        self.plan = doc.plan

    def render(self) -> str:
        p, d = self.plan, self.doc
        mark = f"**{_md(p.classification)}**"
        out = [mark, "", f"# {_md(' '.join(p.title.split()))}", ""]
        if p.force.strip():
            out += [f"**Force:** {_md(p.force)}", ""]
        out += [" · ".join(f"**{k}:** {_md(v)}" for k, v in d.meta_line()), ""]
        out += self.summary()
        if d.since is not None:
            out += self.progress()
        if p.background.strip():
            out += ["## Background", ""]
            for para in _md_paras(p.background):
                out += [para, ""]
        out += self.capabilities()
        for area in p.areas:
            out += self.area(area)
        if p.glossary:
            out += ["## Glossary", ""]
            out += [
                _md_table(["Term", "Meaning"], [[_md(g.term), _md(g.definition)] for g in p.glossary]),
                "",
            ]
        out += [
            "---",
            "",
            f"Produced by daplan from revision {p.revision} of the plan"
            + (f" on {_long_date(d.produced)}." if d.produced else "."),
            "",
            mark,
            "",
        ]
        return "\n".join(out)

    def summary(self) -> list[str]:
        d = self.doc
        statuses = d.summary_statuses
        rows = []
        for c in d.counts:
            share = f"{round(100 * c.closed / c.total)}%" if c.total else "–"
            rows.append([_md(c.area.name), *(str(c.counts[s]) for s in statuses), str(c.total), share])
        total = sum(c.total for c in d.counts)
        closed = sum(c.closed for c in d.counts)
        rows.append(
            [
                "**All areas**",
                *(f"**{sum(c.counts[s] for c in d.counts)}**" for s in statuses),
                f"**{total}**",
                f"**{round(100 * closed / total)}%**" if total else "–",
            ]
        )
        header = ["Area", *(_md(s) for s in statuses), "Total", "Closed"]
        closed_names = ", ".join(s.name for s in self.plan.statuses if s.closed) or "none"
        key = [
            f"- **{_md(s.name)}**: {_md(s.meaning)}" if s.meaning else f"- **{_md(s.name)}**"
            for s in self.plan.statuses
        ]
        return [
            "## At a glance",
            "",
            f"Actions by status in each capability area. Closed: the share of actions marked {_md(closed_names)}.",
            "",
            _md_table(header, rows, numeric=True),
            "",
            "Status key:",
            "",
            *key,
            "",
        ]

    def progress(self) -> list[str]:
        d = self.doc
        assert d.since is not None
        out = [f"## Progress since {_md(d.since.label())}", "", _md(d.progress_intro()), ""]
        rows = []
        for action_id, entries in d.grouped_changes():
            for e in entries:
                rows.append(
                    [
                        _md(d.action_label(action_id)),
                        f"{_md(_when(str(e.get('time', ''))))}<br>revision {int(e.get('revision', 0))}",
                        _md(L.recipient_label(str(e.get("recipient", "")))),
                        FIELD_LABELS[e["field"]],
                        _md(str(e.get("old") or "")),
                        _md(str(e.get("new") or "")),
                    ]
                )
        if rows:
            out += [_md_table(["Action", "When", "By", "Field", "Was", "Now"], rows), ""]
        return out

    def capabilities(self) -> list[str]:
        out = ["## Overarching capabilities", ""]
        for para in _md_paras(self.plan.overarching_capabilities):
            out += [para, ""]
        rows = [
            [
                _md(a.key_criteria or a.name),
                "<br>".join(f"• {_md(s)}" for s in a.supporting_areas if s.strip()),
            ]
            for a in self.plan.areas
        ]
        return [*out, _md_table(["Key criteria", "Supporting areas"], rows), ""]

    def area(self, area: Area) -> list[str]:
        out = [f"## {_md(area.name)}", ""]
        if _own_criteria(area):
            out += [f"**Key criteria:** {_md(area.key_criteria)}", ""]
        rows = []
        for a in _ordered(area):
            ref = _md(_ref(a)) + (" **(local)**" if a.kind == "local" else "")
            target = _md(a.target) if a.target.strip() else ""
            if a.due:
                target += ("<br>" if target else "") + f"Due {_long_date(a.due)}"
            rows.append(
                [
                    ref,
                    _md(a.action),
                    _md(a.response),
                    target,
                    "<br>".join(_md(x) for x in a.leads),
                    _md(a.status),
                ]
            )
        if rows:
            out += [_md_table(COLUMNS, rows), ""]
        else:
            out += ["No actions.", ""]
        return out
