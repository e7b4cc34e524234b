"""Adopting a plan kept as an ordinary workbook (`daplan import`).

Forces kept their 2014 action plans in spreadsheets of every shape: one sheet per capability area, or one
long sheet with an area column or area headings between tables; a title row or two above the header;
"RAG" instead of "Status", "Owner" instead of "Lead". This module finds the table on each sheet, matches
its columns by header text, matches the areas to the HMIC 2014 template, and builds a valid plan. Whatever
it cannot place is reported with its sheet and row, never dropped silently.

A workbook written by daplan itself imports back to the same plan: its ID column keeps the action ids, the
lines above its header give the area's name, key criteria and supporting areas, and its hidden Lists and
About sheets give the lead register, the statuses, the title, the force and the protective marking.

Workbooks are opened as returns are (container checks first, then calamine), so an encrypted, legacy or
bomb file gets the same one-line refusal. Cell values go through normalise.py like everything else read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import layout as L
from . import normalise as N
from .container import MAX_SHEET_ROWS, open_container, scan_sheet
from .errors import DaplanError, ReturnUnreadable
from .model import (
    RESERVED_SHEET_NAMES,
    SHEET_NAME_FORBIDDEN,
    SHEET_NAME_LIMIT,
    Plan,
    Status,
    check_text,
    default_statuses,
)
from .planfile import validation_error
from .reader import HEADER_SCAN_ROWS, open_workbook
from .templates import load_template

TEMPLATE = "hmic-2014"
NOT_STARTED = "Not started"
MAX_STATUS_MAP_BYTES = 1024 * 1024
# A lead role is a post's name; longer text in a lead cell is a sentence, not a role.
MAX_LEAD_LENGTH = 255


class ImportUnusable(DaplanError):
    """The workbook cannot be adopted as a plan at all."""

    hint = "check that this is the plan workbook, with a header row naming its columns"


class StatusMapError(DaplanError):
    """The --status-map file cannot be used."""

    hint = "give a YAML or JSON mapping of status words to status names, e.g. {Purple: Embedded}"


@dataclass(frozen=True)
class ImportNote:
    """One line of the import report: a row (or sheet) and what happened to it."""

    sheet: str  # '' for the workbook as a whole
    row: int | None  # 1-based, as Excel shows it; None for the sheet as a whole
    message: str
    needs_person: bool = True

    def __str__(self) -> str:
        if not self.sheet:
            return f"workbook: {self.message}"
        where = f"sheet {self.sheet!r}" + (f", row {self.row}" if self.row is not None else "")
        return f"{where}: {self.message}"


@dataclass
class ImportResult:
    """The adopted plan, the report and the status words mapped (word as written, status) -> rows."""

    plan: Plan
    notes: list[ImportNote]
    mapped: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def needs_person(self) -> bool:
        """True when some row was not placed or was placed with a guess a person should check."""
        return any(n.needs_person for n in self.notes)

    def summary(self) -> list[str]:
        """The report as lines: counts, the status words mapped, then every note."""
        plan = self.plan
        areas = ", ".join(f"{a.name} ({len(a.actions)})" for a in plan.areas)
        lines = [
            f"{len(plan.areas)} area(s), {len(plan.iter_actions())} action(s), {len(plan.leads)} lead(s), "
            f"{len(plan.glossary)} glossary term(s).",
            f"Areas: {areas or 'none'}",
        ]
        mapped = sorted(self.mapped.items(), key=lambda item: item[0][0].casefold())
        words = [f"{w} → {s} ({n})" for (w, s), n in mapped if w != s]
        if words:
            lines.append("Statuses mapped: " + ", ".join(words))
        if self.notes:
            lines.append(f"Report ({len(self.notes)}):")
            lines.extend(f"  {note}" for note in self.notes)
        return lines


# -- status words ---------------------------------------------------------------------------------------------


def _word(value: str) -> str:
    """A status word folded for matching: case, spaces and punctuation ignored ("In-progress" = "in progress")."""
    return re.sub(r"[\W_]+", "", value.casefold())


# The words forces used for the state of an action, RAG colours first. Vocabulary names match as they are.
STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(["green", "g", "ongoing", "inprogress", "underway"], "On track"),
    **dict.fromkeys(["amber", "a"], "At risk"),
    **dict.fromkeys(["red", "r"], "Off track"),
    **dict.fromkeys(["complete", "completed", "done", "closed", "finished"], "Complete"),
    **dict.fromkeys(["blue", "b", "bau", "embedded", "businessasusual"], "Embedded"),
    **dict.fromkeys(["notstarted", "notyetstarted", "grey", "gray"], NOT_STARTED),
}


def load_status_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """A --status-map file: YAML or JSON, a mapping of status word -> status name."""
    p = Path(path)
    if not p.is_file():
        raise StatusMapError("status map file not found", file=p, hint="check the path")
    if p.stat().st_size > MAX_STATUS_MAP_BYTES:
        raise StatusMapError("the status map is over 1 MiB; it should be a short mapping", file=p)
    try:
        text = p.read_bytes().decode("utf-8-sig")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StatusMapError(f"the status map cannot be parsed ({first})", file=p) from exc
    if not isinstance(data, dict) or not data:
        raise StatusMapError("the status map is not a mapping of words to statuses", file=p)
    out: dict[str, str] = {}
    for word, status in data.items():
        if not isinstance(status, str) or not status.strip() or word is None:
            raise StatusMapError(f"the word {word!r} must map to a status name", file=p)
        out[N.text(word)] = status.strip()
    return out


# -- headers --------------------------------------------------------------------------------------------------

# Header text -> field, after folding (case, punctuation and spacing ignored, "&" read as "and"). A header
# also matches when it begins with one of these followed by more words ("Progress update (June 2015)");
# the longest wins, so "Action owner" is a lead and "Actions taken" a response, not an action.
_HEADER_ALIASES: dict[str, str] = {
    "id": "id",
    "ref": "ref|ref no|reference|no|number|#|item|item no|rec|rec no|recommendation no|action no|action ref|"
    "action number|num",
    "action": "action|actions|recommendation|recommendations|activity|activities|task|local action|"
    "national action|action required|actions required",
    "response": "response|progress|update|updates|progress update|comments|comment|commentary|current position|"
    "position|status update|action taken|actions taken|action progress|response progress",
    "target": "target|targets|deadline|timescale|timescales|target date|timeline",
    "due": "due|due date|date due",
    "lead": "lead|leads|owner|owners|responsible|lead officer|lead officers|lead role|action owner|action by|"
    "responsible officer|lead owner|area lead",
    "supporting": "supporting leads|supporting lead|supporting",
    "status": "status|rag|rag status|rag rating|action status",
    "notes": "notes|note|remarks",
    "kind": "national local|national or local|kind|type",
    "area": "area|capability|capability area|theme|key criteria|hmic area",
    # Derived from the plan's stamps in daplan's own workbooks, and not imported.
    "updated": "last updated",
}
_HEADERS = {alias: key for key, aliases in _HEADER_ALIASES.items() for alias in aliases.split("|")}
_GLOSSARY_HEADERS = {
    **dict.fromkeys(("term", "abbreviation", "acronym"), "term"),
    **dict.fromkeys(("definition", "meaning", "description", "explanation"), "definition"),
}
# Fields whose value a vertically merged cell shares with every row it spans.
_SHARED_FIELDS = ("area", "target", "due", "lead", "supporting", "status", "kind")


def _fold_header(value: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z#]+", " ", value.casefold().replace("&", " and ")).split())


def _header_key(value: object, table: Mapping[str, str]) -> str | None:
    if not isinstance(value, str):
        return None
    words = _fold_header(value).split(" ")
    for n in range(len(words), 0, -1):
        key = table.get(" ".join(words[:n]))
        if key is not None:
            return key
    return None


@dataclass
class _Header:
    row: int  # 0-based
    cols: dict[str, int]
    extra: list[tuple[int, str]]  # columns whose values go into the notes: (column, header text)
    local: bool | None  # the action column's header says "local" (True) or "national" (False)


def _header_of(row: list[Any]) -> _Header | None:
    """The row read as a header of an action table, or None when it is not one."""
    cols: dict[str, int] = {}
    extra: list[tuple[int, str]] = []
    for c, value in enumerate(row):
        text = N.text(value)
        if not text:
            continue
        key = _header_key(text, _HEADERS)
        if key is None or key in cols:
            extra.append((c, text))
        else:
            cols[key] = c
    if "action" not in cols or len(set(cols) - {"action", "updated", "area"}) < 1:
        return None
    if "id" in cols and "ref" not in cols:
        # A lone ID column is the published reference; beside a Ref column it is daplan's action id.
        cols["ref"] = cols.pop("id")
    if "due" in cols and "target" not in cols:
        cols["target"] = cols.pop("due")
    action_header = _fold_header(N.text(row[cols["action"]]))
    local = True if "local" in action_header else False if "national" in action_header else None
    return _Header(-1, cols, extra, local)


def _is_header_row(texts: list[str]) -> bool:
    """A header repeated inside a table: every text in it is exactly a header name.

    Exactly, not by its first words as the first header is found: "Task force formed" and "Lead officer to
    confirm" in one row are an action, not a header.
    """
    return all(_fold_header(t) in _HEADERS for t in texts if t)


def _find_header(rows: list[list[Any]]) -> _Header | None:
    for r, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        header = _header_of(row)
        if header is not None:
            header.row = r
            return header
    return None


def _find_glossary_header(rows: list[list[Any]]) -> tuple[int, int, int] | None:
    for r, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        cols: dict[str, int] = {}
        for c, value in enumerate(row):
            key = _header_key(N.text(value), _GLOSSARY_HEADERS)
            if key and key not in cols:
                cols[key] = c
        if len(cols) == 2:
            return r, cols["term"], cols["definition"]
    return None


# -- areas ----------------------------------------------------------------------------------------------------

_AREA_STOP = {"and", "the", "of", "for", "area", "areas", "action", "plan", "section", "part", "hmic"}
_AREA_STOP |= {"national", "local", "capability", "capabilities"}


def _area_tokens(text: str) -> frozenset[str]:
    words = re.findall(r"[a-z]+", text.casefold().replace("&", " and "))
    return frozenset(w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words if w not in _AREA_STOP)


@dataclass
class _Area:
    id: str
    name: str
    sheet: str = ""
    key_criteria: str = ""
    supporting: list[str] = field(default_factory=list)
    template: bool = False
    from_sheet: bool = False  # described by a daplan-built sheet (name, sheet and criteria taken from it)
    rows: list[_Row] = field(default_factory=list)
    id_hint: str = ""


@dataclass
class _Row:
    sheet: str
    row: int  # 1-based
    kind: str
    id_text: str = ""
    ref: str = ""
    action: str = ""
    response: str = ""
    target: str = ""
    due: dt.date | None = None
    leads: list[str] = field(default_factory=list)
    status: str = NOT_STARTED
    notes: str = ""
    id: str = ""


class _Areas:
    """The template's areas, and new ones met in the workbook, found by loose name."""

    def __init__(self, template: Plan) -> None:
        self.template = [
            _Area(a.id, a.name, a.sheet, a.key_criteria, list(a.supporting_areas), template=True)
            for a in template.areas
        ]
        self._tokens = {a.id: _area_tokens(f"{a.name} {a.sheet} {a.key_criteria}") for a in template.areas}
        self.new: list[_Area] = []

    def match(self, text: str) -> _Area | None:
        """The template area (or new area met before) that `text` names, e.g. "1. Initial contact"."""
        text = " ".join(text.split())
        for area in self.template:
            if text == area.id:
                return area
        folded = text.casefold()
        for area in self.new:
            if area.name.casefold() == folded:
                return area
        tokens = _area_tokens(text)
        if not tokens:
            return None
        fits = [a for a in self.template if tokens <= self._tokens[a.id]]
        if len(fits) > 1:
            # The most specific wins ("Supervision" alone would be ambiguous; "Victims" is not).
            scored = sorted(fits, key=lambda a: len(self._tokens[a.id]))
            if len(self._tokens[scored[0].id]) == len(self._tokens[scored[1].id]):
                return None
            fits = scored[:1]
        return fits[0] if fits else None

    def get(self, name: str) -> _Area:
        found = self.match(name)
        if found is not None:
            return found
        area = _Area("", name[:255].strip() or "Actions")
        self.new.append(area)
        return area

    def final(self) -> list[_Area]:
        """The areas of the plan: all six of the template's when any matched, then the new ones used."""
        used_template = any(a.rows or a.from_sheet for a in self.template)
        out = list(self.template) if used_template else []
        out += [a for a in self.new if a.rows or a.from_sheet]
        return out


