"""`daplan export`: the publishable plan as one self-contained HTML page or GitHub-flavoured Markdown."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from apps import chromium_pdf, chromium_screenshot, png_is_blank, require
from click.testing import CliRunner, Result
from conftest import EXAMPLES, FIXED_TIME, fixed_clock, make_plan
from markupsafe import escape
from returns import Loop

from daplan_xlsx import journal as J
from daplan_xlsx.cli import cli
from daplan_xlsx.errors import DaplanError
from daplan_xlsx.export import Since, export_plan, parse_since, progress_entries, write_export
from daplan_xlsx.merge import commit_merge, merge_returns
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan, save_plan

PLANS: list[tuple[str, Callable[[], Plan]]] = [("make_plan", lambda: make_plan(n_local=2))] + [
    (p.stem, lambda p=p: load_plan(p)) for p in EXAMPLES
]
PLAN_IDS = [name for name, _ in PLANS]
PLAN_MAKERS = [maker for _, maker in PLANS]
FORMATS = ["html", "md"]
SCOPES = {"col", "row", "rowgroup", "colgroup"}
NONE = "—None"  # an empty cell: a dash for the eye, "None" for a screen reader


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan")


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def norm(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- reading an exported page back ------------------------------------------------------------------------


@dataclass
class Cell:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    section: str = ""
    items: list[str] = field(default_factory=list)  # the text of each list item in the cell


@dataclass
class Table:
    attrs: dict[str, str | None]
    section: str
    caption: str | None = None
    caption_id: str | None = None
    caption_first: bool = False
    children: int = 0  # elements opened directly inside the table before its caption
    rows: list[list[Cell]] = field(default_factory=list)
    head_rows: int = 0


class Page(HTMLParser):
    """The parts of an exported HTML page the tests look at: tags, tables and the text of every cell."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: list[Table] = []
        self.cells: list[Cell] = []
        self.body_text: list[str] = []
        self.style = ""
        self.regions: dict[int, dict[str, str | None]] = {}  # table index -> its scrolling region
        self._section = ""
        self._cell: Cell | None = None
        self._cell_parts: list[str] = []
        self._caption: list[str] | None = None
        self._raw: str | None = None  # inside <style> or <title>
        self._in_body = False
        self._in_thead = False
        self._region: dict[str, str | None] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        self.tags.append((tag, attrs))
        if tag in ("style", "title"):
            self._raw = tag
        elif tag == "body":
            self._in_body = True
        elif tag == "section":
            self._section = attrs.get("id") or ""
        elif tag == "div" and attrs.get("role") == "region":
            self._region = attrs
        elif tag == "table":
            self.tables.append(Table(attrs, self._section))
            if self._region is not None:
                self.regions[len(self.tables) - 1] = self._region
        elif tag == "caption":
            t = self.tables[-1]
            t.caption_first = t.children == 0
            t.caption_id = attrs.get("id")
            self._caption = []
        elif tag == "thead":
            self._in_thead = True
        elif tag == "tr":
            self.tables[-1].rows.append([])
            if self._in_thead:
                self.tables[-1].head_rows += 1
        elif tag in ("td", "th"):
            self._cell = Cell(tag, attrs, section=self._section)
            self.tables[-1].rows[-1].append(self._cell)
        elif tag == "br":
            self.handle_data("\n")
        elif tag == "li" and self._cell is not None:
            self._cell.items.append("")
        if tag in ("colgroup", "thead", "tbody", "tfoot", "tr") and self.tables:
            self.tables[-1].children += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None
        elif tag == "caption" and self._caption is not None:
            self.tables[-1].caption = "".join(self._caption)
            self._caption = None
        elif tag == "thead":
            self._in_thead = False
        elif tag == "div":
            self._region = None
        elif tag in ("td", "th") and self._cell is not None:
            self._cell.text = "".join(self._cell_parts)
            self.cells.append(self._cell)
            self._cell = None
            self._cell_parts = []

    def handle_data(self, data: str) -> None:
        if self._raw == "style":
            self.style += data
            return
        if self._raw is not None:
            return
        if self._cell is not None:
            self._cell_parts.append(data)
            if self._cell.items:
                self._cell.items[-1] += data
        if self._caption is not None:
            self._caption.append(data)
        if self._in_body:
            self.body_text.append(data)

    @property
    def text(self) -> str:
        return "".join(self.body_text)

    def cell_texts(self, section_prefix: str = "") -> Counter[str]:
        return Counter(c.text for c in self.cells if c.section.startswith(section_prefix))

    def attr_values(self, name: str) -> list[str]:
        return [str(a[name]) for _, a in self.tags if a.get(name) is not None]


# -- reading exported Markdown back -----------------------------------------------------------------------

_MD_CELL = re.compile(r"((?:\\.|[^\\|])*)\|")
_MD_DELIMITER = re.compile(r"^\|( *:?-{3,}:? *\|)+$")


def md_row(line: str) -> list[str]:
    """A GFM table row's cells, split at pipes not escaped (as cmark-gfm does), still escaped."""
    assert line.startswith("|") and line.endswith("|"), line
    return [c.strip() for c in _MD_CELL.findall(line[1:])]


