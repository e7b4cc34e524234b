"""Every problem of a plan file, each with its line, the action it is in and what to do about it.

`planfile.load_plan` stops at the first problem and names it by its path in the model; that is right for the
commands that need a plan to work on. `daplan validate` is where the owner fixes a hand-edited file, so it
lists every problem at once, in the file's own terms: the line (from the YAML node marks), the action's ID,
the field, what is wrong and what to write instead (the nearest valid lead, status or key; a date in ISO
form; a list written as a list; text containing ': ' in quotes).

The checks are the model's own: a problem is found by pydantic or by `model.plan_problems`, never by a rule
of this module, so `validate` and `load_plan` always agree on what is valid. To find every problem in one
run, each value found wrong is set aside (dropped, or given a placeholder) and the plan validated again,
until only the rules across the plan are left; those are then checked on what remains, leaving out the
places set aside.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import planfile
from .errors import PlanFileError
from .model import TEXT_ERROR, Action, Area, GlossaryEntry, Lead, Plan, Status, plan_problems

Loc = tuple[Any, ...]

# Enough for a plan whose every value is wrong: each round sets aside what the previous one found.
_MAX_ROUNDS = 12
# Lines quoted to get past "mapping values are not allowed" before giving up on the rest of the file.
_MAX_REPAIRS = 100
# Lists of valid values longer than this are not spelt out in a hint.
_LIST_IN_HINT = 8

_STR_TAG = "tag:yaml.org,2002:str"
# The line breaks YAML counts (libyaml and PyYAML alike), so a line number here is the parser's.
_LINE_BREAK = re.compile("\r\n|\r|\n|\x85|\u2028|\u2029")


@dataclass(frozen=True)
class Problem:
    """One problem of a plan file: where it is (line, action, field), what is wrong and what to do."""

    line: int | None  # 1-based; None for a problem of the file as a whole
    action_id: str | None  # the action the problem is in, when it is in one
    field: str  # the action's field ("status", "leads"), or the path in the plan outside an action
    message: str  # what is wrong
    hint: str  # what to do
    suggestion: str | None = None  # the nearest valid value, when there is one
    column: int | None = None

    def place(self) -> str:
        return " ".join(p for p in (self.action_id, self.field) if p)

    def text(self, file: str) -> str:
        """`plan.yaml:LINE: ACTION-ID field: what is wrong; what to do`."""
        where = f"{file}:{self.line}" if self.line is not None else file
        place = self.place()
        body = f"{place}: {self.message}" if place else self.message
        line = f"{where}: {body}; {self.hint}" if self.hint else f"{where}: {body}"
        return " ".join(line.split())

    def as_json(self, file: str) -> dict[str, Any]:
        return {
            "file": file,
            "line": self.line,
            "column": self.column,
            "action_id": self.action_id,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
            "suggestion": self.suggestion,
        }


@dataclass
class Report:
    """The problems of one plan file, and the plan when it has none."""

    file: str
    problems: list[Problem]
    plan: Plan | None = None

    @property
    def valid(self) -> bool:
        return not self.problems and self.plan is not None


def check_file(path: str | Path) -> Report:
    """Every problem of the plan file at `path`."""
    p = Path(path)
    name = str(path)
    try:
        raw = planfile._read_plan_bytes(p)
    except PlanFileError as exc:
        return Report(name, [Problem(None, None, "", exc.what, exc.hint)])
    if len(raw) >= planfile.CACHE_MIN_BYTES:
        # A cache saying the file is exactly what daplan saved (`canonical`) proves it valid: no need to
        # read 20,000 actions again. A hand-edited file's cache says less (duplicate keys pass a load).
        cached = planfile._read_cache(p, hashlib.sha256(raw).hexdigest())
        if cached is not None and cached[1]:
            return Report(name, [], cached[0])
    try:
        text = planfile._decode_plan(raw, p)
    except PlanFileError as exc:
        return Report(name, [Problem(None, None, "", exc.what, exc.hint)])
    return check_text(text, name)


def check_text(text: str, file: str = "plan.yaml") -> Report:
    """Every problem of a plan file's text; `file` names it in hints."""
    problems: list[Problem] = []
    root, syntax = _compose(text)
    problems += syntax
    if root is None:
        if not syntax:
            problems.append(_not_a_plan(None))
        return Report(file, _sorted(problems))
    builder = _Builder()
    try:
        data = builder.build(root, ())
    except RecursionError:
        problems.append(
            Problem(1, None, "", "the file nests too deeply to be a plan", "start from `daplan new`")
        )
        return Report(file, _sorted(problems))
    # Syntax errors were found before the document could be built: name their action and field now.
    problems = [_place_syntax_problem(p, builder) for p in problems]
    if not isinstance(data, dict):
        problems += builder.named_problems()
        problems.append(_not_a_plan(_line(root)))
        return Report(file, _sorted(problems))
    checker = _Checker(data, builder)
    plan, found = checker.run()
    problems += builder.named_problems()
    problems += found
    return Report(file, _sorted(problems), plan if not problems else None)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _not_a_plan(line: int | None) -> Problem:
    return Problem(
        line,
        None,
        "",
        "the file does not hold a plan (expected a mapping of keys such as title, areas)",
        "start from `daplan new` or an example in examples/",
    )


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


