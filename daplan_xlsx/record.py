"""The plan's record: the plan file, its journal, its cache and its lock, and the one way to change them.

Every command that writes the plan, its journal or an outbox opens the record: it takes an exclusive lock
beside the plan (`.plan.yaml.lock`) and holds it from loading the plan to committing. A second command waits
a bounded time (`--wait`, `DAPLAN_WAIT`, default 60 s), saying so, then fails in one line. The lock is an
operating-system lock (filelock: `fcntl` on Linux and macOS, `msvcrt` on Windows, both honoured on network
shares), so a command that crashes or is killed releases it.

A commit appends the journal and then replaces the plan atomically. It refuses when the plan on disk is no
longer the bytes that were loaded (edited by hand meanwhile, or committed through the library by another
holder of an old copy), so no one's work is overwritten. A command that only reads takes no lock: the plan
is replaced in one rename, and journal lines above the plan's revision are never read (see journal.py), so
it never sees half a commit.

A plan reached through a symbolic link is the link's target: its lock, journal and cache sit beside the
target, and saving writes through to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import journal as J
from .errors import DaplanError, OutputExists, PlanFileError
from .model import Plan

DEFAULT_WAIT = 60.0
WAIT_ENV = "DAPLAN_WAIT"


class PlanLocked(DaplanError):
    """Another daplan command holds the plan's lock."""

    hint = "wait for the other command to finish (or close it), then run this again"


class PlanChanged(DaplanError):
    """The plan file changed between loading it and committing."""

    hint = "nothing was written; run the command again so it works on the plan as it is now"


