"""Returns that lie: each case is what an untrusted file from someone's laptop can do, and what the command
line promises about it: no traceback; one line and exit 2 for a file that cannot be used; a finding and exit
1 for a refused value; the plan file byte-identical where nothing may apply. Forgeries are made as an
attacker would: decode the metadata, change it, recompute the checksum.
"""

from __future__ import annotations

import base64
import json
import os
import re
import resource
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, make_plan
from packages import rezip, sheet_part
from returns import HEADER_ROW, Loop, ReturnEditor, write_cell, write_formula

from daplan_xlsx import meta as M
from daplan_xlsx import signing
from daplan_xlsx.cli import cli
from daplan_xlsx.model import EXCEL_CELL_LIMIT, Lead, Plan
from daplan_xlsx.planfile import save_plan
from daplan_xlsx.writer import write_workbook

LG = "Leadership and Governance"
IC = "Initial Contact"
HOP = "Head of Protect"  # issued LG-1 and LG-2, both on the LG sheet (rows 6 and 7)
AC = "Area Commanders"  # issued LG-L1 and IC-1
MEMORY_LIMIT = 500 * 1024 * 1024
TIME_LIMIT = 20.0
VT = "\x0b"
ESC = "\x1b"


# -- running the command line --------------------------------------------------------------------------------


def assert_plan_unchanged(now: bytes, before: bytes) -> None:
    """Nothing applied: the plan holds what it held. A merge that kept refused values as open items is still a
    commit of the record, so only the revision line may differ."""
    line = re.compile(rb"(?m)^revision: \d+$")
    assert line.sub(b"revision: -", now) == line.sub(b"revision: -", before)


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="daplan", env={"DAPLAN_KEY_FILE": None})


def assert_no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def assert_one_line_error(result: Result, *phrases: str) -> str:
    """Exit 2, no traceback, exactly one `Error: ` line on stderr holding each phrase."""
    assert result.exit_code == 2, result.output
    assert_no_traceback(result)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("Error: "), f"not one line: {err!r}"
    for phrase in phrases:
        assert phrase.casefold() in err.casefold(), f"{phrase!r} not in {err!r}"
    return err


def merge_json(loop: Loop, *args: object) -> tuple[Result, dict[str, Any]]:
    result = run("merge", loop.plan_path, *args, "--json")
    assert_no_traceback(result)
    return result, (json.loads(result.stdout) if result.exit_code in (0, 1) else {})


