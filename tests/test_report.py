"""`daplan report`: the board report as PDF and HTML, from the record."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from apps import chromium_pdf, png_is_blank, require
from click.testing import CliRunner, Result
from conftest import EXAMPLES, make_plan
from returns import Loop
from test_export import Page, assert_one_line_error, contrast, norm

from daplan_xlsx import journal as J
from daplan_xlsx.cli import cli
from daplan_xlsx.merge import commit_merge, merge_returns
from daplan_xlsx.model import Plan
from daplan_xlsx.pages import TEMPLATE_FOLDER
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.report import (
    BoardSince,
    Since,
    render_html,
    report_content,
    since_point,
    state_at,
    trend,
    write_report,
)

ROUND_1 = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.timezone.utc)
ROUND_2 = dt.datetime(2026, 11, 20, 16, 45, tzinfo=dt.timezone.utc)
LATER = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.timezone.utc)
TODAY = LATER.date()
NEW_RESPONSE = "Round one: the review board met in October.\nMinutes | <b>actions</b> are published."


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan")


def merge(loop: Loop, files: list[Path], now: dt.datetime) -> None:
    plan = loop.plan
    result = merge_returns(plan, files, journal=J.read_journal(loop.journal, plan.revision), now=now)
    commit_merge(loop.plan_path, result)


def board_plan() -> Plan:
    """The small plan with an action off track and overdue, one at risk, and one closed."""
    data = make_plan(n_local=2).model_dump()
    lg = data["areas"][0]["actions"]
    lg[2]["status"], lg[2]["due"] = "Off track", dt.date(2026, 10, 1)
    lg[3]["status"] = "At risk"
    return Plan.model_validate(data)


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    """Two merges: LG-2 goes at risk with a new response (10 Nov), IC-1 closes (20 Nov)."""
    loop = Loop(tmp_path_factory.mktemp("board"), board_plan(), clock=lambda: ROUND_1)
    edits = {("LG-2", "response"): NEW_RESPONSE, ("LG-2", "status"): "At risk"}
    merge(loop, [loop.returned("Head of Protect", edits)], ROUND_1)
    edits = {("IC-1", "status"): "Complete", ("IC-1", "notes"): "Working note, not for the board"}
    merge(loop, [loop.returned("Area Commanders", edits)], ROUND_2)
    assert loop.plan.revision == 3
    return loop


def content_of(loop: Loop, since: str | None = None) -> dict[str, Any]:
    plan = loop.plan
    entries = J.read_journal(loop.journal, plan.revision)
    return report_content(plan, entries, today=TODAY, since=since_point(since, plan, entries, TODAY))


# -- what it says -----------------------------------------------------------------------------------------


def test_headline_figures_and_exceptions(merged: Loop) -> None:
    c = content_of(merged)
    hl = c["headline"]
    assert (hl["total"], hl["closed"], hl["off_track"], hl["at_risk"], hl["overdue"]) == (5, 2, 1, 2, 2)
    assert hl["share"] == 40
    # Off track first, then overdue, at risk; each action once, with every reason, its lead and due date.
    rows = [(e["id"], e["reasons"][0]) for e in c["exceptions"]]
    assert rows == [
        ("LG-L1", "Off track"),
        ("LG-2", "Overdue by 11 years"),
        ("LG-L2", "At risk"),
    ]
    first = c["exceptions"][0]
    assert first["reasons"] == ["Off track", "Overdue by 7 weeks"]
    assert first["leads"] == ["Area Commanders"] and first["due"] == "1 October 2026"
    assert c["exceptions"][1]["reasons"] == ["Overdue by 11 years", "At risk"]


def test_changes_since_the_start_per_action_without_notes(merged: Loop) -> None:
    c = content_of(merged)
    assert c["since"] == "the start of the plan's record"
    changes = {g["id"]: g["lines"] for g in c["changes"]}
    assert list(changes) == ["LG-2", "IC-1"]  # plan order
    assert changes["LG-2"][0] == {
        "field": "Response",
        "by": "Head of Protect",
        "when": "10 Nov 2026",
        "was": "",
        "now": "",
        "text": NEW_RESPONSE,
    }
    assert (changes["LG-2"][1]["was"], changes["LG-2"][1]["now"]) == ("On track", "At risk")
    assert [line["field"] for line in changes["IC-1"]] == ["Status"]
    assert "Working note" not in json.dumps(c)


@pytest.mark.parametrize(
    ("since", "label", "ids"),
    [
        ("2", "revision 2", ["IC-1"]),
        ("2026-11-15", "15 November 2026", ["IC-1"]),
        ("3", "revision 3", []),
        ("1", "revision 1", ["LG-2", "IC-1"]),
    ],
)
def test_since_a_revision_or_a_day(merged: Loop, since: str, label: str, ids: list[str]) -> None:
    c = content_of(merged, since)
    assert c["since"] == label
    assert [g["id"] for g in c["changes"]] == ids


def test_trend_by_day_without_rounds(merged: Loop) -> None:
    plan = merged.plan
    entries = J.read_journal(merged.journal, plan.revision)
    kind, points = trend(plan, entries, TODAY)
    assert kind == "dates"
    assert [(p.label, p.closed, p.at_risk) for p in points] == [
        ("Before 10 Nov 2026", 1, 1),
        ("Before 20 Nov 2026", 1, 2),
        ("Now", 2, 2),
    ]


def test_trend_and_since_over_rounds() -> None:
    """With `round` lines (written by `daplan distribute --round`), the trend is per round."""
    plan = board_plan()
    entries: list[dict[str, Any]] = [
        {
            "event": "round",
            "time": "2026-09-01T09:00:00+00:00",
            "revision": 1,
            "name": "2026 Q3",
            "return_by": "2026-09-20",
            "issues": [],
        },
        {
            "event": "change",
            "time": "2026-09-15T09:00:00+00:00",
            "revision": 2,
            "action_id": "IC-1",
            "field": "status",
            "old": "On track",
            "new": "Not started",
            "recipient": "Area Commanders",
        },
        {
            "event": "round",
            "time": "2026-10-01T09:00:00+00:00",
            "revision": 2,
            "name": "2026 Q4",
            "return_by": "2026-10-20",
            "issues": [],
        },
        {
            "event": "change",
            "time": "2026-10-10T09:00:00+00:00",
            "revision": 3,
            "action_id": "LG-L1",
            "field": "status",
            "old": "On track",
            "new": "Off track",
            "recipient": "Area Commanders",
        },
        {
            "event": "change",
            "time": "2026-10-10T09:00:00+00:00",
            "revision": 3,
            "action_id": "LG-L1",
            "field": "due",
            "old": "",
            "new": "2026-10-01",
            "recipient": "Area Commanders",
        },
    ]
    data = plan.model_dump()
    data["revision"] = 3
    plan = Plan.model_validate(data)
    assert state_at(plan, entries, 2)["LG-L1"] == ("On track", None)
    assert state_at(plan, entries, 1)["IC-1"] == ("On track", None)
    kind, points = trend(plan, entries, TODAY)
    assert kind == "rounds"
    assert [(p.label, p.off_track, p.overdue) for p in points] == [
        ("2026 Q3 (issued 1 Sep 2026)", 0, 1),
        ("2026 Q4 (issued 1 Oct 2026)", 0, 1),
        ("Now", 1, 2),
    ]
    start = since_point("2026 q4", plan, entries, TODAY)
    assert start == BoardSince(Since(revision=2), "round 2026 Q4")
    c = report_content(plan, entries, today=TODAY, since=start)
    assert [g["id"] for g in c["changes"]] == ["LG-L1"]
    assert c["trend"]["summary"].startswith("20% of actions are closed, the same as 2026 Q4")


# -- the HTML ---------------------------------------------------------------------------------------------


def expected_occurrences(c: dict[str, Any]) -> Counter[str]:
    """How often each action's text is shown: once per section that lists the action."""
    return Counter(norm(e["action"]) for section in ("exceptions", "changes") for e in c[section])


