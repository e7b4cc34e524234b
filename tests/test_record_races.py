"""Races on the plan's record with real processes: merges, exports, builds and distributions at the same time.

Every round starts the processes together (forked library calls released by one barrier, or `daplan`
subprocesses started back to back) on the same plan, then checks that nothing was lost: every edit of every
return is in the plan, the journal holds a line for each, and the journal agrees with the plan. The last tests
make the interleavings deterministic through the library (a stale commit is refused, an export of an older
revision keeps a newer merge's lines) and check how a command waits for the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import make_plan
from record_checks import check_agrees, fields_of
from returns import Loop

from daplan_xlsx import journal as J
from daplan_xlsx.distribute import distribute
from daplan_xlsx.export import write_export
from daplan_xlsx.master import master_content, write_master
from daplan_xlsx.merge import commit_merge, merge_returns
from daplan_xlsx.model import Action, Area, Lead, Plan
from daplan_xlsx.planfile import load_plan
from daplan_xlsx.record import PlanChanged, PlanLocked, Record, plan_lock

CTX = mp.get_context("fork")
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()
WAITING = "Another daplan command is changing"
ROUNDS = 100
CLI_ROUNDS = 10

# Two returns of make_plan's workbooks; Chief Constable and Head of Protect share LG-1 and change different
# fields of it, so both apply whichever merge commits first.
EDITS_CC: dict[tuple[str, str], str] = {
    ("LG-1", "notes"): "Notes from the Chief Constable: reviewed at the board",
    ("LG-1", "target"): "March 2027 (set by the CC)",
}
EDITS_HOP: dict[tuple[str, str], str] = {
    ("LG-1", "response"): "Response from Head of Protect: ünïcödé kept",
    ("LG-2", "response"): "The lead now chairs the monthly meeting",
    ("LG-2", "status"): "At risk",
}
EDITS_AC: dict[tuple[str, str], str] = {
    ("IC-1", "response"): "Call handlers trained in October",
    ("LG-L1", "notes"): "Local action notes from Area Commanders",
}


# -- processes -----------------------------------------------------------------------------------------------


@dataclass
class Ran:
    """How one process's job ended in one round: what it returned (or its traceback) and what it said."""

    name: str
    status: str  # "ok", "error" (the job raised) or "missing" (no report: the process died)
    value: Any
    stderr: str

    def clean(self) -> bool:
        """The job returned and said nothing but that it waited for the lock."""
        said = [line for line in self.stderr.splitlines() if line.strip()]
        return self.status == "ok" and all(line.startswith(WAITING) for line in said)

    def why(self) -> str:
        return f"{self.name}: {self.status}: {self.value}\nstderr: {self.stderr}"


def _worker(job: Callable[[int], Any], rounds: int, barrier: Any, conn: Any, err_path: Path) -> None:
    # Anything written below Python's sys.stderr lands in this file, which must stay empty.
    err = open(err_path, "w", encoding="utf-8")  # noqa: SIM115 - open until the process ends
    os.dup2(err.fileno(), 2)
    for n in range(rounds):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # the test gave up
            return
        said = io.StringIO()
        sys.stderr = said
        try:
            value = job(n)
        except BaseException:
            conn.send(("error", traceback.format_exc(), said.getvalue()))
        else:
            conn.send(("ok", value, said.getvalue()))
        finally:
            sys.stderr = err
    conn.close()


