"""The owner's comments and blank lines in plan.yaml, carried over when daplan saves the plan.

A save writes the plan in its canonical form; a YAML dumper knows nothing of comments. So the text being
replaced is read for its comment lines, blank lines and end-of-line comments (found with the YAML scanner,
so a `#` or a blank line inside a text value is never taken for one), each is anchored to the line of content
it stood before, and it is put back before that line in the new text. Content lines are matched between the
old and new text as a patience diff does: lines that occur once in each are the anchors, in order, and the
lines between two anchors are matched greedily. A comment whose line the save rewrote goes with the next line
that survived; one after the last line stays at the end.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# How far past the last matched line a line is looked for: bounds the work on a file rewritten wholesale.
_LOOK_AHEAD = 400
_MAYBE = re.compile(r"(?m)^[ \t]*(?:#|$)|[ \t]#")


def keep_comments(original: str, new: str) -> str:
    """`new` with the comments and blank lines of `original` put back where they stood."""
    if original == new or not _MAYBE.search(original):
        return new
    found = _comments(original)
    if found is None:
        return new
    before, inline, keys, tail = found
    if not before and not inline and not tail:
        return new
    new_lines = new.splitlines(keepends=True)
    new_keys = [line.rstrip() for line in new_lines]
    where = _match(keys, new_keys)
    put_before: dict[int, list[str]] = {}
    put_inline: dict[int, str] = {}
    pending: list[str] = []
    for i, key in enumerate(keys):
        pending.extend(before.get(i, []))
        j = where.get(i)
        if j is None:
            continue
        if pending:
            put_before.setdefault(j, []).extend(pending)
            pending = []
        if i in inline and new_keys[j] == key:
            put_inline[j] = inline[i]
    pending.extend(tail)
    out: list[str] = []
    for j, line in enumerate(new_lines):
        out.extend(put_before.get(j, []))
        if j in put_inline:
            body = line.rstrip("\r\n")
            out.append(body + put_inline[j] + line[len(body) :])
        else:
            out.append(line)
    if pending:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.extend(pending)
    return "".join(out)


def _comments(text: str) -> tuple[dict[int, list[str]], dict[int, str], list[str], list[str]] | None:
    """(comment and blank lines before content line i, the end-of-line comment of content line i, the
    content lines as compared, the comment lines after the last content line); None if it does not scan."""
    try:
        tokens = list(yaml.scan(text, Loader=_Loader))
    except yaml.YAMLError:
        return None
    lines = text.splitlines(keepends=True)
    inside = [False] * (len(lines) + 1)  # lines within a multi-line token (a block or quoted text)
    last_end: dict[int, int] = {}  # line -> column where its last token ends
    for tok in tokens:
        start, end = tok.start_mark, tok.end_mark
        if end.line > start.line:
            last = end.line if end.column > 0 else end.line - 1
            if isinstance(tok, yaml.ScalarToken) and tok.style in ("|", ">") and "+" not in lines[start.line]:
                # Blank lines after a block text belong to it only when it keeps them (`|+`).
                while last > start.line and not lines[last].strip():
                    last -= 1
            for n in range(start.line + 1, last + 1):
                inside[n] = True
            if end.column > 0:
                last_end[end.line] = max(last_end.get(end.line, 0), end.column)
        elif end.column > start.column:
            last_end[end.line] = max(last_end.get(end.line, 0), end.column)
    before: dict[int, list[str]] = {}
    inline: dict[int, str] = {}
    keys: list[str] = []
    pending: list[str] = []
    for n, line in enumerate(lines):
        stripped = line.strip()
        if not inside[n] and (not stripped or stripped.startswith("#")):
            pending.append(line if line.endswith("\n") else line + "\n")
            continue
        body = line.rstrip("\r\n")
        cut = _inline_at(body, last_end.get(n, 0)) if not inside[n] or n in last_end else None
        if cut is not None:
            inline[len(keys)] = body[cut:]
            body = body[:cut]
        if pending:
            before[len(keys)] = pending
            pending = []
        keys.append(body.rstrip())
    return before, inline, keys, pending


def _inline_at(body: str, after: int) -> int | None:
    """Where an end-of-line comment starts (its leading spaces included), after the last token."""
    at = body.find("#", after)
    while at > 0 and body[at - 1] not in " \t":
        at = body.find("#", at + 1)
    if at <= 0:
        return None
    start = at
    while start > 0 and body[start - 1] in " \t":
        start -= 1
    return start


def _match(a: list[str], b: list[str]) -> dict[int, int]:
    """Index in `a` -> index in `b` of the same line, in order: unique lines first, then the gaps greedily."""
    count_a: dict[str, int] = {}
    for x in a:
        count_a[x] = count_a.get(x, 0) + 1
    pos_b: dict[str, int] = {}
    count_b: dict[str, int] = {}
    for j, x in enumerate(b):
        count_b[x] = count_b.get(x, 0) + 1
        pos_b[x] = j
    pairs = [(i, pos_b[x]) for i, x in enumerate(a) if count_a[x] == 1 and count_b.get(x) == 1]
    anchors = _increasing(pairs)
    out: dict[int, int] = {}
    prev_i, prev_j = -1, -1
    for i, j in [*anchors, (len(a), len(b))]:
        # Between two anchors: each line of `a` takes the next equal line of `b`, if any.
        jj = prev_j + 1
        for ii in range(prev_i + 1, i):
            k, stop = jj, min(j, jj + _LOOK_AHEAD)
            while k < stop and b[k] != a[ii]:
                k += 1
            if k < stop:
                out[ii] = k
                jj = k + 1
        if i < len(a):
            out[i] = j
        prev_i, prev_j = i, j
    return out


def _increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of pairs whose second members increase (pairs come sorted by their first)."""
    tails: list[int] = []  # the smallest second member ending a run of each length
    tail_at: list[int] = []
    back: list[int] = []
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k] = j
            tail_at[k] = n
        back.append(tail_at[k - 1] if k else -1)
    out = []
    n = tail_at[-1] if tail_at else -1
    while n >= 0:
        out.append(pairs[n])
        n = back[n]
    return out[::-1]
