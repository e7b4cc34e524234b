"""Crashes of the commands that change the record: kill -9 at random moments, and at chosen ones.

Each scenario builds a plan with its journal (state S0) and an operation done as the CLI does it: `daplan
merge`, `resolve`, `recheck` and `undo` through the library, under the plan's lock, with a fixed clock. The
operation run uninterrupted from S0 gives the reference. Then, round after round, S0 is put back, a forked
child runs the operation and is killed with SIGKILL after a random delay (seeded: the seed and round are in
every message), and:

- the plan parses, and is S0's plan or the reference's, byte for byte (never half of one);
- plan and journal agree: every field is the newest live `change` line's `new` for it, every commit has its
  lines, and the committed lines are S0's or the reference's;
- running the operation again, uninterrupted, gives exactly the reference's plan and journal (an operation
  that already committed refuses or does nothing, as the CLI would when run twice).

The delays are measured first (the child's time to start committing and to finish) and drawn over the whole
run and, more often, over its commit, where a kill is most interesting. The last tests crash at chosen points
of a commit (a journal line half written, the journal written but the plan not replaced, ...) and feed the
record a torn last journal line.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import make_plan
from record_checks import check_agrees
from returns import Loop

from daplan_xlsx import journal as J
from daplan_xlsx import planfile
from daplan_xlsx import record as R
from daplan_xlsx import settle as S
from daplan_xlsx.export import write_export
from daplan_xlsx.merge import merge_returns
from daplan_xlsx.model import Lead, Plan, Status
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.record import Record

CTX = mp.get_context("fork")
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
LATER = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)
WHO = "Crash Tester"
SEED = int(os.environ.get("DAPLAN_CRASH_SEED", "20261120"))
ROUNDS = 50


# -- the record's state ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    plan: bytes
    journal: bytes | None


def state_of(plan_path: Path) -> State:
    jpath = J.journal_path(plan_path)
    return State(plan_path.read_bytes(), jpath.read_bytes() if jpath.exists() else None)


def put_back(plan_path: Path, state: State) -> None:
    planfile.atomic_write_bytes(plan_path, state.plan)
    jpath = J.journal_path(plan_path)
    if state.journal is None:
        jpath.unlink(missing_ok=True)
    else:
        planfile.atomic_write_bytes(jpath, state.journal)


def committed(plan_path: Path, revision: int) -> list[dict[str, Any]]:
    return J.read_journal(J.journal_path(plan_path), revision, include_undone=True)


def journal_is_tidy(plan_path: Path, revision: int, where: str) -> None:
    """Every line of the journal file is whole, valid and committed."""
    jpath = J.journal_path(plan_path)
    raw = jpath.read_bytes() if jpath.exists() else b""
    assert raw == J.encode(committed(plan_path, revision)), f"{where}: journal not tidied: {raw[-300:]!r}"


# -- scenarios -------------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """A record in state S0 and an operation on it, done as the CLI does it."""

    name: str
    plan_path: Path
    initial: Plan  # the plan at revision 1, before any commit
    s0: State
    operation: Callable[[Path], None]
    # What running the operation again raises once it has committed (None: it does nothing then).
    again: type[Exception] | None = None
    reference: State = field(default_factory=lambda: State(b"", None))
    files: list[Path] = field(default_factory=list)  # the returns a merge merges

    def run(self) -> None:
        self.operation(self.plan_path)

    def run_again(self, where: str) -> None:
        """The operation once more, uninterrupted, as a user would after a crash."""
        if load_plan(self.plan_path).revision == load_plan_bytes(self.s0.plan).revision or self.again is None:
            self.run()
            return
        before = state_of(self.plan_path)
        with pytest.raises(self.again):
            self.run()
        assert state_of(self.plan_path) == before, f"{where}: a refused operation changed the record"


def load_plan_bytes(data: bytes) -> Plan:
    return planfile.loads_plan(data.decode("utf-8"))


def _merge(files: list[Path]) -> Callable[[Path], None]:
    def operation(plan_path: Path) -> None:  # `daplan merge PLAN FILES...`
        with Record(plan_path) as rec:
            p = rec.load()
            result = merge_returns(p, files, journal=rec.entries(), now=LATER)
            rec.commit(result.plan, result.journal)

    return operation


def _commit_through_record(plan_path: Path, files: list[Path]) -> None:
    with Record(plan_path) as rec:
        p = rec.load()
        result = merge_returns(p, files, journal=rec.entries(), now=NOW)
        rec.commit(result.plan, result.journal)


def merge_scenario(root: Path) -> Scenario:
    """S0: one return merged (revision 2). The operation: two more returns at once, one with a refused value."""
    loop = Loop(root, make_plan())
    first = loop.returned("Chief Constable", {("LG-1", "notes"): "Merged before the crash test"})
    _commit_through_record(loop.plan_path, [first])
    files = [
        loop.returned(
            "Head of Protect",
            {
                ("LG-1", "response"): "Response from Head of Protect, ünïcödé and all",
                ("LG-2", "target"): "June 2027",
                ("LG-2", "status"): "Not a status",  # refused: an open item
                ("LG-2", "notes"): "Notes\nover two lines",
            },
        ),
        loop.returned(
            "Area Commanders",
            {("IC-1", "response"): "Call handlers trained", ("LG-L1", "status"): "On track"},
        ),
    ]
    return Scenario(
        "merge", loop.plan_path, make_plan(), state_of(loop.plan_path), _merge(files), files=files
    )


def resolve_scenario(root: Path) -> Scenario:
    """S0: two returns disagree on LG-1's response (an open conflict). The operation: `daplan resolve`."""
    loop = Loop(root, make_plan())
    files = [
        loop.returned("Chief Constable", {("LG-1", "response"): "The CC's answer", ("LG-1", "notes"): "CC"}),
        loop.returned("Head of Protect", {("LG-1", "response"): "HoP's answer", ("LG-2", "target"): "2028"}),
    ]
    _commit_through_record(loop.plan_path, files)

    def operation(plan_path: Path) -> None:  # daplan resolve PLAN LG-1 response --take 2 --reason ...
        with Record(plan_path) as rec:
            p = rec.load()
            out = S.resolve(
                p, rec.entries(), "LG-1", "Response", take="2", reason="agreed", who=WHO, now=LATER
            )
            rec.commit(out.plan, out.lines)

    return Scenario(
        "resolve", loop.plan_path, make_plan(), state_of(loop.plan_path), operation, S.SettleError
    )


