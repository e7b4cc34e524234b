"""Benchmark of the workbook build against raw xlsxwriter, its peak memory, and `daplan --help` start-up.

Run by hand (not part of the test suite):

    python benchmarks/bench_build.py [--actions N] [--areas N] [--repeat N] [--keep DIR]

The raw baseline writes the same sheets, cells, formats, row heights, validations, conditional formats,
protection and page setup with xlsxwriter calls only. Everything it writes (cell values, formats chosen,
row heights, the metadata cells from `meta.encode(build_meta(...))`) is computed before its timer starts, so
build / raw is the cost of daplan's own work on top of xlsxwriter. Both use the same clock and issue id and
run with the cyclic garbage collector paused (`write_workbook` pauses it itself), and the script checks that
the two files hold the same parts byte for byte.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter
from synthetic import make_plan

from daplan_xlsx import collector
from daplan_xlsx import layout as L
from daplan_xlsx import writer as W
from daplan_xlsx.meta import build_meta, encode
from daplan_xlsx.model import Action, Plan

BUILD_TARGET = 1.3  # build / raw xlsxwriter
HELP_TARGET = 2.0  # `daplan --help` / `python -c "import click"`
ISSUED_AT = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.timezone.utc)
ISSUE_ID = "bench-issue-0001"
RECIPIENT = "owner"
# A wrapper process with exactly one child, so RUSAGE_CHILDREN is that child's peak and nothing else's.
RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
)

Value = str | dt.date | None
Cell = tuple[int, Value, int]  # column, value (None = blank), format index
Row = tuple[int, float, list[Cell]]  # row, height, cells


# -- inputs of the raw baseline, computed before its timer -----------------------------------------------
@dataclass
class SheetInput:
    """Everything the raw writer puts on one sheet, as plain data."""

    name: str
    widths: list[tuple[int, float]] = field(default_factory=list)
    # In call order: ("s", row, col, text, fmt), ("m", r1, c1, r2, c2, fmt), ("h", row, height)
    ops: list[tuple[Any, ...]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    freeze: tuple[int, int] | None = None
    autofilter: tuple[int, int, int, int] | None = None
    validations: list[tuple[int, int, int, int, dict[str, Any]]] = field(default_factory=list)
    conditional: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    header: str | None = None  # page setup when set
    footer: str = ""
    repeat_row: int | None = None
    hide_gridlines: bool = False
    visibility: str = "visible"
    defined_names: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RawInputs:
    """The whole workbook as plain data: formats in creation order, properties, sheets."""

    formats: list[dict[str, Any]]
    properties: dict[str, Any]
    sheets: list[SheetInput]
    n_cells: int = 0


def _format_specs(plan: Plan) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The 15 named formats and one per status, in the order the writer creates them."""
    border = {"border": 1, "border_color": "#BFBFBF"}
    named: list[tuple[str, dict[str, Any]]] = [
        ("title", {"bold": True, "font_size": 16, "font_color": W.HEADER_FILL}),
        ("subtitle", {"italic": True, "font_color": "#404040", "text_wrap": True}),
        ("label", {"bold": True}),
        ("plain", {"text_wrap": True}),
        (
            "header",
            {"bold": True, "font_color": "#FFFFFF", "bg_color": W.HEADER_FILL, "text_wrap": True, **border},
        ),
        ("locked", {"bg_color": W.LOCKED_FILL, **border}),
        ("locked_wrap", {"bg_color": W.LOCKED_FILL, "text_wrap": True, **border}),
        ("local", {"bg_color": W.LOCAL_FILL, "bold": True, **border}),
        ("local_wrap", {"bg_color": W.LOCAL_FILL, "text_wrap": True, **border}),
        ("edit", {"bg_color": W.EDITABLE_FILL, "locked": False, "num_format": "@", **border}),
        (
            "edit_wrap",
            {"bg_color": W.EDITABLE_FILL, "locked": False, "text_wrap": True, "num_format": "@", **border},
        ),
        ("edit_date", {"bg_color": W.EDITABLE_FILL, "locked": False, "num_format": L.DATE_FORMAT, **border}),
        ("overdue", {"bg_color": W.OVERDUE_FILL, "font_color": "#9C0006", "bold": True}),
        ("key_edit", {"bg_color": W.EDITABLE_FILL, **border}),
        ("key_locked", {"bg_color": W.LOCKED_FILL, **border}),
    ]
    specs = [{"font_name": "Calibri", "font_size": 11, "valign": "top", **props} for _, props in named]
    index = {name: i for i, (name, _) in enumerate(named)}
    for status in plan.statuses:
        index[f"status:{status.name}"] = len(specs)
        specs.append({"bg_color": status.colour, "font_color": W.contrast_colour(status.colour)})
    return specs, index


