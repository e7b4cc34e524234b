"""The `daplan` command line: thin commands over the library.

Heavy libraries (xlsxwriter, openpyxl) are imported inside the commands that need them, so `daplan --help`
starts fast. Errors of the DaplanError family become one line on stderr and exit code 2 here, and only here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .console import configure_streams, printable, unicode_stdout
from .errors import DaplanError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ATTENTION, EXIT_UNUSABLE = 0, 1, 2


class DaplanGroup(click.Group):
    """Turns DaplanError into `Error: …` and exit 2; `--debug` shows the traceback instead.

    Usage errors exit 2 as they are: click's UsageError has that exit code.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DaplanError as exc:
            if ctx.meta.get("daplan.debug"):
                raise
            click.echo(f"Error: {printable(exc.one_line())}", err=True)
            ctx.exit(EXIT_UNUSABLE)
        except BrokenPipeError:
            # The reader of the output went away (`daplan show | head`): nothing more to say to it.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(EXIT_OK)
        except OSError as exc:
            if ctx.meta.get("daplan.debug"):
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            message = f"Error: {exc.strerror or exc}{where}: check the path and permissions"
            click.echo(printable(message), err=True)
            ctx.exit(EXIT_UNUSABLE)
        except ValueError as exc:
            # A value no check before it caught, refused by the plan's model (pydantic's ValidationError is
            # a ValueError): one line naming it, never a traceback.
            if ctx.meta.get("daplan.debug") or type(exc).__name__ != "ValidationError":
                raise
            errors = exc.errors(include_url=False)  # type: ignore[attr-defined]
            first = errors[0] if errors else {"loc": (), "msg": str(exc)}
            where = ".".join(str(x) for x in first.get("loc", ())) or "a value"
            what = " ".join(f"{where}: {first.get('msg', '')}".split())
            click.echo(
                printable(
                    f"Error: a value cannot go into the plan ({what}): correct it and run the command again"
                ),
                err=True,
            )
            ctx.exit(EXIT_UNUSABLE)


@click.group(cls=DaplanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    envvar="DAPLAN_WAIT",
    help="Seconds to wait for another command changing the same plan (default 60; $DAPLAN_WAIT).",
)
@click.version_option(package_name="daplan_xlsx", prog_name="daplan")
@click.pass_context
def cli(ctx: click.Context, debug: bool, wait: float | None) -> None:
    """Run a police force's Domestic Abuse Action Plan through Excel.

    The plan lives in one YAML file. Typical loop:

    \b
      daplan new --template hmic-2014 --force-name "North Wales Police" -o plan.yaml
      daplan validate plan.yaml
      daplan build plan.yaml -o master.xlsx

    Run `daplan COMMAND --help` for each command.
    """
    ctx.meta["daplan.debug"] = debug
    ctx.meta["daplan.wait"] = wait


def _wait() -> float | None:
    """`--wait`, when given: how long a command waits for another one changing the same plan."""
    wait: float | None = click.get_current_context().meta.get("daplan.wait")
    return wait


def _record(plan: Path) -> Any:
    """The plan's record, locked for this command (see record.py)."""
    from .record import Record

    return Record(plan, wait=_wait())


class UnusableInput(click.ClickException):
    """`Error: …` and exit 2 for a command's own refusal (click's ClickException exits 1; click 8.5 makes
    `exit_code` a class variable, so it is set here rather than on an instance)."""

    exit_code = EXIT_UNUSABLE


def plan_argument(f: F) -> F:
    return click.argument("plan", type=click.Path(dir_okay=True, path_type=Path))(f)


def key_file_option(f: F) -> F:
    return click.option(
        "--key-file",
        type=click.Path(path_type=Path),
        envvar="DAPLAN_KEY_FILE",
        help="Owner's signing key (default: $DAPLAN_KEY_FILE, else the plan's own key, made on first use).",
    )(f)


def no_sign_option(f: F) -> F:
    return click.option(
        "--no-sign",
        is_flag=True,
        help="Do not sign the workbooks (returns are still checked against the record).",
    )(f)


def _load(path: Path) -> Any:
    from .planfile import load_plan

    return load_plan(path)


# `--force NAME` named the force until `--force` came to mean "overwrite" as in the other commands; the old
# form is still understood for one release (see `new`).
_FORCE_NAME_MOVED = "--force NAME is now --force-name NAME; --force alone means overwrite"


@cli.command(context_settings={"allow_extra_args": True})
@click.option("--template", "-t", default="hmic-2014", show_default=True, help="Template to start from.")
@click.option("--force-name", help='Name of the police force, e.g. "North Wales Police".')
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Plan file to create.")
@click.option("--list-templates", is_flag=True, help="List the bundled templates and exit.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--overwrite", is_flag=True, hidden=True, help="The same as --force.")
@click.pass_context
def new(
    ctx: click.Context,
    template: str,
    force_name: str | None,
    output: Path | None,
    list_templates: bool,
    force: bool,
    overwrite: bool,
) -> None:
    """Start a new plan file from a template.

    The plan gets the template's capability areas, national actions, statuses and glossary, with empty
    responses, no leads yet and none of the template's own notes: it is your force's plan from the start.
    """
    from . import templates
    from .errors import OutputExists
    from .record import write_new_plan

    if ctx.args:
        if len(ctx.args) == 1 and force and not force_name:
            # The old form `new --force "North Wales Police"`: the name was --force's value.
            force_name, force = ctx.args[0], False
            click.echo(_FORCE_NAME_MOVED, err=True)
        else:
            raise click.UsageError(f"Got unexpected extra argument ({' '.join(ctx.args)})")
    if list_templates:
        for name, title in templates.list_templates().items():
            click.echo(f"{name}\t{title}")
        return
    if not force_name or output is None:
        raise click.UsageError("give --force-name NAME and -o PLAN.yaml (or --list-templates)")
    if output.exists() and not (force or overwrite):
        raise OutputExists(
            "the plan file already exists", file=output, hint="choose another path or pass --force"
        )
    plan = templates.new_plan(template, force_name)
    write_new_plan(output, plan, wait=_wait())
    n = len(plan.iter_actions())
    shown = f'"{output}"' if any(ch.isspace() for ch in str(output)) else str(output)
    click.echo(f"Wrote {output}: {len(plan.areas)} areas, {n} actions, no leads yet.")
    click.echo("Next: list your lead roles and give each action its lead(s):")
    if "edit" in cli.commands:
        click.echo(f"  in Excel: daplan edit {shown} -o owner.xlsx, then daplan apply {shown} owner.xlsx")
        click.echo(f"  or in {output}: the roles under `leads:`, and each action's `leads:`")
    else:
        click.echo(f"  in {output}: the roles under `leads:`, and each action's `leads:`")
    click.echo(f"Then check it: daplan validate {shown}")


