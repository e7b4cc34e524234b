"""Three-way merge of many returns at once.

Per field: theirs == base, nothing; current == base, apply; current == theirs, already applied; otherwise a
conflict. All returns are considered together, so the result does not depend on the order of the files: two
returns that change one field to different values conflict with each other. A conflict is data, never an
exception, and every refused or competing value stays in the result.

A return is read once. Merged again (the same bytes, per the journal) it applies nothing; only when its
proposed rows were left unadded (merged without `--accept-new`) is it read again, for those rows alone. The
same file given twice in one merge counts once. Every refused value the reader reports with its field,
including each value of a row it did not take (an action outside the scope, an ID not in the plan, an ID
twice), becomes a rejected item, so nothing a return said is lost.

Every conflict and every refused value of an action becomes an open item of the record (an `open` journal
line, see openitems.py) that stays open until settled. A return whose recipient is the plan owner's conflict
resolution (the conflicts workbook) settles the open items of each field it changes.

`merge_returns` decides and builds the merged plan without writing anything; `commit_merge` writes the
journal and then the plan, under the plan's lock, and refuses if the plan on disk changed since it was
loaded (see record.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, Literal

from . import collector
from . import journal as J
from . import layout as L
from . import openitems as O
from .container import read_file
from .errors import MetadataError
from .meta import field_value
from .model import EXCEL_CELL_LIMIT, Action, Plan
from .reader import Finding, PlanView, Proposal, normalise_field, read_return
from .trust import register_of

Outcome = Literal["applied", "conflict", "rejected", "unchanged"]
MERGE_FORMAT = 1
# Free-text fields whose competing values `combine` may join into one attributed text.
COMBINABLE = ("response", "notes")
# Notes of returns that are skipped, not refused: nothing in them is left for a person.
ALREADY_MERGED = "already merged"
SAME_FILE = "the same file as"
# What an `add` journal line records of a new action.
ADDED_FIELDS = ("action", *L.EDITABLE_FIELDS)
# The recipient of the conflicts workbook: its returns are the owner's settlements.
RESOLUTION_RECIPIENT = "Plan owner: conflict resolution"


@dataclass(frozen=True)
class Candidate:
    """One return's value for a field."""

    source: str
    recipient: str
    issue_id: str
    issued_at: str
    base: str
    value: str
    stale: bool = False
    contributor: str = ""
    sha256: str = ""


@dataclass
class MergeItem:
    action_id: str
    field: str
    outcome: Outcome
    source: str
    reason: str = ""
    base: str = ""
    current: str = ""
    new: str = ""
    candidates: list[Candidate] = dc_field(default_factory=list)
    finding: str = ""  # for a refused value: the reader's kind of finding
    item: str = ""  # the open item that keeps a conflict or refused value on record

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReturnSummary:
    file: str
    sha256: str
    issue_id: str = ""
    recipient: str = ""
    issued_at: str = ""
    verdict: str = ""
    accepted: bool = False
    note: str = ""


@dataclass
class MergeResult:
    """The decisions of a merge and the plan they make. `plan` is built on `base`: actions and areas the
    merge left alone are the same objects in both, so change neither in place (copy first)."""

    plan: Plan
    items: list[MergeItem]
    returns: list[ReturnSummary]
    findings: list[tuple[str, Finding]]
    warnings: list[str]
    proposals: list[tuple[str, Proposal, str]]  # (source, proposal, new id or "")
    journal: list[dict[str, Any]]
    base: Plan | None = None  # the plan merged into; `plan` shares its unchanged objects

    @property
    def applied(self) -> list[MergeItem]:
        return [i for i in self.items if i.outcome == "applied"]

    @property
    def needs_person(self) -> bool:
        """A conflict, a rejected value, a refused return, a problem found in a return, a proposal not added."""
        return (
            any(i.outcome in ("conflict", "rejected") for i in self.items)
            or any(not r.accepted and not skipped(r) for r in self.returns)
            or any(f.severity == "problem" for _, f in self.findings)
            or any(not new_id for _, _, new_id in self.proposals)
        )

    def as_json(self) -> dict[str, Any]:
        """The stable, documented JSON form (see README, "daplan merge --json")."""
        return {
            "format": MERGE_FORMAT,
            "revision": self.plan.revision,
            "returns": [asdict(r) for r in self.returns],
            "items": [i.as_dict() for i in self.items],
            "findings": [{"source": s, **f.as_dict()} for s, f in self.findings],
            "proposals": [{"source": s, "new_id": n, **asdict(p)} for s, p, n in self.proposals],
            "warnings": self.warnings,
        }