def md_unescape(text: str) -> str:
    """What a reader sees of escaped Markdown text: <br> is a line break, entities and backslash escapes
    stand for their characters."""
    return re.sub(r"\\(.)", r"\1", html.unescape(text.replace("<br>", "\n")))


def md_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every GFM table: (header cells, body rows), cells unescaped."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and _MD_DELIMITER.match(lines[i + 1]):
            header = md_row(lines[i])
            assert len(md_row(lines[i + 1])) == len(header)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                row = md_row(lines[i])
                assert len(row) == len(header), (lines[i], header)
                rows.append([md_unescape(c) for c in row])
                i += 1
            out.append(([md_unescape(c) for c in header], rows))
        else:
            i += 1
    return out


# -- what the plan should show ----------------------------------------------------------------------------


def action_texts(plan: Plan) -> list[str]:
    return [t for _, a in plan.iter_actions() for t in (a.action, a.response) if t.strip()]


def whole_cells(plan: Plan) -> Counter[str]:
    """How many table cells should hold each text exactly: action, response and (without a due date) target."""
    out: Counter[str] = Counter()
    for _, a in plan.iter_actions():
        out.update(norm(t) for t in (a.action, a.response) if t.strip())
        if a.target.strip() and not a.due:
            out[norm(a.target)] += 1
    return out


def corpus(plan: Plan) -> list[str]:
    """All the plan text an export shows, for counting where a text occurs inside others."""
    texts = [plan.title, plan.force, plan.background, plan.overarching_capabilities]
    for area in plan.areas:
        texts += [area.name, area.key_criteria, *area.supporting_areas]
        for a in area.actions:
            texts += [a.ref, a.action, a.response, a.target, a.status, *a.leads]
    texts += [t for g in plan.glossary for t in (g.term, g.definition)]
    texts += [t for s in plan.statuses for t in (s.name, s.meaning)]
    return [norm(t) for t in texts]


def assert_each_text_once(plan: Plan, cells: Counter[str], doc_text: str) -> None:
    expected = whole_cells(plan)
    texts = corpus(plan)
    for text in action_texts(plan):
        t = norm(text)
        assert cells[t] == expected[t], (t[:60], cells[t], expected[t])
        if len(t) >= 20:
            assert doc_text.count(t) == sum(c.count(t) for c in texts), t[:60]


def hostile_plan() -> Plan:
    """Text a plan may hold that means something in HTML, Markdown, CSS or a spreadsheet."""
    data = make_plan(n_local=1).model_dump()
    data["classification"] = 'OFFICIAL"</style><script>alert(1)</script>'
    data["title"] = "Test | Plan # <b>bold</b> & co"
    data["background"] = (
        "# not a heading\n- not a list\n\n<script>bad()</script>\n===\n1) not a list\n+ nor this"
    )
    lg = data["areas"][0]["actions"]
    lg[0]["action"] = "<script>alert('x')</script> & more"
    lg[0]["response"] = (
        '=HYPERLINK("http://evil.example")|piped|\nsecond *not bold* _x_ [link](http://e.example)\n'
        "- not a list\n1. not a list\n   indented \\ back\\slash"
    )
    lg[1]["action"] = "=1+2 | a pipe | and another"
    lg[1]["response"] = "`code` <img src=x onerror=alert(1)> &amp; already an entity\\"
    lg[2]["action"] = "@local action with <br> typed in and a trailing pipe |"
    data["glossary"].append({"term": "<i>T|</i>", "definition": "a | b\nc &lt;"})
    return Plan.model_validate(data)