def real_plan_path(path: Path) -> Path:
    """The file a plan path names: a symbolic link's target, so saves write through it."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def lock_path(plan_path: Path) -> Path:
    target = real_plan_path(plan_path)
    return target.with_name(f".{target.name}.lock")


def wait_seconds(value: float | None = None) -> float:
    """The bounded wait for the lock: the value given, else $DAPLAN_WAIT, else 60 s."""
    if value is not None:
        return max(0.0, value)
    raw = os.environ.get(WAIT_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT


# One lock object per lock file and thread, so a library call inside a command that already holds the lock
# (commit_merge inside `daplan merge`) re-enters it instead of waiting for itself.
_held = threading.local()


def _locks() -> dict[str, Any]:
    if not hasattr(_held, "locks"):
        _held.locks = {}
    locks: dict[str, Any] = _held.locks
    return locks


def _say_waiting(plan_path: Path, seconds: float) -> None:
    print(
        f"Another daplan command is changing {plan_path.name}; waiting up to {seconds:.0f} s for it to finish...",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def plan_lock(
    plan_path: Path,
    *,
    wait: float | None = None,
    on_wait: Callable[[Path, float], None] | None = _say_waiting,
) -> Iterator[None]:
    """Hold the plan's exclusive lock; re-entrant within one thread."""
    from filelock import FileLock, Timeout

    path = lock_path(plan_path)
    key = str(path.absolute())
    locks = _locks()
    lock = locks.get(key)
    if lock is None:
        if not path.parent.is_dir():
            raise PlanFileError("folder does not exist", file=plan_path, hint="check the path")
        lock = locks[key] = FileLock(str(path), thread_local=False)
    seconds = wait_seconds(wait)
    try:
        if not lock.is_locked:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if on_wait is not None and seconds > 0:
                    on_wait(plan_path, seconds)
                lock.acquire(timeout=seconds)
        else:
            lock.acquire()
    except Timeout as exc:
        raise PlanLocked(
            f"another daplan command has been changing the plan for more than {seconds:.0f} s",
            file=plan_path,
        ) from exc
    except OSError as exc:
        raise PlanFileError(
            f"cannot take the plan's lock file {path.name}: {exc.strerror or exc}",
            file=plan_path,
            hint="check that you can write to the plan's folder",
        ) from exc
    try:
        yield
    finally:
        lock.release()
        if not lock.is_locked:
            locks.pop(key, None)


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Record:
    """The plan and its journal, opened for a change: `with Record(path) as rec: plan = rec.load() ...`."""

    def __init__(self, plan_path: str | os.PathLike[str], *, wait: float | None = None) -> None:
        self.path = Path(plan_path)
        self.wait = wait
        self.plan: Plan | None = None
        self._stack: contextlib.ExitStack | None = None

    @property
    def journal_path(self) -> Path:
        return J.journal_path(real_plan_path(self.path))

    def __enter__(self) -> Record:
        stack = contextlib.ExitStack()
        stack.enter_context(plan_lock(self.path, wait=self.wait))
        self._stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def load(self) -> Plan:
        from .planfile import load_plan

        self.plan = load_plan(self.path)
        return self.plan

    def entries(self, *, include_undone: bool = False) -> list[dict[str, Any]]:
        """The journal's committed lines for the plan as loaded."""
        assert self.plan is not None, "load the plan first"
        return J.read_journal(self.journal_path, self.plan.revision, include_undone=include_undone)

    def commit(self, plan: Plan, entries: list[dict[str, Any]]) -> None:
        """Append `entries` to the journal, then replace the plan with `plan`."""
        assert self.plan is not None and self._stack is not None, "open and load the record first"
        commit_plan(self.path, plan, entries, base=self.plan)
        self.plan = plan

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Append lines that change nothing in the plan (a publication, an email sent)."""
        append_lines(self.path, entries)


def _read_current(path: Path) -> bytes:
    try:
        return real_plan_path(path).read_bytes()
    except FileNotFoundError as exc:
        raise PlanChanged("the plan file was removed while this command ran", file=path) from exc


def _check_unchanged(path: Path, original: bytes, base: Plan) -> None:
    """Refuse to commit over a plan that is no longer the one loaded."""
    from .planfile import loaded_digest, revision_on_disk

    digest = loaded_digest(base)
    if digest is not None:
        if file_digest(original) == digest:
            return
    elif revision_on_disk(original) == base.revision:
        return
    raise PlanChanged(
        "the plan file changed on disk after this command read it (another command or a hand edit)",
        file=path,
    )


def commit_plan(plan_path: Path, plan: Plan, entries: list[dict[str, Any]], *, base: Plan) -> None:
    """Under the plan's lock: check the plan on disk is `base`, append `entries`, replace the plan atomically.

    A failure at any point leaves the plan byte-identical (the journal may then hold lines above the plan's
    revision, which are never read and are dropped by the next commit).
    """
    from .planfile import dumps_plan_after, remember_digest, save_plan

    with plan_lock(plan_path):
        target = real_plan_path(plan_path)
        original = _read_current(target)
        _check_unchanged(plan_path, original, base)
        jpath = J.journal_path(target)
        _tidy_temporary_files(target)
        J.compact(jpath, base.revision)
        J.append(jpath, entries)
        # Dumped once, and only the changed actions when the plan's cache allows: a full dump of 20,000
        # actions takes seconds.
        text, canonical = dumps_plan_after(plan, target, original, base=base)
        if text.encode("utf-8") != original:
            save_plan(plan, target, text=text, keep_comments=not canonical, original=original)
        else:
            remember_digest(plan, file_digest(original))


def append_lines(plan_path: Path, entries: list[dict[str, Any]], *, tidy: bool = True) -> None:
    """Under the plan's lock, append lines that change nothing in the plan (a publication, an email sent).

    The journal is tidied against the revision on disk, never one loaded earlier: a commit made meanwhile
    keeps its lines.
    """
    from .planfile import revision_on_disk

    with plan_lock(plan_path):
        target = real_plan_path(plan_path)
        jpath = J.journal_path(target)
        if tidy:  # once per command is enough: a caller appending line by line tidies with the first
            J.compact(jpath, revision_on_disk(_read_current(target)))
        J.append(jpath, entries)


@contextlib.contextmanager
def staged(output: Path) -> Iterator[Path]:
    """A temporary path beside `output` to write to; moved into place by `put_in_place`, removed otherwise.

    An output that depends on a commit is written before it and put in place after it, so a commit never
    happens without its report (and a report never claims a commit that failed).
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=output.suffix or ".tmp", dir=output.parent)
    os.close(fd)
    path = Path(tmp)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def put_in_place(tmp: Path, output: Path) -> None:
    from .planfile import new_file_mode

    os.chmod(tmp, new_file_mode(output))
    os.replace(tmp, output)