def _safe_sheet_name(name: str, taken: set[str]) -> str:
    """An Excel-safe sheet name for a new area, unique ignoring case."""
    clean = "".join("-" if ch in SHEET_NAME_FORBIDDEN else ch for ch in name)
    clean = " ".join(clean.split()).strip("'").strip()[:SHEET_NAME_LIMIT].strip().strip("'")
    if not clean or clean.casefold() in RESERVED_SHEET_NAMES:
        clean = (clean + " area").strip()[:SHEET_NAME_LIMIT] if clean else "Area"
    candidate, n = clean, 2
    while candidate.casefold() in taken:
        suffix = f" ({n})"
        candidate = clean[: SHEET_NAME_LIMIT - len(suffix)].rstrip() + suffix
        n += 1
    return candidate


_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _area_id(area: _Area, taken: set[str]) -> str:
    hint = area.id_hint
    if hint and _IDENT.match(hint) and hint not in taken:
        return hint
    words = [w for w in re.findall(r"[A-Za-z0-9]+", area.name) if w.casefold() not in ("and", "of", "the")]
    base = "".join(w[0] for w in words).upper()[:4] or "AREA"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}{n}", n + 1
    return candidate


# -- leads ----------------------------------------------------------------------------------------------------

# The words a lead role begins with. A new line, ";" and " / " always split a lead cell; " and ", "&", "/"
# and "," only where a role begins after them, so "Chief Constable and Police and Crime Commissioner" is two roles and "Head of Managing
# People and Places" one.
_ROLE_START = re.compile(
    r"(?:head|chief|deputy|assistant|acc|dcc|aco|cc|pcc|opcc|police and crime commissioner|areas?|districts?|"
    r"divisional|director|superintendent|supt|ch supt|det|detective|dci|dsu|di|ds|inspector|sergeant|insp|"
    r"sgt|manager|commanders?|force|all|bcu|central|corporate|strategic|safeguarding|partnership|local|"
    r"neighbourhood|lead|the)\b"
)
# What a lead cell says when there is no lead yet.
_NO_LEAD = {"na", "tbc", "tbd", "none", "", "unassigned"}
_ALWAYS_SPLIT = re.compile(r"\s*(?:\n|;|\|)\s*|\s+/\s+")
_MAYBE_SPLIT = re.compile(r"\s+(?:and|&|\+)\s+|\s*/\s*|\s*,\s*", re.IGNORECASE)


