"""`daplan demo`: the whole loop on the bundled West Yorkshire example, for a newcomer.

This module prepares the demo folder and makes the sample returns: the leads' edits, made with openpyxl the
way a recipient types into Excel. The command itself (in cli.py) then runs the real commands on them, so
what the newcomer sees is exactly what they will see on their own plan.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout as L
from .errors import OutputExists, PlanFileError
from .templates import examples_dir

EXAMPLE = "west-yorkshire-2014.yaml"
LABEL = "[Sample edit made by daplan demo]"


@dataclass(frozen=True)
class SampleEdit:
    recipient: str
    action_id: str
    field: str  # an area-table column key (layout.AREA_COLUMNS)
    value: str | dt.date
    why: str  # what the edit shows the newcomer


# Chosen so the merge shows each outcome: applied changes, one conflict (two leads of LG-2 rewrite its
# response differently) and one value refused (a status that is not in the list, as a paste can give).
SAMPLE_EDITS: tuple[SampleEdit, ...] = (
    SampleEdit("ACC Domestic Abuse", "LG-4", "status", "Complete", "a status moved on"),
    SampleEdit(
        "ACC Domestic Abuse",
        "LG-4",
        "response",
        f"{LABEL} The audit of the domestic abuse training was completed in March 2015.",
        "a response rewritten",
    ),
    SampleEdit(
        "ACC Domestic Abuse",
        "LG-2",
        "response",
        f"{LABEL} The ACC chairs the Domestic Abuse Strategic Board every quarter.",
        "one side of a conflict",
    ),
    SampleEdit(
        "Chief Constable",
        "LG-2",
        "response",
        f"{LABEL} The Chief Constable reviews domestic abuse performance every month.",
        "the other side of the conflict",
    ),
    SampleEdit("Area Commanders", "MV-1", "due", dt.date(2015, 3, 31), "a due date that has passed"),
    SampleEdit("Area Commanders", "FR-3", "status", "Finished", "an invalid status, refused"),
    SampleEdit("Head crime training", "LN-2", "target", "March 2016", "a new target"),
)


# The plan owner's sample edits in the owner's workbook (`daplan edit`): a lead role added, and given to LG-1
# (the published plan prints no lead for it), and a glossary term. Each text is labelled as a sample.
OWNER_ROLE = "Head of Safeguarding (sample role)"
OWNER_EDITS: tuple[tuple[str, str], ...] = (
    ("Leads", f"a new lead role, {OWNER_ROLE!r}"),
    ("LG-1", f"its lead, {OWNER_ROLE!r} (the published plan prints none)"),
    ("Glossary", "a new term, 'IDVA'"),
)


def write_owner_sample(owner: Path, target: Path) -> Path:
    """The owner's workbook with the sample edits of OWNER_EDITS made, as the owner would type them."""
    import openpyxl

    wb = openpyxl.load_workbook(owner)
    _new_register_row(wb["Leads"], {"Role": OWNER_ROLE, "Notes": LABEL})
    _find_cell(wb, "LG-1", "lead").value = OWNER_ROLE
    _new_register_row(
        wb["Glossary"], {"Term": "IDVA", "Definition": f"{LABEL} Independent Domestic Violence Adviser"}
    )
    wb.properties.lastModifiedBy = "Plan owner (sample)"
    wb.save(target)
    return target


def _new_register_row(ws: Any, values: dict[str, str]) -> None:
    """Fill the first empty row of a register sheet (Leads, Glossary): a new entry, with no hidden key."""
    columns = {c.value: c.column for c in ws[1] if isinstance(c.value, str)}
    row = 2
    while any(ws.cell(row, c).value not in (None, "") for c in columns.values()):
        row += 1
    for header, value in values.items():
        cell = ws.cell(row, columns[header])
        cell.value = value
        cell.data_type = "s"