def diff_json(loop: Loop, path: Path) -> dict[str, Any]:
    result = run("diff", loop.plan_path, path, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def findings(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in data["findings"] if f["kind"] == kind]


def rejected(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in data["items"] if i["outcome"] == "rejected"]


def daplan_process(
    args: list[str], *, limit_memory: bool = False, encoding: str | None = None
) -> tuple[int, bytes, bytes, float]:
    """`python -m daplan_xlsx ARGS` in its own process (address space capped at 500 MB when asked, stdout in
    `encoding` when given); exit code, stdout, stderr and seconds taken."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAPLAN_KEY_FILE", "PYTHONIOENCODING")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    if encoding:
        env["PYTHONIOENCODING"] = encoding

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "daplan_xlsx", *args],
        capture_output=True,
        env=env,
        timeout=120,
        preexec_fn=cap if limit_memory else None,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


# -- making hostile returns ----------------------------------------------------------------------------------


@pytest.fixture
def loop(tmp_path: Path) -> Loop:
    return Loop(tmp_path, make_plan())


def swap_ids(ed: ReturnEditor, a: str, b: str) -> ReturnEditor:
    """What "sort selection only" on the ID column does: two rows' IDs change places, nothing else."""
    cell_a, cell_b = ed.cell(a, "id"), ed.cell(b, "id")
    write_cell(cell_a, b)
    write_cell(cell_b, a)
    return ed


def header_cell(ed: ReturnEditor, sheet: str, field: str) -> Any:
    ws = ed.sheet(sheet)
    return ws.cell(HEADER_ROW, ed.columns(ws)[field])


def blobs(rows: list[list[Any]]) -> tuple[bytes, bytes]:
    """The compressed header and base values of a metadata sheet, as stored."""
    n_header, n_base = (int(x) for x in str(rows[4][1]).split())
    first = M.FIRST_CHUNK_ROW
    chunks = [str(rows[first + i][0] or "") for i in range(n_header + n_base)]
    return base64.b64decode("".join(chunks[:n_header])), base64.b64decode("".join(chunks[n_header:]))


def forge(
    src: Path,
    dst: Path,
    *,
    header: Callable[[dict[str, Any]], None] | bytes | None = None,
    base: bytes | None = None,
    counts: str | None = None,
    checksum: bool = True,
) -> Path:
    """The return `src` with its metadata rewritten the way an attacker would: the header decoded, changed
    (or replaced by raw compressed bytes) and encoded again, the base values replaced, the checksum
    recomputed; the chunk counts set to anything."""
    ed = ReturnEditor(src)
    ws = ed.meta_sheet()
    rows = ed.meta_rows()
    h, b = blobs(rows)
    if callable(header):
        data = json.loads(zlib.decompress(h))
        header(data)
        h = zlib.compress(json.dumps(data, ensure_ascii=False).encode())
    elif header is not None:
        h = header
    if base is not None:
        b = base
    for row in ws.iter_rows(min_row=M.FIRST_CHUNK_ROW + 1):
        for cell in row:
            cell.value = None
    row_no = M.FIRST_CHUNK_ROW + 1
    n = []
    for blob in (h, b):
        text = base64.b64encode(blob).decode()
        parts = [text[i : i + M.CHUNK] for i in range(0, len(text), M.CHUNK)] or [""]
        n.append(len(parts))
        for part in parts:
            write_cell(ws.cell(row_no, 1), part)
            row_no += 1
    write_cell(ws["B5"], counts or f"{n[0]} {n[1]}")
    if checksum:
        write_cell(ws["B3"], signing.checksum(M._signed_bytes(h, b)))
    return ed.save(dst)


def edit_sheet_xml(src: Path, dst: Path, sheet: str, cell: str, xml: bytes) -> Path:
    """The return with one cell of a sheet replaced by raw XML (what Excel writes for an error value)."""
    part = sheet_part(src, sheet)

    def edit(name: str, data: bytes) -> bytes:
        if name != part:
            return data
        data, n = re.subn(rb'<c r="' + cell.encode() + rb'"[^>]*?(/>|>.*?</c>)', xml, data, count=1)
        assert n == 1, cell
        return data

    return rezip(src, dst, edit)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """2 GiB of zeros deflated: about 2 MB, and a few KB once the workbook's own zip deflates its base64."""
    c = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    return b"".join([*(c.compress(zeros) for _ in range(2048)), c.flush()])


def assert_bounded(args: list[str], *phrases: str) -> str:
    code, out, err, seconds = daplan_process(args, limit_memory=True)
    text = err.decode("utf-8", "replace")
    assert code == 2, (code, out[-500:], text[-2000:])
    assert "Traceback" not in text and "MemoryError" not in text, text[-2000:]
    assert text.count("\n") == 1 and text.startswith("Error: "), text
    for phrase in phrases:
        assert phrase.casefold() in text.casefold(), text
    assert seconds < TIME_LIMIT, seconds
    return text


# == 1. Row identity ==========================================================================================


def sorted_id_column(loop: Loop) -> Path:
    """Head of Protect edits both rows, then sorts the ID column on its own: the IDs swap rows."""
    ed = loop.editor(HOP)
    ed.set("LG-1", "response", "Response written for LG-1").set("LG-1", "target", "Target for LG-1")
    ed.set("LG-2", "status", "Complete").set("LG-2", "notes", "Notes written for LG-2")
    return swap_ids(ed, "LG-1", "LG-2").save(loop.inbox / "sorted.xlsx")


def test_sorted_id_column_applies_nothing_crosswise(loop: Loop) -> None:
    f = sorted_id_column(loop)
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert [i for i in data["items"] if i["outcome"] == "applied"] == []
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_sorted_id_column_finding_names_both_ids_and_the_cells(loop: Loop) -> None:
    data = diff_json(loop, sorted_id_column(loop))
    assert data["items"] == []
    rows = [f for f in findings(data, "locked-changed") if not f["field"]]
    assert {(f["action_id"], f["cell"]) for f in rows} == {("LG-1", "A7"), ("LG-2", "A6")}
    first = next(f for f in rows if f["action_id"] == "LG-2")
    assert "LG-2" in first["message"] and "LG-1" in first["message"]
    assert "B6" in first["message"] and "C6" in first["message"]


def test_sorted_id_column_keeps_every_value_as_rejected(loop: Loop) -> None:
    result, data = merge_json(loop, sorted_id_column(loop), "--dry-run")
    assert result.exit_code == 1
    values = {(i["action_id"], i["field"], i["new"]) for i in rejected(data)}
    # The row of LG-1's text now says LG-2: its values are kept, refused, against LG-2.
    assert ("LG-2", "response", "Response written for LG-1") in values
    assert ("LG-1", "notes", "Notes written for LG-2") in values


def test_sorted_id_column_diff_text_says_what_to_do(loop: Loop) -> None:
    result = run("diff", loop.plan_path, sorted_id_column(loop), "--exit-code")
    assert result.exit_code == 1
    assert "holds the Ref and Action of LG-1" in " ".join(result.stdout.split())
    assert "0 change(s)" in result.stdout


def test_ref_changed_refuses_the_whole_row(loop: Loop) -> None:
    ed = loop.editor(HOP).set("LG-2", "ref", "2a").set("LG-2", "response", "Changed with the Ref")
    f = ed.save(loop.inbox / "ref.xlsx")
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert {(i["field"], i["new"]) for i in rejected(data)} >= {
        ("ref", "2a"),
        ("response", "Changed with the Ref"),
    }
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_action_made_a_formula_refuses_the_whole_row(loop: Loop) -> None:
    ed = loop.editor(HOP).formula("LG-1", "action", '="There is a named domestic abuse chief officer lead."')
    f = ed.set("LG-1", "status", "On track").save(loop.inbox / "formula-action.xlsx")
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert any(i["field"] == "status" and i["action_id"] == "LG-1" for i in rejected(data))
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_renamed_response_header_is_a_problem(loop: Loop) -> None:
    ed = loop.editor(HOP).set("LG-2", "response", "An edit under a renamed header")
    write_cell(header_cell(ed, LG, "response"), "Progress update")
    f = ed.save(loop.inbox / "renamed.xlsx")
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    (missing,) = [f for f in data["findings"] if f["kind"] == "column-missing"]
    assert missing["severity"] == "problem" and missing["sheet"] == LG and "'Response'" in missing["message"]
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_renamed_header_makes_diff_exit_code_1(loop: Loop) -> None:
    ed = loop.editor(HOP)
    write_cell(header_cell(ed, LG, "notes"), "Comments")
    result = run("diff", loop.plan_path, ed.save(loop.inbox / "notes.xlsx"), "--exit-code")
    assert result.exit_code == 1
    assert "Notes" in result.stdout and LG in result.stdout


def test_second_response_column_is_a_problem_and_its_values_are_kept(loop: Loop) -> None:
    ed = loop.editor(HOP)
    ws = ed.sheet(LG)
    extra = ws.max_column + 1
    write_cell(ws.cell(HEADER_ROW, extra), "Response")
    _, row = ed.locate("LG-2")
    write_cell(ws.cell(row, extra), "Typed into the second Response column")
    f = ed.save(loop.inbox / "two-responses.xlsx")
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert [f["sheet"] for f in data["findings"] if f["kind"] == "column-duplicated"] == [LG]
    assert ("LG-2", "response", "Typed into the second Response column") in {
        (i["action_id"], i["field"], i["new"]) for i in rejected(data)
    }
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


# == 2. Bounded metadata ======================================================================================


def test_header_bomb_is_refused_in_bounded_memory(loop: Loop, bomb: bytes) -> None:
    f = forge(loop.issued(HOP), loop.inbox / "header-bomb.xlsx", header=bomb)
    assert f.stat().st_size < 100_000
    assert_bounded(["diff", str(loop.plan_path), str(f)], "compression bomb", f.name)


def test_base_bomb_is_refused_in_bounded_memory(loop: Loop, bomb: bytes) -> None:
    f = forge(loop.issued(HOP), loop.inbox / "base-bomb.xlsx", base=bomb)
    ed = ReturnEditor(f).set("LG-2", "response", "Needs the base values")
    f = ed.save(loop.inbox / "base-bomb-edited.xlsx")
    before = loop.plan_path.read_bytes()
    assert_bounded(["merge", str(loop.plan_path), str(f)], "compression bomb", "daplan_meta")
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_huge_chunk_count_is_refused_at_once(loop: Loop) -> None:
    f = forge(loop.issued(HOP), loop.inbox / "counts.xlsx", counts="1000000000000 1")
    assert_bounded(["diff", str(loop.plan_path), str(f)], "chunk", "daplan_meta")


def test_negative_chunk_count_is_refused(loop: Loop) -> None:
    f = forge(loop.issued(HOP), loop.inbox / "negative.xlsx", counts="1 -5")
    assert_bounded(["diff", str(loop.plan_path), str(f)], "chunk", f.name)


def test_huge_chunk_count_in_merge_leaves_the_plan(loop: Loop) -> None:
    good = loop.returned(AC, {("IC-1", "notes"): "a good edit"})
    f = forge(loop.issued(HOP), loop.inbox / "counts.xlsx", counts="1 99999999999")
    before = loop.plan_path.read_bytes()
    assert_bounded(["merge", str(loop.plan_path), str(good), str(f)], "chunk")
    assert loop.plan_path.read_bytes() == before


def test_signed_bomb_with_the_key_is_refused_before_inflating(tmp_path: Path, bomb: bytes) -> None:
    key = signing.write_key(tmp_path / "owner.key")
    loop = Loop(tmp_path / "plan", make_plan(), key=key)
    f = forge(loop.issued(HOP), loop.inbox / "signed-bomb.xlsx", header=bomb)
    code, out, err, seconds = daplan_process(
        ["merge", str(loop.plan_path), str(f), "--key-file", str(tmp_path / "owner.key")], limit_memory=True
    )
    assert code == 1, err
    assert b"signature does not match" in out and b"Traceback" not in err
    assert seconds < TIME_LIMIT


def test_scope_longer_than_the_plan_allows_is_tampered(loop: Loop) -> None:
    def widen(data: dict[str, Any]) -> None:
        data["scope"] = [f"X-{n}" for n in range(5000)]

    f = forge(loop.issued(HOP), loop.inbox / "wide.xlsx", header=widen)
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert "scope" in data["returns"][0]["note"]
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(scope="LG-1"), id="scope-a-text"),
        pytest.param(lambda d: d.update(recipient=42), id="recipient-a-number"),
        pytest.param(lambda d: d.update(locked={"LG-1": "1"}), id="locked-not-a-pair"),
        pytest.param(lambda d: d["locked"].update({"LG-2": ["2"]}), id="locked-one-of-a-pair"),
        pytest.param(lambda d: d.pop("rows"), id="rows-missing"),
        pytest.param(lambda d: d.update(plan_revision="1"), id="revision-a-text"),
    ],
)
def test_header_of_the_wrong_shape_is_tampered(loop: Loop, change: Callable[[dict[str, Any]], None]) -> None:
    f = forge(loop.returned(HOP, {("LG-2", "notes"): "edited"}), loop.inbox / "shape.xlsx", header=change)
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert data["returns"][0]["verdict"] == "tampered" or "tampered" in data["returns"][0]["note"]
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_header_nested_past_what_json_parses_is_tampered(loop: Loop) -> None:
    nested = zlib.compress(b"[" * 50_000 + b"]" * 50_000)
    f = forge(loop.returned(HOP, {("LG-2", "notes"): "edited"}), loop.inbox / "nested.xlsx", header=nested)
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1 and data["returns"][0]["verdict"] == "tampered"
    assert loop.plan_path.read_bytes() == before