@pytest.mark.parametrize("since", [None, "2"])
def test_html_holds_each_action_text_once_per_occurrence(merged: Loop, since: str | None) -> None:
    c = content_of(merged, since)
    page = Page(render_html(c))
    expected = expected_occurrences(c)
    assert expected  # the plan has exceptions to show
    cells = Counter()
    for cell in page.cells:
        for text in expected:
            cells[text] += cell.text.count(text)
    assert cells == expected
    plan = merged.plan
    for _, a in plan.iter_actions():
        assert page.text.count(norm(a.action)) == expected[norm(a.action)], a.id
    # The new response is shown as written, escaped, once.
    if since is None:
        assert page.text.count(NEW_RESPONSE) == 1 and "<b>actions</b>" in page.text


def test_html_is_accessible(merged: Loop) -> None:
    c = content_of(merged)
    html = render_html(c)
    page = Page(html)
    assert ("html", {"lang": "en-GB"}) in page.tags
    assert len([t for t, _ in page.tags if t == "h1"]) == 1
    assert page.tables
    for table in page.tables:
        assert table.caption and table.caption.strip() and table.caption_first
        ths = [cell for row in table.rows for cell in row if cell.tag == "th"]
        assert ths and all(cell.attrs.get("scope") in ("col", "row") for cell in ths), table.caption
    # The chart is a described image, and its figures are also a table.
    svg = next(a for t, a in page.tags if t == "svg")
    assert svg["role"] == "img" and svg.get("aria-labelledby")
    # Every status chip's text colour against its fill meets WCAG AA (4.5:1), as the page's CSS sets them.
    chips = re.findall(r'class="chip" style="background:(#[0-9A-Fa-f]{6});color:(#[0-9A-Fa-f]{6})"', html)
    assert {bg for bg, _ in chips} >= {s.colour for s in merged.plan.statuses if s.name in html}
    for bg, fg in chips:
        assert contrast(bg, fg) >= 4.5, (bg, fg)
    # The text colours of the shared stylesheet against white and the tint.
    css = (TEMPLATE_FOLDER / "style.css").read_text(encoding="utf-8") + page.style
    colours = dict(re.findall(r"--([a-z]+):(#[0-9a-f]{6})", css))
    for name in ("ink", "muted", "navy", "late"):
        assert contrast(colours[name], "#ffffff") >= 4.5, name
        assert contrast(colours[name], colours["tint"]) >= 4.5, name
    # Self-contained: nothing loaded, no script.
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe")]