@cli.command()
@click.argument("plans", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the problems as a JSON list of objects "
    "(file, line, column, action_id, field, message, hint, suggestion).",
)
def validate(plans: tuple[Path, ...], as_json: bool) -> None:
    """Check plan files against the model and its rules, listing every problem (exit 0 when all are valid,
    2 otherwise).

    Each problem is one line, `plan.yaml:LINE: ACTION-ID field: what is wrong; what to do`, with the
    nearest valid lead, status or key where there is one.
    """
    from .validation import check_file

    reports = [check_file(path) for path in plans]
    bad = [r for r in reports if not r.valid]
    if as_json:
        items = [p.as_json(r.file) for r in reports for p in r.problems]
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            if report.valid and report.plan is not None:
                plan = report.plan
                click.echo(
                    f"{report.file}: valid ({len(plan.areas)} areas, {len(plan.iter_actions())} actions)"
                )
            for problem in report.problems:
                click.echo(problem.text(report.file))
    if bad:
        count = sum(len(r.problems) for r in bad)
        files = ", ".join(r.file for r in bad)
        noun = "problem" if count == 1 else "problems"
        click.echo(
            f"Error: {count} {noun} ({files}): fix each line listed and run `daplan validate` again",
            err=True,
        )
        sys.exit(EXIT_UNUSABLE)


@cli.command()
@plan_argument
@click.option("--json", "as_json", is_flag=True, help="Print the canonical model as JSON.")
def show(plan: Path, as_json: bool) -> None:
    """Print a plan: a readable summary, or with --json the canonical model."""
    p = _load(plan)
    if as_json:
        text = p.model_dump_json(indent=2)
        # On a console that cannot show every character, as ASCII escapes: the same JSON, nothing lost.
        click.echo(text if unicode_stdout() else json.dumps(json.loads(text), indent=2))
        return
    # Every text from the plan is passed through `printable`: it may hold what a return once said.
    click.echo(f"{printable(p.title)} (revision {p.revision}, {printable(p.classification)})")
    if p.force:
        click.echo(f"Force: {printable(p.force)}")
    for area in p.areas:
        click.echo(f"\n{printable(area.name)} [{printable(area.sheet)}]")
        for action in area.actions:
            lead = printable(", ".join(action.leads) or "no lead")
            marker = " (local)" if action.kind == "local" else ""
            first = printable(action.action.splitlines()[0] if action.action else "")
            if len(first) > 70:
                first = first[:69] + "…"
            click.echo(
                f"  {action.id:<10} {printable(action.ref):<5} {printable(action.status):<12} {lead}{marker}"
                f"\n      {first}"
            )


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
@click.option(
    "--outbox",
    type=click.Path(path_type=Path),
    help="Folder of a distribution (with manifest.json): the Dashboard lists the returns outstanding.",
)
@click.option("--inbox", type=click.Path(path_type=Path), help="Folder of returned workbooks, with --outbox.")
@key_file_option
@no_sign_option
def build(
    plan: Path, output: Path, outbox: Path | None, inbox: Path | None, key_file: Path | None, no_sign: bool
) -> None:
    """Write the consolidated master workbook of the whole plan.

    Its first sheet is a Dashboard (actions by area and status with a chart, open actions past their due
    date, returns outstanding with --outbox); a Changes sheet lists the audit journal, and cells changed
    since the plan was last exported carry a note saying who changed them and when.
    """
    from .master import master_content, write_master
    from .record import check_output
    from .trust import choose_key
    from .writer import utc_now

    if inbox is not None and outbox is None:
        raise click.UsageError("--inbox needs --outbox (the distribution the returns answer)")
    check_output(output, plan_path=plan, what="workbook")
    p = _load(plan)
    key = choose_key(p.id, key_file, sign=not no_sign)
    now = utc_now()
    content = master_content(p, plan, today=now.date(), outbox=outbox, inbox=inbox)
    info = write_master(p, output, content, key=key, clock=lambda: now)
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
    from .record import Record, check_output
    from .trust import choose_key, register_of

    if html_file is not None:
        check_output(html_file, plan_path=plan, inputs=[returned], what="HTML file")
    rec = Record(plan)  # read only: no lock
    p = rec.load()
    key = choose_key(p.id, key_file, create=False)
    result = diff_return(returned, p, key, register=register_of(rec.entries()))
    if html_file is not None:
        atomic_write_bytes(html_file, render_html(result).encode("utf-8"))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=not unicode_stdout()))
    else:
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(render_text(result, colour))
    if exit_code and (result.changes or result.problems):
        sys.exit(EXIT_ATTENTION)


def _progress_bar(length: int, label: str) -> Any:
    """A progress bar on a terminal for many files; silent when piped."""
    if length < 5 or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    return click.progressbar(length=length, label=label, file=sys.stderr)