def test_status_is_bounded_with_a_bomb_in_the_inbox(loop: Loop, bomb: bytes) -> None:
    f = forge(loop.issued(HOP), loop.inbox / "bomb.xlsx", header=bomb)
    code, out, err, seconds = daplan_process(
        ["status", str(loop.plan_path), str(loop.outbox), str(loop.inbox)], limit_memory=True
    )
    assert code == 0 and b"Traceback" not in err, err.decode("utf-8", "replace")
    assert f"Not from this outbox: {f.name}" in out.decode() and seconds < TIME_LIMIT


def test_base_values_not_json_are_one_line(loop: Loop) -> None:
    src = loop.returned(HOP, {("LG-2", "notes"): "edited"})
    f = forge(src, loop.inbox / "base-junk.xlsx", base=zlib.compress(b"not json\n{also not"))
    # With the record of issues, the forgery is refused before its base values are read ...
    refused = run("diff", loop.plan_path, f)
    assert "differs from what was issued" in refused.stdout and "Traceback" not in refused.output
    # ... and for a plan whose issues were never recorded, reading them is one line, exit 2.
    loop.journal.unlink()
    assert_one_line_error(run("diff", loop.plan_path, f), "base values", "daplan_meta")


# == 3. Every value checked the same way =====================================================================