def _lines(text: str, width: float) -> int:
    per_line = max(1, int(width * W.CHARS_PER_WIDTH))
    return sum(max(1, math.ceil(len(line) / per_line)) for line in text.split("\n"))


def _value(action: Action, key: str) -> str | dt.date | None:
    if key == "lead":
        return action.leads[0] if action.leads else ""
    if key == "supporting":
        return "\n".join(action.leads[1:])
    if key == "kind":
        return "Local" if action.kind == "local" else "National"
    if key == "updated":
        if action.updated is None:
            return ""
        stamp = action.updated.strftime("%d/%m/%Y")
        return f"{stamp} by {action.updated_by}" if action.updated_by else stamp
    value = getattr(action, key)
    return value if value is not None else ""


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _hf(text: str) -> str:
    return text.replace("&", "&&")[:80]


def raw_inputs(plan: Plan) -> RawInputs:
    """Every value, format choice, row height and metadata cell of the owner's workbook, as plain data."""
    specs, fx = _format_specs(plan)
    marking = _hf(plan.classification)
    footer = f'&L&11{_hf(L.recipient_label(RECIPIENT))}&C&"Calibri,Bold"&12{marking}&R&11Page &P of &N'

    def page(sheet: SheetInput, repeat_row: int | None) -> None:
        sheet.header = f'&C&"Calibri,Bold"&12{marking}&R&11{_hf(sheet.name)}'
        sheet.footer = footer
        sheet.repeat_row = repeat_row

    areas = [
        (a, [x for x in a.actions if x.kind == "national"] + [x for x in a.actions if x.kind == "local"])
        for a in plan.areas
    ]
    scope = [x.id for _, actions in areas for x in actions]
    sheets: list[SheetInput] = []
    n_cells = 0

    # About
    about = SheetInput(L.ABOUT_SHEET, widths=[(0, 24), (1, 90)], hide_gridlines=True)
    ops = about.ops
    ops.append(("s", 0, 0, plan.title, fx["title"]))
    facts = [
        ("Force", plan.force),
        ("Protective marking", plan.classification),
        ("Plan revision", str(plan.revision)),
        ("Prepared for", L.recipient_label(RECIPIENT)),
        ("Made on", ISSUED_AT.strftime("%d %B %Y")),
        ("Issue reference", ISSUE_ID),
        ("Actions in this workbook", f"{len(scope)} on {len(areas)} sheet(s)"),
    ]
    row = 2
    for label, value in facts:
        ops += [("s", row, 0, label, fx["label"]), ("s", row, 1, value, fx["plain"])]
        row += 1
    row += 1
    ops.append(("s", row, 0, "How to use it", fx["label"]))
    for line in W._owner_instructions(()):
        ops += [("s", row, 1, line, fx["plain"]), ("h", row, L.LINE_HEIGHT * _lines(line, 90))]
        row += 1
    row += 1
    ops.append(("s", row, 0, "Cells", fx["label"]))
    key_edit = "You can type here (Response, Target, Due, Lead, Status, Notes)"
    ops.append(("s", row, 1, key_edit, fx["key_edit"]))
    ops.append(("s", row + 1, 1, "Fixed: the plan owner changes these", fx["key_locked"]))
    ops.append(("s", row + 2, 1, "Local action (the force's own, not an HMIC national action)", fx["local"]))
    row += 4
    ops.append(("s", row, 0, "Status key", fx["label"]))
    for status in plan.statuses:
        text = f"{status.name}: {status.meaning}" if status.meaning else status.name
        ops.append(("s", row, 1, text, fx[f"status:{status.name}"]))
        row += 1
    row += 1
    ops.append(("s", row, 0, "Sheets", fx["label"]))
    for area, actions in areas:
        line = f"{area.sheet}: {len(actions)} action(s)"
        ops += [("s", row, 1, line, fx["plain"]), ("h", row, L.LINE_HEIGHT * _lines(line, 90))]
        row += 1
    page(about, None)
    sheets.append(about)

    # One sheet per area
    cols = L.AREA_COLUMNS
    for area, actions in areas:
        sheet = SheetInput(area.sheet, widths=[(i, c.width) for i, c in enumerate(cols)])
        ops = sheet.ops
        ops.append(("s", L.TITLE_ROW, 0, area.name, fx["title"]))
        if area.key_criteria:
            ops.append(("s", L.CRITERIA_ROW, 0, f"Key criteria: {area.key_criteria}", fx["label"]))
        if area.supporting_areas:
            supporting = "Supporting areas: " + "; ".join(area.supporting_areas)
            ops.append(("m", L.SUPPORTING_ROW, 0, L.SUPPORTING_ROW, 4, fx["subtitle"]))
            ops.append(("s", L.SUPPORTING_ROW, 0, supporting, fx["subtitle"]))
            ops.append(("h", L.SUPPORTING_ROW, L.LINE_HEIGHT * _lines(supporting, 130)))
        ops += [("s", L.HEADER_ROW, i, c.header, fx["header"]) for i, c in enumerate(cols)]
        ops.append(("h", L.HEADER_ROW, 30))
        row = L.FIRST_DATA_ROW
        for action in actions:
            local = action.kind == "local"
            lines = 1
            cells: list[Cell] = []
            for i, col in enumerate(cols):
                shown = _value(action, col.key)
                if col.type == "date":
                    cells.append((i, shown if isinstance(shown, dt.date) else None, fx["edit_date"]))
                    continue
                text = str(shown)
                if col.editable:
                    f = fx["edit_wrap" if col.wrap else "edit"]
                elif local and col.key in ("id", "ref", "kind"):
                    f = fx["local"]
                elif local:
                    f = fx["local_wrap" if col.wrap else "locked"]
                else:
                    f = fx["locked_wrap" if col.wrap else "locked"]
                cells.append((i, text or None, f))
                if col.wrap and text:
                    lines = max(lines, _lines(text, col.width))
            sheet.rows.append((row, min(L.MAX_ROW_HEIGHT, L.LINE_HEIGHT * lines), cells))
            n_cells += len(cells)
            row += 1
        last = row - 1
        sheet.freeze = (L.FIRST_DATA_ROW, 0)
        sheet.autofilter = (L.HEADER_ROW, 0, max(last, L.HEADER_ROW), len(cols) - 1)
        if actions:
            _area_checks(plan, sheet, L.FIRST_DATA_ROW, last, fx)
        page(sheet, L.HEADER_ROW)
        sheets.append(sheet)

    # Glossary
    gloss = SheetInput(L.GLOSSARY_SHEET, widths=list(enumerate(L.GLOSSARY_WIDTHS)), freeze=(1, 0))
    gloss.ops += [("s", 0, i, h, fx["header"]) for i, h in enumerate(L.GLOSSARY_HEADERS)]
    for r, entry in enumerate(plan.glossary, start=1):
        cells = [(0, entry.term, fx["locked"])]
        if entry.definition:
            cells.append((1, entry.definition, fx["locked_wrap"]))
        gloss.rows.append((r, L.LINE_HEIGHT * _lines(entry.definition, L.GLOSSARY_WIDTHS[1]), cells))
    page(gloss, 0)
    sheets.append(gloss)

    # Lists (hidden) and the metadata sheet (very hidden), both unformatted text
    lists = SheetInput(L.LISTS_SHEET, visibility="hidden")
    for c, (header, name, values) in enumerate(
        [("Status", L.STATUS_LIST_NAME, plan.status_names()), ("Lead", L.LEAD_LIST_NAME, plan.lead_names())]
    ):
        lists.ops.append(("s", 0, c, header, -1))
        lists.ops += [("s", r, c, v, -1) for r, v in enumerate(values, start=1)]
        letter = L.column_letter(c)
        end = max(len(values), 1) + 1
        lists.defined_names.append((name, f"={L.quote_sheet(L.LISTS_SHEET)}!${letter}$2:${letter}${end}"))
    sheets.append(lists)
    meta = SheetInput(L.META_SHEET, visibility="very_hidden")
    meta_cells = encode(build_meta(plan, scope, RECIPIENT, ISSUE_ID, ISSUED_AT), None)
    meta.ops += [("s", r, c, text, -1) for r, c, text in meta_cells]
    sheets.append(meta)

    properties = {
        "title": plan.title,
        "subject": f"Domestic Abuse Action Plan, revision {plan.revision}",
        "author": "daplan",
        "company": plan.force,
        "category": plan.classification,
        "comments": f"Issued to {RECIPIENT}",
        "created": ISSUED_AT.astimezone(dt.timezone.utc).replace(tzinfo=None),
    }
    return RawInputs(specs, properties, sheets, n_cells)


