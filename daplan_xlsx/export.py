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
from .errors import DaplanError
from .model import Action, Area, Plan
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
) -> str:
    """The plan as a publishable document in `fmt` ("html" or "md").

    With `since`, a "Progress since …" section lists the changes in `journal` (the lines of
    `journal.read_journal`) merged after that point. `produced` is the date printed as the day it was made.
    """
    if fmt not in FORMATS:
        raise DaplanError(f"unknown format {fmt!r}", hint="use --format html or --format md")
    changes = progress_entries(journal, since) if since is not None else None
    doc = _Doc(plan, since, changes, produced)
    return doc.html() if fmt == "html" else doc.markdown()


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
) -> ExportInfo:
    """Write the export atomically and record the publication in the plan's journal."""
    output = Path(output)
    fmt = format_for(output, fmt)
    now = clock()
    journal_file = J.journal_path(real_plan_path(Path(plan_path)))
    check_output(output, plan_path=Path(plan_path), what=f".{fmt} file")
    parsed = parse_since(since, plan, now.date()) if since is not None else None
    entries = J.read_journal(journal_file, plan.revision) if parsed is not None else []
    text = export_plan(plan, fmt, since=parsed, journal=entries, produced=now.date())
    from .planfile import atomic_write_bytes

    try:
        atomic_write_bytes(output, text.encode("utf-8"))
    except OSError as exc:
        raise DaplanError(
            f"cannot write the export: {exc.strerror or exc}",
            file=output,
            hint="choose a folder you can write to",
        ) from exc
    time = now.isoformat()
    entry = {"event": "publish", "time": time, "revision": plan.revision, "file": str(output), "format": fmt}
    append_lines(Path(plan_path), [entry])
    listed = len(progress_entries(entries, parsed)) if parsed is not None else None
    return ExportInfo(output, fmt, plan.revision, listed, time)


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

    def html(self) -> str:
        return _Html(self).render()

    def markdown(self) -> str:
        return _Markdown(self).render()


# -- HTML ----------------------------------------------------------------------------------------------------

