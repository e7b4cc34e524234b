"""The model's rules: each broken rule is refused with a message and the exact place in the plan."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from conftest import make_plan

from daplan_xlsx.errors import PlanFileError, PlanInvalid
from daplan_xlsx.model import EXCEL_CELL_LIMIT, Lead, Plan, check_text, plan_problems
from daplan_xlsx.planfile import dumps_plan, loads_plan, parse_plan

SOURCE = "plan.yaml"

Mutation = Callable[[dict[str, Any]], None]


def base_data() -> dict[str, Any]:
    """The conftest plan as plain data, the way a YAML file would give it."""
    return make_plan().model_dump(mode="json")


def refused(mutate: Mutation) -> PlanInvalid:
    """Apply `mutate` to a valid plan's data and return the PlanInvalid it must raise."""
    data = base_data()
    mutate(data)
    with pytest.raises(PlanInvalid) as info:
        parse_plan(data, SOURCE)
    exc = info.value
    assert exc.file == SOURCE
    line = exc.one_line()
    assert "\n" not in line
    assert SOURCE in line
    if exc.where:
        assert exc.where in line
    return exc


def accepted(mutate: Mutation) -> Plan:
    data = base_data()
    mutate(data)
    return parse_plan(data, SOURCE)


def setter(*path: str | int, value: Any) -> Mutation:
    """A mutation that sets data[path...] = value."""

    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)

    return mutate


def test_base_plan_is_valid() -> None:
    """The starting point of every case below breaks no rule."""
    plan = parse_plan(base_data(), SOURCE)
    assert plan == make_plan()
    assert plan_problems(plan) == []


# --- rules across the plan ------------------------------------------------------------------------------


def test_action_ids_are_unique_across_areas() -> None:
    """An action id used twice (even in another area) is refused at the second use."""
    exc = refused(setter("areas", 1, "actions", 0, "id", value="LG-2"))
    assert exc.where == "areas[1].actions[0].id"
    assert "action id 'LG-2' is already used at areas[0].actions[1]" in exc.what


def test_action_ids_are_unique_within_an_area() -> None:
    exc = refused(setter("areas", 0, "actions", 1, "id", value="LG-1"))
    assert exc.where == "areas[0].actions[1].id"
    assert "'LG-1' is already used at areas[0].actions[0]" in exc.what


def test_area_ids_are_unique() -> None:
    exc = refused(setter("areas", 1, "id", value="LG"))
    assert exc.where == "areas[1].id"
    assert "area id 'LG' is used twice" in exc.what


def test_every_lead_is_in_the_register() -> None:
    exc = refused(setter("areas", 0, "actions", 0, "leads", value=["Chief Constable", "Nobody"]))
    assert exc.where == "areas[0].actions[0].leads[1]"
    assert "lead 'Nobody' is not in the plan's lead register" in exc.what


def test_a_lead_listed_twice_on_an_action() -> None:
    exc = refused(setter("areas", 0, "actions", 1, "leads", value=["Head of Protect", "Head of Protect"]))
    assert exc.where == "areas[0].actions[1].leads[1]"
    assert "lead 'Head of Protect' is listed twice" in exc.what


def test_every_status_is_in_the_vocabulary() -> None:
    exc = refused(setter("areas", 0, "actions", 1, "status", value="Done"))
    assert exc.where == "areas[0].actions[1].status"
    assert "status 'Done' is not in the plan's statuses" in exc.what


def test_status_names_are_case_sensitive() -> None:
    """`on track` is not `On track`: the vocabulary is matched exactly in the plan file."""
    exc = refused(setter("areas", 1, "actions", 0, "status", value="on track"))
    assert exc.where == "areas[1].actions[0].status"


def test_duplicate_status_in_the_vocabulary() -> None:
    exc = refused(setter("statuses", 3, "name", value="On track"))
    assert exc.where == "statuses[3].name"
    assert "status 'On track' is listed twice" in exc.what


def test_duplicate_lead_in_the_register() -> None:
    exc = refused(setter("leads", 2, "name", value="Chief Constable"))
    assert exc.where == "leads[2].name"
    assert "lead 'Chief Constable' is listed twice" in exc.what


