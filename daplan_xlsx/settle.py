"""Settling open items and undoing commits: the owner's decisions, each journalled.

- `resolve`: settle the open items of one field of one action by taking a candidate, the current value, or a
  value typed by the owner, with a reason.
- `recheck`: look again at refused values that a change of the lead register or status vocabulary may have
  made valid; each now valid is applied under the merge's three-way rule, or becomes a conflict.
- `undo`: revert the last commit (a merge, a settlement, a recheck), or every commit after a revision, from
  the journal. The plan gets the values it had before; the commit's journal lines stop counting, so its open
  items close, the items it settled reopen and its returns can be merged again.

Each builds the new plan and the journal lines; the caller commits them (record.commit_plan).
"""

from __future__ import annotations

import datetime as dt
import json as _json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import journal as J
from . import layout as L
from . import openitems as O
from .errors import DaplanError
from .meta import field_value
from .model import Action, Plan, text_problem
from .reader import normalise_field

# Control characters other than line breaks and tabs: never part of a value or a reason typed by the owner.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Fields an open item may be about: the editable ones, and the fixed ones a return tried to change.
SETTLEABLE = (*L.EDITABLE_FIELDS, "ref", "action", "kind", "supporting")


class SettleError(DaplanError):
    """A settlement or undo that cannot be done as asked."""

    hint = "see `daplan status` for the open items, then try again"


@dataclass
class Outcome:
    plan: Plan
    lines: list[dict[str, Any]]
    messages: list[str] = field(default_factory=list)


def _field_key(name: str) -> str:
    """A field named as the user would (a column header, any case) -> its key."""
    folded = name.strip().casefold()
    for key in SETTLEABLE:
        header = L.COLUMN_BY_KEY[key].header if key in L.COLUMN_BY_KEY else key
        if folded in (key, header.casefold()):
            return key
    raise SettleError(
        f"no field called {name!r}",
        hint=f"name one of: {', '.join(SETTLEABLE)}",
    )


def _normalised(plan: Plan, key: str, value: str) -> str:
    if key in ("ref", "action", "supporting"):
        return value
    if key == "kind":
        if value.strip().casefold() not in ("national", "local"):
            raise SettleError(f"{value!r} is not a kind of action", hint="give national or local")
        return value.strip().casefold()
    try:
        return normalise_field(key, value, plan) if value else ""
    except ValueError as exc:
        what = "lead" if key == "lead" else key
        raise SettleError(
            f"{value!r} is not a valid {what}: {exc}",
            hint="add it to the plan's register or vocabulary first (then `daplan recheck`), or choose another value",
        ) from exc


def set_fields(plan: Plan, changes: dict[str, dict[str, str]], who: str, now: dt.datetime) -> Plan:
    """The plan with these fields set (action id -> field -> normalised text), stamped, at the next revision."""
    from .merge import set_field

    areas = []
    for area in plan.areas:
        actions = list(area.actions)
        touched = False
        for n, action in enumerate(actions):
            if action.id in changes:
                data = action.model_dump()
                for key, value in changes[action.id].items():
                    set_field(data, key, value)
                data["updated"] = now
                data["updated_by"] = who
                try:
                    actions[n] = Action.model_validate(data)
                except ValidationError as exc:
                    err = exc.errors(include_url=False)[0]
                    field_name = ".".join(str(x) for x in err["loc"]) or "a field"
                    raise SettleError(
                        f"{action.id} cannot take that value ({field_name}: {err['msg']})",
                        hint="choose another value, or keep the current one with --take current",
                    ) from exc
                for key, value in changes[action.id].items():
                    if field_value(actions[n], key) != value:
                        # `lead` names the first of the action's leads: clearing it cannot leave it empty.
                        raise SettleError(
                            f"{action.id} {key} cannot be set to {_short(value)}",
                            hint="choose another value, or keep the current one with --take current",
                        )
                touched = True
        areas.append(area.model_copy(update={"actions": actions}) if touched else area)
    fields = {name: getattr(plan, name) for name in Plan.model_fields}
    return Plan.model_validate({**fields, "areas": areas, "revision": plan.revision + 1})


def _change_line(
    action: Action, key: str, old: str, new: str, source: str, who: str, stamp: str, revision: int
) -> dict[str, Any]:
    from .merge import stamp_before

    return {
        "event": "change",
        "time": stamp,
        "revision": revision,
        "return": source,
        "recipient": who,
        "action_id": action.id,
        "field": key,
        "old": old,
        "new": new,
        "stamp": stamp_before(action, key),
    }


