"""`daplan validate`: every problem of a plan file in one run, each with its line, action, field and remedy."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import EXAMPLES, ROOT, TEMPLATES, make_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_planfile import plans

from daplan_xlsx import planfile
from daplan_xlsx.cli import cli
from daplan_xlsx.model import Action, Area, Lead, Plan, default_statuses
from daplan_xlsx.planfile import dumps_plan, loads_plan, save_plan
from daplan_xlsx.validation import Problem, _closest, _date_advice, check_file, check_text


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan")


# A plan file with twenty mistakes of fourteen kinds; the comment on each line says what is wrong there.
MISTAKES = textwrap.dedent(
    """\
    id: plan-test
    title: Test Plan
    published: 1 September 2014
    revision: 0
    statuses:
    - name: Not started
      colour: '#BFBFBF'
    - name: On track
      colour: green
    leads:
    - name: District Commanders
    - name: Head of Protect
    areas:
    - id: LG
      name: Leadership and Governance
      sheet: Leadership/Governance
      key_critera: x
      actions:
      - id: LG-1
        ref: 1
        action: First action
        target: Phase 1: March 2027
        due: 31/03/2027
        leads: Head of Protect
        status: Not Started
      - id: LG-2
        kind: locl
        leads:
        - District Commander
        status: On track
        satus: x
      - id: LG-1
        due: 2027-02-30
        status: Bogus
        status: Done
      - id: LG 4
        due: March 2027
    - id: IC
      name: Initial Contact
      sheet: Initial Contact
      actions:
      - ref: '1'
        action: no id here
    """
)

EXPECTED = [
    "plan.yaml:3: published: 1 September 2014 is not a date the plan file accepts; write 2014-09-01",
    "plan.yaml:4: revision: 0 is too small; write 1 or more",
    "plan.yaml:9: statuses[1].colour: 'green' is not a colour; write it as '#RRGGBB' in quotes, "
    "e.g. colour: '#70AD47'",
    "plan.yaml:16: areas[0].sheet: sheet name 'Leadership/Governance' contains '/'; Excel forbids any of "
    "[]:*?/\\; choose another sheet name",
    "plan.yaml:17: areas[0].key_critera: unknown key 'key_critera'; did you mean 'key_criteria'?",
    "plan.yaml:20: LG-1 ref: 1 is a number where text is expected; put it in quotes: ref: '1'",
    "plan.yaml:22: LG-1 target: YAML syntax error: mapping values are not allowed in this context; text "
    "that contains ': ' must be in quotes: target: 'Phase 1: March 2027'",
    "plan.yaml:23: LG-1 due: 31/03/2027 is not a date the plan file accepts; write 2027-03-31",
    "plan.yaml:24: LG-1 leads: 'Head of Protect' is one value where a list is expected; write it as a "
    "list: leads: [Head of Protect] (or with a '- Head of Protect' line under leads:)",
    "plan.yaml:25: LG-1 status: 'Not Started' is not in the plan's statuses; did you mean 'Not started'?",
    "plan.yaml:27: LG-2 kind: 'locl' is not a kind of action; did you mean 'local'?",
    "plan.yaml:29: LG-2 leads: 'District Commander' is not in the plan's lead register; did you mean "
    "'District Commanders'?",
    "plan.yaml:31: LG-2 satus: unknown key 'satus'; did you mean 'status'?",
    "plan.yaml:32: LG-1 id: the id 'LG-1' is already used on line 19; give this action an id of its own "
    "(an id is never reused)",
    "plan.yaml:33: LG-1 due: 2027-02-30 is not a real date; write a date that exists, as YYYY-MM-DD",
    "plan.yaml:35: LG-1 status: the key 'status' is given twice here (also on line 34); keep one of them: "
    "only the last is read",
    "plan.yaml:35: LG-1 status: 'Done' is not in the plan's statuses; use one of 'Not started', "
    "'On track', or add it under `statuses:`",
    "plan.yaml:36: LG 4 id: 'LG 4' is not a valid id; use letters, digits, '.', '_' and '-' only, "
    "beginning with a letter or digit, at most 64 characters (e.g. LG-5)",
    "plan.yaml:37: LG 4 due: March 2027 is not a date: it has no day; write 2027-03-31 for the end of "
    "that month (a target such as 'March 2027' belongs in target:)",
    "plan.yaml:42: areas[1].actions[0].id: required key 'id' is missing; add `id:` with its value",
]


def test_every_mistake_is_reported_at_its_line() -> None:
    report = check_text(MISTAKES, "plan.yaml")
    assert [p.text("plan.yaml") for p in report.problems] == EXPECTED
    assert report.plan is None and not report.valid


def test_the_cli_lists_every_mistake_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("plan.yaml").write_text(MISTAKES, encoding="utf-8")
    result = run("validate", "plan.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == EXPECTED
    assert result.stderr == (
        "Error: 20 problems (plan.yaml): fix each line listed and run `daplan validate` again\n"
    )


def test_the_readme_shows_what_validate_prints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = [line for line in readme.splitlines() if line.startswith("plan.yaml:")]
    assert len(shown) >= 5
    assert set(shown) <= set(EXPECTED)


def test_json_lists_the_same_problems(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(MISTAKES, encoding="utf-8")
    result = run("validate", "--json", path)
    assert result.exit_code == 2
    items = json.loads(result.stdout)
    assert len(items) == len(EXPECTED)
    assert set(items[0]) == {
        "file",
        "line",
        "column",
        "action_id",
        "field",
        "message",
        "hint",
        "suggestion",
    }
    by_line = {(i["line"], i["field"]): i for i in items}
    assert by_line[(25, "status")] == {
        "file": str(path),
        "line": 25,
        "column": 13,
        "action_id": "LG-1",
        "field": "status",
        "message": "'Not Started' is not in the plan's statuses",
        "hint": "did you mean 'Not started'?",
        "suggestion": "Not started",
    }
    assert by_line[(23, "due")]["suggestion"] == "2027-03-31"
    assert by_line[(29, "leads")]["suggestion"] == "District Commanders"
    assert by_line[(3, "published")]["action_id"] is None
    assert by_line[(42, "areas[1].actions[0].id")]["action_id"] is None


def test_json_of_valid_files_is_an_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    result = run("validate", "--json", path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


# --- YAML syntax ----------------------------------------------------------------------------------------


def test_several_unquoted_colons_are_all_reported_and_the_rest_checked() -> None:
    text = dumps_plan(make_plan())
    lines = text.splitlines(keepends=True)
    target = lines.index("    target: September 2014\n")
    lines[target] = "    target: Phase 1: March 2027\n"
    action = lines.index("    action: Call handling staff are clear.\n")
    lines[action] = "    action: Call handlers: clear # reviewed\n"
    status = lines.index("    status: On track\n")
    lines[status] = "    status: Green\n"
    report = check_text("".join(lines), "p.yaml")
    assert [(p.line, p.action_id, p.field) for p in report.problems] == [
        (target + 1, "LG-1", "target"),
        (status + 1, "LG-2", "status"),
        (action + 1, "IC-1", "action"),
    ]
    assert report.problems[0].suggestion == "target: 'Phase 1: March 2027'"
    assert report.problems[2].suggestion == "action: 'Call handlers: clear'  # reviewed"


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("id: p\ntitle: T\n  revision: 2\n", 3, "check this line's indentation"),
        ("id: p\ntitle: T\nareas:\n\t- id: LG\n", 4, "indent with spaces: YAML does not allow tabs"),
        ("id: p\ntitle: 'T\nforce: X\n", 2, "the quote opened here is never closed"),
        ("id: p\ntitle: *T\n", 2, "a value beginning with '*' must be in quotes"),
    ],
    ids=["indentation", "tab", "open-quote", "alias"],
)
def test_other_syntax_errors_name_their_line_and_stop_there(text: str, line: int, hint: str) -> None:
    report = check_text(text, "p.yaml")
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.line == line
    assert problem.message.startswith("YAML syntax error: ")
    assert problem.hint.startswith(hint)


# --- dates and names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("31/03/2027", "2027-03-31"),
        ("31-03-2027", "2027-03-31"),
        ("31.3.27", "2027-03-31"),
        ("03/31/2027", "2027-03-31"),  # only month first can be right
        ("2027/3/31", "2027-03-31"),
        ("2027-3-31", "2027-03-31"),
        ("31 March 2027", "2027-03-31"),
        ("31st Mar 2027", "2027-03-31"),
        ("31-Mar-2027", "2027-03-31"),
        ("March 31, 2027", "2027-03-31"),
        ("2027-03-31 09:30", "2027-03-31"),
        ("March 2027", "2027-03-31"),
        ("February 2028", "2028-02-29"),
        ("Dec 2027", "2027-12-31"),
    ],
)
def test_common_date_forms_get_the_iso_date(raw: str, iso: str) -> None:
    message, hint, suggestion = _date_advice(raw)
    assert suggestion == iso
    assert hint.startswith(f"write {iso}")
    assert raw in message


def test_a_day_first_date_says_which_day_it_was_read_as() -> None:
    assert _date_advice("03/04/2027") == (
        "03/04/2027 is not a date the plan file accepts",
        "write 2027-04-03 (if you meant 3 April 2027; day first as in the UK)",
        "2027-04-03",
    )


@pytest.mark.parametrize("raw", ["31/02/2027", "2027-02-30", "30 February 2027", "soon", "Q1 2027"])
def test_dates_that_cannot_be_meant_get_no_suggestion(raw: str) -> None:
    _, hint, suggestion = _date_advice(raw)
    assert suggestion is None
    assert "YYYY-MM-DD" in hint


@pytest.mark.parametrize(
    ("value", "valid", "expected"),
    [
        ("Not Started", ["Not started", "On track"], "Not started"),
        ("not  started", ["Not started", "On track"], "Not started"),
        ("District Commander", ["District Commanders", "Head of Protect"], "District Commanders"),
        ("Head of Protekt", ["District Commanders", "Head of Protect"], "Head of Protect"),
        ("Chief Constable", ["District Commanders", "Head of Protect"], None),
        ("x", [], None),
    ],
)
def test_the_nearest_valid_name(value: str, valid: list[str], expected: str | None) -> None:
    assert _closest(value, valid) == expected


def test_an_unknown_lead_with_nothing_close_says_where_to_add_it() -> None:
    text = dumps_plan(make_plan()).replace("  - Area Commanders\n", "  - Chief Inspector Jones\n", 1)
    text = text.replace("- name: Area Commanders\n", "- name: Area Commanders Office\n")
    (problem,) = [p for p in check_text(text).problems if "Chief Inspector Jones" in p.message]
    assert problem.hint == (
        "use one of 'Chief Constable', 'Head of Protect', 'Area Commanders Office', or add it under `leads:`"
    )


# --- values of the wrong kind ---------------------------------------------------------------------------


def _one(text: str) -> Problem:
    problems = check_text(text).problems
    assert len(problems) == 1, problems
    return problems[0]


def _replace(old: str, new: str) -> str:
    text = dumps_plan(make_plan())
    assert old in text
    return text.replace(old, new, 1)


def test_a_date_where_text_is_expected() -> None:
    text = _replace("    target: September 2014\n", "    target: 2014-09-30\n")
    line = text.splitlines().index("    target: 2014-09-30") + 1
    problem = _one(text)
    assert (problem.action_id, problem.field) == ("LG-1", "target")
    assert problem.text("p") == (
        f"p:{line}: LG-1 target: 2014-09-30 is read as a date where text is expected; put it in quotes: "
        "target: '2014-09-30'"
    )


def test_an_impossible_date_where_text_is_expected() -> None:
    problem = _one(_replace("    target: September 2014\n", "    target: 2014-09-31\n"))
    assert problem.message == "2014-09-31 is read as a date, and is not a real one"
    assert problem.hint == "put it in quotes if it is text: target: '2014-09-31'"


def test_yes_and_no_where_text_is_expected() -> None:
    problem = _one(_replace("    target: September 2014\n", "    target: no\n"))
    assert problem.message == "no is read as true or false where text is expected"


def test_text_with_a_colon_in_a_list_is_read_as_a_mapping() -> None:
    problem = _one(
        _replace("  - Performance Management\n", "  - Training: Phase 1\n"),
    )
    assert problem.field == "areas[0].supporting_areas[1]"
    assert (
        problem.message == "the text 'Training: Phase 1' is read as a key and value because it contains ': '"
    )
    assert problem.hint == "put the whole text in quotes"


def test_an_unquoted_colour_is_a_comment() -> None:
    problem = _one(_replace("  colour: '#70AD47'\n", "  colour: #70AD47\n"))
    assert problem.field == "statuses[1].colour"
    assert problem.message == "is empty"


def test_an_action_written_as_a_bare_word() -> None:
    problem = _one(_replace("  actions:\n  - id: IC-1\n", "  actions:\n  - IC-2\n  - id: IC-1\n"))
    assert problem.field == "areas[1].actions[0]"
    assert "write the action as keys: - id: IC-2" in problem.hint


def test_a_control_character_and_a_bad_date_in_one_action_are_both_reported() -> None:
    """The text check runs on an action whose fields are valid: the bad date is set aside for it."""
    text = _replace("    due: 2015-03-31\n", '    due: 31/3/2015\n    notes: "bell\\a"\n')
    problems = check_text(text).problems
    assert [(p.action_id, p.field) for p in problems] == [("LG-2", "due"), ("LG-2", "notes")]
    assert problems[1].message.startswith("contains the control character U+0007")


def test_an_empty_list_of_statuses() -> None:
    text = dumps_plan(make_plan())
    start, end = text.index("statuses:\n"), text.index("leads:\n")
    problems = check_text(text[:start] + "statuses: []\n" + text[end:]).problems
    assert [p.message for p in problems] == ["the list of statuses is empty"]


def test_a_duplicate_status_and_sheet_name() -> None:
    plan = make_plan()
    data = plan.model_dump()
    data["statuses"].append(dict(data["statuses"][1]))
    data["areas"][1]["sheet"] = "LEADERSHIP and governance"
    text = planfile._dump(planfile._prune(data, top=True))
    problems = check_text(text).problems
    assert [(p.field, p.message) for p in problems] == [
        ("statuses[7].name", "status 'On track' is listed twice (ignoring case)"),
        (
            "areas[1].sheet",
            "sheet name 'LEADERSHIP and governance' is already used (ignoring case)",
        ),
    ]


def test_not_a_plan() -> None:
    assert check_text("- a\n- b\n").problems[0].message.startswith("the file does not hold a plan")
    assert check_text("").problems[0].line is None
    assert check_text("# only a comment\n").problems[0].message.startswith("the file does not hold")


def test_a_recursive_alias_is_a_problem_not_a_hang() -> None:
    problems = check_text("id: p\ntitle: T\nareas: &a\n- *a\n").problems
    assert any("alias" in p.message for p in problems)


# --- valid plans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES + TEMPLATES, ids=lambda p: p.name)
def test_the_bundled_plans_are_valid(path: Path) -> None:
    report = check_file(path)
    assert report.problems == []
    assert report.plan == loads_plan(path.read_text(encoding="utf-8"))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plans())
def test_a_valid_plan_has_no_problems_and_reads_as_load_plan_reads_it(plan: Plan) -> None:
    report = check_text(dumps_plan(plan))
    assert report.problems == []
    assert report.plan == plan


def test_a_large_plan_saved_by_daplan_is_known_valid_from_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planfile, "CACHE_MIN_BYTES", 100)
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    assert planfile.cache_path(path).is_file()
    monkeypatch.setattr(
        "daplan_xlsx.validation.check_text", lambda *a: pytest.fail("the YAML was read again")
    )
    report = check_file(path)
    assert report.valid and report.plan == make_plan()


def test_a_large_hand_edited_plan_is_read_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache written after loading a hand-edited file does not prove the file has no duplicate keys."""
    monkeypatch.setattr(planfile, "CACHE_MIN_BYTES", 100)
    path = tmp_path / "plan.yaml"
    text = dumps_plan(make_plan()).replace(
        "    status: On track\n", "    status: At risk\n    status: On track\n"
    )
    path.write_text(text, encoding="utf-8")
    planfile.load_plan(path)  # loads (the last status wins) and writes the cache
    assert planfile.cache_path(path).is_file()
    problems = check_file(path).problems
    assert [p.message for p in problems] == [
        f"the key 'status' is given twice here (also on line {text.splitlines().index('    status: At risk') + 1})"
    ]