def skipped(summary: ReturnSummary) -> bool:
    """Not merged because it was already (the same bytes merged before, or given twice): not refused."""
    return not summary.accepted and summary.note.startswith((ALREADY_MERGED, SAME_FILE))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Collected:
    plan: Plan
    view: PlanView
    key: bytes | None
    accept_new: bool
    merged: list[J.MergedReturn]
    merged_sha: dict[str, J.MergedReturn]
    pending: dict[str, int]  # sha256 -> proposed rows a merge of those bytes left unadded
    seen: dict[str, str] = dc_field(default_factory=dict)  # sha256 -> first file with those bytes here
    candidates: dict[tuple[str, str], list[Candidate]] = dc_field(default_factory=dict)
    items: list[MergeItem] = dc_field(default_factory=list)
    returns: list[ReturnSummary] = dc_field(default_factory=list)
    findings: list[tuple[str, Finding]] = dc_field(default_factory=list)
    proposals: list[tuple[str, Proposal, str]] = dc_field(default_factory=list)
    touched: set[str] = dc_field(default_factory=set)
    open: list[O.OpenItem] = dc_field(default_factory=list)
    retired: set[str] = dc_field(default_factory=set)  # ids of added actions an undo removed
    register: dict[str, dict[str, Any]] = dc_field(default_factory=dict)  # issue id -> its `issue` line


@collector.sparing_existing()  # the plan is not walked again and again as returns are read
def merge_returns(
    plan: Plan,
    paths: Sequence[Path],
    *,
    key: bytes | None = None,
    journal: Sequence[dict[str, Any]] = (),
    accept_new: bool = False,
    combine: bool = False,
    now: dt.datetime | None = None,
    progress: Callable[[Path], None] | None = None,
) -> MergeResult:
    """Decide every field of every return against the plan; nothing is written."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    merged = J.merged_returns(journal)
    view = PlanView(plan)  # shared by every return's reading: the plan does not change until `_apply`
    c = _Collected(
        plan, view, key, accept_new, merged, {m.sha256: m for m in merged}, J.proposals_pending(journal)
    )
    c.open = O.open_items(journal)
    c.retired = J.retired_ids(journal)
    c.register = register_of(journal)
    # Files in name order so reports are stable; the decisions themselves do not depend on it.
    for path in sorted(paths, key=lambda p: str(p)):
        _collect(path, c)
        if progress:
            progress(path)

    base_now = view.current  # lazy: only touched actions
    order = {action_id: n for n, action_id in enumerate(view.ids)}
    decisions: list[MergeItem] = []
    for (action_id, key_), cands in sorted(
        c.candidates.items(), key=lambda kv: (order[kv[0][0]], L.EDITABLE_FIELDS.index(kv[0][1]))
    ):
        decision = _decide(action_id, key_, cands, base_now[action_id][key_], combine, now)
        if decision is not None:
            decisions.append(decision)
    items = decisions + c.items
    items.sort(
        key=lambda i: (
            order.get(i.action_id, -1),
            _field_order(i.field),
            i.source,
            i.outcome,
            i.reason,
            i.new,
        )
    )

    new_plan, warnings = _apply(plan, decisions, c, accept_new, now)
    entries = _journal_lines(plan, new_plan, items, decisions, c, accept_new, now)
    if entries and new_plan.revision == plan.revision:
        # Every commit has a revision of its own, so `undo` can name it; here nothing in the plan changed.
        new_plan = plan.model_copy(update={"revision": plan.revision + 1})
    revision = new_plan.revision
    for e in entries:
        e["revision"] = revision
    ids = O.next_item_ids(revision)
    for e in entries:
        if e["event"] == "open":
            e["item"] = next(ids)
    opened = (e for e in entries if e["event"] == "open" and e["kind"] != "proposal")
    for e, item in zip(opened, (i for i in items if _opens(i)), strict=True):
        item.item = e["item"]
    warnings += [
        f"{d.action_id}: the {len(d.candidates)} {_field_name(d.field)} texts combined were longer than a "
        "cell holds; the combined text was cut (the full texts are in the returns)"
        for d in decisions
        if d.outcome == "applied" and d.new.endswith(CLIPPED)
    ]
    warnings = _domain_checks(plan, new_plan, c.touched, now) + warnings
    return MergeResult(new_plan, items, c.returns, c.findings, warnings, c.proposals, entries, plan)


def _opens(item: MergeItem) -> bool:
    """A conflict or refused value of an action is kept on record as an open item."""
    return item.outcome in ("conflict", "rejected") and bool(item.action_id) and bool(item.field)


def stamp_before(action: Action, key: str) -> dict[str, Any]:
    """What `undo` needs to restore an action's bookkeeping as it was before a change."""
    stamp: dict[str, Any] = {
        "updated": action.updated.isoformat() if action.updated else None,
        "updated_by": action.updated_by,
    }
    if key == "lead":
        stamp["leads"] = list(action.leads)
    return stamp


