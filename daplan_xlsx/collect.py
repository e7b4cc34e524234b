"""Workbooks out of saved emails: the leads' replies into the inbox, ready to merge.

`daplan collect PLAN MESSAGE... -o INBOX` reads emails saved from the mail client, as `.eml` files, Outlook
`.msg` files (through extract-msg) or mbox files (Thunderbird, an export), looks through every attachment,
and inside forwarded messages (`message/rfc822`, an Outlook item attached to another) too. Each workbook
attachment (`.xlsx`, `.xlsm`) is saved into the inbox under a name of its own, never over a file already
there, and journalled (`collect` line: the email's sender, date and subject, the message file, the
attachment's SHA-256 and the issue it answers). An attachment whose bytes are already in the inbox is not
saved again, so collecting the same emails twice adds nothing.

The sender is checked against the recipient the workbook was issued to: an address that is not one of the
role's (in the lead register) is flagged, as is a workbook this plan did not issue. That is a finding for
the owner, not a refusal: `merge` still judges the workbook on its own metadata.

Every input is read before anything is written, so an input that is not an email (a `.msg` that is not an
Outlook message, an mbox cut short) stops the command with one line and nothing saved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mailbox
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.errors import CloseBoundaryNotFoundDefect, StartBoundaryNotFoundDefect
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any

from .errors import DaplanError, OutputExists
from .model import Plan

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
WORKBOOK_TYPES = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel.sheet.macroenabled.12",
)
# Spreadsheets merge cannot read: listed with what to ask the sender for.
OTHER_SHEETS = (".xls", ".ods", ".csv", ".numbers", ".xlsb")
MAX_MESSAGE_BYTES = 200 * 1024 * 1024  # as a return's own limit: an email larger than this is not a reply
MAX_NESTING = 10  # forwarded inside forwarded: deeper is a crafted message, not a reply
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}


class CollectError(DaplanError):
    """A saved email cannot be read."""

    hint = "save the email again from your mail client (as .eml or .msg), or leave that file out"


@dataclass
class Found:
    """One attachment, with the email it came in (the innermost one, for a forwarded message)."""

    source: Path
    name: str
    data: bytes
    content_type: str
    sender: str  # the address
    sender_text: str  # as the email gives it, name and address
    date: str  # ISO, or "" when the email has none that can be read
    subject: str
    forwarded: bool = False

    @property
    def is_workbook(self) -> bool:
        return Path(self.name).suffix.lower() in WORKBOOK_SUFFIXES or (
            self.content_type.lower() in WORKBOOK_TYPES and Path(self.name).suffix.lower() not in OTHER_SHEETS
        )


@dataclass
class Saved:
    found: Found
    path: Path
    sha256: str
    issue_id: str
    recipient: str
    flagged: bool
    reason: str


@dataclass
class CollectReport:
    saved: list[Saved] = field(default_factory=list)
    already: list[tuple[Found, str]] = field(default_factory=list)  # (attachment, the inbox file holding it)
    others: list[Found] = field(default_factory=list)  # attachments that are not workbooks
    empty: list[str] = field(default_factory=list)  # messages with no attachment at all (source: subject)
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> list[Saved]:
        return [s for s in self.saved if s.flagged]


# -- reading the inputs ------------------------------------------------------------------------------------


def read_messages(path: Path) -> tuple[list[Found], list[str]]:
    """Every attachment of the email(s) in `path`, and the messages in it that had none."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError as exc:
        raise CollectError("file not found", file=path, hint="check the path") from exc
    except OSError as exc:
        raise CollectError(f"cannot read the file: {exc.strerror or exc}", file=path) from exc
    if size > MAX_MESSAGE_BYTES:
        raise CollectError(
            f"the file is {size // (1024 * 1024)} MiB, more than an email with a workbook can be", file=path
        )
    if size == 0:
        raise CollectError("the file is empty", file=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".msg" or head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
            return _read_msg(path)
        if suffix in (".mbox", ".mbx") or head.startswith(b"From "):
            return _read_mbox(path)
        return _read_eml(path)
    except (ValueError, LookupError, TypeError) as exc:
        # The email package parses headers as they are asked for: a header forged to hold a line break or an
        # unknown charset surfaces here, from any of the readers.
        raise CollectError(
            "the email's headers are malformed, so its sender cannot be told for sure",
            file=path,
            hint="save the email again from your mail client, or leave this file out",
        ) from exc


def _parse(data: bytes, path: Path) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def _looks_like_email(msg: Message) -> bool:
    return any(msg.get(h) is not None for h in ("From", "Subject", "Date", "Message-ID", "MIME-Version"))


def _read_eml(path: Path) -> tuple[list[Found], list[str]]:
    msg = _parse(path.read_bytes(), path)
    if not _looks_like_email(msg):
        raise CollectError(
            "this is not a saved email (no From, Subject or Date header)",
            file=path,
            hint="save the email from your mail client as .eml or .msg, or leave this file out",
        )
    _check_whole(msg, path, "the email")
    found = _walk(msg, path, 0)
    return found, ([] if found else [f"{path.name}: {_subject(msg)}"])


def _read_mbox(path: Path) -> tuple[list[Found], list[str]]:
    with path.open("rb") as fh:
        if not fh.read(5) == b"From ":
            raise CollectError(
                "this is not an mbox file (it does not begin with a 'From ' line)",
                file=path,
                hint="export the folder from your mail client as mbox, or save the emails as .eml",
            )
    box = mailbox.mbox(str(path), create=False)
    found: list[Found] = []
    empty: list[str] = []
    try:
        keys = list(box.keys())
        for n, key in enumerate(keys, start=1):
            msg = _parse(box.get_bytes(key), path)
            _check_whole(msg, path, f"message {n} of {len(keys)}")
            mine = _walk(msg, path, 0)
            found += mine
            if not mine:
                empty.append(f"{path.name} #{n}: {_subject(msg)}")
    finally:
        box.close()
    return found, empty


def _check_whole(msg: Message, path: Path, what: str) -> None:
    """A message cut short (a truncated file) has a multipart without its closing boundary."""
    for part in msg.walk():
        if any(
            isinstance(d, (CloseBoundaryNotFoundDefect, StartBoundaryNotFoundDefect)) for d in part.defects
        ):
            raise CollectError(
                f"{what} is cut short (truncated): its attachments do not end",
                file=path,
                hint="save or export it again from your mail client",
            )


def _subject(msg: Message) -> str:
    return " ".join(str(msg.get("Subject", "") or "(no subject)").split())


def _header_date(msg: Message) -> str:
    raw = msg.get("Date")
    if not raw:
        return ""
    try:
        return parsedate_to_datetime(str(raw)).isoformat()
    except (TypeError, ValueError, IndexError):
        return ""


def _walk(msg: Message, path: Path, depth: int) -> list[Found]:
    """The attachments of `msg`, and of the messages forwarded inside it, each with its own sender."""
    if depth > MAX_NESTING:
        raise CollectError(f"forwarded messages are nested more than {MAX_NESTING} deep", file=path)
    sender_text = " ".join(str(msg.get("From", "") or "").split())
    sender = parseaddr(sender_text)[1]
    date, subject = _header_date(msg), _subject(msg)
    out: list[Found] = []

    def visit(part: Message) -> None:
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            for nested in inner if isinstance(inner, list) else [inner]:
                if isinstance(nested, Message):
                    out.extend(_forwarded(f) for f in _walk(nested, path, depth + 1))
            return
        if part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    visit(sub)
            return
        name = part.get_filename()
        if not name and (part is msg or part.get_content_disposition() != "attachment"):
            return  # a body, not an attachment
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            out.append(
                Found(
                    path,
                    name or "attachment",
                    payload,
                    part.get_content_type(),
                    sender,
                    sender_text,
                    date,
                    subject,
                )
            )

    visit(msg)
    return out


def _forwarded(f: Found) -> Found:
    f.forwarded = True
    return f


def _read_msg(path: Path) -> tuple[list[Found], list[str]]:
    try:
        import extract_msg
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise CollectError(
            "reading Outlook .msg files needs the extract-msg package",
            file=path,
            hint="reinstall daplan_xlsx (pip install daplan_xlsx), or save the email as .eml",
        ) from exc
    try:
        msg = extract_msg.openMsg(str(path), delayAttachments=False)
    except Exception as exc:  # the reader's many errors on untrusted input all mean one thing here
        raise CollectError(
            f"this is not an Outlook message ({' '.join(str(exc).split())[:80] or type(exc).__name__})",
            file=path,
            hint="save the email from Outlook again (File > Save As > Outlook Message Format), or as .eml",
        ) from exc
    try:
        found = _msg_attachments(msg, path, 0)
        subject = " ".join(str(getattr(msg, "subject", "") or "(no subject)").split())
    except CollectError:
        raise
    except Exception as exc:
        raise CollectError(
            f"the Outlook message is damaged ({' '.join(str(exc).split())[:80] or type(exc).__name__})",
            file=path,
        ) from exc
    finally:
        msg.close()
    return found, ([] if found else [f"{path.name}: {subject}"])


def _msg_attachments(msg: Any, path: Path, depth: int) -> list[Found]:
    from extract_msg.enums import AttachmentType

    if depth > MAX_NESTING:
        raise CollectError(f"forwarded messages are nested more than {MAX_NESTING} deep", file=path)
    sender_text = " ".join(str(getattr(msg, "sender", "") or "").split())
    name, sender = parseaddr(sender_text)
    if "@" not in sender:
        sender = _msg_sender_address(msg)
        if sender:
            sender_text = f"{name or sender_text} <{sender}>".strip()
    when = getattr(msg, "date", None)
    date = when.isoformat() if isinstance(when, dt.datetime) else ""
    subject = " ".join(str(getattr(msg, "subject", "") or "(no subject)").split())
    out: list[Found] = []
    for att in msg.attachments:
        if att.type == AttachmentType.MSG:
            out += [_forwarded(f) for f in _msg_attachments(att.data, path, depth + 1)]
            continue
        data = att.data
        if not isinstance(data, bytes):
            continue
        name = att.longFilename or att.shortFilename or "attachment"
        ctype = str(getattr(att, "mimetype", "") or "application/octet-stream")
        out.append(Found(path, name, data, ctype, sender, sender_text, date, subject))
    return out


def _msg_sender_address(msg: Any) -> str:
    """The sender's SMTP address from the item's properties when its headers do not give one: Exchange
    keeps an internal (X.500) address in PR_SENDER_EMAIL_ADDRESS and the SMTP one in PR_SENDER_SMTP_ADDRESS."""
    for prop in ("5D01", "0C1F", "0065", "5D02"):  # sender SMTP, sender, sent-representing, its SMTP
        try:
            value = msg.getStringStream(f"__substg1.0_{prop}")
        except Exception:  # a missing or damaged property: try the next
            continue
        if isinstance(value, str) and "@" in value and not value.upper().startswith("/O="):
            return value.strip()
    return ""


# -- saving into the inbox --------------------------------------------------------------------------------


def safe_name(name: str) -> str:
    """An attachment's name as a file name of the inbox: no folder part, nothing Windows refuses."""
    base = re.split(r"[/\\]", name)[-1]
    base = _UNSAFE.sub("_", base).strip().strip(".").strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = suffix.lower() if suffix.lower() in ("xlsx", "xlsm") else "xlsx"
    stem = stem[:100].rstrip(". ") or "attachment"
    if stem.split(".")[0].lower() in _RESERVED:
        stem = f"_{stem}"
    return f"{stem}.{suffix}"


def _write_new(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` under `name`, or `name (2)`, `name (3)` ... : never over a file that is there."""
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while True:
        candidate = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            fh = candidate.open("xb")
        except FileExistsError:
            n += 1
            continue
        try:
            with fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            candidate.unlink(missing_ok=True)
            raise
        return candidate


def _hashes(folder: Path) -> dict[str, str]:
    """SHA-256 -> name of every workbook already in the inbox."""
    out: dict[str, str] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in WORKBOOK_SUFFIXES:
            out.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), p.name)
    return out


def collect(
    plan: Plan,
    entries: Sequence[dict[str, Any]],
    messages: Iterable[Path],
    inbox: Path,
    *,
    plan_path: Path | None = None,
    now: Callable[[], dt.datetime],
    progress: Callable[[Path], None] | None = None,
) -> CollectReport:
    """Save every workbook attachment of `messages` into `inbox`; the journal lines are in the report
    (the caller appends them under the plan's lock)."""
    from .mail import addresses_of
    from .meta import MetaLimits
    from .record import check_output
    from .status import issue_id_of
    from .trust import register_of

    messages = list(messages)
    report = CollectReport()
    found: list[Found] = []
    for path in messages:  # every input read before anything is written
        mine, empty = read_messages(path)
        found += mine
        report.empty += empty
        if progress:
            progress(path)
    if inbox.exists() and not inbox.is_dir():
        raise OutputExists("the inbox is a file, not a folder", file=inbox, hint="name a folder")
    inbox.mkdir(parents=True, exist_ok=True)
    seen = _hashes(inbox)
    register = register_of(entries)
    limits = MetaLimits.for_plan(plan)
    for f in found:
        if not f.is_workbook:
            report.others.append(f)
            continue
        sha = hashlib.sha256(f.data).hexdigest()
        if sha in seen:
            report.already.append((f, seen[sha]))
            continue
        check_output(inbox / safe_name(f.name), plan_path=plan_path, inputs=messages, what="workbook")
        path = _write_new(inbox, safe_name(f.name), f.data)
        seen[sha] = path.name
        issue = issue_id_of(path, limits) or ""
        issued = register.get(issue)
        recipient = str(issued["recipient"]) if issued else ""
        flagged, reason = _judge_sender(plan, f, issue, recipient, issued is not None, addresses_of)
        report.saved.append(Saved(f, path, sha, issue, recipient, flagged, reason))
        report.lines.append(
            {
                "event": "collect",
                "time": now().isoformat(),
                "revision": plan.revision,
                "file": str(path),
                "sender": f.sender_text or f.sender,
                "date": f.date,
                "subject": f.subject,
                "issue_id": issue,
                "flagged": flagged,
                "reason": reason,
                "source": str(f.source),
                "sha256": sha,
                "recipient": recipient,
            }
        )
    return report


def _judge_sender(
    plan: Plan, f: Found, issue: str, recipient: str, known: bool, addresses_of: Any
) -> tuple[bool, str]:
    if not issue:
        return (
            True,
            "the workbook carries no daplan issue (not one daplan issued, or its metadata was removed)",
        )
    if not known:
        return True, "the workbook was not issued from this plan's record"
    addresses, _bad = addresses_of(plan, recipient)
    if not addresses:
        return False, f"sender not checked: the lead register has no address for {recipient}"
    if f.sender.casefold() in (a.casefold() for a in addresses):
        return False, ""
    who = f.sender or "an unknown sender"
    return True, f"sent by {who}, which is not an address of {recipient} ({', '.join(addresses)})"