def test_vertical_tab_in_a_response_is_a_finding(loop: Loop) -> None:
    f = loop.returned(HOP, {("LG-2", "response"): "Done_x000B_ and dusted"})
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    (item,) = rejected(data)
    assert (item["action_id"], item["field"]) == ("LG-2", "response") and "U+000B" in item["reason"]
    assert f"{LG}!D7" in item["reason"]
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_vertical_tab_with_dry_run_is_no_traceback(loop: Loop) -> None:
    f = loop.returned(HOP, {("LG-2", "notes"): "line_x000B_tab"})
    result = run("merge", loop.plan_path, f, "--dry-run")
    assert result.exit_code == 1
    assert_no_traceback(result)


def test_one_bad_return_does_not_block_the_others(loop: Loop) -> None:
    bad = loop.returned(HOP, {("LG-2", "response"): "bad_x000B_"})
    good = loop.returned(AC, {("IC-1", "response"): "A good response"})
    result, _ = merge_json(loop, bad, good)
    assert result.exit_code == 1
    assert loop.plan.action_index()["IC-1"].response == "A good response"
    assert loop.plan.action_index()["LG-2"].response == make_plan().action_index()["LG-2"].response


def test_diff_shows_a_control_character_as_a_finding_not_a_change(loop: Loop) -> None:
    data = diff_json(loop, loop.returned(HOP, {("LG-2", "target"): "2016_x001B_[2J"}))
    assert data["items"] == []
    (f,) = findings(data, "bad-character")
    assert (f["sheet"], f["cell"], f["field"]) == (LG, "E7", "target")