def _journal_lines(
    plan: Plan,
    new_plan: Plan,
    items: list[MergeItem],
    decisions: list[MergeItem],
    c: _Collected,
    accept_new: bool,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The merge's journal lines; their `revision` (and open items' ids) are set once it is known."""
    summary = {r.file: r for r in c.returns}
    entries: list[dict[str, Any]] = []
    stamp = now.isoformat()
    for r in c.returns:
        if r.accepted:
            left = 0 if accept_new else sum(1 for source, _, _ in c.proposals if source == r.file)
            entries.append(
                {
                    "event": "return",
                    "time": stamp,
                    "revision": 0,
                    "return": r.file,
                    "sha256": r.sha256,
                    "issue_id": r.issue_id,
                    "recipient": r.recipient,
                    "issued_at": r.issued_at,
                    "proposals_pending": left,
                }
            )
    settling = {r.file for r in c.returns if r.accepted and r.recipient == RESOLUTION_RECIPIENT}
    for item in decisions:
        if item.outcome != "applied":
            continue
        cand = item.candidates[0]  # one line per change; the other sources agreeing are named in the report
        ret = summary[cand.source]
        entries.append(
            {
                "event": "change",
                "time": stamp,
                "revision": 0,
                "return": cand.source,
                "sha256": ret.sha256,
                "issue_id": cand.issue_id,
                "recipient": cand.recipient,
                "action_id": item.action_id,
                "field": item.field,
                "old": item.current,
                "new": item.new,
                "stamp": stamp_before(c.view.index[item.action_id], item.field),
            }
        )
        if cand.source in settling:
            for o in c.open:
                if o.action_id == item.action_id and o.field == item.field:
                    entries.append(
                        O.settle_line(
                            o,
                            revision=0,
                            time=stamp,
                            how="workbook",
                            value=item.new,
                            candidate=cand.source,
                            reason=f"chosen in the conflicts workbook {Path(cand.source).name}",
                            by=cand.contributor or O.who(),
                        )
                    )
    for item in items:
        if _opens(item):
            entries.append(_open_line(item, stamp))
    entries += _proposal_lines(plan, c, summary, stamp)
    new_ids = {new_id for _, _, new_id in c.proposals if new_id}
    added = {a.id: (area.id, a) for area, a in new_plan.iter_actions() if a.id in new_ids} if new_ids else {}
    for source, proposal, new_id in c.proposals:
        if not new_id:
            continue
        ret = summary[source]
        area_id, action = added[new_id]
        entries.append(
            {
                "event": "add",
                "time": stamp,
                "revision": 0,
                "return": source,
                "sha256": ret.sha256,
                "issue_id": ret.issue_id,
                "recipient": ret.recipient,
                "action_id": new_id,
                "area": area_id,
                "sheet": proposal.sheet,
                "row": proposal.row,
                "values": {k: field_value(action, k) for k in ADDED_FIELDS},
            }
        )
    return entries


def proposal_id(plan: Plan, sheet: str, row: int, sha256: str) -> str:
    """How an open proposed row is named on record: its area, `new`, its row and its return's first digits
    (`MV-new7-3fa2c1`), unique across returns and never an action's id (those have no `new` part)."""
    area = next((a.id for a in plan.areas if a.sheet == sheet), "NEW")
    return f"{area}-new{row}-{sha256[:6]}"