def test_a_plan_defines_its_own_vocabulary() -> None:
    """Statuses other than the defaults are fine when the actions use them."""

    def mutate(data: dict[str, Any]) -> None:
        data["statuses"] = [{"name": "Open", "colour": "#FFFFFF"}, {"name": "Done", "colour": "#000000"}]
        for area in data["areas"]:
            for action in area["actions"]:
                action["status"] = "Open"

    assert accepted(mutate).status_names() == ["Open", "Done"]


def test_the_vocabulary_may_not_be_empty() -> None:
    exc = refused(setter("statuses", value=[]))
    assert exc.where == "statuses"
    assert "at least 1" in exc.what


# --- sheet names ----------------------------------------------------------------------------------------


def test_sheet_name_of_31_characters_is_accepted() -> None:
    assert accepted(setter("areas", 1, "sheet", value="x" * 31)).areas[1].sheet == "x" * 31


def test_sheet_name_over_31_characters() -> None:
    exc = refused(setter("areas", 1, "sheet", value="x" * 32))
    assert exc.where == "areas[1].sheet"
    assert "has 32 characters; Excel allows at most 31" in exc.what


@pytest.mark.parametrize("char", list("[]:*?/\\"))
def test_sheet_name_with_a_forbidden_character(char: str) -> None:
    exc = refused(setter("areas", 1, "sheet", value=f"Initial{char}Contact"))
    assert exc.where == "areas[1].sheet"
    assert f"contains {char!r}" in exc.what
    assert "Excel forbids any of" in exc.what


@pytest.mark.parametrize("name", ["'Initial Contact", "Initial Contact'", "'quoted'"])
def test_sheet_name_with_a_leading_or_trailing_apostrophe(name: str) -> None:
    exc = refused(setter("areas", 1, "sheet", value=name))
    assert exc.where == "areas[1].sheet"
    assert "may not begin or end with a space or an apostrophe" in exc.what


def test_sheet_name_with_an_inner_apostrophe_is_accepted() -> None:
    assert accepted(setter("areas", 1, "sheet", value="Victims' Care")).areas[1].sheet == "Victims' Care"


@pytest.mark.parametrize("name", [" Initial Contact", "Initial Contact "])
def test_sheet_name_with_a_leading_or_trailing_space(name: str) -> None:
    exc = refused(setter("areas", 1, "sheet", value=name))
    assert exc.where == "areas[1].sheet"


@pytest.mark.parametrize("name", ["LEADERSHIP AND GOVERNANCE", "leadership and governance"])
def test_sheet_names_are_unique_ignoring_case(name: str) -> None:
    exc = refused(setter("areas", 1, "sheet", value=name))
    assert exc.where == "areas[1].sheet"
    assert "is already used (ignoring case)" in exc.what


@pytest.mark.parametrize("name", ["History", "history", "HISTORY", "About", "Glossary"])
def test_reserved_sheet_names(name: str) -> None:
    exc = refused(setter("areas", 1, "sheet", value=name))
    assert exc.where == "areas[1].sheet"
    assert f"sheet name {name!r} is reserved" in exc.what


def test_empty_sheet_name() -> None:
    exc = refused(setter("areas", 1, "sheet", value=""))
    assert exc.where == "areas[1].sheet"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\ufffe"])
def test_sheet_name_with_an_xml_forbidden_character(char: str) -> None:
    exc = refused(setter("areas", 1, "sheet", value=f"Initial{char}Contact"))
    assert exc.where == "areas[1].sheet"


# --- text limits ----------------------------------------------------------------------------------------


def test_text_of_exactly_32767_characters_is_accepted() -> None:
    text = "x" * EXCEL_CELL_LIMIT
    plan = accepted(setter("areas", 0, "actions", 0, "response", value=text))
    assert plan.areas[0].actions[0].response == text


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("areas", 0, "actions", 0, "response"), "areas[0].actions[0].response"),
        (("areas", 1, "actions", 0, "notes"), "areas[1].actions[0].notes"),
        (("background",), "background"),
        (("glossary", 0, "definition"), "glossary[0].definition"),
        (("areas", 0, "supporting_areas", 1), "areas[0].supporting_areas[1]"),
    ],
)
def test_text_over_32767_characters(path: tuple[str | int, ...], where: str) -> None:
    exc = refused(setter(*path, value="y" * (EXCEL_CELL_LIMIT + 1)))
    assert exc.where == where
    assert "is 32768 characters long; an Excel cell holds at most 32767" in exc.what