@cli.command()
@plan_argument
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the workbooks."
)
@click.option(
    "--by",
    type=click.Choice(["lead", "area"]),
    default="lead",
    show_default=True,
    help="One workbook per lead role (the actions they lead or support) or per capability area.",
)
@click.option("--only", help="Issue just this one recipient's workbook.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@click.option(
    "--round", "round_name", metavar="NAME", help='Issue the workbooks in a reporting round, e.g. "2027 Q1".'
)
@click.option(
    "--return-by",
    metavar="DATE",
    help="The round's return-by date (YYYY-MM-DD), on every workbook and email.",
)
@click.option(
    "--mail",
    "mail_dir",
    type=click.Path(path_type=Path),
    help="Also write an email draft (.eml, opens in Outlook) per recipient into this folder.",
)
@key_file_option
@no_sign_option
def distribute(
    plan: Path,
    output: Path,
    by: str,
    only: str | None,
    force: bool,
    round_name: str | None,
    return_by: str | None,
    mail_dir: Path | None,
    key_file: Path | None,
    no_sign: bool,
) -> None:
    """Write one workbook per recipient and OUTPUT/manifest.json.

    Each workbook holds the recipient's actions (an action with several leads goes to each of them) and
    hidden metadata that makes its return traceable. Email each lead their file; they edit and send it back.
    `--only NAME --force` into an existing outbox re-issues NAME's workbook and keeps everyone else's in the
    manifest. `--round NAME --return-by DATE` issues them in a reporting round (the date is on each
    workbook's cover); `--mail DIR` writes each lead's email draft, the workbook attached.
    """
    import datetime as dt

    from .distribute import distribute as run_distribute
    from .distribute import is_named, recipients
    from .rounds import check_round_name, parse_return_by
    from .trust import choose_key

    if (round_name is None) != (return_by is None):
        raise click.UsageError("give --round NAME and --return-by DATE together")
    due = parse_return_by(return_by) if return_by is not None else None
    if due is not None and due < _today():
        click.echo(f"Note: the return-by date {due.isoformat()} is already past.", err=True)
    name = check_round_name(round_name) if round_name is not None else None
    if mail_dir is not None:
        _check_folder(mail_dir, plan, output)
    with _record(plan) as rec:  # the outbox and the record are written by one command at a time
        p = rec.load()
        key = choose_key(p.id, key_file, sign=not no_sign)
        total = 1 if only else len(recipients(p, by))  # type: ignore[arg-type]
        with _progress_bar(total, "Writing workbooks") as bar:
            manifest = run_distribute(
                p,
                output,
                by=by,  # type: ignore[arg-type]
                only=only,
                key=key,
                force=force,
                progress=(lambda _name: bar.update(1)) if bar else None,
                plan_path=plan,
                round_name=name,
                return_by=due,
            )
    # Re-issued with --only, the manifest also lists everyone else's earlier workbooks: name what was written.
    written = [wb for wb in manifest["workbooks"] if only is None or is_named(wb["recipient"], only)]
    for wb in written:
        click.echo(f"{wb['file']}\t{wb['recipient']}\t{len(wb['scope'])} action(s)")
    others = len(manifest["workbooks"]) - len(written)
    kept = f" (which keeps the {others} other workbook(s) issued before)" if others else ""
    click.echo(f"Wrote {len(written)} workbook(s) and {output / 'manifest.json'}{kept}.")
    if manifest.get("round"):
        from .rounds import long_date

        click.echo(
            f"Round {printable(manifest['round'])}: return by "
            f"{long_date(dt.date.fromisoformat(manifest['return_by']))}."
        )
    if mail_dir is not None:
        from .mail import request_letters

        letters = request_letters(rec.plan, output, manifest, today=_today(), only=only)
        if _deliver(plan, letters, mail_dir, None, None):
            sys.exit(EXIT_ATTENTION)


@cli.command()
@plan_argument
@click.argument("returns", metavar="RETURN...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form (see README).")
@click.option("--accept-new", is_flag=True, help="Add rows proposed without an ID as new local actions.")
@click.option(
    "--combine-responses",
    is_flag=True,
    help="When several people return the same workbook with different responses, keep them all as "
    "dated, attributed entries in one response instead of a conflict.",
)
@click.option(
    "--report", "report_file", type=click.Path(path_type=Path), help="Also write the report to FILE."
)
@click.option(
    "--conflicts-workbook",
    type=click.Path(path_type=Path),
    help="Write the conflicts to a workbook to settle in Excel and merge back like a return.",
)
@key_file_option
def merge(
    plan: Path,
    returns: tuple[Path, ...],
    dry_run: bool,
    as_json: bool,
    accept_new: bool,
    combine_responses: bool,
    report_file: Path | None,
    conflicts_workbook: Path | None,
    key_file: Path | None,
) -> None:
    """Merge returned workbooks into the plan, three-way, all at once.

    A field changed in a return is applied when the plan still holds the value the workbook was issued with;
    otherwise, or when two returns disagree, it is a conflict and left for you. Nothing is ever dropped:
    conflicts and refused values stay on record as open items until you settle them (`daplan conflicts`,
    `resolve`, `recheck`). Exit 1 when anything needs a person; exit 2, with the plan untouched, when any
    return cannot be read at all or an output path cannot be used.
    """
    from . import journal as J
    from .merge import merge_returns
    from .mergeview import render_report, write_conflicts_workbook
    from .openitems import open_items
    from .planfile import atomic_write_bytes
    from .record import check_output, put_in_place, staged
    from .trust import choose_key, issue_line

    # Outputs are checked before anything is read or written: a bad path costs nothing.
    for out in (report_file, conflicts_workbook):
        if out is not None:
            check_output(out, plan_path=plan, inputs=returns)
    with _record(plan) as rec, contextlib.ExitStack() as stack:
        p = rec.load()
        key = choose_key(p.id, key_file, create=False)
        entries = rec.entries()
        with _progress_bar(len(returns), "Reading returns") as bar:
            result = merge_returns(
                p,
                list(returns),
                key=key,
                journal=entries,
                accept_new=accept_new,
                combine=combine_responses,
                progress=(lambda _path: bar.update(1)) if bar else None,
            )
        report = render_report(result, dry_run)
        if dry_run:
            if report_file is not None:
                atomic_write_bytes(report_file, (report + "\n").encode("utf-8"))
        else:
            # Written first, put in place after the commit: a commit never goes without its outputs.
            ready: list[tuple[Path, Path]] = []
            if conflicts_workbook is not None:
                items = open_items(J.live(entries + result.journal))
                tmp = stack.enter_context(staged(conflicts_workbook))
                # The owner's workbook is signed like any other.
                info = write_conflicts_workbook(result.plan, items, tmp, choose_key(p.id, key_file))
                if info is not None:
                    result.journal.append(
                        issue_line(info, file=str(conflicts_workbook), plan_revision=result.plan.revision)
                    )
                    ready.append((tmp, conflicts_workbook))
                    report += (
                        f"\n\nConflicts workbook: {conflicts_workbook} ({len(items)} open item(s); settle the "
                        "yellow cells, then merge it)."
                    )
                else:
                    report += "\n\nNo open items: no conflicts workbook written."
            if report_file is not None:
                tmp = stack.enter_context(staged(report_file))
                tmp.write_bytes((report + "\n").encode("utf-8"))
                ready.append((tmp, report_file))
            rec.commit(result.plan, result.journal)
            for tmp, out in ready:
                put_in_place(tmp, out)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=not unicode_stdout(), default=str))
    else:
        click.echo(report)
    if result.needs_person:
        sys.exit(EXIT_ATTENTION)