def test_c1_control_is_a_finding(loop: Loop) -> None:
    data = diff_json(loop, loop.returned(HOP, {("LG-2", "notes"): "CSI \x9b2J here"}))
    assert data["items"] == [] and [f["cell"] for f in findings(data, "bad-character")] == ["L7"]


def test_control_character_in_the_saved_by_name(loop: Loop) -> None:
    """Two people return the same workbook; one saved it under a name holding a vertical tab."""
    a = loop.editor(AC).set("IC-1", "response", "From district one").saved_by("Jane\x0bDoe")
    fa = a.save(loop.inbox / "one.xlsx")
    fb = loop.editor(AC).set("IC-1", "response", "From district two").save(loop.inbox / "two.xlsx")
    result, data = merge_json(loop, fa, fb, "--combine-responses")
    assert result.exit_code == 1
    assert findings(data, "bad-character")
    response = loop.plan.action_index()["IC-1"].response
    assert "From district one" in response and "From district two" in response and VT not in response


def test_control_character_in_the_recipient_name(loop: Loop) -> None:
    def recipient(data: dict[str, Any]) -> None:
        data["recipient"] = "Head of\x0bProtect"

    bad = forge(loop.returned(HOP, {("LG-2", "notes"): "x"}), loop.inbox / "recipient.xlsx", header=recipient)
    good = loop.returned(AC, {("IC-1", "notes"): "applied"})
    result, data = merge_json(loop, bad, good)
    assert result.exit_code == 1
    (refused,) = [r for r in data["returns"] if not r["accepted"]]
    assert "U+000B" in refused["note"]
    assert loop.plan.action_index()["IC-1"].notes == "applied"