# -- both examples, both formats --------------------------------------------------------------------------


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_html_holds_every_action_text_once(make: Callable[[], Plan]) -> None:
    plan = make()
    page = Page(export_plan(plan, "html", produced=FIXED_TIME.date()))
    assert_each_text_once(plan, page.cell_texts(), page.text)


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_markdown_holds_every_action_text_once(make: Callable[[], Plan]) -> None:
    plan = make()
    text = export_plan(plan, "md", produced=FIXED_TIME.date())
    cells = Counter(c for _, rows in md_tables(text) for row in rows for c in row)
    expected = whole_cells(plan)
    for t in action_texts(plan):
        # GitHub trims a cell's outer spaces; everything inside is kept.
        assert cells[norm(t).strip()] == expected[norm(t)], t[:60]
    doc = md_unescape(text)
    texts = corpus(plan)
    for t in action_texts(plan):
        if len(t) >= 20:
            assert doc.count(norm(t)) == sum(c.count(norm(t)) for c in texts), t[:60]


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_html_sections_and_tables(make: Callable[[], Plan]) -> None:
    plan = make()
    out = export_plan(plan, "html", produced=FIXED_TIME.date())
    page = Page(out)
    assert out.startswith("<!DOCTYPE html>\n")
    assert ("html", {"lang": "en-GB"}) in page.tags

    # The marking first, then the title, force, published date and revision.
    body_text = page.text.strip()
    assert body_text.startswith(plan.classification)
    assert body_text.rstrip().endswith(plan.classification)
    h1 = [n for n, (tag, _) in enumerate(page.tags) if tag == "h1"]
    assert len(h1) == 1
    assert plan.title in page.text and plan.force in page.text
    assert "1 September 2014" in page.text and "Revision" in page.text
    assert "Produced" in page.text and "2 November 2026" in page.text

    # Sections: summary, background, capabilities, one per area, glossary.
    sections = [a.get("id") for tag, a in page.tags if tag == "section"]
    expected = ["summary", "background", "capabilities", *(f"area-{a.id}" for a in plan.areas), "glossary"]
    assert sections == [s for s in expected if s != "background" or plan.background.strip()]
    captions = [t.caption or "" for t in page.tables]
    assert len(page.tables) == 3 + len(plan.areas)  # summary, capabilities, areas, glossary

    # Every table: a caption as its first child naming it, header cells with a scope, in a labelled region.
    for n, table in enumerate(page.tables):
        assert table.caption and table.caption.strip(), n
        assert table.caption_first, table.caption
        region = page.regions[n]
        assert region["aria-labelledby"] == table.caption_id and region.get("tabindex") == "0"
        ths = [c for row in table.rows for c in row if c.tag == "th"]
        assert ths and all(c.attrs.get("scope") in SCOPES for c in ths), table.caption
        assert all(c.attrs["scope"] == "col" for c in table.rows[0]), table.caption
        assert table.head_rows == 1

    # One table per area with the published columns, every action a row with its Ref as the row header.
    for area in plan.areas:
        table = next(t for t in page.tables if t.section == f"area-{area.id}")
        assert area.name in (table.caption or "")
        assert [c.text for c in table.rows[0]] == ["Ref", "Action", "Response", "Target", "Lead", "Status"]
        rows = [r for r in table.rows[1:] if len(r) == 6]
        assert len(rows) == len(area.actions)
        for a in area.actions:
            row = next(r for r in rows if r[1].text == norm(a.action))
            assert row[0].tag == "th" and row[0].attrs["scope"] == "row"
            assert row[0].text.startswith(a.ref or a.id)
            assert row[5].text == a.status
            # Several leads are a list, each its own item, never names run together by a line break.
            if len(a.leads) > 1:
                assert row[4].items == a.leads
            else:
                assert row[4].text == (a.leads[0] if a.leads else NONE) and row[4].items == []
    assert any("capability" in c.lower() for c in captions)

    # The overarching capabilities: every area's key criteria with its supporting areas.
    caps = next(t for t in page.tables if t.section == "capabilities")
    for area, row in zip(plan.areas, caps.rows[1:], strict=True):
        assert row[0].tag == "th" and row[0].attrs["scope"] == "row"
        assert row[0].text == (area.key_criteria or area.name)
        assert row[1].text == ("".join(area.supporting_areas) or NONE)

    # The glossary, term by term.
    gloss = next(t for t in page.tables if t.section == "glossary")
    assert [(r[0].text, r[1].text) for r in gloss.rows[1:]] == [(g.term, g.definition) for g in plan.glossary]


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_summary_counts_actions_by_status(make: Callable[[], Plan]) -> None:
    plan = make()
    page = Page(export_plan(plan, "html"))
    table = page.tables[0]
    assert table.section == "summary"
    header = [c.text for c in table.rows[0]]
    used = [s.name for s in plan.statuses if any(a.status == s.name for _, a in plan.iter_actions())]
    assert header == ["Area", *used, "Total", "Closed"]
    closed = plan.closed_statuses()
    for area, row in zip(plan.areas, table.rows[1:-1], strict=True):
        assert row[0].text == area.name
        counts = Counter(a.status for a in area.actions)
        assert [int(c.text) for c in row[1:-1]] == [*(counts[s] for s in used), len(area.actions)]
        share = sum(a.status in closed for a in area.actions) / len(area.actions) if area.actions else None
        assert row[-1].text == (f"{round(100 * share)}%" if share is not None else "–")
    total = table.rows[-1]
    assert total[0].text == "All areas" and int(total[-2].text) == len(plan.iter_actions())