# --- one mistake anywhere is found at its line ----------------------------------------------------------

LEAD_POOL = ["Chief Constable", "Head of Protect", "District Commanders", "ACC Domestic Abuse", "PCC"]
WORDS = st.text(st.sampled_from("abcdefgh XYZ:#'\"-é\n"), max_size=30)


@st.composite
def simple_plans(draw: st.DrawFn) -> Plan:
    """Valid plans with ids that dump as plain words, so a test can find an action's lines by text."""
    leads = draw(st.lists(st.sampled_from(LEAD_POOL), min_size=1, max_size=4, unique=True))
    statuses = [s.name for s in default_statuses()]
    areas = []
    for a in range(draw(st.integers(1, 3))):
        actions = [
            Action(
                id=f"A{a}-{x}",
                ref=str(x),
                action=draw(WORDS),
                response=draw(WORDS),
                target=draw(WORDS),
                due=draw(st.none() | st.dates(dt.date(2014, 1, 1), dt.date(2030, 12, 31))),
                leads=draw(st.lists(st.sampled_from(leads), max_size=2, unique=True)),
                status=draw(st.sampled_from(statuses)),
                notes=draw(WORDS),
            )
            for x in range(1, draw(st.integers(1, 4)) + 1)
        ]
        areas.append(Area(id=f"A{a}", name=f"Area {a}", sheet=f"Area {a}", actions=actions))
    return Plan(id="plan-p", title="P", leads=[Lead(name=n) for n in leads], areas=areas)