# --- YAML syntax ----------------------------------------------------------------------------------------

_KEY_THEN_VALUE = re.compile(
    r"""^(?P<prefix>[ \t]*(?:-[ \t]+)*(?:[^\s'"#\-\[\]{}&*!|>%@`][^:#]*?|'[^']*'|"[^"]*"):[ \t]+)(?P<value>.*)$"""
)


def _compose(text: str) -> tuple[yaml.Node | None, list[Problem]]:
    """The document's node tree, and its syntax errors.

    A plain value containing ': ' (`target: Phase 1: March 2027`) is the one syntax error that says nothing
    about the rest of the file: that line is quoted, for the rest to be read and checked too. Any other
    syntax error ends the reading there.
    """
    problems: list[Problem] = []
    pieces = _LINE_BREAK.split(text)
    breaks = _LINE_BREAK.findall(text)
    for _ in range(_MAX_REPAIRS):
        try:
            return yaml.compose(text, Loader=planfile._Loader), problems
        except yaml.MarkedYAMLError as exc:
            problem, fixed = _syntax_problem(exc, pieces)
            problems.append(problem)
            if fixed is None or problem.line is None:
                return None, problems
            pieces[problem.line - 1] = fixed
            text = "".join(p + b for p, b in zip(pieces, [*breaks, ""], strict=True))
        except yaml.YAMLError as exc:
            problems.append(Problem(None, None, "", f"YAML error: {exc}", "fix the YAML"))
            return None, problems
    return None, problems


def _syntax_problem(exc: yaml.MarkedYAMLError, lines: list[str]) -> tuple[Problem, str | None]:
    """The problem a syntax error makes, and the line that fixes it when it is only a missing pair of quotes."""
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "YAML syntax error"
    message = f"YAML syntax error: {what}"
    if mark is None:
        return Problem(None, None, "", message, "fix the YAML"), None
    line, column = int(mark.line), int(mark.column)
    text = lines[line] if line < len(lines) else ""
    hint = "fix the YAML at this line"
    fixed = None
    if "mapping values are not allowed" in what:
        fixed = _quoted_value(text, column)
        if fixed is not None:
            hint = f"text that contains ': ' must be in quotes: {fixed.strip()}"
        else:
            hint = (
                "check this line's indentation against the lines above, and put text that contains ': ' "
                "in quotes"
            )
    elif "cannot start any token" in what and "\t" in text[: column + 1]:
        hint = "indent with spaces: YAML does not allow tabs"
    elif "found undefined alias" in what:
        hint = "a value beginning with '*' must be in quotes"
    elif exc.context and "quoted scalar" in exc.context and exc.context_mark is not None:
        line, column = int(exc.context_mark.line), int(exc.context_mark.column)
        hint = "the quote opened here is never closed: close it, or double a ' inside '...' text"
    elif "expected" in what or "block" in str(exc.context or ""):
        hint = "check this line's indentation against the lines above"
    suggestion = fixed.strip() if fixed else None
    return Problem(line + 1, None, "", message, hint, suggestion, column + 1), fixed