@cli.command()
@plan_argument
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Workbook to write.")
@key_file_option
def conflicts(plan: Path, output: Path, key_file: Path | None) -> None:
    """Write a workbook of the plan's open items to settle in Excel, then merge it back like a return.

    Every conflict and refused value still open is listed with its candidates beside the action as it now
    stands; type or choose the value you want in the yellow cells. Each field you change settles its open
    items. Made from the record, it can be made at any time (exit 1 when there is nothing open).
    """
    from .mergeview import write_conflicts_workbook
    from .openitems import open_items
    from .record import check_output
    from .trust import choose_key, issue_line

    check_output(output, plan_path=plan, what="workbook")
    with _record(plan) as rec:  # the workbook is recorded as issued, so its return is checked
        p = rec.load()
        items = open_items(rec.entries())
        key = choose_key(p.id, key_file)
        info = write_conflicts_workbook(p, items, output, key)
        if info is not None:
            rec.append([issue_line(info, file=str(output), plan_revision=p.revision)])
    if info is None:
        if not items:
            click.echo("No open items on record: nothing to settle, no workbook written.")
            return
        click.echo(
            f"{len(items)} open item(s), none about an action in the plan (proposed new rows, or actions "
            "withdrawn since), so no workbook was written. Add proposals with `daplan merge --accept-new`, or "
            "settle each with `daplan resolve PLAN ID FIELD --take current --reason TEXT`:"
        )
        for item in items:
            click.echo(f"  {printable(item.action_id)} {item.field}: {printable(item.reason)[:90]}")
        sys.exit(EXIT_ATTENTION)
    in_plan = set(p.action_index())
    shown = [i for i in items if i.action_id in in_plan]
    actions = len({i.action_id for i in shown})
    click.echo(
        f"Wrote {output}: {len(shown)} open item(s) on {actions} action(s). Settle the yellow cells, then: "
        f"daplan merge {plan} {output}"
    )
    others = len(items) - len(shown)
    if others:
        click.echo(
            f"{others} more open item(s) are about proposed new rows or withdrawn actions: see `daplan status "
            f"{plan}`, then `daplan merge --accept-new` or `daplan resolve ... --take current --reason TEXT`."
        )


@cli.command()
@plan_argument
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Workbook to write.")
@key_file_option
def edit(plan: Path, output: Path, key_file: Path | None) -> None:
    """Write the owner's workbook: the whole plan, editable in Excel, to apply with `daplan apply`.

    Area sheets hold every action (Ref, Action, leads, national / local, due, status, texts, and a Remove
    column to withdraw one; empty rows below take new actions); the Leads, Statuses, Glossary, Areas and
    Plan sheets hold the rest. The workbook is signed and recorded as issued to the plan owner.
    """
    from .ownerbook import write_owner_workbook
    from .record import check_output
    from .trust import choose_key, issue_line

    check_output(output, plan_path=plan, what="workbook")
    with _record(plan) as rec:  # the workbook is recorded as issued, so applying it is checked
        p = rec.load()
        key = choose_key(p.id, key_file)
        info = write_owner_workbook(p, output, key=key)
        rec.append([issue_line(info, file=str(output), plan_revision=p.revision)])
    click.echo(
        f"Wrote {output}: the whole plan ({len(info.scope)} actions, {len(p.leads)} lead roles) to edit in Excel. "
        f"Then: daplan apply {plan} {output}"
    )


@cli.command()
@plan_argument
@click.argument("workbook", metavar="OWNER.xlsx", type=click.Path(path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Show what it would change, in the plan's terms; write nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@key_file_option
def apply(plan: Path, workbook: Path, dry_run: bool, as_json: bool, key_file: Path | None) -> None:
    """Apply the owner's workbook (made by `daplan edit`) to the plan, three-way.

    A value you changed is applied when the plan still holds what the workbook was made with. Where a lead's
    return (or a hand edit) changed the same value since, it is not overwritten: on an action it becomes an
    open item to settle (`daplan conflicts`, `resolve`). Refused values (an unknown lead, a formula, a bad
    date) stay on record as open items too. Exit 1 when anything needs a person; exit 2, nothing written,
    when the workbook cannot be used or the result would break a rule of the plan.
    """
    from .apply import apply_owner_workbook, render
    from .trust import choose_key
    from .writer import utc_now

    with _record(plan) as rec:
        p = rec.load()
        key = choose_key(p.id, key_file, create=False)
        result = apply_owner_workbook(p, workbook, key=key, journal=rec.entries(), now=utc_now())
        if not dry_run and result.lines:
            rec.commit(result.plan, result.lines)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=not unicode_stdout()))
    else:
        click.echo(printable(render(result, dry_run), lines=True))
    if result.needs_person:
        sys.exit(EXIT_ATTENTION)


def _settled(outcome: Any, rec: Any) -> None:
    rec.commit(outcome.plan, outcome.lines)
    for line in outcome.messages:
        click.echo(line)
    if outcome.lines:
        click.echo(f"Plan now at revision {outcome.plan.revision}.")


@cli.command()
@plan_argument
@click.argument("action_id", metavar="ACTION")
@click.argument("field_name", metavar="FIELD")
@click.option(
    "--take", metavar="CANDIDATE", help="A candidate's number, return file or recipient; or `current`."
)
@click.option("--value", metavar="TEXT", help="Settle with this value instead.")
@click.option("--reason", default="", help="Why: kept on record with the settlement.")
def resolve(
    plan: Path, action_id: str, field_name: str, take: str | None, value: str | None, reason: str
) -> None:
    """Settle the open items of one field of one action: take a candidate, keep the current value, or type one.

    \b
      daplan resolve plan.yaml IN-3 status --take 2 --reason "confirmed with the DCI"
      daplan resolve plan.yaml IN-3 lead --take current --reason "lead unchanged"
      daplan resolve plan.yaml IN-3 response --value "Agreed wording" --reason "board 12 March"
    """
    from .openitems import who
    from .settle import resolve as run_resolve
    from .writer import utc_now

    with _record(plan) as rec:
        p = rec.load()
        outcome = run_resolve(
            p,
            rec.entries(),
            action_id,
            field_name,
            take=take,
            value=value,
            reason=reason,
            who=who(),
            now=utc_now(),
        )
        _settled(outcome, rec)