MUTATIONS = [
    "status",
    "unknown-lead",
    "empty-lead",
    "date",
    "leads-not-a-list",
    "number",
    "kind",
    "unknown-key",
    "duplicate-id",
    "bad-id",
    "control-character",
]
BAD_DATES = ["31/03/2027", "March 2027", "next spring", "2027-02-30", "31 Feb 2027", "2027-3-1"]


def _line_starting(lines: list[str], prefix: str, after: int, nth: int = 1) -> int:
    """The 1-based number of the nth line from index `after` that starts with `prefix`."""
    seen = 0
    for i in range(after, len(lines)):
        if lines[i].startswith(prefix):
            seen += 1
            if seen == nth:
                return i + 1
    raise AssertionError(f"no line {prefix!r}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=simple_plans(), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_one_mistake_at_a_random_action_is_found_at_its_line(
    plan: Plan, mutation: str, data: st.DataObject
) -> None:
    flat = plan.model_dump(mode="python")
    actions = [a for area in flat["areas"] for a in area["actions"]]
    k = data.draw(st.integers(0, len(actions) - 1), label="action")
    if mutation == "duplicate-id" and k == 0:
        mutation = "status"
    action = actions[k]
    expected_id, field, nth = action["id"], mutation, 1
    if mutation == "status":
        action["status"] = data.draw(st.sampled_from(["Green", "Done", "Not Started", "WIP"]))
        field = "status"
    elif mutation == "unknown-lead":
        action["leads"] = [data.draw(st.sampled_from(["Head of Protekt", "Sergeant Smith"]))]
        field = "leads"
    elif mutation == "empty-lead":
        action["leads"] = [""]
        field = "leads"
    elif mutation == "date":
        action["due"] = data.draw(st.sampled_from(BAD_DATES))
        field = "due"
    elif mutation == "leads-not-a-list":
        action["leads"] = flat["leads"][0]["name"]
        field = "leads"
    elif mutation == "number":
        action["ref"] = data.draw(st.integers(0, 99))
        field = "ref"
    elif mutation == "kind":
        action["kind"] = data.draw(st.sampled_from(["regional", "Local", "5"]))
        field = "kind"
    elif mutation == "unknown-key":
        field = data.draw(st.sampled_from(["satus", "lead", "colour", "Due"]))
        action[field] = "x"
    elif mutation == "duplicate-id":
        expected_id = action["id"] = actions[data.draw(st.integers(0, k - 1))]["id"]
        field, nth = "id", 2
    elif mutation == "bad-id":
        expected_id = action["id"] = data.draw(st.sampled_from(["LG 4", "_x", "a/b"]))
        field = "id"
    elif mutation == "control-character":
        action["notes"] = "bell\x07"
        field = "notes"
    text = planfile._dump(planfile._prune(flat, top=True))
    lines = text.splitlines()
    start = _line_starting(lines, f"  - id: {expected_id}", 0, nth)
    if field == "id":
        expected_line = start
    elif field == "leads" and mutation != "leads-not-a-list":
        expected_line = _line_starting(lines, "    leads:", start) + 1  # the item's line
    else:
        expected_line = _line_starting(lines, f"    {field}:", start)

    problems = check_text(text, "plan.yaml").problems
    assert len(problems) == 1, (mutation, [p.text("plan.yaml") for p in problems], text)
    (problem,) = problems
    assert problem.line == expected_line, (mutation, problem, text)
    assert problem.action_id == re.sub(r"\s+", " ", str(expected_id)).strip()
    assert problem.field == field
    assert problem.message and problem.hint


