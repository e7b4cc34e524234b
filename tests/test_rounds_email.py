"""Reporting rounds by email: rounds in the record, drafts, sending, reminders, collecting replies, history."""

from __future__ import annotations

import datetime as dt
import json
import mailbox
import socket
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from conftest import FILES, make_plan
from make_mail_fixtures import ISSUE_ID, RECIPIENT, issued_workbook
from returns import ReturnEditor

from daplan_xlsx import journal as J
from daplan_xlsx import layout as L
from daplan_xlsx.cli import cli
from daplan_xlsx.planfile import load_plan, save_plan
from daplan_xlsx.record import append_lines
from daplan_xlsx.status import status_report
from daplan_xlsx.trust import issue_line

MAIL = FILES / "mail"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ADDRESSES = {
    "Chief Constable": "chief.constable@test.police.uk",
    "Head of Protect": "head.of.protect@test.police.uk; protect.pa@test.police.uk",
}


def run(*args: object, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        cli, [str(a) for a in args], prog_name="daplan", env={"DAPLAN_KEY_FILE": None, **(env or {})}
    )


def plan_with_addresses(tmp_path: Path, title: str | None = None) -> Path:
    plan = make_plan()
    for lead in plan.leads:
        lead.email = ADDRESSES.get(lead.name, "")
    if title is not None:
        plan.title = title
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    return path


def entries(plan_path: Path) -> list[dict[str, Any]]:
    return J.read_journal(J.journal_path(plan_path), load_plan(plan_path).revision)


def distribute(
    plan_path: Path, outbox: Path, *extra: object, round_name: str = "2027 Q1", due: str = "2027-03-20"
) -> Result:
    result = run("distribute", plan_path, "-o", outbox, "--round", round_name, "--return-by", due, *extra)
    assert result.exit_code in (0, 1), result.output
    return result