def _quoted_value(line: str, column: int) -> str | None:
    """`key: Phase 1: March 2027` -> `key: 'Phase 1: March 2027'` when the bad colon is in the value."""
    match = _KEY_THEN_VALUE.match(line)
    if match is None or column < len(match.group("prefix")):
        return None
    value, comment = match.group("value"), ""
    if " #" in value:  # a plain value ends where a comment begins
        value, comment = value.split(" #", 1)
        comment = "  #" + comment
    value = value.rstrip()
    if not value or value[0] in "'\"[{|>&*!%@`":
        return None
    return match.group("prefix") + "'" + value.replace("'", "''") + "'" + comment


def _place_syntax_problem(problem: Problem, builder: _Builder) -> Problem:
    path = builder.key_lines.get(problem.line) if problem.line is not None else None
    if path is None:
        return problem
    action_id, name = _place(path, builder.nodes)
    return replace(problem, action_id=action_id, field=name)


# --- from nodes to data, remembering where each value was -----------------------------------------------


class _Builder:
    """Builds the plan's data from the YAML nodes as PyYAML's safe loader would, keeping each value's node.

    Unlike the loader, it goes on past a value it cannot construct (a date that does not exist) and notes
    a key given twice in one mapping, which the loader silently reads as the last one. Its problems name
    their place by path, named by the action's id and field once the whole document is built.
    """

    def __init__(self) -> None:
        self.constructor = yaml.SafeLoader("")
        self.nodes: dict[Loc, yaml.Node] = {}  # path -> value node
        self.keys: dict[Loc, yaml.Node] = {}  # path -> key node
        self.key_lines: dict[int, Loc] = {}  # line of a key -> its path
        self.problems: list[tuple[Problem, Loc]] = []  # each with the path of its place
        self.unreadable: set[Loc] = set()  # values reported here and left out of the data
        self._open: set[int] = set()  # nodes being built: an alias may point back up the tree

    def build(self, node: yaml.Node, path: Loc) -> Any:
        self.nodes[path] = node
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._open:
            self._report(node, path, "an alias refers to the block it is in", "remove the alias")
            self.unreadable.add(path)
            return _UNREADABLE
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                items = []
                for i, item_node in enumerate(node.value):
                    item = self.build(item_node, (*path, i))
                    # An item reported already stays as the text it was, so the list keeps its length.
                    items.append(item_node.value if item is _UNREADABLE else item)
                return items
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _report(
        self, node: yaml.Node, path: Loc, message: str, hint: str, suggestion: str | None = None
    ) -> None:
        column = int(node.start_mark.column) + 1
        self.problems.append((Problem(_line(node), None, "", message, hint, suggestion, column), path))

    def named_problems(self) -> list[Problem]:
        """The problems found while building, named by action and field (every id is known by now)."""
        named = []
        for problem, path in self.problems:
            action_id, name = _place(path, self.nodes)
            named.append(replace(problem, action_id=action_id, field=name))
        return named

    def _scalar(self, node: yaml.ScalarNode, path: Loc) -> Any:
        if node.tag == _STR_TAG:
            return node.value
        try:
            return self.constructor.construct_object(node)
        except (ValueError, TypeError, AttributeError, OverflowError, yaml.YAMLError) as exc:
            name = next((p for p in reversed(path) if isinstance(p, str)), "")
            if node.tag == "tag:yaml.org,2002:timestamp" and name in _DATE_FIELDS:
                self._report(node, path, *_date_advice(node.value))
            elif node.tag == "tag:yaml.org,2002:timestamp":
                self._report(
                    node,
                    path,
                    f"{node.value} is read as a date, and is not a real one",
                    f"put it in quotes if it is text: {name or 'key'}: '{node.value}'",
                )
            else:
                self._report(node, path, f"{node.value!r} cannot be read ({exc})", "write it as text")
            self.unreadable.add(path)
            return _UNREADABLE

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        try:
            self.constructor.flatten_mapping(node)  # merge keys (`<<: *base`), as the loader does
        except yaml.YAMLError as exc:
            self._report(node, path, f"YAML error: {exc}", "fix the merge key")
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else _UNREADABLE
            if key is _UNREADABLE:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._report(key_node, path, "a key must be a word", "write `key: value`")
                continue
            child = (*path, key)
            if key in first_line:
                self._report(
                    key_node,
                    child,
                    f"the key {key!r} is given twice here (also on line {first_line[key]})",
                    "keep one of them: only the last is read",
                )
            first_line[key] = _line(key_node)
            self.keys[child] = key_node
            self.key_lines.setdefault(_line(key_node), child)
            value = self.build(value_node, child)
            if value is _UNREADABLE:
                # Reported already; the model sees no value (a default applies) and says nothing more.
                out.pop(key, None)
                continue
            out[key] = value
        return out


