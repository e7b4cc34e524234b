"""Emails to the leads: a draft per recipient that opens in Outlook, ready to send, or sent over SMTP.

Each message goes to every address the lead register gives the recipient's role (`email:` of the lead;
several are separated by `;` or `,`), says what to do and by when in plain text and HTML, and carries the
recipient's workbook from the outbox. A draft is an `.eml` file with `X-Unsent: 1`, which Outlook opens as a
new message to send rather than a received one.

Text from the plan (its title, a lead's name, a round's name) reaches the headers only through the email
package's `EmailMessage` with `policy.default`, which encodes it and refuses a line break in a header, and
is first flattened to one line here, so a name cannot add a header (`Bcc:`) of its own. The HTML body
escapes every text.

Sending (`--smtp HOST[:PORT]`) uses STARTTLS whenever the server offers it; the user name and password
come from the environment (`DAPLAN_SMTP_USER`, `DAPLAN_SMTP_PASSWORD`), never from the command line or a
file, and a password is never sent over a connection that is not encrypted (except to this machine). Each
message the server accepted is journalled (`mail` line: to, subject, issue id, how, when) as soon as it is
accepted, so a dropped connection never leaves a message journalled that was not sent.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Any, Literal

from .errors import DaplanError
from .model import EMAIL_ADDRESS, Plan
from .rounds import days_left, long_date

XLSX_MAINTYPE = "application"
XLSX_SUBTYPE = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
USER_ENV, PASSWORD_ENV, FROM_ENV = "DAPLAN_SMTP_USER", "DAPLAN_SMTP_PASSWORD", "DAPLAN_MAIL_FROM"
DEFAULT_PORT = 587  # mail submission, what Exchange Online and most relays take
HEADER_TEXT_MAX = 200
Purpose = Literal["request", "reminder"]
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ADDRESS = EMAIL_ADDRESS


class MailError(DaplanError):
    """An email could not be built or the mail server could not be used."""

    hint = "check the mail server's name and port, and your network"


def one_line(text: str, limit: int = HEADER_TEXT_MAX) -> str:
    """Text for a header: control characters and line breaks become spaces, and it is cut to `limit`."""
    flat = " ".join(_CONTROLS.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def addresses_of(plan: Plan, recipient: str) -> tuple[list[str], list[str]]:
    """The role's addresses from the lead register, and the entries that are not addresses."""
    lead = next((x for x in plan.leads if x.name == recipient), None)
    if lead is None or not lead.email.strip():
        return [], []
    good: list[str] = []
    bad: list[str] = []
    for _name, addr in getaddresses([lead.email.replace(";", ",")]):
        if addr and _ADDRESS.fullmatch(addr) and len(addr) <= 254:
            if addr.casefold() not in (a.casefold() for a in good):
                good.append(addr)
        elif addr or _name:
            bad.append(addr or _name)
    if not good and not bad:
        bad.append(lead.email.strip())
    return good, bad


@dataclass
class Letter:
    """One recipient's email: the message, or why there is none."""

    recipient: str
    issue_id: str
    workbook: Path
    purpose: Purpose
    to: list[str] = field(default_factory=list)
    subject: str = ""
    round: str = ""
    message: EmailMessage | None = None
    problem: str = ""


@dataclass
class Sent:
    letter: Letter
    accepted: list[str]
    refused: dict[str, str]
    error: str = ""


def subject_for(plan: Plan, purpose: Purpose, round_name: str, return_by: dt.date | None) -> str:
    title = one_line(plan.title, 120)
    what = f"{round_name} update" if round_name else "update"
    if purpose == "reminder":
        by = f", due by {long_date(return_by)}" if return_by else ""
        return one_line(f"Reminder: {title}: {what}{by}")
    by = f", please return by {long_date(return_by)}" if return_by else ""
    return one_line(f"{title}: {what}{by}")