def _pick(item_cands: list[dict[str, Any]], take: str) -> dict[str, Any]:
    """The candidate `take` names: its number (1, 2 ...), its file (name or path) or its recipient."""
    want = take.strip()
    if want.isdigit() and 1 <= int(want) <= len(item_cands):
        return item_cands[int(want) - 1]
    folded = want.casefold()
    found = [
        c
        for c in item_cands
        if folded in (str(c["source"]).casefold(), Path(str(c["source"])).name.casefold())
        or folded == str(c.get("recipient", "")).casefold()
    ]
    if len({c["value"] for c in found}) == 1:
        return found[0]
    listed = "; ".join(f"{n}. {O.candidate_label(c)}" for n, c in enumerate(item_cands, start=1))
    if found:
        raise SettleError(
            f"{take!r} names candidates with different values", hint=f"give its number: {listed}"
        )
    raise SettleError(f"no candidate {take!r}", hint=f"take one of: {listed}; or `current`, or give --value")


def resolve(
    plan: Plan,
    entries: list[dict[str, Any]],
    action_id: str,
    field_name: str,
    *,
    take: str | None = None,
    value: str | None = None,
    reason: str = "",
    who: str,
    now: dt.datetime,
) -> Outcome:
    """Settle every open item of one field of one action; apply the chosen value if it differs."""
    if (take is None) == (value is None):
        raise SettleError("give either --take CANDIDATE or --value TEXT", hint="see `daplan resolve --help`")
    for what, text in (("--reason", reason), ("--value", value or "")):
        problem = text_problem(text) or (_CONTROL.search(text) and "holds a control character")
        if problem:
            raise SettleError(f"{what} {problem}", hint=f"type {what} again as plain text")
    key = _field_key(field_name)
    items = [i for i in O.open_items(entries) if i.action_id == action_id and i.field == key]
    if not items:
        raise SettleError(
            f"{action_id} {key} has no open item",
            hint="see the open items with `daplan status PLAN` or `daplan conflicts PLAN -o FILE.xlsx`",
        )
    action = plan.action_index().get(action_id)
    cands = [c for i in items for c in i.candidates]
    candidate = ""
    if value is not None:
        how, chosen = "value", value
    elif take is not None and take.strip().casefold() in ("current", "keep"):
        how, chosen = "keep", field_value(action, key) if action is not None else ""
    else:
        picked = _pick(cands, take or "")
        how, chosen, candidate = "take", str(picked["value"]), str(picked["source"])
    revision = plan.revision + 1
    stamp = now.isoformat()
    lines: list[dict[str, Any]] = []
    new_plan = plan.model_copy(update={"revision": revision})
    messages = []
    if action is None:
        if how != "keep":
            raise SettleError(
                f"{action_id} is not in the plan, so no value can be applied to it",
                hint="settle it with --take current and a --reason",
            )
    else:
        chosen = _normalised(plan, key, chosen)
        current = field_value(action, key)
        if chosen != current:
            new_plan = set_fields(plan, {action_id: {key: chosen}}, f"{who} (settled)", now)
            lines.append(_change_line(action, key, current, chosen, "settlement", who, stamp, revision))
            messages.append(f"{action_id} {key}: {_short(current)} -> {_short(chosen)}")
        else:
            messages.append(f"{action_id} {key}: kept {_short(current)}")
    why = reason.strip() or {"keep": "kept the current value", "take": "chosen by the owner"}.get(
        how, "typed by the owner"
    )
    for item in items:
        lines.append(
            O.settle_line(
                item,
                revision=revision,
                time=stamp,
                how=how,
                value=chosen,
                candidate=candidate,
                reason=why,
                by=who,
            )
        )
    messages.append(f"Settled {len(items)} open item(s): {', '.join(i.item for i in items)}.")
    return Outcome(new_plan, lines, messages)