@cli.command()
@plan_argument
def recheck(plan: Path) -> None:
    """Look again at refused values after the lead register or status vocabulary changed.

    A refused lead or status that is now valid is applied when the plan still holds the value the workbook
    was issued with, or becomes a conflict when it does not. The rest stay open. Exit 1 while any is open.
    """
    from .openitems import open_items, who
    from .settle import recheck as run_recheck
    from .writer import utc_now

    with _record(plan) as rec:
        p = rec.load()
        entries = rec.entries()
        outcome = run_recheck(p, entries, who=who(), now=utc_now())
        if outcome.lines:
            _settled(outcome, rec)
        else:
            for line in outcome.messages:
                click.echo(line)
        left = open_items(rec.entries())
    click.echo(f"{len(left)} open item(s) left on record.")
    if left:
        sys.exit(EXIT_ATTENTION)


@cli.command()
@plan_argument
@click.option(
    "--to", "to_revision", type=click.IntRange(min=1), help="Undo every change after this revision."
)
def undo(plan: Path, to_revision: int | None) -> None:
    """Revert the last merge or settlement (or every one after --to REVISION), from the journal.

    The plan gets back the values it had; the undone returns can be merged again, their open items close
    and the items they settled reopen. Refused when a later change touched the same field. The undo is
    itself journalled.
    """
    from .openitems import who
    from .settle import undo as run_undo
    from .writer import utc_now

    with _record(plan) as rec:
        p = rec.load()
        outcome = run_undo(p, rec.entries(), to=to_revision, who=who(), now=utc_now())
        _settled(outcome, rec)


def _today() -> Any:
    """Today's date in UTC (the day a return-by date is counted against)."""
    from .writer import utc_now

    return utc_now().date()


def _check_folder(folder: Path, plan: Path, *others: Path) -> None:
    """An output folder: not a file, not the plan's own folder's files, not a folder given to read."""
    from .errors import OutputExists

    if folder.exists() and not folder.is_dir():
        raise OutputExists("the output is a file, not a folder", file=folder, hint="name a folder")
    for other in others:
        if other is not None and os.path.realpath(folder) == os.path.realpath(other):
            raise OutputExists(
                "the output folder is one of the folders given to read",
                file=folder,
                hint="name a folder of its own for the emails",
            )


def _deliver(
    plan: Path, letters: list[Any], drafts: Path | None, smtp: str | None, sender: str | None
) -> bool:
    """Write the letters as drafts, or send them; list each recipient without an address. True when
    something needs a person (a recipient without an address, a refused recipient, a message not sent)."""
    from . import mail as M
    from .record import append_lines

    missing = [x for x in letters if x.message is None]
    attention = bool(missing)
    if smtp is None:
        assert drafts is not None
        with _progress_bar(len(letters), "Writing email drafts") as bar:
            written = M.write_drafts(
                letters, drafts, plan_path=plan, progress=(lambda _n: bar.update(1)) if bar else None
            )
        for path, letter in zip(written, [x for x in letters if x.message is not None], strict=True):
            click.echo(f"{path.name}\tto {printable(', '.join(letter.to))}")
        click.echo(
            f"Wrote {len(written)} email draft(s) to {drafts}. Open each in Outlook (it opens as a new "
            "message), check it and press Send."
        )
    else:
        sender = M.check_sender(sender)
        from .writer import utc_now

        def journal(letter: Any, accepted: list[str], via: str, time: str) -> None:
            from .planfile import revision_on_disk
            from .record import real_plan_path

            revision = revision_on_disk(real_plan_path(plan).read_bytes())
            append_lines(plan, [M.mail_line(letter, accepted, via, time, revision)])

        with _record(plan), _progress_bar(len(letters), "Sending emails") as bar:
            sent = M.send_letters(
                letters,
                smtp,
                sender=sender,
                now=utc_now,
                journal=journal,
                progress=(lambda _n: bar.update(1)) if bar else None,
            )
        ok = 0
        for s in sent:
            name = printable(s.letter.recipient)
            if s.accepted:
                ok += 1
                click.echo(f"Sent to {name}: {printable(', '.join(s.accepted))}")
            for addr, why in s.refused.items():
                attention = True
                click.echo(f"Refused by the mail server for {name}: {printable(addr)} ({printable(why)})")
            if s.error and s.error != "refused":
                attention = True
                click.echo(f"{name}: {printable(s.error)}")
        click.echo(
            f"Sent {ok} of {len(sent)} email(s) through {smtp}; each one sent is in the plan's journal."
        )
    for letter in missing:
        click.echo(
            f"Not emailed: {printable(letter.recipient)}: {printable(letter.problem)}. Add the address under "
            f"`leads:` (email:) in the plan, or send {letter.workbook} by hand."
        )
    return attention


def smtp_options(f: F) -> F:
    f = click.option(
        "--from",
        "sender",
        metavar="ADDRESS",
        envvar="DAPLAN_MAIL_FROM",
        help="Your address, the sender (with --smtp; default $DAPLAN_MAIL_FROM).",
    )(f)
    return click.option(
        "--smtp",
        metavar="HOST[:PORT]",
        help="Send through this mail server instead of writing drafts (port 587 unless given; STARTTLS when "
        "offered; user and password from $DAPLAN_SMTP_USER and $DAPLAN_SMTP_PASSWORD).",
    )(f)