def _area_checks(plan: Plan, sheet: SheetInput, first: int, last: int, fx: dict[str, int]) -> None:
    """The three data validations and the status / overdue conditional formats of an area sheet."""
    status_c, due_c = L.column_index("status"), L.column_index("due")
    sheet.validations += [
        (first, L.column_index(key), last, L.column_index(key), options)
        for key, (_, options) in W.AREA_VALIDATIONS.items()
    ]
    status_col, due_col, id_col = (L.column_letter(c) for c in (status_c, due_c, 0))
    a, b = first + 1, last + 1
    for status in plan.statuses:
        options = {"type": "cell", "criteria": "==", "value": _quote(status.name)}
        sheet.conditional.append((f"{status_col}{a}:{status_col}{b}", options, fx[f"status:{status.name}"]))
    closed = [s.name for s in plan.statuses if s.closed]
    open_test = ",".join(f"${status_col}{a}<>{_quote(n)}" for n in closed) or "TRUE"
    options = {
        "type": "formula",
        "criteria": f"=AND(ISNUMBER(${due_col}{a}),${due_col}{a}<TODAY(),{open_test})",
        "multi_range": f"{id_col}{a}:{id_col}{b} {due_col}{a}:{due_col}{b}",
    }
    sheet.conditional.append((f"{due_col}{a}:{due_col}{b}", options, fx["overdue"]))