def _paragraphs(
    plan: Plan,
    recipient: str,
    workbook: str,
    actions: int,
    purpose: Purpose,
    round_name: str,
    return_by: dt.date | None,
    today: dt.date,
    open_items: int,
) -> tuple[list[str], list[str], list[str]]:
    """The body as paragraphs before the steps, the steps, and paragraphs after."""
    plan_name = one_line(plan.title, 300)
    which = f" for the {round_name} round" if round_name else ""
    by = f" by {long_date(return_by)}" if return_by else ""
    if purpose == "reminder" and open_items:
        intro = [
            f"Thank you for your update to the {plan_name}{which}. {open_items} of its values could not be "
            "applied as they stood and are being settled by the plan owner.",
            "Attached is your workbook as the plan now stands. Please check it and, if anything needs "
            f"correcting, return it{by}.",
        ]
    elif purpose == "reminder":
        if return_by is not None:
            left = days_left(return_by, today)
            when = (
                f"was due on {long_date(return_by)}"
                if left < 0
                else ("is due today" if left == 0 else f"is due by {long_date(return_by)}")
            )
        else:
            when = "has not reached us yet"
        intro = [
            f"This is a reminder: your update to the {plan_name}{which} {when}. If you have already sent it, "
            "thank you, and please ignore this message.",
            "Your workbook is attached again.",
        ]
    else:
        intro = [f"Please update your actions in the {plan_name}{which}, and return the workbook{by}."]
    steps = [
        f"Open the attached workbook, {workbook} ({actions} action{'s' if actions != 1 else ''}).",
        "Update the yellow cells: Response, Target, Due, Lead, Status and Notes. Pick Status and Lead from "
        "the lists.",
        "Save it as an Excel Workbook (.xlsx), keeping its name.",
        f"Reply to this email with the workbook attached{by}.",
    ]
    after = [
        "Please keep to this workbook: do not copy your rows into another one, as the file identifies your "
        "update. The About sheet explains each column.",
    ]
    return [f"Dear {recipient},", *intro], steps, after


def build_letter(
    plan: Plan,
    entry: dict[str, Any],
    outbox: Path,
    *,
    purpose: Purpose = "request",
    today: dt.date,
    open_items: int = 0,
) -> Letter:
    """The email for one workbook of the outbox's manifest (`entry`), or a Letter saying why there is none."""
    recipient = str(entry["recipient"])
    workbook = outbox / str(entry["file"])
    round_name = str(entry.get("round") or "")
    return_by = dt.date.fromisoformat(entry["return_by"]) if entry.get("return_by") else None
    letter = Letter(recipient, str(entry["issue_id"]), workbook, purpose, round=round_name)
    to, bad = addresses_of(plan, recipient)
    if not to:
        letter.problem = (
            f"no valid email address ({', '.join(bad)[:80]!r} is not one)"
            if bad
            else "no email address in the lead register"
        )
        return letter
    try:
        data = workbook.read_bytes()
    except OSError as exc:
        raise MailError(
            f"cannot read the workbook to attach: {exc.strerror or exc}",
            file=workbook,
            hint="name the outbox `daplan distribute` wrote, with its workbooks in it",
        ) from exc
    letter.to = to
    letter.subject = subject_for(plan, purpose, round_name, return_by)
    before, steps, after = _paragraphs(
        plan, recipient, workbook.name, len(entry["scope"]), purpose, round_name, return_by, today, open_items
    )
    msg = EmailMessage(policy=policy.default)
    msg["Subject"] = letter.subject
    name = one_line(recipient, 80)
    msg["To"] = [Address(display_name=name, addr_spec=a) for a in to]
    msg["X-Unsent"] = "1"  # Outlook opens the file as a new message to send
    msg["X-Daplan-Issue"] = letter.issue_id
    plain = "\n\n".join(
        [*before, "What to do:\n" + "\n".join(f"{n}. {s}" for n, s in enumerate(steps, 1)), *after]
    )
    msg.set_content(plain + "\n")
    esc = html.escape
    page = (
        '<!DOCTYPE html><html><body style="font-family: Calibri, Arial, sans-serif">'
        + "".join(f"<p>{esc(p)}</p>" for p in before)
        + "<p><strong>What to do:</strong></p><ol>"
        + "".join(f"<li>{esc(s)}</li>" for s in steps)
        + "</ol>"
        + "".join(f"<p>{esc(p)}</p>" for p in after)
        + "</body></html>\n"
    )
    msg.add_alternative(page, subtype="html")
    msg.add_attachment(data, maintype=XLSX_MAINTYPE, subtype=XLSX_SUBTYPE, filename=workbook.name)
    letter.message = msg
    return letter