@pytest.mark.parametrize("make", PLAN_MAKERS, ids=PLAN_IDS)
def test_markdown_sections_and_tables(make: Callable[[], Plan]) -> None:
    plan = make()
    text = export_plan(plan, "md", produced=FIXED_TIME.date())
    lines = text.split("\n")
    assert lines[0] == f"**{plan.classification}**" and text.rstrip().endswith(f"**{plan.classification}**")
    assert lines[2] == f"# {plan.title}"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    expected = [
        "At a glance",
        "Background",
        "Overarching capabilities",
        *(a.name for a in plan.areas),
        "Glossary",
    ]
    assert headings == [h for h in expected if h != "Background" or plan.background.strip()]
    assert "**Published:** 1 September 2014" in text and f"**Revision:** {plan.revision}" in text
    tables = md_tables(text)
    area_tables = [t for t in tables if t[0] == ["Ref", "Action", "Response", "Target", "Lead", "Status"]]
    assert len(area_tables) == len([a for a in plan.areas if a.actions])
    for (_, rows), area in zip(area_tables, [a for a in plan.areas if a.actions], strict=True):
        assert len(rows) == len(area.actions)
        for a in area.actions:
            row = next(r for r in rows if r[1] == norm(a.action).strip())
            assert row[5] == a.status and row[4] == "\n".join(a.leads)
            assert row[0] == (f"{a.ref or a.id} **(local)**" if a.kind == "local" else a.ref or a.id)
    caps = next(t for t in tables if t[0] == ["Key criteria", "Supporting areas"])
    assert [r[0] for r in caps[1]] == [a.key_criteria or a.name for a in plan.areas]
    gloss = next(t for t in tables if t[0] == ["Term", "Meaning"])
    assert gloss[1] == [[g.term, g.definition] for g in plan.glossary]


def test_local_actions_are_marked_in_words() -> None:
    plan = make_plan(n_local=2)
    out = export_plan(plan, "html")
    page = Page(out)
    table = next(t for t in page.tables if t.section == "area-LG")
    rows = {r[1].text: r for r in table.rows if len(r) == 6}
    for _, a in plan.iter_actions():
        if a.action in rows:
            ref = rows[a.action][0].text
            assert ref == (f"{a.ref} Local" if a.kind == "local" else a.ref), ref
    groups = [r[0] for r in table.rows if len(r) == 1]
    assert [(c.text, c.attrs.get("scope")) for c in groups] == [
        ("National actions", "rowgroup"),
        ("Local actions", "rowgroup"),
    ]
    # National first, then local, whatever the order in the plan.
    kinds = [
        next(a.kind for _, a in plan.iter_actions() if a.action == r[1].text)
        for r in table.rows[1:]
        if len(r) == 6
    ]
    assert kinds == sorted(kinds, key=lambda k: k == "local")
    # An area without local actions needs no group headings.
    ic = next(t for t in page.tables if t.section == "area-IC")
    assert all(len(r) == 6 for r in ic.rows)


def test_multi_line_text_keeps_its_line_breaks() -> None:
    plan = make_plan()
    response = plan.action_index()["LG-1"].response
    assert "\n" in response
    out = export_plan(plan, "html")
    # Escaped as Jinja2 escapes (a quote as &#34;), each line break a <br>.
    assert "<br>".join(str(escape(line)) for line in response.split("\n")) in out
    md = export_plan(plan, "md")
    assert html.escape(response, quote=False).replace("\n", "<br>") in md


# -- escaping ---------------------------------------------------------------------------------------------


def test_html_escapes_every_plan_text() -> None:
    plan = hostile_plan()
    out = export_plan(plan, "html")
    page = Page(out)
    # Nothing from the plan became markup: the only elements are the export's own.
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "img", "i", "iframe", "object", "embed", "link", "base", "form"}
    assert "<script" not in out.lower() and "<img" not in out.lower() and "<b>bold" not in out
    assert out.count("</style>") == 1
    # The marking reaches the print stylesheet only as escaped CSS text, which reads back as written.
    assert "<" not in page.style
    marks = re.findall(r'-center\{content:"((?:[^"\\]|\\.)*)"', page.style)
    assert len(marks) == 2
    for mark in marks:
        assert re.sub(r"\\([0-9a-f]+) ", lambda m: chr(int(m.group(1), 16)), mark) == plan.classification
    # ... and every text reads back exactly as written.
    assert_each_text_once(plan, page.cell_texts(), page.text)
    assert ("<i>T|</i>", "a | b\nc &lt;") in [(r[0].text, r[1].text) for r in page.tables[-1].rows[1:]]
    assert plan.title in page.text and plan.classification in page.text
    assert "# not a heading\n- not a list" in page.text and "<script>bad()</script>" in page.text
    assert html.escape(plan.title) in out


def test_markdown_escapes_every_plan_text() -> None:
    plan = hostile_plan()
    md = export_plan(plan, "md")
    assert "<script" not in md.lower() and "<img" not in md.lower() and "<i>" not in md and "<b>" not in md
    # Each table row has exactly its columns: every pipe in the text is escaped.
    tables = md_tables(md)
    cells = Counter(c for _, rows in tables for row in rows for c in row)
    expected = whole_cells(plan)
    for t in action_texts(plan):
        assert cells[norm(t).strip()] == expected[norm(t)], t
    gloss = next(t for t in tables if t[0] == ["Term", "Meaning"])
    assert ["<i>T|</i>", "a | b\nc &lt;"] in gloss[1]
    # In paragraphs nothing starts a heading, list, quote or setext underline.
    for line in md.split("\n"):
        if line.startswith(("# not", "- not", "+ nor", "1) not", "===", "<script")):
            raise AssertionError(line)
    doc = md_unescape(md)
    for line in ("# not a heading", "- not a list", "<script>bad()</script>", "===", "1) not a list"):
        assert line in doc
    lines = md.split("\n")
    assert lines[2] == r"# Test \| Plan \# &lt;b&gt;bold&lt;/b&gt; &amp; co"
    assert lines[0] == '**OFFICIAL"&lt;/style&gt;&lt;script&gt;alert(1)&lt;/script&gt;**'