@pytest.mark.parametrize(
    ("char", "code"), [("\x00", "U+0000"), ("\x0b", "U+000B"), ("\x1f", "U+001F"), ("\ufffe", "U+FFFE")]
)
def test_xml_forbidden_characters_are_refused(char: str, code: str) -> None:
    exc = refused(setter("areas", 0, "actions", 1, "target", value=f"ab{char}cd"))
    assert exc.where == "areas[0].actions[1].target"
    assert f"contains the control character {code} at position 2" in exc.what


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("areas", 0, "actions", 0, "ref"), "areas[0].actions[0].ref"),
        (("areas", 0, "actions", 1, "updated_by"), "areas[0].actions[1].updated_by"),
        (("areas", 1, "actions", 0, "status"), "areas[1].actions[0].status"),
        (("areas", 1, "actions", 0, "leads", 0), "areas[1].actions[0].leads[0]"),
    ],
)
def test_every_text_of_an_action_is_checked_and_named(path: tuple[str | int, ...], where: str) -> None:
    """An action checks its texts together; the refusal still names the one field at fault."""
    exc = refused(setter(*path, value="Head\x07"))
    assert exc.where == where
    assert "contains the control character U+0007 at position 4" in exc.what
    long = refused(setter(*path[:4], "notes", value="n" * (EXCEL_CELL_LIMIT + 1)))
    assert long.where == f"areas[{path[1]}].actions[{path[3]}].notes"
    assert "an Excel cell holds at most 32767" in long.what


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\ufffe"])
def test_xml_forbidden_characters_in_names_are_refused(char: str) -> None:
    exc = refused(setter("leads", 1, "name", value=f"Head{char}"))
    assert exc.where == "leads[1].name"
    assert "control character" in exc.what


@pytest.mark.parametrize("text", ["a\tb", "line one\nline two\n", "\t\n\t", "a\r\nb"])
def test_tab_newline_and_carriage_return_are_accepted(text: str) -> None:
    plan = accepted(setter("areas", 0, "actions", 0, "notes", value=text))
    assert plan.areas[0].actions[0].notes == text


def test_check_text_directly() -> None:
    assert check_text("ok\ttab\nnewline") == "ok\ttab\nnewline"
    with pytest.raises(ValueError, match=r"U\+0008"):
        check_text("\x08")
    with pytest.raises(ValueError, match="32768 characters"):
        check_text("z" * 32768)


# --- field types and formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("colour",), "colour"),
        (("areas", 0, "owner"), "areas[0].owner"),
        (("areas", 0, "actions", 1, "priority"), "areas[0].actions[1].priority"),
        (("statuses", 0, "color"), "statuses[0].color"),
        (("leads", 1, "phone"), "leads[1].phone"),
    ],
)
def test_unknown_keys_are_refused(path: tuple[str | int, ...], where: str) -> None:
    exc = refused(setter(*path, value="x"))
    assert exc.where == where
    assert exc.what == f"unknown key {path[-1]!r}"
    assert "remove it or fix its spelling" in exc.one_line()


def test_a_missing_required_key() -> None:
    exc = refused(lambda data: data.pop("title"))
    assert exc.where == "title"
    assert exc.what == "required key is missing"


@pytest.mark.parametrize(
    ("path", "value", "where", "fragment"),
    [
        (("title",), 5, "title", "valid string"),
        (("revision",), "many", "revision", "valid integer"),
        (("areas",), {"LG": {}}, "areas", "valid list"),
        (("areas", 0, "actions", 0, "leads"), "Chief Constable", "areas[0].actions[0].leads", "valid list"),
        (("areas", 0, "actions", 0, "due"), "soon", "areas[0].actions[0].due", "valid date"),
        (("areas", 0, "actions", 0, "kind"), "regional", "areas[0].actions[0].kind", "'national' or 'local'"),
        (("statuses", 4, "closed"), "maybe", "statuses[4].closed", "valid boolean"),
        (("published",), "last year", "published", "valid date"),
    ],
)
def test_wrong_types_are_refused(path: tuple[str | int, ...], value: Any, where: str, fragment: str) -> None:
    exc = refused(setter(*path, value=value))
    assert exc.where == where
    assert fragment in exc.what


