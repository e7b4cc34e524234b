"""The `daplan` command line: thin commands over the library.

Heavy libraries (xlsxwriter, openpyxl) are imported inside the commands that need them, so `daplan --help`
starts fast. Errors of the DaplanError family become one line on stderr and exit code 2 here, and only here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import DaplanError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ATTENTION, EXIT_UNUSABLE = 0, 1, 2


class DaplanGroup(click.Group):
    """Turns DaplanError into `Error: …` and exit 2; `--debug` shows the traceback instead."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DaplanError as exc:
            if ctx.meta.get("daplan.debug"):
                raise
            click.echo(f"Error: {exc.one_line()}", err=True)
            ctx.exit(EXIT_UNUSABLE)
        except click.UsageError as exc:
            exc.exit_code = EXIT_UNUSABLE
            raise
        except OSError as exc:
            if ctx.meta.get("daplan.debug"):
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"Error: {exc.strerror or exc}{where}: check the path and permissions", err=True)
            ctx.exit(EXIT_UNUSABLE)


@click.group(cls=DaplanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
@click.version_option(package_name="daplan_xlsx", prog_name="daplan")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run a police force's Domestic Abuse Action Plan through Excel.

    The plan lives in one YAML file. Typical loop:

    \b
      daplan new --template hmic-2014 --force "North Wales Police" -o plan.yaml
      daplan validate plan.yaml
      daplan build plan.yaml -o master.xlsx

    Run `daplan COMMAND --help` for each command.
    """
    ctx.meta["daplan.debug"] = debug


def plan_argument(f: F) -> F:
    return click.argument("plan", type=click.Path(dir_okay=True, path_type=Path))(f)


def key_file_option(f: F) -> F:
    return click.option(
        "--key-file",
        type=click.Path(path_type=Path),
        envvar="DAPLAN_KEY_FILE",
        help="Owner's signing key (default: $DAPLAN_KEY_FILE). Workbooks are signed with it.",
    )(f)


def _load(path: Path) -> Any:
    from .planfile import load_plan

    return load_plan(path)


@cli.command()
@click.option("--template", "-t", default="hmic-2014", show_default=True, help="Template to start from.")
@click.option("--force", "force_name", help='Name of the police force, e.g. "North Wales Police".')
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Plan file to create.")
@click.option("--list-templates", is_flag=True, help="List the bundled templates and exit.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
def new(
    template: str, force_name: str | None, output: Path | None, list_templates: bool, overwrite: bool
) -> None:
    """Start a new plan file from a template.

    The plan gets the template's capability areas, national actions, statuses and glossary, with empty
    responses and no leads yet: add your lead roles under `leads:` and assign them to actions.
    """
    from . import templates
    from .errors import OutputExists
    from .planfile import save_plan

    if list_templates:
        for name, title in templates.list_templates().items():
            click.echo(f"{name}\t{title}")
        return
    if not force_name or output is None:
        raise click.UsageError("give --force NAME and -o PLAN.yaml (or --list-templates)")
    if output.exists() and not overwrite:
        raise OutputExists(
            "the plan file already exists", file=output, hint="choose another path or pass --overwrite"
        )
    plan = templates.new_plan(template, force_name)
    save_plan(plan, output)
    n = len(plan.iter_actions())
    click.echo(
        f"Wrote {output}: {len(plan.areas)} areas, {n} actions. Next: add leads, then `daplan validate`."
    )


@cli.command()
@click.argument("plans", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(plans: tuple[Path, ...]) -> None:
    """Check plan files against the model and its rules (exit 0 when all are valid, 2 otherwise)."""
    from .planfile import load_plan

    failed = 0
    for path in plans:
        try:
            plan = load_plan(path)
        except DaplanError as exc:
            failed += 1
            click.echo(f"Error: {exc.one_line()}", err=True)
            continue
        click.echo(f"{path}: valid ({len(plan.areas)} areas, {len(plan.iter_actions())} actions)")
    if failed:
        sys.exit(EXIT_UNUSABLE)


@cli.command()
@plan_argument
@click.option("--json", "as_json", is_flag=True, help="Print the canonical model as JSON.")
def show(plan: Path, as_json: bool) -> None:
    """Print a plan: a readable summary, or with --json the canonical model."""
    p = _load(plan)
    if as_json:
        click.echo(p.model_dump_json(indent=2))
        return
    click.echo(f"{p.title} (revision {p.revision}, {p.classification})")
    if p.force:
        click.echo(f"Force: {p.force}")
    for area in p.areas:
        click.echo(f"\n{area.name} [{area.sheet}]")
        for action in area.actions:
            lead = ", ".join(action.leads) or "no lead"
            marker = " (local)" if action.kind == "local" else ""
            first = action.action.splitlines()[0] if action.action else ""
            if len(first) > 70:
                first = first[:69] + "…"
            click.echo(f"  {action.id:<10} {action.ref:<5} {action.status:<12} {lead}{marker}\n      {first}")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the plan file."""
    from .model import Plan

    click.echo(json.dumps(Plan.model_json_schema(), indent=2))


@cli.command()
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Key file to create.")
def keygen(output: Path) -> None:
    """Write a new signing key. Keep it private; it never goes into a workbook."""
    from .signing import write_key

    write_key(output)
    click.echo(f"Wrote {output}. Point --key-file or DAPLAN_KEY_FILE at it when you build or distribute.")


@cli.command()
@plan_argument
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Workbook to write.")
@key_file_option
def build(plan: Path, output: Path, key_file: Path | None) -> None:
    """Write the consolidated master workbook of the whole plan."""
    from .signing import load_key
    from .writer import write_workbook

    p = _load(plan)
    key = load_key(key_file) if key_file else None
    info = write_workbook(p, output, key=key)
    click.echo(
        f"Wrote {output}: {len(info.scope)} actions on {len(p.areas)} area sheets (issue {info.issue_id})."
    )


@cli.command()
@plan_argument
@click.argument("returned", metavar="RETURN", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form (see README).")
@click.option(
    "--html", "html_file", type=click.Path(path_type=Path), help="Also write one self-contained HTML page."
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when the return changes anything or has problems.")
@key_file_option
def diff(
    plan: Path, returned: Path, as_json: bool, html_file: Path | None, exit_code: bool, key_file: Path | None
) -> None:
    """Show what a returned workbook changes against the base it was issued from.

    Each change is listed per action and field as old → new, then the findings: values that were not
    accepted (unknown status or lead, formulas, bad dates, edits to fixed cells, rows outside the scope)
    and rows added or deleted. Nothing is written to the plan.
    """
    from .diff import diff_return
    from .diffview import render_html, render_text
    from .planfile import atomic_write_bytes
    from .signing import load_key

    p = _load(plan)
    key = load_key(key_file) if key_file else None
    result = diff_return(returned, p, key)
    if html_file is not None:
        atomic_write_bytes(html_file, render_html(result).encode("utf-8"))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(render_text(result, colour))
    if exit_code and (result.changes or result.problems):
        sys.exit(EXIT_ATTENTION)


def main() -> None:
    cli(prog_name="daplan")


if __name__ == "__main__":  # pragma: no cover
    main()