def test_text_that_looks_like_a_formula_stays_text() -> None:
    plan = hostile_plan()
    for fmt in FORMATS:
        out = export_plan(plan, fmt)
        assert "=1+2" in out and "=HYPERLINK(" in out


# -- self-contained, accessible, printable ----------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_html_is_self_contained() -> None:
    plan = hostile_plan()
    page = Page(export_plan(plan, "html"))
    # No scripts, no external resources: every link is to a place in the page, nothing has a src.
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "img", "object", "embed")]
    assert page.attr_values("src") == []
    assert all(h.startswith("#") for h in page.attr_values("href"))
    ids = set(page.attr_values("id"))
    assert {h[1:] for h in page.attr_values("href")} <= ids
    assert not any(k.startswith("on") for _, a in page.tags for k in a)
    assert "url(" not in page.style and "@import" not in page.style
    csp = next(
        a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp and "default-src 'none'" in csp and "script-src" not in csp


def test_html_reads_at_200_percent_and_prints() -> None:
    page = Page(export_plan(make_plan(), "html"))
    css = page.style
    # Relative units for text and layout: the only pixel lengths are the 1px of the visually-hidden text.
    assert set(re.findall(r"\b\d+(?:\.\d+)?px\b", css)) <= {"1px"}
    assert "width=device-width" in " ".join(page.attr_values("content"))
    assert ".scroll{overflow-x:auto" in css  # wide tables scroll inside their region, not the page
    # Print: marking on every page, header rows repeated, rows never split, no reliance on backgrounds.
    media = css[css.index("@media print") :]
    assert '@top-center{content:"OFFICIAL"' in media and '@bottom-center{content:"OFFICIAL"' in media
    assert "thead{display:table-header-group}" in media
    assert "break-inside:avoid" in media
    assert "thead th{background:none}" in media


def test_status_is_text_with_a_swatch_of_its_colour() -> None:
    plan = make_plan()
    out = export_plan(plan, "html")
    page = Page(out)
    for n, status in enumerate(plan.statuses):
        assert f".st-{n}{{border-color:{status.colour}}}" in page.style
        assert f'<span class="sw st-{n}" aria-hidden="true"></span>{status.name}</span>' in out
    # Colour never carries meaning alone: the status name is the text of its cell.
    table = next(t for t in page.tables if t.section == "area-LG")
    statuses = [r[5].text for r in table.rows[1:] if len(r) == 6]
    assert statuses == [a.status for a in plan.areas[0].actions]
    # Text and the swatch outline have enough contrast on white and on the header tint (WCAG AA).
    colours = dict(re.findall(r"--([a-z]+):(#[0-9a-f]{6})", page.style))
    for name in ("ink", "muted", "navy", "local"):
        assert contrast(colours[name], "#ffffff") >= 4.5, name
        assert contrast(colours[name], colours["tint"]) >= 4.5, name
    assert "outline:.0625rem solid var(--ink)" in page.style  # swatch edge, 3:1 against any fill


# -- --since and the journal ------------------------------------------------------------------------------

ROUND_1 = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.timezone.utc)
ROUND_2 = dt.datetime(2026, 11, 20, 16, 45, tzinfo=dt.timezone.utc)
LATER = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.timezone.utc)
R1_RESPONSE = "Round one: the review board met in October.\nMinutes | actions are published."
R2_TARGET = "March 2027"
R2_NOTES = "Working note, not for publication"


def merge(loop: Loop, files: list[Path], now: dt.datetime) -> None:
    """What `daplan merge` does, with a fixed clock."""
    plan = loop.plan
    result = merge_returns(plan, files, journal=J.read_journal(loop.journal, plan.revision), now=now)
    commit_merge(loop.plan_path, result)


def two_merges(root: Path) -> Loop:
    """A plan merged twice from real returns: revision 2 on 10 November, revision 3 on 20 November."""
    loop = Loop(root, make_plan(), clock=fixed_clock)
    edits = {("LG-2", "response"): R1_RESPONSE, ("LG-2", "status"): "At risk"}
    merge(loop, [loop.returned("Head of Protect", edits)], ROUND_1)
    edits = {("IC-1", "target"): R2_TARGET, ("IC-1", "status"): "Complete", ("IC-1", "notes"): R2_NOTES}
    merge(loop, [loop.returned("Area Commanders", edits)], ROUND_2)
    assert loop.plan.revision == 3
    return loop