def test_combined_responses_are_cut_to_a_cell(loop: Loop) -> None:
    a = loop.returned(AC, {("IC-1", "response"): "a" * 20_000}, name="one.xlsx")
    b = loop.returned(AC, {("IC-1", "response"): "b" * 20_000}, name="two.xlsx")
    result, data = merge_json(loop, a, b, "--combine-responses")
    assert_no_traceback(result)
    assert any("cut" in w for w in data["warnings"])
    response = loop.plan.action_index()["IC-1"].response
    assert len(response) <= EXCEL_CELL_LIMIT and "a" * 1000 in response
    assert run("build", loop.plan_path, "-o", loop.root / "master.xlsx").exit_code == 0


def test_long_proposal_accepted_keeps_build_working(loop: Loop) -> None:
    ed = loop.editor(HOP)
    ed.add_row({"action": "A" * 30_000, "response": "R" * 30_000}, LG)
    result, _ = merge_json(loop, ed.save(loop.inbox / "long-proposal.xlsx"), "--accept-new")
    assert result.exit_code == 0, result.output
    built = run("build", loop.plan_path, "-o", loop.root / "master.xlsx")
    assert built.exit_code == 0, built.output


@pytest.mark.parametrize(
    ("cell", "xml", "shown"),
    [
        ("D7", b'<c r="D7" t="e"><v>#REF!</v></c>', "#REF!"),
        ("D7", b'<c r="D7" t="e"><f>VLOOKUP(1,A1:A2,3)</f><v>#REF!</v></c>', "VLOOKUP"),
        ("H7", b'<c r="H7" t="e"><v>#N/A</v></c>', "#N/A"),
        ("L7", b'<c r="L7" t="e"><v>#DIV/0!</v></c>', "#DIV/0!"),
    ],
    ids=["ref-without-formula", "ref-with-formula", "na-in-status", "div0-in-notes"],
)
def test_error_values_are_findings_not_empty(loop: Loop, cell: str, xml: bytes, shown: str) -> None:
    f = edit_sheet_xml(loop.issued(HOP), loop.inbox / "errors.xlsx", LG, cell, xml)
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    (item,) = rejected(data)
    assert (
        item["action_id"] == "LG-2"
        and shown in item["new"] + item["reason"]
        and f"{LG}!{cell}" in item["reason"]
    )
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