def prepare_folder(folder: Path, force: bool) -> Path:
    """Make the demo folder and copy the example plan into it; return the plan's path."""
    if folder.exists() and not folder.is_dir():
        raise OutputExists("this is a file, not a folder", file=folder, hint="name a folder for the demo")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise OutputExists(
            "the folder is not empty", file=folder, hint="name a new folder, or add --force to reuse it"
        )
    if force and folder.is_dir():
        for sub in ("outbox", "inbox", "drafts", "reminders", "saved-mail"):
            shutil.rmtree(folder / sub, ignore_errors=True)
        for name in ("plan.yaml", "plan.journal.jsonl", "owner.xlsx", "owner-edited.xlsx"):
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    source = examples_dir() / EXAMPLE
    if not source.is_file():
        raise PlanFileError("the bundled example is missing", file=source, hint="reinstall daplan_xlsx")
    plan_path = folder / "plan.yaml"
    shutil.copyfile(source, plan_path)
    _give_addresses(plan_path)
    (folder / "inbox").mkdir()
    return plan_path


# The demo's leads get addresses on the reserved `.example` domain (RFC 2606), which no mail reaches.
DEMO_DOMAIN = "west-yorkshire.example"
EMAILED = "ACC Domestic Abuse"  # the lead whose reply comes back as a saved email, to be collected


def demo_address(lead: str) -> str:
    return f"{slug_name(lead).replace('-', '.')}@{DEMO_DOMAIN}"


def slug_name(name: str) -> str:
    from .distribute import slug

    return slug(name)


def _give_addresses(plan_path: Path) -> None:
    """Every lead role of the copied plan gets an address, as the owner fills in the register's `email:`."""
    from .planfile import load_plan, save_plan

    plan = load_plan(plan_path)
    for lead in plan.leads:
        lead.email = demo_address(lead.name)
    save_plan(plan, plan_path)


def write_sample_reply(workbook: Path, draft: Path, saved_mail: Path, plan_owner: str) -> Path:
    """The lead's reply to their draft, saved from the mail client as .eml, the edited workbook attached;
    the workbook itself is taken out of the inbox, so `daplan collect` puts it there."""
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser

    from .mail import XLSX_MAINTYPE, XLSX_SUBTYPE

    request = BytesParser(policy=policy.default).parsebytes(draft.read_bytes())
    reply = EmailMessage(policy=policy.default)
    reply["From"] = f"{EMAILED} <{demo_address(EMAILED)}>"
    reply["To"] = plan_owner
    reply["Subject"] = f"RE: {request['Subject']}"
    reply["Date"] = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
    reply.set_content(f"{LABEL} Updated as asked; the workbook is attached.\n")
    reply.add_attachment(
        workbook.read_bytes(), maintype=XLSX_MAINTYPE, subtype=XLSX_SUBTYPE, filename=workbook.name
    )
    saved_mail.mkdir(exist_ok=True)
    target = saved_mail / f"RE {workbook.stem}.eml"
    target.write_bytes(reply.as_bytes(policy=policy.default.clone(linesep="\r\n")))
    workbook.unlink()
    return target


def write_sample_returns(manifest: dict[str, Any], outbox: Path, inbox: Path) -> list[Path]:
    """Each recipient with sample edits: their issued workbook, edited and saved into the inbox."""
    import openpyxl

    files = {wb["recipient"]: wb["file"] for wb in manifest["workbooks"]}
    written = []
    for recipient in dict.fromkeys(e.recipient for e in SAMPLE_EDITS):
        name = files[recipient]
        wb = openpyxl.load_workbook(outbox / name)
        for edit in (e for e in SAMPLE_EDITS if e.recipient == recipient):
            cell = _find_cell(wb, edit.action_id, edit.field)
            cell.value = edit.value
            if isinstance(edit.value, str):
                cell.data_type = "s"  # typed text stays text, whatever it starts with
        wb.properties.lastModifiedBy = f"{recipient} (sample)"
        target = inbox / name
        wb.save(target)
        written.append(target)
    return written


def _find_cell(wb: Any, action_id: str, field: str) -> Any:
    header = L.COLUMN_BY_KEY[field].header
    for ws in wb.worksheets:
        columns = {c.value: c.column for c in ws[L.HEADER_ROW + 1] if isinstance(c.value, str)}
        if "ID" not in columns or header not in columns:
            continue
        for row in ws.iter_rows(min_row=L.FIRST_DATA_ROW + 1, min_col=columns["ID"], max_col=columns["ID"]):
            if row[0].value == action_id:
                return ws.cell(row[0].row, columns[header])
    raise KeyError(f"{action_id} is not in the workbook")  # the sample edits name issued actions only