def manifest(outbox: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((outbox / "manifest.json").read_text(encoding="utf-8"))
    return data


def parse_eml(path: Path) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(msg, EmailMessage)
    return msg


# -- rounds ------------------------------------------------------------------------------------------------


def test_a_round_is_recorded_and_on_every_workbook(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    distribute(plan_path, tmp_path / "outbox")
    m = manifest(tmp_path / "outbox")
    assert (m["round"], m["return_by"]) == ("2027 Q1", "2027-03-20")
    lines = entries(plan_path)
    rounds = [e for e in lines if e["event"] == "round"]
    assert len(rounds) == 1 and rounds[0]["name"] == "2027 Q1" and rounds[0]["return_by"] == "2027-03-20"
    assert sorted(rounds[0]["issues"]) == sorted(wb["issue_id"] for wb in m["workbooks"])
    assert all(e["round"] == "2027 Q1" for e in lines if e["event"] == "issue")
    for wb in m["workbooks"]:
        book = openpyxl.load_workbook(tmp_path / "outbox" / wb["file"])
        about = {r[0]: r[1] for r in book[L.ABOUT_SHEET].iter_rows(values_only=True) if r[0]}
        assert about["Reporting round"] == "2027 Q1" and about["Return by"] == "20 March 2027"
        texts = [str(c) for row in book[L.ABOUT_SHEET].iter_rows(values_only=True) for c in row if c]
        assert any("email it back to the plan owner by 20 March 2027" in t for t in texts)


def test_a_plan_without_rounds_works_as_before(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    assert run("distribute", plan_path, "-o", tmp_path / "outbox").exit_code == 0
    assert "round" not in manifest(tmp_path / "outbox")
    report = status_report(load_plan(plan_path), plan_path, tmp_path / "outbox")
    assert report["round"] is None and report["rounds"] == []
    assert all(r["round"] == "" and r["days_left"] is None for r in report["recipients"])
    text = run("status", plan_path, tmp_path / "outbox").output
    assert "Round" not in text and "Return by" not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--round", "Q1"], "together"),
        (["--round", "Q1", "--return-by", "next week"], "not a date"),
        (["--round", "Q1\nBcc: x@y.z", "--return-by", "2027-03-20"], "cannot name a round"),
    ],
)
def test_a_bad_round_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    plan_path = plan_with_addresses(tmp_path)
    result = run("distribute", plan_path, "-o", tmp_path / "outbox", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "outbox").exists()


def test_status_before_and_after_the_return_by_date(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    outbox, inbox = tmp_path / "outbox", tmp_path / "inbox"
    distribute(plan_path, outbox)
    inbox.mkdir()
    wb = next(w for w in manifest(outbox)["workbooks"] if w["recipient"] == "Chief Constable")
    ReturnEditor(outbox / wb["file"]).set("LG-1", "notes", "done").save(inbox / "reply.xlsx")
    plan = load_plan(plan_path)

    before = status_report(plan, plan_path, outbox, inbox, today=dt.date(2027, 3, 15))
    assert before["round"] == {
        "name": "2027 Q1",
        "return_by": "2027-03-20",
        "days_left": 5,
        "today": "2027-03-15",
    }
    rows = {r["recipient"]: r for r in before["recipients"]}
    assert rows["Chief Constable"]["days_left"] is None and rows["Chief Constable"]["returned"] == [
        "reply.xlsx"
    ]
    assert rows["Head of Protect"]["days_left"] == 5 and rows["Head of Protect"]["outstanding"]

    after = status_report(plan, plan_path, outbox, inbox, today=dt.date(2027, 3, 23))
    rows = {r["recipient"]: r for r in after["recipients"]}
    assert rows["Head of Protect"]["days_left"] == -3
    from daplan_xlsx.status import render_status

    text = render_status(after)
    assert "Round 2027 Q1: return by 20 Mar 2027" in text and "3 days late" in text
    assert "(2 late)" in text
    assert "due in 5 days" in render_status(before)


def test_returns_count_against_the_round_they_were_issued_in(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    q1, q2, inbox = tmp_path / "q1", tmp_path / "q2", tmp_path / "inbox"
    distribute(plan_path, q1)
    distribute(plan_path, q2, round_name="2027 Q2", due="2027-06-20")
    inbox.mkdir()
    # A late return of the Q1 workbook, arriving during Q2.
    wb = next(w for w in manifest(q1)["workbooks"] if w["recipient"] == "Head of Protect")
    ReturnEditor(q1 / wb["file"]).set("LG-2", "notes", "late").save(inbox / "late.xlsx")
    plan = load_plan(plan_path)
    now = status_report(plan, plan_path, q2, inbox, today=dt.date(2027, 5, 1))
    assert now["round"]["name"] == "2027 Q2"
    assert all(not r["returned"] for r in now["recipients"]) and now["unmatched_files"] == []
    assert now["other_round_returns"] == [
        {"file": "late.xlsx", "round": "2027 Q1", "recipient": "Head of Protect"}
    ]
    earlier = status_report(plan, plan_path, None, inbox, round_name="2027 q1", today=dt.date(2027, 5, 1))
    assert earlier["round"]["name"] == "2027 Q1"
    rows = {r["recipient"]: r for r in earlier["recipients"]}
    assert rows["Head of Protect"]["returned"] == ["late.xlsx"] and rows["Chief Constable"]["days_left"] < 0
    result = run("status", plan_path, "-", inbox, "--round", "2027 Q1", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["round"]["name"] == "2027 Q1"
    result = run("status", plan_path, "--round", "2026 Q4")
    assert result.exit_code == 2 and "no round named" in result.output and "'2027 Q1'" in result.output
    summary = run("status", plan_path).output
    assert "2027 Q1" in summary and "2027 Q2" in summary


# -- drafts ---------------------------------------------------------------------------------------------------


def test_drafts_open_in_outlook_with_the_workbook_attached(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    outbox, drafts = tmp_path / "outbox", tmp_path / "drafts"
    result = distribute(plan_path, outbox, "--mail", drafts)
    assert result.exit_code == 1  # Area Commanders has no address: listed, not skipped in silence
    assert "Not emailed: Area Commanders: no email address" in result.output
    by_name = {wb["recipient"]: wb for wb in manifest(outbox)["workbooks"]}
    assert sorted(p.name for p in drafts.iterdir()) == ["chief-constable.eml", "head-of-protect.eml"]
    msg = parse_eml(drafts / "head-of-protect.eml")
    assert msg["X-Unsent"] == "1"
    assert [a.addr_spec for a in msg["To"].addresses] == [
        "head.of.protect@test.police.uk",
        "protect.pa@test.police.uk",
    ]
    assert msg["Subject"] == (
        "Test Constabulary Domestic Abuse Action Plan: 2027 Q1 update, please return by 20 March 2027"
    )
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    for body in (plain.get_content(), html.get_content()):
        assert "20 March 2027" in body and "Reply to this email with the workbook attached" in body
        assert "head-of-protect.xlsx" in body
    attachments = list(msg.iter_attachments())
    assert len(attachments) == 1
    att = attachments[0]
    assert att.get_content_type() == XLSX and att.get_filename() == "head-of-protect.xlsx"
    assert att.get_content() == (outbox / by_name["Head of Protect"]["file"]).read_bytes()
    assert b"\r\n" in (drafts / "head-of-protect.eml").read_bytes()[:200]
    assert not [e for e in entries(plan_path) if e["event"] == "mail"]  # drafts are not sent mail


def test_a_title_cannot_add_a_header_or_html(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path, title="Plan <script>alert(1)</script>\nBcc: spy@evil.example")
    outbox, drafts = tmp_path / "outbox", tmp_path / "drafts"
    distribute(plan_path, outbox)
    assert run("mail", plan_path, outbox, "-o", drafts).exit_code == 1
    raw = (drafts / "chief-constable.eml").read_bytes()
    msg = parse_eml(drafts / "chief-constable.eml")
    headers = raw.split(b"\r\n\r\n")[0]
    assert msg["Bcc"] is None and b"\nBcc:" not in headers
    assert "\n" not in str(msg["Subject"])
    html = msg.get_body(("html",))
    assert html is not None and "<script>" not in html.get_content()
    assert "&lt;script&gt;" in html.get_content()


def test_mail_needs_drafts_or_a_server(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    distribute(plan_path, tmp_path / "outbox")
    result = run("mail", plan_path, tmp_path / "outbox")
    assert result.exit_code == 2 and "-o FOLDER" in result.output
    result = run("mail", plan_path, tmp_path / "outbox", "-o", tmp_path / "outbox")
    assert result.exit_code == 2 and "folders given to read" in result.output


# -- sending ----------------------------------------------------------------------------------------------


class Recorder:
    """An aiosmtpd handler keeping what it received; refuses RCPT to `refuse`, drops the connection on the
    DATA of the message numbered `drop_at` (1-based)."""

    def __init__(
        self, refuse: tuple[str, ...] = (), drop_at: int | None = None, busy_at: int | None = None
    ) -> None:
        self.refuse = refuse
        self.drop_at = drop_at
        self.busy_at = busy_at
        self.received: list[tuple[list[str], bytes]] = []
        self.datas = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.datas += 1
        if self.busy_at == self.datas:
            return "451 4.3.0 try later"
        if self.drop_at is not None and self.datas >= self.drop_at:
            server.transport.close()
            return "421 closing"
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted"


def smtp_server(handler: Recorder) -> Any:
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def sent_plan(tmp_path: Path) -> tuple[Path, Path]:
    plan_path = plan_with_addresses(tmp_path)
    distribute(plan_path, tmp_path / "outbox")
    return plan_path, tmp_path / "outbox"


def mail_lines(plan_path: Path) -> list[dict[str, Any]]:
    return [e for e in entries(plan_path) if e["event"] == "mail"]


def test_sending_through_a_real_server_journals_each_message(sent_plan: tuple[Path, Path]) -> None:
    plan_path, outbox = sent_plan
    handler = Recorder(refuse=("protect.pa@test.police.uk",))
    controller = smtp_server(handler)
    try:
        result = run(
            "mail", plan_path, outbox, "--smtp", f"127.0.0.1:{controller.port}", "--from", "da.plan@test.police.uk",
            env={"DAPLAN_SMTP_USER": None, "DAPLAN_SMTP_PASSWORD": "not-in-any-file"},
        )  # fmt: skip
    finally:
        controller.stop()
    assert result.exit_code == 1, result.output  # a refused address and a recipient without one
    assert "Refused by the mail server for Head of Protect: protect.pa@test.police.uk (550" in result.output
    assert len(handler.received) == 2
    rcpts = sorted(r for to, _ in handler.received for r in to)
    assert rcpts == ["chief.constable@test.police.uk", "head.of.protect@test.police.uk"]
    for _to, data in handler.received:
        msg = BytesParser(policy=policy.default).parsebytes(data)
        assert msg["X-Unsent"] is None and msg["From"] == "da.plan@test.police.uk" and msg["Date"]
        assert next(msg.iter_attachments()).get_content_type() == XLSX
    lines = mail_lines(plan_path)
    by_recipient = {e["recipient"]: e for e in lines}
    assert set(by_recipient) == {"Chief Constable", "Head of Protect"}
    assert by_recipient["Head of Protect"]["to"] == ["head.of.protect@test.police.uk"]
    assert by_recipient["Head of Protect"]["via"] == f"smtp:127.0.0.1:{controller.port}"
    issued = {wb["recipient"]: wb["issue_id"] for wb in manifest(outbox)["workbooks"]}
    assert all(e["issue_id"] == issued[e["recipient"]] for e in lines)
    assert all(e["purpose"] == "request" and e["round"] == "2027 Q1" for e in lines)
    journal_text = J.journal_path(plan_path).read_text(encoding="utf-8")
    assert "not-in-any-file" not in journal_text


def test_a_dropped_connection_journals_only_what_was_sent(sent_plan: tuple[Path, Path]) -> None:
    plan_path, outbox = sent_plan
    handler = Recorder(drop_at=2)
    controller = smtp_server(handler)
    try:
        result = run(
            "mail",
            plan_path,
            outbox,
            "--smtp",
            f"127.0.0.1:{controller.port}",
            "--from",
            "da.plan@test.police.uk",
        )
    finally:
        controller.stop()
    assert result.exit_code == 1, result.output
    assert "connection to the mail server was lost" in result.output
    assert len(handler.received) == 1
    lines = mail_lines(plan_path)
    assert len(lines) == 1 and lines[0]["to"] == handler.received[0][0]


def test_a_message_put_off_by_the_server_leaves_the_rest_sent_and_a_rerun_sends_only_it(
    sent_plan: tuple[Path, Path],
) -> None:
    """451 "try later" for one message: the others still go; run again, only the one not sent goes."""
    plan_path, outbox = sent_plan
    args = ["mail", plan_path, outbox, "--from", "da.plan@test.police.uk"]
    handler = Recorder(busy_at=1)
    controller = smtp_server(handler)
    try:
        first = run(*args, "--smtp", f"127.0.0.1:{controller.port}")
        second = run(*args, "--smtp", f"127.0.0.1:{controller.port}")
    finally:
        controller.stop()
    assert first.exit_code == 1 and "the mail server refused it" in first.output, first.output
    assert "connection to the mail server was lost" not in first.output
    assert len(mail_lines(plan_path)) == 2  # every addressed recipient has had it once
    assert "Already sent to" in second.output and len(handler.received) == 2, second.output


def test_an_unreachable_server_is_one_line(sent_plan: tuple[Path, Path]) -> None:
    plan_path, outbox = sent_plan
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("mail", plan_path, outbox, "--smtp", f"127.0.0.1:{port}", "--from", "da.plan@test.police.uk")
    assert result.exit_code == 2 and "cannot reach the mail server" in result.output
    assert not mail_lines(plan_path)
    result = run("mail", plan_path, outbox, "--smtp", f"127.0.0.1:{port}", env={"DAPLAN_MAIL_FROM": None})
    assert result.exit_code == 2 and "--from" in result.output


# -- reminders ----------------------------------------------------------------------------------------------


def test_chase_reminds_only_the_outstanding(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    outbox, inbox, drafts = tmp_path / "outbox", tmp_path / "inbox", tmp_path / "reminders"
    distribute(plan_path, outbox)
    inbox.mkdir()
    wb = {w["recipient"]: w for w in manifest(outbox)["workbooks"]}
    ReturnEditor(outbox / wb["Chief Constable"]["file"]).set("LG-1", "status", "Nonsense").save(
        inbox / "cc.xlsx"
    )
    result = run("chase", plan_path, outbox, inbox, "-o", drafts)
    assert result.exit_code == 1  # Area Commanders is outstanding and has no address
    assert sorted(p.name for p in drafts.iterdir()) == ["reminder-head-of-protect.eml"]
    msg = parse_eml(drafts / "reminder-head-of-protect.eml")
    assert msg["Subject"].startswith("Reminder: ") and msg["X-Unsent"] == "1"
    body = msg.get_body(("plain",))
    assert body is not None and "reminder" in body.get_content()
    assert next(msg.iter_attachments()).get_content() == (outbox / wb["Head of Protect"]["file"]).read_bytes()
    # Merged with a refused value: an open item; --also-open writes to its lead too.
    assert run("merge", plan_path, inbox / "cc.xlsx").exit_code == 1
    result = run("chase", plan_path, outbox, inbox, "-o", drafts, "--also-open")
    assert (drafts / "reminder-chief-constable.eml").is_file()
    body = parse_eml(drafts / "reminder-chief-constable.eml").get_body(("plain",))
    assert body is not None and "could not be applied" in body.get_content()


# -- collecting replies ---------------------------------------------------------------------------------------


def record_fixture_issue(plan_path: Path) -> bytes:
    """Issue, in the test's plan, the workbook the mail fixtures carry (same plan, clock and issue id)."""
    folder = plan_path.parent / "fixture-issue"
    folder.mkdir()
    path, info = issued_workbook(folder)
    plan = load_plan(plan_path)
    append_lines(
        plan_path,
        [issue_line(info, file=str(path), plan_revision=plan.revision)],
    )
    return path.read_bytes()


def collect_lines(plan_path: Path) -> list[dict[str, Any]]:
    return [e for e in entries(plan_path) if e["event"] == "collect"]


def fixture_attachment() -> bytes:
    msg = parse_eml(MAIL / "reply-with-workbook.eml")
    data = next(msg.iter_attachments()).get_content()
    assert isinstance(data, bytes)
    return data


def test_the_fixture_workbook_is_the_issued_one(tmp_path: Path) -> None:
    """The same issue and metadata (the bytes of the zip may differ with another XlsxWriter)."""
    from daplan_xlsx.container import open_container
    from daplan_xlsx.reader import open_workbook, read_meta

    plan_path = plan_with_addresses(tmp_path)
    fresh = tmp_path / "fresh.xlsx"
    fresh.write_bytes(record_fixture_issue(plan_path))
    (tmp_path / "fixture.xlsx").write_bytes(fixture_attachment())
    metas = []
    for path in (fresh, tmp_path / "fixture.xlsx"):
        container = open_container(path)
        reading = read_meta(open_workbook(container), container, None, None)
        assert reading.meta is not None
        metas.append((reading.meta.issue_id, reading.meta.recipient, reading.checksum))
    assert metas[0] == metas[1] and metas[0][0] == ISSUE_ID


@pytest.mark.parametrize("name", ["reply-with-workbook.eml", "reply-with-workbook.msg"])
def test_collect_a_reply_twice_adds_nothing_the_second_time(tmp_path: Path, name: str) -> None:
    plan_path = plan_with_addresses(tmp_path)
    record_fixture_issue(plan_path)
    inbox = tmp_path / "inbox"
    result = run("collect", plan_path, MAIL / name, "-o", inbox)
    assert result.exit_code == 0, result.output
    assert [p.name for p in inbox.iterdir()] == ["head-of-protect.xlsx"]
    assert (inbox / "head-of-protect.xlsx").read_bytes() == fixture_attachment()
    (line,) = collect_lines(plan_path)
    assert line["issue_id"] == ISSUE_ID and line["recipient"] == RECIPIENT and line["flagged"] is False
    assert "head.of.protect@test.police.uk" in line["sender"]
    assert line["date"].startswith("2027-03-15T10:12") and "2027 Q1 update" in line["subject"]
    again = run("collect", plan_path, MAIL / name, "-o", inbox)
    assert again.exit_code == 0 and "Already in the inbox" in again.output
    assert len(list(inbox.iterdir())) == 1 and len(collect_lines(plan_path)) == 1


def test_collect_never_overwrites_and_flags_another_sender(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    data = record_fixture_issue(plan_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "head-of-protect.xlsx").write_bytes(b"someone else's file")
    msg = parse_eml(MAIL / "reply-with-workbook.eml")
    msg.replace_header("From", "Stranger <stranger@elsewhere.example>")
    (tmp_path / "stranger.eml").write_bytes(msg.as_bytes())
    result = run("collect", plan_path, tmp_path / "stranger.eml", "-o", inbox)
    assert result.exit_code == 1 and "FLAGGED" in result.output
    assert (inbox / "head-of-protect.xlsx").read_bytes() == b"someone else's file"
    assert (inbox / "head-of-protect (2).xlsx").read_bytes() == data
    (line,) = collect_lines(plan_path)
    assert line["flagged"] is True and "stranger@elsewhere.example" in line["reason"]


def test_collect_from_an_mbox_and_a_forwarded_message(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    data = record_fixture_issue(plan_path)
    reply = parse_eml(MAIL / "reply-with-workbook.eml")
    reply.add_attachment(b"minutes", maintype="text", subtype="plain", filename="minutes.txt")
    forward = EmailMessage(policy=policy.default)
    forward["From"] = "Staff Officer <protect.pa@test.police.uk>"
    forward["Subject"] = "FW: the Protect return"
    forward["Date"] = "Tue, 16 Mar 2027 09:00:00 +0000"
    forward.set_content("Forwarding the return below.")
    forward.add_attachment(reply)
    box = mailbox.mbox(str(tmp_path / "saved.mbox"))
    box.add(forward)
    other = EmailMessage()
    other["From"] = "x@test.police.uk"
    other["Subject"] = "lunch"
    other.set_content("no attachment")
    box.add(other)
    box.flush()
    box.close()
    inbox = tmp_path / "inbox"
    result = run("collect", plan_path, tmp_path / "saved.mbox", "-o", inbox)
    assert result.exit_code == 0, result.output
    assert "(forwarded)" in result.output and "Left (not a workbook): minutes.txt" in result.output
    assert "No attachment: saved.mbox #2: lunch" in result.output
    assert (inbox / "head-of-protect.xlsx").read_bytes() == data
    (line,) = collect_lines(plan_path)
    assert "head.of.protect@test.police.uk" in line["sender"]  # the innermost sender, not the forwarder
    assert not line["flagged"]


def test_a_real_outlook_message_with_a_forwarded_item(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    result = run("collect", plan_path, MAIL / "outlook-forward.msg", "-o", tmp_path / "inbox")
    assert result.exit_code == 0, result.output
    assert "0 workbook(s) saved" in result.output and not collect_lines(plan_path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("not.msg", b"just some text, not an Outlook item", "not an Outlook message"),
        ("empty.eml", b"", "the file is empty"),
        ("notes.eml", b"\x00\x01binary", "not a saved email"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    plan_path = plan_with_addresses(tmp_path)
    (tmp_path / name).write_bytes(content)
    result = run(
        "collect", plan_path, MAIL / "reply-with-workbook.eml", tmp_path / name, "-o", tmp_path / "inbox"
    )
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "inbox").exists() or not list((tmp_path / "inbox").iterdir())


def test_a_truncated_mbox_is_one_line(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    box = mailbox.mbox(str(tmp_path / "full.mbox"))
    box.add(parse_eml(MAIL / "reply-with-workbook.eml"))
    box.flush()
    box.close()
    raw = (tmp_path / "full.mbox").read_bytes()
    (tmp_path / "cut.mbox").write_bytes(raw[: len(raw) // 2])
    result = run("collect", plan_path, tmp_path / "cut.mbox", "-o", tmp_path / "inbox")
    assert result.exit_code == 2 and "cut short" in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- history ------------------------------------------------------------------------------------------------


def test_history_of_a_field_changed_in_three_rounds(tmp_path: Path) -> None:
    plan_path = plan_with_addresses(tmp_path)
    values = [("2027 Q1", "At risk"), ("2027 Q2", "On track"), ("2027 Q3", "Complete")]
    for n, (name, status) in enumerate(values, start=1):
        outbox = tmp_path / f"outbox{n}"
        distribute(plan_path, outbox, round_name=name, due=f"2027-0{3 * n}-20")
        wb = next(w for w in manifest(outbox)["workbooks"] if w["recipient"] == "Head of Protect")
        back = ReturnEditor(outbox / wb["file"]).set("LG-2", "status", status).save(tmp_path / f"r{n}.xlsx")
        assert run("merge", plan_path, back).exit_code == 0
    result = run("history", plan_path, "LG-2", "--field", "status", "--json")
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)
    assert [(e["round"], e["old"], e["new"]) for e in events] == [
        ("2027 Q3", "On track", "Complete"),
        ("2027 Q2", "At risk", "On track"),
        ("2027 Q1", "On track", "At risk"),
    ]
    assert all(e["who"] == "Head of Protect" and e["source"].startswith("r") for e in events)
    text = run("history", plan_path, "LG-2").output
    assert text.index("Complete") < text.index("At risk") and "[2027 Q2]" in text
    assert run("history", plan_path, "NOPE-1").exit_code == 2