def progress_rows(page: Page) -> list[tuple[str, ...]]:
    """(action, when, by, field, was, now) of the progress table, the action carried down its row group."""
    table = next(t for t in page.tables if t.section == "progress")
    out, action = [], ""
    for row in table.rows[1:]:
        if row[0].tag == "th":
            assert row[0].attrs["scope"] == "rowgroup"
            action, row = row[0].text, row[1:]
        out.append((action, *(c.text for c in row)))
    return out


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    return two_merges(tmp_path_factory.mktemp("merged"))


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2", {("Initial Contact, 1", "Target"), ("Initial Contact, 1", "Status")}),
        ("2026-11-15", {("Initial Contact, 1", "Target"), ("Initial Contact, 1", "Status")}),
        ("2026-11-20", {("Initial Contact, 1", "Target"), ("Initial Contact, 1", "Status")}),
        ("2026-11-21", set()),
        ("3", set()),
        (
            "1",
            {
                ("Leadership and Governance, 2", "Response"),
                ("Leadership and Governance, 2", "Status"),
                ("Initial Contact, 1", "Target"),
                ("Initial Contact, 1", "Status"),
            },
        ),
        (
            "2026-11-10",
            {
                ("Leadership and Governance, 2", "Response"),
                ("Leadership and Governance, 2", "Status"),
                ("Initial Contact, 1", "Target"),
                ("Initial Contact, 1", "Status"),
            },
        ),
    ],
)
def test_since_lists_the_changes_merged_after_it(
    merged: Loop, tmp_path: Path, since: str, expected: set[tuple[str, str]]
) -> None:
    out = tmp_path / "plan.html"
    info = write_export(merged.plan, merged.plan_path, out, since=since, clock=lambda: LATER)
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    label = f"revision {since}" if "-" not in since else f"{dt.date.fromisoformat(since).day} November 2026"
    assert f'<h2 id="progress-h">Progress since {label}</h2>' in text
    assert info.changes == len(expected)
    if not expected:
        assert "No changes have been merged since" in page.text
        assert not [t for t in page.tables if t.section == "progress"]
        return
    rows = progress_rows(page)
    assert {(r[0], r[3]) for r in rows} == expected
    # Who and when, from the journal, with the old and new values.
    who_when = {
        "Leadership and Governance, 2": ("10 Nov 2026, 09:00 UTC\nrevision 2", "Head of Protect"),
        "Initial Contact, 1": ("20 Nov 2026, 16:45 UTC\nrevision 3", "Area Commanders"),
    }
    for action, when, by, *_ in rows:
        assert (when, by) == who_when[action]
    values = {(r[0], r[3]): (r[4], r[5]) for r in rows}
    if ("Leadership and Governance, 2", "Response") in values:
        assert values[("Leadership and Governance, 2", "Response")][1] == R1_RESPONSE
        assert values[("Leadership and Governance, 2", "Status")] == ("On track", "At risk")
    assert values[("Initial Contact, 1", "Target")] == (NONE, R2_TARGET)
    assert values[("Initial Contact, 1", "Status")] == ("Not started", "Complete")
    # Notes are the owner's working notes: never published, not even as a change.
    assert R2_NOTES not in out.read_text(encoding="utf-8")
    # The progress links to each action's row.
    targets = [a["href"] for t, a in page.tags if t == "a" and str(a.get("href", "")).startswith("#action-")]
    assert set(targets) <= {f"#action-{i}" for i in ("LG-2", "IC-1")}


def test_since_in_markdown(merged: Loop) -> None:
    plan = merged.plan
    entries = J.read_journal(merged.journal, plan.revision)
    md = export_plan(plan, "md", since=Since(revision=1), journal=entries)
    assert "## Progress since revision 1" in md
    table = next(rows for header, rows in md_tables(md) if header[0] == "Action" and "Was" in header)
    assert [(r[0], r[2], r[3], r[5]) for r in table] == [
        ("Leadership and Governance, 2", "Head of Protect", "Response", R1_RESPONSE),
        ("Leadership and Governance, 2", "Head of Protect", "Status", "At risk"),
        ("Initial Contact, 1", "Area Commanders", "Target", R2_TARGET),
        ("Initial Contact, 1", "Area Commanders", "Status", "Complete"),
    ]
    assert table[0][1] == "10 Nov 2026, 09:00 UTC\nrevision 2"
    assert R2_NOTES not in md


def test_since_selects_from_the_journal() -> None:
    entries: list[dict[str, Any]] = [
        {"event": "return", "revision": 2, "time": "2026-11-10T09:00:00+00:00"},
        {"event": "change", "revision": 2, "time": "2026-11-10T09:00:00+00:00", "field": "status"},
        {"event": "change", "revision": 3, "time": "2026-11-20T23:30:00-02:00", "field": "target"},
        {"event": "change", "revision": 3, "time": "2026-11-20T10:00:00+00:00", "field": "notes"},
        {"event": "publish", "revision": 3, "time": "2026-11-22T10:00:00+00:00"},
    ]
    assert [e["revision"] for e in progress_entries(entries, Since(revision=1))] == [2, 3]
    assert [e["field"] for e in progress_entries(entries, Since(revision=2))] == ["target"]
    # Days are UTC days: 23:30 at UTC-2 is the 21st.
    assert [e["field"] for e in progress_entries(entries, Since(day=dt.date(2026, 11, 21)))] == ["target"]
    assert progress_entries(entries, Since(day=dt.date(2026, 11, 22))) == []


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "has no revision 0"),
        ("4", "has no revision 4; it is at revision 3"),
        ("soon", "neither a revision number nor a date"),
        ("2026-02-30", "neither a revision number nor a date"),
        ("-1", "neither a revision number nor a date"),
        ("20261120", "has no revision 20261120"),
        ("2026-11-26", "is in the future (today is 2026-11-25)"),
    ],
)
def test_bad_since_values(merged: Loop, value: str, fragment: str) -> None:
    with pytest.raises(DaplanError, match=re.escape(fragment)):
        parse_since(value, merged.plan, LATER.date())