def recheck_scenario(root: Path) -> Scenario:
    """S0: a refused lead and status, then added to the register and vocabulary by hand. The operation:
    `daplan recheck`."""
    loop = Loop(root, make_plan())
    ret = loop.returned(
        "Head of Protect",
        {("LG-2", "lead"): "Safeguarding Board", ("LG-2", "status"): "Paused", ("LG-1", "notes"): "n"},
    )
    _commit_through_record(loop.plan_path, [ret])
    p = load_plan(loop.plan_path)
    paused = Status(name="Paused", colour="#000000", meaning="On hold.", closed=False)
    save_plan(
        p.model_copy(
            update={"leads": [*p.leads, Lead(name="Safeguarding Board")], "statuses": [*p.statuses, paused]}
        ),
        loop.plan_path,
    )

    def operation(plan_path: Path) -> None:  # daplan recheck PLAN
        with Record(plan_path) as rec:
            p = rec.load()
            out = S.recheck(p, rec.entries(), who=WHO, now=LATER)
            if out.lines:
                rec.commit(out.plan, out.lines)

    return Scenario("recheck", loop.plan_path, make_plan(), state_of(loop.plan_path), operation)


def undo_scenario(root: Path) -> Scenario:
    """S0: two merges (revisions 2 and 3), the second with an open item. The operation: `daplan undo --to 2`."""
    loop = Loop(root, make_plan())
    a = loop.returned("Chief Constable", {("LG-1", "notes"): "From the CC", ("LG-1", "target"): "2027"})
    b = loop.returned(
        "Head of Protect",
        {("LG-1", "response"): "From HoP", ("LG-2", "status"): "Unknown words", ("LG-2", "notes"): "x"},
    )
    c = loop.returned("Area Commanders", {("IC-1", "notes"): "From AC"})
    _commit_through_record(loop.plan_path, [a])
    _commit_through_record(loop.plan_path, [b, c])

    def operation(plan_path: Path) -> None:  # daplan undo PLAN --to 2
        with Record(plan_path) as rec:
            p = rec.load()
            out = S.undo(p, rec.entries(), to=2, who=WHO, now=LATER)
            rec.commit(out.plan, out.lines)

    return Scenario("undo", loop.plan_path, make_plan(), state_of(loop.plan_path), operation, S.SettleError)