def test_default_status_colours_meet_aa_with_their_text() -> None:
    from daplan_xlsx.writer import contrast_colour

    for status in make_plan().statuses:
        assert contrast(status.colour, contrast_colour(status.colour)) >= 4.5, status.name


# -- writing, recording, the command -----------------------------------------------------------------------


def copy_of(loop: Loop, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    plan_path = root / "plan.yaml"
    plan_path.write_bytes(loop.plan_path.read_bytes())
    J.journal_path(plan_path).write_bytes(loop.journal.read_bytes())
    return plan_path


def test_a_report_is_a_publication_and_the_next_reports_since_it(merged: Loop, tmp_path: Path) -> None:
    plan_path = copy_of(merged, tmp_path / "rec")
    out = tmp_path / "board.html"
    info = write_report(load_plan(plan_path), plan_path, out, clock=lambda: LATER)
    assert (info.format, info.changes, info.exceptions) == ("html", 2, 3)
    last = J.read_journal(J.journal_path(plan_path), 3)[-1]
    assert last == {
        "event": "publish",
        "time": LATER.isoformat(),
        "revision": 3,
        "file": str(out),
        "format": "html",
    }
    again = write_report(load_plan(plan_path), plan_path, out, clock=lambda: LATER)
    assert again.changes == 0 and again.since == "the last board (25 November 2026)"
    assert (
        "No change to a published field has been merged since the last board"
        in Page(out.read_text(encoding="utf-8")).text
    )


def test_cli_report_with_outbox(merged: Loop, tmp_path: Path) -> None:
    plan_path = copy_of(merged, tmp_path / "rec")
    out = tmp_path / "board.html"
    result = run("report", plan_path, "-o", out, "--since", "1", "--outbox", merged.outbox)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Wrote {out}: board report, revision 3, 3 action(s) needing attention, 2 changed since revision 1.\n"
    )
    page = Page(out.read_text(encoding="utf-8"))
    returns = next(t for t in page.tables if t.section == "returns")
    recipients = [row[0].text for row in returns.rows[1:]]
    assert recipients == sorted(
        r for r in merged.recipients() if r not in ("Head of Protect", "Area Commanders")
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-o", "{tmp}/board.docx"], ["cannot tell the report's format", "a .pdf or .html file"]),
        (["-o", "{tmp}/board.pdf", "--since", "soon"], ["--since 'soon' is neither"]),
        (["-o", "{tmp}/board.pdf", "--since", "9"], ["has no revision 9"]),
        (["-o", "{tmp}/plan.yaml"], ["would replace the plan's own file"]),
        (["-o", "{tmp}/missing/board.pdf"], ["folder does not exist"]),
        (["-o", "{tmp}/board.pdf", "--template", "{tmp}/nope"], ["the template folder does not exist"]),
    ],
)
def test_cli_refuses_bad_input(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    plan_path = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan_path)
    result = run("report", plan_path, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert_one_line_error(result, *fragments)
    assert not J.journal_path(plan_path).exists()
    assert not list(tmp_path.glob("board.*"))


def test_a_template_folder_changes_the_header_of_both(merged: Loop, tmp_path: Path) -> None:
    plan_path = copy_of(merged, tmp_path / "rec")
    folder = tmp_path / "ours"
    folder.mkdir()
    (folder / "header.html").write_text(
        "<header><h1>Ours: {{ plan.title }}</h1></header>\n", encoding="utf-8"
    )
    typ = (TEMPLATE_FOLDER / "report.typ").read_text(encoding="utf-8")
    (folder / "report.typ").write_text(
        typ.replace("[Board report, #r.as_at]", "[Our force board pack]"), encoding="utf-8"
    )
    html = tmp_path / "board.html"
    assert run("report", plan_path, "-o", html, "--template", folder).exit_code == 0
    assert "<h1>Ours: " in html.read_text(encoding="utf-8")
    pdf = tmp_path / "board.pdf"
    assert run("report", plan_path, "-o", pdf, "--template", folder).exit_code == 0
    assert "Our force board pack" in pdf_text(pdf)


def test_a_broken_report_template_is_one_line(merged: Loop, tmp_path: Path) -> None:
    plan_path = copy_of(merged, tmp_path / "rec")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "report.typ").write_text(
        "#let r = json(bytes(sys.inputs.report))\n\n#text(r.title\n", encoding="utf-8"
    )
    (folder / "report.html").write_text(
        '{% extends "base.html" %}\n{% block main %}{{ title }\n', encoding="utf-8"
    )
    for name, fragment in (("board.pdf", "report.typ"), ("board.html", "report.html")):
        result = run("report", plan_path, "-o", tmp_path / name, "--template", folder)
        assert_one_line_error(result, fragment, "remove the file to use the built-in template")
        assert not (tmp_path / name).exists()


