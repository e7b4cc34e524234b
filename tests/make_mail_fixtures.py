"""Saved emails for test_rounds_email.py's collect tests; run as a script, it rewrites them.

A workbook is issued from a fixed plan (make_plan()) with a fixed clock and issue id to Head of Protect,
unsigned, so it is rebuilt byte for byte anywhere; the test records that issue in its plan's journal. The
reply carrying it is written with the standard `email` package (`reply-with-workbook.eml`), and the same
message converted to an Outlook item (`reply-with-workbook.msg`) by aspose-email-foss (MIT, pure Python,
`MapiMessage.from_email_message`), the only maintained Python library found that writes .msg files. It is
needed only to rewrite the fixture, not to run the tests:

    pip install aspose-email-foss && python tests/make_mail_fixtures.py

`outlook-forward.msg` is not made here: it is a message saved by Outlook itself, from the msg-parser
package's test files (see tests/files/mail/README.md).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from email import policy
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FILES, fixed_clock, make_plan

from daplan_xlsx.writer import IssueInfo, write_workbook

MAIL = FILES / "mail"
ISSUE_ID = "6d3c1f0e-5b7a-4e2c-9a41-0f5d2b8c7e19"
RECIPIENT = "Head of Protect"
SENDER = "Head of Protect <head.of.protect@test.police.uk>"
WORKBOOK_NAME = "head-of-protect.xlsx"


def issued_workbook(folder: Path) -> tuple[Path, IssueInfo]:
    path = folder / WORKBOOK_NAME
    plan = make_plan()
    scope = [a.id for _, a in plan.iter_actions() if RECIPIENT in a.leads]
    info = write_workbook(plan, path, scope=scope, recipient=RECIPIENT, clock=fixed_clock, issue_id=ISSUE_ID)
    return path, info


def reply(workbook: bytes) -> EmailMessage:
    msg = EmailMessage(policy=policy.default)
    msg["From"] = SENDER
    msg["To"] = "Plan Owner <da.plan@test.police.uk>"
    msg["Subject"] = "RE: Test Constabulary Domestic Abuse Action Plan: 2027 Q1 update"
    msg["Date"] = "Mon, 15 Mar 2027 10:12:00 +0000"
    msg["Message-ID"] = "<reply-1@test.police.uk>"
    msg.set_content("Updated as asked; the workbook is attached.\n")
    msg.add_attachment(
        workbook,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=WORKBOOK_NAME,
    )
    return msg


def main() -> None:
    from aspose.email_foss.msg import MapiMessage

    with tempfile.TemporaryDirectory() as tmp:
        path, _info = issued_workbook(Path(tmp))
        msg = reply(path.read_bytes())
    eml = MAIL / "reply-with-workbook.eml"
    eml.write_bytes(msg.as_bytes(policy=policy.default.clone(linesep="\r\n")))
    MapiMessage.from_email_message(msg).save(MAIL / "reply-with-workbook.msg")
    print(f"Wrote {eml} and reply-with-workbook.msg ({dt.date.today()})")


if __name__ == "__main__":
    main()
