"""The README is part of the contract: every command is documented, and its workflow runs as written."""

from __future__ import annotations

import glob
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from daplan_xlsx.cli import cli
from daplan_xlsx.planfile import load_plan

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_every_command_is_in_the_readme_table() -> None:
    table = _section("Command line")
    for name in cli.commands:
        assert f"| `daplan {name}" in table, f"`daplan {name}` is missing from the README's command table"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    usage, _, rest = result.output.partition("\n\n")
    assert usage.startswith("Usage: ") and len(rest.split("\n\n")[0].strip()) > 20  # says what it does


def _shell_commands(section: str) -> list[str]:
    """The one-line commands of the ```sh blocks of a README section."""
    return [
        block.strip()
        for block in re.findall(r"```sh\n(.*?)```", _section(section), re.DOTALL)
        if "\n" not in block.strip()
    ]


def test_ci_runs_the_readmes_test_command_exactly() -> None:
    """CI proves what the README promises: its last line is the README's test command, character for character."""
    install, test = _shell_commands("Try it")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip("\n").splitlines()[-1] == test
    assert ci.splitlines()[-2] == "# The README's test command:"
    assert install.endswith(" demo") and "pip install ." in install


def test_the_setup_commands_make_their_own_virtual_environment() -> None:
    """They work where Python refuses installs outside a venv, and where only `python3` exists."""
    for command in _shell_commands("Try it"):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install "), command
        assert not re.search(r"(^|&& )python ", command), command
    section = _section("Try it")
    assert "py -m venv .venv; .venv\\Scripts\\pip install .; .venv\\Scripts\\daplan demo" in section
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".venv/" in ignored and "/daplan-demo/" in ignored


def _workflow() -> list[list[str]]:
    block = re.search(r"```\n(.*?)```", _section("The workflow"), re.DOTALL)
    assert block is not None
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("daplan ")]


def test_the_workflow_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command of "The workflow", in order; the leads' part is played by copying their workbooks."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    commands = _workflow()
    assert [c[0] for c in commands] == [
        "new", "edit", "apply", "validate", "build", "distribute", "collect", "diff", "merge", "status", "chase",
        "build", "export", "report", "import",
    ]  # fmt: skip
    for args in commands:
        if args[0] == "apply":  # the owner lists the lead roles and gives each action its lead, in Excel
            _assign_leads(Path("owner.xlsx"))
        if args[0] == "collect":  # the leads reply with their workbooks attached; the owner saves the replies
            _save_replies(Path("outbox"), Path("saved-mail"))
        if args[0] == "import":  # an existing spreadsheet plan: here, the master just built
            shutil.copy("master.xlsx", "old-plan.xlsx")
        expanded = [m for a in args for m in (sorted(glob.glob(a)) if "*" in a else [a])]
        result = runner.invoke(cli, expanded)
        assert result.exit_code == 0, f"daplan {' '.join(args)}: {result.output}"
    assert Path("inbox/head-of-protect.xlsx").is_file()
    for made in (
        "plan.yaml",
        "master.xlsx",
        "outbox/manifest.json",
        "plan.html",
        "board.pdf",
        "adopted.yaml",
    ):
        assert Path(made).is_file(), made


def _address(lead: str) -> str:
    return lead.lower().replace(" ", ".") + "@force.example"


def _save_replies(outbox: Path, folder: Path) -> None:
    """Each lead's reply, with the workbook issued to them attached, saved as .eml."""
    import json
    from email.message import EmailMessage

    folder.mkdir()
    for wb in json.loads((outbox / "manifest.json").read_text(encoding="utf-8"))["workbooks"]:
        msg = EmailMessage()
        msg["From"] = _address(wb["recipient"])
        msg["Subject"] = "RE: the action plan"
        msg.set_content("Attached.")
        data = (outbox / wb["file"]).read_bytes()
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=wb["file"])
        (folder / (Path(wb["file"]).stem + ".eml")).write_bytes(bytes(msg))


def _assign_leads(owner: Path) -> None:
    from owner_edit import OwnerBook

    book = OwnerBook(owner)
    leads = ["Head of Protect", "Head of Managing People and Places", "Area Commanders"]
    for name in leads:
        book.add("Leads", {"Role": name, "Email": _address(name)})
    for i, (_, action) in enumerate(load_plan(Path("plan.yaml")).iter_actions()):
        book.action(action.id, "Lead", leads[i % len(leads)])
    book.apply_openpyxl(owner)