@cli.command()
@plan_argument
@click.argument("outbox", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Folder for the email drafts (.eml).")
@click.option("--only", help="Just this one recipient's email.")
@click.option("--again", is_flag=True, help="With --smtp: send also to those the journal says were sent it.")
@smtp_options
def mail(
    plan: Path,
    outbox: Path,
    output: Path | None,
    only: str | None,
    again: bool,
    smtp: str | None,
    sender: str | None,
) -> None:
    """Email each lead their workbook from OUTBOX: one draft per recipient, or sent with --smtp.

    Each email goes to every address of the lead's role in the plan's lead register (`email:`, several
    separated by `;`), says what to do and by when (the round's return-by date), and has the workbook
    attached. Drafts are .eml files that Outlook opens as a new message ready to send. A recipient without
    an address is listed (exit 1). Each email sent with --smtp is recorded in the plan's journal.
    """
    from .distribute import read_manifest
    from .mail import request_letters

    if (output is None) == (smtp is None):
        raise click.UsageError("give -o FOLDER for drafts, or --smtp HOST[:PORT] to send")
    if output is not None:
        _check_folder(output, plan, outbox)
    p = _load(plan)
    manifest = read_manifest(outbox, p)
    letters = request_letters(p, outbox, manifest, today=_today(), only=only)
    if only is not None and not letters:
        raise UnusableInput(f"no workbook in {outbox} is issued to {only!r}")
    if smtp is not None and not again:
        # A run stopped halfway (a server that refused or dropped) is run again for the rest only.
        from . import journal as J
        from .record import real_plan_path

        entries = J.read_journal(J.journal_path(real_plan_path(plan)), p.revision)
        done = {
            e["issue_id"]
            for e in entries
            if e["event"] == "mail" and e.get("purpose", "request") == "request"
        }
        for letter in [x for x in letters if x.issue_id in done]:
            click.echo(
                f"Already sent to {printable(letter.recipient)} (the journal says so); --again sends it again."
            )
        letters = [x for x in letters if x.issue_id not in done]
    if _deliver(plan, letters, output, smtp, sender):
        sys.exit(EXIT_ATTENTION)


@cli.command()
@plan_argument
@click.argument("outbox", type=click.Path(path_type=Path))
@click.argument("inbox", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Folder for the reminder drafts (.eml)."
)
@click.option(
    "--also-open",
    is_flag=True,
    help="Also write to those whose return left open items (conflicts, refusals).",
)
@smtp_options
def chase(
    plan: Path,
    outbox: Path,
    inbox: Path | None,
    output: Path | None,
    also_open: bool,
    smtp: str | None,
    sender: str | None,
) -> None:
    """Remind each lead whose return is outstanding, with their current workbook attached again.

    Outstanding means no file in INBOX answers their workbook and no return of it has been merged (as
    `daplan status` shows). The reminder says when it was due, or is due. Drafts to -o FOLDER, or sent
    with --smtp (each one journalled).
    """
    from .distribute import read_manifest
    from .mail import reminder_letters
    from .status import status_report

    if (output is None) == (smtp is None):
        raise click.UsageError("give -o FOLDER for drafts, or --smtp HOST[:PORT] to send")
    if output is not None:
        _check_folder(output, plan, outbox, *([inbox] if inbox is not None else []))
    p = _load(plan)
    today = _today()
    report = status_report(p, plan, outbox, inbox, today=today)
    manifest = read_manifest(outbox, p)
    letters = reminder_letters(p, outbox, report, manifest, today=today, also_open=also_open)
    if not letters:
        click.echo("Nobody to remind: every workbook of the outbox has come back.")
        return
    if _deliver(plan, letters, output, smtp, sender):
        sys.exit(EXIT_ATTENTION)


@cli.command()
@plan_argument
@click.argument("messages", metavar="MESSAGE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "inbox",
    required=True,
    type=click.Path(path_type=Path),
    help="The inbox folder to save into.",
)
def collect(plan: Path, messages: tuple[Path, ...], inbox: Path) -> None:
    """Save the workbooks attached to saved emails (.eml, Outlook .msg, mbox) into the inbox.

    Forwarded messages inside them are searched too. Each workbook gets a name of its own in the inbox
    (never over a file there; one already there is not saved twice) and is journalled with the email's
    sender, date and subject. A workbook whose sender is not an address of the lead it was issued to, or
    that this plan did not issue, is flagged (exit 1): check it before you merge. Other attachments are
    listed and left. Every email is read first: one that cannot be read stops the command, saving nothing.
    """
    from .collect import collect as run_collect
    from .writer import utc_now

    _check_folder(inbox, plan)
    with _record(plan) as rec:
        p = rec.load()
        with _progress_bar(len(messages), "Reading emails") as bar:
            report = run_collect(
                p,
                rec.entries(),
                messages,
                inbox,
                plan_path=plan,
                now=utc_now,
                progress=(lambda _p: bar.update(1)) if bar else None,
            )
        rec.append(report.lines)
    for s in report.saved:
        who = s.recipient or "no recipient of this plan"
        click.echo(
            f"Saved {printable(s.path.name)}\t{printable(who)}\tfrom {printable(s.found.sender_text or '?')}"
            f"{' (forwarded)' if s.found.forwarded else ''}"
        )
        if s.flagged:
            click.echo(f"    FLAGGED: {printable(s.reason)}")
    for f, there in report.already:
        click.echo(
            f"Already in the inbox: {printable(f.name)} from {printable(f.source.name)} (as {printable(there)})"
        )
    for f in report.others:
        click.echo(f"Left (not a workbook): {printable(f.name)} in {printable(f.source.name)}")
    for text in report.empty:
        click.echo(f"No attachment: {printable(text)}")
    click.echo(
        f"{len(report.saved)} workbook(s) saved to {inbox}, {len(report.already)} already there, "
        f"{len(report.flagged)} flagged. Next: daplan merge {plan} {inbox}/*.xlsx"
    )
    if report.flagged:
        sys.exit(EXIT_ATTENTION)


@cli.command()
@plan_argument
@click.argument("action_id", metavar="[ACTION]", required=False)
@click.option(
    "--field", "field_name", metavar="F", help="Just this field (status, response, target, due, lead, notes)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the changes as a JSON list.")
def history(plan: Path, action_id: str | None, field_name: str | None, as_json: bool) -> None:
    """The life of each field from the journal, newest first: when, round, who, from which return or
    settlement, and old → new. Changes undone with `daplan undo` are not shown."""
    from .history import as_json as events_json
    from .history import history as run_history
    from .history import render
    from .record import Record

    rec = Record(plan)  # read only: no lock
    p = rec.load()
    events = run_history(rec.entries(), action_id, field_name, set(p.action_index()))
    if as_json:
        click.echo(json.dumps(events_json(events), indent=2, ensure_ascii=not unicode_stdout()))
    else:
        click.echo(render(events))


@cli.command()
@plan_argument
@click.argument("outbox", required=False, type=click.Path(path_type=Path))
@click.argument("inbox", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form.")
@click.option(
    "--round",
    "round_name",
    metavar="NAME",
    help="The recipients of this reporting round (default: the outbox's).",
)
def status(
    plan: Path, outbox: Path | None, inbox: Path | None, as_json: bool, round_name: str | None
) -> None:
    """Per recipient: issued, returned (found in INBOX by issue id), merged (from the journal), outstanding.

    Open items (conflicts and refused values awaiting you) are counted per return and listed per action; a
    return with open items is "merged, N open". Proposed new actions that a merge left unadded are counted
    too: they await `daplan merge --accept-new`. Without OUTBOX, the returns merged so far and the open items.

    Workbooks issued in a reporting round show its return-by date and, per recipient outstanding, the days
    left or the days late. `--round NAME` shows that round's recipients from the record, whatever the
    outbox; write `-` for OUTBOX to give just the INBOX: `daplan status plan.yaml - inbox/ --round "2027 Q1"`.
    """
    from .status import render_status, status_report

    p = _load(plan)
    if outbox is not None and str(outbox) == "-":
        outbox = None
    report = status_report(p, plan, outbox, inbox, round_name=round_name, today=_today())
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=not unicode_stdout()))
        return
    click.echo(render_status(report))