def prepared(make: Callable[[Path], Scenario], root: Path) -> Scenario:
    """The scenario with its reference: the operation run once, uninterrupted, from S0."""
    sc = make(root)
    sc.run()
    sc.reference = state_of(sc.plan_path)
    assert sc.reference.plan != sc.s0.plan, f"{sc.name}: the operation changed nothing"
    put_back(sc.plan_path, sc.s0)
    return sc


# -- killing ---------------------------------------------------------------------------------------------------


def _child(sc: Scenario, conn: Any, instrument: bool) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    if instrument:  # for measuring: when the commit starts, the journal is written, the plan replaced
        commit, append, replace = R.commit_plan, J.append, planfile._replace

        def timed_commit(*args: Any, **kw: Any) -> None:
            conn.send(("commit", time.monotonic()))
            commit(*args, **kw)

        def timed_append(*args: Any, **kw: Any) -> None:
            append(*args, **kw)
            conn.send(("appended", time.monotonic()))

        def timed_replace(tmp: str, target: Path) -> None:
            replace(tmp, target)
            if target.suffix == ".yaml":
                conn.send(("replaced", time.monotonic()))

        R.commit_plan, J.append, planfile._replace = timed_commit, timed_append, timed_replace  # type: ignore[assignment]
    try:
        sc.run()
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        os._exit(1)
    conn.send(("done", time.monotonic()))
    os._exit(0)


@dataclass
class Child:
    exitcode: int | None
    reports: dict[str, Any]


def run_child(sc: Scenario, *, delay: float | None = None, instrument: bool = False) -> tuple[float, Child]:
    """Fork a child doing the operation; SIGKILL it after `delay` seconds (None: let it finish)."""
    recv, send = CTX.Pipe(duplex=False)
    start = time.monotonic()
    proc = CTX.Process(target=_child, args=(sc, send, instrument), daemon=True)
    proc.start()
    send.close()
    if delay is not None:
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        proc.join()
    reports: dict[str, Any] = {}
    while recv.poll():
        try:
            kind, value = recv.recv()
        except EOFError:
            break
        reports[kind] = value
    recv.close()
    return start, Child(proc.exitcode, reports)


@dataclass
class Timing:
    """Seconds from forking the child to each step of its operation (medians)."""

    commit: float  # the commit starts (lock held, plan loaded, decisions made)
    appended: float  # the journal lines are written and synced
    replaced: float  # the plan file is replaced
    done: float  # the operation has returned

    def __str__(self) -> str:
        return ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in vars(self).items())


def measure(sc: Scenario, times: int = 3) -> Timing:
    """How long the child takes to reach each step, from S0, uninterrupted."""
    seen: dict[str, list[float]] = {}
    for _ in range(times):
        put_back(sc.plan_path, sc.s0)
        start, child = run_child(sc, instrument=True)
        assert child.exitcode == 0 and "done" in child.reports, f"{sc.name}: {child}"
        for step in ("commit", "appended", "replaced", "done"):
            seen.setdefault(step, []).append(child.reports[step] - start)
    assert state_of(sc.plan_path) == sc.reference, (
        f"{sc.name}: an uninterrupted child differs from the reference"
    )
    return Timing(**{step: statistics.median(times) for step, times in seen.items()})


def classify(sc: Scenario, where: str) -> str:
    """What the kill left: the operation not begun on disk, only journalled, or committed."""
    now = state_of(sc.plan_path)
    if now.plan == sc.s0.plan:
        return "before" if now.journal == sc.s0.journal else "journal only"
    assert now.plan == sc.reference.plan, f"{where}: the plan is neither S0's nor the reference's"
    return "committed"