class Crew:
    """One forked process per job, all doing their job round after round; each round starts when the test
    has reset the record and releases them all at once through one barrier, so they really overlap."""

    def __init__(self, jobs: Mapping[str, Callable[[int], Any]], rounds: int, tmp: Path) -> None:
        self.barrier = CTX.Barrier(len(jobs) + 1)
        self.members = []
        for name, job in jobs.items():
            recv, send = CTX.Pipe(duplex=False)
            err = tmp / f".{name}.stderr"
            proc = CTX.Process(
                target=_worker, args=(job, rounds, self.barrier, send, err), name=name, daemon=True
            )
            proc.start()
            send.close()
            self.members.append((name, proc, recv, err))

    def round(self, timeout: float = 60) -> dict[str, Ran]:
        self.barrier.wait(timeout)
        out = {}
        for name, _proc, recv, _err in self.members:
            ran = Ran(name, "missing", None, "")
            if recv.poll(timeout):
                with contextlib.suppress(EOFError):
                    status, value, said = recv.recv()
                    ran = Ran(name, status, value, said)
            out[name] = ran
        return out

    def finish(self) -> None:
        """Every process ends by itself, with exit code 0 and nothing written to its stderr."""
        for name, proc, recv, err in self.members:
            proc.join(60)
            recv.close()
            assert proc.exitcode == 0, f"{name} exited with {proc.exitcode}"
            assert err.read_text(encoding="utf-8") == "", f"{name} wrote to stderr: {err.read_text()}"

    def __enter__(self) -> Crew:
        return self

    def __exit__(self, *exc: object) -> None:
        self.barrier.abort()  # a process still waiting for a round ends
        for _name, proc, _recv, _err in self.members:
            proc.join(10)
            if proc.is_alive():  # hung: end it (it is ours)
                proc.kill()
                proc.join()


# -- what each process does, as the CLI does it ----------------------------------------------------------------


def merge_job(plan_path: Path, files: list[Path]) -> dict[str, Any]:
    """`daplan merge PLAN FILES`, through the library."""
    with Record(plan_path) as rec:
        p = rec.load()
        entries = rec.entries()
        result = merge_returns(p, files, journal=entries)
        rec.commit(result.plan, result.journal)
    return {
        "loaded": p.revision,
        "committed": result.plan.revision,
        "outcomes": sorted((i.action_id, i.field, i.outcome) for i in result.items),
        "needs_person": result.needs_person,
    }


def export_job(plan_path: Path, output: Path) -> int:
    """`daplan export PLAN -o OUTPUT`, through the library: the revision it published."""
    with Record(plan_path) as rec:
        p = rec.load()
        info = write_export(p, plan_path, output)
    return info.revision


def distribute_job(plan_path: Path, outbox: Path, only: str | None) -> int:
    """`daplan distribute PLAN -o OUTBOX [--only ONLY] --force`, through the library: the revision it issued."""
    with Record(plan_path) as rec:
        p = rec.load()
        manifest = distribute(p, outbox, only=only, force=True)
    return int(manifest["plan_revision"])


def build_job(
    plan_path: Path,
    output: Path,
    outbox: Path,
    states: dict[int, dict[tuple[str, str], str]],
    changes: dict[int, set[tuple[str, str, str]]],
    until: int,
) -> dict[str, Any]:
    """`daplan build PLAN -o OUTPUT --outbox OUTBOX` (no lock: it only reads), then reading the plan and its
    journal again and again until revision `until` shows. Every read must be a whole committed plan
    (`states`: revision -> its fields) with exactly the journal's changes of that revision (`changes`)."""
    reads: list[int] = []
    deadline = time.monotonic() + 20
    while True:
        p = load_plan(plan_path)
        content = master_content(p, plan_path, today=TODAY, outbox=outbox)
        if p.revision not in states:
            raise AssertionError(f"read revision {p.revision}, not one of {sorted(states)}")
        got = fields_of(p)
        if got != states[p.revision]:
            diff = {
                k: (v, states[p.revision].get(k)) for k, v in got.items() if states[p.revision].get(k) != v
            }
            raise AssertionError(f"read a plan at revision {p.revision} that is no committed plan: {diff}")
        seen = {(e["action_id"], e["field"], e["new"]) for e in content.changes if e["event"] == "change"}
        if seen != changes[p.revision]:
            raise AssertionError(f"revision {p.revision} read with the journal's changes {seen}")
        if not reads:
            info = write_master(p, output, content, clock=lambda: NOW)
            if len(info.scope) != len(p.iter_actions()):
                raise AssertionError(f"master holds {len(info.scope)} actions")
        reads.append(p.revision)
        if p.revision >= until or time.monotonic() > deadline:
            return {"reads": len(reads), "revisions": sorted(set(reads))}