class _Unreadable:
    pass


_UNREADABLE: Any = _Unreadable()


# --- where a problem is, in the owner's terms -----------------------------------------------------------


def _action_of(loc: Loc) -> tuple[Loc, Loc] | None:
    """(the action's path, the rest) when `loc` is inside an action."""
    if len(loc) >= 4 and loc[0] == "areas" and loc[2] == "actions" and isinstance(loc[3], int):
        return loc[:4], loc[4:]
    return None


def _place(loc: Loc, nodes: dict[Loc, yaml.Node]) -> tuple[str | None, str]:
    """(action id, field) for a path: `LG-3`, `leads` inside an action; (None, `areas[1].sheet`) outside.

    The id is read from the file (its node), so an action keeps its name even when its id is wrong.
    """
    inside = _action_of(loc)
    if inside is not None:
        node = nodes.get((*inside[0], "id"))
        ident = node.value if isinstance(node, yaml.ScalarNode) else None
        if isinstance(ident, str) and ident.strip() and "\n" not in ident:
            rest = [p for p in inside[1] if isinstance(p, str)]
            return ident.strip(), ".".join(rest)
    return None, planfile.format_loc(loc)


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --- the checks ------------------------------------------------------------------------------------------

# The model each list of the plan holds, for the keys (and defaults) of an item.
_ITEM_MODEL: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (Plan, "statuses"): Status,
    (Plan, "leads"): Lead,
    (Plan, "areas"): Area,
    (Plan, "glossary"): GlossaryEntry,
    (Area, "actions"): Action,
}
_DATE_FIELDS = {"due", "published", "updated"}
_PATH_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")