def write_new_plan(plan_path: Path, plan: Plan, *, wait: float | None = None) -> None:
    """Write a new plan (`new`, `import`) under the lock, never over a plan that has a record.

    A plan with a journal has history: replacing the file would leave that journal beside another plan, and
    the next commit would tidy its lines away.
    """
    from .planfile import save_plan

    check_output(plan_path, what="plan file")
    with plan_lock(plan_path, wait=wait):
        journal = J.journal_path(real_plan_path(plan_path))
        if journal.is_file() and journal.stat().st_size > 0:
            raise OutputExists(
                f"{plan_path.name} has a record of merges and publications ({journal.name}); a new plan "
                "would lose it",
                file=plan_path,
                hint="choose another path, or move the plan and its journal elsewhere first",
            )
        save_plan(plan, plan_path, keep_comments=False)


def _tidy_temporary_files(target: Path) -> None:
    """Temporary files a killed writer left beside the plan; only the lock holder may call this."""
    journal = J.journal_path(target)
    for pattern in (f".{target.name}.*.tmp", f".{journal.name}.*.tmp"):
        for stale in target.parent.glob(pattern):
            with contextlib.suppress(OSError):
                stale.unlink()


# -- outputs never land on the record --------------------------------------------------------------------------

KEY_PREFIX = b"daplan-key-v1:"


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def record_files(plan_path: Path) -> list[Path]:
    """The files of a plan's record: the plan, its journal, its cache and its lock."""
    from .planfile import cache_path

    target = real_plan_path(plan_path)
    return [plan_path, target, J.journal_path(target), cache_path(target), lock_path(target)]


def check_output(
    output: Path,
    *,
    plan_path: Path | None = None,
    inputs: Iterable[Path] = (),
    what: str = "file",
) -> None:
    """Refuse an output path that would replace part of the record, a key, a manifest or an input.

    Checked before anything is written or committed, so a bad output path costs nothing.
    """
    output = Path(output)
    hint = f"name another {what} to write"
    if output.is_dir():
        raise OutputExists("this is a directory, not a file", file=output, hint=f"name a {what} inside it")
    if output.parent.exists() and not output.parent.is_dir():
        raise OutputExists("cannot write there: the folder named is a file", file=output, hint=hint)
    if not output.parent.is_dir():
        raise OutputExists("folder does not exist", file=output, hint="create the folder first")
    name = output.name
    protected = record_files(plan_path) if plan_path is not None else []
    if any(_same(output, p) for p in protected):
        raise OutputExists(
            "the output would replace the plan's own file (its record)", file=output, hint=hint
        )
    if name.endswith(".journal.jsonl") or (name.startswith(".") and name.endswith((".cache.json", ".lock"))):
        raise OutputExists("the output would replace a plan's journal, cache or lock", file=output, hint=hint)
    if name == "manifest.json":
        raise OutputExists("the output would replace an outbox's manifest", file=output, hint=hint)
    for source in inputs:
        if _same(output, source):
            raise OutputExists(
                "the output would replace one of the files given to read", file=output, hint=hint
            )
    if output.is_file():
        with contextlib.suppress(OSError), output.open("rb") as fh:
            if fh.read(len(KEY_PREFIX)) == KEY_PREFIX:
                raise OutputExists("the output would replace a signing key", file=output, hint=hint)
        if output.suffix.lower() in (".yaml", ".yml") and what != "plan file":
            raise OutputExists("the output would replace a YAML file (a plan?)", file=output, hint=hint)
        if output.suffix.lower() in (".xlsx", ".xlsm") and _is_leads_workbook(output):
            raise OutputExists(
                "the output would replace a lead's workbook (an issued workbook, or a return not merged yet)",
                file=output,
                hint=hint,
            )


def _is_leads_workbook(path: Path) -> bool:
    """Whether a workbook carries a lead's issue metadata: one a command must never write over."""
    from .meta import read_workbook_meta

    try:
        reading = read_workbook_meta(path)
    except Exception:  # not a workbook daplan can read: nothing of a lead's to protect
        return False
    return reading.meta is not None and reading.meta.kind == "lead"


def is_bare_name(name: str) -> bool:
    """A file name with no folder part: safe to join to a folder read from a manifest."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and ":" not in name
        and "\0" not in name
        and Path(name).name == name
    )