def _proposal_lines(
    plan: Plan, c: _Collected, summary: dict[str, ReturnSummary], stamp: str
) -> list[dict[str, Any]]:
    """Open items for the proposed rows a merge leaves unadded, and settlements for the ones it adds: a
    proposal is on record until it is added (`--accept-new`) or declined (`daplan resolve ... --take
    current --reason ...`)."""
    lines: list[dict[str, Any]] = []
    open_now = {i.action_id: i for i in c.open if i.kind == "proposal"}
    for source, proposal, new_id in c.proposals:
        ret = summary[source]
        pid = proposal_id(plan, proposal.sheet, proposal.row, ret.sha256)
        if new_id:
            if pid in open_now:
                lines.append(
                    O.settle_line(
                        open_now[pid],
                        revision=0,
                        time=stamp,
                        how="accepted",
                        value=new_id,
                        candidate=source,
                        reason=f"added as {new_id} with --accept-new",
                        by=O.who(),
                    )
                )
            continue
        if not ret.accepted or pid in open_now:
            continue  # already on record from the merge that first read it
        lines.append(
            {
                "event": "open",
                "time": stamp,
                "revision": 0,
                "item": "",
                "kind": "proposal",
                "action_id": pid,
                "field": "action",
                "base": "",
                "current": "",
                "reason": f"a new action proposed on {proposal.sheet} row {proposal.row}; add it with "
                "`daplan merge --accept-new`, or decline it with `daplan resolve`",
                "candidates": [
                    {
                        "source": source,
                        "sha256": ret.sha256,
                        "recipient": ret.recipient,
                        "issue_id": ret.issue_id,
                        "value": proposal.values.get("action", ""),
                    }
                ],
                "finding": "proposal",
                "proposal": {k: str(v) for k, v in proposal.values.items()},
            }
        )
    return lines


def _open_line(item: MergeItem, stamp: str) -> dict[str, Any]:
    candidates = [
        {
            "source": cand.source,
            "sha256": cand.sha256,
            "recipient": cand.recipient,
            "issue_id": cand.issue_id,
            "value": cand.value,
        }
        for cand in item.candidates
    ]
    return {
        "event": "open",
        "time": stamp,
        "revision": 0,
        "item": "",
        "kind": item.outcome,
        "action_id": item.action_id,
        "field": item.field,
        "base": item.base,
        "current": item.current,
        "reason": item.reason,
        "candidates": candidates,
        "finding": item.finding,
    }


def _field_name(key: str) -> str:
    return L.COLUMN_BY_KEY[key].header if key in L.COLUMN_BY_KEY else key


def _field_order(name: str) -> int:
    return L.EDITABLE_FIELDS.index(name) if name in L.EDITABLE_FIELDS else len(L.EDITABLE_FIELDS)


