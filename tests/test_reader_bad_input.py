"""Returns that cannot be read: `daplan diff` refuses each with one line on stderr, exit 2, and writes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import re
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import defusedxml
import defusedxml.ElementTree
import openpyxl
import pytest
from apps import soffice_convert
from click.testing import CliRunner, Result
from conftest import FILES, fixed_clock, make_plan
from packages import MAIN_NS as NS
from packages import rezip, sheet_part

from daplan_xlsx import layout as L
from daplan_xlsx.cli import cli
from daplan_xlsx.model import Plan
from daplan_xlsx.planfile import save_plan
from daplan_xlsx.writer import write_workbook

BAD = FILES / "bad"
ISSUE = "00000000-0000-4000-8000-0000000000b1"
MAIN_NS = NS.encode()
STRICT_NS = b"http://purl.oclc.org/ooxml/spreadsheetml/main"
LG = "Leadership and Governance"
IC = "Initial Contact"

# The classic "billion laughs": ten levels of ten references, a gigabyte of "lol" if expanded.
_LAUGHS = b"".join(
    b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10 if i > 1 else b"lol" * 10) for i in range(1, 10)
)
DOCTYPE = b'<!DOCTYPE lolz [<!ENTITY lol0 "lol">' + _LAUGHS + b"]>\n"
LAUGHS_DOC = b'<?xml version="1.0"?>\n' + DOCTYPE + b"<lolz>&lol9;</lolz>"


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    return path


def build(tmp_path: Path, name: str = "built.xlsx", plan: Plan | None = None, **kw: object) -> Path:
    path = tmp_path / name
    write_workbook(plan or make_plan(), path, clock=fixed_clock, issue_id=ISSUE, **kw)  # type: ignore[arg-type]
    return path


def with_doctype(xml: bytes, padding: int = 0) -> bytes:
    """An XML part with the billion-laughs DOCTYPE after its declaration, optionally after a long comment."""
    body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", xml)
    pad = b"<!--" + b"x" * padding + b"-->\n" if padding else b""
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + pad + DOCTYPE + body


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` with a digest of its bytes ("dir" for folders)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def invoke_diff(plan_file: Path, target: Path) -> Result:
    return CliRunner().invoke(cli, ["diff", str(plan_file), str(target)])


def assert_one_line_error(result: Result, target: Path, phrases: tuple[str, ...]) -> str:
    """Exit 2, no traceback, exactly one `Error: ` line naming the file and each phrase; returns the line."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    err = result.stderr
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    line = err.rstrip("\n")
    assert line.startswith("Error: "), line
    assert target.name in line, line
    for phrase in phrases:
        assert phrase.casefold() in line.casefold(), f"{phrase!r} not in {line!r}"
    assert result.stdout == ""
    return line


def assert_refused(tmp_path: Path, plan_file: Path, target: Path, *phrases: str) -> str:
    """Run `daplan diff` on a bad return; it must refuse it in one line and change nothing on disk."""
    before = snapshot(tmp_path)
    plan_bytes = plan_file.read_bytes()
    line = assert_one_line_error(invoke_diff(plan_file, target), target, phrases)
    assert plan_file.read_bytes() == plan_bytes
    assert snapshot(tmp_path) == before
    return line


# -- what the file is ------------------------------------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.xlsx"


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.xlsx"
    path.mkdir()
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    return path


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "return.xlsx"
    path.write_text("ID,Ref,Action,Response\nLG-1,1,There is a lead.,Done\n", encoding="utf-8")
    return path


def _docx(tmp_path: Path) -> Path:
    path = tmp_path / "letter.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        zf.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
            'main"><w:body><w:p><w:r><w:t>Update</w:t></w:r></w:p></w:body></w:document>',
        )
    return path


def _ods(tmp_path: Path) -> Path:
    path = tmp_path / "calc.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", '<?xml version="1.0"?><office:document-content/>', zipfile.ZIP_DEFLATED)
        zf.writestr(
            "META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest/>', zipfile.ZIP_DEFLATED
        )
    return path