# --- whatever the text, validate answers, and agrees with load_plan -------------------------------------

_EDIT_CHARS = st.sampled_from([*":-#'\"[]{}&*!|>\n\t x1é", "  ", ": ", "- ", "\n- ", "\n  "])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_edit_of_a_plan_gets_an_answer_that_agrees_with_load_plan(data: st.DataObject) -> None:
    """Random edits of a valid plan's text: validate never fails itself, and calls a text valid exactly
    when `load_plan` accepts it (a key given twice aside: the loader reads the last without a word)."""
    text = dumps_plan(make_plan())
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        at = data.draw(st.integers(0, len(text)), label="at")
        cut = data.draw(st.integers(0, 12), label="cut")
        text = text[:at] + data.draw(_EDIT_CHARS, label="insert") + text[at + cut :]
    report = check_text(text, "p.yaml")
    for problem in report.problems:
        assert problem.message and problem.hint is not None
        assert problem.line is None or 1 <= problem.line <= text.count("\n") + 2
        problem.text("p.yaml")
    try:
        loaded = loads_plan(text)
    except Exception:
        assert report.problems, "load_plan refuses what validate found valid"
        return
    duplicates = [p for p in report.problems if "is given twice here" in p.message]
    assert report.problems == duplicates
    if not duplicates:
        assert report.plan == loaded