# -- the two writers under test -------------------------------------------------------------------------
def write_raw(inputs: RawInputs, path: str) -> None:
    """Write the workbook described by `inputs` with xlsxwriter calls only."""
    wb = xlsxwriter.Workbook(path, W.WORKBOOK_OPTIONS)
    fmts = [wb.add_format(spec) for spec in inputs.formats]
    fmts.append(None)  # index -1: no format
    wb.set_properties(inputs.properties)
    wb.set_calc_mode("auto")
    for sheet in inputs.sheets:
        ws = wb.add_worksheet(sheet.name)
        for col, width in sheet.widths:
            ws.set_column(col, col, width)
        if sheet.hide_gridlines:
            ws.hide_gridlines(2)
        for op in sheet.ops:
            if op[0] == "s":
                ws.write_string(op[1], op[2], op[3], fmts[op[4]])
            elif op[0] == "h":
                ws.set_row(op[1], op[2])
            else:
                ws.merge_range(op[1], op[2], op[3], op[4], "", fmts[op[5]])
        write_string, write_blank, write_datetime, set_row = (
            ws.write_string,
            ws.write_blank,
            ws.write_datetime,
            ws.set_row,
        )
        for row, height, cells in sheet.rows:
            for col, value, f in cells:
                if value is None:
                    write_blank(row, col, None, fmts[f])
                elif type(value) is str:
                    write_string(row, col, value, fmts[f])
                else:
                    write_datetime(row, col, value, fmts[f])
            set_row(row, height)
        if sheet.freeze:
            ws.freeze_panes(*sheet.freeze)
        if sheet.autofilter:
            ws.autofilter(*sheet.autofilter)
        for r1, c1, r2, c2, options in sheet.validations:
            ws.data_validation(r1, c1, r2, c2, options)
        for cell_range, options, f in sheet.conditional:
            ws.conditional_format(cell_range, {**options, "format": fmts[f]})
        if sheet.header is not None:
            ws.set_landscape()
            ws.set_paper(9)
            ws.fit_to_pages(1, 0)
            ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.7)
            ws.set_header(sheet.header, {"scale_with_doc": False})
            ws.set_footer(sheet.footer, {"scale_with_doc": False})
            if sheet.repeat_row is not None:
                ws.repeat_rows(sheet.repeat_row)
        for name, formula in sheet.defined_names:
            wb.define_name(name, formula)
        if sheet.visibility == "hidden":
            ws.hide()
        elif sheet.visibility == "very_hidden":
            ws.very_hidden()
        ws.protect("", W.PROTECT_OPTIONS)
    wb.close()