_CSS = """
:root{--ink:#0b0c0c;--muted:#505a5f;--rule:#b1b4b6;--navy:#1f3864;--tint:#f1f4f9;--local:#8a4b08}
*,*::before,*::after{box-sizing:border-box}
html{font-family:Arial,"Liberation Sans","Nimbus Sans","Helvetica Neue",Helvetica,sans-serif;font-size:100%;
 line-height:1.45;color:var(--ink);background:#fff;-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0 auto;max-width:80rem;padding:1.25rem 1.5rem 2.5rem}
.marking{display:block;width:fit-content;min-width:12rem;margin:0 auto 1.75rem;padding:.2rem 1rem;
 border:.125rem solid var(--ink);font-weight:700;letter-spacing:.08em;text-align:center}
.marking.foot{margin:2.5rem auto 0}
header{border-bottom:.25rem solid var(--navy);padding-bottom:1rem;margin-bottom:1.5rem}
.force{margin:0 0 .35rem;font-size:1rem;font-weight:700;letter-spacing:.06em;text-transform:uppercase;color:var(--muted)}
h1{margin:0 0 .75rem;font-size:2rem;line-height:1.2;color:var(--navy)}
h2{margin:2.5rem 0 .75rem;font-size:1.5rem;line-height:1.25;color:var(--navy);
 padding-bottom:.3rem;border-bottom:.0625rem solid var(--rule)}
h3{margin:1.5rem 0 .5rem;font-size:1.15rem;color:var(--navy)}
p{margin:0 0 .85rem;max-width:48rem}
.meta{display:flex;flex-wrap:wrap;gap:.25rem 2rem;margin:0;padding:0;list-style:none;color:var(--muted)}
.meta b{color:var(--ink)}
nav ol{margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:.35rem 1.5rem}
nav h2{font-size:1rem;margin:0 0 .35rem;border:0;padding:0;color:var(--ink)}
a{color:#1d4f91;text-underline-offset:.15em}
a:focus-visible,.scroll:focus-visible{outline:.1875rem solid #fd0;outline-offset:0;box-shadow:0 0 0 .3rem var(--ink)}
.area-intro{color:var(--muted);margin:0 0 .75rem}
.area-intro b{color:var(--ink)}
.scroll{overflow-x:auto;margin:0 0 1.5rem}
table{border-collapse:collapse;width:100%;font-size:.9375rem}
caption{caption-side:top;text-align:left;padding:0 0 .4rem;color:var(--muted);font-size:.9375rem}
th,td{padding:.5rem .6rem;text-align:left;vertical-align:top;border-bottom:.0625rem solid var(--rule);
 overflow-wrap:break-word}
thead th{background:var(--tint);border-bottom:.125rem solid var(--navy);font-weight:700;white-space:nowrap}
tbody th{font-weight:700}
.plan{min-width:46rem}
.plan .c-ref{width:5.5rem}
.plan .c-action{width:28%}
.plan .c-response{width:36%}
.plan .c-target{width:8.5rem}
.plan .c-lead{width:10rem}
.plan .c-status{white-space:nowrap}
th.group{background:#fff;color:var(--navy);font-size:.875rem;letter-spacing:.04em;text-transform:uppercase;
 padding-top:1rem;border-bottom:.0625rem solid var(--navy)}
tr.local>*:first-child{border-left:.25rem solid var(--local)}
.tag{display:inline-block;margin-top:.2rem;padding:0 .3rem;border:.0625rem solid var(--local);border-radius:.2rem;
 color:var(--local);font-size:.75rem;font-weight:700;letter-spacing:.05em;text-transform:uppercase}
.supporting{margin:0;padding-left:1.1rem}
.supporting li{margin:0 0 .15rem}
.summary{max-width:60rem}
.caps thead th:first-child{width:34%}
.sub{color:var(--muted);font-size:.875rem}
.none{color:var(--muted)}
.sw{display:inline-block;width:0;height:0;border:.42em solid;outline:.0625rem solid var(--ink);
 vertical-align:-.05em;margin-right:.45em;print-color-adjust:exact;-webkit-print-color-adjust:exact}
.stat{white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}
.zero{color:var(--muted)}
tfoot th,tfoot td{border-top:.125rem solid var(--ink);border-bottom:0;font-weight:700}
.summary thead th{white-space:normal}
.key{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1.25rem;margin:0 0 1.5rem;max-width:48rem}
.key div{display:contents}
.key dt{font-weight:700;white-space:nowrap}.key dd{margin:0;color:var(--muted)}
.was{color:var(--muted)}
.vh{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);
 white-space:nowrap}
footer{margin-top:2.5rem;color:var(--muted);font-size:.875rem;text-align:center}
@media (max-width:40em){body{padding:1rem .75rem 2rem}h1{font-size:1.6rem}.meta{display:block}}
@media print{
 @page{size:A4 landscape;margin:16mm 12mm 16mm;
  @top-center{content:"__MARK__";font:700 10pt Arial,sans-serif;letter-spacing:.08em}
  @bottom-center{content:"__MARK__";font:700 10pt Arial,sans-serif;letter-spacing:.08em}
  @bottom-right{content:"Page " counter(page) " of " counter(pages);font:9pt Arial,sans-serif}}
 html{font-size:10pt;background:none}
 body{max-width:none;padding:0}
 nav,.marking.foot{display:none}
 a{color:inherit;text-decoration:none}
 .scroll{overflow:visible}
 h2,h3,caption{break-after:avoid;page-break-after:avoid}
 tr,th,td,.key div{break-inside:avoid;page-break-inside:avoid}
 thead{display:table-header-group}
 thead th{background:none}
 th.group{padding-top:.5rem}
 .plan{min-width:0}
 section.area{break-before:page}
}
"""


def _css_string(text: str) -> str:
    """Text for a CSS string inside <style>: anything but plain characters as a hex escape, so no quote,
    backslash or `</style>` in a plan can end the string or the element."""
    return "".join(c if c.isalnum() or c in " .,-()" else f"\\{ord(c):x} " for c in " ".join(text.split()))


def _e(text: str) -> str:
    """Plan text as HTML: escaped, its line breaks kept."""
    return "<br>".join(html.escape(line) for line in _norm(text).split("\n"))


def _none() -> str:
    return '<span class="none" aria-hidden="true">—</span><span class="vh">None</span>'