def kill_rounds(sc: Scenario, seed: int, rounds: int = ROUNDS) -> dict[str, int]:
    """The random kills; how many rounds ended in each state."""
    rng = random.Random(seed)
    timing = measure(sc)
    outcomes: dict[str, int] = {}
    plan_path = sc.plan_path
    s0_revision = load_plan_bytes(sc.s0.plan).revision
    ref_revision = load_plan_bytes(sc.reference.plan).revision
    for n in range(rounds):
        # A third anywhere in the operation; the rest around its commit, from its start to the plan's replacing.
        if rng.random() < 1 / 3:
            delay = rng.uniform(0, timing.done * 1.1)
        else:
            delay = rng.uniform(timing.commit * 0.95, timing.replaced * 1.05)
        where = f"{sc.name}, seed {seed}, round {n}, killed after {delay * 1000:.1f} ms"
        put_back(plan_path, sc.s0)
        _, child = run_child(sc, delay=delay)
        assert child.exitcode in (0, -signal.SIGKILL), f"{where}: the child failed by itself: {child}"
        assert "error" not in child.reports, f"{where}: {child.reports['error']}"
        state = classify(sc, where)
        outcomes[state] = outcomes.get(state, 0) + 1
        # The plan parses and agrees with its journal; the committed lines are S0's or the reference's.
        plan, _ = check_agrees(plan_path, sc.initial, where)
        lines = committed(plan_path, plan.revision)
        if state == "committed":
            assert plan.revision == ref_revision, where
            assert J.encode(lines) == sc.reference.journal, (
                f"{where}: committed lines differ from the reference"
            )
        else:
            assert plan.revision == s0_revision, where
            assert J.encode(lines) == (sc.s0.journal or b""), f"{where}: S0's committed lines changed"
        # The dead child's lock went with it: another command takes it at once.
        with Record(plan_path, wait=0):
            pass
        # Again, uninterrupted: exactly the reference.
        sc.run_again(where)
        after = state_of(plan_path)
        assert after.plan == sc.reference.plan, f"{where} ({state}): the plan does not converge"
        assert load_plan(plan_path).model_dump() == load_plan_bytes(sc.reference.plan).model_dump(), where
        assert after.journal == sc.reference.journal, f"{where} ({state}): the journal does not converge"
        journal_is_tidy(plan_path, ref_revision, where)
    left = sorted(p.name for p in plan_path.parent.iterdir() if p.name.endswith(".tmp"))
    print(f"{sc.name}: {timing}; {outcomes}; {len(left)} temporary file(s) left by the killed children")
    return outcomes


SCENARIOS = {
    "merge": merge_scenario,
    "resolve": resolve_scenario,
    "recheck": recheck_scenario,
    "undo": undo_scenario,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_kill_at_random_moments(name: str, tmp_path: Path) -> None:
    sc = prepared(SCENARIOS[name], tmp_path)
    seed = SEED + list(SCENARIOS).index(name)
    outcomes = kill_rounds(sc, seed)
    assert sum(outcomes.values()) == ROUNDS
    # Killed both before and after committing: the rounds covered the operation, not just one side of it.
    assert outcomes.get("before", 0) + outcomes.get("journal only", 0) > 0, f"seed {seed}: {outcomes}"
    assert outcomes.get("committed", 0) > 0, f"seed {seed}: {outcomes}"


# -- the commands themselves, killed ---------------------------------------------------------------------------

CLI_ROUNDS = 6
# Each scenario's operation as typed, and the exit codes it may end with (1: something still needs a person).
CLI_ARGS: dict[str, tuple[list[str], set[int]]] = {
    "merge": (["merge", "{plan}", "{files}"], {0, 1}),
    "resolve": (["resolve", "{plan}", "LG-1", "Response", "--take", "2", "--reason", "agreed"], {0}),
    "recheck": (["recheck", "{plan}"], {0, 1}),
    "undo": (["undo", "{plan}", "--to", "2"], {0}),
}


def cli_command(sc: Scenario) -> list[str]:
    args: list[str] = []
    for a in CLI_ARGS[sc.name][0]:
        args += [str(f) for f in sc.files] if a == "{files}" else [a.replace("{plan}", str(sc.plan_path))]
    return [sys.executable, "-m", "daplan_xlsx", *args]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAPLAN_KEY_FILE", "DAPLAN_WAIT")}
    return {**env, "DAPLAN_USER": WHO}


def timeless(state: State) -> tuple[Any, list[dict[str, Any]]]:
    """A state apart from the clock: the plan's model without `updated`, the journal's lines without `time`."""
    plan = load_plan_bytes(state.plan).model_dump()
    for area in plan["areas"]:
        for action in area["actions"]:
            action.pop("updated")
    lines = [json.loads(line) for line in (state.journal or b"").decode().split("\n") if line]
    for line in lines:
        line.pop("time")
    return plan, lines


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_kill_the_command_at_random_moments(name: str, tmp_path: Path) -> None:
    sc = SCENARIOS[name](tmp_path)
    command, codes = cli_command(sc), CLI_ARGS[name][1]
    # The reference: the command run once, uninterrupted; how long it takes.
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120, check=False)
    duration = time.monotonic() - start
    assert done.returncode in codes, done.stderr
    reference = timeless(state_of(sc.plan_path))
    ref_revision = load_plan(sc.plan_path).revision
    assert ref_revision == load_plan_bytes(sc.s0.plan).revision + 1, done.stdout
    rng = random.Random(SEED + 100 + list(SCENARIOS).index(name))
    outcomes: dict[str, int] = {}
    for n in range(CLI_ROUNDS):
        # Most of a command's time is starting Python: kill it over the later part of its run.
        delay = rng.uniform(duration * 0.5, duration * 1.05)
        where = f"daplan {name}, seed {SEED + 100}, round {n}, killed after {delay * 1000:.0f} ms"
        put_back(sc.plan_path, sc.s0)
        with subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env()
        ) as proc:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode in (*codes, -signal.SIGKILL), f"{where}: exit {proc.returncode}: {err!r}"
        plan, _ = check_agrees(sc.plan_path, sc.initial, where)
        state = "committed" if plan.revision == ref_revision else "not committed"
        outcomes[state] = outcomes.get(state, 0) + 1
        # Whole: the reference's plan and committed lines (apart from the clock), or S0's, byte for byte.
        lines = J.encode(committed(sc.plan_path, plan.revision))
        if state == "committed":
            assert timeless(State(state_of(sc.plan_path).plan, lines)) == reference, where
        else:
            assert state_of(sc.plan_path).plan == sc.s0.plan and lines == (sc.s0.journal or b""), where
        # The same command again, uninterrupted: the reference, apart from the clock.
        again = subprocess.run(
            command, capture_output=True, text=True, env=cli_env(), timeout=120, check=False
        )
        if state == "committed" and sc.again is not None:
            assert again.returncode == 2 and again.stderr.startswith("Error: "), f"{where}: {again.stderr}"
        else:
            assert again.returncode in codes, f"{where}: {again.stderr}"
        assert timeless(state_of(sc.plan_path)) == reference, f"{where} ({state}): does not converge"
        journal_is_tidy(sc.plan_path, ref_revision, where)
    print(f"daplan {name}: {duration * 1000:.0f} ms uninterrupted; {outcomes}")