def write_build(plan: Plan, path: str) -> None:
    """The library's build of the owner's workbook, with the benchmark's fixed clock and issue id."""
    W.write_workbook(plan, path, recipient=RECIPIENT, clock=lambda: ISSUED_AT, issue_id=ISSUE_ID)


def raw_like_build(inputs: RawInputs, path: str) -> None:
    """The raw write under the collector policy `write_workbook` sets itself (paused while it writes), so
    build / raw stays the cost of daplan's own work."""
    with collector.paused():
        write_raw(inputs, path)


# -- measurements ---------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def same_parts(a: Path, b: Path) -> tuple[int, list[str]]:
    """Number of parts in `a` and the parts whose bytes differ between the two packages."""
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names = sorted(set(za.namelist()) | set(zb.namelist()))
        in_a, in_b = set(za.namelist()), set(zb.namelist())
        bad = [n for n in names if n not in in_a or n not in in_b or za.read(n) != zb.read(n)]
        return len(names), bad


def child_memory(mode: str, args: argparse.Namespace, trace: bool = False) -> dict[str, Any]:
    """Run one worker (plan / build / raw) in a fresh process; its peak RSS and tracemalloc peak."""
    worker = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--actions",
        str(args.actions),
        "--areas",
        str(args.areas),
        "--leads",
        str(args.leads),
        "--seed",
        str(args.seed),
    ]
    if trace:
        worker.append("--trace")
    done = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *worker], capture_output=True, text=True, check=True
    )
    out: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
        elif line.startswith("maxrss_kb"):
            _, kb, rc = line.split()
            if rc != "0":
                raise RuntimeError(f"{mode} worker failed:\n{done.stderr}")
            out["maxrss_kb"] = int(kb)
    return out


def run_child(mode: str, args: argparse.Namespace) -> None:
    """Worker body: make the plan, then (optionally traced) build it or write it raw; print JSON."""
    plan = make_plan(args.actions, args.areas, args.leads, args.seed)
    inputs = raw_inputs(plan) if mode == "raw" else None
    with tempfile.TemporaryDirectory(prefix="daplan-bench-") as tmp:
        path = os.path.join(tmp, f"{mode}.xlsx")
        if args.trace:
            tracemalloc.start()
        if mode == "build":
            write_build(plan, path)
        elif mode == "raw" and inputs is not None:
            raw_like_build(inputs, path)
        peak = tracemalloc.get_traced_memory()[1] if args.trace else None
    print(json.dumps({"mode": mode, "tracemalloc_peak": peak}))