def draft_bytes(msg: EmailMessage) -> bytes:
    """The message as an .eml file: CRLF line ends, as RFC 5322 and Outlook expect."""
    return msg.as_bytes(policy=policy.default.clone(linesep="\r\n"))


def draft_name(letter: Letter) -> str:
    stem = letter.workbook.stem
    return f"reminder-{stem}.eml" if letter.purpose == "reminder" else f"{stem}.eml"


def write_drafts(
    letters: Sequence[Letter],
    folder: Path,
    *,
    plan_path: Path | None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Each letter with a message as `FOLDER/<workbook>.eml` (reminders `reminder-<workbook>.eml`)."""
    from .planfile import atomic_write_bytes
    from .record import check_output

    prepare_folder(folder)
    paths = [folder / draft_name(x) for x in letters if x.message is not None]
    for path in paths:
        check_output(path, plan_path=plan_path, what="email draft")
    written = []
    for letter, path in zip([x for x in letters if x.message is not None], paths, strict=True):
        assert letter.message is not None
        atomic_write_bytes(path, draft_bytes(letter.message))
        written.append(path)
        if progress:
            progress(letter.recipient)
    return written


def prepare_folder(folder: Path) -> None:
    from .errors import OutputExists

    if folder.exists() and not folder.is_dir():
        raise OutputExists("the output is a file, not a folder", file=folder, hint="name a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputExists(
            f"cannot create the folder: {exc.strerror or exc}", file=folder, hint="check the path"
        ) from exc


def parse_server(text: str) -> tuple[str, int]:
    """`HOST[:PORT]` -> (host, port); `[::1]:2525` for an IPv6 address."""
    value = text.strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\s\[\]]+)(?::(\d+))?", value)
    if not m:
        raise MailError(f"{text[:60]!r} is not a mail server", hint="give it as HOST or HOST:PORT")
    host = m[1] or m[3]
    port = int(m[2] or m[4] or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise MailError(
            f"{port} is not a port number", hint="give it as HOST:PORT, e.g. smtp.example.org:587"
        )
    return host, port


def check_sender(sender: str | None) -> str:
    value = (sender or os.environ.get(FROM_ENV, "")).strip()
    if not value or not _ADDRESS.fullmatch(value):
        raise MailError(
            "sending needs your own address as the sender"
            if not value
            else f"{value[:60]!r} is not an address",
            hint=f"give --from you@force.police.uk (or set {FROM_ENV})",
        )
    return value


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def send_letters(
    letters: Sequence[Letter],
    server: str,
    *,
    sender: str,
    now: Callable[[], dt.datetime],
    journal: Callable[[Letter, list[str], str, str], None],
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> list[Sent]:
    """Send each letter that has a message; `journal(letter, accepted, via, time)` as each is accepted.

    A refused recipient is reported and the message still counts as sent to the others. When the
    connection drops, the message in hand and every one after it are reported as not sent.
    """
    host, port = parse_server(server)
    via = f"smtp:{host}:{port}"
    user, password = os.environ.get(USER_ENV, ""), os.environ.get(PASSWORD_ENV, "")
    todo = [x for x in letters if x.message is not None]
    out: list[Sent] = []
    if not todo:
        return out
    try:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"cannot reach the mail server: {exc}", file=f"{host}:{port}") from exc
    try:
        try:
            smtp.ehlo()
            encrypted = False
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                encrypted = True
            if user:
                if not encrypted and not _loopback(host):
                    raise MailError(
                        "the mail server does not offer encryption (STARTTLS), so your password was not sent",
                        file=f"{host}:{port}",
                        hint="use the server's submission port (usually 587), or ask IT which server to use",
                    )
                smtp.login(user, password)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(
                "the mail server refused the user name and password",
                file=f"{host}:{port}",
                hint=f"check {USER_ENV} and {PASSWORD_ENV}",
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"the mail server could not be used: {exc}", file=f"{host}:{port}") from exc
        lost = ""
        for letter in todo:
            assert letter.message is not None
            if lost:
                out.append(Sent(letter, [], {}, lost))
                continue
            msg = _for_sending(letter.message, sender, now())
            try:
                refused = smtp.send_message(msg, from_addr=sender, to_addrs=letter.to)
            except smtplib.SMTPRecipientsRefused as exc:
                out.append(Sent(letter, [], {a: _reply(r) for a, r in exc.recipients.items()}, "refused"))
                continue
            except smtplib.SMTPServerDisconnected as exc:
                lost = f"not sent: the connection to the mail server was lost ({exc or 'closed'})"
                out.append(Sent(letter, [], {}, lost))
                continue
            except smtplib.SMTPException as exc:
                # Before OSError, of which it is a kind: a refusal of one message (451 "try later") leaves
                # the connection usable for the next.
                out.append(Sent(letter, [], {}, f"not sent: the mail server refused it ({exc})"))
                continue
            except OSError as exc:
                lost = f"not sent: the connection to the mail server was lost ({exc or 'closed'})"
                out.append(Sent(letter, [], {}, lost))
                continue
            accepted = [a for a in letter.to if a not in refused]
            journal(letter, accepted, via, now().isoformat())
            out.append(Sent(letter, accepted, {a: _reply(r) for a, r in refused.items()}))
            if progress:
                progress(letter.recipient)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return out


def _reply(code_and_text: Any) -> str:
    try:
        code, text = code_and_text
        return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
    except (TypeError, ValueError):
        return str(code_and_text)


def _for_sending(draft: EmailMessage, sender: str, when: dt.datetime) -> EmailMessage:
    """The draft as it goes out: no X-Unsent, with From, Date and a Message-ID."""
    import copy

    msg = copy.deepcopy(draft)
    del msg["X-Unsent"]
    msg["From"] = sender
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    return msg


def mail_line(letter: Letter, accepted: list[str], via: str, time: str, revision: int) -> dict[str, Any]:
    return {
        "event": "mail",
        "time": time,
        "revision": revision,
        "to": accepted,
        "subject": letter.subject,
        "issue_id": letter.issue_id,
        "via": via,
        "recipient": letter.recipient,
        "round": letter.round,
        "purpose": letter.purpose,
    }


def request_letters(
    plan: Plan, outbox: Path, manifest: dict[str, Any], *, today: dt.date, only: str | None = None
) -> list[Letter]:
    """The request for each workbook of the outbox (or just the recipient `only` names)."""
    from .distribute import is_named

    return [
        build_letter(plan, wb, outbox, purpose="request", today=today)
        for wb in manifest["workbooks"]
        if only is None or is_named(wb["recipient"], only)
    ]


def reminder_letters(
    plan: Plan,
    outbox: Path,
    report: dict[str, Any],
    manifest: dict[str, Any],
    *,
    today: dt.date,
    also_open: bool,
) -> list[Letter]:
    """A reminder for each recipient whose return is outstanding (and, with `also_open`, each whose return
    left open items), with the workbook the outbox holds for them now."""
    entries = {wb["issue_id"]: wb for wb in manifest["workbooks"]}
    out = []
    for row in report["recipients"]:
        entry = entries.get(row["issue_id"])
        if entry is None:
            continue
        if row["outstanding"]:
            out.append(build_letter(plan, entry, outbox, purpose="reminder", today=today))
        elif also_open and row["open_items"]:
            out.append(
                build_letter(
                    plan, entry, outbox, purpose="reminder", today=today, open_items=row["open_items"]
                )
            )
    return out