def fold_lead(name: str) -> str:
    """A lead's name folded for matching: case and spacing ignored."""
    return " ".join(name.split()).casefold()


def _starts_role(text: str, known: Mapping[str, str]) -> bool:
    if not text[:1].isupper():
        return False
    folded = fold_lead(text)
    if any(folded == k or folded.startswith(k + " ") for k in known):
        return True
    return bool(_ROLE_START.match(folded))


def split_leads(cell: str, known: Mapping[str, str]) -> list[str]:
    """The lead roles a lead cell names, the primary first; `known` maps folded names to their spelling.

    A cell naming a known lead is taken whole, in the register's spelling.
    """
    out: list[str] = []
    for piece in _ALWAYS_SPLIT.split(cell):
        if fold_lead(piece) in known:
            out.append(known[fold_lead(piece)])
            continue
        piece = " ".join(piece.split())
        if not piece:
            continue
        start = 0
        for m in _MAYBE_SPLIT.finditer(piece):
            if m.start() > start and _starts_role(piece[m.end() :], known):
                out.append(piece[start : m.start()])
                start = m.end()
        out.append(piece[start:])
    return [known.get(fold_lead(p), p.strip()) for p in out if p.strip()]


# -- the importer ---------------------------------------------------------------------------------------------

_LOCAL_HEADING = re.compile(
    r"^(?P<kind>national|local|force|force local)(?:\s+(?:force\s+)?(?:actions?|recommendations?|activity))?\s*:?$",
    re.IGNORECASE,
)


