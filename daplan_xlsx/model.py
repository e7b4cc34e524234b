"""The canonical plan model (pydantic v2).

Field-level rules live on the fields; rules that span the plan (unique ids, leads in the register, statuses
in the vocabulary, Excel-safe sheet names) are checked once in `Plan._check_references`, which names the
place of each problem as a path such as `areas[2].actions[4].status`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

EXCEL_CELL_LIMIT = 32_767
SHEET_NAME_LIMIT = 31
SHEET_NAME_FORBIDDEN = set("[]:*?/\\")
# Sheet names the workbooks use for themselves; an area sheet may not take one (Excel reserves History).
RESERVED_SHEET_NAMES = {
    "history",
    "about",
    "glossary",
    "dashboard",
    "changes",
    "conflicts",
    "lists",
    "daplan_meta",
    # the owner's workbook (`daplan edit`)
    "plan",
    "leads",
    "statuses",
    "areas",
}

# XML 1.0 allows tab, LF, CR and everything from U+0020 except surrogates and U+FFFE/U+FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_COLOUR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
# The error type of text a workbook cannot hold, found by a check over several fields (see `Action`).
TEXT_ERROR = "excel_text"


def text_problem(value: str) -> str | None:
    """Why a workbook cannot hold this text (an XML 1.0 forbidden character, over Excel's cell limit)."""
    bad = _XML_FORBIDDEN.search(value)
    if bad:
        return (
            f"contains the control character U+{ord(bad.group()):04X} at position {bad.start()}, "
            "which Excel files cannot hold; delete it"
        )
    if len(value) > EXCEL_CELL_LIMIT:
        return f"is {len(value)} characters long; an Excel cell holds at most {EXCEL_CELL_LIMIT}; shorten it"
    return None


def check_text(value: str) -> str:
    """Refuse text a workbook cannot hold."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Due dates a workbook holds for sure: Excel's 1900 date system is right from 1 March 1900 on.
FIRST_DUE = dt.date(1900, 3, 1)


def _due_in_range(value: dt.date | None) -> dt.date | None:
    if value is not None and value < FIRST_DUE:
        raise ValueError(
            f"{value.isoformat()} is before 1 March 1900; a workbook holds dates from 1 March 1900 to "
            "31 December 9999"
        )
    return value


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Stamps are kept in UTC, whole seconds: the same instant always saves as the same text."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(microsecond=0)


Text = Annotated[str, AfterValidator(check_text)]
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(check_text)]
Ident = Annotated[str, Field(pattern=_ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Status(_Model):
    """One word of the status vocabulary."""

    name: Name
    colour: Annotated[str, Field(pattern=_COLOUR_PATTERN, description="fill colour as #RRGGBB")]
    meaning: Text = ""
    closed: bool = Field(False, description="true when an action with this status needs no more work")


# One email address, as a mail client writes it: no spaces, brackets or separators, one @, a dotted domain.
EMAIL_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+\.[^@\s<>(),;:\"\[\]\\]+")


def _check_emails(value: str) -> str:
    """A role's addresses: empty, or addresses separated by `;` or `,`, each on the one line."""
    for part in re.split(r"[;,]", value):
        address = part.strip()
        if address and (not EMAIL_ADDRESS.fullmatch(address) or not address.isascii() or len(address) > 254):
            raise ValueError(
                f"{address[:60]!r} is not an email address; write it as name@force.police.uk "
                "(several separated by ;)"
            )
    if "\n" in value or "\r" in value:
        raise ValueError("email addresses go on one line, separated by ;")
    return value


class Lead(_Model):
    """A lead role in the register (a post, not a person: people move, roles stay)."""

    name: Name
    email: Annotated[str, AfterValidator(_check_emails)] = ""
    notes: Text = ""


# An action's text is checked by the action as a whole (`Action._check_texts`), not field by field: a large
# plan has hundreds of thousands of these values, and one check per action costs a fraction of one per value.
_ActionText = str
_ActionName = Annotated[str, Field(min_length=1, max_length=255)]
ACTION_TEXT_FIELDS = ("ref", "action", "response", "target", "status", "updated_by", "notes")


class Action(_Model):
    """One numbered action of a capability area."""

    id: Ident = Field(description="stable identifier, unique in the plan and never reused")
    ref: _ActionText = Field("", description="the published reference, e.g. '3' or 'L1'")
    kind: Literal["national", "local"] = "national"
    action: _ActionText = ""
    response: _ActionText = Field("", description="response / progress as published")
    target: _ActionText = Field("", description="target as published, free text")
    due: Annotated[dt.date | None, AfterValidator(_due_in_range)] = Field(
        None, description="optional due date, from 1900-03-01 to 9999-12-31"
    )
    leads: list[_ActionName] = Field(default_factory=list, description="lead roles, the primary first")
    status: _ActionName = "Not started"
    updated: Annotated[dt.datetime | None, AfterValidator(_utc)] = None
    updated_by: _ActionText = ""
    notes: _ActionText = ""

    @model_validator(mode="after")
    def _check_texts(self) -> Action:
        texts = [getattr(self, name) for name in ACTION_TEXT_FIELDS] + self.leads
        # Joined by a newline (allowed anywhere): one search for all; only a hit looks field by field.
        joined = "\n".join(texts)
        if _XML_FORBIDDEN.search(joined) is None and len(joined) <= EXCEL_CELL_LIMIT:
            return self
        places = list(ACTION_TEXT_FIELDS) + [f"leads[{i}]" for i in range(len(self.leads))]
        for place, text in zip(places, texts, strict=True):
            problem = text_problem(text)
            if problem:
                # The place rides in the error's context: `validation_error` adds it to the location.
                raise PydanticCustomError(
                    TEXT_ERROR, "{field} {problem}", {"field": place, "problem": problem}
                )
        return self


class GlossaryEntry(_Model):
    term: Name
    definition: Text = ""


class Area(_Model):
    """A capability area of the HMIC framework: one sheet in each workbook."""

    id: Ident
    name: Name
    sheet: Annotated[
        str,
        Field(min_length=1, description="Excel sheet name: at most 31 characters"),
        AfterValidator(check_text),
    ]
    key_criteria: Text = Field("", description="the 'Key Criteria' heading of the capability")
    supporting_areas: list[Text] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)