@pytest.mark.parametrize("colour", ["grey", "#BFBFB", "#BFBFBFF", "BFBFBF", "#GGGGGG", ""])
def test_bad_colours_are_refused(colour: str) -> None:
    exc = refused(setter("statuses", 0, "colour", value=colour))
    assert exc.where == "statuses[0].colour"
    assert "should match pattern" in exc.what


@pytest.mark.parametrize("ident", ["-LG-1", "LG 1", "LG/1", "", "x" * 65, "é1", ".hidden"])
def test_bad_action_ids_are_refused(ident: str) -> None:
    exc = refused(setter("areas", 0, "actions", 0, "id", value=ident))
    assert exc.where == "areas[0].actions[0].id"
    assert "should match pattern" in exc.what


@pytest.mark.parametrize("ident", ["1", "LG-1.a_b", "x" * 64])
def test_good_ids_are_accepted(ident: str) -> None:
    assert accepted(setter("areas", 1, "id", value=ident)).areas[1].id == ident


def test_bad_plan_and_area_ids_are_refused() -> None:
    assert refused(setter("id", value="plan id")).where == "id"
    assert refused(setter("areas", 1, "id", value="_IC")).where == "areas[1].id"


@pytest.mark.parametrize("revision", [0, -1])
def test_revision_is_at_least_one(revision: int) -> None:
    exc = refused(setter("revision", value=revision))
    assert exc.where == "revision"
    assert "greater than or equal to 1" in exc.what


def test_several_problems_are_counted() -> None:
    """Only the first problem is named, but the count tells the user there are more."""

    def mutate(data: dict[str, Any]) -> None:
        data["title"] = 5
        data["revision"] = 0

    exc = refused(mutate)
    assert exc.where == "title"
    assert "(2 problems in all)" in exc.what


# --- the same rules reached through YAML ----------------------------------------------------------------


def test_rules_apply_to_yaml_text_with_the_same_place() -> None:
    text = dumps_plan(make_plan()).replace("status: On track", "status: Finished")
    with pytest.raises(PlanInvalid) as info:
        loads_plan(text, SOURCE)
    assert info.value.where == "areas[0].actions[1].status"
    assert "status 'Finished' is not in the plan's statuses" in info.value.what


def test_unknown_key_in_yaml() -> None:
    text = dumps_plan(make_plan()).replace("  - id: IC-1\n", "  - id: IC-1\n    owner: me\n")
    with pytest.raises(PlanInvalid) as info:
        loads_plan(text, SOURCE)
    assert info.value.where == "areas[1].actions[0].owner"
    assert info.value.what == "unknown key 'owner'"


def test_parse_plan_refuses_data_that_is_not_a_mapping() -> None:
    with pytest.raises(PlanFileError, match="does not hold a plan"):
        parse_plan(["title", "areas"], SOURCE)


def test_lead_and_status_names_differing_only_in_case_are_refused() -> None:
    """A return's "CHIEF CONSTABLE" is read ignoring case, so two roles that differ only in case are one too many."""
    data = make_plan().model_dump()
    data["leads"].append({"name": "chief constable"})
    with pytest.raises(ValueError, match="lead 'chief constable' is listed twice \\(ignoring case\\)"):
        Plan.model_validate(data)


@pytest.mark.parametrize(
    "email", ["notanemail", "a@b@c.example", "pcc@force.example\r\nBcc: x@y.example", "pcc@пример.example"]
)
def test_a_lead_email_must_be_addresses(email: str) -> None:
    with pytest.raises(ValueError, match="email"):
        Lead(name="PCC", email=email)
    assert Lead(name="PCC", email="pcc@force.example; office@force.example").email