# -- checks ----------------------------------------------------------------------------------------------------


def check_merged(
    plan_path: Path, initial: Plan, returns: dict[Path, dict[tuple[str, str], str]], where: str
) -> list[dict[str, Any]]:
    """Every edit of every return is in the plan, with one `change` line each and one `return` line per
    return, all at the revision of the commit that merged the return."""
    plan, entries = check_agrees(plan_path, initial, where, all_committed=True)
    fields = fields_of(plan)
    for file, edits in returns.items():
        for key, value in edits.items():
            assert fields[key] == value, f"{where}: {file.name} {key} lost: plan has {fields[key]!r}"
        mine = [e for e in entries if e.get("return") == str(file) and e["event"] in ("return", "change")]
        assert [e["event"] for e in mine].count("return") == 1, f"{where}: {file.name}: {mine}"
        assert {e["revision"] for e in mine} and len({e["revision"] for e in mine}) == 1, f"{where}: {mine}"
        got = {(e["action_id"], e["field"]): e["new"] for e in mine if e["event"] == "change"}
        assert got == edits, f"{where}: {file.name}: change lines {got}, edits {edits}"
        assert len([e for e in mine if e["event"] == "change"]) == len(edits), f"{where}: {mine}"
    return entries


def reset(plan_path: Path, plan_bytes: bytes) -> None:
    """A fresh plan for the next round: the initial bytes, no journal."""
    plan_path.write_bytes(plan_bytes)
    J.journal_path(plan_path).unlink(missing_ok=True)


def assert_clean(ran: dict[str, Ran], where: str) -> None:
    for r in ran.values():
        assert r.clean(), f"{where}: {r.why()}"


# -- 1. two merges ---------------------------------------------------------------------------------------------


def merge_race(tmp_path: Path, plan: Plan, edits: dict[str, dict[tuple[str, str], str]]) -> int:
    """One process per recipient merging its return, ROUNDS times on a fresh plan; how many waited."""
    loop = Loop(tmp_path, plan)
    returns = {loop.returned(name, e): e for name, e in edits.items()}
    initial, initial_bytes = loop.plan, loop.plan_path.read_bytes()
    k = len(returns)
    jobs = {f"merge-{f.stem}": (lambda _n, f=f: merge_job(loop.plan_path, [f])) for f in returns}
    waited = 0
    with Crew(jobs, ROUNDS, tmp_path) as crew:
        for n in range(ROUNDS):
            where = f"round {n}"
            reset(loop.plan_path, initial_bytes)
            ran = crew.round()
            assert_clean(ran, where)
            waited += sum(WAITING in r.stderr for r in ran.values())
            results = [r.value for r in ran.values()]
            # One at a time, each on the plan the one before left: loaded 1, 2, ..., committed 2, 3, ...
            assert sorted(r["loaded"] for r in results) == list(range(1, k + 1)), f"{where}: {results}"
            assert sorted(r["committed"] for r in results) == list(range(2, k + 2)), f"{where}: {results}"
            for r in results:
                assert {o for _, _, o in r["outcomes"]} == {"applied"} and not r["needs_person"], (
                    f"{where}: {r}"
                )
            check_merged(loop.plan_path, initial, returns, where)
            assert load_plan(loop.plan_path).revision == k + 1, where
        crew.finish()
    return waited