def _collect(path: Path, c: _Collected) -> None:
    source = str(path)
    file = read_file(path)  # read once: hashed here, then checked and parsed by the reader
    sha = file.sha256
    if sha and sha in c.seen:
        # The same bytes under two names (a copy, a re-saved attachment): merged once, by the first name.
        c.returns.append(ReturnSummary(source, sha, note=f"{SAME_FILE} {Path(c.seen[sha]).name}"))
        return
    if sha:
        c.seen[sha] = source
    earlier = c.merged_sha.get(sha) if sha else None
    pending = c.pending.get(sha, 0) if earlier else 0
    if earlier is not None and not pending:
        c.returns.append(ReturnSummary(source, sha, earlier.issue_id, earlier.recipient, note=ALREADY_MERGED))
        return
    try:
        reading = read_return(file, c.plan, c.key, view=c.view, register=c.register)
    except MetadataError as exc:
        c.returns.append(ReturnSummary(source, sha, note=exc.one_line()))
        c.items.append(MergeItem("", "", "rejected", source, reason=exc.what))
        return
    meta = reading.meta
    summary = ReturnSummary(source, reading.sha256, reading.issue_id, reading.recipient, verdict=meta.verdict)
    c.returns.append(summary)
    summary.issued_at = meta.meta.issued_at if meta.meta else ""
    refusal = ""
    if meta.verdict == "tampered":
        refusal = f"metadata tampered: {meta.problem}"
    elif meta.verdict == "missing":
        refusal = "no issue metadata, so there is no base to merge against (see it with `daplan diff`)"
    elif meta.verdict == "unsigned" and c.key is not None and reading.issue_id not in c.register:
        # Not in the record of issues, so the record cannot say it went out unsigned.
        refusal = "the workbook is not signed, but the plan owner has a key: it was not issued by this owner"
    if refusal:
        summary.note = refusal
        c.items.append(MergeItem("", "", "rejected", source, reason=refusal))
        return
    if earlier is not None:
        # Merged before with its proposed rows left unadded: its values were decided then; only the
        # proposals are still open.
        for proposal in reading.proposals:
            c.proposals.append((source, proposal, ""))
        n = len(reading.proposals)
        summary.accepted = c.accept_new
        summary.note = (
            f"merged before; now adding its {n} proposed new action(s)"
            if c.accept_new
            else f"{ALREADY_MERGED}; its {n} proposed new action(s) are not added (merge again with --accept-new)"
        )
        return
    summary.accepted = True
    registered = reading.issue_id in c.register
    if meta.verdict == "unsigned":
        summary.note = (
            "unsigned (issued with --no-sign): checked against the plan's record of issued workbooks"
            if registered
            else "unsigned: accepted because the plan owner has no signing key"
        )
    elif not meta.signature_checked:
        summary.note = "signed, but the signature was not checked (no key given)"
    assert meta.meta is not None
    stale = any(
        m.recipient == reading.recipient
        and m.issued_at > meta.meta.issued_at
        and m.issue_id != reading.issue_id
        for m in c.merged
    )
    if stale:
        summary.note = (summary.note + "; " if summary.note else "") + (
            "stale: a later workbook issued to the same recipient was merged already"
        )
    contributor = reading.saved_by
    for finding in reading.findings:
        # A refused value (the reader gives its field) is kept as a rejected item; the rest are findings.
        if finding.severity == "problem" and finding.field and finding.action_id:
            base = reading.base.get(finding.action_id, {})
            known = c.view.index.get(finding.action_id)
            c.items.append(
                MergeItem(
                    finding.action_id,
                    finding.field,
                    "rejected",
                    source,
                    reason=f"{finding.kind}: {finding.message} ({finding.sheet}!{finding.cell})",
                    base=base.get(finding.field, ""),
                    current=field_value(known, finding.field) if known is not None else "",
                    new=finding.value,
                    candidates=[
                        Candidate(
                            source,
                            reading.recipient,
                            reading.issue_id,
                            meta.meta.issued_at,
                            base.get(finding.field, ""),
                            finding.value,
                            contributor=contributor,
                            sha256=reading.sha256,
                        )
                    ],
                    finding=finding.kind,
                )
            )
        else:
            c.findings.append((source, finding))
    for proposal in reading.proposals:
        c.proposals.append((source, proposal, ""))
    for action_id, row in reading.rows.items():
        if row.untouched:
            continue
        base = reading.base[action_id]
        for key_, value in row.changed(base).items():
            cand = Candidate(
                source,
                reading.recipient,
                reading.issue_id,
                meta.meta.issued_at,
                base.get(key_, ""),
                value,
                stale,
                contributor,
                reading.sha256,
            )
            c.candidates.setdefault((action_id, key_), []).append(cand)
            c.touched.add(action_id)