def _says_local(sheet: str) -> bool:
    """A sheet of local actions ("Local actions", "IC local recommendations"), not "Local policing"."""
    return bool(re.search(r"^local$|\blocal\s+(?:actions?|recommendations?)\b", sheet.strip(), re.IGNORECASE))


def _snippet(texts: list[str]) -> str:
    first = next(t for t in texts if t)
    first = " ".join(first.split())
    return first if len(first) <= 40 else first[:39] + "…"


class _Importer:
    def __init__(self, path: Path, force_name: str | None, status_map: Mapping[str, str] | None) -> None:
        self.path = path
        self.force_name = force_name
        self.template = load_template(TEMPLATE)
        self.areas = _Areas(self.template)
        self.notes: list[ImportNote] = []
        self.mapped: dict[tuple[str, str], int] = {}
        self.statuses: list[Status] = default_statuses()
        self.leads: dict[str, str] = {}  # folded -> spelling, in register order
        self.glossary: list[dict[str, str]] = []
        self.about: dict[str, str] = {}
        self.titles: list[str] = []
        self.status_map = dict(status_map or {})
        self.tables = 0

    # -- statuses --
    def _check_status_map(self) -> None:
        names = {s.name.casefold(): s.name for s in self.statuses}
        self.custom: dict[str, str] = {}
        for word, status in self.status_map.items():
            name = names.get(" ".join(status.split()).casefold())
            if name is None:
                raise StatusMapError(
                    f"the status map maps {word!r} to {status!r}, which is not a status",
                    hint="map each word to one of: " + ", ".join(s.name for s in self.statuses),
                )
            self.custom[_word(word)] = name
        self.vocabulary = {_word(s.name): s.name for s in self.statuses}

    def status(self, word: str) -> str | None:
        key = _word(word)
        return self.custom.get(key) or self.vocabulary.get(key) or STATUS_WORDS.get(key)

    # -- reading --
    def run(self) -> ImportResult:
        container = open_container(self.path)
        self.container = container
        self.epoch1904 = container.epoch1904
        # Every sheet is checked (and inflated once) before the parser opens the package, as a return's are.
        container.scan_sheets(list(container.sheet_parts))
        wb = open_workbook(container)
        if container.macro_enabled:
            self.notes.append(ImportNote("", None, "the workbook contains macros; they were ignored", False))
        names = list(wb.sheet_names)
        # The support sheets of a daplan workbook come first: they give the register and vocabulary that
        # its area sheets use.
        by_fold = {n.casefold(): n for n in names}
        if L.LISTS_SHEET.casefold() in by_fold:
            self.read_lists(self.rows(wb, by_fold[L.LISTS_SHEET.casefold()]))
        if L.ABOUT_SHEET.casefold() in by_fold:
            self.read_about(self.rows(wb, by_fold[L.ABOUT_SHEET.casefold()]))
        self._check_status_map()
        for name in names:
            folded = name.casefold()
            if folded == L.GLOSSARY_SHEET.casefold():
                self.read_glossary(name, self.rows(wb, name), required=True)
            elif folded not in RESERVED_SHEET_NAMES:
                self.read_sheet(name, wb)
        if self.tables == 0:
            raise ImportUnusable(
                f"no action table found: no sheet has a header row with an Action column and a Ref, "
                f"Response, Target, Lead or Status column in its first {HEADER_SCAN_ROWS} rows",
                file=self.path,
                hint="add a header row naming the columns (Ref, Action, Response, Target, Lead, Status), "
                "or check that this is the plan workbook",
            )
        return ImportResult(self.build(), self.notes, self.mapped)

    def rows(self, wb: Any, name: str) -> list[list[Any]]:
        return self.sheet(wb, name)[0]

    def sheet(self, wb: Any, name: str) -> tuple[list[list[Any]], list[Any], int]:
        """A sheet's rows from A1, its merged ranges and how many formulas it holds (extent checked first)."""
        part = self.container.sheet_parts.get(name)
        # Through the container read and checked once, as a return's sheets are (a damaged part is refused
        # in one line, like any unusable workbook).
        formulas = scan_sheet(self.container, part, name) if part else {}
        try:
            sheet = wb.get_sheet_by_name(name)
        except Exception as exc:  # calamine raises its own hierarchy
            raise ReturnUnreadable(
                f"sheet {name!r} cannot be read ({exc})", file=self.path, sheet=name
            ) from exc
        if sheet.total_height > MAX_SHEET_ROWS:
            raise ReturnUnreadable(
                f"the sheet has {sheet.total_height:,} rows; at most {MAX_SHEET_ROWS:,} are read",
                file=self.path,
                sheet=name,
                hint="delete the rows below the table and save again",
            )
        rows: list[list[Any]] = sheet.to_python(skip_empty_area=False)
        # Error values (#REF!, ...) are kept with the formulas by the scan; only formulas are counted here.
        return (
            rows,
            list(sheet.merged_cell_ranges or []),
            sum(1 for f in formulas.values() if not f.startswith("#")),
        )

    def read_lists(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        heads = [N.text(v) for v in rows[0]]
        for c, head in enumerate(heads):
            values = [N.text(r[c]) for r in rows[1:] if c < len(r) and N.text(r[c])]
            if head == "Lead":
                for value in values:
                    if len(value) <= MAX_LEAD_LENGTH:
                        self.leads.setdefault(fold_lead(value), value)
            elif head == "Status":
                known = {s.name.casefold() for s in self.statuses}
                for value in values:
                    if value.casefold() not in known and len(value) <= 255:
                        self.statuses.append(
                            Status(
                                name=value,
                                colour="#BFBFBF",
                                meaning="From the imported workbook's status list.",
                            )
                        )
                        known.add(value.casefold())

    def read_about(self, rows: list[list[Any]]) -> None:
        labels = {N.text(row[0]): N.text(row[1]) for row in rows[1:] if len(row) >= 2}
        if "Plan revision" not in labels:
            return  # not the About sheet of a daplan workbook
        if rows[0] and N.text(rows[0][0]):
            self.about["title"] = N.text(rows[0][0])
        for label in ("Force", "Protective marking"):
            if labels.get(label):
                self.about[label] = labels[label]

    def read_glossary(self, name: str, rows: list[list[Any]], required: bool = False) -> bool:
        found = _find_glossary_header(rows)
        if found is None:
            if required and any(N.text(v) for row in rows for v in row):
                self.notes.append(
                    ImportNote(name, None, "no Term / Definition header found; the sheet was skipped", False)
                )
            return False
        header, tc, dc = found
        for r in range(header + 1, len(rows)):
            row = rows[r]
            term = N.text(row[tc]) if tc < len(row) else ""
            definition = N.text(row[dc]) if dc < len(row) else ""
            if not term and not definition:
                continue
            if not term:
                self.notes.append(ImportNote(name, r + 1, "a definition without a term; not imported"))
            elif len(term) > 255:
                self.notes.append(ImportNote(name, r + 1, "the term is over 255 characters; not imported"))
            else:
                self.glossary.append({"term": term, "definition": definition})
        return True

    def read_sheet(self, name: str, wb: Any) -> None:
        rows, merges, n_formulas = self.sheet(wb, name)
        header = _find_header(rows)
        if header is None:
            if self.read_glossary(name, rows):
                return
            if any(N.text(v) for row in rows for v in row):
                self.notes.append(
                    ImportNote(
                        name,
                        None,
                        f"no action table (no header row with an Action column in the first "
                        f"{HEADER_SCAN_ROWS} rows); the sheet was skipped",
                        False,
                    )
                )
            return
        self.tables += 1
        if n_formulas:
            self.notes.append(
                ImportNote(
                    name,
                    None,
                    f"{n_formulas} cell(s) hold formulas; their last calculated values were used",
                    False,
                )
            )
        _SheetReader(self, name, rows, merges, header).read()

    # -- building the plan --
    def build(self) -> Plan:
        areas = self.areas.final()
        taken_ids = {a.id for a in areas if a.template}
        for area in areas:
            if not area.template:
                area.id = _area_id(area, taken_ids)
                taken_ids.add(area.id)
        taken_sheets = {a.sheet.casefold() for a in areas if a.template or a.from_sheet}
        for area in areas:
            if not area.template and not area.from_sheet:
                area.sheet = _safe_sheet_name(area.name, taken_sheets)
                taken_sheets.add(area.sheet.casefold())
        self.assign_ids(areas)
        # The register: a daplan workbook's own list first, then every lead met, in the order met.
        register = list(self.leads.values())
        data: dict[str, Any] = {
            "id": f"plan-{uuid.uuid4()}",
            "title": self.title(),
            "force": self.force_name if self.force_name is not None else self.about.get("Force", ""),
            "statuses": [s.model_dump() for s in self.statuses],
            "leads": [{"name": name} for name in register],
            "areas": [
                {
                    "id": a.id,
                    "name": a.name,
                    "sheet": a.sheet,
                    "key_criteria": a.key_criteria,
                    "supporting_areas": a.supporting,
                    "actions": [self.action(r) for r in a.rows],
                }
                for a in areas
            ],
            "glossary": self.glossary,
        }
        if any(a.template for a in areas):
            # The HMIC framework's own introduction, as `daplan new` gives it; a workbook does not carry one.
            data["background"] = self.template.background
            data["overarching_capabilities"] = self.template.overarching_capabilities
        if self.about.get("Protective marking"):
            data["classification"] = self.about["Protective marking"]
        try:
            return Plan.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc, self.path) from exc

    @staticmethod
    def action(row: _Row) -> dict[str, Any]:
        return {
            "id": row.id,
            "ref": row.ref,
            "kind": row.kind,
            "action": row.action,
            "response": row.response,
            "target": row.target,
            "due": row.due,
            "leads": row.leads,
            "status": row.status,
            "notes": row.notes,
        }

    def assign_ids(self, areas: list[_Area]) -> None:
        """Keep the ids a daplan workbook carries; give every other action area id + number ("LG-3", "LG-L1")."""
        reserved: set[str] = set()
        for area in areas:
            for row in area.rows:
                if row.id_text and _IDENT.match(row.id_text) and row.id_text not in reserved:
                    row.id = row.id_text
                    reserved.add(row.id)
                elif row.id_text:
                    self.notes.append(
                        ImportNote(
                            row.sheet,
                            row.row,
                            f"ID {row.id_text!r} is not usable (repeated or not an id); a fresh id was given",
                            False,
                        )
                    )
        for area in areas:
            counters = {"national": 1, "local": 1}
            for row in area.rows:
                if row.id:
                    continue
                prefix = f"{area.id}-" if row.kind == "national" else f"{area.id}-L"
                n = counters[row.kind]
                while f"{prefix}{n}" in reserved:
                    n += 1
                row.id = f"{prefix}{n}"
                reserved.add(row.id)
                counters[row.kind] = n + 1

    def title(self) -> str:
        if self.about.get("title"):
            return self.about["title"][:255]
        for text in self.titles:
            if "plan" in text.casefold() and len(text) <= 255:
                return text
        force = self.force_name or self.about.get("Force", "")
        return f"{force} Domestic Abuse Action Plan" if force else "Domestic Abuse Action Plan"

    def lead(self, name: str) -> str:
        """The register's spelling of a lead, adding it when new."""
        return self.leads.setdefault(fold_lead(name), name)