def test_two_merges_of_different_returns_race(tmp_path: Path) -> None:
    # Chief Constable and Head of Protect both change LG-1, different fields of it.
    waited = merge_race(tmp_path, make_plan(), {"Chief Constable": EDITS_CC, "Head of Protect": EDITS_HOP})
    print(f"{waited} of {ROUNDS} rounds had a merge wait for the other's lock")
    # They really overlapped: in many rounds one waited for the other's lock.
    assert waited >= ROUNDS // 4, f"only {waited} of {ROUNDS} rounds had a merge wait for the other"


def test_two_merges_of_the_same_returns_race(tmp_path: Path) -> None:
    """Two people merge the same inbox at once: one merge applies it, the other finds it merged already."""
    loop = Loop(tmp_path, make_plan())
    returns = {
        loop.returned("Chief Constable", EDITS_CC): EDITS_CC,
        loop.returned("Head of Protect", EDITS_HOP): EDITS_HOP,
    }
    initial, initial_bytes = loop.plan, loop.plan_path.read_bytes()
    files = list(returns)
    jobs = {f"merge-{n}": (lambda _n: merge_job(loop.plan_path, files)) for n in range(2)}
    rounds = ROUNDS // 2
    with Crew(jobs, rounds, tmp_path) as crew:
        for n in range(rounds):
            where = f"round {n}"
            reset(loop.plan_path, initial_bytes)
            ran = crew.round()
            assert_clean(ran, where)
            first, second = sorted((r.value for r in ran.values()), key=lambda r: r["loaded"])
            assert (first["loaded"], first["committed"]) == (1, 2), f"{where}: {first}"
            assert {o for _, _, o in first["outcomes"]} == {"applied"}, f"{where}: {first}"
            # The second loaded the first's commit, merged nothing and committed nothing.
            assert (second["loaded"], second["committed"]) == (2, 2), f"{where}: {second}"
            assert second["outcomes"] == [] and not second["needs_person"], f"{where}: {second}"
            check_merged(loop.plan_path, initial, returns, where)
            assert load_plan(loop.plan_path).revision == 2, where
        crew.finish()


# -- 2. four merges --------------------------------------------------------------------------------------------

FOUR = ("Chief Constable", "Head of Protect", "Area Commanders", "Head of Crime")
# Each lead changes its own field of the shared action and a field of its own action.
FOUR_EDITS: dict[str, dict[tuple[str, str], str]] = {
    FOUR[0]: {("SH-1", "response"): "Shared response from the CC", ("OW-1", "notes"): "CC notes"},
    FOUR[1]: {("SH-1", "target"): "Target from HoP", ("OW-2", "response"): "HoP response"},
    FOUR[2]: {("SH-1", "notes"): "Notes from AC", ("OW-3", "status"): "On track"},
    FOUR[3]: {("SH-1", "status"): "At risk", ("OW-4", "target"): "Target from HoC"},
}


def four_lead_plan() -> Plan:
    shared = Action(id="SH-1", ref="1", action="An action every lead shares.", leads=list(FOUR))
    own = [
        Action(id=f"OW-{i}", ref=str(i), action=f"Own action {i}", leads=[name])
        for i, name in enumerate(FOUR, 1)
    ]
    return Plan(
        id="plan-race",
        title="Race Constabulary Domestic Abuse Action Plan",
        force="Race Constabulary",
        leads=[Lead(name=name) for name in FOUR],
        areas=[
            Area(id="SH", name="Shared", sheet="Shared", actions=[shared]),
            Area(id="OW", name="Own", sheet="Own", actions=own),
        ],
    )


def test_four_merges_of_different_returns_race(tmp_path: Path) -> None:
    waited = merge_race(tmp_path, four_lead_plan(), FOUR_EDITS)
    print(f"{waited} waits for the lock in {ROUNDS} rounds of four merges")
    assert waited >= ROUNDS, f"only {waited} waits in {ROUNDS} rounds of four merges"


# -- 3. a merge racing an export, a build and a distribution -----------------------------------------------------