@cli.command()
@click.argument("folder", default="daplan-demo", required=False, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Reuse a folder that is not empty (its demo files are replaced).")
def demo(folder: Path, force: bool) -> None:
    """Run the whole loop on the bundled West Yorkshire example, in FOLDER (default: daplan-demo).

    It copies the example plan, has the owner change it in the owner's workbook (edit, a labelled sample
    edit, apply), distributes workbooks to the leads in a reporting round with an email draft for each,
    makes sample returns as leads would (labelled as sample edits, with one conflict and one invalid value;
    one comes back as a saved email and is collected), then previews one return, merges them all, shows who
    has returned, writes reminders to the others, builds the master workbook, exports the plan as HTML and
    ends with the board report, printing each command as you would type it and where its files are.
    """
    import datetime as dt
    import glob
    import shlex

    from .demo import (
        EMAILED,
        OWNER_EDITS,
        SAMPLE_EDITS,
        prepare_folder,
        write_owner_sample,
        write_sample_reply,
        write_sample_returns,
    )
    from .distribute import read_manifest, slug
    from .planfile import load_plan

    plan = prepare_folder(folder, force)
    outbox, inbox = folder / "outbox", folder / "inbox"

    def step(title: str, *args: str, note: str = "") -> int:
        click.secho(f"\n== {title} ==", bold=True)
        if note:
            click.echo(note)
        click.echo("$ daplan " + " ".join(shlex.quote(a) for a in args))
        try:
            code = cli.main(list(args), prog_name="daplan", standalone_mode=False)
        except SystemExit as exc:  # commands that need a person exit 1 through sys.exit
            code = exc.code
        if code == EXIT_UNUSABLE:
            raise UnusableInput(f"the demo stopped at step {title}: see the message above")
        return int(code or 0)

    click.echo(f"daplan demo: the whole loop on the West Yorkshire 2014 plan, in {folder}/")
    click.secho("\n== 1. A plan of your own ==", bold=True)
    click.echo(
        f"Copied the bundled example to {plan}, with an email address for each lead role (on the reserved "
        "domain .example, which no mail reaches). (Start yours with: daplan new --force-name NAME -o plan.yaml)"
    )
    step("2. Check it", "validate", str(plan))
    owner = folder / "owner.xlsx"
    step(
        "3. The owner's workbook: the whole plan in Excel",
        "edit",
        str(plan),
        "-o",
        str(owner),
        note="The plan owner sets up and changes the plan here: leads, actions, statuses, glossary.",
    )
    owner_edited = write_owner_sample(owner, folder / "owner-edited.xlsx")
    click.secho("\n== 4. The owner edits it (sample edits) ==", bold=True)
    for what, change in OWNER_EDITS:
        click.echo(f"  {what:<10} {change}")
    click.echo(f"Saved as {owner_edited}.")
    step("5. See what it would change", "apply", str(plan), str(owner_edited), "--dry-run")
    step("6. Apply it", "apply", str(plan), str(owner_edited))
    today = _today()
    round_name = f"{today.year} Q{(today.month - 1) // 3 + 1}"
    return_by = today + dt.timedelta(days=14)
    drafts, saved_mail = folder / "drafts", folder / "saved-mail"
    step(
        "7. A reporting round: one workbook per lead, and an email draft for each",
        "distribute",
        str(plan),
        "-o",
        str(outbox),
        "--round",
        round_name,
        "--return-by",
        return_by.isoformat(),
        "--mail",
        str(drafts),
        note="Each workbook is signed with this plan's own key, made now and kept in your configuration folder "
        "(not beside the plan), and recorded in the plan's journal: every return is checked against it. "
        "Open a draft (.eml) in Outlook: it opens as a new message, the workbook attached, ready to send.",
    )

    click.secho("\n== 8. The leads edit their workbooks and reply (sample edits) ==", bold=True)
    returns = write_sample_returns(read_manifest(outbox, load_plan(plan)), outbox, inbox)
    for e in SAMPLE_EDITS:
        value = e.value.strftime("%d/%m/%Y") if not isinstance(e.value, str) else e.value
        shown = value if len(value) <= 50 else value[:47] + "..."
        click.echo(f"  {e.recipient:<20} {e.action_id:<5} {e.field:<8} {shown!r}: {e.why}")
    emailed = next(p for p in returns if p.stem == slug(EMAILED))
    reply = write_sample_reply(
        emailed, drafts / f"{emailed.stem}.eml", saved_mail, "Plan owner <owner@west-yorkshire.example>"
    )
    click.echo(
        f"Sample returns written to {inbox}/ ({len(returns) - 1} files); {EMAILED}'s came back by email, "
        f"saved from the mail client as {reply}."
    )

    step("9. Save the workbooks attached to the replies", "collect", str(plan), str(reply), "-o", str(inbox))
    first = next(p for p in returns if p != emailed)
    step("10. Preview one return", "diff", str(plan), str(first))
    all_returns = sorted(glob.glob(str(inbox / "*.xlsx")))
    conflicts = folder / "conflicts.xlsx"
    step(
        "11. Merge every return at once",
        "merge",
        str(plan),
        *all_returns,
        "--conflicts-workbook",
        str(conflicts),
        note="Exit 1 here is expected: a conflict and a refused value are left for you, on record as open items.",
    )
    step("12. Who has returned, and how long is left", "status", str(plan), str(outbox), str(inbox))
    reminders = folder / "reminders"
    step(
        "13. Remind the leads who have not returned",
        "chase",
        str(plan),
        str(outbox),
        str(inbox),
        "-o",
        str(reminders),
    )
    master = folder / "master.xlsx"
    step(
        "14. The master workbook",
        "build",
        str(plan),
        "-o",
        str(master),
        "--outbox",
        str(outbox),
        "--inbox",
        str(inbox),
    )
    html = folder / "plan.html"
    step("15. The publishable plan", "export", str(plan), "--format", "html", "-o", str(html))
    board = folder / "board.pdf"
    step(
        "16. The board report",
        *(
            "report",
            str(plan),
            "-o",
            str(board),
            "--since",
            "1",
            "--outbox",
            str(outbox),
            "--inbox",
            str(inbox),
        ),
    )

    click.secho("\n== Where things are ==", bold=True)
    for path, what in (
        (plan, "the plan file (now at a higher revision) and its audit journal beside it"),
        (
            owner_edited,
            f"the owner's workbook with the sample edits: make yours with daplan edit {plan} -o FILE",
        ),
        (outbox, "the workbooks issued to each lead, and manifest.json"),
        (drafts, "an email draft per lead (.eml): open one in Outlook"),
        (saved_mail, "the reply saved as an email, collected into the inbox"),
        (inbox, "the sample returns"),
        (reminders, "the reminders to the leads who have not returned"),
        (conflicts, f"the conflict to settle in Excel, then: daplan merge {plan} {conflicts}"),
        (master, "the master workbook: open its Dashboard"),
        (html, "the plan as published"),
        (board, "the board report: exceptions, changes since the last board, trend"),
    ):
        click.echo(f"  {path!s:<40} {what}")


@cli.command()
@plan_argument
@click.option(
    "--format",
    "fmt",
    metavar="html|md",
    help="Output format (default: from the output file's extension, .html or .md).",
)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="File to write.")
@click.option(
    "--since",
    metavar="REVISION|DATE",
    help="Add 'Progress since …': the changes merged after this plan revision, or since this day "
    "(YYYY-MM-DD).",
)
@click.option(
    "--template",
    "template_dir",
    type=click.Path(path_type=Path),
    help="A folder of your own page templates (header.html, footer.html, style.css, ...) used in place of "
    "the built-in ones (HTML only).",
)
def export(plan: Path, fmt: str | None, output: Path, since: str | None, template_dir: Path | None) -> None:
    """Write the plan as a publishable document: one self-contained HTML page, or Markdown.

    Protective marking, title, background, the overarching capabilities, one table per capability area
    (Ref, Action, Response, Target, Lead, Status) with local actions marked, and the glossary. An
    existing output file is replaced. The publication is noted in the plan's journal, so the master
    workbook can mark what has changed since.
    """
    from .export import write_export

    with _record(plan) as rec:  # its publication is noted in the journal
        p = rec.load()
        info = write_export(p, plan, output, fmt, since=since, template_dir=template_dir)
    listed = "" if info.changes is None else f", {info.changes} change(s) since {since}"
    click.echo(f"Wrote {output}: {info.format}, revision {info.revision}{listed}.")