# -- on paper ---------------------------------------------------------------------------------------------


def pdf_text(pdf: Path) -> str:
    pdftotext = require("pdftotext")
    return subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def smallest_text(pdf: Path) -> float:
    """The size of the smallest character printed on any page, in points."""
    import pdfplumber

    with pdfplumber.open(pdf) as doc:
        return min(round(c["size"], 1) for page in doc.pages for c in page.chars if c["text"].strip())


def assert_pages_not_blank(pdf: Path, tmp_path: Path) -> int:
    pdftoppm = require("pdftoppm")
    subprocess.run([pdftoppm, "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs and not any(png_is_blank(p) for p in pngs)
    return len(pngs)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_pdf_reads_on_a4(example: Path, tmp_path: Path) -> None:
    loop = Loop(tmp_path / "rec", load_plan(example), clock=lambda: ROUND_1)
    recipient = loop.recipients()[0]
    action = loop.scope(recipient)[0]
    merge(loop, [loop.returned(recipient, {(action, "status"): "Off track"})], ROUND_2)
    pdf = tmp_path / "board.pdf"
    write_report(loop.plan, loop.plan_path, pdf, outbox=loop.outbox, inbox=loop.inbox, clock=lambda: LATER)
    pages = assert_pages_not_blank(pdf, tmp_path)
    assert 2 <= pages <= 8
    assert smallest_text(pdf) >= 9
    text = pdf_text(pdf)
    bodies = [p for p in text.split("\f") if p.strip()]
    assert len(bodies) == pages
    for n, body in enumerate(bodies, start=1):
        assert body.count(loop.plan.classification) >= 2, n  # the marking at the top and the bottom
        assert f"Page {n} of {pages}" in body
    assert "What needs the board" in text and "Returns outstanding" in text


@pytest.mark.slow
def test_the_html_prints_from_chromium(merged: Loop, tmp_path: Path) -> None:
    page = tmp_path / "board.html"
    page.write_text(render_html(content_of(merged)), encoding="utf-8")
    pdf = chromium_pdf(page, tmp_path / "board.pdf", tmp_path / "profile")
    pages = assert_pages_not_blank(pdf, tmp_path)
    text = pdf_text(pdf)
    for n, body in enumerate([p for p in text.split("\f") if p.strip()], start=1):
        assert body.count("OFFICIAL") >= 2 and f"Page {n} of {pages}" in body
    assert smallest_text(pdf) >= 9