def startup(cmd: list[str], repeat: int) -> list[float]:
    """Wall times of `cmd` (one untimed warm-up run first)."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "FAIL"


def mb(kb: float) -> str:
    return f"{kb / 1024:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--areas", type=int, default=6)
    parser.add_argument("--leads", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=5, help="build and raw runs, in turn (best of each reported)"
    )
    parser.add_argument("--help-repeat", type=int, default=5, help="start-up runs (best is reported)")
    parser.add_argument("--no-memory", action="store_true", help="skip the child-process memory runs")
    parser.add_argument("--keep", type=Path, help="write the workbooks into this folder and keep them")
    parser.add_argument("--child", choices=("plan", "build", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args)
        return

    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; xlsxwriter {xlsxwriter.__version__}"
    )
    start = time.perf_counter()
    plan = make_plan(args.actions, args.areas, args.leads, args.seed)
    print(
        f"synthetic plan: {args.actions} actions, {args.areas} areas, {args.leads} leads "
        f"(made in {time.perf_counter() - start:.2f} s)"
    )
    start = time.perf_counter()
    inputs = raw_inputs(plan)
    prep = time.perf_counter() - start
    scope = [x.id for a in plan.areas for x in a.actions]
    meta_s = timed(lambda: encode(build_meta(plan, scope, RECIPIENT, ISSUE_ID, ISSUED_AT), None))
    print(
        f"raw inputs prepared untimed in {prep:.2f} s ({inputs.n_cells} table cells, "
        f"{len(inputs.formats)} formats); of which metadata build_meta+encode {meta_s:.2f} s"
    )

    tmp = tempfile.TemporaryDirectory(prefix="daplan-bench-")
    folder = args.keep or Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    build_path, raw_path = folder / "build.xlsx", folder / "raw.xlsx"

    build_times: list[float] = []
    raw_times: list[float] = []
    for i in range(args.repeat):
        build_times.append(timed(lambda: write_build(plan, str(build_path))))
        raw_times.append(timed(lambda: raw_like_build(inputs, str(raw_path))))
        print(f"run {i + 1}: build {build_times[-1]:.3f} s   raw xlsxwriter {raw_times[-1]:.3f} s")
    build_s, raw_s = min(build_times), min(raw_times)
    ratio = build_s / raw_s
    n_parts, differing = same_parts(build_path, raw_path)
    same = "identical" if not differing else f"DIFFERENT in {', '.join(differing)}"
    print(f"raw output vs build: {n_parts} parts, {same}")
    build_size, raw_size = build_path.stat().st_size, raw_path.stat().st_size
    print(
        f"build best {build_s:.3f} s, raw best {raw_s:.3f} s, build/raw {ratio:.2f} "
        f"(target <= {BUILD_TARGET}) {verdict(ratio, BUILD_TARGET)}"
    )
    print(f"output size: build {build_size / 1e6:.2f} MB, raw {raw_size / 1e6:.2f} MB")

    memory: dict[str, dict[str, Any]] = {}
    if not args.no_memory:
        for mode in ("plan", "build", "raw"):
            memory[mode] = child_memory(mode, args)
            if mode != "plan":
                memory[mode]["tracemalloc_peak"] = child_memory(mode, args, trace=True)["tracemalloc_peak"]
        base = memory["plan"]["maxrss_kb"]
        for mode in ("plan", "build", "raw"):
            m = memory[mode]
            extra = (
                ""
                if mode == "plan"
                else (
                    f" (+{mb(m['maxrss_kb'] - base)} over plan only; tracemalloc peak of the write "
                    f"{m['tracemalloc_peak'] / 2**20:.0f} MB)"
                )
            )
            print(
                f"peak RSS, child making the plan{'' if mode == 'plan' else ' and ' + mode}: "
                f"{mb(m['maxrss_kb'])}{extra}"
            )

    daplan = Path(sys.executable).parent / "daplan"
    daplan_cmd = str(daplan) if daplan.exists() else (shutil.which("daplan") or "daplan")
    help_times = startup([daplan_cmd, "--help"], args.help_repeat)
    click_times = startup([sys.executable, "-c", "import click"], args.help_repeat)
    bare_times = startup([sys.executable, "-c", "pass"], args.help_repeat)
    help_s, click_s = min(help_times), min(click_times)
    help_ratio = help_s / click_s
    print(f"{daplan_cmd} --help: " + " ".join(f"{t * 1000:.0f}" for t in help_times) + " ms")
    print('python -c "import click": ' + " ".join(f"{t * 1000:.0f}" for t in click_times) + " ms")
    print(f"(python -c pass: best {min(bare_times) * 1000:.0f} ms)")
    print(
        f"daplan --help / import click: {help_ratio:.2f}x (target <= {HELP_TARGET:g}x) "
        f"{verdict(help_ratio, HELP_TARGET)}"
    )

    rows = [
        ("Plan", f"{args.actions:,} actions, {args.areas} areas, {args.leads} leads", ""),
        (f"`write_workbook` (best of {args.repeat})", f"{build_s:.2f} s", ""),
        (f"raw xlsxwriter, same cells (best of {args.repeat})", f"{raw_s:.2f} s", ""),
        ("build / raw", f"{ratio:.2f}", f"≤ {BUILD_TARGET} {verdict(ratio, BUILD_TARGET)}"),
        ("output file", f"{build_size / 1e6:.1f} MB", ""),
    ]
    if memory:
        rows += [
            ("peak RSS: plan only", mb(memory["plan"]["maxrss_kb"]), ""),
            ("peak RSS: plan + build", mb(memory["build"]["maxrss_kb"]), ""),
            ("peak RSS: plan + raw xlsxwriter", mb(memory["raw"]["maxrss_kb"]), ""),
            ("tracemalloc peak of the build", f"{memory['build']['tracemalloc_peak'] / 2**20:.0f} MB", ""),
        ]
    rows += [
        (f"`daplan --help` (best of {args.help_repeat})", f"{help_s * 1000:.0f} ms", ""),
        ('`python -c "import click"`', f"{click_s * 1000:.0f} ms", ""),
        (
            "`--help` / `import click`",
            f"{help_ratio:.2f}×",
            f"≤ {HELP_TARGET:g}× {verdict(help_ratio, HELP_TARGET)}",
        ),
    ]
    print("\n| Figure | Value | Target |\n|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