class _SheetReader:
    """One sheet's action table (or tables, between headings), row by row."""

    def __init__(
        self, imp: _Importer, name: str, rows: list[list[Any]], merges: list[Any], header: _Header
    ) -> None:
        self.imp = imp
        self.name = name
        self.rows = rows
        self.header = header
        # daplan's own layout: the header on its row, with an ID column beside the Ref column.
        self.built = header.row == L.HEADER_ROW and "id" in header.cols
        self.cols: dict[str, int] = {}
        self.extra: list[tuple[int, str]] = []
        self.adopt(header, rows[header.row])
        self.default_kind = "local" if _says_local(name) else "national"
        self.kind = "local" if header.local else self.default_kind
        # Vertically merged cells below the header: (row, column) -> the row of the merge's top-left cell.
        # A horizontal merge in a row marks that row as a heading.
        self.covered: dict[tuple[int, int], int] = {}
        self.spans_columns: set[int] = set()
        for (r1, c1), (r2, c2) in merges:
            if r2 <= header.row:
                continue
            if c2 > c1:
                self.spans_columns.add(r1)
            for r in range(max(r1 + 1, header.row + 1), r2 + 1):
                self.covered[(r, c1)] = r1
        self.placed: dict[int, _Row] = {}  # 0-based row -> the action it made
        self.area_here: _Area | None = None
        self.has_area_column = "area" in self.cols
        self.last_area_text = ""

    def adopt(self, header: _Header, row: list[Any]) -> None:
        """Read the table by this header from here on."""
        self.cols = dict(header.cols)
        self.extra = list(header.extra)
        if not self.built and "updated" in self.cols:
            # Only daplan derives "Last updated" from the plan; a hand-made one is the force's own note.
            c = self.cols.pop("updated")
            self.extra = sorted([*self.extra, (c, N.text(row[c]))])

    def note(self, r: int, message: str, needs_person: bool = True) -> None:
        self.imp.notes.append(ImportNote(self.name, r + 1, message, needs_person))

    def read(self) -> None:
        above = self.rows[: self.header.row]
        lines = [" ".join(N.text(v) for v in row if N.text(v)) for row in above]
        lines = [t for t in lines if t]
        criteria = next(
            (t.split(":", 1)[1].strip() for t in lines if re.match(r"(?i)key criteria\s*:", t)), None
        )
        supporting_line = next(
            (t.split(":", 1)[1].strip() for t in lines if re.match(r"(?i)supporting areas\s*:", t)), None
        )
        titles = [t for t in lines if not re.match(r"(?i)(key criteria|supporting areas)\s*:", t)]
        self.imp.titles.extend(titles)
        built = self.built
        if built or not self.has_area_column:
            area = self.imp.areas.match(self.name)
            if area is None:
                area = next((a for a in map(self.imp.areas.match, titles) if a is not None), None)
            if built:
                # A daplan workbook: the sheet describes its area exactly.
                if area is None:
                    area = self.imp.areas.get(titles[0] if titles else self.name)
                if not area.from_sheet:
                    area.from_sheet = True
                    area.name = (titles[0] if titles else area.name)[:255]
                    area.sheet = self.name
                    area.key_criteria = criteria or ""
                    if supporting_line is not None:
                        area.supporting = [s.strip() for s in supporting_line.split(";") if s.strip()]
            self.area_here = area
        for r in range(self.header.row + 1, len(self.rows)):
            self.read_row(r)
        if built and self.area_here is not None and not self.area_here.template:
            prefixes = {row.id_text.rsplit("-", 1)[0] for row in self.area_here.rows if "-" in row.id_text}
            if len(prefixes) == 1:
                self.area_here.id_hint = prefixes.pop()

    def sheet_area(self) -> _Area:
        if self.area_here is None:
            self.area_here = self.imp.areas.get(self.name)
        return self.area_here

    def read_row(self, r: int) -> None:
        row = list(self.rows[r])
        width = max(self.cols.values()) + 1
        if len(row) < width:
            row.extend([None] * (width - len(row)))
        # A vertically merged cell shows its value on every row it spans.
        for key in _SHARED_FIELDS:
            c = self.cols.get(key)
            if c is not None and (r, c) in self.covered:
                row[c] = self.rows[self.covered[(r, c)]][c]
        texts = [N.text(v) for v in row]
        if not any(texts):
            return
        if _is_header_row(texts):
            again = _header_of(row)
            if again is not None:
                again.row = self.header.row
                self.adopt(again, row)
                self.kind = "local" if again.local else self.default_kind
                return
        action_col = self.cols["action"]
        filled = [c for c, t in enumerate(texts) if t]
        heading_like = len(filled) == 1 and (filled[0] != action_col or r in self.spans_columns)
        if heading_like and self.heading(texts[filled[0]]):
            return
        action = texts[action_col]
        # In a daplan workbook the ID makes the row an action, even one whose text is empty.
        if not action and not self.cell(texts, "id"):
            top = self.covered.get((r, action_col))
            if top is not None and top in self.placed:
                self.continue_action(self.placed[top], row, texts, r)
                return
            self.note(r, f"text but no action text ({_snippet(texts)!r}); the row was not imported")
            return
        self.place(r, row, texts)

    def heading(self, text: str) -> bool:
        """A section heading between tables: "Local actions", or an area's name."""
        m = _LOCAL_HEADING.match(text)
        if m:
            self.kind = "national" if m["kind"].casefold() == "national" else "local"
            return True
        if not self.has_area_column and len(text) <= 120:
            area = self.imp.areas.match(text)
            if area is not None:
                self.area_here = area
                self.kind = self.default_kind
                return True
        return False

    def cell(self, texts: list[str], key: str) -> str:
        c = self.cols.get(key)
        return texts[c] if c is not None and c < len(texts) else ""

    def place(self, r: int, row: list[Any], texts: list[str]) -> None:
        imp = self.imp
        if self.has_area_column:
            area_text = self.cell(texts, "area") or self.last_area_text
            self.last_area_text = area_text
            area = imp.areas.get(area_text) if area_text else self.sheet_area()
        else:
            area = self.sheet_area()
        out = _Row(self.name, r + 1, self.row_kind(r, texts))
        out.id_text = self.cell(texts, "id")
        out.ref = self.cell(texts, "ref")
        out.action = self.cell(texts, "action")
        out.response = self.cell(texts, "response")
        notes = [self.cell(texts, "notes")]
        self.read_dates(r, row, texts, out, notes)
        notes += [f"{head}: {texts[c]}" for c, head in self.extra if c < len(texts) and texts[c]]
        out.notes = "\n".join(n for n in notes if n)
        for key in ("ref", "action", "response", "target", "notes"):
            try:
                check_text(getattr(out, key))
            except ValueError as exc:
                self.note(r, f"{key.capitalize()} {exc}; the row was not imported")
                return
        out.leads = self.leads(r, texts)
        out.status = self.status(r, texts)
        area.rows.append(out)
        self.placed[r] = out

    def row_kind(self, r: int, texts: list[str]) -> str:
        value = self.cell(texts, "kind")
        if not value:
            return self.kind
        folded = value.casefold()
        if "local" in folded:
            return "local"
        if "national" in folded or "hmic" in folded:
            return "national"
        self.note(r, f"National / local {value!r} is neither; the action was taken as {self.kind}")
        return self.kind

    def read_dates(self, r: int, row: list[Any], texts: list[str], out: _Row, notes: list[str]) -> None:
        target_col = self.cols.get("target")
        target = row[target_col] if target_col is not None else None
        out.target = self.cell(texts, "target")
        if isinstance(target, dt.date):
            # A date cell reads as the workbooks show dates, not as ISO text.
            day = target.date() if isinstance(target, dt.datetime) else target
            out.target = day.strftime("%d/%m/%Y")
        if "due" in self.cols:
            value = row[self.cols["due"]]
            if N.text(value):
                try:
                    out.due = dt.date.fromisoformat(N.date(value, self.imp.epoch1904))
                except N.DateProblem as exc:
                    self.note(r, f"Due: {exc}; left empty and kept in the notes")
                    notes.append(f"Due as written: {N.text(value)}")
            return
        # Without a Due column, a Target that is a date is also the due date.
        if isinstance(target, dt.date):
            out.due = target.date() if isinstance(target, dt.datetime) else target
        elif isinstance(target, str) and out.target and not re.fullmatch(r"[\d.]+", out.target):
            with contextlib.suppress(N.DateProblem):
                out.due = dt.date.fromisoformat(N.date(out.target, self.imp.epoch1904))

    def leads(self, r: int, texts: list[str]) -> list[str]:
        imp = self.imp
        cells = [self.cell(texts, "lead"), self.cell(texts, "supporting")]
        out: list[str] = []
        for cell in cells:
            if not cell:
                continue
            for name in split_leads(cell, imp.leads):
                if _word(name) in _NO_LEAD:
                    continue
                if len(name) > MAX_LEAD_LENGTH:
                    self.note(r, f"a lead of {len(name)} characters is not a role's name; left out")
                    continue
                try:
                    check_text(name)
                except ValueError as exc:
                    self.note(r, f"Lead {exc}; left out")
                    continue
                spelt = imp.lead(name)
                if spelt not in out:
                    out.append(spelt)
        return out

    def status(self, r: int, texts: list[str]) -> str:
        word = self.cell(texts, "status")
        if not word:
            return NOT_STARTED
        found = self.imp.status(word)
        if found is None:
            self.note(
                r,
                f"status {word!r} is not one this import knows; set to {NOT_STARTED} "
                "(map it with --status-map)",
            )
            return NOT_STARTED
        key = (word, found)
        self.imp.mapped[key] = self.imp.mapped.get(key, 0) + 1
        return found

    def continue_action(self, action: _Row, row: list[Any], texts: list[str], r: int) -> None:
        """A row under an action cell merged down over it: its text continues that action."""
        for key in ("response", "notes"):
            more = self.cell(texts, key)
            c = self.cols.get(key)
            if more and (c is None or (r, c) not in self.covered):
                joined = "\n".join(p for p in (getattr(action, key), more) if p)
                setattr(action, key, joined)
        for lead in self.leads(r, texts):
            if lead not in action.leads:
                action.leads.append(lead)


def import_workbook(
    path: str | os.PathLike[str],
    *,
    force_name: str | None = None,
    status_map: Mapping[str, str] | None = None,
) -> ImportResult:
    """Adopt a plan kept as an ordinary workbook. Raises a DaplanError when the workbook is unusable."""
    return _Importer(Path(path), force_name, status_map).run()