# -- writing and recording --------------------------------------------------------------------------------


def test_write_export_records_the_publication(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan_path)
    out = tmp_path / "published" / "plan.html"
    out.parent.mkdir()
    info = write_export(load_plan(plan_path), plan_path, out, "html", clock=fixed_clock)
    assert (info.output, info.format, info.revision, info.changes) == (out, "html", 1, None)
    assert info.time == FIXED_TIME.isoformat()
    lines = [json.loads(line) for line in J.journal_path(plan_path).read_text(encoding="utf-8").splitlines()]
    record = {
        "event": "publish",
        "time": FIXED_TIME.isoformat(),
        "revision": 1,
        "file": str(out),
        "format": "html",
    }
    assert lines == [record]
    assert J.last_publication(J.read_journal(J.journal_path(plan_path), 1)) == record
    # Same plan, same clock: the same bytes; the only files are the export (no temporary left behind).
    first = out.read_bytes()
    write_export(load_plan(plan_path), plan_path, out, "html", clock=fixed_clock)
    assert out.read_bytes() == first
    assert sorted(p.name for p in out.parent.iterdir()) == ["plan.html"]
    assert b"2 November 2026" in first


def test_publication_after_an_interrupted_merge_drops_its_lines(merged: Loop, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    plan_path = root / "plan.yaml"
    plan_path.write_bytes(merged.plan_path.read_bytes())
    journal = J.journal_path(plan_path)
    ghost = {
        "event": "change",
        "revision": 4,
        "time": "2026-11-24T00:00:00+00:00",
        "action_id": "LG-1",
        "field": "status",
        "old": "Not started",
        "new": "On track",
    }
    journal.write_text(
        merged.journal.read_text(encoding="utf-8") + json.dumps(ghost) + "\n", encoding="utf-8"
    )
    write_export(load_plan(plan_path), plan_path, root / "p.md", clock=lambda: LATER)
    lines = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert ghost not in lines and lines[-1]["event"] == "publish" and lines[-1]["revision"] == 3


# -- the command ------------------------------------------------------------------------------------------


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_exports_each_example(tmp_path: Path, example: Path, fmt: str) -> None:
    plan_path = tmp_path / example.name
    plan_path.write_bytes(example.read_bytes())
    out = tmp_path / f"plan.{fmt}"
    result = run("export", plan_path, "--format", fmt, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {out}: {fmt}, revision 1.\n" and result.stderr == ""
    text = out.read_text(encoding="utf-8")
    plan = load_plan(plan_path)
    assert plan.title in (html.unescape(text) if fmt == "html" else md_unescape(text))
    (line,) = J.read_journal(J.journal_path(plan_path), plan.revision)
    assert (line["event"], line["revision"], line["file"], line["format"]) == ("publish", 1, str(out), fmt)
    assert dt.datetime.fromisoformat(line["time"]).tzinfo is not None


def test_cli_format_from_the_extension_and_since(merged: Loop, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    plan_path = root / "plan.yaml"
    plan_path.write_bytes(merged.plan_path.read_bytes())
    J.journal_path(plan_path).write_bytes(merged.journal.read_bytes())
    out = root / "plan.md"
    result = run("export", plan_path, "-o", out, "--since", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {out}: md, revision 3, 2 change(s) since 2.\n"
    assert "## Progress since revision 2" in out.read_text(encoding="utf-8")


def test_cli_replaces_an_existing_output_as_build_does(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.html"
    out.write_text("old", encoding="utf-8")
    result = run("export", plan_file, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["--format", "pdf", "-o", "{tmp}/plan.pdf"],
            ["unknown format 'pdf'", "--format html or --format md"],
        ),
        (["-o", "{tmp}/plan.txt"], ["cannot tell the format", "plan.txt"]),
        (["--since", "soon", "-o", "{tmp}/plan.html"], ["--since 'soon' is neither"]),
        (["--since", "7", "-o", "{tmp}/plan.html"], ["has no revision 7; it is at revision 1"]),
        (["--since", "2999-01-01", "-o", "{tmp}/plan.html"], ["2999-01-01 is in the future"]),
        (["-o", "{tmp}", "--format", "html"], ["this is a directory"]),
        (["-o", "{tmp}/missing/plan.html"], ["folder does not exist", "create the folder first"]),
        (["-o", "{tmp}/plan.yaml", "--format", "md"], ["would replace the plan's own file"]),
        (["-o", "{tmp}/plan.journal.jsonl", "--format", "md"], ["would replace the plan's own file"]),
        (["-o", "{tmp}/a-file/plan.html"], ["cannot write there: the folder named is a file"]),
    ],
    ids=[
        "unknown-format",
        "no-format",
        "bad-since",
        "unknown-revision",
        "future-date",
        "directory",
        "missing-folder",
        "the-plan-itself",
        "the-journal",
        "unwritable",
    ],
)
def test_cli_refuses_bad_input(
    plan_file: Path, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    journal = J.journal_path(plan_file)
    journal.write_text("", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    result = run("export", plan_file, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert_one_line_error(result, *fragments)
    # Nothing written: no output, the plan and its journal untouched.
    # The plan's lock file may be left (it is how commands take turns); nothing else is written.
    after = {
        p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != ".plan.yaml.lock"
    }
    assert after == before


def test_cli_a_missing_plan(tmp_path: Path) -> None:
    result = run("export", tmp_path / "nope.yaml", "-o", tmp_path / "x.html")
    assert_one_line_error(result, "nope.yaml")
    assert not (tmp_path / "x.html").exists()


# -- looked at, not just parsed ---------------------------------------------------------------------------


@pytest.mark.slow
def test_chromium_renders_the_page(tmp_path: Path) -> None:
    example = next(p for p in EXAMPLES if "west-yorkshire" in p.name)
    page = tmp_path / "plan.html"
    page.write_text(export_plan(load_plan(example), "html", produced=FIXED_TIME.date()), encoding="utf-8")
    png = chromium_screenshot(page, tmp_path / "plan.png", tmp_path / "profile")
    assert not png_is_blank(png)


@pytest.mark.slow
def test_chromium_prints_the_marking_on_every_page(tmp_path: Path) -> None:
    import subprocess

    pdftotext = require("pdftotext")
    example = next(p for p in EXAMPLES if "west-yorkshire" in p.name)
    page = tmp_path / "plan.html"
    page.write_text(export_plan(load_plan(example), "html"), encoding="utf-8")
    pdf = chromium_pdf(page, tmp_path / "plan.pdf", tmp_path / "profile")
    text = subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) > 1
    for n, body in enumerate(pages, start=1):
        assert body.count("OFFICIAL") >= 2, n  # top and bottom of each page
        assert f"Page {n} of {len(pages)}" in body


# -- a force's own templates ------------------------------------------------------------------------------


def test_a_template_folder_changes_the_header(plan_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "our-templates"
    folder.mkdir()
    (folder / "header.html").write_text(
        '<header class="ours"><p class="force">Test Constabulary: Protecting people</p>'
        "<h1>{{ plan.title }}</h1></header>\n",
        encoding="utf-8",
    )
    out = tmp_path / "plan.html"
    result = run("export", plan_file, "-o", out, "--template", folder)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert '<header class="ours">' in text and "Protecting people" in page.text
    # Only the header changed: the rest of the page is the built-in one.
    assert [t.section for t in page.tables][:2] == ["summary", "capabilities"]
    assert_each_text_once(load_plan(plan_file), page.cell_texts(), page.text)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("<header>\n<h1>{{ plan.title }</h1>\n</header>\n", "error at line 2"),
        ("<header>\n{% if plan.force %}\n<h1>x</h1>\n</header>\n", "Unexpected end of template"),
        ("<header>\n\n<h1>{{ plan.no_such_thing.upper() }}</h1>\n</header>\n", "failed at line 3"),
    ],
    ids=["unclosed-expression", "unclosed-block", "unknown-value"],
)
def test_a_broken_template_is_one_line_naming_file_and_line(
    plan_file: Path, tmp_path: Path, content: str, fragment: str
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "header.html").write_text(content, encoding="utf-8")
    out = tmp_path / "plan.html"
    result = run("export", plan_file, "-o", out, "--template", folder)
    assert_one_line_error(result, fragment, "header.html", "remove the file to use the built-in template")
    # Nothing written, nothing published.
    assert not out.exists()
    assert J.read_journal(J.journal_path(plan_file), 1) == []


def test_a_missing_template_folder(plan_file: Path, tmp_path: Path) -> None:
    result = run("export", plan_file, "-o", tmp_path / "p.html", "--template", tmp_path / "nope")
    assert_one_line_error(result, "the template folder does not exist", "nope")


def test_internal_recipients_read_as_the_plan_owner() -> None:
    from daplan_xlsx.mergeview import RESOLUTION_RECIPIENT

    plan = make_plan()
    entry = {
        "event": "change",
        "revision": 1,
        "time": "2026-11-10T09:00:00+00:00",
        "recipient": RESOLUTION_RECIPIENT,
        "action_id": "LG-1",
        "field": "status",
        "old": "On track",
        "new": "Complete",
    }
    for fmt in FORMATS:
        out = export_plan(plan, fmt, since=Since(revision=0), journal=[entry])
        assert RESOLUTION_RECIPIENT not in out and "Plan owner" in out, fmt