class _Checker:
    """Validates the data over and over, setting aside each value found wrong, then the cross-plan rules."""

    def __init__(self, data: dict[Any, Any], builder: _Builder) -> None:
        self.data = data
        self.builder = builder
        self.set_aside: set[Loc] = set(builder.unreadable)
        self.placeholders = 0
        self.problems: list[Problem] = []

    def run(self) -> tuple[Plan | None, list[Problem]]:
        cross_field_left = False
        for _ in range(_MAX_ROUNDS):
            try:
                plan = Plan.model_validate(self.data)
            except ValidationError as exc:
                errors = exc.errors(include_url=False)
                fields = [e for e in errors if e["loc"] != ()]
                if not fields:
                    cross_field_left = True  # every field is valid: only the plan's own rules are broken
                    break
                # All of a round's problems are described before any value is set aside.
                self.problems += [self._field_problem(err) for err in fields]
                for err in fields:
                    self._set_aside(tuple(err["loc"]), err)
                continue
            if not self.problems:
                return plan, []
            cross_field_left = True
            break
        if cross_field_left:
            self.problems += self._cross_field_problems()
        return None, self.problems

    # -- where ------------------------------------------------------------------------------------------

    def _node_of(self, loc: Loc, *, key: bool = False) -> yaml.Node | None:
        """The node of the value at `loc` (its key's with `key`), or of the nearest one above it."""
        if key and loc in self.builder.keys:
            return self.builder.keys[loc]
        for end in range(len(loc), -1, -1):
            node = self.builder.nodes.get(loc[:end])
            if node is not None:
                return node
        return None

    def _line_of(self, loc: Loc) -> int | None:
        node = self._node_of(loc)
        return None if node is None else _line(node)

    def _problem(
        self, loc: Loc, message: str, hint: str, suggestion: str | None = None, *, key: bool = False
    ) -> Problem:
        action_id, name = _place(loc, self.builder.nodes)
        node = self._node_of(loc, key=key)
        if node is None:
            return Problem(None, action_id, name, message, hint, suggestion)
        column = int(node.start_mark.column) + 1
        return Problem(_line(node), action_id, name, message, hint, suggestion, column)

    def _raw(self, loc: Loc, value: Any) -> str:
        """The value as written in the file (a scalar's own text), for messages."""
        node = self.builder.nodes.get(loc)
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return _short(value)

    # -- field problems -----------------------------------------------------------------------------------

    def _field_problem(self, err: Any) -> Problem:
        loc: Loc = tuple(err["loc"])
        kind: str = err["type"]
        value = err.get("input")
        name = next((p for p in reversed(loc) if isinstance(p, str)), "")
        model = _model_at(loc[:-1]) if loc else None

        if kind == TEXT_ERROR:
            ctx = err.get("ctx") or {}
            sub = _parse_path(str(ctx["field"]))
            what, _, todo = str(ctx["problem"]).rpartition("; ")
            return self._problem(loc + sub, what or todo, todo if what else "correct it")
        if kind == "extra_forbidden":
            known = list(model.model_fields) if model is not None else []
            match = _closest(str(loc[-1]), known)
            hint = (
                f"did you mean {match!r}?"
                if match
                else "remove it or fix its spelling (`daplan schema` lists the keys)"
            )
            return self._problem(loc, f"unknown key {loc[-1]!r}", hint, match, key=True)
        if kind == "missing":
            return self._problem(
                loc, f"required key {name!r} is missing", f"add `{name}:` with its value", key=True
            )
        raw = self._raw(loc, value)
        if name in _DATE_FIELDS and (kind.startswith(("date", "datetime")) or value is None):
            message, hint, suggestion = _date_advice(raw)
            if name == "updated" and suggestion:
                suggestion += "T00:00:00Z"
                hint = f"write {suggestion}"
            return self._problem(loc, message, hint, suggestion)
        if kind == "list_type":
            return self._list_problem(loc, name, value, raw)
        if kind in ("string_type", "model_type", "dict_type", "model_attributes_type"):
            return self._type_problem(loc, name, value, raw, kind)
        if kind == "string_pattern_mismatch" and name == "colour":
            return self._problem(
                loc,
                f"{raw!r} is not a colour",
                "write it as '#RRGGBB' in quotes, e.g. colour: '#70AD47'",
            )
        if kind == "string_pattern_mismatch":
            return self._problem(
                loc,
                f"{raw!r} is not a valid id",
                "use letters, digits, '.', '_' and '-' only, beginning with a letter or digit, "
                "at most 64 characters (e.g. LG-5)",
            )
        if kind == "string_too_short":
            return self._problem(loc, "is empty", "write a value")
        if kind == "string_too_long":
            limit = (err.get("ctx") or {}).get("max_length")
            return self._problem(
                loc, f"is {len(str(value))} characters long", f"shorten it to {limit} at most"
            )
        if kind == "literal_error":
            allowed = ["national", "local"] if name == "kind" else []
            match = _closest(raw, allowed)
            hint = f"did you mean {match!r}?" if match else f"write {' or '.join(allowed) or 'a valid value'}"
            return self._problem(loc, f"{raw!r} is not a kind of action", hint, match)
        if kind.startswith("bool"):
            return self._problem(loc, f"{raw!r} is not true or false", "write true or false")
        if kind.startswith("int"):
            return self._problem(loc, f"{raw!r} is not a whole number", "write a number such as 1")
        if kind == "greater_than_equal":
            return self._problem(loc, f"{raw} is too small", f"write {err['ctx']['ge']} or more")
        if kind == "too_short" and name == "statuses":
            return self._problem(
                loc,
                "the list of statuses is empty",
                "list at least one status, or delete `statuses:` to use the default ones",
            )
        message = str(err["msg"]).removeprefix("Value error, ")
        return self._problem(loc, message, "correct it (`daplan schema` describes each key)")

    def _list_problem(self, loc: Loc, name: str, value: Any, raw: str) -> Problem:
        if isinstance(value, str):
            flow = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=10**6).strip()
            item = yaml.safe_dump(value, allow_unicode=True, width=10**6).strip().removesuffix("...").strip()
            return self._problem(
                loc,
                f"{raw!r} is one value where a list is expected",
                f"write it as a list: {name}: {flow} (or with a '- {item}' line under {name}:)",
                f"{name}: {flow}",
            )
        if value is None:
            return self._problem(
                loc, "is empty", f"write one '- ...' line per item under {name}:, or delete it"
            )
        return self._problem(loc, "is not a list", f"write one '- ...' line per item under {name}:")

    def _type_problem(self, loc: Loc, name: str, value: Any, raw: str, kind: str) -> Problem:
        quoted = f"{name}: '{raw}'" if isinstance(loc[-1], str) else f"- '{raw}'"
        if kind != "string_type":
            model = _model_at(loc)
            keys = [k for k, f in model.model_fields.items() if f.is_required()] if model else []
            example = f" (such as {', '.join(keys)})" if keys else ""
            if isinstance(value, str) and model is Action:
                hint = f"write the action as keys: - id: {value}, then its action:, leads:, status: lines"
            else:
                hint = "write one `key: value` line for each"
            return self._problem(loc, f"expected keys{example} here, not {_short(value)!r}", hint)
        if value is None:
            return self._problem(loc, "is empty", "write a value, or delete the line")
        if isinstance(value, bool):
            return self._problem(
                loc,
                f"{raw} is read as true or false where text is expected",
                f"put it in quotes: {quoted}",
                raw,
            )
        if isinstance(value, (dt.date, dt.datetime)):
            return self._problem(
                loc,
                f"{raw} is read as a date where text is expected",
                f"put it in quotes: {quoted}",
                raw,
            )
        if isinstance(value, (int, float)):
            return self._problem(
                loc, f"{raw} is a number where text is expected", f"put it in quotes: {quoted}", raw
            )
        if isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
            return self._problem(
                loc,
                f"the text {text!r} is read as a key and value because it contains ': '",
                "put the whole text in quotes",
                text,
            )
        return self._problem(loc, f"{_short(value)!r} is not text", "write text")

    # -- setting a wrong value aside, so the next round checks the rest -------------------------------------

    def _set_aside(self, loc: Loc, err: Any) -> None:
        if err["type"] == TEXT_ERROR:
            loc = loc + _parse_path(str((err.get("ctx") or {})["field"]))
        if err["type"] == "list_type" and isinstance(err.get("input"), str):
            # `leads: Head of Protect` is read as the one-item list it was meant to be: the name is
            # still checked against the register.
            _put(self.data, loc, [err["input"]])
            return
        self.set_aside.add(loc)
        if err["type"] == "extra_forbidden":
            _delete(self.data, loc)
            return
        parent = _get(self.data, loc[:-1])
        model = _model_at(loc[:-1])
        last = loc[-1]
        if isinstance(parent, dict) and model is not None and isinstance(last, str):
            spec = model.model_fields.get(last)
            if spec is not None and not spec.is_required():
                _delete(self.data, loc)
                return
            _put(self.data, loc, self._placeholder(last))
            return
        item_model = _model_at(loc)
        if item_model is not None and isinstance(last, int):
            # An item that is not a mapping: a placeholder item with the required keys.
            _put(
                self.data,
                loc,
                {k: self._placeholder(k) for k, f in item_model.model_fields.items() if f.is_required()},
            )
            return
        _put(self.data, loc, self._placeholder("text") if isinstance(last, int) else None)
        if isinstance(parent, dict):
            _delete(self.data, loc)

    def _placeholder(self, key: str) -> str:
        # Unique, so no placeholder is taken for a duplicate of another; their places are set aside anyway.
        self.placeholders += 1
        if key == "id":
            return f"x-set-aside-{self.placeholders}"
        if key == "colour":
            return "#000000"
        return f"(set aside {self.placeholders})"

    # -- the rules across the plan ------------------------------------------------------------------------

    def _cross_field_problems(self) -> list[Problem]:
        try:
            plan = _lenient_plan(self.data)
        except ValidationError:
            return []
        out = []
        for path, message in plan_problems(plan):
            loc = _parse_path(path)
            if any(loc[:end] in self.set_aside for end in range(1, len(loc) + 1)):
                continue
            out.append(self._rule_problem(plan, loc, message))
        return out

    def _rule_problem(self, plan: Plan, loc: Loc, message: str) -> Problem:
        inside = _action_of(loc)
        if inside is not None:
            action = plan.areas[loc[1]].actions[loc[3]]
            rest = inside[1]
            if rest == ("status",):
                return self._unknown(loc, action.status, plan.status_names(), "statuses", "statuses:")
            if rest[:1] == ("leads",) and "register" in message:
                lead = action.leads[rest[1]]
                return self._unknown(loc, lead, plan.lead_names(), "lead register", "leads:")
            if rest == ("id",):
                first = re.search(r"already used at (\S+)", message)
                line = self._line_of(_parse_path(first.group(1))) if first else None
                return self._problem(
                    loc,
                    f"the id {action.id!r} is already used" + (f" on line {line}" if line else ""),
                    "give this action an id of its own (an id is never reused)",
                )
            if rest[:1] == ("leads",):
                return self._problem(loc, message, "list each lead once")
        if loc[-1] == "sheet":
            return self._problem(loc, message, "choose another sheet name")
        return self._problem(loc, message, "give each one a name of its own")

    def _unknown(self, loc: Loc, value: str, valid: list[str], what: str, section: str) -> Problem:
        match = _closest(value, valid)
        if match is not None:
            hint = f"did you mean {match!r}?"
        elif not valid:
            hint = f"add it under `{section}` at the top of the plan, as `- name: {value}`"
        elif len(valid) <= _LIST_IN_HINT:
            hint = f"use one of {', '.join(map(repr, valid))}, or add it under `{section}`"
        else:
            hint = f"add it under `{section}` at the top of the plan, or use a name listed there"
        return self._problem(loc, f"{value!r} is not in the plan's {what}", hint, match)