# -- chosen crash points ---------------------------------------------------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _torn_append(path: Path, entries: list[dict[str, Any]]) -> None:
    """The journal's lines half written (cut inside a multi-byte character when there is one), then death."""
    data = J.encode(entries)
    cut = len(data) // 2
    wide = data.find("ü".encode())
    if wide > 0:
        cut = wide + 1
    with path.open("ab") as fh:
        fh.write(data[:cut])
        fh.flush()
        os.fsync(fh.fileno())
    _die()


def _append_then_die(path: Path, entries: list[dict[str, Any]]) -> None:
    ORIGINAL_APPEND(path, entries)
    _die()


def _replace_then_die(tmp: str, target: Path) -> None:
    ORIGINAL_REPLACE(tmp, target)
    _die()


def _die_instead(*_args: Any, **_kw: Any) -> None:
    _die()


ORIGINAL_APPEND = J.append
ORIGINAL_REPLACE = planfile._replace

CRASH_POINTS: dict[str, tuple[tuple[Any, str, Callable[..., None]], ...]] = {
    # Locked, the journal tidied, nothing appended yet.
    "before the journal": ((J, "append", _die_instead),),
    "journal line torn": ((J, "append", _torn_append),),
    "journal written, plan not replaced": ((J, "append", _append_then_die),),
    "plan written beside, not renamed": ((planfile, "_replace", _die_instead),),
    "plan replaced, lock still held": ((planfile, "_replace", _replace_then_die),),
}


def _crash_child(sc: Scenario, patches: tuple[tuple[Any, str, Callable[..., None]], ...]) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    for module, name, replacement in patches:
        setattr(module, name, replacement)
    try:
        sc.run()
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(3)  # the crash point was never reached


def crash_at(sc: Scenario, patches: tuple[tuple[Any, str, Callable[..., None]], ...]) -> int | None:
    proc = CTX.Process(target=_crash_child, args=(sc, patches), daemon=True)
    proc.start()
    proc.join(60)
    return proc.exitcode


