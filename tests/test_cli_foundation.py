"""The foundation commands of `daplan`: new, validate, show, schema, keygen, help, errors and exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import ROOT, make_plan

from daplan_xlsx import templates
from daplan_xlsx.cli import cli
from daplan_xlsx.errors import DaplanError, PlanInvalid
from daplan_xlsx.model import plan_problems
from daplan_xlsx.planfile import dumps_plan, load_plan, save_plan

HMIC = ROOT / "templates" / "hmic-2014.yaml"
needs_hmic = pytest.mark.skipif(not HMIC.is_file(), reason="templates/hmic-2014.yaml does not exist yet")


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan")


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit 2 and exactly one `Error: …` line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert err.startswith("Error: "), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in err
    return err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    save_plan(make_plan(), path)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    """A plan file with an unknown status on its second action."""
    path = tmp_path / "bad.yaml"
    path.write_text(dumps_plan(make_plan()).replace("status: On track", "status: Green"), encoding="utf-8")
    return path


@pytest.fixture
def mini_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A templates folder with one small template, `mini`, made from the conftest plan."""
    folder = tmp_path / "templates"
    folder.mkdir()
    save_plan(make_plan(), folder / "mini.yaml")
    monkeypatch.setattr(templates, "templates_dir", lambda: folder)
    return folder


# --- new ------------------------------------------------------------------------------------------------


@needs_hmic
def test_new_from_the_hmic_template(tmp_path: Path) -> None:
    out = tmp_path / "plan.yaml"
    result = run("new", "--template", "hmic-2014", "--force-name", "North Wales Police", "-o", out)
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout
    plan = load_plan(out)
    assert plan_problems(plan) == []
    assert plan.force == "North Wales Police"
    assert "North Wales Police" in plan.title
    assert plan.revision == 1
    assert plan.published is None
    assert len(plan.areas) == 6
    actions = [action for _, action in plan.iter_actions()]
    assert actions, "the template's national actions are carried over"
    assert all(a.response == "" for a in actions)
    assert all(a.status == plan.statuses[0].name for a in actions)
    assert all(a.updated is None and a.updated_by == "" for a in actions)
    assert plan.id != templates.load_template("hmic-2014").id


def test_new_from_a_template(tmp_path: Path, mini_templates: Path) -> None:
    """Works from any bundled template: fresh id, the force's title, responses and progress cleared."""
    out = tmp_path / "plan.yaml"
    result = run("new", "--template", "mini", "--force-name", "Gwent Police", "-o", out)
    assert result.exit_code == 0, result.output
    plan = load_plan(out)
    template = make_plan()
    assert plan.force == "Gwent Police"
    assert plan.title == "Gwent Police Domestic Abuse Action Plan"
    assert plan.id.startswith("plan-") and plan.id != template.id
    assert [a.id for _, a in plan.iter_actions()] == [a.id for _, a in template.iter_actions()]
    assert all(
        a.response == "" and a.status == "Not started" and a.due is None for _, a in plan.iter_actions()
    )
    assert out.read_text(encoding="utf-8") == dumps_plan(plan)

    second = tmp_path / "second.yaml"
    assert run("new", "-t", "mini", "--force-name", "Gwent Police", "-o", second).exit_code == 0
    assert load_plan(second).id != plan.id, "every new plan gets its own id"


def test_new_refuses_to_overwrite(tmp_path: Path, mini_templates: Path) -> None:
    out = tmp_path / "plan.yaml"
    out.write_text("my precious plan\n", encoding="utf-8")
    result = run("new", "--template", "mini", "--force-name", "Gwent Police", "-o", out)
    assert_one_line_error(result, str(out), "already exists")
    assert out.read_text(encoding="utf-8") == "my precious plan\n"


@pytest.mark.parametrize("flag", ["--force", "--overwrite"])
def test_new_overwrites_when_asked(tmp_path: Path, mini_templates: Path, flag: str) -> None:
    """`--force` means overwrite, as in the other commands; the old `--overwrite` still works."""
    out = tmp_path / "plan.yaml"
    out.write_text("old\n", encoding="utf-8")
    result = run("new", "--template", "mini", "--force-name", "Gwent Police", "-o", out, flag)
    assert result.exit_code == 0, result.output
    assert load_plan(out).force == "Gwent Police"
    assert result.stderr == ""