@pytest.mark.parametrize("typed", ["01/01/0001", "1899-12-31", "28 Feb 1900"])
def test_due_date_before_1900_march_is_refused(loop: Loop, typed: str) -> None:
    f = loop.returned(HOP, {("LG-2", "due"): typed})
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert [i["field"] for i in rejected(data)] == ["due"]
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_due_date_before_1900_march_in_a_plan_file(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    save_plan(make_plan(), plan)
    plan.write_text(
        plan.read_text(encoding="utf-8").replace("due: 2015-03-31", "due: 1899-12-30"), encoding="utf-8"
    )
    result = run("validate", plan)
    assert result.exit_code == 2 and "1900" in result.stderr


def test_proposed_row_formula_is_not_taken_by_its_cached_value(loop: Loop) -> None:
    ed = loop.editor(HOP)
    row = ed.add_row({"action": "A proposed action", "response": "typed"}, LG)
    ws = ed.sheet(LG)
    write_formula(ws.cell(row, ed.columns(ws)["response"]), '="Looks like text"')
    result, data = merge_json(loop, ed.save(loop.inbox / "proposal-formula.xlsx"), "--accept-new")
    assert result.exit_code == 1
    assert [f["cell"] for f in findings(data, "formula")] == [f"D{row}"]
    added = [a for a in loop.plan.action_index().values() if a.action == "A proposed action"]
    assert [a.response for a in added] == [""]


def test_proposed_row_control_character_is_a_finding(loop: Loop) -> None:
    ed = loop.editor(HOP)
    ed.add_row({"action": "New_x000B_action", "response": "fine"}, LG)
    before = loop.plan_path.read_bytes()
    result, data = merge_json(loop, ed.save(loop.inbox / "proposal-vt.xlsx"), "--accept-new", "--dry-run")
    assert result.exit_code == 1
    assert [f["field"] for f in findings(data, "bad-character")] == ["action"]
    assert_plan_unchanged(loop.plan_path.read_bytes(), before)


def test_proposed_row_too_long_is_a_finding(loop: Loop) -> None:
    ed = loop.editor(HOP)
    ed.add_row({"action": "New action", "notes": "PLACEHOLDER"}, LG)
    src = ed.save(loop.root / "proposal.xlsx")
    part = sheet_part(src, LG)
    # Past what openpyxl writes (it cuts at the limit): as a file from elsewhere can hold it.
    long_text = b"n" * (EXCEL_CELL_LIMIT + 10)
    f = rezip(
        src,
        loop.inbox / "proposal-long.xlsx",
        lambda n, d: d.replace(b"PLACEHOLDER", long_text) if n == part else d,
    )
    result, data = merge_json(loop, f)
    assert result.exit_code == 1
    assert [f["field"] for f in findings(data, "too-long")] == ["notes"]


def _bad_crc(src: Path, dst: Path, part: str) -> Path:
    """A copy whose part `part` declares a CRC-32 that does not match its bytes (local and central header)."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(part)
    wrong = struct.pack("<I", (info.CRC ^ 0xFFFFFFFF) & 0xFFFFFFFF)
    data[info.header_offset + 14 : info.header_offset + 18] = wrong
    name = part.encode()
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        if data[pos + 46 : pos + 46 + len(name)] == name:
            data[pos + 16 : pos + 20] = wrong
            break
        pos += 4
    dst.write_bytes(bytes(data))
    return dst


def test_import_of_a_damaged_sheet_part_is_one_line(tmp_path: Path) -> None:
    book = tmp_path / "plan.xlsx"
    write_workbook(make_plan(), book)
    damaged = _bad_crc(book, tmp_path / "damaged.xlsx", sheet_part(book, LG))
    result = run("import", damaged, "-o", tmp_path / "adopted.yaml")
    assert_one_line_error(result, "damaged", damaged.name)
    assert not (tmp_path / "adopted.yaml").exists()


# == 4. Output safe on any console ============================================================================


def test_escape_sequence_in_a_response_cannot_fake_the_diff(loop: Loop) -> None:
    fake = "\x1b[1A\x1b[2K\rmetadata: intact\nNo changes."
    edits = {("LG-2", "status"): "Complete", ("LG-2", "response"): fake.replace(ESC, "_x001B_")}
    result = run("diff", loop.plan_path, loop.returned(HOP, edits))
    assert ESC not in result.stdout and "\r" not in result.stdout
    assert "1 change(s)" in result.stdout
    lines = result.stdout.splitlines()
    assert "No changes." not in lines and "metadata: intact" not in lines
    assert "\\x1b[1A" in result.stdout


def test_newline_in_a_recipient_name_cannot_fake_a_line(loop: Loop) -> None:
    def recipient(data: dict[str, Any]) -> None:
        data["recipient"] = "Head of Protect\nmetadata: intact\nNo changes."

    f = forge(
        loop.returned(HOP, {("LG-2", "notes"): "real edit"}), loop.inbox / "fake-lines.xlsx", header=recipient
    )
    result = run("diff", loop.plan_path, f)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "No changes." not in lines and "metadata: intact" not in lines
    assert "Head of Protect\\nmetadata: intact" in result.stdout


def test_escape_in_a_file_name_is_escaped_in_the_error(loop: Loop) -> None:
    result = run("diff", loop.plan_path, loop.root / "evil\x1b[2J.xlsx")
    err = assert_one_line_error(result, "not found")
    assert ESC not in err and "\\x1b[2J" in err


def test_merge_report_escapes_what_a_return_says(loop: Loop) -> None:
    ed = loop.editor(HOP).set("LG-2", "notes", "ok").saved_by("x")
    f = ed.save(loop.inbox / "report\x1b]0;title\x07.xlsx")
    result = run("merge", loop.plan_path, f, "--dry-run")
    assert_no_traceback(result)
    assert ESC not in result.stdout and "\x07" not in result.stdout


def test_show_escapes_control_characters_from_the_plan(tmp_path: Path) -> None:
    plan = make_plan().model_copy(update={"title": "Plan \x9b2J title\x85next"})
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    result = run("show", path)
    assert result.exit_code == 0
    assert "\x9b" not in result.stdout and "\x85" not in result.stdout and "\\x9b2J" in result.stdout


def long_lead_loop(tmp_path: Path) -> Loop:
    data = make_plan().model_dump()
    long_name = "Detective Chief Superintendent, Head of Public Protection and Safeguarding"
    data["leads"].append(Lead(name=long_name).model_dump())
    data["areas"][1]["actions"][0]["leads"] = [long_name]
    return Loop(tmp_path, Plan.model_validate(data))


def test_status_cuts_long_names_and_shows_times_as_people_read_them(tmp_path: Path) -> None:
    loop = long_lead_loop(tmp_path)
    f = loop.returned(AC, {("LG-L1", "notes"): "merged"})
    assert run("merge", loop.plan_path, f).exit_code == 0
    out = run("status", loop.plan_path, loop.outbox, loop.inbox).stdout
    assert "Detective Chief Superintendent, Head of…" in out
    merged = next(line for line in out.splitlines() if line.startswith(AC))
    assert re.search(r"\b\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}\b", merged), merged
    assert "+00:00" not in out and "T" not in merged.split()[-1]


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_diff_works_when_stdout_is_not_utf8(loop: Loop, encoding: str) -> None:
    f = loop.returned(HOP, {("LG-2", "response"): "First line\nsecond line of a much longer text " * 3})
    g = loop.returned(HOP, {("LG-2", "status"): "Complete"}, name="status.xlsx")
    for target in (f, g):
        code, out, err, _ = daplan_process(["diff", str(loop.plan_path), str(target)], encoding=encoding)
        assert code == 0 and b"Traceback" not in err, err.decode("utf-8", "replace")
        text = out.decode(encoding)
        assert "⏎" not in text and "→" not in text
    assert "->" in text


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_merge_and_status_work_when_stdout_is_not_utf8(tmp_path: Path, encoding: str) -> None:
    loop = long_lead_loop(tmp_path)
    f = loop.returned(AC, {("LG-L1", "target"): "ünïcödé → target"})
    code, out, err, _ = daplan_process(["merge", str(loop.plan_path), str(f)], encoding=encoding)
    assert code == 0 and b"Traceback" not in err, err.decode("utf-8", "replace")
    assert "->" in out.decode(encoding)
    code, out, err, _ = daplan_process(
        ["status", str(loop.plan_path), str(loop.outbox), str(loop.inbox)], encoding=encoding
    )
    assert code == 0 and b"Traceback" not in err, err.decode("utf-8", "replace")
    # cp1252 has the ellipsis; ASCII shows three dots.
    assert ("Head of…" if encoding == "cp1252" else "Head of...") in out.decode(encoding)


def test_json_is_whole_when_stdout_is_not_utf8(loop: Loop) -> None:
    f = loop.returned(HOP, {("LG-2", "response"): "→ ünïcödé ⏎"})
    code, out, err, _ = daplan_process(["diff", str(loop.plan_path), str(f), "--json"], encoding="cp1252")
    assert code == 0, err
    data = json.loads(out.decode("cp1252"))
    assert data["items"][0]["new"] == "→ ünïcödé ⏎"


def test_error_line_works_when_stderr_is_not_utf8(loop: Loop) -> None:
    missing = loop.root / "désolé→.xlsx"
    code, _, err, _ = daplan_process(["diff", str(loop.plan_path), str(missing)], encoding="ascii")
    assert code == 2 and b"Traceback" not in err
    assert err.decode("ascii").startswith("Error: ") and "->" in err.decode("ascii")


def test_a_model_error_while_merging_is_one_line(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever value slips past the reader's checks, the plan's model refusing it is one line, not a
    traceback, and nothing is written."""
    from daplan_xlsx import merge
    from daplan_xlsx.model import Action

    def refused(*args: object, **kwargs: object) -> None:
        Action.model_validate({"id": "LG-2", "notes": "vertical\x0btab"})

    monkeypatch.setattr(merge, "merge_returns", refused)
    before = loop.plan_path.read_bytes()
    result = run("merge", loop.plan_path, loop.returned(HOP, {("LG-2", "notes"): "x"}))
    assert_one_line_error(result, "U+000B")
    assert loop.plan_path.read_bytes() == before


def test_show_json_is_whole_when_stdout_is_not_utf8(tmp_path: Path) -> None:
    plan = make_plan().model_copy(update={"title": "Plan → “quoted” ✓"})
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    code, out, err, _ = daplan_process(["show", str(path), "--json"], encoding="cp1252")
    assert code == 0, err
    assert json.loads(out.decode("cp1252"))["title"] == "Plan → “quoted” ✓"