@pytest.mark.parametrize("name", ["merge", "undo"])
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_crash_at_a_chosen_point(name: str, point: str, tmp_path: Path) -> None:
    sc = prepared(SCENARIOS[name], tmp_path)
    where = f"{name}, killed at: {point}"
    assert crash_at(sc, CRASH_POINTS[point]) == -signal.SIGKILL, where
    state = classify(sc, where)
    expected_state = {
        "before the journal": "before",
        "journal line torn": "journal only",
        "journal written, plan not replaced": "journal only",
        "plan written beside, not renamed": "journal only",
        "plan replaced, lock still held": "committed",
    }[point]
    assert state == expected_state, where
    plan, _ = check_agrees(sc.plan_path, sc.initial, where)
    # Another command can take the lock at once: the dead child's lock went with it.
    with Record(sc.plan_path, wait=0):
        pass
    sc.run_again(where)
    assert state_of(sc.plan_path) == sc.reference, (
        f"{where}: does not converge (from revision {plan.revision})"
    )
    journal_is_tidy(sc.plan_path, load_plan(sc.plan_path).revision, where)


def test_crash_while_tidying_a_torn_journal(tmp_path: Path) -> None:
    """A torn journal, then a second crash while the next commit tidies it: still converges."""
    sc = prepared(merge_scenario, tmp_path)
    assert crash_at(sc, ((J, "append", _torn_append),)) == -signal.SIGKILL
    torn = state_of(sc.plan_path)
    assert torn.journal is not None and not torn.journal.endswith(b"\n")
    # The tidy-up replaces the journal through planfile._replace: die there.
    assert crash_at(sc, ((planfile, "_replace", _die_instead),)) == -signal.SIGKILL
    assert state_of(sc.plan_path) == torn, "a commit killed while tidying changed the record"
    check_agrees(sc.plan_path, sc.initial, "after the second crash")
    sc.run_again("after two crashes")
    assert state_of(sc.plan_path) == sc.reference


# -- a torn last line --------------------------------------------------------------------------------------------

FRAGMENTS = {
    "cut in a key": b'{"action_id": "LG-1", "eve',
    "cut in a multi-byte character": '{"event": "change", "new": "ü'.encode()[:-1],
    "a whole line but its newline": json.dumps(
        {"event": "publish", "time": "x", "revision": 99, "file": "f", "format": "html"}
    ).encode(),
    "one brace": b"{",
}


@pytest.mark.parametrize("fragment", list(FRAGMENTS))
def test_torn_last_line_ignored_then_cleaned_by_the_next_commit(fragment: str, tmp_path: Path) -> None:
    sc = prepared(merge_scenario, tmp_path)
    jpath = J.journal_path(sc.plan_path)
    assert sc.s0.journal is not None
    torn = sc.s0.journal + FRAGMENTS[fragment]
    jpath.write_bytes(torn)
    plan = load_plan(sc.plan_path)
    # Read as if it were not there, by readers and by a command about to commit.
    assert J.encode(committed(sc.plan_path, plan.revision)) == sc.s0.journal
    check_agrees(sc.plan_path, sc.initial, fragment)
    with Record(sc.plan_path) as rec:
        rec.load()
        assert J.encode(rec.entries(include_undone=True)) == sc.s0.journal
    assert jpath.read_bytes() == torn, "reading the journal changed it"
    # The next commit drops it, and its own lines follow the committed ones.
    sc.run()
    assert state_of(sc.plan_path) == sc.reference, fragment
    journal_is_tidy(sc.plan_path, load_plan(sc.plan_path).revision, fragment)


def test_torn_last_line_cleaned_by_an_export(tmp_path: Path) -> None:
    sc = prepared(merge_scenario, tmp_path)
    jpath = J.journal_path(sc.plan_path)
    assert sc.s0.journal is not None
    jpath.write_bytes(sc.s0.journal + b'{"event": "change", "revis')
    with Record(sc.plan_path) as rec:
        p = rec.load()
        write_export(p, sc.plan_path, tmp_path / "plan.html")
    lines = jpath.read_bytes()
    assert lines.startswith(sc.s0.journal) and lines.endswith(b"\n")
    extra = [json.loads(line) for line in lines[len(sc.s0.journal) :].splitlines()]
    assert [e["event"] for e in extra] == ["publish"], extra
    journal_is_tidy(sc.plan_path, p.revision, "after the export")
    # And the merge after it still converges to the same plan.
    sc.run()
    assert state_of(sc.plan_path).plan == sc.reference.plan