def test_new_with_the_old_force_name_form(tmp_path: Path, mini_templates: Path) -> None:
    """`--force NAME` named the force before `--force` meant overwrite: understood, with a warning."""
    out = tmp_path / "plan.yaml"
    result = run("new", "--template", "mini", "--force", "Gwent Police", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stderr == "--force NAME is now --force-name NAME; --force alone means overwrite\n"
    assert load_plan(out).force == "Gwent Police"


def test_the_old_force_name_form_does_not_overwrite(tmp_path: Path, mini_templates: Path) -> None:
    out = tmp_path / "plan.yaml"
    out.write_text("my precious plan\n", encoding="utf-8")
    result = run("new", "-t", "mini", "-o", out, "--force", "Gwent Police")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("Error: the plan file already exists")
    assert out.read_text(encoding="utf-8") == "my precious plan\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--force-name", "Gwent Police", "Dyfed-Powys Police"],  # a name given twice
        ["--force", "Gwent Police", "Dyfed-Powys Police"],  # two leftovers
        ["Gwent Police"],  # a leftover without --force
    ],
    ids=["with-force-name", "two-names", "no-force"],
)
def test_new_with_a_stray_argument_is_a_usage_error(
    tmp_path: Path, mini_templates: Path, args: list[str]
) -> None:
    out = tmp_path / "plan.yaml"
    result = run("new", "-t", "mini", "-o", out, *args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr and "unexpected extra argument" in result.stderr
    assert not out.exists()


def test_new_leaves_out_the_templates_notes_and_says_how_to_go_on(
    tmp_path: Path, mini_templates: Path
) -> None:
    data = make_plan().model_dump()
    data["areas"][0]["actions"][0]["notes"] = "Wording from the Avon and Somerset plan."
    from daplan_xlsx.model import Plan

    save_plan(Plan.model_validate(data), mini_templates / "mini.yaml")
    out = tmp_path / "plan.yaml"
    result = run("new", "-t", "mini", "--force-name", "Gwent Police", "-o", out)
    assert result.exit_code == 0, result.output
    assert all(a.notes == "" for _, a in load_plan(out).iter_actions())
    assert "notes:" not in out.read_text(encoding="utf-8")
    lines = result.stdout.splitlines()
    assert lines[0] == f"Wrote {out}: 2 areas, 4 actions, no leads yet."
    assert lines[1] == "Next: list your lead roles and give each action its lead(s):"
    assert f"in {out}: the roles under `leads:`, and each action's `leads:`" in result.stdout
    assert lines[-1] == f"Then check it: daplan validate {out}"


def test_new_points_to_the_owners_workbook_when_there_is_one(
    tmp_path: Path, mini_templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click

    if "edit" not in cli.commands:  # `daplan edit` and `apply` come with the owner's workbook
        monkeypatch.setitem(cli.commands, "edit", click.Command("edit"))
    out = tmp_path / "my plan.yaml"
    result = run("new", "-t", "mini", "--force-name", "Gwent Police", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "Next: list your lead roles and give each action its lead(s):",
        f'  in Excel: daplan edit "{out}" -o owner.xlsx, then daplan apply "{out}" owner.xlsx',
        f"  or in {out}: the roles under `leads:`, and each action's `leads:`",
        f'Then check it: daplan validate "{out}"',
    ]


@needs_hmic
def test_the_hmic_template_notes_stay_in_the_template(tmp_path: Path) -> None:
    """The template keeps its editors' notes (which plan each wording came from); a new plan has none."""
    template = templates.load_template("hmic-2014")
    assert any(a.notes for _, a in template.iter_actions())
    out = tmp_path / "plan.yaml"
    assert run("new", "--force-name", "North Wales Police", "-o", out).exit_code == 0
    assert not any(a.notes for _, a in load_plan(out).iter_actions())


def test_new_list_templates_in_a_folder(mini_templates: Path) -> None:
    result = run("new", "--list-templates")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"mini\t{make_plan().title}\n"


@needs_hmic
def test_new_list_templates_shows_hmic() -> None:
    result = run("new", "--list-templates")
    assert result.exit_code == 0, result.output
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert "hmic-2014" in names


def test_new_with_an_unknown_template(tmp_path: Path) -> None:
    out = tmp_path / "plan.yaml"
    result = run("new", "--template", "no-such-template", "--force-name", "X", "-o", out)
    assert_one_line_error(result, "no-such-template", "--list-templates")
    assert not out.exists()


@pytest.mark.parametrize(
    "args", [["--force-name", "X"], ["-o", "plan.yaml"], []], ids=["no-output", "no-force", "nothing"]
)
def test_new_without_force_or_output_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["new", *args], prog_name="daplan")
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert not (tmp_path / "plan.yaml").exists()


# --- validate -------------------------------------------------------------------------------------------


def test_validate_a_good_plan(good: Path) -> None:
    result = run("validate", good)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{good}: valid")
    assert result.stderr == ""


def test_validate_a_bad_plan(bad: Path) -> None:
    result = run("validate", bad)
    assert result.exit_code == 2
    line = dumps_plan(make_plan()).splitlines().index("    status: On track") + 1
    assert result.stdout == (
        f"{bad}:{line}: LG-2 status: 'Green' is not in the plan's statuses; use one of 'Not started', "
        "'On track', 'At risk', 'Off track', 'Complete', 'Embedded', 'Superseded', or add it under "
        "`statuses:`\n"
    )
    assert result.stderr == (
        f"Error: 1 problem ({bad}): fix each line listed and run `daplan validate` again\n"
    )


def test_validate_several_files_reports_each(good: Path, bad: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = run("validate", good, bad, missing)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{good}: valid")
    assert lines[1].startswith(f"{bad}:") and "'Green'" in lines[1]
    assert lines[2] == f"{missing}: file not found; check the path"
    assert result.stderr == (
        f"Error: 2 problems ({bad}, {missing}): fix each line listed and run `daplan validate` again\n"
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"id: p\ntitle: T\n  revision: 2\n",
            ":3: YAML syntax error: mapping values are not allowed",
        ),
        (b"\x00\x01\x02binary", ": this is a binary file, not a YAML plan; name a .yaml file"),
        (b"title: caf\xe9\n", ": not UTF-8 text (bad byte at offset 10); save the file as UTF-8"),
        (b"", ": the file does not hold a plan"),
        (b"- a\n- b\n", ":1: the file does not hold a plan"),
    ],
    ids=["yaml-syntax", "binary", "not-utf8", "empty", "list"],
)
def test_validate_unreadable_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(content)
    result = run("validate", path)
    assert result.exit_code == 2
    assert result.stdout.startswith(f"{path}{expected}"), result.stdout
    assert result.stdout.count("\n") == 1
    assert result.stderr.startswith("Error: 1 problem")


