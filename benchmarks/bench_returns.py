"""Reading, distributing and merging at scale (run by hand: `python benchmarks/bench_returns.py`).

Prints, each measured in the same run as its baseline:
- reading a return of the 20,000-action plan against a raw read of every cell value of the same file by
  python-calamine and by openpyxl read_only (target: read ≤ 2× calamine), with peak memory;
- distributing the 20,000-action plan to 50 leads;
- merging 200 returns of a 300-action plan: per-return cost against a calamine raw read of the same
  returns (target ≤ 2.5×), and peak memory at 20 and at 200 returns (target: 200 ≤ 1.2× of 20);
- merging two returns that each change 1% of the 20,000-action plan (load, merge, save), through the library
  and as a `daplan merge` process, against a `daff merge` process on the same parent and edited tables as
  CSV (target ≤ 1/10 of daff's time; daff skipped when not installed).

Every comparison runs its sides in turn, `--repeat` rounds (default 3), and keeps each side's best: on a
shared machine a slow spell then hits both sides alike.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import make_plan

from daplan_xlsx import layout as L
from daplan_xlsx.distribute import distribute
from daplan_xlsx.merge import commit_merge, merge_returns
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.reader import read_return
from daplan_xlsx.writer import write_workbook


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_pair(ours: Callable[[], object], baseline: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best times of both, their runs taken in turn: a slow spell of a shared machine hits both sides alike
    rather than all the runs of one."""
    a, b = [], []
    for _ in range(repeat):
        a.append(best(ours, 1))
        b.append(best(baseline, 1))
    return min(a), min(b)


def calamine_raw(path: Path) -> int:
    """Every cell value of every sheet, the plain way."""
    import python_calamine

    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    n = 0
    for name in wb.sheet_names:
        n += sum(len(r) for r in wb.get_sheet_by_name(name).to_python())
    return n


def openpyxl_raw(path: Path) -> int:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    n = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            n += len(row)
    wb.close()
    return n


# The child's own peak. Its ru_maxrss is not: Linux carries the parent's peak RSS over the fork and exec,
# so every child of this (large) process reported the parent's figure.
_PEAK = """
import resource
try:
    with open("/proc/self/status") as fh:
        print(next(line.split()[1] for line in fh if line.startswith("VmHWM:")))
except (OSError, StopIteration):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def child_peak(code: str) -> float:
    """Peak RSS in MB of a child process running `code`."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\n" + _PEAK],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(__file__).resolve().parent),
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def edit_return(src: Path, dst: Path, edits: dict[str, str]) -> None:
    """Change the Response of the given actions, as a recipient would (openpyxl)."""
    import openpyxl

    wb = openpyxl.load_workbook(src)
    col = L.column_index("response") + 1
    for ws in wb.worksheets:
        if ws.title in (L.ABOUT_SHEET, L.GLOSSARY_SHEET, L.LISTS_SHEET, L.META_SHEET):
            continue
        for row in ws.iter_rows(min_row=L.FIRST_DATA_ROW + 1):
            action_id = row[0].value
            if action_id in edits:
                cell = ws.cell(row[0].row, col)
                cell.value = edits[action_id]
                cell.data_type = "s"
    wb.save(dst)


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "FAIL"


def bench_read(tmp: Path, n: int, figures: dict[str, Any], repeat: int) -> None:
    plan = make_plan(n)
    book = tmp / "return.xlsx"
    write_workbook(plan, book)
    t_read, t_cal = best_pair(lambda: read_return(book, plan), lambda: calamine_raw(book), repeat)
    t_opx = best(lambda: openpyxl_raw(book), repeat=1)
    figures["read"] = {
        "actions": n,
        "read_return_s": round(t_read, 3),
        "calamine_raw_s": round(t_cal, 3),
        "openpyxl_read_only_raw_s": round(t_opx, 3),
        "ratio_vs_calamine": round(t_read / t_cal, 2),
        "target": "<= 2.0",
        "verdict": verdict(t_read / t_cal, 2.0),
    }
    save_plan(plan, tmp / "plan.yaml")
    figures["read"]["peak_mb_read_return"] = round(
        child_peak(
            "from daplan_xlsx.planfile import load_plan\nfrom daplan_xlsx.reader import read_return\n"
            f"p=load_plan({str(tmp / 'plan.yaml')!r}); read_return({str(book)!r}, p)"
        ),
        1,
    )
    # The plan alone, for scale: most of the reader's peak is the 20,000-action plan it reads against.
    figures["read"]["peak_mb_plan_loaded_only"] = round(
        child_peak(f"from daplan_xlsx.planfile import load_plan\np=load_plan({str(tmp / 'plan.yaml')!r})"),
        1,
    )
    figures["read"]["peak_mb_calamine_raw"] = round(
        child_peak(
            f"from bench_returns import calamine_raw; calamine_raw(__import__('pathlib').Path({str(book)!r}))"
        ),
        1,
    )