def test_merge_races_export_build_and_distribute(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ret = loop.returned("Head of Protect", EDITS_HOP)
    returns = {ret: EDITS_HOP}
    initial, initial_bytes = loop.plan, loop.plan_path.read_bytes()
    # What the plan and its journal may be read as: before the merge, or after it.
    after = merge_returns(initial, [ret], now=NOW).plan
    states = {1: fields_of(initial), 2: fields_of(after)}
    changes: dict[int, set[tuple[str, str, str]]] = {
        1: set(),
        2: {(a, f, v) for (a, f), v in EDITS_HOP.items()},
    }
    assert states[1] != states[2]
    html, master, outbox = tmp_path / "plan.html", tmp_path / "master.xlsx", tmp_path / "reissued"
    distribute(initial, outbox)  # the outbox the build reads and the distribution re-issues into
    names = [wb["recipient"] for wb in json.loads((outbox / "manifest.json").read_text())["workbooks"]]
    jobs: dict[str, Callable[[int], Any]] = {
        "merge": lambda _n: merge_job(loop.plan_path, [ret]),
        "export": lambda _n: export_job(loop.plan_path, html),
        "build": lambda _n: build_job(loop.plan_path, master, outbox, states, changes, until=2),
        # `daplan distribute PLAN -o OUTBOX --force` every fourth round, else `--only NAME --force`, each round
        # another recipient's.
        "distribute": lambda n: distribute_job(
            loop.plan_path, outbox, None if n % 4 == 0 else names[n % len(names)]
        ),
    }
    seen_export, seen_build, seen_distribute = set(), set(), set()
    with Crew(jobs, ROUNDS, tmp_path) as crew:
        for n in range(ROUNDS):
            where = f"round {n}"
            reset(loop.plan_path, initial_bytes)
            ran = crew.round()
            assert_clean(ran, where)
            assert ran["merge"].value["committed"] == 2, f"{where}: {ran['merge'].value}"
            entries = check_merged(loop.plan_path, initial, returns, where)
            # The export published the revision it loaded, and says so in the journal beside the merge's lines.
            published = ran["export"].value
            assert published in (1, 2), where
            seen_export.add(published)
            publish = [e for e in entries if e["event"] == "publish"]
            assert [(e["revision"], e["file"]) for e in publish] == [(published, str(html))], (
                f"{where}: {publish}"
            )
            assert len(entries) == 1 + len(EDITS_HOP) + 1, f"{where}: {entries}"
            text = html.read_text(encoding="utf-8")
            assert ("The lead now chairs the monthly meeting" in text) == (published == 2), where
            # The distribution re-issued from a whole plan, before the merge or after it, keeping the others.
            issued = ran["distribute"].value
            assert issued in (1, 2), where
            seen_distribute.add(issued)
            manifest = json.loads((outbox / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["plan_revision"] == issued, where
            assert [wb["recipient"] for wb in manifest["workbooks"]] == names, where
            seen_build.update(ran["build"].value["revisions"])
            assert master.is_file(), where
        crew.finish()
    # Over the rounds the interleavings varied: each saw both sides of the merge.
    assert seen_export == {1, 2}, f"the export only ever saw revision(s) {seen_export}"
    assert seen_distribute == {1, 2}, f"the distribution only ever saw revision(s) {seen_distribute}"
    assert seen_build == {1, 2}, f"the reader only ever saw revision(s) {seen_build}"


# -- the same through the command line -----------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAPLAN_KEY_FILE", "DAPLAN_WAIT")}
    return {**env, **extra}


def daplan(*args: object, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "daplan_xlsx", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(**extra),
    )


def test_cli_merges_and_export_race(tmp_path: Path) -> None:
    """`daplan merge` twice and `daplan export`, started together as separate commands."""
    loop = Loop(tmp_path, make_plan())
    returns = {
        loop.returned("Chief Constable", EDITS_CC): EDITS_CC,
        loop.returned("Area Commanders", EDITS_AC): EDITS_AC,
    }
    initial, initial_bytes = loop.plan, loop.plan_path.read_bytes()
    html = tmp_path / "plan.html"
    published = set()
    for n in range(CLI_ROUNDS):
        where = f"round {n}"
        reset(loop.plan_path, initial_bytes)
        procs = [daplan("merge", loop.plan_path, f) for f in returns]
        procs.insert(1, daplan("export", loop.plan_path, "-o", html))
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            said = [line for line in err.splitlines() if line.strip()]
            assert proc.returncode == 0, f"{where}: {proc.args}: exit {proc.returncode}\n{out}\n{err}"
            assert all(line.startswith(WAITING) for line in said), f"{where}: {proc.args}: {err}"
        entries = check_merged(loop.plan_path, initial, returns, where)
        assert load_plan(loop.plan_path).revision == 3, where
        publish = [e for e in entries if e["event"] == "publish"]
        assert [e["file"] for e in publish] == [str(html)], f"{where}: {entries}"
        published.add(publish[0]["revision"])
    print(f"the export published revision(s) {sorted(published)}")


# -- 4. the interleavings made deterministic ----------------------------------------------------------------------


def test_second_of_two_merges_from_one_revision_is_refused_then_redone(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    a = loop.returned("Chief Constable", EDITS_CC)
    b = loop.returned("Head of Protect", EDITS_HOP)
    initial = loop.plan
    first, second = load_plan(loop.plan_path), load_plan(loop.plan_path)
    result_a = merge_returns(first, [a], journal=[], now=NOW)
    result_b = merge_returns(second, [b], journal=[], now=NOW)
    commit_merge(loop.plan_path, result_a)
    before = loop.snapshot()
    with pytest.raises(PlanChanged) as refused:
        commit_merge(loop.plan_path, result_b)
    assert "changed on disk" in refused.value.one_line()
    assert loop.snapshot() == before, "a refused commit changed the plan or its journal"
    check_merged(loop.plan_path, initial, {a: EDITS_CC}, "after the refusal")
    # Done again on the plan as it is now, it applies.
    plan = load_plan(loop.plan_path)
    redo = merge_returns(plan, [b], journal=J.read_journal(loop.journal, plan.revision), now=NOW)
    assert {i.outcome for i in redo.items} == {"applied"}
    commit_merge(loop.plan_path, redo)
    check_merged(loop.plan_path, initial, {a: EDITS_CC, b: EDITS_HOP}, "after the redo")
    assert load_plan(loop.plan_path).revision == 3


def test_two_merges_from_one_loaded_plan_second_refused(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    a = loop.returned("Chief Constable", EDITS_CC)
    b = loop.returned("Area Commanders", EDITS_AC)
    plan = load_plan(loop.plan_path)
    result_a = merge_returns(plan, [a], now=NOW)
    result_b = merge_returns(plan, [b], now=NOW)
    commit_merge(loop.plan_path, result_a)
    before = loop.snapshot()
    with pytest.raises(PlanChanged):
        commit_merge(loop.plan_path, result_b)
    assert loop.snapshot() == before


def test_hand_edit_between_load_and_commit_is_refused(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    a = loop.returned("Chief Constable", EDITS_CC)
    plan = load_plan(loop.plan_path)
    result = merge_returns(plan, [a], now=NOW)
    # The owner adds a comment in an editor meanwhile: the same revision, other bytes.
    loop.plan_path.write_bytes(b"# checked by the owner\n" + loop.plan_path.read_bytes())
    before = loop.snapshot()
    with pytest.raises(PlanChanged):
        commit_merge(loop.plan_path, result)
    assert loop.snapshot() == before


def test_export_of_an_older_revision_keeps_the_newer_merge(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    a = loop.returned("Chief Constable", EDITS_CC)
    b = loop.returned("Head of Protect", EDITS_HOP)
    initial = loop.plan
    commit_merge(loop.plan_path, merge_returns(initial, [a], now=NOW))  # revision 2
    exported = load_plan(loop.plan_path)  # the export loads revision 2 ...
    plan = load_plan(loop.plan_path)
    # ... a merge commits revision 3 before the export appends its line ...
    commit_merge(loop.plan_path, merge_returns(plan, [b], journal=J.read_journal(loop.journal, 2), now=NOW))
    plan_bytes = loop.plan_path.read_bytes()
    out = tmp_path / "plan.html"
    info = write_export(exported, loop.plan_path, out)
    assert info.revision == 2
    assert loop.plan_path.read_bytes() == plan_bytes, "an export changed the plan"
    # ... and the merge's lines survive, with the publication of revision 2 beside them.
    entries = check_merged(loop.plan_path, initial, {a: EDITS_CC, b: EDITS_HOP}, "after the export")
    assert [(e["revision"], e["event"]) for e in entries if e["event"] in ("publish", "return")] == [
        (2, "return"),
        (3, "return"),
        (2, "publish"),
    ]
    assert J.last_publication(entries)["revision"] == 2  # type: ignore[index]
    # The next commit keeps every line too.
    plan = load_plan(loop.plan_path)
    c = loop.returned("Area Commanders", EDITS_AC)
    commit_merge(loop.plan_path, merge_returns(plan, [c], journal=J.read_journal(loop.journal, 3), now=NOW))
    entries = check_merged(loop.plan_path, initial, {a: EDITS_CC, b: EDITS_HOP, c: EDITS_AC}, "next commit")
    assert len([e for e in entries if e["event"] == "publish"]) == 1


# -- 5. waiting for the lock --------------------------------------------------------------------------------------


def _hold(plan_path: Path, conn: Any, release: Any) -> None:
    with plan_lock(plan_path, on_wait=None):
        conn.send("held")
        release.wait(60)
    conn.send("released")


@pytest.fixture
def held(tmp_path: Path) -> Any:
    """A process holding a plan's lock until `release` is set; the plan and a clean return of it."""
    loop = Loop(tmp_path, make_plan())
    ret = loop.returned("Chief Constable", EDITS_CC)
    recv, send = CTX.Pipe(duplex=False)
    release = CTX.Event()
    proc = CTX.Process(target=_hold, args=(loop.plan_path, send, release), daemon=True)
    proc.start()
    send.close()
    assert recv.poll(30) and recv.recv() == "held"
    yield loop, ret, release, recv
    release.set()
    proc.join(30)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert proc.exitcode == 0


def _one_line_failure(proc: subprocess.Popen[str], waited: float | None) -> str:
    out, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}\n{out}\n{err}"
    if waited is None:
        assert len(lines) == 1, err
    else:
        assert len(lines) == 2 and lines[0].startswith(WAITING), err
        assert f"waiting up to {waited:.0f} s" in lines[0], err
    assert lines[-1].startswith("Error: ") and "another daplan command" in lines[-1], err
    assert "Traceback" not in err and out == "", (out, err)
    return lines[-1]


def test_merge_waits_for_the_lock_then_fails_in_one_line(held: Any) -> None:
    loop, ret, _release, _recv = held
    before = loop.snapshot()
    start = time.monotonic()
    proc = daplan("--wait", "1", "merge", loop.plan_path, ret)
    _one_line_failure(proc, waited=1)
    assert time.monotonic() - start >= 1.0
    assert loop.snapshot() == before, "a merge that could not take the lock changed the plan"
    # The same bound from the environment.
    start = time.monotonic()
    _one_line_failure(daplan("merge", loop.plan_path, ret, DAPLAN_WAIT="1"), waited=1)
    assert time.monotonic() - start >= 1.0
    # No wait at all: refused at once, without saying it waits.
    _one_line_failure(daplan("--wait", "0", "merge", loop.plan_path, ret), waited=None)
    assert loop.snapshot() == before
    # Through the library: PlanLocked after the wait, nothing written.
    with pytest.raises(PlanLocked), Record(loop.plan_path, wait=0.2):
        pass
    assert loop.snapshot() == before


def test_merge_waits_for_the_lock_then_succeeds(held: Any) -> None:
    loop, ret, release, recv = held
    initial = loop.plan
    before_wait = loop.snapshot()
    proc = daplan("--wait", "60", "merge", loop.plan_path, ret)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # it says it waits, then waits
    assert first.startswith(WAITING) and "waiting up to 60 s" in first, first
    time.sleep(0.3)
    assert proc.poll() is None, "the merge did not wait for the lock"
    assert loop.snapshot() == before_wait, "the merge wrote while another command held the lock"
    release.set()
    assert recv.poll(30) and recv.recv() == "released"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"{out}\n{first}{err}"
    assert "Error" not in err
    check_merged(loop.plan_path, initial, {ret: EDITS_CC}, "after waiting")


def test_daplan_wait_from_the_environment_lets_a_merge_wait(held: Any) -> None:
    loop, ret, release, _recv = held
    initial = loop.plan
    proc = daplan("merge", loop.plan_path, ret, DAPLAN_WAIT="60")
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith(WAITING) and "waiting up to 60 s" in first, first
    release.set()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"{out}\n{first}{err}"
    check_merged(loop.plan_path, initial, {ret: EDITS_CC}, "after waiting")


# -- 6. a command replacing the plan while another commits -------------------------------------------------------


def _merge_paused_before_replacing(plan_path: Path, files: list[Path], conn: Any, go: Any) -> None:
    """A merge that stops inside its commit, its checks passed and its journal written, until `go`."""
    from daplan_xlsx import planfile

    replace = planfile._replace

    def paused(tmp: str, target: Path) -> None:
        if target.suffix == ".yaml":
            conn.send("paused")
            go.wait(60)
        replace(tmp, target)

    planfile._replace = paused
    merge_job(plan_path, files)
    conn.send("done")


def test_new_force_over_a_plan_being_committed_is_not_lost(tmp_path: Path) -> None:
    loop = Loop(tmp_path, make_plan())
    ret = loop.returned("Chief Constable", EDITS_CC)
    initial = loop.plan
    recv, send = CTX.Pipe(duplex=False)
    go = CTX.Event()
    proc = CTX.Process(
        target=_merge_paused_before_replacing, args=(loop.plan_path, [ret], send, go), daemon=True
    )
    proc.start()
    send.close()
    try:
        assert recv.poll(30) and recv.recv() == "paused"
        new = daplan("--wait", "1", "new", "--force-name", "Other Police", "--force", "-o", loop.plan_path)
        out, err = new.communicate(timeout=60)
    finally:
        go.set()
        proc.join(30)
    assert proc.exitcode == 0
    on_disk = load_plan(loop.plan_path)
    if new.returncode == 0:  # `new` said it wrote the plan: that plan must be the one on disk
        assert on_disk.force == "Other Police", f"`daplan new` said {out!r}, but the merge replaced its plan"
    else:  # or it waited for the lock and refused, in one line, writing nothing
        assert new.returncode == 2 and err.count("Error: ") == 1, (out, err)
        check_merged(loop.plan_path, initial, {ret: EDITS_CC}, "after the refused `new`")


def test_new_force_never_replaces_a_plan_with_a_record(tmp_path: Path) -> None:
    """A plan with a journal has history: `new --force` and `import --force` refuse to orphan it."""
    loop = Loop(tmp_path, make_plan())
    merge_job(loop.plan_path, [loop.returned("Chief Constable", EDITS_CC)])
    before = loop.snapshot()
    new = daplan("new", "--force-name", "Other Police", "--force", "-o", loop.plan_path)
    out, err = new.communicate(timeout=60)
    assert new.returncode == 2 and "has a record of merges" in err and err.count("\n") == 1, (out, err)
    assert loop.snapshot() == before