def test_validate_a_directory(tmp_path: Path) -> None:
    result = run("validate", tmp_path)
    assert result.exit_code == 2
    assert result.stdout == f"{tmp_path}: this is a directory, not a plan file; name a .yaml file\n"


def test_validate_a_plan_with_an_impossible_date(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    text = dumps_plan(make_plan()).replace("due: 2015-03-31", "due: 2015-02-30")
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    due: 2015-02-30") + 1
    result = run("validate", path)
    assert result.exit_code == 2
    assert result.stdout == (
        f"{path}:{line}: LG-2 due: 2015-02-30 is not a real date; write a date that exists, as YYYY-MM-DD\n"
    )


def test_other_commands_point_to_validate(bad: Path, tmp_path: Path) -> None:
    """A command that needs the plan names its first problem and sends the owner to `daplan validate`."""
    err = assert_one_line_error(run("show", bad), str(bad), "areas[0].actions[1].status")
    assert err.rstrip().endswith(f"run `daplan validate {bad}` to list every problem")
    broken = tmp_path / "broken plan.yaml"
    broken.write_text("id: p\ntitle: T\ntarget: Phase 1: March 2027\n", encoding="utf-8")
    err = assert_one_line_error(run("show", broken), "line 3")
    assert err.rstrip().endswith(f'run `daplan validate "{broken}"` to list every problem')


def test_validate_needs_a_file() -> None:
    result = run("validate")
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


# --- show and schema ------------------------------------------------------------------------------------


def test_show_prints_a_summary(good: Path) -> None:
    result = run("show", good)
    assert result.exit_code == 0, result.output
    plan = make_plan()
    assert result.stdout.startswith(f"{plan.title} (revision 1, OFFICIAL)\n")
    assert "Force: Test Constabulary" in result.stdout
    for area, action in plan.iter_actions():
        assert f"[{area.sheet}]" in result.stdout
        assert action.id in result.stdout


def test_show_json_is_the_canonical_model_dump(good: Path) -> None:
    result = run("show", good, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(make_plan().model_dump_json())


def test_show_json_names_are_canonical(good: Path) -> None:
    data = json.loads(run("show", "--json", good).stdout)
    assert {"title", "force", "published", "classification", "revision", "background"} <= set(data)
    assert {"statuses", "leads", "areas", "glossary"} <= set(data)
    action = data["areas"][0]["actions"][0]
    assert {"id", "ref", "kind", "action", "response", "target", "due", "leads", "status"} <= set(action)
    assert {"updated", "updated_by", "notes"} <= set(action)


def test_show_a_bad_file(bad: Path) -> None:
    assert_one_line_error(run("show", bad), str(bad), "areas[0].actions[1].status")


def test_show_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert_one_line_error(run("show", path), str(path), "not found")


def test_schema() -> None:
    result = run("schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert "properties" in schema
    assert "areas" in schema["properties"]
    assert schema.get("additionalProperties") is False


def test_schema_accepts_the_yaml_plan_shape(good: Path) -> None:
    """Every top-level key of a saved plan is a property of the schema."""
    schema = json.loads(run("schema").stdout)
    data = yaml.safe_load(good.read_text(encoding="utf-8"))
    assert set(data) <= set(schema["properties"])


# --- --debug --------------------------------------------------------------------------------------------


def test_debug_raises_instead_of_the_one_liner(bad: Path) -> None:
    result = run("--debug", "show", bad)
    assert result.exit_code != 0
    assert isinstance(result.exception, DaplanError)
    assert isinstance(result.exception, PlanInvalid)
    assert not result.stderr.startswith("Error: ")


def test_without_debug_no_exception_escapes(bad: Path) -> None:
    result = run("show", bad)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)


# --- keygen ---------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_and_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "key"
    result = run("keygen", "-o", key)
    assert result.exit_code == 0, result.output
    content = key.read_bytes()
    assert content.startswith(b"daplan-key-v1:")
    assert len(content.strip()) > len(b"daplan-key-v1:") + 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    again = run("keygen", "-o", key)
    assert_one_line_error(again, str(key), "already exists")
    assert key.read_bytes() == content


def test_two_keys_differ(tmp_path: Path) -> None:
    run("keygen", "-o", tmp_path / "a")
    run("keygen", "-o", tmp_path / "b")
    assert (tmp_path / "a").read_bytes() != (tmp_path / "b").read_bytes()


def test_keygen_needs_an_output() -> None:
    result = run("keygen")
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


# --- help and usage errors ------------------------------------------------------------------------------

COMMANDS = sorted(cli.commands)


def test_the_foundation_commands_exist() -> None:
    assert {"new", "validate", "show", "schema", "keygen"} <= set(COMMANDS)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_group_help_mentions_every_command(flag: str) -> None:
    result = run(flag)
    assert result.exit_code == 0, result.output
    assert "Usage: daplan" in result.stdout
    for name in COMMANDS:
        assert name in result.stdout, name


def test_group_without_a_command_shows_usage() -> None:
    result = run()
    assert result.exit_code in (0, 2)
    assert "Usage: daplan" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help(name: str) -> None:
    result = run(name, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: daplan {name}" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert "daplan" in result.stdout


@pytest.mark.parametrize(
    "args",
    [["no-such-command"], ["--no-such-option"], ["show"], ["show", "p.yaml", "--bogus"], ["schema", "extra"]],
    ids=["unknown-command", "unknown-option", "missing-argument", "unknown-command-option", "extra-argument"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.stderr or "Error:" in result.stderr
    assert "Traceback" not in result.output