def default_statuses() -> list[Status]:
    """The default vocabulary of DESIGN.md."""
    rows = [
        ("Not started", "#BFBFBF", "Work has not begun.", False),
        ("On track", "#70AD47", "Work is under way and will meet its target.", False),
        ("At risk", "#FFC000", "Work is under way but the target may be missed.", False),
        ("Off track", "#FF0000", "The target will be missed without intervention.", False),
        ("Complete", "#5B9BD5", "The action is done.", True),
        ("Embedded", "#7030A0", "Done and now business as usual.", True),
        ("Superseded", "#595959", "Replaced by another action or no longer needed.", True),
    ]
    return [Status(name=n, colour=c, meaning=m, closed=x) for n, c, m, x in rows]


class Plan(_Model):
    """A force's Domestic Abuse Action Plan."""

    id: Ident = Field(description="plan identifier carried in every issued workbook")
    title: Name
    force: Text = ""
    published: dt.date | None = None
    classification: Name = Field("OFFICIAL", description="protective marking")
    revision: Annotated[int, Field(ge=1)] = 1
    background: Text = ""
    overarching_capabilities: Text = Field(
        "", description="text introducing the overarching capabilities table (the areas)"
    )
    statuses: list[Status] = Field(default_factory=default_statuses, min_length=1)
    leads: list[Lead] = Field(default_factory=list)
    areas: list[Area] = Field(default_factory=list)
    glossary: list[GlossaryEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_references(self) -> Plan:
        problems = plan_problems(self)
        if problems:
            where, message = problems[0]
            raise ValueError(f"{where}: {message}")
        return self

    # Convenience look-ups used across the package.
    def iter_actions(self) -> list[tuple[Area, Action]]:
        return [(area, action) for area in self.areas for action in area.actions]

    def action_index(self) -> dict[str, Action]:
        return {action.id: action for area in self.areas for action in area.actions}

    def status_names(self) -> list[str]:
        return [s.name for s in self.statuses]

    def lead_names(self) -> list[str]:
        return [lead.name for lead in self.leads]

    def closed_statuses(self) -> set[str]:
        return {s.name for s in self.statuses if s.closed}


def sheet_name_problem(name: str) -> str | None:
    """Why `name` cannot be an Excel sheet name, or None when it can."""
    if len(name) > SHEET_NAME_LIMIT:
        return f"sheet name {name!r} has {len(name)} characters; Excel allows at most {SHEET_NAME_LIMIT}"
    bad = sorted(SHEET_NAME_FORBIDDEN & set(name))
    if bad:
        return f"sheet name {name!r} contains {''.join(bad)!r}; Excel forbids any of []:*?/\\"
    if name != name.strip() or name.startswith("'") or name.endswith("'"):
        return f"sheet name {name!r} may not begin or end with a space or an apostrophe"
    if name.lower() in RESERVED_SHEET_NAMES:
        return f"sheet name {name!r} is reserved; choose another"
    return None


def plan_problems(plan: Plan) -> list[tuple[str, str]]:
    """Every rule across the plan that is broken, as (path, message), in document order."""
    problems: list[tuple[str, str]] = []
    statuses = plan.status_names()
    leads = plan.lead_names()
    status_set, lead_set = set(statuses), set(leads)

    # Ignoring case, as returns are read: "chief constable" typed in a cell would match either role.
    for repeat in _dup_positions(statuses, fold=True):
        problems.append(
            (f"statuses[{repeat}].name", f"status {statuses[repeat]!r} is listed twice (ignoring case)")
        )
    for repeat in _dup_positions(leads, fold=True):
        problems.append((f"leads[{repeat}].name", f"lead {leads[repeat]!r} is listed twice (ignoring case)"))

    sheets = [a.sheet for a in plan.areas]
    for repeat in _dup_positions(sheets, fold=True):
        problems.append(
            (f"areas[{repeat}].sheet", f"sheet name {sheets[repeat]!r} is already used (ignoring case)")
        )
    area_ids = [a.id for a in plan.areas]
    for repeat in _dup_positions(area_ids):
        problems.append((f"areas[{repeat}].id", f"area id {area_ids[repeat]!r} is used twice"))

    seen_ids: dict[str, tuple[int, int]] = {}
    for ai, area in enumerate(plan.areas):
        bad_sheet = sheet_name_problem(area.sheet)
        if bad_sheet:
            problems.append((f"areas[{ai}].sheet", bad_sheet))
        for xi, action in enumerate(area.actions):
            # Paths are spelt only for a problem: this loop runs for every action of the plan.
            first = seen_ids.setdefault(action.id, (ai, xi))
            if first != (ai, xi):
                problems.append(
                    (
                        f"{_action_path(ai, xi)}.id",
                        f"action id {action.id!r} is already used at {_action_path(*first)}",
                    )
                )
            if action.status not in status_set:
                problems.append(
                    (
                        f"{_action_path(ai, xi)}.status",
                        f"status {action.status!r} is not in the plan's statuses",
                    )
                )
            for li, lead in enumerate(action.leads):
                if lead not in lead_set:
                    problems.append(
                        (
                            f"{_action_path(ai, xi)}.leads[{li}]",
                            f"lead {lead!r} is not in the plan's lead register",
                        )
                    )
            if len(action.leads) > 1:  # most actions have one lead
                for repeat in _dup_positions(action.leads):
                    problems.append(
                        (
                            f"{_action_path(ai, xi)}.leads[{repeat}]",
                            f"lead {action.leads[repeat]!r} is listed twice",
                        )
                    )
    return problems


def _action_path(ai: int, xi: int) -> str:
    return f"areas[{ai}].actions[{xi}]"


def _dup_positions(names: list[str], fold: bool = False) -> list[int]:
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        key = name.casefold() if fold else name
        if key in seen:
            out.append(i)
        seen.add(key)
    return out