@cli.command()
@plan_argument
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Report to write: .pdf or .html."
)
@click.option(
    "--since",
    metavar="ROUND|REVISION|DATE",
    help="Report the changes since this distribution round, plan revision or day (YYYY-MM-DD); "
    "by default since the last board report or export.",
)
@click.option(
    "--outbox",
    type=click.Path(path_type=Path),
    help="Folder of the distribution (with manifest.json): the report lists the returns outstanding.",
)
@click.option("--inbox", type=click.Path(path_type=Path), help="Folder of returned workbooks, with --outbox.")
@click.option(
    "--template",
    "template_dir",
    type=click.Path(path_type=Path),
    help="A folder of your own templates (report.typ for the PDF; report.html, header.html, style.css ... "
    "for the HTML) used in place of the built-in ones.",
)
def report(
    plan: Path,
    output: Path,
    since: str | None,
    outbox: Path | None,
    inbox: Path | None,
    template_dir: Path | None,
) -> None:
    """Write the board report: a few A4 pages, as PDF or HTML (by the file's extension).

    Headline figures with the trend, status by capability area, the actions off track, at risk, overdue
    or with open items (with lead and due date), what changed since the last board, and with --outbox the
    returns outstanding. The report is noted in the plan's journal as a publication, so the next one
    reports the changes since.
    """
    from .report import write_report

    if inbox is not None and outbox is None:
        raise click.UsageError("--inbox needs --outbox (the distribution the returns answer)")
    with _record(plan) as rec:  # its publication is noted in the journal
        p = rec.load()
        info = write_report(
            p, plan, output, since=since, outbox=outbox, inbox=inbox, template_dir=template_dir
        )
    click.echo(
        f"Wrote {output}: board report, revision {info.revision}, {info.exceptions} action(s) needing "
        f"attention, {info.changes} changed since {info.since}."
    )


@cli.command("import")
@click.argument("workbook", metavar="SHEET.xlsx", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Plan file to write.")
@click.option("--force-name", help='Name of the police force, e.g. "North Wales Police".')
@click.option(
    "--status-map",
    type=click.Path(path_type=Path),
    help="YAML or JSON mapping of status words to status names, e.g. {Purple: Embedded}.",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--overwrite", is_flag=True, hidden=True, help="The same as --force.")
def import_command(
    workbook: Path,
    output: Path,
    force_name: str | None,
    status_map: Path | None,
    force: bool,
    overwrite: bool,
) -> None:
    """Adopt a plan kept as an ordinary workbook: write it as a plan file.

    One sheet per capability area, or one sheet with an area column (or area headings); the header row is
    found by its names (Ref/No., Action/Recommendation, Response/Progress, Target/Timescale, Lead/Owner,
    Status/RAG). Every row that could not be placed is listed with its sheet and row. Exit 1 when some
    rows need a person; exit 2, writing nothing, when the workbook cannot be used.
    """
    from .errors import OutputExists
    from .importer import import_workbook, load_status_map
    from .record import write_new_plan

    if output.exists() and workbook.exists() and output.resolve() == workbook.resolve():
        raise OutputExists(
            "the output is the workbook itself", file=output, hint="name a .yaml file to write"
        )
    if output.exists() and not (force or overwrite):
        raise OutputExists(
            "the plan file already exists", file=output, hint="choose another path or pass --force"
        )
    mapping = load_status_map(status_map) if status_map is not None else None
    result = import_workbook(workbook, force_name=force_name, status_map=mapping)
    write_new_plan(output, result.plan, wait=_wait())
    click.echo(f"Imported {workbook.name} into {output}.")
    for line in result.summary():
        click.echo(line)
    if result.needs_person:
        sys.exit(EXIT_ATTENTION)


def main() -> None:
    configure_streams()  # any console encoding: marks it cannot show become ASCII, never an error
    cli(prog_name="daplan")


if __name__ == "__main__":  # pragma: no cover
    main()