def _decide(
    action_id: str, key: str, cands: list[Candidate], current: str, combine: bool, now: dt.datetime
) -> MergeItem | None:
    changing = sorted((c for c in cands if c.value != c.base), key=lambda c: (c.source, c.value))
    sources = ", ".join(sorted({c.source for c in (changing or cands)}))
    base = changing[0].base if changing else cands[0].base
    if not changing:
        return None  # no return changed this field: nothing to say
    values = sorted({c.value for c in changing})
    item = MergeItem(action_id, key, "conflict", sources, base=base, current=current, candidates=changing)
    bases_current = all(c.base == current for c in changing)
    if len(values) == 1:
        item.new = values[0]
        if values[0] == current:
            item.outcome, item.reason = "unchanged", "already applied"
        elif any(c.stale for c in changing):
            item.reason = "stale return: a later workbook from the same recipient was merged; settle by hand"
        elif bases_current:
            item.outcome = "applied"
        else:
            item.reason = "the plan changed since this workbook was issued"
        return item
    if combine and key in COMBINABLE and bases_current and not any(c.stale for c in changing):
        item.outcome, item.new = "applied", combine_texts(changing, now)
        item.reason = f"combined {len(changing)} updates"
        if item.new.endswith(CLIPPED):
            item.reason += f", {CLIPPED.strip()}"
        return item
    item.reason = f"{len(values)} returns give different values"
    return item


# Ends a joined text cut to Excel's cell limit; the whole of each part is in its return and the journal.
CLIPPED = " [… cut to Excel's cell limit of 32,767 characters; the full texts are in the returns]"


def clip_text(text: str) -> str:
    """`text` cut to what one cell holds, marked as cut: a joined text must never make the plan unwritable."""
    if len(text) <= EXCEL_CELL_LIMIT:
        return text
    return text[: EXCEL_CELL_LIMIT - len(CLIPPED)] + CLIPPED


def _label(text: str) -> str:
    # A file name joined into a text of the plan: a character a workbook cannot hold becomes "?".
    return _NOT_IN_A_CELL.sub("?", text)


_NOT_IN_A_CELL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def combine_texts(cands: Sequence[Candidate], now: dt.datetime) -> str:
    """One text keeping every contributor's update as a dated, attributed entry (in source order), cut to
    Excel's cell limit (marked) when the entries together are longer."""
    parts = []
    for c in sorted(cands, key=lambda c: (c.source, c.value)):
        who = c.recipient + (f", {c.contributor}" if c.contributor else "")
        parts.append(f"[{now.date().isoformat()}, {_label(who)}, {_label(Path(c.source).name)}]\n{c.value}")
    return clip_text("\n\n".join(parts))


def set_field(data: dict[str, Any], key: str, value: str) -> None:
    """Set one editable field of an action's data from its normalised text."""
    if key == "due":
        data["due"] = dt.date.fromisoformat(value) if value else None
    elif key == "lead":
        rest = [name for name in data["leads"] if name != value]
        data["leads"] = ([value] if value else []) + rest
    elif key == "supporting":  # the leads after the primary, one a line (the owner's workbook)
        data["leads"] = data["leads"][:1] + [name for name in value.split("\n") if name]
    else:
        data[key] = value


def _apply(
    plan: Plan, decisions: list[MergeItem], c: _Collected, accept_new: bool, now: dt.datetime
) -> tuple[Plan, list[str]]:
    """The merged plan. Only the changed and added actions are validated; the rest are the plan's own
    (already valid) objects, and the rules across the plan are checked once more as the new plan is made."""
    warnings: list[str] = []
    changed: dict[str, dict[str, Any]] = {}  # action id -> its data with the applied values
    contributors: dict[str, set[str]] = {}  # everyone whose value was applied to the action, any field
    for item in decisions:
        if item.outcome != "applied":
            continue
        data = changed.get(item.action_id)
        if data is None:
            data = changed[item.action_id] = c.view.index[item.action_id].model_dump()
        set_field(data, item.field, item.new)
        who = contributors.setdefault(item.action_id, set())
        who.update(cand.recipient for cand in item.candidates)
        data["updated"] = now
        data["updated_by"] = ", ".join(sorted(who))
    actions = [list(area.actions) for area in plan.areas]
    touched_areas: set[int] = set()
    if changed:
        for ai, area_actions in enumerate(actions):
            for xi, action in enumerate(area_actions):
                if action.id in changed:
                    area_actions[xi] = Action.model_validate(changed[action.id])
                    touched_areas.add(ai)
    if accept_new and c.proposals:
        warnings += _add_proposals(plan, actions, touched_areas, c, now)
    if not touched_areas:
        return plan, warnings
    areas = [
        area.model_copy(update={"actions": actions[ai]}) if ai in touched_areas else area
        for ai, area in enumerate(plan.areas)
    ]
    # Model instances are taken as they are (not validated again); the plan's own checks run.
    fields = {name: getattr(plan, name) for name in Plan.model_fields}
    return Plan.model_validate({**fields, "areas": areas, "revision": plan.revision + 1}), warnings