def recheck(plan: Plan, entries: list[dict[str, Any]], *, who: str, now: dt.datetime) -> Outcome:
    """Refused values that are valid now: applied (three-way) or turned into conflicts; the rest stay open."""
    revision = plan.revision + 1
    stamp = now.isoformat()
    index = plan.action_index()
    changes: dict[str, dict[str, str]] = {}
    lines: list[dict[str, Any]] = []
    opened: list[dict[str, Any]] = []
    messages: list[str] = []
    ids = O.next_item_ids(revision)
    for item in O.open_items(entries):
        if item.kind != "rejected" or item.finding not in O.RECHECKABLE or item.action_id not in index:
            continue
        if len({c["value"] for c in item.candidates}) != 1:
            continue
        raw = str(item.candidates[0]["value"])
        try:
            value = normalise_field(item.field, raw, plan) if raw else ""
        except ValueError:
            continue  # still not valid: stays open
        action = index[item.action_id]
        current = changes.get(item.action_id, {}).get(item.field, field_value(action, item.field))
        label = f"{item.action_id} {item.field}"
        if value == current:
            how, why = "recheck", "now valid, and the plan already holds it"
            messages.append(f"{label}: {_short(value)} is valid now and already in the plan")
        elif current == item.base:
            changes.setdefault(item.action_id, {})[item.field] = value
            lines.append(_change_line(action, item.field, current, value, "recheck", who, stamp, revision))
            how, why = "recheck", "now valid: applied"
            messages.append(f"{label}: {_short(current)} -> {_short(value)} (now valid)")
        else:
            conflict = O.OpenItem(
                next(ids),
                "conflict",
                item.action_id,
                item.field,
                item.base,
                current,
                "now valid, but the plan changed since the workbook was issued",
                [{**item.candidates[0], "value": value}],
                revision,
                stamp,
            )
            opened.append(conflict.line())
            how, why = "reopened-as", f"now valid; open again as conflict {conflict.item}"
            messages.append(
                f"{label}: {_short(value)} is valid now but the plan changed: conflict {conflict.item}"
            )
        lines.append(
            O.settle_line(item, revision=revision, time=stamp, how=how, value=value, reason=why, by=who)
        )
    if not lines:
        return Outcome(plan, [], ["Nothing to recheck: no refused value has become valid."])
    new_plan = (
        set_fields(plan, changes, f"{who} (recheck)", now)
        if changes
        else plan.model_copy(update={"revision": revision})
    )
    return Outcome(new_plan, lines + opened, messages)


def undo(
    plan: Plan,
    entries: list[dict[str, Any]],
    *,
    to: int | None = None,
    who: str,
    now: dt.datetime,
) -> Outcome:
    """Revert the last commit, or every commit after revision `to`, newest first."""
    commits = sorted({e["revision"] for e in entries if e["event"] in J.COMMIT_EVENTS}, reverse=True)
    if to is not None:
        targets = [r for r in commits if r > to]
        if to >= plan.revision:
            raise SettleError(
                f"the plan is at revision {plan.revision}; there is nothing after revision {to}"
            )
    else:
        targets = commits[:1]
    if not targets:
        raise SettleError(
            "there is nothing to undo: no merge or settlement is on record", hint="nothing was changed"
        )
    index = {a.id: a for _, a in plan.iter_actions()}
    data: dict[str, dict[str, Any]] = {}
    removed: list[str] = []
    restored: list[tuple[str, str, dict[str, Any]]] = []  # withdrawn actions brought back
    parts: dict[str, str] = {}  # a part of the plan outside its actions (see `plan` lines) -> its JSON
    messages = []
    for rev in targets:
        mine = [e for e in entries if e["revision"] == rev and e["event"] in J.COMMIT_EVENTS]
        for e in reversed([e for e in mine if e["event"] == "change"]):
            action_id, key = e["action_id"], e["field"]
            if action_id in removed or action_id not in index:
                raise SettleError(f"{action_id} is no longer in the plan, so revision {rev} cannot be undone")
            d = data.setdefault(action_id, index[action_id].model_dump())
            now_value = _value_of(d, key)
            if now_value != e["new"]:
                raise SettleError(
                    f"{action_id} {key} was changed after revision {rev} (it is now {_short(now_value)!s}), "
                    "so undo would lose that change",
                    hint="settle it by hand with `daplan resolve`, or undo the later change first",
                )
            _restore(d, key, e["old"], e.get("stamp"))
        for e in [e for e in mine if e["event"] == "add"]:
            removed.append(e["action_id"])
        for e in [e for e in mine if e["event"] == "withdraw"]:
            if e["action_id"] in index or any(e["action_id"] == a for a, _, _ in restored):
                raise SettleError(
                    f"{e['action_id']} is in the plan again, so its withdrawal at revision {rev} cannot be undone"
                )
            restored.append((e["action_id"], e["area"], e))
        for e in reversed([e for e in mine if e["event"] == "plan"]):
            now_text = parts.get(e["field"], _part_json(plan, e["field"]))
            if now_text != e["new"]:
                raise SettleError(
                    f"the plan's {e['field']} was changed after revision {rev}, so undo would lose that change",
                    hint="change it back by hand (or with `daplan edit` and `daplan apply`), or undo the later "
                    "change first",
                )
            parts[e["field"]] = e["old"]
        messages.append(f"Undid revision {rev}: " + _summary(mine))
    areas = []
    for area in plan.areas:
        actions = [
            Action.model_validate(data[a.id]) if a.id in data else a
            for a in area.actions
            if a.id not in removed
        ]
        back = [(e["position"], e["action"]) for _, area_id, e in restored if area_id == area.id]
        for position, action_data in sorted(back, key=lambda t: t[0]):
            actions.insert(min(position, len(actions)), Action.model_validate(action_data))
        changed = [a.id for a in actions] != [a.id for a in area.actions] or any(
            a.id in data for a in area.actions
        )
        update: dict[str, Any] = {"actions": actions} if changed else {}
        own = parts.get(f"areas.{area.id}")
        if own is not None:
            update.update(_json.loads(own))
        areas.append(area.model_copy(update=update) if update else area)
    fields = {name: getattr(plan, name) for name in Plan.model_fields}
    for name, text in parts.items():
        if not name.startswith("areas."):
            fields[name] = _json.loads(text)
    revision = plan.revision + 1
    new_plan = Plan.model_validate(
        {**fields, "areas": [a.model_dump() for a in areas] if parts else areas, "revision": revision}
    )
    stamp = now.isoformat()
    lines = [
        {"event": "undo", "time": stamp, "revision": revision, "undone": rev, "by": who, "removed": removed}
        for rev in targets
    ]
    return Outcome(new_plan, lines, messages)


