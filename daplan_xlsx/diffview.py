"""How a diff looks: a terminal view that fits 100 columns, and one self-contained HTML page.

Every text from the return or the plan (values, names, sheet names, messages that quote them) goes through
`console.printable` before it reaches the terminal: a return is untrusted, and an escape sequence or a line
break in it must not act on the terminal or fake a line of the view.
"""

from __future__ import annotations

import difflib
import html
import re
import textwrap

import click

from . import layout as L
from .console import printable
from .diff import DiffResult

WIDTH = 100
CONTEXT_WORDS = 6


def _words(text: str) -> list[str]:
    return re.findall(r"\S+|\n", text)


def word_ops(old: str, new: str) -> list[tuple[str, str]]:
    """The word-level diff as (tag, text) pieces: tag is ' ', '-' or '+'."""
    a, b = _words(old), _words(new)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append((" ", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", " ".join(b[j1:j2])))
    return out


def _shorten(piece: str, first: bool, last: bool) -> str:
    """Keep a few words of unchanged context next to each change."""
    words = piece.split(" ")
    if len(words) <= 2 * CONTEXT_WORDS + 1:
        return piece
    head = [] if first else words[:CONTEXT_WORDS]
    tail = [] if last else words[-CONTEXT_WORDS:]
    return " ".join([*head, "…", *tail])


def inline_diff(old: str, new: str, colour: bool) -> str:
    ops = word_ops(old, new)
    parts = []
    for i, (tag, piece) in enumerate(ops):
        piece = printable(piece.replace(" \n ", " ⏎ ").replace("\n", "⏎"))
        if tag == " ":
            parts.append(_shorten(piece, i == 0, i == len(ops) - 1))
        elif tag == "-":
            parts.append(click.style(f"[-{piece}-]", fg="red") if colour else f"[-{piece}-]")
        else:
            parts.append(click.style(f"{{+{piece}+}}", fg="green") if colour else f"{{+{piece}+}}")
    return " ".join(p for p in parts if p)


def _one_line(text: str, limit: int = 160) -> str:
    one = printable(" ⏎ ".join(text.split("\n")))
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _value_lines(label: str, value: str) -> list[str]:
    """A refused value under its finding: shortened to one line (in full in --json and --html)."""
    return textwrap.wrap(
        f"      {label}: {_one_line(value) or '(empty)'}",
        WIDTH,
        subsequent_indent="        ",
        break_on_hyphens=False,
        drop_whitespace=False,
    )


def render_text(result: DiffResult, colour: bool) -> str:
    r = result.reading
    lines = []
    kind = (
        "two-way comparison against the current plan (no intact issue metadata)"
        if r.two_way
        else (f"three-way: against the base issued to {r.recipient} (issue {r.issue_id})")
    )
    lines.append(f"{printable(r.path.name)}: {printable(kind)}")
    lines.append(
        f"metadata: {r.meta.verdict}" + (f" ({printable(r.meta.problem)})" if r.meta.problem else "")
    )
    if not result.changes:
        lines.append("No changes.")
    current = None
    for change in result.changes:
        if change.action_id != current:
            current = change.action_id
            lines.append("")
            title = printable(f"{change.action_id}  ({change.sheet})")
            lines.append(click.style(title, bold=True) if colour else title)
        label = f"  {L.COLUMN_BY_KEY[change.field].header} {printable(change.cell)}: "
        if L.COLUMN_BY_KEY[change.field].type == "text" and (
            len(change.old) + len(change.new) > 60 or "\n" in change.old + change.new
        ):
            body = inline_diff(change.old, change.new, colour)
        else:
            old = _one_line(change.old, 10**6) or "(empty)"
            new = _one_line(change.new, 10**6) or "(empty)"
            body = f"{old} → {new}"
        wrapped = textwrap.wrap(body, WIDTH - len(label), break_on_hyphens=False) or [""]
        lines.append(label + wrapped[0])
        lines.extend(" " * len(label) + w for w in wrapped[1:])
    if r.proposals:
        lines.append("")
        lines.append(f"Proposed new actions ({len(r.proposals)}):")
        for p in r.proposals:
            text = "; ".join(f"{k}: {_one_line(v, 10**6)}" for k, v in p.values.items())
            lines.extend(
                textwrap.wrap(f"  {printable(p.sheet)} row {p.row}: {text}", WIDTH, subsequent_indent="    ")
            )
    if result.findings:
        lines.append("")
        lines.append(f"Findings ({len(result.findings)}):")
        shown: tuple[str, str, str] | None = None  # kind, message and sheet of the finding last shown whole
        for f in result.findings:
            header = L.COLUMN_BY_KEY[f.field].header if f.field in L.COLUMN_BY_KEY else f.field
            if f.field and shown is not None and shown[:2] == (f.kind, f.message):
                # Another value of the row just named (a row not read): its field, cell and value only.
                cell = f.cell if f.sheet == shown[2] else f"{f.sheet}!{f.cell}"
                lines.extend(_value_lines(f"{header} {printable(cell)}", f.value))
                continue
            shown = (f.kind, f.message, f.sheet)
            where = printable("!".join(x for x in (f.sheet, f.cell) if x))
            tag = "problem" if f.severity == "problem" else "warning"
            head = f"  {tag}: {where + ': ' if where else ''}"
            styled = click.style(tag, fg="red" if tag == "problem" else "yellow") if colour else tag
            wrapped = textwrap.wrap(
                head + printable(f.message), WIDTH, subsequent_indent="      ", break_on_hyphens=False
            )
            wrapped[0] = wrapped[0].replace(tag, styled, 1)
            lines.extend(wrapped)
            if f.field and f.value and f.value not in f.message:
                lines.extend(_value_lines(header, f.value))
    lines.append("")
    lines.append(
        f"{len(result.changes)} change(s), {len(result.problems)} problem(s), "
        f"{len(result.findings) - len(result.problems)} warning(s)."
    )
    return "\n".join(lines)


_CSS = """
body{font:16px/1.5 system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #bbb;padding:.4rem;vertical-align:top;text-align:left}
th{background:#1f3864;color:#fff}del{background:#fdd;color:#900}ins{background:#dfd;color:#060;text-decoration:none}
.problem{color:#900;font-weight:bold}.warning{color:#8a5a00}caption{text-align:left;font-weight:bold;padding:.3rem 0}
td.text{white-space:pre-wrap}
"""


def _html_diff(old: str, new: str) -> str:
    out = []
    for tag, piece in word_ops(old, new):
        text = html.escape(piece).replace("\n", "<br>")
        out.append(text if tag == " " else f"<del>{text}</del>" if tag == "-" else f"<ins>{text}</ins>")
    return " ".join(out)


def render_html(result: DiffResult) -> str:
    r = result.reading
    e = html.escape
    kind = (
        "Two-way comparison against the current plan"
        if r.two_way
        else f"Three-way: against the base issued to {e(r.recipient)}"
    )
    rows = "".join(
        f"<tr><td>{e(c.action_id)}</td><td>{e(L.COLUMN_BY_KEY[c.field].header)}</td><td>{e(c.sheet)}!{e(c.cell)}</td>"
        f"<td class=text>{_html_diff(c.old, c.new)}</td></tr>"
        for c in result.changes
    )
    findings = "".join(
        f"<tr><td class={f.severity}>{f.severity}</td><td>{e(f.kind)}</td><td>{e(f.sheet)}{'!' if f.cell else ''}{e(f.cell)}</td>"
        f"<td>{e(f.action_id)}</td><td>{e(f.message)}</td>"
        f"<td>{e(L.COLUMN_BY_KEY[f.field].header if f.field in L.COLUMN_BY_KEY else f.field)}</td>"
        f"<td class=text>{e(f.value)}</td></tr>"
        for f in result.findings
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Changes in {e(r.path.name)}</title><style>{_CSS}</style></head><body>
<h1>Changes in {e(r.path.name)}</h1>
<p>{kind}. Metadata: {e(r.meta.verdict)}. SHA-256 {e(r.sha256)}.</p>
<table><caption>{len(result.changes)} change(s)</caption>
<thead><tr><th scope=col>Action</th><th scope=col>Field</th><th scope=col>Cell</th><th scope=col>Change</th></tr></thead>
<tbody>{rows}</tbody></table>
<table><caption>{len(result.findings)} finding(s)</caption>
<thead><tr><th scope=col>Severity</th><th scope=col>Kind</th><th scope=col>Cell</th><th scope=col>Action</th>
<th scope=col>Message</th><th scope=col>Field</th><th scope=col>Value refused</th></tr></thead>
<tbody>{findings}</tbody></table>
</body></html>
"""