class _Html:
    def __init__(self, doc: _Doc) -> None:
        self.doc = doc
        self.plan = doc.plan

    def swatch(self, status: str) -> str:
        n = self.doc.status_index.get(status)
        cls = f" st-{n}" if n is not None else ""
        return (
            f'<span class="stat"><span class="sw{cls}" aria-hidden="true"></span>{html.escape(status)}</span>'
        )

    def css(self) -> str:
        colours = "".join(f".st-{n}{{border-color:{s.colour}}}" for n, s in enumerate(self.plan.statuses))
        return _CSS.replace("__MARK__", _css_string(self.plan.classification)) + colours + "\n"

    def render(self) -> str:
        p = self.plan
        mark = html.escape(p.classification)
        sections = [self.summary()]
        if self.doc.since is not None:
            sections.append(self.progress())
        if p.background.strip():
            sections.append(self.prose("background", "Background", p.background))
        sections.append(self.capabilities())
        sections += [self.area(area) for area in p.areas]
        if p.glossary:
            sections.append(self.glossary())
        meta = "".join(f"<li><b>{k}</b> {html.escape(v)}</li>" for k, v in self.doc.meta_line())
        force = f'<p class="force">{html.escape(p.force)}</p>\n' if p.force.strip() else ""
        produced = f" on {_long_date(self.doc.produced)}" if self.doc.produced else ""
        csp = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
            '<meta name="generator" content="daplan">\n'
            f"<title>{html.escape(p.title)} ({mark})</title>\n"
            f"<style>{self.css()}</style>\n</head>\n<body>\n"
            f'<p class="marking" aria-label="Protective marking: {mark}">{mark}</p>\n'
            f"<header>\n{force}<h1>{html.escape(p.title)}</h1>\n"
            f'<ul class="meta">{meta}</ul>\n</header>\n'
            f"{self.contents()}\n<main>\n" + "\n".join(sections) + "\n</main>\n"
            f"<footer>\n<p>Produced by daplan from revision {p.revision} of the plan{produced}.</p>\n"
            f'<p class="marking foot" aria-label="Protective marking: {mark}">{mark}</p>\n</footer>\n'
            "</body>\n</html>\n"
        )

    def contents(self) -> str:
        p = self.plan
        links = [("summary", "At a glance")]
        if self.doc.since is not None:
            links.append(("progress", f"Progress since {self.doc.since.label()}"))
        if p.background.strip():
            links.append(("background", "Background"))
        links.append(("capabilities", "Overarching capabilities"))
        links += [(f"area-{a.id}", a.name) for a in p.areas]
        if p.glossary:
            links.append(("glossary", "Glossary"))
        items = "".join(f'<li><a href="#{html.escape(i)}">{html.escape(t)}</a></li>' for i, t in links)
        return (
            f'<nav aria-labelledby="contents-h">\n<h2 id="contents-h">Contents</h2>\n<ol>{items}</ol>\n</nav>'
        )

    @staticmethod
    def table(caption: str, cid: str, body: str, cls: str = "") -> str:
        """A table in a region that scrolls sideways on its own when the page is too narrow for it."""
        klass = f' class="{cls}"' if cls else ""
        return (
            f'<div class="scroll" role="region" tabindex="0" aria-labelledby="{cid}">\n'
            f'<table{klass}>\n<caption id="{cid}">{caption}</caption>\n{body}</table>\n</div>'
        )

    @staticmethod
    def prose(sid: str, heading: str, text: str) -> str:
        paras = [p for p in re.split(r"\n\s*\n", _norm(text).strip()) if p.strip()]
        body = "\n".join(f"<p>{_e(p)}</p>" for p in paras)
        return f'<section id="{sid}" aria-labelledby="{sid}-h">\n<h2 id="{sid}-h">{heading}</h2>\n{body}\n</section>'

    def summary(self) -> str:
        d = self.doc
        statuses = d.summary_statuses
        head = "".join(f'<th scope="col" class="num">{self.swatch(s)}</th>' for s in statuses)
        rows = []
        for c in d.counts:
            cells = "".join(
                f'<td class="num{"" if c.counts[s] else " zero"}">{c.counts[s]}</td>' for s in statuses
            )
            share = f"{round(100 * c.closed / c.total)}%" if c.total else "–"
            rows.append(
                f'<tr><th scope="row"><a href="#area-{html.escape(c.area.id)}">{html.escape(c.area.name)}</a></th>'
                f'{cells}<td class="num">{c.total}</td><td class="num">{share}</td></tr>'
            )
        total = sum(c.total for c in d.counts)
        closed = sum(c.closed for c in d.counts)
        foot = "".join(f'<td class="num">{sum(c.counts[s] for c in d.counts)}</td>' for s in statuses)
        share = f"{round(100 * closed / total)}%" if total else "–"
        body = (
            f'<thead><tr><th scope="col">Area</th>{head}<th scope="col" class="num">Total</th>'
            f'<th scope="col" class="num">Closed</th></tr></thead>\n'
            f"<tbody>\n" + "\n".join(rows) + "\n</tbody>\n"
            f'<tfoot><tr><th scope="row">All areas</th>{foot}<td class="num">{total}</td>'
            f'<td class="num">{share}</td></tr></tfoot>\n'
        )
        closed_names = ", ".join(s.name for s in self.plan.statuses if s.closed) or "none"
        caption = (
            f"Actions by status in each capability area. Closed: the share of actions marked "
            f"{html.escape(closed_names)}."
        )
        key = "".join(
            f"<div><dt>{self.swatch(s.name)}</dt><dd>{html.escape(s.meaning) or _none()}</dd></div>"
            for s in self.plan.statuses
        )
        return (
            '<section id="summary" aria-labelledby="summary-h">\n<h2 id="summary-h">At a glance</h2>\n'
            f"{self.table(caption, 'summary-c', body, 'summary')}\n"
            f'<h3 id="key-h">Status key</h3>\n<dl class="key" aria-labelledby="key-h">{key}</dl>\n</section>'
        )

    def progress(self) -> str:
        d = self.doc
        assert d.since is not None
        label = html.escape(d.since.label())
        intro = f"<p>{html.escape(d.progress_intro())}</p>"
        groups = d.grouped_changes()
        if not groups:
            return (
                f'<section id="progress" aria-labelledby="progress-h">\n'
                f'<h2 id="progress-h">Progress since {label}</h2>\n{intro}\n</section>'
            )
        bodies = []
        for action_id, rows in groups:
            target = f"action-{action_id}" if action_id in d.where else ""
            name = html.escape(d.action_label(action_id))
            name = f'<a href="#{html.escape(target)}">{name}</a>' if target else name
            lines = []
            for n, e in enumerate(rows):
                head = f'<th scope="rowgroup" rowspan="{len(rows)}">{name}</th>' if n == 0 else ""
                lines.append(
                    f"<tr>{head}<td>{html.escape(_when(str(e.get('time', ''))))}"
                    f'<br><span class="sub">revision {int(e.get("revision", 0))}</span></td>'
                    f"<td>{html.escape(str(e.get('recipient', '')))}</td>"
                    f"<td>{FIELD_LABELS[e['field']]}</td>"
                    f'<td class="was">{self.value(e, "old")}</td><td>{self.value(e, "new")}</td></tr>'
                )
            bodies.append("<tbody>\n" + "\n".join(lines) + "\n</tbody>\n")
        head = "".join(f'<th scope="col">{h}</th>' for h in ("Action", "When", "By", "Field", "Was", "Now"))
        body = f"<thead><tr>{head}</tr></thead>\n" + "".join(bodies)
        caption = f"Changes merged since {label}, by action"
        return (
            f'<section id="progress" aria-labelledby="progress-h">\n'
            f'<h2 id="progress-h">Progress since {label}</h2>\n{intro}\n'
            f"{self.table(caption, 'progress-c', body, 'progress')}\n</section>"
        )

    def value(self, entry: dict[str, Any], key: str) -> str:
        text = str(entry.get(key) or "")
        if not text:
            return _none()
        if entry["field"] == "status":
            return self.swatch(text)
        if entry["field"] == "due":
            try:
                return html.escape(_long_date(dt.date.fromisoformat(text)))
            except ValueError:
                pass
        return _e(text)

    def capabilities(self) -> str:
        rows = []
        for area in self.plan.areas:
            supporting = "".join(f"<li>{_e(s)}</li>" for s in area.supporting_areas if s.strip())
            cell = f'<ul class="supporting">{supporting}</ul>' if supporting else _none()
            rows.append(f'<tr><th scope="row">{_e(area.key_criteria or area.name)}</th><td>{cell}</td></tr>')
        body = (
            '<thead><tr><th scope="col">Key criteria</th><th scope="col">Supporting areas</th></tr></thead>\n'
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n"
        )
        intro = self.plan.overarching_capabilities.strip()
        paras = "".join(f"<p>{_e(p)}</p>\n" for p in re.split(r"\n\s*\n", _norm(intro)) if p.strip())
        caption = "The capability areas with their key criteria and supporting areas"
        return (
            '<section id="capabilities" aria-labelledby="capabilities-h">\n'
            '<h2 id="capabilities-h">Overarching capabilities</h2>\n'
            f"{paras}{self.table(caption, 'capabilities-c', body, 'caps')}\n</section>"
        )

    def area(self, area: Area) -> str:
        aid = html.escape(area.id)
        actions = _ordered(area)
        national = [a for a in actions if a.kind == "national"]
        local = [a for a in actions if a.kind == "local"]
        head = "".join(f'<th scope="col" class="c-{h.lower()}">{h}</th>' for h in COLUMNS)
        body = f"<thead><tr>{head}</tr></thead>\n"
        if not actions:
            body += f'<tbody><tr><td colspan="{len(COLUMNS)}">{_none()}</td></tr></tbody>\n'
        elif not local:
            body += "<tbody>\n" + "\n".join(self.row(a) for a in national) + "\n</tbody>\n"
        else:
            # Row-group headings say which rows are national and which local, in words, not colour.
            for title, group in (("National actions", national), ("Local actions", local)):
                if group:
                    body += (
                        f'<tbody><tr><th scope="rowgroup" colspan="{len(COLUMNS)}" class="group">{title}</th></tr>\n'
                        + "\n".join(self.row(a) for a in group)
                        + "\n</tbody>\n"
                    )
        counts = f"{len(national)} national and {len(local)} local action{'s' if len(local) != 1 else ''}"
        if not local:
            counts = f"{len(national)} national action{'s' if len(national) != 1 else ''}"
        intro_html = ""
        if _own_criteria(area):
            intro_html = f'<p class="area-intro"><b>Key criteria:</b> {_e(area.key_criteria)}</p>\n'
        caption = f"{html.escape(area.name)}: {counts}"
        return (
            f'<section class="area" id="area-{aid}" aria-labelledby="area-{aid}-h">\n'
            f'<h2 id="area-{aid}-h">{html.escape(area.name)}</h2>\n{intro_html}'
            f"{self.table(caption, f'area-{aid}-c', body, 'plan')}\n</section>"
        )

    def row(self, a: Action) -> str:
        local = a.kind == "local"
        tag = ' <span class="tag">Local</span>' if local else ""
        target = _e(a.target) if a.target.strip() else ""
        if a.due:
            target += ("<br>" if target else "") + f'<span class="sub">Due {_long_date(a.due)}</span>'
        leads = "<br>".join(html.escape(name) for name in a.leads)
        klass = ' class="local"' if local else ""
        return (
            f'<tr id="action-{html.escape(a.id)}"{klass}>'
            f'<th scope="row">{html.escape(_ref(a))}{tag}</th>'
            f"<td>{_e(a.action)}</td>"
            f"<td>{_e(a.response) if a.response.strip() else _none()}</td>"
            f"<td>{target or _none()}</td>"
            f"<td>{leads or _none()}</td>"
            f'<td class="c-status">{self.swatch(a.status)}</td></tr>'
        )

    def glossary(self) -> str:
        rows = "\n".join(
            f'<tr><th scope="row">{html.escape(g.term)}</th><td>{_e(g.definition)}</td></tr>'
            for g in self.plan.glossary
        )
        body = (
            '<thead><tr><th scope="col">Term</th><th scope="col">Meaning</th></tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody>\n"
        )
        return (
            '<section id="glossary" aria-labelledby="glossary-h">\n<h2 id="glossary-h">Glossary</h2>\n'
            f"{self.table('Abbreviations and terms used in this plan', 'glossary-c', body)}\n</section>"
        )


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
                        _md(str(e.get("recipient", ""))),
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