# The parts of the plan outside its actions that a `plan` journal line may name (besides `areas.ID`).
PLAN_PARTS = ("title", "force", "classification", "background", "overarching_capabilities", "statuses", "leads", "glossary")
AREA_PARTS = ("name", "key_criteria", "supporting_areas")


def part_json(value: Any) -> str:
    """A part of the plan as the journal's `plan` lines hold it: canonical JSON."""
    return _json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _part_json(plan: Plan, name: str) -> str:
    """The JSON of one part of the plan as it is now (see PLAN_PARTS, `areas.ID`)."""
    if name.startswith("areas."):
        area = next((a for a in plan.areas if a.id == name[len("areas.") :]), None)
        if area is None:
            raise SettleError(f"the plan has no area {name[len('areas.'):]!r} any more, so it cannot be undone")
        return part_json(area.model_dump(mode="json", include=set(AREA_PARTS)))
    if name not in PLAN_PARTS:
        raise SettleError(f"the journal names an unknown part of the plan, {name!r}")
    return part_json(plan.model_dump(mode="json", include={name})[name])


def _value_of(data: dict[str, Any], key: str) -> str:
    if key == "lead":
        return str(data["leads"][0]) if data["leads"] else ""
    if key == "due":
        return data["due"].isoformat() if data["due"] else ""
    if key == "supporting":
        return "\n".join(str(x) for x in data["leads"][1:])
    value = data.get(key)
    return "" if value is None else str(value)


def _restore(data: dict[str, Any], key: str, old: str, stamp: dict[str, Any] | None) -> None:
    from .merge import set_field

    if key == "lead" and stamp and isinstance(stamp.get("leads"), list):
        data["leads"] = list(stamp["leads"])
    else:
        set_field(data, key, old)
    if stamp:
        updated = stamp.get("updated")
        data["updated"] = dt.datetime.fromisoformat(updated) if isinstance(updated, str) else None
        data["updated_by"] = str(stamp.get("updated_by") or "")


def _summary(lines: list[dict[str, Any]]) -> str:
    words = {
        "return": "return(s) no longer merged",
        "change": "change(s) reverted",
        "add": "added action(s) removed",
        "withdraw": "withdrawn action(s) brought back",
        "plan": "change(s) to the plan's register, vocabulary or texts reverted",
        "open": "open item(s) closed",
        "settle": "settled item(s) reopened",
    }
    counts = {k: sum(1 for e in lines if e["event"] == k) for k in words}
    return ", ".join(f"{n} {words[k]}" for k, n in counts.items() if n) or "nothing in it"


def _short(text: str, limit: int = 60) -> str:
    one = " / ".join(text.splitlines())
    shown = one if len(one) <= limit else one[: limit - 3] + "..."
    return repr(shown)