def _lenient_plan(data: dict[Any, Any]) -> Plan:
    """The plan without its cross-plan rules checked (every field is valid by now)."""
    parts: dict[str, Any] = {}
    for key, model in (("statuses", Status), ("leads", Lead), ("areas", Area), ("glossary", GlossaryEntry)):
        if key in data:
            parts[key] = [model.model_validate(item) for item in data[key]]
    return Plan.model_construct(**parts)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model of the mapping at `loc` (Plan at the top, Action inside areas[i].actions[j])."""
    model: type[BaseModel] | None = Plan
    pending: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, int):
            model, pending = pending, None
        elif model is not None:
            pending = _ITEM_MODEL.get((model, part))
            model = None
        else:
            return None
    return model


def _parse_path(path: str) -> Loc:
    """'areas[2].actions[4].leads[0]' -> ('areas', 2, 'actions', 4, 'leads', 0)."""
    return tuple(name if name else int(index) for name, index in _PATH_PART.findall(path))


def _put(data: Any, loc: Loc, value: Any) -> None:
    parent = _get(data, loc[:-1])
    with contextlib.suppress(TypeError, IndexError, KeyError):
        parent[loc[-1]] = value


def _delete(data: Any, loc: Loc) -> None:
    parent = _get(data, loc[:-1])
    if isinstance(parent, dict):
        parent.pop(loc[-1], None)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _closest(value: str, valid: Iterable[str]) -> str | None:
    """The valid value nearest to `value`, ignoring case first (`Not Started` -> 'Not started')."""
    valid = list(valid)
    if not isinstance(value, str) or not valid:
        return None
    folded = {v.casefold(): v for v in reversed(valid)}
    key = " ".join(value.split()).casefold()
    if key in folded:
        return folded[key]
    match = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


# --- dates ----------------------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(?P<month_name>[A-Za-z]{3,9})\\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4}|\d{2})"
_DATE_FORMS = [
    # 31/03/2027, 31-03-2027, 31.03.2027, 31/3/27: the day first, as written in the UK
    re.compile(rf"^(?P<a>\d{{1,2}})\s*([/.\-])\s*(?P<b>\d{{1,2}})\s*\2\s*{_YEAR}$"),
    # 2027/03/31, 2027-3-31, 2027.03.31
    re.compile(r"^(?P<year>\d{4})\s*[/.\-]\s*(?P<month>\d{1,2})\s*[/.\-]\s*(?P<day>\d{1,2})$"),
    # 31 March 2027, 31st Mar 2027, 31-Mar-2027
    re.compile(rf"^{_DAY}[\s\-/]*{_MONTH}[\s,\-/]*{_YEAR}$"),
    # March 31, 2027
    re.compile(rf"^{_MONTH}\s+{_DAY},?\s+{_YEAR}$"),
]
_MONTH_YEAR = re.compile(rf"^{_MONTH}[\s,\-/]*(?P<year>\d{{4}})$")
_DATETIME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})[T ]")


def _date_advice(raw: str) -> tuple[str, str, str | None]:
    """(what is wrong, what to do, the ISO date meant) for a date the plan file does not accept."""
    text = " ".join(str(raw).split())
    if not text or text in ("null", "~"):
        return "is empty", "write a date as YYYY-MM-DD, or delete the line", None
    stamp = _DATETIME.match(text)
    if stamp:
        return (
            f"{text} has a time of day; a date has none",
            f"write {stamp.group('date')}",
            stamp.group("date"),
        )
    for form in _DATE_FORMS:
        match = form.match(text)
        if match is None:
            continue
        parts = match.groupdict()
        year = int(parts["year"])
        if year < 100:
            year += 2000
        if parts.get("a"):
            day, month = int(parts["a"]), int(parts["b"])
            us_order = month > 12 >= day  # 03/31/2027 can only be month first
            if us_order:
                day, month = month, day
        else:
            day = int(parts["day"])
            month = int(parts["month"]) if parts.get("month") else _MONTHS.get(parts["month_name"].lower(), 0)
        try:
            meant = dt.date(year, month, day)
        except ValueError:
            return (
                f"{text} is not a real date",
                "write a date that exists, as YYYY-MM-DD",
                None,
            )
        iso = meant.isoformat()
        if parts.get("a") and not us_order and day <= 12 and day != month:
            hint = f"write {iso} (if you meant {meant.day} {meant:%B %Y}; day first as in the UK)"
        else:
            hint = f"write {iso}"
        if text == iso:  # a real date in the right form, read as text: nothing to suggest
            break
        return f"{text} is not a date the plan file accepts", hint, iso
    month_year = _MONTH_YEAR.match(text)
    if month_year and month_year.group("month_name").lower() in _MONTHS:
        year, month = int(month_year.group("year")), _MONTHS[month_year.group("month_name").lower()]
        last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).isoformat()
        return (
            f"{text} is not a date: it has no day",
            f"write {last} for the end of that month (a target such as {text!r} belongs in target:)",
            last,
        )
    if re.match(r"^\d{4}-\d{1,2}-\d{1,2}$", text):
        return f"{text} is not a real date", "write a date that exists, as YYYY-MM-DD", None
    return (
        f"{text!r} is not a date",
        "write a date as YYYY-MM-DD, e.g. 2027-03-31 (text such as a target belongs in target:)",
        None,
    )


__all__ = ["Problem", "Report", "check_file", "check_text"]