def _add_proposals(
    plan: Plan, actions: list[list[Action]], touched_areas: set[int], c: _Collected, now: dt.datetime
) -> list[str]:
    """Give each proposed row a fresh id in the area of its sheet; the owner reviews them after."""
    warnings = []
    by_sheet = {a.sheet: ai for ai, a in enumerate(plan.areas)}
    recipient_of = {r.file: r.recipient for r in c.returns}
    used = set(plan.action_index()) | c.retired
    accepted = []
    for source, proposal, _ in sorted(c.proposals, key=lambda t: (t[0], t[1].sheet, t[1].row)):
        ai = by_sheet.get(proposal.sheet)
        text = proposal.values.get("action", "")
        if ai is None or not text:
            warnings.append(
                f"{source}: the proposed row {proposal.sheet}!{proposal.row} has no area or no action text"
            )
            accepted.append((source, proposal, ""))
            continue
        area = plan.areas[ai]
        n = 1
        while f"{area.id}-N{n}" in used:
            n += 1
        new_id = f"{area.id}-N{n}"
        used.add(new_id)
        action: dict[str, Any] = {"id": new_id, "ref": "", "kind": "local", "action": text, "leads": []}
        for key in L.EDITABLE_FIELDS:
            raw = proposal.values.get(key, "")
            try:
                value = normalise_field(key, raw, plan) if raw else ""
            except ValueError:
                warnings.append(
                    f"{source}: proposed row {proposal.sheet}!{proposal.row}: {key} {raw!r} dropped"
                )
                value = ""
            if value:
                set_field(action, key, value)
        action["updated"] = now
        action["updated_by"] = clip_text(
            _label(f"proposed by {recipient_of.get(source) or 'an unknown recipient'} ({Path(source).name})")
        )
        actions[ai].append(Action.model_validate(action))
        touched_areas.add(ai)
        accepted.append((source, proposal, new_id))
    c.proposals = accepted
    return warnings


def _domain_checks(before: Plan, after: Plan, touched: set[str], now: dt.datetime) -> list[str]:
    closed = after.closed_statuses()
    old, new = before.action_index(), after.action_index()
    warnings = []
    for action_id in sorted(touched):
        a, b = old[action_id], new[action_id]
        if b.status in closed and a.status not in closed and (not b.response or b.response == a.response):
            warnings.append(f"{action_id}: marked {b.status!r} with an empty or unchanged response")
        if a.status in closed and b.status not in closed:
            warnings.append(f"{action_id}: moved back from {a.status!r} to {b.status!r}")
        if b.status not in closed and b.due is not None and b.due < now.date():
            warnings.append(f"{action_id}: open ({b.status}) and past its due date {b.due.isoformat()}")
    return warnings


@collector.sparing_existing()  # the plans are not walked while the new text is made
def commit_merge(plan_path: Path, result: MergeResult) -> None:
    """Under the plan's lock: append the journal, then replace the plan atomically.

    Refused (PlanChanged) when the plan on disk is no longer the one the merge was made from; a failure
    leaves the plan as it was.
    """
    from .record import commit_plan

    base = result.base if result.base is not None else result.plan
    commit_plan(plan_path, result.plan, result.journal, base=base)