def _numbers(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Index/Document.iwa", b"\x00\x05\x00\x00\x08\x01")
        zf.writestr("Metadata/Properties.plist", b"bplist00")
    return path


def _truncated(tmp_path: Path) -> Path:
    data = build(tmp_path).read_bytes()
    path = tmp_path / "attachment.xlsx"
    path.write_bytes(data[: len(data) // 2])
    return path


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "noise.xlsx"
    path.write_bytes(b"\x01" + random.Random(20141).randbytes(8191))
    return path


def _encrypted(tmp_path: Path) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    with build(tmp_path).open("rb") as fh:
        OOXMLFile(fh).encrypt("Secret-2014", out)
    path = tmp_path / "locked.xlsx"
    path.write_bytes(out.getvalue())
    assert path.read_bytes().startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    return path


def _legacy_xls(tmp_path: Path) -> Path:
    path = tmp_path / "return.xls"
    shutil.copyfile(BAD / "legacy-return.xls", path)
    return path


def _legacy_xls_renamed(tmp_path: Path) -> Path:
    path = tmp_path / "return.xlsx"
    shutil.copyfile(BAD / "legacy-return.xls", path)
    return path


def _strict(tmp_path: Path) -> Path:
    def edit(name: str, data: bytes) -> bytes:
        return data.replace(MAIN_NS, STRICT_NS) if name == "xl/workbook.xml" else data

    return rezip(build(tmp_path), tmp_path / "strict.xlsx", edit)


def _moved_workbook_part(tmp_path: Path) -> Path:
    """The package's relationships point at a workbook part other than xl/workbook.xml."""

    def edit(name: str, data: bytes) -> bytes:
        return data.replace(b"xl/workbook.xml", b"xl/other.xml") if name == "_rels/.rels" else data

    src = build(tmp_path)
    with zipfile.ZipFile(src) as zf:
        moved = {"xl/other.xml": zf.read("xl/workbook.xml")}
    return rezip(src, tmp_path / "moved.xlsx", edit, moved)


NOT_A_WORKBOOK = [
    pytest.param(_missing, ("not found",), id="missing-file"),
    pytest.param(_directory, ("directory",), id="directory"),
    pytest.param(_empty, ("empty",), id="empty-file"),
    pytest.param(_csv, ("CSV", "Excel Workbook"), id="csv-renamed"),
    pytest.param(_docx, ("Word",), id="docx-renamed"),
    pytest.param(_ods, ("OpenDocument", ".xlsx"), id="ods-renamed"),
    pytest.param(_numbers, ("Numbers", "Export"), id="numbers-package"),
    pytest.param(_truncated, ("truncated",), id="truncated-zip"),
    pytest.param(_random_bytes, ("not a valid .xlsx",), id="random-bytes"),
    pytest.param(_encrypted, ("password", "remove the password", "save again"), id="encrypted"),
    pytest.param(_legacy_xls, ("Excel 97-2003", "save as Excel Workbook"), id="legacy-xls"),
    pytest.param(_legacy_xls_renamed, ("Excel 97-2003", "save as Excel Workbook"), id="legacy-xls-renamed"),
    pytest.param(_strict, ("Strict Open XML", "save as Excel Workbook"), id="strict-open-xml"),
    pytest.param(
        _moved_workbook_part, ("unusual place", "xl/other.xml", "save it again"), id="moved-workbook"
    ),
]


@pytest.mark.parametrize(("make", "phrases"), NOT_A_WORKBOOK)
def test_not_a_workbook_is_refused(
    make: Callable[[Path], Path], phrases: tuple[str, ...], tmp_path: Path, plan_file: Path
) -> None:
    """Cases 1-6: each wrong kind of file gets its own one-line error naming what it is and what to do."""
    assert_refused(tmp_path, plan_file, make(tmp_path), *phrases)


def test_encrypted_message_never_asks_for_the_password(tmp_path: Path, plan_file: Path) -> None:
    """Case 1: the owner is told to have the password removed, never asked to type it in."""
    line = assert_refused(tmp_path, plan_file, _encrypted(tmp_path), "remove the password")
    assert not re.search(r"\b(enter|type|give|supply|provide|what is)\b[^.:]*password", line, re.IGNORECASE)
    assert "--password" not in line


def test_legacy_fixture_is_a_plain_xls() -> None:
    """The committed .xls is a CFB file that msoffcrypto sees as legacy Excel and not encrypted."""
    import msoffcrypto

    with (BAD / "legacy-return.xls").open("rb") as fh:
        office = msoffcrypto.OfficeFile(fh)
        assert type(office).__name__ == "Xls97File"
        assert not office.is_encrypted()


@pytest.mark.libreoffice
def test_real_ods_renamed_is_refused(
    tmp_path: Path, plan_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Case 3: a workbook LibreOffice saved as .ods, then renamed .xlsx, is named as OpenDocument."""
    work = tmp_path_factory.mktemp("ods-work")
    ods = soffice_convert(build(work), "ods", work, tmp_path_factory.mktemp("lo-profile"))
    target = tmp_path / "calc.xlsx"
    shutil.copyfile(ods, target)
    assert_refused(tmp_path, plan_file, target, "OpenDocument")


# -- bombs -----------------------------------------------------------------------------------------------


def test_zip_bomb_refused_fast_from_declared_sizes(tmp_path: Path, plan_file: Path) -> None:
    """Case 8: 50 MB of spaces deflated into one part is refused in well under 2 s without inflating it."""
    target = tmp_path / "bomb.xlsx"
    chunk = b" " * (1 << 20)
    with (
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("xl/worksheets/sheet1.xml", "w") as m,
    ):
        for _ in range(50):
            m.write(chunk)
    with zipfile.ZipFile(target) as zf:
        (info,) = zf.infolist()
    assert info.file_size == 50 << 20 and info.compress_size < 100_000
    before, plan_bytes = snapshot(tmp_path), plan_file.read_bytes()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = invoke_diff(plan_file, target)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_one_line_error(result, target, ("zip bomb",))
    assert elapsed < 2.0
    assert peak < 8 << 20, f"{peak:,} bytes allocated: the bomb was inflated"
    assert plan_file.read_bytes() == plan_bytes and snapshot(tmp_path) == before


def test_forged_declared_size_is_trusted_and_refused(tmp_path: Path, plan_file: Path) -> None:
    """Case 8: a part that declares 3 GB is refused from the directory alone, whatever its real content."""
    target = build(tmp_path)
    data = bytearray(target.read_bytes())
    # Central directory entries: signature PK\1\2, uncompressed size at offset 24.
    pos = data.index(b"PK\x01\x02")
    data[pos + 24 : pos + 28] = struct.pack("<I", 3 << 30)
    forged = tmp_path / "forged.xlsx"
    forged.write_bytes(bytes(data))
    with zipfile.ZipFile(forged) as zf:
        assert zf.infolist()[0].file_size == 3 << 30
    assert_refused(tmp_path, plan_file, forged, "zip bomb")


def test_too_many_parts_is_refused(tmp_path: Path, plan_file: Path) -> None:
    """Case 8: the member count is capped before anything is parsed."""
    target = tmp_path / "parts.xlsx"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        for i in range(10_001):
            zf.writestr(f"xl/media/p{i}.bin", b"")
    assert_refused(tmp_path, plan_file, target, "zip bomb")


def test_parsers_are_defused() -> None:
    """Case 9: defusedxml refuses the bomb outright and openpyxl is configured to use it."""
    with pytest.raises(defusedxml.EntitiesForbidden):
        defusedxml.ElementTree.fromstring(LAUGHS_DOC)
    assert openpyxl.DEFUSEDXML is True


@pytest.mark.parametrize("part", ["workbook", "sheet", "xl/styles.xml", "xl/sharedStrings.xml"])
def test_entity_bomb_is_refused(part: str, tmp_path: Path, plan_file: Path) -> None:
    """Case 9: a billion-laughs DOCTYPE in a part that is parsed (the workbook part, an area sheet's part,
    the styles or the shared strings) is refused by name."""
    built = build(tmp_path)
    victim = {"workbook": "xl/workbook.xml", "sheet": sheet_part(built, LG)}.get(part, part)
    target = rezip(built, tmp_path / "laughs.xlsx", lambda n, d: with_doctype(d) if n == victim else d)
    assert_refused(tmp_path, plan_file, target, "entit")


@pytest.mark.parametrize("part", ["docProps/app.xml", "about-sheet"])
def test_doctype_in_a_part_never_parsed_is_not_refused(part: str, tmp_path: Path, plan_file: Path) -> None:
    """Case 9: only parsed XML is checked: a DOCTYPE in the document properties, or in a sheet that is never
    read (the About sheet), is inert, and the return reads as usual."""
    built = build(tmp_path)
    victim = sheet_part(built, L.ABOUT_SHEET) if part == "about-sheet" else part
    target = rezip(built, tmp_path / "laughs.xlsx", lambda n, d: with_doctype(d) if n == victim else d)
    result = CliRunner().invoke(cli, ["diff", "--json", str(plan_file), str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["items"] == []


def test_entity_bomb_after_long_prolog_is_refused(tmp_path: Path, plan_file: Path) -> None:
    """Case 9: a DOCTYPE pushed past the first few KB by a comment in the prolog is still refused."""
    built = build(tmp_path)
    victim = sheet_part(built, LG)
    target = rezip(built, tmp_path / "laughs.xlsx", lambda n, d: with_doctype(d, 4000) if n == victim else d)
    with zipfile.ZipFile(target) as zf:
        part = zf.read(victim)
    with pytest.raises(defusedxml.EntitiesForbidden):
        defusedxml.ElementTree.fromstring(part)
    assert_refused(tmp_path, plan_file, target, "entit")


# -- workbooks that are not a usable return --------------------------------------------------------------


def test_workbook_from_another_plan_is_refused(tmp_path: Path, plan_file: Path) -> None:
    """A workbook issued for a different plan id is refused, pointing at the plan file."""
    other = make_plan().model_copy(update={"id": "plan-elsewhere"})
    target = build(tmp_path, "other.xlsx", plan=other)
    assert_refused(tmp_path, plan_file, target, "another plan", "plan-elsewhere")


def test_workbook_without_area_sheets_is_refused(tmp_path: Path, plan_file: Path) -> None:
    """A workbook holding only an About sheet has nothing to read."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = L.ABOUT_SHEET
    ws["A1"] = "Test Constabulary Domestic Abuse Action Plan"
    ws["A3"], ws["B3"] = "Issued to", "Head of Protect"
    target = tmp_path / "about-only.xlsx"
    wb.save(target)
    assert_refused(tmp_path, plan_file, target, "no area sheet")


def test_area_sheet_without_header_row_is_refused(tmp_path: Path, plan_file: Path) -> None:
    """A recipient workbook whose only area sheet lost its header row cannot be matched by column."""
    built = build(tmp_path, scope=["IC-1"], recipient="Area Commanders")
    wb = openpyxl.load_workbook(built)
    assert wb[IC].cell(L.HEADER_ROW + 1, 1).value == "ID"
    wb[IC].delete_rows(L.HEADER_ROW + 1)
    target = tmp_path / "no-header.xlsx"
    wb.save(target)
    assert_refused(tmp_path, plan_file, target, "no area sheet", "header row")


@pytest.mark.parametrize("form", ["plain", "spaced", "prefixed"])
def test_cells_without_a_reference_are_refused(form: str, tmp_path: Path, plan_file: Path) -> None:
    """A cell element without `r` would be placed by the parser where the extent and formula checks cannot
    see it (here a formula whose cached value would pass for typed text): the sheet is refused."""
    built = build(tmp_path)
    part = sheet_part(built, LG)

    def edit(name: str, data: bytes) -> bytes:
        if name != part:
            return data
        row = b'<row r="99000"><c t="str"><f>1+1</f><v>2</v></c></row></sheetData>'
        if form == "spaced":
            row = row.replace(b"<c t=", b"<c\n t=")
        data = data.replace(b"</sheetData>", row)
        if form == "prefixed":
            data = re.sub(rb"<(/?)(\w+)", lambda m: b"<" + m.group(1) + b"x:" + m.group(2), data)
            data = data.replace(b"<x:worksheet ", b'<x:worksheet xmlns:x="' + MAIN_NS + b'" ', 1)
        return data

    target = rezip(built, tmp_path / "unplaced.xlsx", edit)
    line = assert_refused(tmp_path, plan_file, target, "without a cell reference", LG)
    assert "save it" in line


def test_merged_cells_across_the_table_are_refused(tmp_path: Path, plan_file: Path) -> None:
    """Case 23: cells merged over two action rows would hide a value, so the return is refused."""
    wb = openpyxl.load_workbook(build(tmp_path))
    wb[LG].merge_cells("D6:D7")
    target = tmp_path / "merged.xlsx"
    wb.save(target)
    assert_refused(tmp_path, plan_file, target, "merged", "D6:D7", LG)


def test_junk_rows_with_ids_are_findings_with_their_values(tmp_path: Path, plan_file: Path) -> None:
    """Another table pasted under the action table: each row's ID is not in the plan, so the row is one
    "unknown-id" finding and each value on it, whatever its type, one more with its field and cell (exit 0,
    nothing written, no change read), in bounded time."""
    wb = openpyxl.load_workbook(build(tmp_path))
    ws = wb[LG]
    cols = {c.key: i + 1 for i, c in enumerate(L.AREA_COLUMNS)}
    first, n = 20, 2000
    for k in range(n):
        r = first + k
        ws.cell(r, cols["id"]).value = f"X-{k}"
        ws.cell(r, cols["response"]).value = k  # a number in a text field reads as its text
        ws.cell(r, cols["due"]).value = True  # a boolean is not a date: kept as typed
        ws.cell(r, cols["status"]).value = 3.5
    ws.cell(first, cols["notes"]).value = "=1/0"  # a formula, kept as its text
    ws.cell(first, cols["lead"]).value = dt.datetime(2015, 1, 2, 3, 4)
    target = tmp_path / "junk-rows.xlsx"
    wb.save(target)
    before, plan_bytes = snapshot(tmp_path), plan_file.read_bytes()
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["diff", "--json", str(plan_file), str(target)])
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["items"] == [] and out["proposals"] == []
    findings = out["findings"]
    assert {f["kind"] for f in findings} == {"unknown-id"} and len(findings) == 4 * n + 2
    got = {(f["cell"], f["action_id"], f["field"], f["value"]) for f in findings[:7]}
    letter = {k: L.column_letter(c - 1) for k, c in cols.items()}
    assert got == {
        (f"{letter['id']}{first}", "X-0", "", ""),
        (f"{letter['response']}{first}", "X-0", "response", "0"),
        (f"{letter['due']}{first}", "X-0", "due", "TRUE"),
        (f"{letter['lead']}{first}", "X-0", "lead", "2015-01-02 03:04:00"),
        (f"{letter['status']}{first}", "X-0", "status", "3.5"),
        (f"{letter['notes']}{first}", "X-0", "notes", "=1/0"),
        (f"{letter['id']}{first + 1}", "X-1", "", ""),
    }
    last = findings[-4:]
    assert [(f["action_id"], f["field"], f["value"]) for f in last] == [
        (f"X-{n - 1}", "", ""),
        (f"X-{n - 1}", "response", str(n - 1)),
        (f"X-{n - 1}", "due", "TRUE"),
        (f"X-{n - 1}", "status", "3.5"),
    ]
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert plan_file.read_bytes() == plan_bytes and snapshot(tmp_path) == before


# -- macro-enabled: read, with a warning ----------------------------------------------------------------


def _add_macros(src: Path, dst: Path) -> Path:
    def edit(name: str, data: bytes) -> bytes:
        if name == "[Content_Types].xml":
            data = data.replace(
                b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
            )
            return data.replace(
                b"<Default ",
                b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/><Default ',
                1,
            )
        if name == "xl/_rels/workbook.xml.rels":
            return data.replace(
                b"</Relationships>",
                b'<Relationship Id="rIdVba1" Type="http://schemas.microsoft.com/office/2006/relationships/'
                b'vbaProject" Target="vbaProject.bin"/></Relationships>',
            )
        return data

    vba = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1016
    return rezip(src, dst, edit, extra={"xl/vbaProject.bin": vba})


def test_macro_enabled_workbook_is_read_with_a_warning(tmp_path: Path, plan_file: Path) -> None:
    """Case 7: an .xlsm return is read (exit 0), its edits diffed, and a "macros" warning given."""
    wb = openpyxl.load_workbook(build(tmp_path))
    wb[LG]["D7"] = "Board minutes show the lead chairing the group."
    edited = tmp_path / "edited.xlsx"
    wb.save(edited)
    target = _add_macros(edited, tmp_path / "return.xlsm")
    with zipfile.ZipFile(target) as zf:
        assert "xl/vbaProject.bin" in zf.namelist()
        assert b"macroEnabled" in zf.read("[Content_Types].xml")
    plan_bytes = plan_file.read_bytes()
    result = CliRunner().invoke(cli, ["diff", "--json", str(plan_file), str(target)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = json.loads(result.stdout)
    assert [(i["action_id"], i["field"], i["new"]) for i in out["items"]] == [
        ("LG-2", "response", "Board minutes show the lead chairing the group.")
    ]
    macros = [f for f in out["findings"] if f["kind"] == "macros"]
    assert len(macros) == 1 and macros[0]["severity"] == "warning"
    assert plan_file.read_bytes() == plan_bytes


# -- a million rows of junk -----------------------------------------------------------------------------

_MEASURE = """
import json, resource, sys, time
from click.testing import CliRunner
from daplan_xlsx.cli import cli
start = time.monotonic()
result = CliRunner().invoke(cli, ["diff", sys.argv[1], sys.argv[2]])
print(json.dumps({
    "exit": result.exit_code, "stderr": result.stderr, "stdout": result.stdout,
    "seconds": time.monotonic() - start,
    "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


@pytest.mark.slow
def test_million_rows_of_junk_refused_in_bounded_time_and_memory(tmp_path: Path, plan_file: Path) -> None:
    """Cases 10-11: a full-height area sheet is refused by its row count, in under 60 s and 1.5 GB."""
    import xlsxwriter

    target = tmp_path / "junk.xlsx"
    wb = xlsxwriter.Workbook(str(target), {"constant_memory": True})
    ws = wb.add_worksheet(LG)
    for c, header in enumerate(L.HEADERS):
        ws.write_string(L.HEADER_ROW, c, header)
    for r in range(L.FIRST_DATA_ROW, 1_048_576):
        ws.write_string(r, 0, "junk")
        ws.write_number(r, 3, r)
    wb.close()
    before, plan_bytes = snapshot(tmp_path), plan_file.read_bytes()
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(plan_file), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    elapsed = time.monotonic() - start
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["exit"] == 2, got
    err = got["stderr"]
    assert err.count("\n") == 1 and err.startswith("Error: ") and "Traceback" not in err
    assert target.name in err and "rows" in err
    assert got["stdout"] == ""
    assert elapsed < 60, f"{elapsed:.1f} s"
    assert got["peak_kib"] * 1024 < 1.5 * (1 << 30), f"peak RSS {got['peak_kib'] // 1024} MiB"
    assert plan_file.read_bytes() == plan_bytes and snapshot(tmp_path) == before


def _limit_address_space() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.parametrize("case", ["upper", "lower"])
def test_far_apart_cells_do_not_crash_the_reader(case: str, tmp_path: Path, plan_file: Path) -> None:
    """Case 10: a 5 KB sheet with cells at A1 and XFD60000 is read or refused, never an out-of-memory abort;
    also with the reference written `xfd60000`, which the parser reads the same."""
    import xlsxwriter

    target = tmp_path / "corners.xlsx"
    wb = xlsxwriter.Workbook(str(target))
    ws = wb.add_worksheet(LG)
    ws.write_string(0, 0, "junk")
    ws.write_string(59_999, 16_383, "junk")
    wb.close()
    if case == "lower":
        built = target.rename(tmp_path / "built-corners.xlsx")
        rezip(built, target, lambda n, d: d.replace(b'r="XFD60000"', b'r="xfd60000"'))
        built.unlink()
        with zipfile.ZipFile(target) as zf:
            assert b'r="xfd60000"' in zf.read(sheet_part(target, LG))
    assert target.stat().st_size < 10_000
    before, plan_bytes = snapshot(tmp_path), plan_file.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(plan_file), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_address_space,
    )
    assert proc.returncode == 0, f"the reader process died ({proc.returncode}): {proc.stderr[:300]}"
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["exit"] in (0, 2), got
    if got["exit"] == 2:
        assert got["stderr"].count("\n") == 1 and got["stderr"].startswith("Error: ")
        assert target.name in got["stderr"]
    assert got["peak_kib"] * 1024 < 1.5 * (1 << 30)
    assert plan_file.read_bytes() == plan_bytes and snapshot(tmp_path) == before