def bench_distribute(tmp: Path, n: int, figures: dict[str, Any]) -> None:
    plan = make_plan(n, n_leads=50)
    out = tmp / "outbox-big"
    t = time.perf_counter()
    manifest = distribute(plan, out)
    figures["distribute"] = {
        "actions": n,
        "workbooks": len(manifest["workbooks"]),
        "seconds": round(time.perf_counter() - t, 2),
    }


def _returns_for(tmp: Path, n_returns: int) -> tuple[Path, list[Path]]:
    """A 300-action plan distributed by lead, and `n_returns` edited returns (copies of the lead files)."""
    folder = tmp / f"merge-{n_returns}"
    folder.mkdir()
    plan = make_plan(300, n_leads=50)
    plan_path = folder / "plan.yaml"
    save_plan(plan, plan_path)
    manifest = distribute(plan, folder / "outbox")
    rng = random.Random(7)
    returns = []
    books = manifest["workbooks"]
    for i in range(n_returns):
        wb = books[i % len(books)]
        edits = {a: f"Update {i} on {a}" for a in rng.sample(wb["scope"], max(1, len(wb["scope"]) // 5))}
        dst = folder / f"return-{i:03d}.xlsx"
        edit_return(folder / "outbox" / wb["file"], dst, edits)
        returns.append(dst)
    return plan_path, returns


def _calamine_all(paths: list[Path]) -> int:
    return sum(calamine_raw(p) for p in paths)


def bench_merge_many(tmp: Path, figures: dict[str, Any], repeat: int) -> None:
    out: dict[str, Any] = {}
    for n_returns in (20, 200):
        plan_path, returns = _returns_for(tmp, n_returns)
        plan = load_plan(plan_path)
        # Like with like: the raw read of every one of the same returns, each side timed the same way (best
        # of the passes over all the files), rather than one file read three times against one merge.
        elapsed, t_cal = best_pair(
            functools.partial(merge_returns, plan, returns),
            functools.partial(_calamine_all, returns),
            repeat,
        )
        t_cal /= n_returns
        listing = json.dumps([str(r) for r in returns])
        peak = child_peak(
            "import json,pathlib\nfrom daplan_xlsx.planfile import load_plan\nfrom daplan_xlsx.merge import merge_returns\n"
            f"p=load_plan({str(plan_path)!r}); merge_returns(p, [pathlib.Path(x) for x in json.loads({listing!r})])"
        )
        out[str(n_returns)] = {
            "merge_s": round(elapsed, 2),
            "per_return_s": round(elapsed / n_returns, 4),
            "calamine_raw_one_return_s": round(t_cal, 4),
            "per_return_vs_calamine": round(elapsed / n_returns / t_cal, 2),
            "peak_mb": round(peak, 1),
        }
    ratio = out["200"]["per_return_vs_calamine"]
    mem = out["200"]["peak_mb"] / out["20"]["peak_mb"]
    out["per_return_target"] = f"<= 2.5: {verdict(ratio, 2.5)}"
    out["memory_200_over_20"] = round(mem, 2)
    out["memory_target"] = f"<= 1.2: {verdict(mem, 1.2)}"
    figures["merge_300_actions"] = out


def _csv(plan_path: Path, path: Path) -> None:
    plan = load_plan(plan_path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "ref", "action", "response", "target", "status"])
        for _, a in plan.iter_actions():
            w.writerow([a.id, a.ref, a.action, a.response, a.target, a.status])


def _fresh_copy(pristine: Path, dst: Path) -> Path:
    """The plan as saved (with its cache and no journal) in a folder of its own: every run merges from it."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir()
    for f in pristine.iterdir():
        shutil.copy2(f, dst / f.name)
    return dst / "plan.yaml"


def _daplan_command() -> list[str]:
    script = shutil.which("daplan")
    return [script] if script else [sys.executable, "-m", "daplan_xlsx"]


def _daff_tables(
    plan: Plan, halves: list[list[str]], saved: Path, folder: Path, tables: tuple[Path, ...]
) -> None:
    """The parent and the two edited tables as CSV, the same edits as the returns make."""
    parent, *edited_tables = tables
    _csv(saved, parent)
    for k, target in enumerate(edited_tables):
        edited = plan.model_copy(deep=True)
        edited_ids = set(halves[k])
        for _, action in edited.iter_actions():
            if action.id in edited_ids:
                action.response = f"Progress update {k} for {action.id}"
        save_plan(edited, folder / f"e{k}.yaml")
        _csv(folder / f"e{k}.yaml", target)


def bench_daff(tmp: Path, n: int, figures: dict[str, Any], repeat: int) -> None:
    folder = tmp / "daff"
    folder.mkdir()
    plan = make_plan(n)
    pristine = folder / "pristine"
    pristine.mkdir()
    save_plan(plan, pristine / "plan.yaml")
    ids = [a.id for _, a in plan.iter_actions()]
    rng = random.Random(3)
    picks = rng.sample(ids, 2 * n // 100)
    halves = [picks[: n // 100], picks[n // 100 :]]
    returns = []
    for k, chosen in enumerate(halves):
        issued = folder / f"issued-{k}.xlsx"
        write_workbook(plan, issued, recipient=f"Lead {k}")
        dst = folder / f"return-{k}.xlsx"
        edit_return(issued, dst, {a: f"Progress update {k} for {a}" for a in chosen})
        returns.append(dst)

    daff = shutil.which("daff")
    parent, a, b = folder / "parent.csv", folder / "a.csv", folder / "b.csv"
    if daff is not None:
        _daff_tables(plan, halves, pristine / "plan.yaml", folder, (parent, a, b))
    # Nothing of the set-up is held while timing (a process merging holds only the plan it loads).
    del plan
    gc.collect()
    # Each round runs every side once, in turn, so a slow spell of the machine hits them alike.
    lib_times: list[float] = []
    cli_times: list[float] = []
    daff_times: list[float] = []
    applied = 0
    for _ in range(repeat):
        # The library: load the plan, merge both returns, save plan and journal, from the plan as saved
        # (copied outside the timing).
        plan_path = _fresh_copy(pristine, folder / "lib")
        t = time.perf_counter()
        result = merge_returns(load_plan(plan_path), returns)
        commit_merge(plan_path, result)
        lib_times.append(time.perf_counter() - t)
        applied = len(result.applied)
        # The command line, a process like daff's, with its start-up and report.
        plan_path = _fresh_copy(pristine, folder / "cli")
        t = time.perf_counter()
        done = subprocess.run(
            [*_daplan_command(), "merge", str(plan_path), *map(str, returns)], capture_output=True
        )
        cli_times.append(time.perf_counter() - t)
        if done.returncode not in (0, 1):
            raise SystemExit(f"daplan merge failed: {done.stderr.decode()}")
        if daff is not None:
            t = time.perf_counter()
            subprocess.run(
                [daff, "merge", "--output", str(folder / "merged.csv"), str(parent), str(a), str(b)],
                check=True,
                capture_output=True,
            )
            daff_times.append(time.perf_counter() - t)
    ours, ours_cli = min(lib_times), min(cli_times)
    entry: dict[str, Any] = {
        "actions": n,
        "changes_applied": applied,
        "runs_each": repeat,
        "daplan_library_s": round(ours, 2),
        "daplan_cli_s": round(ours_cli, 2),
    }
    if daff is None:
        entry["daff"] = "not installed (pip install daff)"
    else:
        theirs = min(daff_times)
        entry.update(
            {
                "daff_merge_s": round(theirs, 2),
                "library_ratio": round(ours / theirs, 3),
                "cli_ratio": round(ours_cli / theirs, 3),
                "target": "<= 0.1",
                "verdict_library": verdict(ours / theirs, 0.1),
                "verdict_cli": verdict(ours_cli / theirs, 0.1),
            }
        )
    figures["merge_vs_daff"] = entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["read", "distribute", "merge", "daff"])
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each side of every comparison, taken in turn (best kept)",
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "read" not in args.skip:
            bench_read(tmp, args.actions, figures, args.repeat)
            print(json.dumps({"read": figures["read"]}, indent=2), flush=True)
        if "distribute" not in args.skip:
            bench_distribute(tmp, args.actions, figures)
            print(json.dumps({"distribute": figures["distribute"]}, indent=2), flush=True)
        if "merge" not in args.skip:
            bench_merge_many(tmp, figures, args.repeat)
            print(json.dumps({"merge_300_actions": figures["merge_300_actions"]}, indent=2), flush=True)
        if "daff" not in args.skip:
            bench_daff(tmp, args.actions, figures, args.repeat)
            print(json.dumps({"merge_vs_daff": figures["merge_vs_daff"]}, indent=2), flush=True)


if __name__ == "__main__":
    main()
